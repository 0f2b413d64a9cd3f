/*
 * starve.h - the layouts shared by starve.bpf.c (kernel side) and starve.c
 * (user side) of `spindle trace`. Fixed-width __u64-style types and #defines
 * only: this file is compiled both by clang -target bpf (with vmlinux.h) and
 * by the host compiler (with <linux/types.h>).
 *
 * Division of work (see starve.c for the whole picture):
 *   - user space finds the workers in the target's slot registry and writes
 *     `starve_workers[tid].slot_addr`; it times polls itself by reading the
 *     slots, and asks for stacks of a flagged poll through `starve_want`;
 *   - sched_switch accounts each off-CPU interval of a worker inside a poll
 *     (blocked in which syscall, or preempted by whom) into
 *     `starve_workers[tid].polls`;
 *   - the cpu-clock sampler sends the user stack of a flagged poll, while it
 *     runs, through the `starve_events` ring buffer.
 */
#ifndef SPINDLE_PROBES_STARVE_H
#define SPINDLE_PROBES_STARVE_H

#define STARVE_MAX_WORKERS 512 /* tids traced at once (registry: 256 slots per process) */
#define STARVE_STACK_DEPTH 32  /* user frames kept per stack */
#define STARVE_COMM_LEN 16     /* TASK_COMM_LEN */
#define STARVE_NSYS 4	       /* distinct blocking syscalls kept per poll */
#define STARVE_SCAN_WORDS 48   /* user stack words kept at a blocked switch-out (see starve.c) */

#define STARVE_OFF_NONE 0      /* on CPU, or off CPU outside a poll */
#define STARVE_OFF_BLOCKED 1   /* switched out with prev_state != 0: it waits for something */
#define STARVE_OFF_PREEMPTED 2 /* switched out runnable: another thread took the CPU */

#define STARVE_SYS_NONE (-1) /* blocked, but not inside a system call (page fault...) */

/*
 * A worker's idle park carries this mark (runtime/internal.h SP__PARK_MARK,
 * the same value) in a syscall argument the kernel ignores: r8 (uaddr2) of
 * its FUTEX_WAIT, r9 (sigsetsize, NULL sigmask) of its epoll_pwait2, rdi
 * of a searching worker's sched_yield (which takes no arguments); so does
 * r8 of a FUTEX_WAKE made outside a poll. The runtime passes it only
 * outside polls, so a switch with it in the saved
 * registers needs no account: no map lookup, no slot read. x86-64 numbers.
 */
#define STARVE_PARK_MARK 0x7370696e646c6521ull
#define STARVE_NR_SCHED_YIELD 24
#define STARVE_NR_FUTEX 202
#define STARVE_NR_EPOLL_PWAIT2 441

/*
 * The first 40 bytes of a registry slot (runtime/internal.h sp_worker_slot,
 * registry version 1). Written by the worker with plain stores: poll_start,
 * poll_fn, poll_seq, then task_id; task_id = 0 at poll end. Read only in the
 * worker's own context, so a read is never torn.
 */
struct starve_slot {
	__u64 task_id;	  /* 0: not inside a poll */
	__u64 poll_start; /* raw ticks (registry clock) */
	__u64 poll_fn;	  /* address of the future's poll function */
	__u32 tid;
	__u32 worker_idx;
	__u64 poll_seq; /* polls started by this worker: the identity of a poll */
	__u64 runtime_id;
	__u64 name; /* address of the task's name in the target, 0: unknown */
};

struct starve_sys {
	__s64 nr; /* syscall number; 0 with ns 0: unused entry */
	__u64 ns; /* blocked time in it during this poll */
};

/*
 * Off-CPU account of one poll. Written only by sched_switch for the poll's
 * own worker (its switch-out and switch-in never run concurrently: the
 * scheduler does not switch a task in before its switch-out completed).
 * A new poll clears the fields before `stack` only: `stack` and `words`
 * hold something only while nframes != 0.
 */
struct starve_poll {
	__u64 poll_seq; /* identity: the slot's poll_seq; 0: empty */
	__u64 task_id;
	__u64 blocked_ns;   /* sum of the blocked intervals */
	__u64 preempted_ns; /* sum of the preempted intervals */
	__u32 nblocked, npreempted;
	struct starve_sys sys[STARVE_NSYS]; /* blocked time per syscall, first come */
	__u64 longest_block_ns;		    /* the interval whose stack is in `stack` */
	__s64 longest_block_sys;	    /* its syscall, STARVE_SYS_NONE if none */
	__u64 longest_preempt_ns;	    /* the interval whose thief is named below */
	__u32 preempt_pid;
	char preempt_comm[STARVE_COMM_LEN];
	__u32 nframes;			 /* frames in stack; 0: stack and words unset */
	__u64 stack[STARVE_STACK_DEPTH]; /* user stack at the longest blocked switch-out */
	__u64 words[STARVE_SCAN_WORDS];	 /* the words at its user sp */
};

/* Value of `starve_workers`, keyed by tid. */
struct starve_worker {
	__u64 slot_addr; /* user address of the worker's registry slot; set by user space */
	/* the off-CPU interval in progress (switch-out seen, switch-in not yet) */
	__u64 out_ts; /* bpf_ktime_get_ns() at switch-out; 0: none */
	__u32 out_kind;
	__s32 out_sys;
	char out_next_comm[STARVE_COMM_LEN]; /* 8-aligned: BPF stores it as two words */
	__u32 out_next_pid;
	__u32 out_nframes;
	__u32 cur; /* polls[cur & 1] is the latest account (below); in the first cache line */
	__u32 pad;
	__u64 out_stack[STARVE_STACK_DEPTH]; /* captured at a blocked switch-out */
	__u64 out_words[STARVE_SCAN_WORDS];  /* the words at its user sp, for the frames */
					     /* the frame-pointer walk skips (libc leaves) */
	/* polls[cur & 1]: the poll of the latest in-poll switch-out; the other:
	 * the one before it, if it was switched out. A new poll flips cur and
	 * clears the older account's header in place (no copy of the stacks). */
	struct starve_poll polls[2];
	__u64 read_fail;		     /* slot reads that failed (exiting thread) */
};

/* Value of `starve_want`, keyed by tid: user space asks for stacks of a poll. */
struct starve_want {
	__u64 poll_seq; /* only while the slot shows this poll */
	__u32 budget;	/* samples still wanted; the sampler counts down */
	__u32 pad;
};

/* Ring buffer record: one cpu-clock sample of a flagged poll. */
struct starve_sample {
	__u64 ts; /* bpf_ktime_get_ns() */
	__u64 poll_seq;
	__u64 task_id;
	__u32 tid;
	__u32 nframes;
	__u64 stack[STARVE_STACK_DEPTH];
};

#endif
