/*
 * time.c - the timer futures: sleep, sleep_until, timeout, interval.
 *
 * A sleep's timer slot (sp_timer_slot, public storage for the private
 * sp__timer) is armed in the driver's wheel at its first pending poll and
 * disarmed when the future is dropped. The driver moves the waker out and
 * sets `fired` under the wheel lock, so a drop racing the firing either
 * removes the entry or finds it fired and its waker gone, never a half state.
 */
#include <stddef.h>
#include <string.h>

#include "internal.h"

_Static_assert(sizeof(sp__timer) <= sizeof(sp_timer_slot), "sp__timer fits its public slot");
_Static_assert(offsetof(sp__timer, waker) == offsetof(sp_timer_slot, waker),
	       "sp__timer layout matches sp_timer_slot");

static sp__timer *timer_of(sp_sleep *s)
{
	return (sp__timer *)&s->timer;
}

static sp_poll sleep_poll(sp_future *f, sp_context *cx)
{
	sp_sleep *s = (sp_sleep *)f;
	sp__timer *tm = timer_of(s);
	if (atomic_load_explicit(&tm->fired, memory_order_acquire))
		return SP_READY;
	if (sp_now_ns() >= s->deadline_ns)
		return SP_READY; /* past deadlines complete at once, unregistered */
	sp_runtime *rt = tm->rt ? tm->rt : sp_runtime_current();
	SP__ASSERT(rt, "a timer is polled on a runtime thread (worker or sp_block_on)");
	if (!sp_coop_proceed(cx))
		return SP_PENDING;
	tm->rt = rt;
	if (!sp__timer_arm(rt, tm, sp__driver_deadline_ms(rt, s->deadline_ns), cx))
		return SP_READY;
	return SP_PENDING;
}

static void sleep_drop(sp_future *f)
{
	sp_sleep *s = (sp_sleep *)f;
	sp__timer *tm = timer_of(s);
	/* A fired timer is out of the wheel and its waker gone (the driver did
	 * both under its shard's lock before setting `fired`): nothing to undo,
	 * no lock. */
	if (tm->armed && !atomic_load_explicit(&tm->fired, memory_order_acquire))
		sp__timer_disarm(tm->rt, tm);
	tm->armed = 0;
}

void sp_sleep_until_init(sp_sleep *s, uint64_t deadline_ns)
{
	s->base = (sp_future){.poll = sleep_poll, .drop = sleep_drop, .name = "sleep"};
	s->out = 0;
	s->deadline_ns = deadline_ns;
	memset(&s->timer, 0, sizeof(s->timer));
}

void sp_sleep_init(sp_sleep *s, uint64_t duration_ns)
{
	sp_sleep_until_init(s, sp_now_ns() + duration_ns);
}

/* ---- timeout -------------------------------------------------------------------- */

static sp_poll timeout_poll(sp_future *f, sp_context *cx)
{
	sp_timeout *t = (sp_timeout *)f;
	if (sp_future_poll(t->inner, cx) == SP_READY) {
		/* As SP_AWAIT would: drop it once ready (its out stays). */
		sp_future_drop(t->inner);
		t->inner_done = 1;
		t->out = 0;
		return SP_READY;
	}
	if (sp_future_poll(&t->sleep.base, cx) == SP_READY) {
		sp_future_drop(t->inner); /* the time ran out: drop the work */
		t->inner_done = 1;
		t->out = SP_ETIMEDOUT;
		return SP_READY;
	}
	return SP_PENDING;
}

static void timeout_drop(sp_future *f)
{
	sp_timeout *t = (sp_timeout *)f;
	if (!t->inner_done)
		sp_future_drop(t->inner);
	sp_future_drop(&t->sleep.base);
}

void sp_timeout_init(sp_timeout *t, sp_future *inner, uint64_t duration_ns)
{
	t->base = (sp_future){.poll = timeout_poll, .drop = timeout_drop, .name = "timeout"};
	t->out = 0;
	t->inner = inner;
	t->inner_done = 0;
	sp_sleep_init(&t->sleep, duration_ns);
}

/* ---- interval ------------------------------------------------------------------- */

void sp_interval_init(sp_interval *iv, uint64_t period_ns)
{
	iv->period_ns = period_ns ? period_ns : 1;
	iv->next_ns = sp_now_ns() + iv->period_ns;
}

static sp_poll tick_poll(sp_future *f, sp_context *cx)
{
	sp_interval_tick *t = (sp_interval_tick *)f;
	sp_interval *iv = t->iv;
	if (!t->started) {
		sp_sleep_until_init(&t->sleep, iv->next_ns);
		t->started = 1;
	}
	if (sp_future_poll(&t->sleep.base, cx) == SP_PENDING)
		return SP_PENDING;
	sp_future_drop(&t->sleep.base);
	/* Next boundary after now: missed periods are skipped. */
	uint64_t now = sp_now_ns();
	iv->next_ns += iv->period_ns;
	if (iv->next_ns <= now)
		iv->next_ns += ((now - iv->next_ns) / iv->period_ns + 1) * iv->period_ns;
	t->out = 0;
	return SP_READY;
}

static void tick_drop(sp_future *f)
{
	sp_interval_tick *t = (sp_interval_tick *)f;
	if (t->started)
		sp_future_drop(&t->sleep.base);
}

void sp_interval_tick_init(sp_interval_tick *t, sp_interval *iv)
{
	t->base = (sp_future){.poll = tick_poll, .drop = tick_drop, .name = "interval_tick"};
	t->out = 0;
	t->iv = iv;
	t->started = 0;
}
