/*
 * sync.c - waiter lists and the primitives built on them: the bounded mpsc
 * channel, notify, the async mutex and the semaphore. Only the public API is
 * used (wakers, sp_coop_proceed); see spindle/sync.h for the semantics.
 *
 * WAITER NODES. A waiting future embeds an sp_waiter. Its first poll that
 * cannot complete links the node at the tail of one of the primitive's
 * sp_waitlist FIFOs (state QUEUED) with a clone of the context's waker. An
 * event (unlock, release, a send, notify) unlinks nodes from the head and
 * marks each NOTIFIED (woken, holds nothing: it polls again and re-checks) or
 * GRANTED (woken and handed a resource: the lock, its permits, a reserved
 * channel slot, a notify_one notification). The future's next poll turns
 * GRANTED into DONE and returns SP_READY; its drop, in any state, leaves the
 * primitive as if it had never waited: QUEUED is unlinked, GRANTED passes the
 * resource on exactly as a release would.
 *
 * INVARIANTS (all under the primitive's lock):
 *   - A node is in a list iff its state is QUEUED; only then may others
 *     touch it. After unlinking it (NOTIFIED, GRANTED) an event has moved
 *     the waker out and never touches the node again, so the future may be
 *     dropped, and its memory reused, the moment the lock is released.
 *   - mutex: waiters non-empty => locked (unlock hands the lock to the head).
 *   - semaphore: waiters non-empty => permits < head->want (every release,
 *     and every unlink of the head, serves the head while it fits).
 *   - mpsc: len + reserved <= capacity; send_waiters non-empty => no free
 *     slot (len + reserved == capacity) or closed; a slot freed by a recv is
 *     reserved for the oldest waiting sender before anyone else sees it.
 *     Every push while receivers wait unlinks one (NOTIFIED); a NOTIFIED
 *     receiver dropped while items remain passes that on. A receiver is
 *     queued only while len == 0, so an item is never left unannounced.
 *
 * LOCKING. Each primitive has one pthread mutex. The critical sections are a
 * few pointer updates and at most one item memcpy; a spinlock would be as
 * fast uncontended, but a worker preempted while holding one would make the
 * others spin through their time slice on an oversubscribed machine (the
 * tests run 4 workers on 2 CPUs), whereas glibc's mutex is a single CAS
 * uncontended and sleeps on a futex otherwise. ThreadSanitizer models it.
 *
 * Wakers are cloned and dropped under the lock but never woken there: events
 * move them into a wake_batch and wake after unlocking (32 at a time; a
 * longer list is served in rounds, re-taking the lock between them), so a
 * wake never runs with a primitive's lock held.
 *
 * ORDERING. The lock orders everything but sp_notify's `gen` (see there): a
 * waker is woken after the unlock that published the new state, and the poll
 * it causes takes the lock before looking.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spindle.h"
#include "internal.h"
#include "trace_events.h"

/* ---- waiter lists ------------------------------------------------------------ */

static void wl_push(sp_waitlist *l, sp_waiter *w)
{
	w->next = NULL;
	w->prev = l->tail;
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
}

static void wl_unlink(sp_waitlist *l, sp_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	w->next = NULL;
	w->prev = NULL;
}

static sp_waiter *wl_pop(sp_waitlist *l)
{
	sp_waiter *w = l->head;
	if (w)
		wl_unlink(l, w);
	return w;
}

static void waiter_init(sp_waiter *w, size_t want)
{
	memset(w, 0, sizeof(*w));
	w->want = want;
	w->state = SP_WAITER_IDLE;
}

/* Lock held, called by the owner's poll: queue the node with the context's
 * waker. */
static void waiter_enqueue(sp_waitlist *l, sp_waiter *w, sp_context *cx)
{
	sp__waker_store_as(&w->waker, cx, SP_HOLD_SYNC);
	w->state = SP_WAITER_QUEUED;
	w->armed = 1;
	wl_push(l, w);
}

/* Lock held, by the owner: unlink a QUEUED node and take its waker back (to
 * drop after unlocking). */
static sp_waker waiter_unlink(sp_waitlist *l, sp_waiter *w)
{
	wl_unlink(l, w);
	sp_waker k = w->waker;
	w->waker = (sp_waker){0};
	w->state = SP_WAITER_IDLE;
	return k;
}

/* Lock held, by the owner's poll: the future completes. */
static void waiter_done(sp_waiter *w)
{
	w->state = SP_WAITER_DONE;
	w->armed = 0;
}

#define WAKE_BATCH 32

/* Wakers taken out of nodes under a lock, to wake after it is released. */
struct wake_batch {
	unsigned n;		/* wakers in w */
	sp_waker w[WAKE_BATCH]; /* each owned by the batch */
};

static inline bool batch_full(const struct wake_batch *b)
{
	return b->n == WAKE_BATCH;
}

/* Lock held, node already unlinked: move its waker into the batch and give
 * the node its new state. The node is not touched again by the waker side. */
static void batch_take(struct wake_batch *b, sp_waiter *w, int state)
{
	w->state = state;
	b->w[b->n++] = w->waker;
	w->waker = (sp_waker){0};
}

/* Lock not held. */
static void batch_wake(struct wake_batch *b)
{
	for (unsigned i = 0; i < b->n; i++)
		sp_waker_wake(&b->w[i]);
	b->n = 0;
}

static int lock_init(pthread_mutex_t *l)
{
	int rc = pthread_mutex_init(l, NULL);
	return rc ? -rc : 0;
}

/* ---- bounded mpsc channel ---------------------------------------------------- */

static unsigned char *chan_slot(sp_mpsc *ch, size_t i)
{
	return ch->buf + ((ch->head + i) % ch->capacity) * ch->item_size;
}

static size_t chan_free(const sp_mpsc *ch)
{
	return ch->capacity - ch->len - ch->reserved;
}

/* Lock held, a slot free or reserved by the caller: append the item and
 * announce it to one waiting receiver. */
static void chan_push(sp_mpsc *ch, const void *item, struct wake_batch *b)
{
	memcpy(chan_slot(ch, ch->len), item, ch->item_size);
	ch->len++;
	sp_waiter *r = wl_pop(&ch->recv_waiters);
	if (r)
		batch_take(b, r, SP_WAITER_NOTIFIED);
}

/* Lock held, len > 0: remove the oldest item into dst. */
static void chan_take(sp_mpsc *ch, void *dst)
{
	memcpy(dst, chan_slot(ch, 0), ch->item_size);
	ch->head = (ch->head + 1) % ch->capacity;
	ch->len--;
}

/* Lock held: reserve every free slot for the oldest waiting senders, then
 * unlock and wake what the batch holds. */
static void chan_grant_unlock(sp_mpsc *ch, struct wake_batch *b)
{
	for (;;) {
		while (!batch_full(b) && !ch->closed && chan_free(ch) > 0 &&
		       ch->send_waiters.head) {
			ch->reserved++;
			batch_take(b, wl_pop(&ch->send_waiters), SP_WAITER_GRANTED);
		}
		if (!batch_full(b))
			break;
		pthread_mutex_unlock(&ch->lock);
		batch_wake(b);
		pthread_mutex_lock(&ch->lock);
	}
	pthread_mutex_unlock(&ch->lock);
	batch_wake(b);
}

/* Lock held, closed set: wake every waiting sender and receiver (they see
 * `closed` at their next poll), then unlock. Nobody queues once closed is
 * set, so the rounds end. */
static void chan_close_unlock(sp_mpsc *ch)
{
	struct wake_batch b = {0};
	for (;;) {
		sp_waiter *w;
		while (!batch_full(&b) &&
		       ((w = wl_pop(&ch->send_waiters)) || (w = wl_pop(&ch->recv_waiters))))
			batch_take(&b, w, SP_WAITER_NOTIFIED);
		if (!batch_full(&b))
			break;
		pthread_mutex_unlock(&ch->lock);
		batch_wake(&b);
		pthread_mutex_lock(&ch->lock);
	}
	pthread_mutex_unlock(&ch->lock);
	batch_wake(&b);
}

int sp_mpsc_init(sp_mpsc *ch, size_t item_size, size_t capacity)
{
	if (!ch || !item_size || !capacity || capacity > SIZE_MAX / item_size)
		return SP_EINVAL;
	memset(ch, 0, sizeof(*ch));
	ch->buf = calloc(capacity, item_size);
	if (!ch->buf)
		return SP_ENOMEM;
	int rc = lock_init(&ch->lock);
	if (rc) {
		free(ch->buf);
		ch->buf = NULL;
		return rc;
	}
	ch->item_size = item_size;
	ch->capacity = capacity;
	ch->senders = 1;
	return 0;
}

void sp_mpsc_destroy(sp_mpsc *ch)
{
	if (ch->send_waiters.head || ch->recv_waiters.head || ch->reserved)
		sp__panic("mpsc channel destroyed while futures wait on it");
	pthread_mutex_destroy(&ch->lock);
	free(ch->buf);
	ch->buf = NULL;
}

int sp_mpsc_try_send(sp_mpsc *ch, const void *item)
{
	struct wake_batch b = {0};
	pthread_mutex_lock(&ch->lock);
	if (ch->closed) {
		pthread_mutex_unlock(&ch->lock);
		return SP_EPIPE;
	}
	if (ch->send_waiters.head || chan_free(ch) == 0) {
		pthread_mutex_unlock(&ch->lock);
		return SP_EAGAIN;
	}
	chan_push(ch, item, &b);
	pthread_mutex_unlock(&ch->lock);
	batch_wake(&b);
	return 0;
}

int sp_mpsc_try_recv(sp_mpsc *ch, void *dst)
{
	struct wake_batch b = {0};
	pthread_mutex_lock(&ch->lock);
	if (ch->len) {
		chan_take(ch, dst);
		chan_grant_unlock(ch, &b);
		return 0;
	}
	int rc = ch->closed ? SP_EPIPE : SP_EAGAIN;
	pthread_mutex_unlock(&ch->lock);
	return rc;
}

void sp_mpsc_close(sp_mpsc *ch)
{
	pthread_mutex_lock(&ch->lock);
	ch->closed = 1;
	chan_close_unlock(ch);
}

void sp_mpsc_sender_clone(sp_mpsc *ch)
{
	pthread_mutex_lock(&ch->lock);
	ch->senders++;
	pthread_mutex_unlock(&ch->lock);
}

void sp_mpsc_sender_release(sp_mpsc *ch)
{
	pthread_mutex_lock(&ch->lock);
	if (ch->senders == 0) {
		pthread_mutex_unlock(&ch->lock);
		sp__panic("mpsc sender released more times than it was cloned");
	}
	if (--ch->senders) {
		pthread_mutex_unlock(&ch->lock);
		return;
	}
	ch->closed = 1;
	chan_close_unlock(ch);
}

void sp_mpsc_receiver_release(sp_mpsc *ch)
{
	pthread_mutex_lock(&ch->lock);
	ch->rx_gone = 1;
	ch->closed = 1;
	ch->len = 0; /* discarded */
	ch->head = 0;
	chan_close_unlock(ch);
}

size_t sp_mpsc_len(sp_mpsc *ch)
{
	pthread_mutex_lock(&ch->lock);
	size_t n = ch->len;
	pthread_mutex_unlock(&ch->lock);
	return n;
}

static sp_poll send_poll(sp_future *f, sp_context *cx)
{
	sp_mpsc_send *s = (sp_mpsc_send *)f;
	sp_mpsc *ch = s->ch;
	struct wake_batch b = {0};
	if (!sp_coop_proceed(cx))
		return SP_PENDING;
	pthread_mutex_lock(&ch->lock);
	switch (s->w.state) {
	case SP_WAITER_QUEUED:
		sp__waker_store_as(&s->w.waker, cx, SP_HOLD_CHANNEL);
		pthread_mutex_unlock(&ch->lock);
		return SP_PENDING;
	case SP_WAITER_GRANTED:
		/* A slot is reserved for us: fill it (the free count is
		 * unchanged), unless the channel closed meanwhile. */
		ch->reserved--;
		if (ch->closed) {
			s->out = SP_EPIPE;
		} else {
			chan_push(ch, s->item, &b);
			s->out = 0;
		}
		break;
	case SP_WAITER_DONE:
		pthread_mutex_unlock(&ch->lock);
		sp__panic("mpsc send polled after it completed");
	default: /* IDLE, or NOTIFIED by close */
		if (ch->closed) {
			s->out = SP_EPIPE;
		} else if (!ch->send_waiters.head && chan_free(ch) > 0) {
			chan_push(ch, s->item, &b);
			s->out = 0;
		} else {
			waiter_enqueue(&ch->send_waiters, &s->w, cx);
			pthread_mutex_unlock(&ch->lock);
			return SP_PENDING;
		}
		break;
	}
	waiter_done(&s->w);
	pthread_mutex_unlock(&ch->lock);
	batch_wake(&b);
	return SP_READY;
}

static void send_drop(sp_future *f)
{
	sp_mpsc_send *s = (sp_mpsc_send *)f;
	sp_mpsc *ch = s->ch;
	sp_waker stale = {0};
	struct wake_batch b = {0};
	if (!s->w.armed)
		return; /* never queued, or completed */
	s->w.armed = 0;
	pthread_mutex_lock(&ch->lock);
	if (s->w.state == SP_WAITER_QUEUED) {
		/* Unlinking a waiting sender frees no slot: nothing to pass on. */
		stale = waiter_unlink(&ch->send_waiters, &s->w);
	} else if (s->w.state == SP_WAITER_GRANTED) {
		/* The slot reserved for us goes to the next waiting sender. */
		ch->reserved--;
		s->w.state = SP_WAITER_IDLE;
		chan_grant_unlock(ch, &b);
		return;
	}
	pthread_mutex_unlock(&ch->lock);
	sp_waker_drop(&stale);
}

void sp_mpsc_send_init(sp_mpsc_send *s, sp_mpsc *ch, const void *item)
{
	s->base = (sp_future){.poll = send_poll, .drop = send_drop, .name = "mpsc_send"};
	s->out = 0;
	s->ch = ch;
	s->item = item;
	waiter_init(&s->w, 0);
}

static sp_poll recv_poll(sp_future *f, sp_context *cx)
{
	sp_mpsc_recv *r = (sp_mpsc_recv *)f;
	sp_mpsc *ch = r->ch;
	sp_waker stale = {0};
	struct wake_batch b = {0};
	if (!sp_coop_proceed(cx))
		return SP_PENDING;
	pthread_mutex_lock(&ch->lock);
	if (r->w.state == SP_WAITER_DONE) {
		pthread_mutex_unlock(&ch->lock);
		sp__panic("mpsc recv polled after it completed");
	}
	if (ch->len) {
		if (r->w.state == SP_WAITER_QUEUED)
			stale = waiter_unlink(&ch->recv_waiters, &r->w);
		chan_take(ch, r->dst);
		r->out = 0;
		waiter_done(&r->w);
		chan_grant_unlock(ch, &b); /* the freed slot, to a waiting sender */
		sp_waker_drop(&stale);
		return SP_READY;
	}
	if (ch->closed) {
		if (r->w.state == SP_WAITER_QUEUED)
			stale = waiter_unlink(&ch->recv_waiters, &r->w);
		r->out = SP_EPIPE;
		waiter_done(&r->w);
		pthread_mutex_unlock(&ch->lock);
		sp_waker_drop(&stale);
		return SP_READY;
	}
	if (r->w.state == SP_WAITER_QUEUED)
		sp__waker_store_as(&r->w.waker, cx, SP_HOLD_CHANNEL);
	else
		waiter_enqueue(&ch->recv_waiters, &r->w, cx);
	pthread_mutex_unlock(&ch->lock);
	return SP_PENDING;
}

static void recv_drop(sp_future *f)
{
	sp_mpsc_recv *r = (sp_mpsc_recv *)f;
	sp_mpsc *ch = r->ch;
	sp_waker stale = {0};
	struct wake_batch b = {0};
	if (!r->w.armed)
		return;
	r->w.armed = 0;
	pthread_mutex_lock(&ch->lock);
	if (r->w.state == SP_WAITER_QUEUED) {
		stale = waiter_unlink(&ch->recv_waiters, &r->w);
	} else if (r->w.state == SP_WAITER_NOTIFIED && ch->len) {
		/* We were told of an item we will not take: tell the next. */
		sp_waiter *next = wl_pop(&ch->recv_waiters);
		if (next)
			batch_take(&b, next, SP_WAITER_NOTIFIED);
	}
	r->w.state = SP_WAITER_IDLE;
	pthread_mutex_unlock(&ch->lock);
	batch_wake(&b);
	sp_waker_drop(&stale);
}

void sp_mpsc_recv_init(sp_mpsc_recv *r, sp_mpsc *ch, void *dst)
{
	r->base = (sp_future){.poll = recv_poll, .drop = recv_drop, .name = "mpsc_recv"};
	r->out = 0;
	r->ch = ch;
	r->dst = dst;
	waiter_init(&r->w, 0);
}

/* ---- notify ------------------------------------------------------------------ */

/*
 * `gen` counts sp_notify_waiters calls. It is written only under the lock
 * (so its loads there need no ordering); sp_notified_init reads it without
 * the lock to snapshot it, and the first poll compares under the lock: a
 * notify_waiters that ran between the init and the poll completes the
 * future, as tokio's Notified (created, then enabled) does. Queued nodes
 * record the gen at enqueue; the list is in gen order, and a notify_waiters
 * that made gen G wakes exactly the nodes with gen < G, even when it has to
 * release the lock between rounds of wakes and new waiters queue meanwhile.
 */

int sp_notify_init(sp_notify *n)
{
	memset(n, 0, sizeof(*n));
	atomic_init(&n->gen, 0);
	return lock_init(&n->lock);
}

void sp_notify_destroy(sp_notify *n)
{
	if (n->waiters.head)
		sp__panic("notify destroyed while futures wait on it");
	pthread_mutex_destroy(&n->lock);
}

/* Lock held: hand one notify_one notification to the oldest waiter, or store
 * the permit. */
static void notify_one_locked(sp_notify *n, struct wake_batch *b)
{
	sp_waiter *w = wl_pop(&n->waiters);
	if (w)
		batch_take(b, w, SP_WAITER_GRANTED);
	else
		n->permit = 1;
}

void sp_notify_one(sp_notify *n)
{
	struct wake_batch b = {0};
	pthread_mutex_lock(&n->lock);
	notify_one_locked(n, &b);
	pthread_mutex_unlock(&n->lock);
	batch_wake(&b);
}

void sp_notify_waiters(sp_notify *n)
{
	struct wake_batch b = {0};
	pthread_mutex_lock(&n->lock);
	/* ordering: relaxed load, we hold the lock that serializes writers;
	 * release store pairs with the acquire load in sp_notified_init. */
	uint64_t gen = atomic_load_explicit(&n->gen, memory_order_relaxed) + 1;
	atomic_store_explicit(&n->gen, gen, memory_order_release);
	for (;;) {
		while (!batch_full(&b) && n->waiters.head && n->waiters.head->gen < gen)
			batch_take(&b, wl_pop(&n->waiters), SP_WAITER_NOTIFIED);
		if (!batch_full(&b))
			break;
		pthread_mutex_unlock(&n->lock);
		batch_wake(&b);
		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	batch_wake(&b);
}

static sp_poll notified_poll(sp_future *f, sp_context *cx)
{
	sp_notified *nf = (sp_notified *)f;
	sp_notify *n = nf->n;
	pthread_mutex_lock(&n->lock);
	/* ordering: relaxed, under the lock that serializes the writers. */
	uint64_t gen = atomic_load_explicit(&n->gen, memory_order_relaxed);
	switch (nf->w.state) {
	case SP_WAITER_QUEUED:
		sp__waker_store_as(&nf->w.waker, cx, SP_HOLD_SYNC);
		pthread_mutex_unlock(&n->lock);
		return SP_PENDING;
	case SP_WAITER_NOTIFIED:
	case SP_WAITER_GRANTED:
		break;
	case SP_WAITER_DONE:
		pthread_mutex_unlock(&n->lock);
		sp__panic("notified polled after it completed");
	default: /* IDLE: the first poll */
		if (gen != nf->gen)
			break; /* a notify_waiters since init */
		if (n->permit) {
			n->permit = 0;
			break;
		}
		nf->w.gen = gen;
		waiter_enqueue(&n->waiters, &nf->w, cx);
		pthread_mutex_unlock(&n->lock);
		return SP_PENDING;
	}
	waiter_done(&nf->w);
	pthread_mutex_unlock(&n->lock);
	return SP_READY;
}

static void notified_drop(sp_future *f)
{
	sp_notified *nf = (sp_notified *)f;
	sp_notify *n = nf->n;
	sp_waker stale = {0};
	struct wake_batch b = {0};
	if (!nf->w.armed)
		return;
	nf->w.armed = 0;
	pthread_mutex_lock(&n->lock);
	if (nf->w.state == SP_WAITER_QUEUED)
		stale = waiter_unlink(&n->waiters, &nf->w);
	else if (nf->w.state == SP_WAITER_GRANTED)
		notify_one_locked(n, &b); /* a notify_one we did not observe */
	nf->w.state = SP_WAITER_IDLE;
	pthread_mutex_unlock(&n->lock);
	batch_wake(&b);
	sp_waker_drop(&stale);
}

void sp_notified_init(sp_notified *f, sp_notify *n)
{
	f->base = (sp_future){.poll = notified_poll, .drop = notified_drop, .name = "notified"};
	f->n = n;
	/* ordering: acquire pairs with the release store in notify_waiters. */
	f->gen = atomic_load_explicit(&n->gen, memory_order_acquire);
	waiter_init(&f->w, 0);
}

/* ---- mutex ------------------------------------------------------------------- */

int sp_mutex_init(sp_mutex *m)
{
	memset(m, 0, sizeof(*m));
	return lock_init(&m->lock);
}

void sp_mutex_destroy(sp_mutex *m)
{
	if (m->waiters.head)
		sp__panic("mutex destroyed while futures wait on it");
	pthread_mutex_destroy(&m->lock);
}

int sp_mutex_try_lock(sp_mutex *m)
{
	pthread_mutex_lock(&m->lock);
	int rc = SP_EAGAIN;
	if (!m->locked) {
		m->locked = 1;
		rc = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Lock held, the mutex held by the caller: hand it to the oldest waiter, or
 * free it; unlock and wake. */
static void mutex_release_unlock(sp_mutex *m)
{
	struct wake_batch b = {0};
	sp_waiter *w = wl_pop(&m->waiters);
	if (w)
		batch_take(&b, w, SP_WAITER_GRANTED); /* locked stays set: it is w's */
	else
		m->locked = 0;
	pthread_mutex_unlock(&m->lock);
	batch_wake(&b);
}

void sp_mutex_unlock(sp_mutex *m)
{
	pthread_mutex_lock(&m->lock);
	if (!m->locked) {
		pthread_mutex_unlock(&m->lock);
		sp__panic("sp_mutex_unlock of a mutex that is not locked");
	}
	mutex_release_unlock(m);
}

static sp_poll lock_poll(sp_future *f, sp_context *cx)
{
	sp_mutex_lock *l = (sp_mutex_lock *)f;
	sp_mutex *m = l->m;
	if (!sp_coop_proceed(cx))
		return SP_PENDING;
	pthread_mutex_lock(&m->lock);
	switch (l->w.state) {
	case SP_WAITER_QUEUED:
		sp__waker_store_as(&l->w.waker, cx, SP_HOLD_SYNC);
		pthread_mutex_unlock(&m->lock);
		return SP_PENDING;
	case SP_WAITER_GRANTED:
		break; /* handed to us by an unlock */
	case SP_WAITER_DONE:
		pthread_mutex_unlock(&m->lock);
		sp__panic("mutex lock polled after it completed");
	default:
		if (m->locked) {
			waiter_enqueue(&m->waiters, &l->w, cx);
			pthread_mutex_unlock(&m->lock);
			return SP_PENDING;
		}
		m->locked = 1; /* not locked implies nobody waits: not barging */
		break;
	}
	waiter_done(&l->w);
	pthread_mutex_unlock(&m->lock);
	return SP_READY;
}

static void lock_drop(sp_future *f)
{
	sp_mutex_lock *l = (sp_mutex_lock *)f;
	sp_mutex *m = l->m;
	sp_waker stale = {0};
	if (!l->w.armed)
		return;
	l->w.armed = 0;
	pthread_mutex_lock(&m->lock);
	if (l->w.state == SP_WAITER_GRANTED) {
		/* Handed the lock but never saw it: hand it on. */
		l->w.state = SP_WAITER_IDLE;
		mutex_release_unlock(m);
		return;
	}
	if (l->w.state == SP_WAITER_QUEUED)
		stale = waiter_unlink(&m->waiters, &l->w);
	pthread_mutex_unlock(&m->lock);
	sp_waker_drop(&stale);
}

void sp_mutex_lock_init(sp_mutex_lock *l, sp_mutex *m)
{
	l->base = (sp_future){.poll = lock_poll, .drop = lock_drop, .name = "mutex_lock"};
	l->m = m;
	waiter_init(&l->w, 0);
}

/* ---- semaphore --------------------------------------------------------------- */

int sp_semaphore_init(sp_semaphore *s, size_t permits)
{
	memset(s, 0, sizeof(*s));
	s->permits = permits;
	return lock_init(&s->lock);
}

void sp_semaphore_destroy(sp_semaphore *s)
{
	if (s->waiters.head)
		sp__panic("semaphore destroyed while futures wait on it");
	pthread_mutex_destroy(&s->lock);
}

/* Lock held: serve the waiters in order while the head fits, then unlock and
 * wake. Restores "waiters non-empty => permits < head->want". */
static void sem_grant_unlock(sp_semaphore *s)
{
	struct wake_batch b = {0};
	for (;;) {
		sp_waiter *w;
		while (!batch_full(&b) && (w = s->waiters.head) && s->permits >= w->want) {
			s->permits -= w->want;
			batch_take(&b, wl_pop(&s->waiters), SP_WAITER_GRANTED);
		}
		if (!batch_full(&b))
			break;
		pthread_mutex_unlock(&s->lock);
		batch_wake(&b);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	batch_wake(&b);
}

int sp_semaphore_try_acquire(sp_semaphore *s, size_t n)
{
	pthread_mutex_lock(&s->lock);
	int rc = SP_EAGAIN;
	if (!s->waiters.head && s->permits >= n) {
		s->permits -= n;
		rc = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void sem_add_locked(sp_semaphore *s, size_t n)
{
	if (s->permits > SIZE_MAX - n) {
		pthread_mutex_unlock(&s->lock);
		sp__panic("semaphore permit count overflow");
	}
	s->permits += n;
}

void sp_semaphore_release(sp_semaphore *s, size_t n)
{
	pthread_mutex_lock(&s->lock);
	sem_add_locked(s, n);
	sem_grant_unlock(s);
}

size_t sp_semaphore_available(sp_semaphore *s)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->permits;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static sp_poll acquire_poll(sp_future *f, sp_context *cx)
{
	sp_semaphore_acquire *a = (sp_semaphore_acquire *)f;
	sp_semaphore *s = a->s;
	if (!sp_coop_proceed(cx))
		return SP_PENDING;
	pthread_mutex_lock(&s->lock);
	switch (a->w.state) {
	case SP_WAITER_QUEUED:
		sp__waker_store_as(&a->w.waker, cx, SP_HOLD_SYNC);
		pthread_mutex_unlock(&s->lock);
		return SP_PENDING;
	case SP_WAITER_GRANTED:
		break; /* the permits were set aside for us */
	case SP_WAITER_DONE:
		pthread_mutex_unlock(&s->lock);
		sp__panic("semaphore acquire polled after it completed");
	default:
		if (s->waiters.head || s->permits < a->w.want) {
			waiter_enqueue(&s->waiters, &a->w, cx);
			pthread_mutex_unlock(&s->lock);
			return SP_PENDING;
		}
		s->permits -= a->w.want;
		break;
	}
	waiter_done(&a->w);
	pthread_mutex_unlock(&s->lock);
	return SP_READY;
}

static void acquire_drop(sp_future *f)
{
	sp_semaphore_acquire *a = (sp_semaphore_acquire *)f;
	sp_semaphore *s = a->s;
	if (!a->w.armed)
		return;
	a->w.armed = 0;
	pthread_mutex_lock(&s->lock);
	if (a->w.state == SP_WAITER_QUEUED) {
		/* If we were the head, the new head may fit now. */
		sp_waker stale = waiter_unlink(&s->waiters, &a->w);
		sem_grant_unlock(s);
		sp_waker_drop(&stale);
		return;
	}
	if (a->w.state == SP_WAITER_GRANTED) {
		/* Granted but never observed: the permits go back. */
		a->w.state = SP_WAITER_IDLE;
		sem_add_locked(s, a->w.want);
		sem_grant_unlock(s);
		return;
	}
	pthread_mutex_unlock(&s->lock);
}

void sp_semaphore_acquire_init(sp_semaphore_acquire *a, sp_semaphore *s, size_t n)
{
	a->base = (sp_future){
		.poll = acquire_poll, .drop = acquire_drop, .name = "semaphore_acquire"};
	a->s = s;
	waiter_init(&a->w, n);
}
