/*
 * tracer.h - the eBPF starvation tracer as a library: `spindle trace` prints
 * its findings; other consumers (a recorder, `spindle top --bpf`) register
 * their own callback.
 *
 * A finding is one poll that ran longer than the threshold, reported once,
 * either when it ended or the grace time (opts.grace_ns, default
 * `SP_STARVE_GRACE_MS`) after it crossed the threshold
 * if it still runs then (`running` is true and the times are the times so
 * far). Its time splits into on-CPU, blocked (per syscall) and preempted;
 * `verdict` names the larger of blocked and on-CPU when it is at least a
 * quarter of the total, else preempted; `fix` says what to consider.
 *
 * Typical use:
 *
 *	struct sp_starve_opts o = {.pid = pid, .threshold_ns = 10000000,
 *				   .on_finding = print, .arg = NULL};
 *	struct sp_starve *t;
 *	char why[256];
 *	if (sp_starve_open(&t, &o, why, sizeof why))
 *		die(why);                  // one line naming the cause
 *	while ((err = sp_starve_poll(t, 100)) == 0)
 *		;                          // callbacks run inside poll
 *	sp_starve_close(t);
 */
#ifndef SPINDLE_PROBES_TRACER_H
#define SPINDLE_PROBES_TRACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_STARVE_MAX_FRAMES 32
#define SP_STARVE_NSYS 4
#define SP_STARVE_GRACE_MS 10 /* report a still-running poll this long after it crossed */
/* Default cpu-clock rate while a poll is flagged (the sampler is off
 * otherwise): 16 stacks in its first 4 ms, not 6-11 in the whole grace time
 * at 1 kHz, so the culprit is the most frequent frame of enough samples. */
#define SP_STARVE_SAMPLE_HZ 4000

enum sp_starve_verdict {
	SP_STARVE_ONCPU = 1, /* computing: a long synchronous section between awaits */
	SP_STARVE_BLOCKED,   /* waiting in the kernel: a blocking call inside a poll */
	SP_STARVE_PREEMPTED, /* runnable but other threads had the CPU */
};

/* One symbolised user frame. Strings are empty when unknown. */
struct sp_starve_frame {
	uint64_t addr;	     /* the address as captured (a return address except frame 0) */
	char func[96];	     /* function name, "" if unknown; the innermost inlined one */
	char inlined_in[96]; /* when func was inlined: the symbol it was inlined into */
	uint64_t func_off;   /* addr - function start */
	char file[128];	     /* source file (base name), "" if no line info */
	int line;	     /* 0 if no line info */
	char module[64];     /* base name of the ELF file */
	uint64_t module_off; /* the ELF address (addr2line -e MODULE takes it), 0 if unknown */
};

struct sp_starve_sys {
	int nr;	       /* x86-64 syscall number, -1: not in a syscall */
	char name[24]; /* "clock_nanosleep", "?" */
	uint64_t ns;   /* blocked time in it */
};

struct sp_starve_finding {
	int pid;
	uint32_t tid;
	uint32_t worker_idx;
	uint64_t task_id;
	uint64_t poll_seq;		/* the worker's poll counter: (tid, poll_seq) is unique */
	struct sp_starve_frame poll_fn; /* the future's poll function */
	char task_name[33];		/* the name it was spawned with, "" if unknown */
	uint64_t start_ns;		/* poll start, CLOCK_MONOTONIC */
	uint64_t report_ns;		/* when reported, CLOCK_MONOTONIC */
	uint64_t total_ns;		/* poll duration (so far, when running) */
	uint64_t oncpu_ns;		/* total - unseen - blocked - preempted */
	uint64_t blocked_ns;
	uint64_t preempted_ns;
	uint64_t unseen_ns; /* the part before the tracer watched the worker (it attached, or
			     * found the worker, inside this poll): counted in none of the three */
	bool running;	    /* still inside the poll when reported */
	int nsys;     /* entries in sys, by blocked time, largest first */
	struct sp_starve_sys sys[SP_STARVE_NSYS];
	uint32_t preempt_pid; /* the thread that ran during the longest preemption */
	char preempt_comm[16];
	enum sp_starve_verdict verdict;
	int nframes; /* culprit stack, leaf first */
	struct sp_starve_frame frames[SP_STARVE_MAX_FRAMES];
	int culprit;	   /* index in frames of the culprit frame, -1: none */
	int stack_samples; /* cpu-clock samples behind the stack (0: blocked stack) */
	bool stack_scanned; /* a block that began before the tracer watched: the stack is the
			     * thread's pc and the return addresses found in the words at its
			     * sp (/proc/PID/task/TID/syscall), not a frame-pointer walk */
	const char *fix;   /* a sentence: what to consider */
};

typedef void (*sp_starve_cb)(const struct sp_starve_finding *f, void *arg);
/* Status lines (workers found, target exited): for people, not for parsing. */
typedef void (*sp_starve_note_cb)(const char *msg, void *arg);

struct sp_starve_opts {
	int pid;	       /* the target process */
	uint64_t threshold_ns; /* 0: 10 ms */
	unsigned sample_hz;    /* cpu-clock samples per second per CPU; 0: SP_STARVE_SAMPLE_HZ */
	bool verbose;	       /* let libbpf print */
	bool wait_registry;    /* the target is about to exec: retry finding the registry */
	uint64_t grace_ns;     /* report a still-running poll this long after it crossed the
				* threshold; 0: SP_STARVE_GRACE_MS */
	sp_starve_cb on_finding;
	sp_starve_note_cb on_note;    /* progress, for --verbose */
	sp_starve_note_cb on_warning; /* degraded tracing (e.g. stripped target): always shown */
	void *arg;
};

struct sp_starve;

/*
 * Check the environment, load and attach the programs. On failure returns a
 * negative errno and writes one line naming the cause into why.
 */
int sp_starve_open(struct sp_starve **out, const struct sp_starve_opts *o, char *why,
		   size_t whylen);
/*
 * Wait up to timeout_ms for events, run the watchdog, call on_finding for
 * the findings named since the last call (a thread of the tracer's names
 * them, so that the watchdog never waits for symbols). Returns 0, 1 when the
 * target has exited (every finding delivered by then), or a negative errno
 * (why filled).
 */
int sp_starve_poll(struct sp_starve *t, int timeout_ms, char *why, size_t whylen);
/* Detach; findings still being named are delivered (on_finding) first. */
void sp_starve_close(struct sp_starve *t);

/* Counters for --verbose. */
struct sp_starve_stats {
	uint64_t workers_seen, findings, samples, ringbuf_drops;
	/* BPF run counts and time (run_time_ns is 0 unless kernel.bpf_stats_enabled=1) */
	uint64_t switch_runs, switch_ns, sample_runs, sample_ns;
	uint64_t sampler_switches; /* sampler turned on or off (it runs while a poll is flagged) */
	uint64_t findings_dropped; /* measured but not named: the namer was MAX_PENDING behind */
};
void sp_starve_stats(struct sp_starve *t, struct sp_starve_stats *s);

#endif
