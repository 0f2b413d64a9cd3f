/*
 * oneshot.c - a single-value channel with no allocation.
 *
 * The channel (sp_oneshot) lives in memory owned by the receiving side. State
 * bits:
 *   RX_WAKER  rx_waker holds the receiver's waker. While SENT is clear, only
 *             the receiver changes rx_waker, after clearing this bit; once
 *             the sender sets SENT it owns a waker it saw there.
 *   SENT      a value (or CLOSED) is there; terminal.
 *   TX_BUSY   the sender is between setting SENT and its last access to the
 *             channel memory. The receiver does not consider the channel
 *             done (and may not free it) until TX_BUSY is clear: that is what
 *             lets the channel live in the receiver's frame.
 *   CLOSED    the sender went away without a value.
 *   RX_GONE   the receiver was dropped: a later send fails with SP_EPIPE.
 *
 * The sender's window under TX_BUSY is a 16-byte copy; the receiver spins on
 * it with sched_yield (bounded by that copy, or by the sender's preemption).
 */
#include <sched.h>

#include "internal.h"
#include "trace_events.h"

#define RX_WAKER 1u
#define SENT 2u
#define TX_BUSY 4u
#define CLOSED 8u
#define RX_GONE 16u

void sp_oneshot_init(sp_oneshot *ch)
{
	atomic_init(&ch->state, 0);
	ch->rx_waker = (sp_waker){0};
	ch->value = 0;
}

/*
 * Send: claim the channel (TX_BUSY) so that a second sender fails instead of
 * racing on `value`, write the value, publish SENT, take the receiver's waker
 * if it is there, release TX_BUSY (the last access to the channel), wake.
 */
static int send_bits(sp_oneshot *ch, uint64_t value, uint32_t bits)
{
	/* ordering: acquire pairs with the receiver's release of RX_WAKER. */
	uint32_t prev = atomic_fetch_or_explicit(&ch->state, TX_BUSY, memory_order_acquire);
	if (prev & (TX_BUSY | SENT | RX_GONE)) {
		if (!(prev & TX_BUSY)) /* the busy bit is ours to clear */
			atomic_fetch_and_explicit(&ch->state, ~TX_BUSY, memory_order_release);
		return SP_EPIPE;
	}
	ch->value = value;
	/* ordering: release publishes the value; acquire makes a waker the
	 * receiver stored meanwhile visible. */
	prev = atomic_fetch_or_explicit(&ch->state, bits, memory_order_acq_rel);
	sp_waker w = {0};
	if (prev & RX_WAKER) {
		w = ch->rx_waker; /* ours now: the receiver sees SENT */
		ch->rx_waker = (sp_waker){0};
	}
	/* Last access to the channel memory. */
	atomic_fetch_and_explicit(&ch->state, ~TX_BUSY, memory_order_release);
	sp_waker_wake(&w);
	return 0;
}

int sp_oneshot_send(sp_oneshot *ch, uint64_t value)
{
	return send_bits(ch, value, SENT);
}

void sp_oneshot_close(sp_oneshot *ch)
{
	send_bits(ch, 0, SENT | CLOSED);
}

/* Wait out a sender inside its TX_BUSY window; return the final state. */
static uint32_t settle(sp_oneshot *ch)
{
	uint32_t s;
	while ((s = atomic_load_explicit(&ch->state, memory_order_acquire)) & TX_BUSY)
		sched_yield();
	return s;
}

static sp_poll recv_done(sp_oneshot_recv *r, uint32_t s)
{
	s = settle(r->ch);
	r->out = (s & CLOSED) ? SP_EPIPE : 0;
	return SP_READY;
}

static sp_poll recv_poll(sp_future *f, sp_context *cx)
{
	sp_oneshot_recv *r = (sp_oneshot_recv *)f;
	sp_oneshot *ch = r->ch;
	uint32_t s = atomic_load_explicit(&ch->state, memory_order_acquire);
	if (s & SENT)
		return recv_done(r, s);
	if (!sp_coop_proceed(cx))
		return SP_PENDING;
	if (s & RX_WAKER) {
		if (sp_waker_will_wake(&ch->rx_waker, cx->waker))
			return SP_PENDING;
		/* Take the waker back before replacing it. */
		for (;;) {
			if (s & SENT)
				return recv_done(r, s);
			if (atomic_compare_exchange_weak_explicit(&ch->state, &s, s & ~RX_WAKER,
								  memory_order_acq_rel,
								  memory_order_acquire))
				break;
		}
		sp_waker_drop(&ch->rx_waker);
	}
	ch->rx_waker = sp__waker_clone_as(cx->waker, SP_HOLD_CHANNEL);
	uint32_t prev = atomic_fetch_or_explicit(&ch->state, RX_WAKER, memory_order_acq_rel);
	if (prev & SENT) {
		/* The sender finished before seeing our waker: it is still ours. */
		sp_waker_drop(&ch->rx_waker);
		atomic_fetch_and_explicit(&ch->state, ~RX_WAKER, memory_order_relaxed);
		return recv_done(r, prev);
	}
	return SP_PENDING;
}

static void recv_drop(sp_future *f)
{
	sp_oneshot_recv *r = (sp_oneshot_recv *)f;
	sp_oneshot *ch = r->ch;
	uint32_t s = atomic_load_explicit(&ch->state, memory_order_acquire);
	for (;;) {
		if (s & SENT) {
			settle(ch); /* the sender took any waker */
			return;
		}
		/* Mark the receiver gone and take our waker back in one step. */
		if (atomic_compare_exchange_weak_explicit(&ch->state, &s, (s & ~RX_WAKER) | RX_GONE,
							  memory_order_acq_rel,
							  memory_order_acquire)) {
			if (s & RX_WAKER)
				sp_waker_drop(&ch->rx_waker);
			return;
		}
	}
}

void sp_oneshot_recv_init(sp_oneshot_recv *r, sp_oneshot *ch)
{
	r->base = (sp_future){.poll = recv_poll, .drop = recv_drop, .name = "oneshot_recv"};
	r->out = 0;
	r->ch = ch;
}
