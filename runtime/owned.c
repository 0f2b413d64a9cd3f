/*
 * owned.c - the owned-task table: every live task of a runtime, for shutdown
 * (drop every remaining future exactly once) and for the tools (list every
 * task).
 *
 * SHARDS. Worker i owns shard i. A shard is a growable array of task
 * pointers with a stack of free indices, under a spinlock. A task records its
 * shard and index at insert.
 *
 * WHO INSERTS. Only workers, into their own shard: a task spawned on a worker
 * at its spawn; a task spawned by any other thread (SP__UNOWNED until then)
 * at its first poll, by the worker that polls it. Such a task spends its
 * unowned life queued (NOTIFIED, never RUNNING): in the injection queue, a
 * local queue or a LIFO slot. So shutdown finds every task: the owned ones on
 * the shards, the unowned ones in the queues it drains (sp__task_drop_queued
 * cancels them). The spawning thread thus touches no shard and no task that
 * another thread completed: with one shard per spawning thread instead, the
 * timer workload's spawner spent 10% of all CPU walking done stacks of cold
 * tasks that the workers had completed.
 *
 * WHO REMOVES. A worker shard is changed only by its worker (insert, remove)
 * and read by the tools and by shutdown, so its lock stays in that worker's
 * cache and is contended only while a tool reads. A task that completes on
 * another thread (stolen, aborted from outside) is not removed there: it is
 * pushed onto the shard's `done` stack (lock-free, linked through
 * sp__task.done_next) and the owner removes it when it next inserts, every
 * maintenance tick, and before it parks. Until then the table keeps the task's
 * memory (header and dropped frame) alive; the tools skip COMPLETE tasks.
 * So a shard lock is taken by one thread at a time in the common case, and
 * no task completion waits for a lock held by another thread's spawns.
 *
 * Growth reallocates under the lock; that is the only allocation, amortized
 * over the shard's high-water mark.
 *
 * ORDERING. The done stack is a Treiber stack whose consumers (the owner,
 * and shutdown once the workers exited) take the whole stack at once
 * (exchange), so no ABA: push is a release CAS, the take an acquire
 * exchange, and each taker gets a disjoint list, which it removes a batch
 * per lock hold. The spinlock is acquire/release. A task's shard is written
 * once, before any other thread can reach the task through the shard: at
 * spawn (a worker's spawn, or SP__UNOWNED for another thread's), or by the
 * worker that holds it RUNNING for its first poll; every later reader reached
 * the task through a queue (acquire on its state word at RUNNING) or the
 * shard's lock, or is shutdown after the workers were joined.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The inline take failed: wait until the lock looks free, then try again. */
void sp__spin_lock_slow(_Atomic bool *l)
{
	for (int spins = 0;; spins++) {
		while (atomic_load_explicit(l, memory_order_relaxed)) {
			if (spins++ < 64)
				sp__cpu_relax();
			else
				sched_yield(); /* the holder may be preempted */
		}
		/* ordering: acquire on taking the lock. */
		if (!atomic_exchange_explicit(l, true, memory_order_acquire))
			return;
	}
}

int sp__owned_init(sp_runtime *rt)
{
	rt->nshards = rt->nworkers;
	size_t size = sizeof(sp__owned_shard) * rt->nshards;
	rt->owned = aligned_alloc(SP__CACHELINE, size);
	if (!rt->owned)
		return SP_ENOMEM;
	memset(rt->owned, 0, size);
	return 0;
}

void sp__owned_destroy(sp_runtime *rt)
{
	for (uint32_t i = 0; rt->owned && i < rt->nshards; i++) {
		free(rt->owned[i].slots);
		free(rt->owned[i].free_idx);
	}
	free(rt->owned);
}

static bool shard_grow(sp__owned_shard *sh)
{
	uint32_t cap = sh->cap ? sh->cap * 2 : 256;
	sp__task **slots = realloc(sh->slots, cap * sizeof(*slots));
	if (slots)
		sh->slots = slots;
	uint32_t *free_idx = realloc(sh->free_idx, cap * sizeof(*free_idx));
	if (free_idx)
		sh->free_idx = free_idx;
	if (!slots || !free_idx)
		return false;
	sh->cap = cap;
	return true;
}

/* Under the lock: clear t's slot (and give back its task table slot). */
static inline void slot_clear(sp__owned_shard *sh, sp__task *t)
{
	if (SP__UNLIKELY(sp__task_seg_slot(t) != SP__NO_SEG_SLOT))
		sp__trace_table_forget(t);
	SP__ASSERT(sh->slots[t->owned_index] == t, "owned table slot holds its task");
	sh->slots[t->owned_index] = NULL;
	sh->free_idx[sh->nfree++] = t->owned_index;
	sh->count--;
}

/* Tasks removed per lock hold, and released (after the unlock) from an
 * array: the done stack is a chain of cold task headers, and walking it
 * twice (clear the slots under the lock, then drop the references) missed
 * the cache twice per task; from the array the drops are independent loads
 * the CPU overlaps. take_done_locked + owned_drain were 13% of the timer
 * workload's CPU (100k tasks spawned by a thread that is not a worker). */
#define DONE_BATCH 64

/* Under the lock: clear the slots of the first DONE_BATCH tasks of *list
 * into out[], advance *list past them; returns how many. The caller drops
 * their owned references after unlocking. */
static unsigned take_done_batch(sp__owned_shard *sh, sp__task **list, sp__task **out)
{
	unsigned n = 0;
	sp__task *t = *list;
	for (; t && n < DONE_BATCH; t = t->done_next) {
		slot_clear(sh, t);
		out[n++] = t;
	}
	*list = t;
	return n;
}

static void release_done(sp__task **ts, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sp__task_ref_dec(ts[i]); /* the owned reference */
}

/* Remove the tasks of a taken done stack, a batch per lock hold. Until its
 * slot is cleared a task of the list keeps its owned reference and stays
 * counted, so shutdown (which waits for the count) waits for us too. */
static void drain_list(sp__owned_shard *sh, sp__task *list)
{
	while (list) {
		sp__task *batch[DONE_BATCH];
		sp__spin_lock(&sh->lock);
		unsigned n = take_done_batch(sh, &list, batch);
		sp__spin_unlock(&sh->lock);
		release_done(batch, n);
	}
}

/* Take the whole done stack (any thread may: the exchange hands each taker
 * a disjoint list). */
static sp__task *take_done(sp__owned_shard *sh)
{
	if (!atomic_load_explicit(&sh->done, memory_order_relaxed))
		return NULL;
	return atomic_exchange_explicit(&sh->done, NULL, memory_order_acquire);
}

/* Remove the tasks completed by non-owners. */
static void drain_done(sp__owned_shard *sh)
{
	drain_list(sh, take_done(sh));
}

/* A worker's maintenance (and before it parks): its own shard's done stack. */
void sp__owned_drain(sp__worker *w)
{
	drain_done(&w->rt->owned[w->index]);
}

static bool is_owner(sp_runtime *rt, uint32_t shard)
{
	sp__worker *w = sp__tls.worker;
	return w && w->rt == rt && w->index == shard;
}

int sp__owned_insert(sp_runtime *rt, sp__task *t)
{
	SP__ASSERT(sp__tls.worker && sp__tls.worker->rt == rt, "owned inserts are a worker's");
	uint32_t s = sp__tls.worker->index;
	sp__owned_shard *sh = &rt->owned[s];
	/* Drain when out of free slots, and every 64th insert: reading the
	 * done line, which other threads write, on every spawn cost 8% of a
	 * remote spawn. Before taking the lock (drain_done takes it per
	 * batch): nfree and inserts are the owner's, as this thread is. */
	if (SP__UNLIKELY(sh->nfree == 0 || (++sh->inserts & 63) == 0))
		drain_done(sh);
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
	sp__task_set_owned_seg(t, s, SP__NO_SEG_SLOT);
	t->owned_index = i;
	sp__spin_unlock(&sh->lock);
	return 0;
}

void sp__owned_remove(sp__task *t, unsigned extra_refs)
{
	sp_runtime *rt = t->rt;
	uint32_t s = sp__task_owned_shard(t);
	if (s == SP__UNOWNED) {
		/* Cancelled before its first poll: on no shard. */
		sp__task_ref_dec_n(t, 1 + extra_refs);
		return;
	}
	sp__owned_shard *sh = &rt->owned[s];
	if (!is_owner(rt, s)) {
		/* Leave it to the owner. The push is our last access to rt. */
		sp__task *head = atomic_load_explicit(&sh->done, memory_order_relaxed);
		do {
			t->done_next = head;
		} while (!atomic_compare_exchange_weak_explicit(&sh->done, &head, t,
								memory_order_release,
								memory_order_relaxed));
		if (extra_refs)
			sp__task_ref_dec_n(t, extra_refs);
		return;
	}
	sp__spin_lock(&sh->lock);
	slot_clear(sh, t);
	/* The unlock is our last access to rt: sp_runtime_free may free it as
	 * soon as it sees the count drop. */
	sp__spin_unlock(&sh->lock);
	sp__task_ref_dec_n(t, 1 + extra_refs); /* the owned reference, and the caller's */
}

void sp__owned_close(sp_runtime *rt)
{
	for (uint32_t i = 0; i < rt->nshards; i++) {
		sp__spin_lock(&rt->owned[i].lock);
		rt->owned[i].closed = true;
		sp__spin_unlock(&rt->owned[i].lock);
	}
}

/* Shutdown, after the workers exited: cancel every task still owned. */
void sp__owned_cancel_all(sp_runtime *rt)
{
	for (uint32_t i = 0; i < rt->nshards; i++) {
		sp__owned_shard *sh = &rt->owned[i];
		uint32_t cursor = 0;
		for (;;) {
			drain_done(sh);
			/* Take a reference under the lock, cancel outside it
			 * (cancelling removes the task, which takes the lock).
			 * Skipped and waited for: a task held RUNNING by a
			 * foreign aborter (that thread removes it), and one a
			 * foreign thread is still scheduling (it touches the
			 * runtime until it drops its count). */
			sp__spin_lock(&sh->lock);
			sp__task *t = NULL;
			for (; cursor < sh->len; cursor++) {
				t = sh->slots[cursor];
				uint64_t st = t ? atomic_load(&t->state) : 0;
				if (t && !(st & (SP__RUNNING | SP__COMPLETE | SP__SCHED_MASK)))
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
			sched_yield(); /* a foreign aborter or scheduler is finishing */
		}
	}
}

size_t sp_runtime_tasks(sp_runtime *rt, void (*fn)(const sp_task_info *, void *), void *arg)
{
	size_t n = 0;
	for (uint32_t i = 0; i < rt->nshards; i++) {
		sp__owned_shard *sh = &rt->owned[i];
		/* Copy the shard's infos under the lock (a task cannot be
		 * removed, so not freed, meanwhile), call fn outside it. */
		sp__spin_lock(&sh->lock);
		size_t cnt = sh->count;
		sp_task_info *infos = cnt ? malloc(cnt * sizeof(*infos)) : NULL;
		size_t k = 0;
		for (uint32_t j = 0; infos && j < sh->len; j++) {
			sp__task *t = sh->slots[j];
			if (t && !(atomic_load_explicit(&t->state, memory_order_relaxed) &
				   SP__COMPLETE))
				sp__task_info(t, &infos[k++]);
		}
		sp__spin_unlock(&sh->lock);
		for (size_t j = 0; j < k; j++)
			fn(&infos[j], arg);
		n += k;
		free(infos);
	}
	return n;
}

/*
 * The task table's writer (trace.c) asks: enter or refresh every live task
 * of every shard, TABLE_BATCH tasks per lock hold (the owner's inserts and
 * removes wait meanwhile). A task is written under its shard's lock, and
 * leaves the table (slot_clear) under it too: one writer per task slot at a
 * time. Tasks inserted after our pass over their index, or spawned from
 * another thread and not polled yet, are not in this pass: readers learn of
 * them from the events.
 */
#define TABLE_BATCH 256

void sp__owned_table_refresh(sp_runtime *rt)
{
	for (uint32_t i = 0; i < rt->nshards; i++) {
		sp__owned_shard *sh = &rt->owned[i];
		uint32_t cursor = 0;
		for (bool more = true; more;) {
			sp__spin_lock(&sh->lock);
			uint32_t end = cursor + TABLE_BATCH;
			if (end >= sh->len) {
				end = sh->len;
				more = false;
			}
			for (; cursor < end; cursor++) {
				sp__task *t = sh->slots[cursor];
				if (t && !(atomic_load_explicit(&t->state, memory_order_relaxed) &
					   SP__COMPLETE))
					sp__trace_table_write(t);
			}
			sp__spin_unlock(&sh->lock);
		}
	}
}
