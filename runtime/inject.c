/*
 * inject.c - the global injection queue: spawns and wakes from outside the
 * workers, and local-queue overflow.
 *
 * Two rings of task pointers (lanes: tasks already started or queued, and
 * tasks never run; internal.h says how pops choose) under one mutex. They
 * grow by doubling and never shrink, so after warm-up pushes do not allocate (the intrusive list Tokio
 * uses would cost 8 bytes in every task header; ours is full at 128). `nlen`
 * mirrors `len` so that workers can skip the lock when the queue is empty.
 * Once closed (shutdown), pushes fail and the caller drops its reference.
 */
#include <stdlib.h>

#include "internal.h"

#define INJECT_INITIAL_CAP 1024 /* thin air: a burst of remote spawns */

int sp__inject_init(sp__inject *q)
{
	for (int l = 0; l < 2; l++) {
		q->lane[l].buf = malloc(INJECT_INITIAL_CAP * sizeof(*q->lane[l].buf));
		if (!q->lane[l].buf) {
			free(q->lane[0].buf);
			return SP_ENOMEM;
		}
		q->lane[l].cap = INJECT_INITIAL_CAP;
		q->lane[l].head = q->lane[l].len = 0;
	}
	q->batches = 0;
	q->closed = false;
	atomic_init(&q->nlen, 0);
	/* Adaptive: spin briefly before sleeping. The spawner holds this lock
	 * for every remote spawn; a default mutex turned brief contention into
	 * futex sleeps and wake-ups (a lock convoy). */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&q->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return 0;
}

void sp__inject_destroy(sp__inject *q)
{
	pthread_mutex_destroy(&q->lock);
	for (int l = 0; l < 2; l++) {
		free(q->lane[l].buf);
		q->lane[l].buf = NULL;
	}
}

static bool grow(sp__inject_lane *q, size_t need)
{
	size_t cap = q->cap;
	while (cap < need)
		cap *= 2;
	if (cap == q->cap)
		return true;
	sp__task **nb = malloc(cap * sizeof(*nb));
	if (!nb)
		return false;
	for (size_t i = 0; i < q->len; i++)
		nb[i] = q->buf[(q->head + i) & (q->cap - 1)];
	free(q->buf);
	q->buf = nb;
	q->cap = cap;
	q->head = 0;
	return true;
}

static size_t total(const sp__inject *q)
{
	return q->lane[0].len + q->lane[1].len;
}

bool sp__inject_push_batch(sp__inject *q, sp__task **tasks, size_t n, int lane)
{
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return false;
	}
	sp__inject_lane *l = &q->lane[lane == SP__LANE_NEW];
	if (!grow(l, l->len + n))
		sp__panic("injection queue could not grow (out of memory)");
	for (size_t i = 0; i < n; i++)
		l->buf[(l->head + l->len + i) & (l->cap - 1)] = tasks[i];
	l->len += n;
	/* ordering: release, see sp__inject_is_empty. */
	atomic_store_explicit(&q->nlen, total(q), memory_order_release);
	pthread_mutex_unlock(&q->lock);
	return true;
}

static size_t take(sp__inject_lane *l, sp__task **out, size_t max)
{
	size_t n = l->len < max ? l->len : max;
	for (size_t i = 0; i < n; i++)
		out[i] = l->buf[(l->head + i) & (l->cap - 1)];
	l->head = (l->head + n) & (l->cap - 1);
	l->len -= n;
	return n;
}

size_t sp__inject_pop_n(sp__inject *q, sp__task **out, size_t max, size_t max_new)
{
	if (sp__inject_is_empty(q))
		return 0;
	if (max_new > max)
		max_new = max;
	pthread_mutex_lock(&q->lock);
	size_t n;
	if (++q->batches % SP__INJECT_NEW_EVERY == 0) {
		n = take(&q->lane[SP__LANE_NEW], out, max_new);
		n += take(&q->lane[SP__LANE_WOKEN], out + n, max - n);
	} else {
		n = take(&q->lane[SP__LANE_WOKEN], out, max);
		size_t room = max - n < max_new ? max - n : max_new;
		n += take(&q->lane[SP__LANE_NEW], out + n, room);
	}
	atomic_store_explicit(&q->nlen, total(q), memory_order_release);
	pthread_mutex_unlock(&q->lock);
	return n;
}

sp__task *sp__inject_pop(sp__inject *q)
{
	sp__task *t;
	return sp__inject_pop_n(q, &t, 1, 1) ? t : NULL;
}

void sp__inject_close(sp__inject *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_mutex_unlock(&q->lock);
}
