/*
 * spindle/sync.h - synchronization primitives and combinators (included by
 * spindle.h).
 *
 *   sp_mpsc        bounded multi-producer channel of fixed-size items
 *   sp_notify      wake one task (with a stored permit) or every waiting task
 *   sp_mutex       async mutex, FIFO fair, unlock hands off to the next waiter
 *   sp_semaphore   async counting semaphore, FIFO fair
 *   sp_join        await N futures concurrently, ready when all are
 *   sp_select      await N futures, ready when the first is; the rest dropped
 *
 * Everything here runs on wakers alone (no reactor, no timers) and allocates
 * nothing per operation: a waiting future embeds its waiter node (sp_waiter)
 * and links it into an intrusive list of the primitive while it waits. The
 * only allocation is a channel's buffer, at sp_mpsc_init.
 *
 * FUTURES. Each waiting future is initialised with its _init function,
 * awaited with SP_AWAIT (or polled by hand) and may be moved until its first
 * poll, never after (its node may be linked). Results, where there are any,
 * are in `out` (0 or a negative errno), as for sp_oneshot_recv.
 *
 * CANCELLATION. Every waiting future is cancel-safe: dropping it (directly,
 * through an aborted task, or as a losing branch of sp_select) unlinks its
 * node. An operation has happened if and only if its future returned
 * SP_READY with out == 0: a dropped send did not send, a dropped recv did not
 * remove an item. A lock, permits, a channel slot or a notify_one
 * notification that was handed to a waiter which is dropped before it
 * observed them passes on to the next waiter (or back to the primitive), so
 * nothing is leaked.
 *
 * BUDGET. The recv, send, lock and acquire futures spend one unit of the
 * task's cooperative budget (sp_coop_proceed) at every poll, ready or not, so
 * a task looping over an always-ready channel still yields to the others.
 *
 * LIFETIME. A primitive must outlive every future initialised on it; its
 * _destroy function aborts ("spindle: invariant broken: ...") if a future is
 * still queued on it.
 */
#ifndef SPINDLE_SYNC_H
#define SPINDLE_SYNC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "spindle.h"

/* ---- waiter nodes (private) -------------------------------------------------- */

/* The life of a waiter node; every change after SP_WAITER_IDLE is made under
 * the lock of the primitive the node is queued on. */
enum {
	SP_WAITER_IDLE = 0, /* not queued: not polled yet, or polling again */
	SP_WAITER_QUEUED,   /* linked in the primitive's list, waker stored */
	SP_WAITER_NOTIFIED, /* unlinked and woken; holds nothing */
	SP_WAITER_GRANTED,  /* unlinked and woken; holds a resource (the lock,
			     * permits, a channel slot, a notify_one) */
	SP_WAITER_DONE,	    /* the future returned SP_READY */
};

/* One waiting future's node, embedded in the future. */
typedef struct sp_waiter {
	struct sp_waiter *next; /* list link, under the primitive's lock */
	struct sp_waiter *prev; /* list link, under the primitive's lock */
	sp_waker waker;		/* under the lock; moved out by whoever wakes it */
	size_t want;		/* sp_semaphore: permits requested (constant) */
	uint64_t gen;		/* sp_notify: notify_waiters calls at enqueue */
	int state;		/* SP_WAITER_*, under the lock */
	int armed;		/* owner only: the node was ever queued and the
				 * future is not done, so drop takes the lock */
} sp_waiter;

/* A FIFO of waiter nodes: push at the tail, pop at the head, unlink anywhere. */
typedef struct sp_waitlist {
	sp_waiter *head; /* oldest waiter, NULL when empty */
	sp_waiter *tail; /* newest waiter, NULL when empty */
} sp_waitlist;

/* ---- bounded mpsc channel ---------------------------------------------------- */

/*
 * A bounded channel of fixed-size items (copied in and out with memcpy).
 * Senders wait while the channel is full (backpressure), in FIFO order: a
 * waiting sender is handed the next free slot before any later send may use
 * it. The receiver waits while it is empty. The channel starts with one
 * sender handle; sp_mpsc_sender_clone adds one, and when the last is released
 * the channel closes. Closed: sends (waiting or later) fail with SP_EPIPE; the
 * receiver gets the items still buffered, then SP_EPIPE. Receiver released:
 * buffered items are discarded and sends fail with SP_EPIPE.
 *
 * Any number of recv futures may wait at once (each item goes to exactly one),
 * though the intended use is a single consumer.
 */
typedef struct sp_mpsc {
	pthread_mutex_t lock;	  /* guards every field below */
	unsigned char *buf;	  /* capacity * item_size bytes (constant) */
	size_t item_size;	  /* bytes per item (constant) */
	size_t capacity;	  /* slots (constant) */
	size_t head;		  /* slot of the oldest buffered item */
	size_t len;		  /* items buffered */
	size_t reserved;	  /* slots granted to waiting senders that have
				   * not filled them yet: len + reserved <= capacity */
	size_t senders;		  /* live sender handles; 0 closes */
	int closed;		  /* no more sends; recv drains, then SP_EPIPE */
	int rx_gone;		  /* the receiver was released */
	sp_waitlist send_waiters; /* waiting senders, FIFO; non-empty only while
				   * len + reserved == capacity */
	sp_waitlist recv_waiters; /* waiting receivers; non-empty only while len
				   * == 0 or a woken receiver has yet to poll */
} sp_mpsc;

/* 0, SP_EINVAL (item_size or capacity 0, or too large), SP_ENOMEM, or the
 * negative pthread_mutex_init error. */
int sp_mpsc_init(sp_mpsc *ch, size_t item_size, size_t capacity);
/* Free the buffer. No future may refer to the channel any more. */
void sp_mpsc_destroy(sp_mpsc *ch);

/* Copy *item in now: 0, SP_EAGAIN (full, or senders are waiting: they come
 * first) or SP_EPIPE (closed). */
int sp_mpsc_try_send(sp_mpsc *ch, const void *item);
/* Copy the oldest item to *dst: 0, SP_EAGAIN (empty) or SP_EPIPE (closed and
 * drained). */
int sp_mpsc_try_recv(sp_mpsc *ch, void *dst);

/* Close the sending side: wakes every waiting sender (SP_EPIPE) and receiver. */
void sp_mpsc_close(sp_mpsc *ch);
/* One more sender handle. */
void sp_mpsc_sender_clone(sp_mpsc *ch);
/* Release a sender handle; releasing the last one closes the channel. */
void sp_mpsc_sender_release(sp_mpsc *ch);
/* The receiver goes away: discard the buffered items, close, and fail every
 * waiting and later send with SP_EPIPE. */
void sp_mpsc_receiver_release(sp_mpsc *ch);
/* Items buffered now (a snapshot). */
size_t sp_mpsc_len(sp_mpsc *ch);

/* Send *item: out = 0 once it is in the channel, SP_EPIPE if the channel is
 * or becomes closed first. *item must stay valid until the future is ready or
 * dropped; it is copied at the poll that completes. */
typedef struct sp_mpsc_send {
	sp_future base;
	int out;	  /* 0 or SP_EPIPE */
	sp_mpsc *ch;	  /* private */
	const void *item; /* private: the caller's item */
	sp_waiter w;	  /* private */
} sp_mpsc_send;
void sp_mpsc_send_init(sp_mpsc_send *s, sp_mpsc *ch, const void *item);

/* Receive the oldest item into *dst: out = 0, or SP_EPIPE once the channel is
 * closed and drained. */
typedef struct sp_mpsc_recv {
	sp_future base;
	int out;     /* 0 or SP_EPIPE */
	sp_mpsc *ch; /* private */
	void *dst;   /* private: item_size bytes */
	sp_waiter w; /* private */
} sp_mpsc_recv;
void sp_mpsc_recv_init(sp_mpsc_recv *r, sp_mpsc *ch, void *dst);

/* ---- notify ------------------------------------------------------------------ */

/*
 * Like tokio::sync::Notify. sp_notify_one wakes the oldest waiting
 * sp_notified, or, if none waits, stores one permit (at most one) that the
 * next sp_notified consumes at once. sp_notify_waiters wakes every
 * sp_notified that is waiting or was initialised before the call, and stores
 * no permit. A notify_one notification given to a waiter that is dropped
 * before observing it passes to the next waiter (or becomes the permit).
 */
typedef struct sp_notify {
	pthread_mutex_t lock; /* guards permit and waiters */
	int permit;	      /* a notify_one found nobody waiting */
	_Atomic uint64_t gen; /* sp_notify_waiters calls; written under lock */
	sp_waitlist waiters;  /* waiting sp_notified futures, FIFO */
} sp_notify;

int sp_notify_init(sp_notify *n);
void sp_notify_destroy(sp_notify *n);
void sp_notify_one(sp_notify *n);
void sp_notify_waiters(sp_notify *n);

typedef struct sp_notified {
	sp_future base;
	sp_notify *n; /* private */
	uint64_t gen; /* private: notify_waiters calls seen at init */
	sp_waiter w;  /* private */
} sp_notified;
void sp_notified_init(sp_notified *f, sp_notify *n);

/* ---- mutex ------------------------------------------------------------------- */

/*
 * An async mutex (a lock held across awaits, unlike a pthread mutex). Lock
 * futures acquire it in FIFO order; sp_mutex_unlock hands it straight to the
 * oldest waiter, so a task that unlocks and locks again in a loop cannot
 * starve the others. Not tied to a task: any thread may unlock it.
 */
typedef struct sp_mutex {
	pthread_mutex_t lock; /* guards locked and waiters */
	int locked;	      /* held (or granted to a waiter); waiters
			       * non-empty implies locked */
	sp_waitlist waiters;  /* waiting sp_mutex_lock futures, FIFO */
} sp_mutex;

int sp_mutex_init(sp_mutex *m);
void sp_mutex_destroy(sp_mutex *m);
/* 0 (now held) or SP_EAGAIN. */
int sp_mutex_try_lock(sp_mutex *m);
/* Release a held mutex: the oldest waiter (if any) becomes the holder. */
void sp_mutex_unlock(sp_mutex *m);

/* Ready when the mutex is held by the awaiter, who must sp_mutex_unlock it. */
typedef struct sp_mutex_lock {
	sp_future base;
	sp_mutex *m; /* private */
	sp_waiter w; /* private */
} sp_mutex_lock;
void sp_mutex_lock_init(sp_mutex_lock *l, sp_mutex *m);

/* ---- semaphore --------------------------------------------------------------- */

/*
 * A counting semaphore. Acquires are served in FIFO order: a waiter that asks
 * for more permits than are free holds back later, smaller requests (no
 * starvation of large requests). A request for more permits than will ever be
 * released waits forever.
 */
typedef struct sp_semaphore {
	pthread_mutex_t lock; /* guards permits and waiters */
	size_t permits;	      /* free permits; when waiters is non-empty, fewer
			       * than the head waiter wants */
	sp_waitlist waiters;  /* waiting sp_semaphore_acquire futures, FIFO */
} sp_semaphore;

int sp_semaphore_init(sp_semaphore *s, size_t permits);
void sp_semaphore_destroy(sp_semaphore *s);
/* 0 (n permits taken) or SP_EAGAIN (too few free, or others are waiting). */
int sp_semaphore_try_acquire(sp_semaphore *s, size_t n);
/* Return n permits; waiters are served in order. */
void sp_semaphore_release(sp_semaphore *s, size_t n);
/* Free permits now (a snapshot). */
size_t sp_semaphore_available(sp_semaphore *s);

/* Ready when n permits are the awaiter's; give them back with
 * sp_semaphore_release. */
typedef struct sp_semaphore_acquire {
	sp_future base;
	sp_semaphore *s; /* private */
	sp_waiter w;	 /* private: w.want is n */
} sp_semaphore_acquire;
void sp_semaphore_acquire_init(sp_semaphore_acquire *a, sp_semaphore *s, size_t n);

/* ---- combinators ------------------------------------------------------------- */

/*
 * Await n futures concurrently (tokio::join!): every poll of the join polls
 * each child that is not ready yet (starting one further each time, so that
 * no child always goes first); the join is ready when all are. Each child is
 * dropped as soon as it is ready and its slot in futs set to NULL; its output
 * stays in the child. Dropping an unfinished join drops the unfinished
 * children. futs and the children are caller storage (usually the same frame)
 * that must outlive the join; children must be initialised and not polled
 * elsewhere. All children are woken through the join's waker.
 */
typedef struct sp_join {
	sp_future base;
	sp_future **futs; /* private: children; NULL once completed */
	size_t n;	  /* private: entries in futs */
	size_t pending;	  /* read-only: children not ready yet */
	size_t start;	  /* private: index polled first at the next poll */
} sp_join;
void sp_join_init(sp_join *j, sp_future **futs, size_t n);

/*
 * Await the first of n futures (tokio::select!, biased: children are polled in
 * index order, so the lowest index wins a tie). out = the winner's index
 * (SP_EINVAL when n is 0). As soon as a child is ready every child is
 * dropped: the losers (their work cancelled) and the winner (its output stays
 * in it). Dropping an unfinished select drops every child. futs stays as the
 * caller set it.
 */
typedef struct sp_select {
	sp_future base;
	int out;	  /* index of the winner, or SP_EINVAL */
	sp_future **futs; /* private: children */
	size_t n;	  /* private: entries in futs (at most INT_MAX) */
	int done;	  /* private: the children have been dropped */
} sp_select;
void sp_select_init(sp_select *s, sp_future **futs, size_t n);

#endif /* SPINDLE_SYNC_H */
