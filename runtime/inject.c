/*
 * inject.c - the global injection queue: spawns and wakes from outside the
 * workers, and local-queue overflow.
 *
 * A ring of task pointers under a mutex. It grows by doubling and never
 * shrinks, so after warm-up pushes do not allocate (the intrusive list Tokio
 * uses would cost 8 bytes in every task header; ours is full at 128). `nlen`
 * mirrors `len` so that workers can skip the lock when the queue is empty.
 * Once closed (shutdown), pushes fail and the caller drops its reference.
 */
#include <stdlib.h>

#include "internal.h"

#define INJECT_INITIAL_CAP 1024 /* thin air: a burst of remote spawns */

int sp__inject_init(sp__inject *q)
{
	q->buf = malloc(INJECT_INITIAL_CAP * sizeof(*q->buf));
	if (!q->buf)
		return SP_ENOMEM;
	q->cap = INJECT_INITIAL_CAP;
	q->head = q->len = 0;
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
	free(q->buf);
	q->buf = NULL;
}

static bool grow(sp__inject *q, size_t need)
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

bool sp__inject_push_batch(sp__inject *q, sp__task **tasks, size_t n)
{
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return false;
	}
	if (!grow(q, q->len + n))
		sp__panic("injection queue could not grow (out of memory)");
	for (size_t i = 0; i < n; i++)
		q->buf[(q->head + q->len + i) & (q->cap - 1)] = tasks[i];
	q->len += n;
	/* ordering: release, see sp__inject_is_empty. */
	atomic_store_explicit(&q->nlen, q->len, memory_order_release);
	pthread_mutex_unlock(&q->lock);
	return true;
}

size_t sp__inject_pop_n(sp__inject *q, sp__task **out, size_t max)
{
	if (sp__inject_is_empty(q))
		return 0;
	pthread_mutex_lock(&q->lock);
	size_t n = q->len < max ? q->len : max;
	for (size_t i = 0; i < n; i++)
		out[i] = q->buf[(q->head + i) & (q->cap - 1)];
	q->head = (q->head + n) & (q->cap - 1);
	q->len -= n;
	atomic_store_explicit(&q->nlen, q->len, memory_order_release);
	pthread_mutex_unlock(&q->lock);
	return n;
}

sp__task *sp__inject_pop(sp__inject *q)
{
	sp__task *t;
	return sp__inject_pop_n(q, &t, 1) ? t : NULL;
}

void sp__inject_close(sp__inject *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_mutex_unlock(&q->lock);
}
