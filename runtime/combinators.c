/*
 * combinators.c - sp_join (await all) and sp_select (await the first).
 *
 * Both hold caller-provided arrays of child futures and poll the children
 * with their own context, so every child registers the parent's waker: any
 * child's wake makes the parent poll again, and the parent re-polls the
 * children that are not done (a spurious poll, which every future accepts).
 * The parent returns SP_PENDING only after some child did, so the waker
 * contract holds through it. No atomics: a future is polled and dropped by
 * one thread at a time (its task's), and so are its children.
 *
 * INVARIANTS
 *   join:   futs[i] != NULL <=> child i has not returned SP_READY and has not
 *           been dropped; pending == the number of such i. A ready child is
 *           dropped at once (as SP_AWAIT drops an awaited future) and never
 *           polled again.
 *   select: done == 0 <=> no child has returned SP_READY and the select was
 *           not dropped; while done == 0 no child has been dropped. The
 *           moment a child is ready every child is dropped exactly once
 *           (losers in index order, then the winner), done is set, and no
 *           child is touched again.
 *
 * Fairness: join starts each poll one child further (as tokio::join! rotates),
 * so a child that keeps spending the cooperative budget cannot always starve
 * the ones after it. select is biased (index order) so that tests, and users
 * who want priorities, get a deterministic winner.
 */
#include <limits.h>

#include "spindle.h"

/* ---- join -------------------------------------------------------------------- */

static sp_poll join_poll(sp_future *f, sp_context *cx)
{
	sp_join *j = (sp_join *)f;
	size_t n = j->n;
	size_t first = j->start;
	for (size_t k = 0; k < n && j->pending; k++) {
		size_t i = first + k < n ? first + k : first + k - n;
		sp_future *c = j->futs[i];
		if (!c)
			continue;
		if (sp_future_poll(c, cx) == SP_READY) {
			j->futs[i] = NULL;
			j->pending--;
			sp_future_drop(c); /* its `out` stays readable */
		}
	}
	if (n)
		j->start = first + 1 < n ? first + 1 : 0;
	return j->pending ? SP_PENDING : SP_READY;
}

static void join_drop(sp_future *f)
{
	sp_join *j = (sp_join *)f;
	for (size_t i = 0; i < j->n; i++) {
		sp_future *c = j->futs[i];
		if (!c)
			continue;
		j->futs[i] = NULL;
		sp_future_drop(c);
	}
	j->pending = 0;
}

void sp_join_init(sp_join *j, sp_future **futs, size_t n)
{
	j->base = (sp_future){.poll = join_poll, .drop = join_drop, .name = "join"};
	j->futs = futs;
	j->n = n;
	j->start = 0;
	j->pending = 0;
	for (size_t i = 0; i < n; i++)
		j->pending += futs[i] != NULL;
}

/* ---- select ------------------------------------------------------------------ */

/* Drop every child once: the losers in index order, then the winner. */
static void select_drop_children(sp_select *s, size_t winner)
{
	s->done = 1;
	for (size_t i = 0; i < s->n; i++)
		if (i != winner)
			sp_future_drop(s->futs[i]);
	if (winner < s->n)
		sp_future_drop(s->futs[winner]);
}

static sp_poll select_poll(sp_future *f, sp_context *cx)
{
	sp_select *s = (sp_select *)f;
	if (s->done)
		sp__panic("select polled after it returned SP_READY");
	if (s->n == 0 || s->n > INT_MAX) {
		s->out = SP_EINVAL;
		select_drop_children(s, s->n);
		return SP_READY;
	}
	for (size_t i = 0; i < s->n; i++) {
		if (sp_future_poll(s->futs[i], cx) == SP_READY) {
			s->out = (int)i;
			select_drop_children(s, i);
			return SP_READY;
		}
	}
	return SP_PENDING;
}

static void select_drop(sp_future *f)
{
	sp_select *s = (sp_select *)f;
	if (!s->done)
		select_drop_children(s, s->n);
}

void sp_select_init(sp_select *s, sp_future **futs, size_t n)
{
	s->base = (sp_future){.poll = select_poll, .drop = select_drop, .name = "select"};
	s->out = 0;
	s->futs = futs;
	s->n = n;
	s->done = 0;
}
