/*
 * future.c - the generic parts of futures: dropping, storing wakers, the
 * cooperative budget and yield_now.
 */
#include "internal.h"

void sp__future_drop_slow(sp_future *f)
{
	/* An async fn suspended on an inner future owns it: drop it first, as
	 * Rust drops the locals live at the suspension point. */
	sp_future *inner = f->awaiting;
	f->awaiting = NULL;
	if (inner)
		sp_future_drop(inner);
	sp_drop_fn drop = f->drop;
	f->drop = NULL; /* idempotent: a second drop does nothing */
	if (drop)
		drop(f);
}

void sp_waker_store(sp_waker *slot, sp_context *cx)
{
	if (!sp_waker_is_empty(slot) && sp_waker_will_wake(slot, cx->waker))
		return;
	sp_waker_drop(slot);
	*slot = sp_waker_clone(cx->waker);
}

int sp_coop_proceed(sp_context *cx)
{
	sp__task *t = cx->task;
	if (!t)
		return 1; /* block_on's root future has no budget */
	if (cx->budget == 0) {
		/* Out of budget: ask to be polled again, after the others. The
		 * self-wake makes the worker requeue the task at the back. */
		SP__BUMP(t->budget_yields, 1);
		sp_waker_wake_by_ref(cx->waker);
		return 0;
	}
	cx->budget--;
	return 1;
}

static sp_poll yield_poll(sp_future *f, sp_context *cx)
{
	sp_yield *y = (sp_yield *)f;
	if (y->yielded)
		return SP_READY;
	y->yielded = 1;
	sp_waker_wake_by_ref(cx->waker);
	return SP_PENDING;
}

void sp_yield_init(sp_yield *y)
{
	y->base = (sp_future){.poll = yield_poll, .name = "yield_now"};
	y->yielded = 0;
}
