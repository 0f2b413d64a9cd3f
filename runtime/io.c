/*
 * io.c - readiness of file descriptors: registrations with the driver's
 * epoll (edge-triggered), per-direction wakers, and the futures built on
 * them (readable/writable, read, write, read_exact, write_all).
 *
 * A REGISTRATION (sp_async_fd) is one allocation per fd. Its `readiness`
 * word holds the ready bits (low 16) and a tick (high 48) that every event
 * delivery increments. A future that gets EAGAIN clears the bits it used, but
 * only if the tick is still the one it saw ready: an event that arrived in
 * between is not lost (Tokio's ScheduledIo does the same).
 *
 * WAKERS. One for readers, one for writers, under a spinlock. The driver sets
 * readiness first, then takes the wakers under the lock; a poller stores its
 * waker under the lock, then re-reads readiness. One of the two always sees
 * the other: no lost wakeup.
 *
 * CLOSE. sp_async_fd_free() removes the fd from epoll (before the caller
 * closes it, so a reused fd number is never confused with it), marks the
 * registration closed and wakes both directions: pending futures then
 * complete with SP_EBADF. The memory is reference-counted: the owner holds
 * one reference, and every future on it one from its first poll to its
 * completion or drop, so a woken future can still look at it. The last
 * reference hands it to the driver, which frees it at the start of its next
 * turn: a turn that fetched an event for it before the removal has finished
 * by then, since turns are serialized.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "trace_events.h"
#include "usdt.h"

#define R_READ 1u
#define R_WRITE 2u
#define R_RDHUP 4u
#define R_HUP 8u
#define R_ERR 16u
#define R_BITS 0xffffu
#define TICK_SHIFT 16

struct sp_async_fd {
	_Atomic uint64_t readiness; /* tick << 16 | R_* bits */
	_Atomic bool lock;          /* guards rd, wr */
	sp_waker rd, wr;
	int fd;
	bool is_socket;             /* recv/send(MSG_NOSIGNAL): no VFS, no SIGPIPE */
	_Atomic bool closed;
	_Atomic uint32_t refs;      /* owner + futures in flight */
	sp_runtime *rt;
	sp_async_fd *release_next; /* driver's release stack */
};

static uint32_t dir_mask(int dir)
{
	/* HUP and ERR wake both directions: the next read or write reports it. */
	return dir == SP_IO_READ ? (R_READ | R_RDHUP | R_HUP | R_ERR) : (R_WRITE | R_HUP | R_ERR);
}

int sp_async_fd_new(sp_async_fd **out, int fd)
{
	sp_runtime *rt = sp_runtime_current();
	if (!out || fd < 0)
		return SP_EINVAL;
	if (!rt)
		return SP_ENORUNTIME;
	sp_async_fd *a = calloc(1, sizeof(*a));
	if (!a)
		return SP_ENOMEM;
	sp__driver_need(rt);
	a->fd = fd;
	a->rt = rt;
	atomic_init(&a->refs, 1);
	int type;
	socklen_t tlen = sizeof(type);
	a->is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0;
	/* ordering: release; the driver's first acquire load of readiness
	 * then sees the initialised registration (the kernel's epoll_ctl ->
	 * epoll_wait order is real, but invisible to ThreadSanitizer). */
	atomic_store_explicit(&a->readiness, 0, memory_order_release);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = a};
	if (epoll_ctl(rt->driver.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;
		free(a);
		return err;
	}
	*out = a;
	return 0;
}

int sp_async_fd_fd(const sp_async_fd *a)
{
	return a->fd;
}

static void take_wakers(sp_async_fd *a, uint32_t bits, sp_waker *rd, sp_waker *wr)
{
	sp__spin_lock(&a->lock);
	if (bits & dir_mask(SP_IO_READ)) {
		*rd = a->rd;
		a->rd = (sp_waker){0};
	}
	if (bits & dir_mask(SP_IO_WRITE)) {
		*wr = a->wr;
		a->wr = (sp_waker){0};
	}
	sp__spin_unlock(&a->lock);
}

void sp__io_hold(sp_async_fd *a)
{
	atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
}

void sp__io_put(sp_async_fd *a)
{
	/* ordering: acq_rel, as for task references. */
	if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
		return;
	sp_runtime *rt = a->rt;
	/* ordering: release; the driver's acquire exchange sees the fields. */
	sp_async_fd *head = atomic_load_explicit(&rt->driver.release, memory_order_relaxed);
	do {
		a->release_next = head;
	} while (!atomic_compare_exchange_weak_explicit(&rt->driver.release, &head, a,
							memory_order_release,
							memory_order_relaxed));
}

void sp_async_fd_free(sp_async_fd *a)
{
	if (!a)
		return;
	epoll_ctl(a->rt->driver.epfd, EPOLL_CTL_DEL, a->fd, NULL);
	atomic_store_explicit(&a->closed, true, memory_order_release);
	sp_waker rd = {0}, wr = {0};
	take_wakers(a, R_BITS, &rd, &wr);
	sp_waker_wake(&rd);
	sp_waker_wake(&wr);
	sp__io_put(a);
}

/* Driver, at the start of a turn: free what was released before it. */
void sp__io_release_pending(sp_runtime *rt)
{
	if (!atomic_load_explicit(&rt->driver.release, memory_order_relaxed))
		return;
	sp_async_fd *a = atomic_exchange_explicit(&rt->driver.release, NULL, memory_order_acquire);
	while (a) {
		sp_async_fd *next = a->release_next;
		sp_waker_drop(&a->rd); /* stored after the free by a misbehaving poll */
		sp_waker_drop(&a->wr);
		free(a);
		a = next;
	}
}

void sp__io_release_all(sp_runtime *rt)
{
	sp__io_release_pending(rt);
}

/* An fd as an event's 24-bit detail field. */
static uint32_t hold_fd(int fd)
{
	return fd >= 0 && fd < (int)SP_WAKE_DETAIL_NONE ? (uint32_t)fd : SP_WAKE_DETAIL_NONE;
}

/* Driver: an event for a. */
void sp__io_dispatch(void *ptr, uint32_t events)
{
	sp_async_fd *a = ptr;
	uint32_t bits = 0;
	if (events & EPOLLIN)
		bits |= R_READ;
	if (events & EPOLLOUT)
		bits |= R_WRITE;
	if (events & EPOLLRDHUP)
		bits |= R_RDHUP;
	if (events & EPOLLHUP)
		bits |= R_HUP;
	if (events & EPOLLERR)
		bits |= R_ERR;
	/* ordering: acquire pairs with the registration's release store; the
	 * CAS releases the bits to pollers. */
	uint64_t cur = atomic_load_explicit(&a->readiness, memory_order_acquire);
	uint64_t next;
	do {
		next = (((cur >> TICK_SHIFT) + 1) << TICK_SHIFT) | (cur & R_BITS) | bits;
	} while (!atomic_compare_exchange_weak_explicit(&a->readiness, &cur, next,
							memory_order_acq_rel,
							memory_order_relaxed));
	sp_waker rd = {0}, wr = {0};
	take_wakers(a, bits, &rd, &wr);
	if (SP__UNLIKELY(sp__tracing()) || SP_USDT_ENABLED(wake) || SP_USDT_ENABLED(io_ready)) {
		sp__trace_emit(SP_EV_IO_READY, hold_fd(a->fd), /* nothing if off */
			       (bits & R_READ ? 1 : 0) | (bits & R_WRITE ? 2 : 0) |
				       (bits & (R_ERR | R_HUP | R_RDHUP) ? 4 : 0));
		SP_USDT(io_ready, a->fd,
			(bits & R_READ ? 1 : 0) | (bits & R_WRITE ? 2 : 0) |
				(bits & (R_ERR | R_HUP | R_RDHUP) ? 4 : 0));
		uint32_t src = sp__tls.wake_src;
		sp__tls.wake_src = SP_WAKE_SRC_REACTOR | hold_fd(a->fd) << 8;
		sp_waker_wake(&rd);
		sp_waker_wake(&wr);
		sp__tls.wake_src = src;
		return;
	}
	sp_waker_wake(&rd);
	sp_waker_wake(&wr);
}

/* Ready bits for dir, or 0 after storing the waker (then SP_PENDING). */
static uint32_t poll_ready(sp_async_fd *a, int dir, sp_context *cx, uint64_t *tick)
{
	if (atomic_load_explicit(&a->closed, memory_order_acquire)) {
		*tick = 0;
		return R_ERR;
	}
	uint32_t mask = dir_mask(dir);
	uint64_t r = atomic_load_explicit(&a->readiness, memory_order_acquire);
	if (!(r & mask)) {
		sp__spin_lock(&a->lock);
		sp__waker_store_as(dir == SP_IO_READ ? &a->rd : &a->wr, cx,
				   SP_HOLD_REACTOR | hold_fd(a->fd) << 8);
		sp__spin_unlock(&a->lock);
		r = atomic_load_explicit(&a->readiness, memory_order_acquire);
		if (!(r & mask))
			return 0;
	}
	*tick = r >> TICK_SHIFT;
	return (uint32_t)(r & mask);
}

/* After EAGAIN: forget readiness unless a newer event came. The error bit
 * goes too: EAGAIN means no error is pending any more (a UDP socket's ICMP
 * error is consumed by one receive), and a sticky bit would make every later
 * poll look ready and spin instead of storing its waker. */
static void clear_ready(sp_async_fd *a, int dir, uint64_t tick)
{
	uint32_t clear = (dir == SP_IO_READ ? R_READ : R_WRITE) | R_ERR;
	uint64_t cur = atomic_load_explicit(&a->readiness, memory_order_relaxed);
	while ((cur >> TICK_SHIFT) == tick && (cur & clear)) {
		if (atomic_compare_exchange_weak_explicit(&a->readiness, &cur, cur & ~(uint64_t)clear,
							  memory_order_acq_rel,
							  memory_order_relaxed))
			return;
	}
}

int sp__io_poll_ready(sp_async_fd *a, int dir, sp_context *cx, uint64_t *tick)
{
	if (atomic_load_explicit(&a->closed, memory_order_acquire))
		return SP_EBADF;
	return (int)poll_ready(a, dir, cx, tick);
}

void sp__io_clear_ready(sp_async_fd *a, int dir, uint64_t tick)
{
	clear_ready(a, dir, tick);
}

/* ---- futures ------------------------------------------------------------------ */

static sp_poll rw_step(sp_io_rw *op, sp_context *cx);

/* A future's reference on its fd: from its first poll to its end. */
void sp__io_op_hold(sp_async_fd *a, int *held)
{
	if (!*held) {
		sp__io_hold(a);
		*held = 1;
	}
}

void sp__io_op_put(sp_async_fd *a, int *held)
{
	if (*held) {
		*held = 0;
		sp__io_put(a);
	}
}

static sp_poll ready_poll(sp_future *f, sp_context *cx)
{
	sp_io_ready *r = (sp_io_ready *)f;
	uint64_t tick;
	sp__io_op_hold(r->afd, &r->held);
	if (atomic_load_explicit(&r->afd->closed, memory_order_acquire)) {
		r->out = SP_EBADF;
		sp__io_op_put(r->afd, &r->held);
		return SP_READY;
	}
	uint32_t bits = poll_ready(r->afd, r->dir, cx, &tick);
	if (!bits)
		return SP_PENDING;
	r->out = (int)bits;
	sp__io_op_put(r->afd, &r->held);
	return SP_READY;
}

static void ready_drop(sp_future *f)
{
	sp_io_ready *r = (sp_io_ready *)f;
	sp__io_op_put(r->afd, &r->held);
}

void sp_io_ready_init(sp_io_ready *r, sp_async_fd *afd, int dir)
{
	r->base = (sp_future){.poll = ready_poll, .drop = ready_drop, .name = "io_ready"};
	r->afd = afd;
	r->dir = dir;
	r->out = 0;
	r->held = 0;
}

/*
 * One step of a read or write: try the syscall while the direction looks
 * ready; on EAGAIN clear readiness and wait. Returns SP_READY with *res set
 * (bytes, 0 at EOF for reads, or a negative errno), or SP_PENDING.
 */
static sp_poll io_step(sp_async_fd *a, int dir, void *buf, size_t len, sp_context *cx,
		       ssize_t *res)
{
	for (;;) {
		if (atomic_load_explicit(&a->closed, memory_order_acquire)) {
			*res = SP_EBADF;
			return SP_READY;
		}
		uint64_t tick;
		if (!poll_ready(a, dir, cx, &tick))
			return SP_PENDING;
		if (!sp_coop_proceed(cx))
			return SP_PENDING;
		ssize_t n;
		/* Sockets take recv/send: the socket calls skip the VFS layer
		 * (vfs_read, fdget_pos) that read/write go through (~3% of
		 * tcp_echo's CPU), and send's MSG_NOSIGNAL spares SIGPIPE. */
		if (dir == SP_IO_READ)
			n = a->is_socket ? recv(a->fd, buf, len, 0) : read(a->fd, buf, len);
		else if (a->is_socket)
			n = send(a->fd, buf, len, MSG_NOSIGNAL);
		else
			n = write(a->fd, buf, len);
		if (n >= 0) {
			/* A short transfer drained the socket buffer (or filled
			 * it): with edge-triggered epoll the next try would be
			 * EAGAIN, so forget readiness now and save that syscall
			 * (a third of tcp_echo's reads). A newer edge has a newer
			 * tick and survives. */
			if (n > 0 && (size_t)n < len)
				clear_ready(a, dir, tick);
			*res = n;
			return SP_READY;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			*res = -errno;
			return SP_READY;
		}
		clear_ready(a, dir, tick);
	}
}

static sp_poll rw_poll(sp_future *f, sp_context *cx)
{
	sp_io_rw *op = (sp_io_rw *)f;
	sp__io_op_hold(op->afd, &op->held);
	sp_poll r = rw_step(op, cx);
	if (r == SP_READY)
		sp__io_op_put(op->afd, &op->held);
	return r;
}

static void rw_drop(sp_future *f)
{
	sp_io_rw *op = (sp_io_rw *)f;
	sp__io_op_put(op->afd, &op->held);
}

static sp_poll rw_step(sp_io_rw *op, sp_context *cx)
{
	for (;;) {
		ssize_t n;
		size_t left = op->len - op->done;
		if (io_step(op->afd, op->dir, op->buf + op->done, left, cx, &n) == SP_PENDING)
			return SP_PENDING;
		if (n < 0) {
			op->out = n;
			return SP_READY;
		}
		if (n == 0 && op->dir == SP_IO_READ) {
			/* EOF: a plain read reports 0; read_exact short of len
			 * reports SP_EPIPE (`done` tells how much came). */
			op->out = op->exact && op->done < op->len ? SP_EPIPE : (ssize_t)op->done;
			return SP_READY;
		}
		op->done += (size_t)n;
		if (!op->exact || op->done == op->len) {
			op->out = (ssize_t)op->done;
			return SP_READY;
		}
	}
}

static void rw_init(sp_io_rw *op, sp_async_fd *afd, int dir, void *buf, size_t len, int exact,
		    const char *name)
{
	op->base = (sp_future){.poll = rw_poll, .drop = rw_drop, .name = name};
	op->held = 0;
	op->afd = afd;
	op->dir = dir;
	op->buf = buf;
	op->len = len;
	op->done = 0;
	op->exact = exact;
	op->out = 0;
}

void sp_io_read_init(sp_io_rw *op, sp_async_fd *afd, void *buf, size_t len)
{
	rw_init(op, afd, SP_IO_READ, buf, len, 0, "read");
}

void sp_io_read_exact_init(sp_io_rw *op, sp_async_fd *afd, void *buf, size_t len)
{
	rw_init(op, afd, SP_IO_READ, buf, len, 1, "read_exact");
}

void sp_io_write_init(sp_io_rw *op, sp_async_fd *afd, const void *buf, size_t len)
{
	rw_init(op, afd, SP_IO_WRITE, (void *)buf, len, 0, "write");
}

void sp_io_write_all_init(sp_io_rw *op, sp_async_fd *afd, const void *buf, size_t len)
{
	rw_init(op, afd, SP_IO_WRITE, (void *)buf, len, 1, "write_all");
}
