/*
 * owned.c - the owned-task table: every live task of a runtime, for shutdown
 * (drop every remaining future exactly once) and for the tools (list every
 * task).
 *
 * SP__OWNED_SHARDS shards, each a growable array of task pointers with a
 * stack of free indices, under a spinlock. A task records its shard and index
 * at insert; removal clears its slot and pushes the index, touching no other
 * task (a linked list would write its neighbours' headers, cache lines owned
 * by other workers: measured at ~15% of ping_pong). A spawn on a worker uses
 * that worker's shard, so in the common case the shard's lines stay on one
 * core. The critical sections are a few stores: a spinlock (with sched_yield
 * after a short spin, for a preempted holder) costs half a pthread mutex.
 *
 * Growth reallocates under the lock; that is the only allocation, amortized
 * over the shard's high-water mark.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void sp__spin_lock(_Atomic bool *l)
{
	for (int spins = 0;; spins++) {
		/* ordering: acquire on taking the lock. */
		if (!atomic_exchange_explicit(l, true, memory_order_acquire))
			return;
		while (atomic_load_explicit(l, memory_order_relaxed)) {
			if (spins++ < 64)
				sp__cpu_relax();
			else
				sched_yield();
		}
	}
}

void sp__spin_unlock(_Atomic bool *l)
{
	atomic_store_explicit(l, false, memory_order_release);
}

static bool shard_grow(sp__owned_shard *sh)
{
	uint32_t cap = sh->cap ? sh->cap * 2 : 256;
	sp__task **slots = realloc(sh->slots, cap * sizeof(*slots));
	uint32_t *free_idx = realloc(sh->free_idx, cap * sizeof(*free_idx));
	if (slots)
		sh->slots = slots;
	if (free_idx)
		sh->free_idx = free_idx;
	if (!slots || !free_idx)
		return false;
	sh->cap = cap;
	return true;
}

/* A thread that is not a worker sticks to one shard, so that its spawns keep
 * that shard's lock and slots in its cache. */
static uint32_t foreign_shard(void)
{
	static _Atomic uint32_t next = 0;
	static _Thread_local uint32_t mine;
	if (!mine)
		mine = SP__OWNED_SHARDS / 2 + atomic_fetch_add(&next, 1) % (SP__OWNED_SHARDS / 2) + 1;
	return mine - 1;
}

int sp__owned_insert(sp_runtime *rt, sp__task *t)
{
	uint32_t s = sp__tls.worker && sp__tls.worker->rt == rt ? sp__tls.worker->index
								 : foreign_shard();
	s %= SP__OWNED_SHARDS;
	sp__owned_shard *sh = &rt->owned[s];
	sp__spin_lock(&sh->lock);
	if (sh->closed) {
		sp__spin_unlock(&sh->lock);
		return SP_ESHUTDOWN;
	}
	uint32_t i;
	if (sh->nfree) {
		i = sh->free_idx[--sh->nfree];
	} else {
		if (sh->len == sh->cap && !shard_grow(sh)) {
			sp__spin_unlock(&sh->lock);
			return SP_ENOMEM;
		}
		i = sh->len++;
	}
	sh->slots[i] = t;
	sh->count++;
	sp__spin_unlock(&sh->lock);
	t->owned_shard = s;
	t->owned_index = i;
	return 0;
}

void sp__owned_remove(sp__task *t)
{
	sp_runtime *rt = t->rt;
	sp__owned_shard *sh = &rt->owned[t->owned_shard];
	sp__spin_lock(&sh->lock);
	SP__ASSERT(sh->slots[t->owned_index] == t, "owned table slot holds its task");
	sh->slots[t->owned_index] = NULL;
	sh->free_idx[sh->nfree++] = t->owned_index;
	sh->count--;
	/* The unlock is our last access to rt: sp_runtime_free may free it as
	 * soon as it sees the count drop. */
	sp__spin_unlock(&sh->lock);
	sp__task_ref_dec(t); /* the owned reference */
}

void sp__owned_close(sp_runtime *rt)
{
	for (int i = 0; i < SP__OWNED_SHARDS; i++) {
		sp__spin_lock(&rt->owned[i].lock);
		rt->owned[i].closed = true;
		sp__spin_unlock(&rt->owned[i].lock);
	}
}

/* Shutdown, after the workers exited: cancel every task still owned. */
void sp__owned_cancel_all(sp_runtime *rt)
{
	for (int i = 0; i < SP__OWNED_SHARDS; i++) {
		sp__owned_shard *sh = &rt->owned[i];
		uint32_t cursor = 0;
		for (;;) {
			/* Take a reference under the lock, cancel outside it
			 * (cancelling removes the task, which takes the lock).
			 * A task held RUNNING by a foreign aborter is left to that
			 * thread, which removes it; a task a foreign thread is
			 * still scheduling (SCHED count) is waited for: that thread
			 * touches the runtime until it drops its count. */
			sp__spin_lock(&sh->lock);
			sp__task *t = NULL;
			for (; cursor < sh->len; cursor++) {
				t = sh->slots[cursor];
				if (t && !(atomic_load(&t->state) & (SP__RUNNING | SP__SCHED_MASK)))
					break;
				t = NULL;
			}
			if (t)
				sp__task_ref_inc(t);
			size_t left = sh->count;
			sp__spin_unlock(&sh->lock);
			if (t) {
				sp__task_shutdown(t);
				sp__task_ref_dec(t);
				continue;
			}
			if (left == 0)
				break;
			cursor = 0;
			sched_yield();
		}
	}
}

void sp__owned_destroy(sp_runtime *rt)
{
	for (int i = 0; i < SP__OWNED_SHARDS; i++) {
		free(rt->owned[i].slots);
		free(rt->owned[i].free_idx);
	}
}

size_t sp_runtime_tasks(sp_runtime *rt, void (*fn)(const sp_task_info *, void *), void *arg)
{
	size_t n = 0;
	for (int i = 0; i < SP__OWNED_SHARDS; i++) {
		sp__owned_shard *sh = &rt->owned[i];
		/* Copy the shard's infos under the lock (a task cannot be
		 * removed, so not freed, meanwhile), call fn outside it. */
		sp__spin_lock(&sh->lock);
		size_t cnt = sh->count;
		sp_task_info *infos = cnt ? malloc(cnt * sizeof(*infos)) : NULL;
		size_t k = 0;
		for (uint32_t j = 0; infos && j < sh->len; j++)
			if (sh->slots[j])
				sp__task_info(sh->slots[j], &infos[k++]);
		sp__spin_unlock(&sh->lock);
		for (size_t j = 0; j < k; j++)
			fn(&infos[j], arg);
		n += k;
		free(infos);
	}
	return n;
}
