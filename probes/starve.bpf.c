// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * starve.bpf.c - kernel side of `spindle trace`: why a worker of a spindle
 * process is not making progress inside a poll.
 *
 * Nothing here runs per poll. Two hooks:
 *
 *   tp_btf/sched_switch  a worker of the target switched out inside a poll:
 *                        note when, why (blocked: in which syscall, read
 *                        from the saved registers; preempted: by whom) and,
 *                        when blocked, the user stack. At its switch-in, add
 *                        the interval to the poll's account.
 *   perf_event           cpu-clock sampling on every CPU: when user space has
 *                        flagged the poll running on the sampled worker
 *                        (starve_want), send its user stack.
 *
 * The worker's registry slot is read with bpf_probe_read_user only while
 * `current` is that worker (sched_switch: current == prev; a sample: the
 * interrupted thread), so the read sees the worker's own stores in order.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "starve.h"

#define STARVE_ENOSYS 38 /* entry_SYSCALL_64 presets ax to -ENOSYS until the syscall returns */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load. */
const volatile __u32 targ_tgid = 0;

/* Set by user space before load: the kernel has no PIDFD_THREAD (< 6.9). */
const volatile bool by_tid = false;

/*
 * Worker state, in the worker thread's own task storage: sched_switch finds
 * it from the task_struct it is handed, with no hash of the tid. User space
 * creates and deletes it as workers come and go, keyed by a pidfd of the
 * thread (pidfd_open PIDFD_THREAD); it goes with the thread if it exits.
 * A lookup that finds the storage busy on its CPU (user space inside a
 * syscall on it, preempted there) returns NULL: that switch goes unseen.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct starve_worker);
} starve_workers SEC(".maps");

/* The same, keyed by tid, where a thread's pidfd cannot be had (by_tid; one
 * entry otherwise, never used). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STARVE_MAX_WORKERS);
	__type(key, __u32);
	__type(value, struct starve_worker);
} starve_workers_tid SEC(".maps");

/* t's worker state, NULL if t is not a watched worker. by_tid is a load-time
 * constant: the verifier drops the branch not taken. */
static __always_inline struct starve_worker *worker_of(struct task_struct *t)
{
	if (by_tid) {
		__u32 tid = t->pid;
		return bpf_map_lookup_elem(&starve_workers_tid, &tid);
	}
	return bpf_task_storage_get(&starve_workers, t, 0, 0);
}

/* tid -> stacks wanted for a flagged poll; written by user space only, except budget. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STARVE_MAX_WORKERS);
	__type(key, __u32);
	__type(value, struct starve_want);
} starve_want SEC(".maps");

/* struct starve_sample records, kernel -> user. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} starve_events SEC(".maps");

/* Counters user space reports with --verbose: [0] ringbuf full, [1] samples sent. */
__u64 starve_stats[2] = {};

static __always_inline int read_slot(struct starve_worker *w, struct starve_slot *s)
{
	/* the fields up to poll_seq: all that is used here */
	if (bpf_probe_read_user(s, __builtin_offsetof(struct starve_slot, runtime_id),
				(const void *)w->slot_addr)) {
		w->read_fail++;
		return -1;
	}
	return 0;
}

static __always_inline void add_sys(struct starve_poll *p, __s64 nr, __u64 d)
{
	for (int i = 0; i < STARVE_NSYS; i++) {
		if (p->sys[i].ns == 0 || p->sys[i].nr == nr) {
			p->sys[i].nr = nr;
			p->sys[i].ns += d;
			return;
		}
	}
}

/*
 * Is t outside any poll by the park mark (runtime/internal.h)? Its saved
 * user registers (direct loads: bpf_task_pt_regs is a trusted pointer)
 * show one of the runtime's marked calls: a futex (a worker's idle
 * FUTEX_WAIT, or a FUTEX_WAKE made outside a poll) with the mark in uaddr2,
 * or, still in progress (ax the -ENOSYS preset), an epoll_pwait2 or a
 * searcher's sched_yield with the mark in an argument the kernel ignores.
 * A futex needs no ax check: a worker is preempted on its way back from a
 * wake (ax = the result), and orig_ax = 202 with cx == ip is a syscall
 * frame (SYSCALL leaves the return address in rcx), not an interrupt's or
 * an exception's. Correct for switch-out (current == t) and switch-in (t's
 * registers have not changed while it was off CPU).
 */
static __always_inline bool marked_outside_poll(struct task_struct *t)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	long nr = regs->orig_ax;

	if (nr == STARVE_NR_FUTEX)
		return regs->r8 == STARVE_PARK_MARK && regs->cx == regs->ip;
	if (regs->ax != -STARVE_ENOSYS)
		return false;
	if (nr == STARVE_NR_EPOLL_PWAIT2)
		return regs->r9 == STARVE_PARK_MARK;
	if (nr == STARVE_NR_SCHED_YIELD)
		return regs->di == STARVE_PARK_MARK;
	return false;
}

static __always_inline void switch_out(void *ctx, struct task_struct *prev,
				       struct task_struct *next, unsigned int prev_state)
{
	__u32 tid = prev->pid;
	struct starve_worker *w = worker_of(prev);
	struct starve_slot s;

	if (!w)
		return;
	w->out_ts = 0;
	if (read_slot(w, &s) || s.task_id == 0 || s.tid != tid)
		return; /* not inside a poll: parked or between polls */
	struct starve_poll *p = &w->polls[w->cur & 1];
	if (s.poll_seq != p->poll_seq) {
		/* A new poll: the previous account stays for user space in the
		 * other half; this one's header is cleared (stack and words are
		 * dead while nframes is 0: ~150 bytes of stores, not 2x800). */
		if (p->poll_seq) {
			w->cur ^= 1;
			p = &w->polls[w->cur & 1];
		}
		__builtin_memset(p, 0, __builtin_offsetof(struct starve_poll, stack));
		p->poll_seq = s.poll_seq;
		p->task_id = s.task_id;
		p->longest_block_sys = STARVE_SYS_NONE;
	}
	/* The clock only now: most switches of a worker are parks, outside
	 * any poll (a clock read costs 30-70 ns in a VM). */
	w->out_ts = bpf_ktime_get_ns();
	w->out_next_pid = next->pid;
	/* comm by two direct loads (next is a trusted BTF pointer), no helper */
	const __u64 *comm = (const __u64 *)next->comm;
	((__u64 *)w->out_next_comm)[0] = comm[0];
	((__u64 *)w->out_next_comm)[1] = comm[1];
	if (prev_state == 0) {
		w->out_kind = STARVE_OFF_PREEMPTED;
		w->out_sys = STARVE_SYS_NONE;
		return;
	}
	w->out_kind = STARVE_OFF_BLOCKED;
	/* Which syscall: orig_ax, valid while ax still holds the -ENOSYS preset. */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(prev);
	long ax = regs->ax;
	__u64 sp = regs->sp;
	w->out_sys = ax == -STARVE_ENOSYS ? (__s32)regs->orig_ax : STARVE_SYS_NONE;
	long n = bpf_get_stack(ctx, w->out_stack, sizeof(w->out_stack), BPF_F_USER_STACK);
	w->out_nframes = n > 0 ? (__u32)n / 8 : 0;
	if (bpf_probe_read_user(w->out_words, sizeof(w->out_words), (const void *)sp))
		__builtin_memset(w->out_words, 0, sizeof(w->out_words));
}

static __always_inline void switch_in(struct task_struct *next)
{
	struct starve_worker *w = worker_of(next);

	if (!w || !w->out_ts)
		return; /* it left outside a poll: nothing to account, no clock */
	__u64 d = bpf_ktime_get_ns() - w->out_ts;
	struct starve_poll *p = &w->polls[w->cur & 1];

	w->out_ts = 0;
	if (w->out_kind == STARVE_OFF_BLOCKED) {
		p->blocked_ns += d;
		p->nblocked++;
		add_sys(p, w->out_sys, d);
		if (d > p->longest_block_ns) {
			p->longest_block_ns = d;
			p->longest_block_sys = w->out_sys;
			p->nframes = w->out_nframes;
			__builtin_memcpy(p->stack, w->out_stack, sizeof(p->stack));
			__builtin_memcpy(p->words, w->out_words, sizeof(p->words));
		}
	} else {
		p->preempted_ns += d;
		p->npreempted++;
		if (d > p->longest_preempt_ns) {
			p->longest_preempt_ns = d;
			p->preempt_pid = w->out_next_pid;
			__builtin_memcpy(p->preempt_comm, w->out_next_comm,
					 sizeof(p->preempt_comm));
		}
	}
}

SEC("tp_btf/sched_switch")
int BPF_PROG(starve_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	/*
	 * Runs on every context switch of the machine: the common case is two
	 * direct loads (tp_btf arguments are trusted BTF pointers, CO-RE
	 * relocated) and two compares. current == prev here, so prev's user
	 * memory and registers are readable. A worker of the target going to
	 * or coming back from its idle park (most of its switches when it has
	 * little to do) costs a few loads of its saved registers more; only
	 * the other switches of the target look up the worker and read its
	 * slot.
	 */
	if (prev->tgid == targ_tgid && !marked_outside_poll(prev))
		switch_out(ctx, prev, next, prev_state);
	if (next->tgid == targ_tgid && !marked_outside_poll(next))
		switch_in(next);
	return 0;
}

SEC("perf_event")
int starve_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;

	if ((__u32)(id >> 32) != targ_tgid)
		return 0;
	struct starve_want *want = bpf_map_lookup_elem(&starve_want, &tid);
	if (!want || want->budget == 0)
		return 0;
	struct starve_worker *w = worker_of(bpf_get_current_task_btf());
	struct starve_slot s;
	if (!w || read_slot(w, &s) || s.task_id == 0 || s.poll_seq != want->poll_seq)
		return 0;
	want->budget--; /* only this thread's samples touch it, one CPU at a time */

	struct starve_sample *e = bpf_ringbuf_reserve(&starve_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&starve_stats[0], 1);
		return 0;
	}
	e->ts = bpf_ktime_get_ns();
	e->poll_seq = s.poll_seq;
	e->task_id = s.task_id;
	e->tid = tid;
	long n = bpf_get_stack(ctx, e->stack, sizeof(e->stack), BPF_F_USER_STACK);
	e->nframes = n > 0 ? (__u32)n / 8 : 0;
	bpf_ringbuf_submit(e, 0);
	__sync_fetch_and_add(&starve_stats[1], 1);
	return 0;
}
