/*
 * test_sync.c - spindle/sync.h: the bounded mpsc channel (backpressure, FIFO
 * senders, close, many producers), notify, the async mutex and the semaphore,
 * and cancellation of every waiting future (lists stay consistent, nothing is
 * lost or leaked).
 *
 * Two kinds of tests: by hand (futures polled on the main thread with
 * counting wakers: exact, deterministic wake-by-wake checks) and on runtimes
 * (tasks record outcomes in atomics or fields; the main thread asserts after
 * sp_join_handle_wait).
 */
#include "unit/sp_test.h"

/* ---- helpers ----------------------------------------------------------------- */

/* Walk a waiter list under its primitive's lock: the node count, or -1 if the
 * links are inconsistent or a linked node is not QUEUED. */
static int wl_check(pthread_mutex_t *lock, sp_waitlist *l)
{
	pthread_mutex_lock(lock);
	int n = 0;
	sp_waiter *prev = NULL;
	for (sp_waiter *w = l->head; w; w = w->next) {
		if (w->prev != prev || w->state != SP_WAITER_QUEUED || ++n > 1000000) {
			n = -1;
			break;
		}
		prev = w;
	}
	if (n >= 0 && l->tail != prev)
		n = -1;
	pthread_mutex_unlock(lock);
	return n;
}

static int wakes(struct spt_manual_cx *m)
{
	return atomic_load(&m->counts.wakes);
}

static size_t mpsc_reserved(sp_mpsc *ch)
{
	pthread_mutex_lock(&ch->lock);
	size_t r = ch->reserved;
	pthread_mutex_unlock(&ch->lock);
	return r;
}

static int mutex_locked(sp_mutex *m)
{
	pthread_mutex_lock(&m->lock);
	int r = m->locked;
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* ---- mpsc by hand ------------------------------------------------------------ */

static void mpsc__try_ops_order_capacity_and_close(void **state)
{
	(void)state;
	/* arrange */
	sp_mpsc ch;
	int init_rc = sp_mpsc_init(&ch, sizeof(int), 3);
	int bad_rc = sp_mpsc_init(&(sp_mpsc){0}, 0, 3);
	int rc_send[4], rc_recv[5], got[5] = {0};

	/* act */
	for (int i = 0; i < 4; i++)
		rc_send[i] = sp_mpsc_try_send(&ch, &(int){10 + i});
	size_t len_full = sp_mpsc_len(&ch);
	rc_recv[0] = sp_mpsc_try_recv(&ch, &got[0]);
	sp_mpsc_close(&ch);
	int send_closed = sp_mpsc_try_send(&ch, &(int){99});
	for (int i = 1; i < 5; i++)
		rc_recv[i] = sp_mpsc_try_recv(&ch, &got[i]);
	sp_mpsc_destroy(&ch);

	/* assert */
	assert_int_equal(init_rc, 0);
	assert_int_equal(bad_rc, SP_EINVAL);
	assert_int_equal(rc_send[0], 0);
	assert_int_equal(rc_send[1], 0);
	assert_int_equal(rc_send[2], 0);
	assert_int_equal(rc_send[3], SP_EAGAIN); /* full */
	assert_int_equal(len_full, 3);
	assert_int_equal(send_closed, SP_EPIPE);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rc_recv[i], 0);
		assert_int_equal(got[i], 10 + i); /* in order, after the close too */
	}
	assert_int_equal(rc_recv[3], SP_EPIPE); /* closed and drained */
	assert_int_equal(rc_recv[4], SP_EPIPE);
}

static void mpsc__last_sender_release_closes(void **state)
{
	(void)state;
	/* arrange: the creator's handle plus two clones */
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), 2);
	sp_mpsc_sender_clone(&ch);
	sp_mpsc_sender_clone(&ch);
	int v = 5, got = 0;

	/* act */
	sp_mpsc_sender_release(&ch);
	sp_mpsc_sender_release(&ch);
	int send_open = sp_mpsc_try_send(&ch, &v);
	sp_mpsc_sender_release(&ch);
	int send_closed = sp_mpsc_try_send(&ch, &v);
	int recv1 = sp_mpsc_try_recv(&ch, &got);
	int recv2 = sp_mpsc_try_recv(&ch, &got);
	sp_mpsc_destroy(&ch);

	/* assert */
	assert_int_equal(send_open, 0);
	assert_int_equal(send_closed, SP_EPIPE);
	assert_int_equal(recv1, 0);
	assert_int_equal(got, 5);
	assert_int_equal(recv2, SP_EPIPE);
}

static void mpsc__blocked_sender_resumes_exactly_when_consumer_receives(void **state)
{
	(void)state;
	/* arrange: capacity 2, five sends polled in order by hand */
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), 2);
	int v[5] = {1, 2, 3, 4, 5};
	struct spt_manual_cx c[5];
	sp_mpsc_send s[5];
	for (int i = 0; i < 5; i++) {
		spt_manual_cx_init(&c[i]);
		sp_mpsc_send_init(&s[i], &ch, &v[i]);
	}
	sp_poll first[5];
	int got[5] = {0}, rrc[6];

	/* act */
	for (int i = 0; i < 5; i++)
		first[i] = sp_future_poll(&s[i].base, &c[i].cx);
	int queued = wl_check(&ch.lock, &ch.send_waiters);
	int try_while_waiting = sp_mpsc_try_send(&ch, &(int){42});
	int wakes_before = wakes(&c[2]) + wakes(&c[3]) + wakes(&c[4]);
	rrc[0] = sp_mpsc_try_recv(&ch, &got[0]); /* frees one slot: s[2] only */
	int w2 = wakes(&c[2]), w3 = wakes(&c[3]), w4 = wakes(&c[4]);
	sp_poll p3 = sp_future_poll(&s[3].base, &c[3].cx); /* not its turn */
	sp_poll p2 = sp_future_poll(&s[2].base, &c[2].cx);
	rrc[1] = sp_mpsc_try_recv(&ch, &got[1]);
	int w3b = wakes(&c[3]), w4b = wakes(&c[4]);
	sp_poll p3b = sp_future_poll(&s[3].base, &c[3].cx);
	rrc[2] = sp_mpsc_try_recv(&ch, &got[2]);
	sp_poll p4 = sp_future_poll(&s[4].base, &c[4].cx);
	rrc[3] = sp_mpsc_try_recv(&ch, &got[3]);
	rrc[4] = sp_mpsc_try_recv(&ch, &got[4]);
	rrc[5] = sp_mpsc_try_recv(&ch, &(int){0});
	for (int i = 0; i < 5; i++)
		sp_future_drop(&s[i].base);
	int queued_after = wl_check(&ch.lock, &ch.send_waiters);
	sp_mpsc_destroy(&ch);

	/* assert */
	assert_int_equal(first[0], SP_READY);
	assert_int_equal(first[1], SP_READY);
	assert_int_equal(first[2], SP_PENDING);
	assert_int_equal(first[3], SP_PENDING);
	assert_int_equal(first[4], SP_PENDING);
	assert_int_equal(queued, 3);
	assert_int_equal(try_while_waiting, SP_EAGAIN);
	assert_int_equal(wakes_before, 0);
	assert_int_equal(w2, 1); /* woken by the receive, and only it */
	assert_int_equal(w3, 0);
	assert_int_equal(w4, 0);
	assert_int_equal(p3, SP_PENDING);
	assert_int_equal(p2, SP_READY);
	assert_int_equal(s[2].out, 0);
	assert_int_equal(w3b, 1);
	assert_int_equal(w4b, 0);
	assert_int_equal(p3b, SP_READY);
	assert_int_equal(p4, SP_READY);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(rrc[i], 0);
		assert_int_equal(got[i], i + 1); /* FIFO among the senders too */
		assert_int_equal(spt_live_wakers(&c[i]), 0);
	}
	assert_int_equal(rrc[5], SP_EAGAIN);
	assert_int_equal(queued_after, 0);
}

static void mpsc__recv_waits_then_close_gives_remaining_items_then_epipe(void **state)
{
	(void)state;
	/* arrange */
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), 4);
	struct spt_manual_cx c;
	spt_manual_cx_init(&c);
	int got[3] = {-1, -1, -1};
	sp_mpsc_recv r[3];
	for (int i = 0; i < 3; i++)
		sp_mpsc_recv_init(&r[i], &ch, &got[i]);

	/* act */
	sp_poll p0 = sp_future_poll(&r[0].base, &c.cx);
	int w0 = wakes(&c);
	sp_mpsc_try_send(&ch, &(int){7});
	sp_mpsc_try_send(&ch, &(int){8});
	int w1 = wakes(&c);
	sp_mpsc_close(&ch);
	sp_poll p1 = sp_future_poll(&r[0].base, &c.cx);
	sp_poll p2 = sp_future_poll(&r[1].base, &c.cx);
	sp_poll p3 = sp_future_poll(&r[2].base, &c.cx);
	for (int i = 0; i < 3; i++)
		sp_future_drop(&r[i].base);
	sp_mpsc_destroy(&ch);

	/* assert */
	assert_int_equal(p0, SP_PENDING);
	assert_int_equal(w0, 0);
	assert_int_equal(w1, 1); /* the first item woke it; the second had nobody to wake */
	assert_int_equal(p1, SP_READY);
	assert_int_equal(r[0].out, 0);
	assert_int_equal(got[0], 7);
	assert_int_equal(p2, SP_READY);
	assert_int_equal(r[1].out, 0);
	assert_int_equal(got[1], 8);
	assert_int_equal(p3, SP_READY);
	assert_int_equal(r[2].out, SP_EPIPE);
	assert_int_equal(spt_live_wakers(&c), 0);
}

static void mpsc__close_and_receiver_release_fail_waiting_senders(void **state)
{
	(void)state;
	/* arrange: two full channels, each with a waiting sender */
	sp_mpsc a, b;
	sp_mpsc_init(&a, sizeof(int), 1);
	sp_mpsc_init(&b, sizeof(int), 1);
	sp_mpsc_try_send(&a, &(int){1});
	sp_mpsc_try_send(&b, &(int){1});
	struct spt_manual_cx ca, cb;
	spt_manual_cx_init(&ca);
	spt_manual_cx_init(&cb);
	int va = 2, vb = 2, got = 0;
	sp_mpsc_send sa, sb;
	sp_mpsc_send_init(&sa, &a, &va);
	sp_mpsc_send_init(&sb, &b, &vb);

	/* act */
	sp_poll pa = sp_future_poll(&sa.base, &ca.cx);
	sp_poll pb = sp_future_poll(&sb.base, &cb.cx);
	sp_mpsc_close(&a);
	sp_mpsc_receiver_release(&b);
	sp_poll pa2 = sp_future_poll(&sa.base, &ca.cx);
	sp_poll pb2 = sp_future_poll(&sb.base, &cb.cx);
	int a_recv = sp_mpsc_try_recv(&a, &got); /* the buffered item survives close */
	int a_recv2 = sp_mpsc_try_recv(&a, &got);
	int b_recv = sp_mpsc_try_recv(&b, &(int){0}); /* discarded by the release */
	int b_send = sp_mpsc_try_send(&b, &vb);
	sp_future_drop(&sa.base);
	sp_future_drop(&sb.base);
	sp_mpsc_destroy(&a);
	sp_mpsc_destroy(&b);

	/* assert */
	assert_int_equal(pa, SP_PENDING);
	assert_int_equal(pb, SP_PENDING);
	assert_int_equal(wakes(&ca), 1);
	assert_int_equal(wakes(&cb), 1);
	assert_int_equal(pa2, SP_READY);
	assert_int_equal(sa.out, SP_EPIPE);
	assert_int_equal(pb2, SP_READY);
	assert_int_equal(sb.out, SP_EPIPE);
	assert_int_equal(a_recv, 0);
	assert_int_equal(got, 1);
	assert_int_equal(a_recv2, SP_EPIPE);
	assert_int_equal(b_recv, SP_EPIPE);
	assert_int_equal(b_send, SP_EPIPE);
	assert_int_equal(spt_live_wakers(&ca), 0);
	assert_int_equal(spt_live_wakers(&cb), 0);
}

/* ---- mpsc cancellation by hand ----------------------------------------------- */

static void mpsc__dropped_senders_queued_and_granted_lose_nothing(void **state)
{
	(void)state;
	/* arrange: capacity 2 full with 1, 2; senders of 3, 4, 5 wait */
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), 2);
	sp_mpsc_try_send(&ch, &(int){1});
	sp_mpsc_try_send(&ch, &(int){2});
	int v[3] = {3, 4, 5};
	struct spt_manual_cx c[3];
	sp_mpsc_send s[3];
	for (int i = 0; i < 3; i++) {
		spt_manual_cx_init(&c[i]);
		sp_mpsc_send_init(&s[i], &ch, &v[i]);
		sp_future_poll(&s[i].base, &c[i].cx);
	}
	int got[4] = {0};

	/* act: drop 4 while queued (middle of the list); receive one, which
	 * grants a slot to 3; drop 3 before it sees it: the slot goes to 5 */
	sp_future_drop(&s[1].base);
	int queued_mid = wl_check(&ch.lock, &ch.send_waiters);
	int r0 = sp_mpsc_try_recv(&ch, &got[0]);
	size_t reserved_granted = mpsc_reserved(&ch);
	sp_future_drop(&s[0].base);
	int w5 = wakes(&c[2]);
	sp_poll p5 = sp_future_poll(&s[2].base, &c[2].cx);
	sp_future_drop(&s[2].base);
	int r1 = sp_mpsc_try_recv(&ch, &got[1]);
	int r2 = sp_mpsc_try_recv(&ch, &got[2]);
	int r3 = sp_mpsc_try_recv(&ch, &got[3]);
	size_t reserved_end = mpsc_reserved(&ch);
	int queued_end = wl_check(&ch.lock, &ch.send_waiters);
	sp_mpsc_destroy(&ch);

	/* assert */
	assert_int_equal(queued_mid, 2);
	assert_int_equal(r0, 0);
	assert_int_equal(got[0], 1);
	assert_int_equal(reserved_granted, 1);
	assert_int_equal(wakes(&c[0]), 1);
	assert_int_equal(w5, 1); /* the dropped grantee passed its slot on */
	assert_int_equal(p5, SP_READY);
	assert_int_equal(s[2].out, 0);
	assert_int_equal(r1, 0);
	assert_int_equal(got[1], 2);
	assert_int_equal(r2, 0);
	assert_int_equal(got[2], 5); /* 3 and 4 were never sent: their futures were dropped */
	assert_int_equal(r3, SP_EAGAIN);
	assert_int_equal(reserved_end, 0);
	assert_int_equal(queued_end, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(spt_live_wakers(&c[i]), 0);
}

static void mpsc__dropped_receivers_lose_no_item(void **state)
{
	(void)state;
	/* arrange: two receivers wait on an empty channel */
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), 4);
	struct spt_manual_cx ca, cb;
	spt_manual_cx_init(&ca);
	spt_manual_cx_init(&cb);
	int ga = 0, gb = 0, gc = 0;
	sp_mpsc_recv ra, rb;
	sp_mpsc_recv_init(&ra, &ch, &ga);
	sp_mpsc_recv_init(&rb, &ch, &gb);
	sp_future_poll(&ra.base, &ca.cx);
	sp_future_poll(&rb.base, &cb.cx);

	/* act: an item wakes ra only; ra is dropped before it looks: rb is
	 * told instead and gets it. Then rb2 waits and is dropped while queued;
	 * a later item stays in the channel. */
	sp_mpsc_try_send(&ch, &(int){11});
	int wa = wakes(&ca), wb = wakes(&cb);
	sp_future_drop(&ra.base);
	int wb2 = wakes(&cb);
	sp_poll pb = sp_future_poll(&rb.base, &cb.cx);
	sp_future_drop(&rb.base);
	sp_mpsc_recv rb2;
	sp_mpsc_recv_init(&rb2, &ch, &gb);
	sp_poll pb2 = sp_future_poll(&rb2.base, &cb.cx);
	int queued = wl_check(&ch.lock, &ch.recv_waiters);
	sp_future_drop(&rb2.base);
	int queued_after = wl_check(&ch.lock, &ch.recv_waiters);
	sp_mpsc_try_send(&ch, &(int){12});
	int rc = sp_mpsc_try_recv(&ch, &gc);
	sp_mpsc_destroy(&ch);

	/* assert */
	assert_int_equal(wa, 1);
	assert_int_equal(wb, 0);
	assert_int_equal(wb2, 1);
	assert_int_equal(pb, SP_READY);
	assert_int_equal(rb.out, 0);
	assert_int_equal(gb, 11);
	assert_int_equal(ga, 0); /* the dropped receiver got nothing */
	assert_int_equal(pb2, SP_PENDING);
	assert_int_equal(queued, 1);
	assert_int_equal(queued_after, 0);
	assert_int_equal(rc, 0);
	assert_int_equal(gc, 12);
	assert_int_equal(spt_live_wakers(&ca), 0);
	assert_int_equal(spt_live_wakers(&cb), 0);
}

/* ---- mpsc on a runtime ------------------------------------------------------- */

/* Sends n tagged items (id << 32 | seq), then releases its sender handle. */
struct producer {
	sp_future base;
	int out; /* sends that failed */
	sp_mpsc *ch;
	uint32_t id, n, i;
	uint64_t item;
	sp_mpsc_send s;
};

static sp_poll producer_poll(sp_future *f, sp_context *cx)
{
	struct producer *self = (struct producer *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < self->n; self->i++) {
		self->item = ((uint64_t)self->id << 32) | self->i;
		sp_mpsc_send_init(&self->s, self->ch, &self->item);
		SP_AWAIT(&self->s);
		if (self->s.out)
			self->out++;
	}
	sp_mpsc_sender_release(self->ch);
	SP_RETURN(self->out);
	SP_ASYNC_END();
}

struct consume_log {
	uint32_t nprod, per;
	uint8_t *seen;	/* nprod * per counts */
	uint32_t *next; /* next expected seq per producer */
	int order_errors;
	int bad_items;
	uint64_t total;
};

/* Receives until SP_EPIPE, logging every item. */
struct consumer {
	sp_future base;
	int out; /* the final recv result */
	sp_mpsc *ch;
	struct consume_log *log;
	uint64_t item;
	sp_mpsc_recv r;
};

static sp_poll consumer_poll(sp_future *f, sp_context *cx)
{
	struct consumer *self = (struct consumer *)f;
	struct consume_log *log = self->log;
	SP_ASYNC_BEGIN(f, cx);
	for (;;) {
		sp_mpsc_recv_init(&self->r, self->ch, &self->item);
		SP_AWAIT(&self->r);
		if (self->r.out)
			break;
		uint32_t id = (uint32_t)(self->item >> 32), seq = (uint32_t)self->item;
		if (id >= log->nprod || seq >= log->per) {
			log->bad_items++;
			continue;
		}
		log->seen[(size_t)id * log->per + seq]++;
		if (seq != log->next[id])
			log->order_errors++;
		log->next[id] = seq + 1;
		log->total++;
	}
	SP_RETURN(self->r.out);
	SP_ASYNC_END();
}

static void mpsc__many_producers_every_item_exactly_once_in_order(void **state)
{
	(void)state;
	/* arrange: 8 producers, a capacity far below the item count, 4 workers */
	enum { NPROD = 8 };
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	uint32_t per = (uint32_t)spt_scaled(5000, 200);
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(uint64_t), 16);
	struct consume_log log = {.nprod = NPROD, .per = per};
	log.seen = calloc((size_t)NPROD * per, 1);
	log.next = calloc(NPROD, sizeof(uint32_t));
	sp_join_handle pj[NPROD], cj;
	int pout[NPROD], cout = 99, spawn_errors = 0;

	/* act */
	struct consumer c = {
		.base = {.poll = consumer_poll, .name = "consumer"}, .ch = &ch, .log = &log};
	spawn_errors += SP_RUNTIME_SPAWN_OUT(rt, "consumer", &cj, c) != 0;
	cj.dst = &cout;
	for (uint32_t p = 0; p < NPROD; p++) {
		sp_mpsc_sender_clone(&ch);
		struct producer pr = {.base = {.poll = producer_poll, .name = "producer"},
				      .ch = &ch,
				      .id = p,
				      .n = per};
		spawn_errors += SP_RUNTIME_SPAWN_OUT(rt, "producer", &pj[p], pr) != 0;
		pj[p].dst = &pout[p];
	}
	sp_mpsc_sender_release(&ch); /* the creator's handle: the last producer closes */
	int finished = spt_finish_or_abort(rt, pj, NPROD) & spt_finish_or_abort(rt, &cj, 1);
	int statuses = 0;
	for (int p = 0; p < NPROD; p++)
		statuses |= sp_join_handle_wait(&pj[p]);
	statuses |= sp_join_handle_wait(&cj);
	int free_rc = sp_runtime_free(rt);
	int missing = 0, dup = 0;
	for (size_t i = 0; i < (size_t)NPROD * per; i++) {
		missing += log.seen[i] == 0;
		dup += log.seen[i] > 1;
	}
	int send_fail = 0;
	for (int p = 0; p < NPROD; p++)
		send_fail += pout[p];
	size_t reserved = ch.reserved;
	int sq = wl_check(&ch.lock, &ch.send_waiters), rq = wl_check(&ch.lock, &ch.recv_waiters);
	sp_mpsc_destroy(&ch);

	/* assert */
	assert_int_equal(spawn_errors, 0);
	assert_true(finished);
	assert_int_equal(statuses, 0);
	assert_int_equal(free_rc, 0);
	assert_int_equal(cout, SP_EPIPE); /* closed by the last sender release */
	assert_int_equal(send_fail, 0);
	assert_int_equal(log.bad_items, 0);
	assert_int_equal(log.order_errors, 0); /* each producer's items in order */
	assert_int_equal(missing, 0);
	assert_int_equal(dup, 0);
	assert_int_equal(log.total, (uint64_t)NPROD * per);
	assert_int_equal(reserved, 0);
	assert_int_equal(sq, 0);
	assert_int_equal(rq, 0);
	free(log.seen);
	free(log.next);
}

/* Sends one item and records that it completed. */
struct one_send {
	sp_future base;
	int out;
	sp_mpsc *ch;
	int item;
	atomic_int *started, *completed;
	sp_mpsc_send s;
};

static sp_poll one_send_poll(sp_future *f, sp_context *cx)
{
	struct one_send *self = (struct one_send *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_mpsc_send_init(&self->s, self->ch, &self->item);
	atomic_store(self->started, 1);
	SP_AWAIT(&self->s);
	atomic_store(self->completed, 1);
	SP_RETURN(self->s.out);
	SP_ASYNC_END();
}

static void mpsc__task_blocked_on_full_channel_resumes_on_receive(void **state)
{
	(void)state;
	/* arrange: capacity 1, already full; a task sends a second item */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), 1);
	sp_mpsc_try_send(&ch, &(int){1});
	atomic_int started = 0, completed = 0;
	struct one_send t = {.base = {.poll = one_send_poll, .name = "one_send"},
			     .ch = &ch,
			     .item = 2,
			     .started = &started,
			     .completed = &completed};
	sp_join_handle jh;
	int out = 99, got1 = 0, got2 = 0;

	/* act */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "one_send", &jh, t);
	jh.dst = &out;
	uint64_t id = sp_join_handle_id(&jh);
	int blocked = SPT_WAIT_UNTIL(atomic_load(&started) && spt_task_idle(rt, id) &&
					     wl_check(&ch.lock, &ch.send_waiters) == 1,
				     SPT_SOON_MS);
	spt_sleep_ms(20);
	int completed_before = atomic_load(&completed);
	int r1 = sp_mpsc_try_recv(&ch, &got1);
	int finished = spt_finish_or_abort(rt, &jh, 1);
	int status = sp_join_handle_wait(&jh);
	int r2 = sp_mpsc_try_recv(&ch, &got2);
	int free_rc = sp_runtime_free(rt);
	sp_mpsc_destroy(&ch);

	/* assert */
	assert_true(finished);
	assert_int_equal(rc, 0);
	assert_true(blocked);
	assert_int_equal(completed_before, 0);
	assert_int_equal(r1, 0);
	assert_int_equal(got1, 1);
	assert_int_equal(status, 0);
	assert_int_equal(out, 0);
	assert_int_equal(atomic_load(&completed), 1);
	assert_int_equal(r2, 0);
	assert_int_equal(got2, 2);
	assert_int_equal(free_rc, 0);
}

/* Counts received items (for the close-with-consumer test). */
struct counting_consumer {
	sp_future base;
	int out; /* items received before SP_EPIPE, or -1 on a wrong item */
	sp_mpsc *ch;
	int item, n;
	sp_mpsc_recv r;
};

static sp_poll counting_consumer_poll(sp_future *f, sp_context *cx)
{
	struct counting_consumer *self = (struct counting_consumer *)f;
	SP_ASYNC_BEGIN(f, cx);
	for (;;) {
		sp_mpsc_recv_init(&self->r, self->ch, &self->item);
		SP_AWAIT(&self->r);
		if (self->r.out)
			break;
		if (self->item != self->n + 1)
			SP_RETURN(-1);
		self->n++;
	}
	SP_RETURN(self->n);
	SP_ASYNC_END();
}

static void mpsc__consumer_gets_remaining_items_then_epipe_on_close(void **state)
{
	(void)state;
	/* arrange */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), 8);
	struct counting_consumer c = {
		.base = {.poll = counting_consumer_poll, .name = "counting_consumer"}, .ch = &ch};
	sp_join_handle jh;
	int out = 99;

	/* act: items arrive while it waits, then the close */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "consumer", &jh, c);
	jh.dst = &out;
	for (int i = 1; i <= 5; i++)
		sp_mpsc_try_send(&ch, &i);
	sp_mpsc_close(&ch);
	int finished = spt_finish_or_abort(rt, &jh, 1);
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);
	sp_mpsc_destroy(&ch);

	/* assert */
	assert_true(finished);
	assert_int_equal(rc, 0);
	assert_int_equal(status, 0);
	assert_int_equal(out, 5); /* every item, in order, and only then SP_EPIPE */
	assert_int_equal(free_rc, 0);
}

static void mpsc__close_wakes_waiting_receiver_with_epipe(void **state)
{
	(void)state;
	/* arrange: the consumer waits on an empty channel */
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 2);
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), 4);
	struct counting_consumer c = {
		.base = {.poll = counting_consumer_poll, .name = "counting_consumer"}, .ch = &ch};
	sp_join_handle jh;
	int out = 99;

	/* act: one item while it waits, then, once it waits again, the close */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "consumer", &jh, c);
	jh.dst = &out;
	uint64_t id = sp_join_handle_id(&jh);
	int parked = SPT_WAIT_UNTIL(
		spt_task_idle(rt, id) && wl_check(&ch.lock, &ch.recv_waiters) == 1, SPT_SOON_MS);
	sp_mpsc_try_send(&ch, &(int){1});
	int parked_again = SPT_WAIT_UNTIL(sp_mpsc_len(&ch) == 0 && spt_task_idle(rt, id) &&
						  wl_check(&ch.lock, &ch.recv_waiters) == 1,
					  SPT_SOON_MS);
	sp_mpsc_close(&ch);
	int finished = spt_finish_or_abort(rt, &jh, 1);
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);
	int rq = wl_check(&ch.lock, &ch.recv_waiters);
	sp_mpsc_destroy(&ch);

	/* assert */
	assert_true(finished);
	assert_int_equal(rc, 0);
	assert_true(parked);
	assert_true(parked_again);
	assert_int_equal(status, 0);
	assert_int_equal(out, 1); /* the item, then SP_EPIPE from the close */
	assert_int_equal(rq, 0);
	assert_int_equal(free_rc, 0);
}

static void mpsc__aborted_blocked_senders_lose_nothing(void **state)
{
	(void)state;
	/* arrange: capacity 2 full; 12 sender tasks block; the even ones are
	 * aborted, some while the receiver is granting them slots */
	enum { N = 12 };
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), 2);
	sp_mpsc_try_send(&ch, &(int){1000});
	sp_mpsc_try_send(&ch, &(int){1001});
	atomic_int started[N], completed[N];
	sp_join_handle jh[N];
	int out[N];
	int spawn_errors = 0;
	for (int i = 0; i < N; i++) {
		atomic_init(&started[i], 0);
		atomic_init(&completed[i], 0);
		out[i] = 99;
		struct one_send t = {.base = {.poll = one_send_poll, .name = "one_send"},
				     .ch = &ch,
				     .item = i,
				     .started = &started[i],
				     .completed = &completed[i]};
		spawn_errors += SP_RUNTIME_SPAWN_OUT(rt, "one_send", &jh[i], t) != 0;
		jh[i].dst = &out[i];
	}
	int blocked = SPT_WAIT_UNTIL(wl_check(&ch.lock, &ch.send_waiters) == N, SPT_SOON_MS);

	/* act: receive everything that arrives while aborting the even ones */
	int seen[N] = {0}, extra = 0, received = 0;
	for (int i = 0; i < N; i += 2) {
		int v;
		if (sp_mpsc_try_recv(&ch, &v) == 0) {
			if (v >= 0 && v < N)
				seen[v]++;
			else
				extra++;
		}
		sp_join_handle_abort(&jh[i]);
	}
	int statuses[N];
	uint64_t deadline = spt_now_ns() + (uint64_t)SPT_SOON_MS * 1000000ull * SPT_TIME_MULT;
	for (int i = 0; i < N; i++) {
		/* keep draining so that the odd senders all get a slot */
		while (!atomic_load(&completed[i]) && (i % 2) == 1 && spt_now_ns() < deadline) {
			int v;
			if (sp_mpsc_try_recv(&ch, &v) == 0) {
				if (v >= 0 && v < N)
					seen[v]++;
				else
					extra++;
			} else {
				spt_sleep_us(100);
			}
		}
	}
	int finished = spt_finish_or_abort(rt, jh, N);
	for (int i = 0; i < N; i++)
		statuses[i] = sp_join_handle_wait(&jh[i]);
	int v;
	while (sp_mpsc_try_recv(&ch, &v) == 0) {
		if (v >= 0 && v < N)
			seen[v]++;
		else
			extra++;
	}
	int free_rc = sp_runtime_free(rt);
	size_t reserved = ch.reserved;
	int sq = wl_check(&ch.lock, &ch.send_waiters);
	sp_mpsc_destroy(&ch);

	/* assert: an item arrived exactly once iff its send completed */
	assert_true(finished);
	assert_int_equal(spawn_errors, 0);
	assert_true(blocked);
	for (int i = 0; i < N; i++) {
		if (i % 2 == 1) {
			assert_int_equal(statuses[i], 0);
		} else {
			assert_true(statuses[i] == 0 || statuses[i] == SP_ECANCELED);
		}
		int sent = statuses[i] == 0;
		assert_int_equal(seen[i], sent);
		if (sent)
			assert_int_equal(out[i], 0);
		received += seen[i];
	}
	assert_int_equal(extra, 2); /* the two prefilled items */
	assert_true(received >= N / 2);
	assert_int_equal(reserved, 0);
	assert_int_equal(sq, 0);
	assert_int_equal(free_rc, 0);
}

/* ---- notify ------------------------------------------------------------------ */

static void notify__one_stores_a_single_permit(void **state)
{
	(void)state;
	/* arrange */
	sp_notify n;
	sp_notify_init(&n);
	struct spt_manual_cx c1, c2;
	spt_manual_cx_init(&c1);
	spt_manual_cx_init(&c2);
	sp_notified a, b;

	/* act */
	sp_notify_one(&n);
	sp_notify_one(&n); /* permits do not accumulate */
	sp_notified_init(&a, &n);
	sp_notified_init(&b, &n);
	sp_poll pa = sp_future_poll(&a.base, &c1.cx);
	sp_poll pb = sp_future_poll(&b.base, &c2.cx);
	sp_notify_one(&n);
	int wb = wakes(&c2);
	sp_poll pb2 = sp_future_poll(&b.base, &c2.cx);
	sp_future_drop(&a.base);
	sp_future_drop(&b.base);
	int permit_left = n.permit;
	sp_notify_destroy(&n);

	/* assert */
	assert_int_equal(pa, SP_READY);
	assert_int_equal(pb, SP_PENDING);
	assert_int_equal(wb, 1);
	assert_int_equal(pb2, SP_READY);
	assert_int_equal(permit_left, 0);
	assert_int_equal(spt_live_wakers(&c1), 0);
	assert_int_equal(spt_live_wakers(&c2), 0);
}

static void notify__one_wakes_oldest_waiter_only(void **state)
{
	(void)state;
	/* arrange */
	sp_notify n;
	sp_notify_init(&n);
	struct spt_manual_cx c[3];
	sp_notified w[3];
	for (int i = 0; i < 3; i++) {
		spt_manual_cx_init(&c[i]);
		sp_notified_init(&w[i], &n);
		sp_future_poll(&w[i].base, &c[i].cx);
	}

	/* act */
	sp_notify_one(&n);
	int w0 = wakes(&c[0]), w1 = wakes(&c[1]), w2 = wakes(&c[2]);
	sp_poll p1 = sp_future_poll(&w[1].base, &c[1].cx);
	sp_poll p0 = sp_future_poll(&w[0].base, &c[0].cx);
	sp_notify_one(&n);
	int w1b = wakes(&c[1]), w2b = wakes(&c[2]);
	sp_poll p1b = sp_future_poll(&w[1].base, &c[1].cx);
	int queued = wl_check(&n.lock, &n.waiters);
	for (int i = 0; i < 3; i++)
		sp_future_drop(&w[i].base);
	int queued_after = wl_check(&n.lock, &n.waiters);
	int permit = n.permit;
	sp_notify_destroy(&n);

	/* assert */
	assert_int_equal(w0, 1);
	assert_int_equal(w1, 0);
	assert_int_equal(w2, 0);
	assert_int_equal(p1, SP_PENDING);
	assert_int_equal(p0, SP_READY);
	assert_int_equal(w1b, 1);
	assert_int_equal(w2b, 0);
	assert_int_equal(p1b, SP_READY);
	assert_int_equal(queued, 1);
	assert_int_equal(queued_after, 0);
	assert_int_equal(permit, 0); /* dropping a waiter that was never notified stores none */
	for (int i = 0; i < 3; i++)
		assert_int_equal(spt_live_wakers(&c[i]), 0);
}

static void notify__waiters_wakes_all_registered_and_stores_no_permit(void **state)
{
	(void)state;
	/* arrange: two waiting, one created but not yet polled */
	sp_notify n;
	sp_notify_init(&n);
	struct spt_manual_cx c[4];
	sp_notified w[4];
	for (int i = 0; i < 3; i++) {
		spt_manual_cx_init(&c[i]);
		sp_notified_init(&w[i], &n);
	}
	spt_manual_cx_init(&c[3]);
	sp_future_poll(&w[0].base, &c[0].cx);
	sp_future_poll(&w[1].base, &c[1].cx);

	/* act */
	sp_notify_waiters(&n);
	int w0 = wakes(&c[0]), w1 = wakes(&c[1]);
	sp_poll p0 = sp_future_poll(&w[0].base, &c[0].cx);
	sp_poll p1 = sp_future_poll(&w[1].base, &c[1].cx);
	sp_poll p2 = sp_future_poll(&w[2].base, &c[2].cx); /* created before the call */
	sp_notified_init(&w[3], &n);
	sp_poll p3 = sp_future_poll(&w[3].base, &c[3].cx); /* after: waits */
	int permit = n.permit;
	for (int i = 0; i < 4; i++)
		sp_future_drop(&w[i].base);
	int queued_after = wl_check(&n.lock, &n.waiters);
	sp_notify_destroy(&n);

	/* assert */
	assert_int_equal(w0, 1);
	assert_int_equal(w1, 1);
	assert_int_equal(p0, SP_READY);
	assert_int_equal(p1, SP_READY);
	assert_int_equal(p2, SP_READY);
	assert_int_equal(p3, SP_PENDING);
	assert_int_equal(permit, 0);
	assert_int_equal(queued_after, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(spt_live_wakers(&c[i]), 0);
}

static void notify__dropped_notified_passes_notify_one_on(void **state)
{
	(void)state;
	/* arrange */
	sp_notify n;
	sp_notify_init(&n);
	struct spt_manual_cx c[3];
	sp_notified w[3];
	for (int i = 0; i < 3; i++) {
		spt_manual_cx_init(&c[i]);
		sp_notified_init(&w[i], &n);
	}
	sp_future_poll(&w[0].base, &c[0].cx);
	sp_future_poll(&w[1].base, &c[1].cx);

	/* act: w0 is notified, then dropped unobserved: w1 gets it. w1 is then
	 * notified and dropped with nobody waiting: the permit is stored. */
	sp_notify_one(&n);
	sp_future_drop(&w[0].base);
	int w1 = wakes(&c[1]);
	sp_poll p1 = sp_future_poll(&w[1].base, &c[1].cx);
	sp_future_drop(&w[1].base);
	sp_notified x;
	struct spt_manual_cx cx;
	spt_manual_cx_init(&cx);
	sp_notified_init(&x, &n);
	sp_future_poll(&x.base, &cx.cx);
	sp_notify_one(&n);
	sp_future_drop(&x.base);
	sp_poll p2 = sp_future_poll(&w[2].base, &c[2].cx);
	sp_future_drop(&w[2].base);
	int queued_after = wl_check(&n.lock, &n.waiters);
	sp_notify_destroy(&n);

	/* assert */
	assert_int_equal(w1, 1);
	assert_int_equal(p1, SP_READY);
	assert_int_equal(p2, SP_READY); /* the permit x did not observe */
	assert_int_equal(queued_after, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(spt_live_wakers(&c[i]), 0);
	assert_int_equal(spt_live_wakers(&cx), 0);
}

/* Awaits one notified, then counts. */
struct waiter_task {
	sp_future base;
	sp_notify *n;
	atomic_int *registered, *done;
	sp_notified nf;
};

static sp_poll waiter_task_poll(sp_future *f, sp_context *cx)
{
	struct waiter_task *self = (struct waiter_task *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_notified_init(&self->nf, self->n);
	atomic_fetch_add(self->registered, 1);
	SP_AWAIT(&self->nf);
	atomic_fetch_add(self->done, 1);
	SP_ASYNC_END();
}

static void notify__runtime_one_then_waiters(void **state)
{
	(void)state;
	/* arrange: 16 tasks wait on one notify across 4 workers */
	enum { N = 16 };
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	sp_notify n;
	sp_notify_init(&n);
	atomic_int registered = 0, done = 0;
	sp_join_handle jh[N];
	int spawn_errors = 0;
	for (int i = 0; i < N; i++) {
		struct waiter_task t = {.base = {.poll = waiter_task_poll, .name = "waiter"},
					.n = &n,
					.registered = &registered,
					.done = &done};
		spawn_errors += SP_RUNTIME_SPAWN(rt, "waiter", &jh[i], t) != 0;
	}
	int all_queued = SPT_WAIT_UNTIL(wl_check(&n.lock, &n.waiters) == N, SPT_SOON_MS);

	/* act */
	sp_notify_one(&n);
	int one_done = SPT_WAIT_UNTIL(atomic_load(&done) == 1, SPT_SOON_MS);
	spt_sleep_ms(10);
	int after_one = atomic_load(&done);
	sp_notify_waiters(&n);
	int finished = spt_finish_or_abort(rt, jh, N);
	int statuses = 0;
	for (int i = 0; i < N; i++)
		statuses |= sp_join_handle_wait(&jh[i]);
	int free_rc = sp_runtime_free(rt);
	int permit = n.permit;
	int queued = wl_check(&n.lock, &n.waiters);
	sp_notify_destroy(&n);

	/* assert */
	assert_true(finished);
	assert_int_equal(spawn_errors, 0);
	assert_true(all_queued);
	assert_true(one_done);
	assert_int_equal(after_one, 1);
	assert_int_equal(statuses, 0);
	assert_int_equal(atomic_load(&done), N);
	assert_int_equal(permit, 0);
	assert_int_equal(queued, 0);
	assert_int_equal(free_rc, 0);
}

/* ---- mutex ------------------------------------------------------------------- */

struct mutex_shared {
	sp_mutex m;
	long counter; /* plain: only touched with m held */
	atomic_int holders;
	atomic_int violations;
};

/* Locks, reads the counter, sometimes yields inside the lock, writes +1. */
struct locker {
	sp_future base;
	int out;
	struct mutex_shared *sh;
	int iters, i;
	long tmp;
	sp_mutex_lock l;
};

static sp_poll locker_poll(sp_future *f, sp_context *cx)
{
	struct locker *self = (struct locker *)f;
	struct mutex_shared *sh = self->sh;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < self->iters; self->i++) {
		sp_mutex_lock_init(&self->l, &sh->m);
		SP_AWAIT(&self->l);
		if (atomic_fetch_add(&sh->holders, 1) != 0)
			atomic_fetch_add(&sh->violations, 1);
		self->tmp = sh->counter;
		if (self->i % 3 == 0)
			SP_YIELD(); /* hold the lock across a suspension */
		sh->counter = self->tmp + 1;
		atomic_fetch_sub(&sh->holders, 1);
		sp_mutex_unlock(&sh->m);
	}
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void mutex__mutual_exclusion_across_workers(void **state)
{
	(void)state;
	/* arrange: 4 workers, 64 tasks, a non-atomic counter under the lock */
	enum { NT = 64 };
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	struct mutex_shared sh;
	memset(&sh, 0, sizeof sh);
	sp_mutex_init(&sh.m);
	int iters = (int)spt_scaled(400, 20);
	sp_join_handle jh[NT];
	int spawn_errors = 0;

	/* act */
	for (int i = 0; i < NT; i++) {
		struct locker l = {
			.base = {.poll = locker_poll, .name = "locker"}, .sh = &sh, .iters = iters};
		spawn_errors += SP_RUNTIME_SPAWN(rt, "locker", &jh[i], l) != 0;
	}
	int finished = spt_finish_or_abort(rt, jh, NT);
	int statuses = 0;
	for (int i = 0; i < NT; i++)
		statuses |= sp_join_handle_wait(&jh[i]);
	int free_rc = sp_runtime_free(rt);
	int locked = mutex_locked(&sh.m);
	int queued = wl_check(&sh.m.lock, &sh.m.waiters);
	sp_mutex_destroy(&sh.m);

	/* assert */
	assert_true(finished);
	assert_int_equal(spawn_errors, 0);
	assert_int_equal(statuses, 0);
	assert_int_equal(sh.counter, (long)NT * iters);
	assert_int_equal(atomic_load(&sh.violations), 0);
	assert_int_equal(locked, 0);
	assert_int_equal(queued, 0);
	assert_int_equal(free_rc, 0);
}

static void mutex__fifo_handoff_by_hand(void **state)
{
	(void)state;
	/* arrange: held; three lock futures queue in order */
	sp_mutex m;
	sp_mutex_init(&m);
	int first = sp_mutex_try_lock(&m);
	struct spt_manual_cx c[4];
	sp_mutex_lock l[4];
	sp_poll p[4];
	for (int i = 0; i < 4; i++) {
		spt_manual_cx_init(&c[i]);
		sp_mutex_lock_init(&l[i], &m);
	}
	for (int i = 0; i < 3; i++)
		p[i] = sp_future_poll(&l[i].base, &c[i].cx);

	/* act */
	sp_mutex_unlock(&m); /* handed to l0, which has not run yet */
	int w0 = wakes(&c[0]), w1 = wakes(&c[1]);
	int barge = sp_mutex_try_lock(&m);
	sp_poll late = sp_future_poll(&l[3].base, &c[3].cx); /* queues behind l2 */
	sp_poll p1 = sp_future_poll(&l[1].base, &c[1].cx);
	sp_poll p0 = sp_future_poll(&l[0].base, &c[0].cx);
	sp_mutex_unlock(&m);
	int w1b = wakes(&c[1]), w2b = wakes(&c[2]);
	sp_poll p1b = sp_future_poll(&l[1].base, &c[1].cx);
	sp_mutex_unlock(&m);
	sp_poll p2 = sp_future_poll(&l[2].base, &c[2].cx);
	sp_mutex_unlock(&m);
	sp_poll p3 = sp_future_poll(&l[3].base, &c[3].cx);
	sp_mutex_unlock(&m);
	int locked = mutex_locked(&m);
	for (int i = 0; i < 4; i++)
		sp_future_drop(&l[i].base);
	sp_mutex_destroy(&m);

	/* assert */
	assert_int_equal(first, 0);
	assert_int_equal(p[0], SP_PENDING);
	assert_int_equal(p[1], SP_PENDING);
	assert_int_equal(p[2], SP_PENDING);
	assert_int_equal(w0, 1);
	assert_int_equal(w1, 0);
	assert_int_equal(barge, SP_EAGAIN); /* no barging past the handoff */
	assert_int_equal(late, SP_PENDING);
	assert_int_equal(p1, SP_PENDING);
	assert_int_equal(p0, SP_READY);
	assert_int_equal(w1b, 1);
	assert_int_equal(w2b, 0);
	assert_int_equal(p1b, SP_READY);
	assert_int_equal(p2, SP_READY);
	assert_int_equal(p3, SP_READY);
	assert_int_equal(locked, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(spt_live_wakers(&c[i]), 0);
}

struct fifo_shared {
	sp_mutex m;
	int order[32];
	int n; /* under m */
};

struct fifo_locker {
	sp_future base;
	struct fifo_shared *sh;
	int id;
	sp_mutex_lock l;
};

static sp_poll fifo_locker_poll(sp_future *f, sp_context *cx)
{
	struct fifo_locker *self = (struct fifo_locker *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_mutex_lock_init(&self->l, &self->sh->m);
	SP_AWAIT(&self->l);
	if (self->sh->n < 32)
		self->sh->order[self->sh->n] = self->id;
	self->sh->n++;
	sp_mutex_unlock(&self->sh->m);
	SP_ASYNC_END();
}

static void mutex__tasks_acquire_in_queue_order(void **state)
{
	(void)state;
	/* arrange: the main thread holds the lock; tasks queue one by one */
	enum { N = 12 };
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	struct fifo_shared sh;
	memset(&sh, 0, sizeof sh);
	sp_mutex_init(&sh.m);
	int held = sp_mutex_try_lock(&sh.m);
	sp_join_handle jh[N];
	int spawn_errors = 0, queued_in_turn = 1;
	for (int i = 0; i < N; i++) {
		struct fifo_locker t = {.base = {.poll = fifo_locker_poll, .name = "fifo_locker"},
					.sh = &sh,
					.id = i};
		spawn_errors += SP_RUNTIME_SPAWN(rt, "fifo_locker", &jh[i], t) != 0;
		queued_in_turn &=
			SPT_WAIT_UNTIL(wl_check(&sh.m.lock, &sh.m.waiters) == i + 1, SPT_SOON_MS);
	}

	/* act */
	sp_mutex_unlock(&sh.m);
	int finished = spt_finish_or_abort(rt, jh, N);
	int statuses = 0;
	for (int i = 0; i < N; i++)
		statuses |= sp_join_handle_wait(&jh[i]);
	int free_rc = sp_runtime_free(rt);
	int locked = mutex_locked(&sh.m);
	sp_mutex_destroy(&sh.m);

	/* assert */
	assert_true(finished);
	assert_int_equal(held, 0);
	assert_int_equal(spawn_errors, 0);
	assert_true(queued_in_turn);
	assert_int_equal(statuses, 0);
	assert_int_equal(sh.n, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(sh.order[i], i);
	assert_int_equal(locked, 0);
	assert_int_equal(free_rc, 0);
}

static void mutex__dropped_waiters_queued_and_granted(void **state)
{
	(void)state;
	/* arrange: held; l0, l1, l2 queue */
	sp_mutex m;
	sp_mutex_init(&m);
	sp_mutex_try_lock(&m);
	struct spt_manual_cx c[3];
	sp_mutex_lock l[3];
	for (int i = 0; i < 3; i++) {
		spt_manual_cx_init(&c[i]);
		sp_mutex_lock_init(&l[i], &m);
		sp_future_poll(&l[i].base, &c[i].cx);
	}

	/* act: drop l1 while queued (middle of the list); unlock grants l0,
	 * which is dropped before it looks: l2 gets the lock. Then x waits, is
	 * granted by l2's unlock and dropped unobserved with nobody behind it:
	 * the mutex is free again. */
	sp_future_drop(&l[1].base);
	int q1 = wl_check(&m.lock, &m.waiters);
	sp_mutex_unlock(&m);
	sp_future_drop(&l[0].base);
	int w2 = wakes(&c[2]);
	sp_poll p2 = sp_future_poll(&l[2].base, &c[2].cx);
	sp_future_drop(&l[2].base);
	sp_mutex_lock x;
	struct spt_manual_cx cx;
	spt_manual_cx_init(&cx);
	sp_mutex_lock_init(&x, &m);
	sp_poll px = sp_future_poll(&x.base, &cx.cx); /* l2 still holds it */
	sp_mutex_unlock(&m);			      /* l2's unlock: granted to x */
	sp_future_drop(&x.base);		      /* x never looked */
	int locked = mutex_locked(&m);
	int relock = sp_mutex_try_lock(&m);
	sp_mutex_unlock(&m);
	int q_end = wl_check(&m.lock, &m.waiters);
	sp_mutex_destroy(&m);

	/* assert */
	assert_int_equal(q1, 2);
	assert_int_equal(wakes(&c[0]), 1);
	assert_int_equal(wakes(&c[1]), 0);
	assert_int_equal(w2, 1);
	assert_int_equal(p2, SP_READY);
	assert_int_equal(px, SP_PENDING);
	assert_int_equal(locked, 0); /* not leaked */
	assert_int_equal(relock, 0);
	assert_int_equal(q_end, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(spt_live_wakers(&c[i]), 0);
	assert_int_equal(spt_live_wakers(&cx), 0);
}

/* Locks once, counts, unlocks. */
struct lock_once {
	sp_future base;
	int out;
	sp_mutex *m;
	atomic_int *acquired;
	sp_mutex_lock l;
};

static sp_poll lock_once_poll(sp_future *f, sp_context *cx)
{
	struct lock_once *self = (struct lock_once *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_mutex_lock_init(&self->l, self->m);
	SP_AWAIT(&self->l);
	atomic_fetch_add(self->acquired, 1);
	sp_mutex_unlock(self->m);
	SP_RETURN(1);
	SP_ASYNC_END();
}

static void mutex__aborted_waiters_never_leak_the_lock(void **state)
{
	(void)state;
	/* arrange: 24 tasks wait on a held mutex */
	enum { N = 24 };
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	sp_mutex m;
	sp_mutex_init(&m);
	sp_mutex_try_lock(&m);
	atomic_int acquired = 0;
	sp_join_handle jh[N];
	int out[N], spawn_errors = 0;
	for (int i = 0; i < N; i++) {
		out[i] = 0;
		struct lock_once t = {.base = {.poll = lock_once_poll, .name = "lock_once"},
				      .m = &m,
				      .acquired = &acquired};
		spawn_errors += SP_RUNTIME_SPAWN_OUT(rt, "lock_once", &jh[i], t) != 0;
		jh[i].dst = &out[i];
	}
	int queued = SPT_WAIT_UNTIL(wl_check(&m.lock, &m.waiters) == N, SPT_SOON_MS);

	/* act: abort every third waiter while queued, then unlock and abort
	 * every third of the others while the handoffs race with the aborts */
	for (int i = 0; i < N; i += 3)
		sp_join_handle_abort(&jh[i]);
	int q_after_abort = SPT_WAIT_UNTIL(wl_check(&m.lock, &m.waiters) == N - N / 3, SPT_SOON_MS);
	sp_mutex_unlock(&m);
	for (int i = 1; i < N; i += 3)
		sp_join_handle_abort(&jh[i]);
	int finished = spt_finish_or_abort(rt, jh, N);
	int completed = 0, cancelled = 0, other = 0;
	for (int i = 0; i < N; i++) {
		int s = sp_join_handle_wait(&jh[i]);
		if (s == 0 && out[i] == 1)
			completed++;
		else if (s == SP_ECANCELED)
			cancelled++;
		else
			other++;
	}
	int free_rc = sp_runtime_free(rt);
	int locked = mutex_locked(&m);
	int q_end = wl_check(&m.lock, &m.waiters);
	sp_mutex_destroy(&m);

	/* assert */
	assert_true(finished);
	assert_int_equal(spawn_errors, 0);
	assert_true(queued);
	assert_true(q_after_abort);
	assert_int_equal(other, 0);
	assert_int_equal(completed + cancelled, N);
	assert_true(cancelled >= N / 3);
	assert_int_equal(completed, atomic_load(&acquired));
	assert_int_equal(locked, 0);
	assert_int_equal(q_end, 0);
	assert_int_equal(free_rc, 0);
}

/* ---- semaphore --------------------------------------------------------------- */

#define SEM_PERMITS 3

struct sem_shared {
	sp_semaphore s;
	atomic_int in_use;
	atomic_int max_in_use;
	atomic_int violations;
};

struct sem_user {
	sp_future base;
	int out;
	struct sem_shared *sh;
	int id, iters, i;
	size_t n;
	sp_semaphore_acquire a;
};

static sp_poll sem_user_poll(sp_future *f, sp_context *cx)
{
	struct sem_user *self = (struct sem_user *)f;
	struct sem_shared *sh = self->sh;
	SP_ASYNC_BEGIN(f, cx);
	for (self->i = 0; self->i < self->iters; self->i++) {
		self->n = 1 + (size_t)((self->id + self->i) % 2);
		sp_semaphore_acquire_init(&self->a, &sh->s, self->n);
		SP_AWAIT(&self->a);
		{
			int now = atomic_fetch_add(&sh->in_use, (int)self->n) + (int)self->n;
			if (now > SEM_PERMITS)
				atomic_fetch_add(&sh->violations, 1);
			int mx = atomic_load(&sh->max_in_use);
			while (now > mx &&
			       !atomic_compare_exchange_weak(&sh->max_in_use, &mx, now)) {
			}
		}
		SP_YIELD();
		atomic_fetch_sub(&sh->in_use, (int)self->n);
		sp_semaphore_release(&sh->s, self->n);
	}
	SP_RETURN(0);
	SP_ASYNC_END();
}

static void semaphore__permits_never_exceeded(void **state)
{
	(void)state;
	/* arrange */
	enum { NT = 32 };
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	struct sem_shared sh;
	memset(&sh, 0, sizeof sh);
	sp_semaphore_init(&sh.s, SEM_PERMITS);
	int iters = (int)spt_scaled(300, 20);
	sp_join_handle jh[NT];
	int spawn_errors = 0;

	/* act */
	for (int i = 0; i < NT; i++) {
		struct sem_user u = {.base = {.poll = sem_user_poll, .name = "sem_user"},
				     .sh = &sh,
				     .id = i,
				     .iters = iters};
		spawn_errors += SP_RUNTIME_SPAWN(rt, "sem_user", &jh[i], u) != 0;
	}
	int finished = spt_finish_or_abort(rt, jh, NT);
	int statuses = 0;
	for (int i = 0; i < NT; i++)
		statuses |= sp_join_handle_wait(&jh[i]);
	int free_rc = sp_runtime_free(rt);
	size_t avail = sp_semaphore_available(&sh.s);
	int queued = wl_check(&sh.s.lock, &sh.s.waiters);
	sp_semaphore_destroy(&sh.s);

	/* assert */
	assert_true(finished);
	assert_int_equal(spawn_errors, 0);
	assert_int_equal(statuses, 0);
	assert_int_equal(atomic_load(&sh.violations), 0);
	assert_true(atomic_load(&sh.max_in_use) <= SEM_PERMITS);
	assert_true(atomic_load(&sh.max_in_use) >= 2);
	assert_int_equal(avail, SEM_PERMITS);
	assert_int_equal(queued, 0);
	assert_int_equal(free_rc, 0);
}

static void semaphore__fifo_no_overtaking_and_drop_of_head(void **state)
{
	(void)state;
	/* arrange: 2 permits; a(2) holds them; b(2) then c(1) wait */
	sp_semaphore s;
	sp_semaphore_init(&s, 2);
	struct spt_manual_cx c[4];
	sp_semaphore_acquire a[4];
	size_t want[4] = {2, 2, 1, 3};
	for (int i = 0; i < 4; i++) {
		spt_manual_cx_init(&c[i]);
		sp_semaphore_acquire_init(&a[i], &s, want[i]);
	}

	/* act */
	sp_poll pa = sp_future_poll(&a[0].base, &c[0].cx);
	sp_poll pb = sp_future_poll(&a[1].base, &c[1].cx);
	sp_poll pc = sp_future_poll(&a[2].base, &c[2].cx);
	sp_semaphore_release(&s, 1); /* 1 free: c fits but must not overtake b */
	int wb = wakes(&c[1]), wc = wakes(&c[2]);
	int try1 = sp_semaphore_try_acquire(&s, 1);
	struct spt_manual_cx cl;
	spt_manual_cx_init(&cl);
	sp_semaphore_acquire late;
	sp_semaphore_acquire_init(&late, &s, 1);
	sp_poll plate = sp_future_poll(&late.base, &cl.cx); /* nor may a new one */
	sp_future_drop(&late.base);
	sp_semaphore_release(&s, 1); /* 2 free: b */
	int wb2 = wakes(&c[1]), wc2 = wakes(&c[2]);
	sp_poll pb2 = sp_future_poll(&a[1].base, &c[1].cx);
	sp_poll pd = sp_future_poll(&a[3].base, &c[3].cx); /* d(3) queues behind c */
	sp_semaphore_release(&s, 2);			   /* c gets 1, d needs 3 */
	int wc3 = wakes(&c[2]), wd = wakes(&c[3]);
	sp_poll pc2 = sp_future_poll(&a[2].base, &c[2].cx);
	size_t avail_mid = sp_semaphore_available(&s);
	sp_semaphore_release(&s, 1); /* 2 free, d still waits */
	size_t avail_before_drop = sp_semaphore_available(&s);
	sp_future_drop(&a[3].base); /* dropping the head waiter */
	size_t avail_end = sp_semaphore_available(&s);
	for (int i = 0; i < 4; i++)
		sp_future_drop(&a[i].base);
	int q = wl_check(&s.lock, &s.waiters);
	sp_semaphore_destroy(&s);

	/* assert */
	assert_int_equal(pa, SP_READY);
	assert_int_equal(pb, SP_PENDING);
	assert_int_equal(pc, SP_PENDING);
	assert_int_equal(wb, 0);
	assert_int_equal(wc, 0);
	assert_int_equal(try1, SP_EAGAIN); /* others wait: no overtaking */
	assert_int_equal(plate, SP_PENDING);
	assert_int_equal(spt_live_wakers(&cl), 0);
	assert_int_equal(wb2, 1);
	assert_int_equal(wc2, 0);
	assert_int_equal(pb2, SP_READY);
	assert_int_equal(pd, SP_PENDING);
	assert_int_equal(wc3, 1);
	assert_int_equal(wd, 0);
	assert_int_equal(pc2, SP_READY);
	assert_int_equal(avail_mid, 1);
	assert_int_equal(avail_before_drop, 2);
	assert_int_equal(avail_end, 2);
	assert_int_equal(q, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(spt_live_wakers(&c[i]), 0);
}

static void semaphore__dropped_waiters_return_or_pass_permits(void **state)
{
	(void)state;
	/* arrange: 0 permits; big(3), small(1) wait */
	sp_semaphore s;
	sp_semaphore_init(&s, 0);
	struct spt_manual_cx c[3];
	sp_semaphore_acquire big, small, g;
	for (int i = 0; i < 3; i++)
		spt_manual_cx_init(&c[i]);
	sp_semaphore_acquire_init(&big, &s, 3);
	sp_semaphore_acquire_init(&small, &s, 1);
	sp_future_poll(&big.base, &c[0].cx);
	sp_future_poll(&small.base, &c[1].cx);

	/* act: 1 permit cannot serve big (head); dropping big lets small have
	 * it at once. Then g(2) is granted and dropped unobserved: the permits
	 * come back. */
	sp_semaphore_release(&s, 1);
	int ws_before = wakes(&c[1]);
	sp_future_drop(&big.base);
	int ws_after = wakes(&c[1]);
	sp_poll ps = sp_future_poll(&small.base, &c[1].cx);
	sp_semaphore_acquire_init(&g, &s, 2);
	sp_poll pg = sp_future_poll(&g.base, &c[2].cx);
	sp_semaphore_release(&s, 2);
	int wg = wakes(&c[2]);
	size_t avail_granted = sp_semaphore_available(&s);
	sp_future_drop(&g.base);
	size_t avail_end = sp_semaphore_available(&s);
	sp_future_drop(&small.base);
	int q = wl_check(&s.lock, &s.waiters);
	sp_semaphore_destroy(&s);

	/* assert */
	assert_int_equal(ws_before, 0);
	assert_int_equal(ws_after, 1);
	assert_int_equal(ps, SP_READY);
	assert_int_equal(pg, SP_PENDING);
	assert_int_equal(wg, 1);
	assert_int_equal(avail_granted, 0);
	assert_int_equal(avail_end, 2); /* not leaked */
	assert_int_equal(q, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(spt_live_wakers(&c[i]), 0);
}

/* Acquires n, counts, releases. */
struct acquire_once {
	sp_future base;
	int out;
	sp_semaphore *s;
	size_t n;
	atomic_int *acquired;
	sp_semaphore_acquire a;
};

static sp_poll acquire_once_poll(sp_future *f, sp_context *cx)
{
	struct acquire_once *self = (struct acquire_once *)f;
	SP_ASYNC_BEGIN(f, cx);
	sp_semaphore_acquire_init(&self->a, self->s, self->n);
	SP_AWAIT(&self->a);
	atomic_fetch_add(self->acquired, 1);
	sp_semaphore_release(self->s, self->n);
	SP_RETURN(1);
	SP_ASYNC_END();
}

static void semaphore__aborted_acquirers_never_leak_permits(void **state)
{
	(void)state;
	/* arrange: no permits; 24 tasks want 1 or 2 */
	enum { N = 24 };
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 4);
	sp_semaphore s;
	sp_semaphore_init(&s, 0);
	atomic_int acquired = 0;
	sp_join_handle jh[N];
	int out[N], spawn_errors = 0;
	for (int i = 0; i < N; i++) {
		out[i] = 0;
		struct acquire_once t = {.base = {.poll = acquire_once_poll, .name = "acq"},
					 .s = &s,
					 .n = 1 + (size_t)(i % 2),
					 .acquired = &acquired};
		spawn_errors += SP_RUNTIME_SPAWN_OUT(rt, "acq", &jh[i], t) != 0;
		jh[i].dst = &out[i];
	}
	int queued = SPT_WAIT_UNTIL(wl_check(&s.lock, &s.waiters) == N, SPT_SOON_MS);

	/* act: abort some while queued, release 2, abort more while grants fly */
	for (int i = 0; i < N; i += 4)
		sp_join_handle_abort(&jh[i]);
	sp_semaphore_release(&s, 2);
	for (int i = 1; i < N; i += 3)
		sp_join_handle_abort(&jh[i]);
	int finished = spt_finish_or_abort(rt, jh, N);
	int completed = 0, cancelled = 0, other = 0;
	for (int i = 0; i < N; i++) {
		int st = sp_join_handle_wait(&jh[i]);
		if (st == 0 && out[i] == 1)
			completed++;
		else if (st == SP_ECANCELED)
			cancelled++;
		else
			other++;
	}
	int free_rc = sp_runtime_free(rt);
	size_t avail = sp_semaphore_available(&s);
	int q_end = wl_check(&s.lock, &s.waiters);
	sp_semaphore_destroy(&s);

	/* assert */
	assert_true(finished);
	assert_int_equal(spawn_errors, 0);
	assert_true(queued);
	assert_int_equal(other, 0);
	assert_int_equal(completed + cancelled, N);
	assert_int_equal(completed, atomic_load(&acquired));
	assert_int_equal(avail, 2); /* every permit came back */
	assert_int_equal(q_end, 0);
	assert_int_equal(free_rc, 0);
}

/* ---- cooperative budget ------------------------------------------------------ */

struct flag_task {
	sp_future base;
	atomic_int *flag;
};

static sp_poll flag_task_poll(sp_future *f, sp_context *cx)
{
	(void)cx;
	atomic_store(((struct flag_task *)f)->flag, 1);
	return SP_READY;
}

/* Spawns a flagger on its own (single) worker, then receives n ready items:
 * out = the item count at which it first saw the flag (n if never). */
struct greedy {
	sp_future base;
	int out;
	sp_mpsc *ch;
	int n, i, item, seen_at;
	atomic_int *flag;
	struct flag_task ft;
	sp_mpsc_recv r;
};

static sp_poll greedy_poll(sp_future *f, sp_context *cx)
{
	struct greedy *self = (struct greedy *)f;
	SP_ASYNC_BEGIN(f, cx);
	self->ft = (struct flag_task){.base = {.poll = flag_task_poll, .name = "flag"},
				      .flag = self->flag};
	if (SP_SPAWN("flag", NULL, self->ft) != 0)
		SP_RETURN(-1);
	self->seen_at = self->n;
	for (self->i = 0; self->i < self->n; self->i++) {
		if (self->seen_at == self->n && atomic_load(self->flag))
			self->seen_at = self->i;
		sp_mpsc_recv_init(&self->r, self->ch, &self->item);
		SP_AWAIT(&self->r);
	}
	SP_RETURN(self->seen_at);
	SP_ASYNC_END();
}

static void mpsc__recv_spends_the_coop_budget(void **state)
{
	(void)state;
	/* arrange: 1 worker, a channel with 1000 items ready */
	enum { N = 1000 };
	sp_runtime *rt = spt_runtime(SP_MULTI_THREAD, 1);
	sp_mpsc ch;
	sp_mpsc_init(&ch, sizeof(int), N);
	for (int i = 0; i < N; i++)
		sp_mpsc_try_send(&ch, &i);
	atomic_int flag = 0;
	struct greedy g = {
		.base = {.poll = greedy_poll, .name = "greedy"}, .ch = &ch, .n = N, .flag = &flag};
	sp_join_handle jh;
	int out = -2;

	/* act */
	int rc = SP_RUNTIME_SPAWN_OUT(rt, "greedy", &jh, g);
	jh.dst = &out;
	int finished = spt_finish_or_abort(rt, &jh, 1);
	int status = sp_join_handle_wait(&jh);
	int free_rc = sp_runtime_free(rt);
	sp_mpsc_destroy(&ch);

	/* assert: the always-ready recv loop let the flag task run */
	assert_true(finished);
	assert_int_equal(rc, 0);
	assert_int_equal(status, 0);
	assert_true(out > 0);
	assert_true(out < N);
	assert_int_equal(free_rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mpsc__try_ops_order_capacity_and_close),
		cmocka_unit_test(mpsc__last_sender_release_closes),
		cmocka_unit_test(mpsc__blocked_sender_resumes_exactly_when_consumer_receives),
		cmocka_unit_test(mpsc__recv_waits_then_close_gives_remaining_items_then_epipe),
		cmocka_unit_test(mpsc__close_and_receiver_release_fail_waiting_senders),
		cmocka_unit_test(mpsc__dropped_senders_queued_and_granted_lose_nothing),
		cmocka_unit_test(mpsc__dropped_receivers_lose_no_item),
		cmocka_unit_test(mpsc__many_producers_every_item_exactly_once_in_order),
		cmocka_unit_test(mpsc__task_blocked_on_full_channel_resumes_on_receive),
		cmocka_unit_test(mpsc__close_wakes_waiting_receiver_with_epipe),
		cmocka_unit_test(mpsc__consumer_gets_remaining_items_then_epipe_on_close),
		cmocka_unit_test(mpsc__aborted_blocked_senders_lose_nothing),
		cmocka_unit_test(mpsc__recv_spends_the_coop_budget),
		cmocka_unit_test(notify__one_stores_a_single_permit),
		cmocka_unit_test(notify__one_wakes_oldest_waiter_only),
		cmocka_unit_test(notify__waiters_wakes_all_registered_and_stores_no_permit),
		cmocka_unit_test(notify__dropped_notified_passes_notify_one_on),
		cmocka_unit_test(notify__runtime_one_then_waiters),
		cmocka_unit_test(mutex__mutual_exclusion_across_workers),
		cmocka_unit_test(mutex__fifo_handoff_by_hand),
		cmocka_unit_test(mutex__tasks_acquire_in_queue_order),
		cmocka_unit_test(mutex__dropped_waiters_queued_and_granted),
		cmocka_unit_test(mutex__aborted_waiters_never_leak_the_lock),
		cmocka_unit_test(semaphore__permits_never_exceeded),
		cmocka_unit_test(semaphore__fifo_no_overtaking_and_drop_of_head),
		cmocka_unit_test(semaphore__dropped_waiters_return_or_pass_permits),
		cmocka_unit_test(semaphore__aborted_acquirers_never_leak_permits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
