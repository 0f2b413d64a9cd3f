/*
 * starve.c - user side of the starvation tracer (tracer.h).
 *
 * WHO DOES WHAT
 *
 *   watchdog (here: when the next poll can cross the threshold, at most a
 *	threshold or 50 ms apart; 1 ms while a flagged poll awaits its report)
 *	reads the target's registry and all its slots in one process_vm_readv.
 *	A slot whose tid changed is a worker that came or went: it is added to
 *	or removed from `starve_workers` (so late workers are seen within one
 *	tick). A slot inside the same poll (same poll_seq) for longer than the
 *	threshold is *flagged*: `starve_want[tid]` asks the sampler for stacks.
 *	A flagged poll is reported once: when it ends, or the grace time
 *	(SP_STARVE_GRACE_MS unless opts.grace_ns) after it crossed the
 *	threshold if it still runs. The poll's age comes
 *	from the slot's raw start ticks and this process's own TSC read, so no
 *	clock conversion happens in BPF.
 *   sched_switch (starve.bpf.c)
 *	accounts each off-CPU interval inside a poll: blocked (in which
 *	syscall, with the user stack) or preempted (by whom).
 *   cpu-clock sampler (starve.bpf.c)
 *	sends user stacks of flagged polls while they run.
 *
 * The report joins the three: total from the watchdog, blocked/preempted
 * from the BPF account (plus the interval still in progress), on-CPU the
 * rest, the culprit from the blocked stack or from the most frequent
 * sampled culprit frame.
 *
 * Cost to the target: none per poll. Three loads of the saved registers
 * per switch of a worker to or from its idle park (the park mark,
 * runtime/internal.h), a map lookup and a slot read per other switch of a
 * worker (~0.35 µs), a stack per blocked switch-out inside a poll (~1 µs; these
 * are the findings), and 4 kHz sampling only while a flagged poll runs
 * (sampler_enable). The watchdog reads the used slots of the target
 * (~1 KiB) once a threshold or so (next_tick) from its own process.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "starve.h"
#include "starve.skel.h"
#include "syms.h"
#include "syscall_names.h"
#include "target.h"
#include "tracer.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* pidfd_open: a pidfd of this thread, not of its process (6.9) */
#endif

#define TICK_MS 5	   /* period while looking for the registry */
#define TICK_FLAGGED_MS 1  /* watchdog period while a flagged poll waits for its report */
#define TICK_MAX_MS 50	   /* the longest watchdog period (see next_tick) */
#define WANT_SAMPLES 16	  /* stacks asked per flagged poll (at 4 kHz: its first 4 ms) */
#define KEEP_SAMPLES 16
#define UNSEEN_SCAN_WORDS 256 /* words read at the sp of a block already in progress */
#define MAX_PENDING 256	      /* findings queued for the namer (~20 KiB each) before drops */
#define FULL_SCAN_NS 100000000ull	 /* read every slot this often; else only the used prefix */
#define HOT_MARGIN 8			 /* free slots read past the last used one */
#define REGISTRY_WAIT_NS (3000000000ull) /* -- CMD: time for exec and the registry to show */
#define CAP_PERFMON_BIT 38
#define CAP_BPF_BIT 39

/* The watchdog's view of one registry slot. */
struct wd {
	uint32_t tid; /* 0: free slot */
	int pidfd;    /* the thread's pidfd: the key of its starve_workers storage; -1: none */
	uint32_t worker_idx;
	uint64_t seq; /* the poll being watched (slot poll_seq), 0: none */
	uint64_t task_id, poll_fn, start;
	uint64_t name;	   /* the task name's address in the target */
	uint64_t seen;	   /* clock value (slot units) when last seen running */
	uint64_t cross_ns; /* CLOCK_MONOTONIC when flagged */
	bool flagged, reported;
	/*
	 * The poll the slot showed when the worker went into starve_workers,
	 * and when: BPF cannot have seen what that poll did before found_ns.
	 * A block already in progress then has no switch-out in the BPF
	 * account; the watchdog notices it from /proc while the poll is flagged
	 * (watch_unseen) and counts it from found_ns to the last tick that saw
	 * the thread still asleep.
	 */
	uint64_t found_seq, found_ns;
	bool unseen_block; /* asleep since before found_ns, BPF saw no switch-out */
	bool unseen_done;  /* nothing more to learn from /proc for this poll */
	int unseen_sys;	   /* its syscall (/proc/PID/task/TID/syscall), -1: none */
	uint64_t unseen_until_ns;
	uint64_t unseen_pc;
	__u64 unseen_words[UNSEEN_SCAN_WORDS]; /* the user stack at its sp */
	int nsamples;
	uint32_t nframes[KEEP_SAMPLES];
	__u64 stacks[KEEP_SAMPLES][STARVE_STACK_DEPTH];
};

/*
 * NAMING. A finding is measured by report() on the watchdog's thread, and
 * named (symbols, culprit) on a thread of its own: naming can take 200 ms
 * the first time (libdw loads the modules' DWARF), and a watchdog that
 * stopped ticking that long would miss every long poll meanwhile. What
 * report() keeps for the namer: the numbers, and the one raw stack chosen.
 */
enum { STK_NONE, STK_BLOCK, STK_SAMPLED, STK_SCANNED };
struct pending {
	struct pending *next;
	struct sp_starve_finding f; /* all but poll_fn, frames and culprit */
	uint64_t poll_fn;
	int kind; /* STK_* */
	/* STK_BLOCK: the stack at the longest block and the words at its sp */
	uint32_t nframes;
	__u64 stack[STARVE_STACK_DEPTH];
	__u64 words[UNSEEN_SCAN_WORDS]; /* STK_BLOCK: the first STARVE_SCAN_WORDS; STK_SCANNED: all */
	uint64_t pc;			/* STK_SCANNED */
	int nsamples;			/* STK_SAMPLED */
	uint32_t snframes[KEEP_SAMPLES];
	__u64 stacks[KEEP_SAMPLES][STARVE_STACK_DEPTH];
};

struct sp_starve {
	struct sp_starve_opts o;
	uint64_t grace_ns; /* o.grace_ns or the default */
	struct starve_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link **links;
	int nlinks;
	int *pfds;
	int npfds;
	/* the target */
	uint64_t reg_addr;     /* 0: not found yet (wait_registry) */
	uint64_t reg_deadline; /* CLOCK_MONOTONIC: give up finding it */
	struct sp__registry reg;
	uint8_t *slotbuf; /* reg.max_slots * reg.slot_size */
	struct wd *wd;	  /* reg.max_slots */
	struct sp__syms *syms;
	uint64_t next_tick_ns; /* CLOCK_MONOTONIC of the next watchdog tick */
	uint64_t last_full_ns; /* last read of all max_slots slots */
	uint32_t hot_slots;    /* slots read on the other ticks: the used ones + margin */
	bool any_flagged;
	bool sampling; /* the cpu-clock events are enabled (a poll is flagged) */
	bool by_tid;   /* worker state keyed by tid (no PIDFD_THREAD here), not by pidfd */
	struct sp_starve_stats st;
	/*
	 * Findings on their way out (see NAMING): report() queues them on
	 * `todo`, the namer thread moves them to `done`, sp_starve_poll hands
	 * them to on_finding. All under qlock.
	 */
	pthread_mutex_t qlock;
	pthread_cond_t qwork, qidle;
	struct pending *todo, **todo_tail, *done, **done_tail;
	uint32_t ntodo; /* on todo */
	bool naming; /* the namer holds one taken off todo */
	bool qstop;
	bool namer_started;
	pthread_t namer;
	int wake_fd; /* eventfd: the namer has findings done (sp_starve_poll waits on it) */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Now, in the units of the slots' poll_start. */
static uint64_t slot_now(const struct sp__registry *r)
{
#if defined(__x86_64__)
	if (r->clock_kind == 1) {
		uint32_t lo, hi;
		__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
		return ((uint64_t)hi << 32) | lo;
	}
#endif
	(void)r;
	return mono_ns();
}

/* A duration in slot units to ns (the registry's calibration: ratio only). */
static uint64_t slot_ns(const struct sp__registry *r, uint64_t d)
{
	if (r->clock_kind != 1)
		return d;
	return (uint64_t)(((unsigned __int128)d * r->mult) >> 32);
}

static void note(struct sp_starve *t, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!t->o.on_note)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	t->o.on_note(msg, t->o.arg);
}

static const char *sys_name(int nr)
{
	if (nr >= 0 && (size_t)nr < sizeof(sp__syscall_names) / sizeof(sp__syscall_names[0]) &&
	    sp__syscall_names[nr])
		return sp__syscall_names[nr];
	return nr < 0 ? "(no syscall)" : "?";
}

/* ---- environment checks ------------------------------------------------------------------ */

static bool cap_effective(int bit)
{
	char line[256];
	unsigned long long caps = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	return caps & (1ull << bit);
}

static int read_int_file(const char *path, int dflt)
{
	FILE *f = fopen(path, "re");
	int v = dflt;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v;
}

static int check_env(const struct sp_starve_opts *o, char *why, size_t n)
{
	if (kill(o->pid, 0) && errno == ESRCH) {
		snprintf(why, n, "no process with pid %d", o->pid);
		return -ESRCH;
	}
	if (!cap_effective(CAP_BPF_BIT) || !cap_effective(CAP_PERFMON_BIT)) {
		snprintf(why, n,
			 "not permitted: eBPF tracing needs root (or CAP_BPF and CAP_PERFMON); "
			 "kernel.unprivileged_bpf_disabled=%d",
			 read_int_file("/proc/sys/kernel/unprivileged_bpf_disabled", -1));
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		snprintf(why, n,
			 "the kernel has no BTF (/sys/kernel/btf/vmlinux: %s); it needs "
			 "CONFIG_DEBUG_INFO_BTF=y",
			 strerror(errno));
		return -ENOTSUP;
	}
	return 0;
}

/* ---- loading ------------------------------------------------------------------------------ */

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level, (void)fmt, (void)ap;
	return 0;
}

static int libbpf_loud(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int on_sample(void *ctx, void *data, size_t len);

/*
 * The sampler runs only while a flagged poll wants stacks: an enabled
 * cpu-clock event is a timer interrupt per millisecond on every busy CPU
 * (a VM exit each, on a virtual machine), 5x the target's own interrupt
 * rate here, for samples the program throws away unless a poll is flagged.
 * Enabling it when a poll crosses the threshold costs one ioctl per CPU;
 * its first sample follows within a period.
 */
static void sampler_enable(struct sp_starve *t, bool on)
{
	if (t->sampling == on)
		return;
	for (int i = 0; i < t->npfds; i++)
		ioctl(t->pfds[i], on ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE, 0);
	t->sampling = on;
	t->st.sampler_switches++;
}

static int open_sampler(struct sp_starve *t, char *why, size_t n)
{
	int ncpu = libbpf_num_possible_cpus();
	unsigned hz = t->o.sample_hz ? t->o.sample_hz : SP_STARVE_SAMPLE_HZ;

	if (ncpu <= 0) {
		snprintf(why, n, "cannot count the CPUs: %s", strerror(-ncpu));
		return ncpu ? ncpu : -EINVAL;
	}
	t->pfds = calloc((size_t)ncpu, sizeof(int));
	if (!t->pfds)
		return -ENOMEM;
	for (int cpu = 0; cpu < ncpu; cpu++) {
		/* cpu-clock counts ns: a fixed period gives hz samples per busy second. */
		struct perf_event_attr a = {
			.type = PERF_TYPE_SOFTWARE,
			.size = sizeof(a),
			.config = PERF_COUNT_SW_CPU_CLOCK,
			.sample_period = 1000000000ull / hz,
		};
		int fd = (int)syscall(SYS_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0) {
			if (errno == ENODEV)
				continue; /* offline CPU */
			int e = errno;
			snprintf(why, n, "perf_event_open(cpu-clock, cpu %d): %s%s", cpu,
				 strerror(e),
				 e == EACCES || e == EPERM ? " (needs CAP_PERFMON or root)" : "");
			return -e;
		}
		t->pfds[t->npfds++] = fd;
		struct bpf_link *l =
			bpf_program__attach_perf_event(t->skel->progs.starve_sample, fd);
		if (!l) {
			int e = errno;
			snprintf(why, n, "attaching the sampler on cpu %d: %s", cpu, strerror(e));
			return -e;
		}
		t->links[t->nlinks++] = l;
		/* Attaching enabled it: off until a poll is flagged. */
		ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
	}
	return 0;
}

static int load(struct sp_starve *t, char *why, size_t n)
{
	int err;

	libbpf_set_print(t->o.verbose ? libbpf_loud : libbpf_quiet);
	t->skel = starve_bpf__open();
	if (!t->skel) {
		err = -errno;
		snprintf(why, n, "opening the eBPF object: %s", strerror(-err));
		return err;
	}
	t->skel->rodata->targ_tgid = (uint32_t)t->o.pid;
	/* Worker state goes in task storage, keyed by a thread pidfd (6.9+);
	 * on an older kernel, in a hash keyed by tid (a hash a switch more). */
	int self = (int)syscall(SYS_pidfd_open, (pid_t)syscall(SYS_gettid), PIDFD_THREAD);
	const char *force = getenv("SPINDLE_TRACE_TID_KEYS"); /* tests: the old kernels' way */
	t->by_tid = self < 0 || (force && *force == '1');
	if (self >= 0)
		close(self);
	if (t->by_tid)
		note(t, "worker state keyed by tid (%s)",
		     self < 0 ? "this kernel has no PIDFD_THREAD" : "SPINDLE_TRACE_TID_KEYS=1");
	t->skel->rodata->by_tid = t->by_tid;
	if (!t->by_tid)
		bpf_map__set_max_entries(t->skel->maps.starve_workers_tid, 1);
	t->links = calloc((size_t)libbpf_num_possible_cpus() + 2, sizeof(*t->links));
	if (!t->links)
		return -ENOMEM;
	err = starve_bpf__load(t->skel);
	if (err) {
		snprintf(why, n, "loading the eBPF programs: %s%s", strerror(-err),
			 err == -EPERM
				 ? " (needs CAP_BPF+CAP_PERFMON in the initial user namespace)"
				 : (t->o.verbose ? "" : " (--verbose shows libbpf's log)"));
		return err;
	}
	struct bpf_link *l = bpf_program__attach(t->skel->progs.starve_switch);
	if (!l) {
		err = -errno;
		snprintf(why, n, "attaching tp_btf/sched_switch: %s", strerror(-err));
		return err;
	}
	t->links[t->nlinks++] = l;
	err = open_sampler(t, why, n);
	if (err)
		return err;
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.starve_events), on_sample, t, NULL);
	if (!t->rb) {
		err = -errno;
		snprintf(why, n, "creating the ring buffer: %s", strerror(-err));
		return err;
	}
	return 0;
}

/* ---- the registry ------------------------------------------------------------------------- */

static int attach_registry(struct sp_starve *t, char *why, size_t n)
{
	uint64_t addr;
	struct sp__registry r;
	bool stripped = false;
	int err = sp__target_find_registry(t->o.pid, &addr, &stripped, why, n);

	if (err)
		return err;
	err = sp__target_read(t->o.pid, addr, &r, sizeof(r));
	if (err) {
		snprintf(why, n, "reading the registry of pid %d: %s%s", t->o.pid, strerror(-err),
			 err == -EPERM ? " (needs ptrace access: same user or CAP_SYS_PTRACE)"
				       : "");
		return err;
	}
	err = sp__registry_check(&r, why, n);
	if (err)
		return err;
	t->slotbuf = calloc(r.max_slots, r.slot_size);
	t->wd = calloc(r.max_slots, sizeof(*t->wd));
	if (!t->slotbuf || !t->wd)
		return -ENOMEM;
	t->reg = r;
	t->reg_addr = addr;
	t->syms = sp__syms_new(t->o.pid);
	sp__syms_prefetch(t->syms); /* ~1 ms of CPU (syms.c), off this thread */
	note(t, "pid %d: registry at 0x%llx, %u slots%s", t->o.pid, (unsigned long long)addr,
	     r.max_slots, t->syms ? "" : " (no symbols: libdw could not read the process)");
	if (stripped && t->o.on_warning)
		t->o.on_warning("the target's executable is stripped: no symbol table, so poll "
				"functions and stack frames show as addresses and the culprit "
				"cannot be named (found the registry by its magic)",
				t->o.arg);
	return 0;
}

/* ---- findings ------------------------------------------------------------------------------ */

static struct wd *wd_of_tid(struct sp_starve *t, uint32_t tid)
{
	for (uint32_t i = 0; t->wd && i < t->reg.max_slots; i++)
		if (t->wd[i].tid == tid)
			return &t->wd[i];
	return NULL;
}

static int on_sample(void *ctx, void *data, size_t len)
{
	struct sp_starve *t = ctx;
	const struct starve_sample *e = data;

	if (len < sizeof(*e))
		return 0;
	t->st.samples++;
	struct wd *w = wd_of_tid(t, e->tid);
	if (!w || !w->flagged || w->reported || w->seq != e->poll_seq ||
	    w->nsamples >= KEEP_SAMPLES)
		return 0;
	w->nframes[w->nsamples] = e->nframes < STARVE_STACK_DEPTH ? e->nframes : STARVE_STACK_DEPTH;
	memcpy(w->stacks[w->nsamples], e->stack, sizeof(e->stack));
	w->nsamples++;
	return 0;
}

/* A plausible return address: the bytes before it end a call instruction
 * (call rel32, or call through a register or memory: ff /2). */
static bool after_call(int pid, uint64_t ra)
{
	static const int ff_len[] = {2, 3, 4, 6, 7};
	uint8_t b[8];

	if (ra < 8 || sp__target_read(pid, ra - 8, b, sizeof(b)))
		return false;
	if (b[3] == 0xe8)
		return true;
	for (size_t i = 0; i < sizeof(ff_len) / sizeof(ff_len[0]); i++) {
		int at = 8 - ff_len[i];
		if (b[at] == 0xff && ((b[at + 1] >> 3) & 7) == 2)
			return true;
	}
	return false;
}

/*
 * glibc's syscall wrappers (read, clock_nanosleep, ...) keep no frame
 * pointer, so the kernel's frame-pointer walk goes from the leaf straight
 * to the caller's caller: the frame that made the blocking call is lost.
 * Recover it from the words at the leaf's sp: the first one that is a
 * return address (it follows a call instruction) into non-system code,
 * found before the walk's own next frame, is the call into the C library.
 */
static void recover_hidden(struct sp_starve *t, struct sp_starve_finding *f, const __u64 *words)
{
	int k = 0;

	while (k < f->nframes && sp__syms_is_system(&f->frames[k]))
		k++;
	if (k == 0 || f->nframes >= SP_STARVE_MAX_FRAMES)
		return;
	for (int i = 0; i < STARVE_SCAN_WORDS; i++) {
		struct sp_starve_frame fr;
		uint64_t v = words[i];
		if (k < f->nframes && v == f->frames[k].addr)
			return; /* the walk has every frame */
		if (v < 4096)
			continue;
		sp__syms_frame(t->syms, v, true, &fr);
		if (!fr.func[0] || sp__syms_is_system(&fr) || !after_call(t->o.pid, v))
			continue;
		memmove(&f->frames[k + 1], &f->frames[k],
			(size_t)(f->nframes - k) * sizeof(f->frames[0]));
		f->frames[k] = fr;
		f->nframes++;
		return;
	}
}

/*
 * The culprit is the innermost frame of the application's own code inside
 * the poll: not the C library, not the runtime's public functions (sp_*).
 * The search ends at the poll function, or at the first runtime-internal
 * frame (sp__*: the runtime's call of the poll function); when the poll
 * function's own frame is missing there (an -O2 tail call, a hidden frame),
 * it is put back from the slot's poll_fn and is the culprit.
 */
static void pick_culprit(struct sp_starve_finding *f)
{
	f->culprit = -1;
	for (int i = 0; i < f->nframes; i++) {
		const struct sp_starve_frame *fr = &f->frames[i];
		bool is_poll_fn = f->poll_fn.func[0] && (!strcmp(fr->func, f->poll_fn.func) ||
							 !strcmp(fr->inlined_in, f->poll_fn.func));
		if (!strncmp(fr->func, "sp__", 4)) {
			if (f->culprit >= 0 || f->nframes >= SP_STARVE_MAX_FRAMES)
				return;
			memmove(&f->frames[i + 1], &f->frames[i],
				(size_t)(f->nframes - i) * sizeof(f->frames[0]));
			f->frames[i] = f->poll_fn;
			f->nframes++;
			f->culprit = i;
			return;
		}
		if (f->culprit < 0 && fr->func[0] && !sp__syms_is_system(fr) &&
		    strncmp(fr->func, "sp_", 3))
			f->culprit = i;
		if (is_poll_fn)
			return;
	}
}

/* Symbolise a stack (leaf first) into f and pick its culprit. words: the
 * user stack at the leaf for recover_hidden, or NULL. */
static void set_stack(struct sp_starve *t, struct sp_starve_finding *f, const __u64 *stack,
		      uint32_t nframes, const __u64 *words)
{
	f->nframes = 0;
	for (uint32_t i = 0; i < nframes && i < SP_STARVE_MAX_FRAMES && stack[i]; i++)
		sp__syms_frame(t->syms, stack[i], i > 0, &f->frames[f->nframes++]);
	if (words)
		recover_hidden(t, f, words);
	pick_culprit(f);
}

/*
 * The stack of a block that began before the tracer watched the worker:
 * no frame-pointer walk is possible from here (/proc gives the pc and sp,
 * not the frame pointer), so take the pc, then every word at the sp that
 * is a return address (it follows a call instruction) into a known
 * function, up to the runtime's call of the poll function. A stale return
 * address left in a frame's locals can show up among them; the culprit is
 * still the innermost application frame.
 */
static void scan_stack(struct sp_starve *t, struct sp_starve_finding *f, uint64_t pc,
		       const __u64 *words)
{
	f->nframes = 0;
	sp__syms_frame(t->syms, pc, false, &f->frames[f->nframes++]);
	for (int i = 0; i < UNSEEN_SCAN_WORDS && f->nframes < SP_STARVE_MAX_FRAMES; i++) {
		struct sp_starve_frame fr;
		uint64_t v = words[i];
		if (v < 4096)
			continue;
		sp__syms_frame(t->syms, v, true, &fr);
		if (!fr.func[0] || !after_call(t->o.pid, v))
			continue;
		f->frames[f->nframes++] = fr;
		if (!strncmp(fr.func, "sp__", 4))
			break; /* the runtime calling the poll: the poll's part ends here */
	}
	f->stack_scanned = true;
	pick_culprit(f);
}

/* For on-CPU findings: the sampled stack whose culprit function is the most common. */
static void pick_sampled_stack(struct sp_starve *t, const struct pending *p,
			       struct sp_starve_finding *f)
{
	char names[KEEP_SAMPLES][96];
	int best = -1, best_count = 0;
	int nsamples = p->nsamples;

	for (int i = 0; i < nsamples; i++) {
		set_stack(t, f, p->stacks[i], p->snframes[i], NULL);
		snprintf(names[i], sizeof(names[i]), "%s",
			 f->culprit >= 0 ? f->frames[f->culprit].func : "");
	}
	for (int i = 0; i < nsamples; i++) {
		int c = 0;
		for (int j = 0; j < nsamples; j++)
			c += names[i][0] && !strcmp(names[i], names[j]);
		if (c > best_count) {
			best_count = c;
			best = i;
		}
	}
	if (best < 0 && nsamples)
		best = 0;
	if (best >= 0)
		set_stack(t, f, p->stacks[best], p->snframes[best], NULL);
	else
		f->nframes = 0, f->culprit = -1;
	f->stack_samples = nsamples;
}

static void add_sys(struct sp_starve_finding *f, int nr, uint64_t ns)
{
	for (int i = 0; i < f->nsys; i++) {
		if (f->sys[i].nr == nr) {
			f->sys[i].ns += ns;
			return;
		}
	}
	if (f->nsys < SP_STARVE_NSYS) {
		f->sys[f->nsys].nr = nr;
		snprintf(f->sys[f->nsys].name, sizeof(f->sys[0].name), "%s", sys_name(nr));
		f->sys[f->nsys++].ns = ns;
	}
}

static int by_ns_desc(const void *a, const void *b)
{
	const struct sp_starve_sys *x = a, *y = b;
	return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

/* The map holding w's state and its key there (see load: by_tid). */
static int wmap(const struct sp_starve *t)
{
	return bpf_map__fd(t->by_tid ? t->skel->maps.starve_workers_tid : t->skel->maps.starve_workers);
}

static const void *wkey(const struct sp_starve *t, const struct wd *w)
{
	return t->by_tid ? (const void *)&w->tid : (const void *)&w->pidfd;
}

/* w's BPF state into sw; false if it has none. */
static bool worker_state(const struct sp_starve *t, const struct wd *w, struct starve_worker *sw)
{
	return (t->by_tid || w->pidfd >= 0) && !bpf_map_lookup_elem(wmap(t), wkey(t, w), sw);
}

/*
 * Join the BPF account of poll w->seq into f. The account is polls[cur] if
 * the worker's latest in-poll switch-out was in this poll, the other half
 * if it has switched out in a newer poll since. An interval still in
 * progress (the worker is off CPU right now) is counted up to now.
 */
static void add_offcpu(struct sp_starve *t, struct wd *w, struct sp_starve_finding *f,
		       uint64_t now_ns, const __u64 **stack, uint32_t *nframes, const __u64 **words,
		       struct starve_worker *sw)
{
	*stack = NULL;
	*words = NULL;
	*nframes = 0;
	if (!worker_state(t, w, sw))
		return;
	const struct starve_poll *cur = &sw->polls[sw->cur & 1];
	const struct starve_poll *p = sw->polls[0].poll_seq == w->seq	? &sw->polls[0]
				      : sw->polls[1].poll_seq == w->seq ? &sw->polls[1]
									: NULL;
	uint64_t longest = 0;
	if (p) {
		f->blocked_ns = p->blocked_ns;
		f->preempted_ns = p->preempted_ns;
		for (int i = 0; i < STARVE_NSYS; i++)
			if (p->sys[i].ns)
				add_sys(f, (int)p->sys[i].nr, p->sys[i].ns);
		if (p->nframes) {
			*stack = p->stack;
			*words = p->words;
			*nframes = p->nframes;
			longest = p->longest_block_ns;
		}
		f->preempt_pid = p->preempt_pid;
		memcpy(f->preempt_comm, p->preempt_comm, sizeof(f->preempt_comm));
		f->preempt_comm[sizeof(f->preempt_comm) - 1] = '\0';
	}
	if (p == cur && sw->out_ts && now_ns > sw->out_ts) {
		uint64_t d = now_ns - sw->out_ts;
		if (sw->out_kind == STARVE_OFF_BLOCKED) {
			f->blocked_ns += d;
			add_sys(f, sw->out_sys, d);
			if (d > longest && sw->out_nframes) {
				*stack = sw->out_stack;
				*words = sw->out_words;
				*nframes = sw->out_nframes;
			}
		} else {
			f->preempted_ns += d;
			if (d > p->longest_preempt_ns) {
				f->preempt_pid = sw->out_next_pid;
				memcpy(f->preempt_comm, sw->out_next_comm, sizeof(f->preempt_comm));
				f->preempt_comm[sizeof(f->preempt_comm) - 1] = '\0';
			}
		}
	}
	qsort(f->sys, (size_t)f->nsys, sizeof(f->sys[0]), by_ns_desc);
}

/* Name p's finding: the poll function, then the stack report() chose. */
static void name_finding(struct sp_starve *t, struct pending *p)
{
	struct sp_starve_finding *f = &p->f;

	sp__syms_frame(t->syms, p->poll_fn, false, &f->poll_fn);
	f->culprit = -1;
	switch (p->kind) {
	case STK_BLOCK:
		set_stack(t, f, p->stack, p->nframes, p->words);
		break;
	case STK_SCANNED:
		scan_stack(t, f, p->pc, p->words);
		break;
	case STK_SAMPLED:
		pick_sampled_stack(t, p, f);
		break;
	}
}

static void *namer_main(void *arg)
{
	struct sp_starve *t = arg;

	pthread_mutex_lock(&t->qlock);
	for (;;) {
		while (!t->todo && !t->qstop)
			pthread_cond_wait(&t->qwork, &t->qlock);
		if (!t->todo)
			break; /* stopping, and nothing left */
		struct pending *p = t->todo;
		t->todo = p->next;
		t->ntodo--;
		if (!t->todo)
			t->todo_tail = &t->todo;
		t->naming = true;
		pthread_mutex_unlock(&t->qlock);
		name_finding(t, p);
		pthread_mutex_lock(&t->qlock);
		p->next = NULL;
		*t->done_tail = p;
		t->done_tail = &p->next;
		t->naming = false;
		pthread_cond_broadcast(&t->qidle);
		uint64_t one = 1;
		if (write(t->wake_fd, &one, sizeof(one)) < 0) {
			/* full counter: a wake is pending anyway */
		}
	}
	pthread_mutex_unlock(&t->qlock);
	return NULL;
}

/* Hand the named findings to on_finding, in report order; with all, wait
 * for the namer to finish every queued one first. */
static void deliver(struct sp_starve *t, bool all)
{
	if (!t->namer_started)
		return;
	pthread_mutex_lock(&t->qlock);
	while (all && (t->todo || t->naming))
		pthread_cond_wait(&t->qidle, &t->qlock);
	struct pending *p = t->done;
	t->done = NULL;
	t->done_tail = &t->done;
	pthread_mutex_unlock(&t->qlock);
	while (p) {
		struct pending *next = p->next;
		uint64_t late = mono_ns() - p->f.report_ns;
		if (late > 20000000u)
			note(t, "a finding waited %.0f ms for its names (naming, or the CPU)",
			     (double)late / 1e6);
		if (t->o.on_finding)
			t->o.on_finding(&p->f, t->o.arg);
		free(p);
		p = next;
	}
}

static void report(struct sp_starve *t, struct wd *w, bool running, uint64_t total_ns)
{
	struct pending *p = calloc(1, sizeof(*p));
	struct starve_worker sw;
	const __u64 *bstack, *bwords;
	uint32_t bframes;
	uint64_t now = mono_ns();

	w->reported = true;
	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.starve_want), &w->tid);
	if (!p) {
		note(t, "out of memory: a finding for tid %u dropped", w->tid);
		return;
	}
	struct sp_starve_finding *f = &p->f;
	f->pid = t->o.pid;
	f->tid = w->tid;
	f->worker_idx = w->worker_idx;
	f->task_id = w->task_id;
	f->poll_seq = w->seq;
	p->poll_fn = w->poll_fn;
	if (w->name) {
		/* a static string: read 32 bytes, fewer near the end of a mapping */
		for (size_t len = sizeof f->task_name - 1; len >= 8; len /= 2)
			if (sp__target_read(f->pid, w->name, f->task_name, len) == 0) {
				f->task_name[len] = 0;
				break;
			}
		f->task_name[sizeof f->task_name - 1] = 0;
	}
	f->report_ns = now;
	f->running = running;
	add_offcpu(t, w, f, now, &bstack, &bframes, &bwords, &sw);
	if (w->unseen_block && w->unseen_until_ns > w->found_ns) {
		uint64_t d = w->unseen_until_ns - w->found_ns;
		f->blocked_ns += d;
		add_sys(f, w->unseen_sys, d);
		qsort(f->sys, (size_t)f->nsys, sizeof(f->sys[0]), by_ns_desc);
	}
	if (f->blocked_ns + f->preempted_ns > total_ns)
		total_ns = f->blocked_ns + f->preempted_ns; /* clocks disagree by a hair */
	f->total_ns = total_ns;
	/*
	 * The start from the slot's own start ticks, as their age now: exact to
	 * the calibration's rate error over that age, where now - total_ns would
	 * be late by the time between the poll's end and this report.
	 */
	uint64_t mnow = mono_ns(), tnow = slot_now(&t->reg);
	f->start_ns = tnow > w->start ? mnow - slot_ns(&t->reg, tnow - w->start) : now - total_ns;
	/* What happened before the worker was watched is nobody's account. */
	uint64_t room = total_ns - f->blocked_ns - f->preempted_ns;
	if (w->found_seq && w->seq == w->found_seq && w->found_ns > f->start_ns)
		f->unseen_ns = w->found_ns - f->start_ns < room ? w->found_ns - f->start_ns : room;
	f->oncpu_ns = room - f->unseen_ns;
	/*
	 * The verdict names what the poll itself did, in the part the tracer
	 * watched: the larger of blocked and on-CPU, as long as it is a quarter
	 * of that time. Preemption stretches a long computation but does not
	 * cause it; only a poll that barely ran for itself is called preempted.
	 */
	uint64_t watched = total_ns - f->unseen_ns;
	if (f->blocked_ns >= f->oncpu_ns && f->blocked_ns * 4 >= watched && f->blocked_ns)
		f->verdict = SP_STARVE_BLOCKED;
	else if (f->oncpu_ns > f->blocked_ns && f->oncpu_ns * 4 >= watched)
		f->verdict = SP_STARVE_ONCPU;
	else
		f->verdict = SP_STARVE_PREEMPTED;

	/* The stack to name: the one that shows what the verdict says. */
	if (bstack && (f->verdict == SP_STARVE_BLOCKED || !w->nsamples)) {
		p->kind = STK_BLOCK;
		p->nframes = bframes < STARVE_STACK_DEPTH ? bframes : STARVE_STACK_DEPTH;
		memcpy(p->stack, bstack, sizeof(p->stack));
		memcpy(p->words, bwords, STARVE_SCAN_WORDS * sizeof(__u64));
	} else if (f->verdict == SP_STARVE_BLOCKED && w->unseen_block) {
		p->kind = STK_SCANNED;
		p->pc = w->unseen_pc;
		memcpy(p->words, w->unseen_words, sizeof(p->words));
	} else if (w->nsamples) {
		p->kind = STK_SAMPLED;
		p->nsamples = w->nsamples;
		memcpy(p->snframes, w->nframes, sizeof(p->snframes));
		memcpy(p->stacks, w->stacks, sizeof(p->stacks));
	}
	switch (f->verdict) {
	case SP_STARVE_BLOCKED:
		f->fix = "a blocking call inside a poll stalls the whole worker: move it to the "
			 "blocking pool (sp_spawn_blocking) or use spindle's async I/O";
		break;
	case SP_STARVE_ONCPU:
		f->fix = "a long computation between two awaits: split it and yield (SP_YIELD) "
			 "inside the loop, or run it with sp_spawn_blocking";
		break;
	default:
		f->fix = "the worker was runnable but another thread had its CPU: CPU contention "
			 "(fewer workers, more CPUs, or a lower priority for the other load)";
		break;
	}
	pthread_mutex_lock(&t->qlock);
	bool full = t->ntodo >= MAX_PENDING;
	if (!full) {
		*t->todo_tail = p;
		t->todo_tail = &p->next;
		t->ntodo++;
		pthread_cond_signal(&t->qwork);
	}
	pthread_mutex_unlock(&t->qlock);
	if (full) {
		/* A target that blocks on every worker at once, faster than
		 * names come: keep the watch going, count what is lost. */
		if (t->st.findings_dropped++ == 0 && t->o.on_warning)
			t->o.on_warning("long polls come faster than their stacks are named: "
					"dropping findings (the count is in --verbose's summary)",
					t->o.arg);
		free(p);
		return;
	}
	t->st.findings++;
}

/* ---- the watchdog ------------------------------------------------------------------------- */

static void worker_new(struct sp_starve *t, struct wd *w, uint32_t i, uint32_t tid, uint64_t seq)
{
	struct starve_worker sw = {.slot_addr = t->reg.slots + (uint64_t)i * t->reg.slot_size};

	memset(w, 0, sizeof(*w));
	w->tid = tid;
	w->pidfd = t->by_tid ? -1 : (int)syscall(SYS_pidfd_open, (pid_t)tid, PIDFD_THREAD);
	if ((!t->by_tid && w->pidfd < 0) || bpf_map_update_elem(wmap(t), wkey(t, w), &sw, BPF_ANY))
		note(t, "worker tid %u: no off-CPU account (%s)", tid, strerror(errno));
	w->found_seq = seq;
	w->found_ns = mono_ns();
	t->st.workers_seen++;
	note(t, "worker tid %u (slot %u) found", tid, i);
}

static void worker_gone(struct sp_starve *t, struct wd *w)
{
	if (w->flagged && !w->reported)
		report(t, w, false, slot_ns(&t->reg, w->seen - w->start));
	if (t->by_tid || w->pidfd >= 0)
		bpf_map_delete_elem(wmap(t), wkey(t, w));
	if (w->pidfd >= 0)
		close(w->pidfd);
	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.starve_want), &w->tid);
	memset(w, 0, sizeof(*w));
}

/*
 * Is the thread asleep (S or D in /proc/PID/task/TID/stat)? If so, its
 * syscall (-1: none), user sp and pc from /proc/PID/task/TID/syscall.
 */
static bool read_task_file(int pid, uint32_t tid, const char *name, char *buf, size_t size)
{
	char path[64];
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/task/%u/%s", pid, tid, name);
	if (!(fp = fopen(path, "r")))
		return false;
	size_t n = fread(buf, 1, size - 1, fp);
	fclose(fp);
	buf[n] = 0;
	return true;
}

static bool thread_asleep(int pid, uint32_t tid, int *sys, uint64_t *sp, uint64_t *pc)
{
	char buf[512];

	if (!read_task_file(pid, tid, "stat", buf, sizeof(buf)))
		return false;
	const char *st = strrchr(buf, ')'); /* the comm may hold spaces and parentheses */
	if (!st || !st[1] || (st[2] != 'S' && st[2] != 'D'))
		return false;
	if (!read_task_file(pid, tid, "syscall", buf, sizeof(buf)))
		return false;
	unsigned long long v[9];
	int k = sscanf(buf, "%d %llx %llx %llx %llx %llx %llx %llx %llx", sys, &v[0], &v[1], &v[2],
		       &v[3], &v[4], &v[5], &v[6], &v[7]);
	if (k == 9) { /* nr, six arguments, sp, pc */
		*sp = v[6];
		*pc = v[7];
		return true;
	}
	if (k == 3 && *sys == -1) { /* blocked outside a syscall: -1 sp pc */
		*sp = v[0];
		*pc = v[1];
		return true;
	}
	return false; /* "running" (it woke meanwhile), or unreadable */
}

/*
 * A flagged poll that began before the worker was watched: is the worker
 * asleep in a block BPF never saw start? Called at flag time and on every
 * tick after, until the worker is seen running or BPF has an account for
 * the poll (from then on BPF sees everything).
 */
static void watch_unseen(struct sp_starve *t, struct wd *w)
{
	struct starve_worker sw;
	int sys;
	uint64_t sp, pc;

	if (w->unseen_done || !w->found_seq || w->seq != w->found_seq)
		return;
	bool asleep = thread_asleep(t->o.pid, w->tid, &sys, &sp, &pc);
	bool seen = worker_state(t, w, &sw) &&
		    (sw.polls[0].poll_seq == w->seq || sw.polls[1].poll_seq == w->seq);
	if (!asleep || seen) {
		w->unseen_done = true;
		return;
	}
	if (!w->unseen_block) {
		w->unseen_block = true;
		w->unseen_sys = sys;
		w->unseen_pc = pc;
		/* near the top of the stack mapping a long read fails: shorten it */
		size_t len = sizeof(w->unseen_words);
		while (len >= 64 && sp__target_read(t->o.pid, sp, w->unseen_words, len))
			len /= 2;
		if (len < 64)
			len = 0;
		memset((char *)w->unseen_words + len, 0, sizeof(w->unseen_words) - len);
		note(t, "worker tid %u was already blocked (%s) when found", w->tid, sys_name(sys));
	}
	w->unseen_until_ns = mono_ns();
}

static void flag(struct sp_starve *t, struct wd *w)
{
	struct starve_want want = {.poll_seq = w->seq, .budget = WANT_SAMPLES};

	w->flagged = true;
	w->cross_ns = mono_ns();
	bpf_map_update_elem(bpf_map__fd(t->skel->maps.starve_want), &w->tid, &want, BPF_ANY);
	sampler_enable(t, true);
	watch_unseen(t, w);
}

/* One slot: the poll it shows now against the one watched. */
static void watch_slot(struct sp_starve *t, struct wd *w, const struct starve_slot *s, uint64_t now)
{
	uint64_t thr = t->o.threshold_ns;

	w->worker_idx = s->worker_idx;
	if (!(s->task_id && s->poll_seq == w->seq)) {
		/* The watched poll ended (or there was none). */
		if (w->flagged && !w->reported) {
			/* It ended after `seen` and no later than the next poll's start. */
			uint64_t end = now;
			if (s->task_id && s->poll_seq == w->seq + 1 && s->poll_start < now)
				end = s->poll_start;
			if (end < w->seen)
				end = w->seen;
			report(t, w, false, slot_ns(&t->reg, end - w->start));
		} else if (w->flagged) {
			bpf_map_delete_elem(bpf_map__fd(t->skel->maps.starve_want), &w->tid);
		}
		w->flagged = w->reported = false;
		w->unseen_block = w->unseen_done = false;
		w->nsamples = 0;
		w->seq = s->task_id ? s->poll_seq : 0;
		w->task_id = s->task_id;
		w->poll_fn = s->poll_fn;
		w->name = s->name;
		w->start = s->poll_start;
	}
	if (!w->seq)
		return;
	w->seen = now;
	uint64_t age = now > w->start ? slot_ns(&t->reg, now - w->start) : 0;
	if (!w->flagged && age >= thr)
		flag(t, w);
	else if (w->flagged && !w->reported)
		watch_unseen(t, w);
	/* A poll already long when its worker was found is watched for the
	 * grace time too before it is reported. */
	if (w->flagged && !w->reported && age >= thr + t->grace_ns &&
	    mono_ns() - w->cross_ns >= t->grace_ns)
		report(t, w, true, age);
	if (w->flagged && !w->reported)
		t->any_flagged = true;
}

/*
 * When the watchdog must look again. A poll cannot cross the threshold
 * before its start + threshold, and one that has not started yet not
 * before now + threshold: so the next look is due at the earliest
 * start + threshold of the polls in progress, or a threshold from now,
 * whichever is sooner. It then sees each crossing as it happens (to the
 * millisecond of the wait), ticking at most once a threshold when polls
 * are short or workers idle, where a fixed 5 ms tick woke the tracer 200
 * times a second. Flagged polls want 1 ms ticks (grace, report, /proc);
 * TICK_MAX_MS bounds the wait for new workers and the full scans.
 */
/* The wait when no poll is in progress: a threshold, at most TICK_MAX_MS. */
static uint64_t idle_wait_ns(const struct sp_starve *t)
{
	uint64_t thr = t->o.threshold_ns;
	return thr < TICK_MAX_MS * 1000000ull ? thr : TICK_MAX_MS * 1000000ull;
}

static uint64_t next_tick(struct sp_starve *t, uint64_t mono, uint64_t now, uint32_t nslots)
{
	uint64_t thr = t->o.threshold_ns;
	uint64_t wait = idle_wait_ns(t);

	if (t->any_flagged)
		wait = TICK_FLAGGED_MS * 1000000ull;
	for (uint32_t i = 0; i < nslots; i++) {
		const struct wd *w = &t->wd[i];
		if (!w->tid || !w->seq || w->flagged)
			continue;
		uint64_t age = now > w->start ? slot_ns(&t->reg, now - w->start) : 0;
		if (age < thr && thr - age < wait)
			wait = thr - age;
	}
	return mono + wait;
}

/* 0, 1: the target is gone, <0: error. */
static int watchdog(struct sp_starve *t, char *why, size_t n)
{
	struct sp__registry r;
	uint64_t mono = mono_ns();
	/*
	 * Workers claim the lowest free slot, so the used slots are a prefix:
	 * read that prefix (plus a margin, which catches new workers) every
	 * tick and all slots every FULL_SCAN_NS.
	 */
	bool full = mono - t->last_full_ns >= FULL_SCAN_NS;
	uint32_t nslots = full ? t->reg.max_slots : t->hot_slots;
	size_t len = (size_t)nslots * t->reg.slot_size;

	/*
	 * The header first, every tick: right after exec its `slots` pointer may
	 * not be relocated yet, and the calibration (mult) appears with the first
	 * worker. No calibration yet means no worker yet.
	 */
	int err = sp__target_read(t->o.pid, t->reg_addr, &r, sizeof(r));
	if (err == -ESRCH)
		return 1;
	if (!err && (err = sp__registry_check(&r, why, n)))
		return err;
	if (!err && !r.mult)
		return 0;
	if (!err)
		err = sp__target_read(t->o.pid, r.slots, t->slotbuf, len);
	uint64_t now = slot_now(&t->reg);
	if (err == -ESRCH)
		return 1;
	if (err) {
		snprintf(why, n, "reading the slots of pid %d: %s", t->o.pid, strerror(-err));
		return err;
	}
	t->reg.mult = r.mult;
	t->reg.slots = r.slots;
	if (full)
		t->last_full_ns = mono;
	uint32_t used = 0;
	t->any_flagged = false;
	for (uint32_t i = 0; i < nslots; i++) {
		const struct starve_slot *s =
			(const void *)(t->slotbuf + (size_t)i * t->reg.slot_size);
		if (s->tid)
			used = i + 1;
		struct wd *w = &t->wd[i];
		if (s->tid != w->tid) {
			if (w->tid)
				worker_gone(t, w);
			if (s->tid)
				worker_new(t, w, i, s->tid, s->task_id ? s->poll_seq : 0);
		}
		if (w->tid && t->reg.mult)
			watch_slot(t, w, s, now);
	}
	if (full || used + HOT_MARGIN > t->hot_slots)
		t->hot_slots =
			used + HOT_MARGIN < t->reg.max_slots ? used + HOT_MARGIN : t->reg.max_slots;
	if (!t->any_flagged)
		sampler_enable(t, false);
	t->next_tick_ns = next_tick(t, mono, now, nslots);
	return 0;
}

/* The target is gone: report what was flagged, as of when it was last seen. */
static void flush(struct sp_starve *t)
{
	for (uint32_t i = 0; i < t->reg.max_slots; i++) {
		struct wd *w = &t->wd[i];
		if (w->tid && w->flagged && !w->reported)
			report(t, w, false, slot_ns(&t->reg, w->seen - w->start));
	}
}

/* ---- API ---------------------------------------------------------------------------------- */

int sp_starve_open(struct sp_starve **out, const struct sp_starve_opts *o, char *why, size_t whylen)
{
	struct sp_starve *t = calloc(1, sizeof(*t));
	int err;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->o = *o;
	if (!t->o.threshold_ns)
		t->o.threshold_ns = 10000000;
	t->grace_ns = o->grace_ns ? o->grace_ns : SP_STARVE_GRACE_MS * 1000000ull;
	pthread_mutex_init(&t->qlock, NULL);
	t->wake_fd = -1;
	pthread_cond_init(&t->qwork, NULL);
	pthread_cond_init(&t->qidle, NULL);
	t->todo_tail = &t->todo;
	t->done_tail = &t->done;
	err = check_env(o, why, whylen);
	if (!err && !o->wait_registry)
		err = attach_registry(t, why, whylen);
	if (!err)
		err = load(t, why, whylen);
	if (!err && (t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		err = -errno;
		snprintf(why, whylen, "eventfd: %s", strerror(errno));
	}
	if (!err) {
		err = -pthread_create(&t->namer, NULL, namer_main, t);
		if (err)
			snprintf(why, whylen, "starting the tracer's thread: %s", strerror(-err));
		t->namer_started = !err;
	}
	if (err) {
		sp_starve_close(t);
		return err;
	}
	t->reg_deadline = mono_ns() + REGISTRY_WAIT_NS;
	*out = t;
	return 0;
}

int sp_starve_poll(struct sp_starve *t, int timeout_ms, char *why, size_t whylen)
{
	uint64_t end = mono_ns() + (uint64_t)timeout_ms * 1000000u;

	for (;;) {
		deliver(t, false);
		uint64_t now = mono_ns();
		if (!t->reg_addr) {
			int err = attach_registry(t, why, whylen);
			if (err == -ESRCH || (err && kill(t->o.pid, 0) && errno == ESRCH))
				return 1;
			if (err && (err != -ENOENT || now > t->reg_deadline))
				return err;
		}
		if (t->reg_addr && now >= t->next_tick_ns) {
			/* the watchdog sets the next one once it has seen the slots;
			 * with no worker yet, a threshold away (next_tick's reason) */
			t->next_tick_ns = now + idle_wait_ns(t);
			int r = watchdog(t, why, whylen);
			if (r == 1) {
				flush(t);
				deliver(t, true);
			}
			if (r)
				return r;
		}
		if (now >= end)
			return 0;
		uint64_t due = t->reg_addr ? t->next_tick_ns : now + TICK_MS * 1000000ull;
		if (due > end)
			due = end;
		/* rounded up: a wait that ends before the tick is due only spins */
		int wait = due > now ? (int)((due - now + 999999) / 1000000u) : 1;
		/* Samples, or named findings to hand out (deliver, above). */
		struct pollfd pf[2] = {{.fd = ring_buffer__epoll_fd(t->rb), .events = POLLIN},
				       {.fd = t->wake_fd, .events = POLLIN}};
		if (poll(pf, 2, wait) < 0) {
			if (errno == EINTR)
				return 0;
			snprintf(why, whylen, "waiting for events: %s", strerror(errno));
			return -errno;
		}
		if (pf[1].revents & POLLIN) {
			uint64_t v;
			if (read(t->wake_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: another read took it */
			}
		}
		int err = pf[0].revents ? ring_buffer__consume(t->rb) : 0;
		if (err < 0 && err != -EINTR) {
			snprintf(why, whylen, "reading the ring buffer: %s", strerror(-err));
			return err;
		}
	}
}

static void prog_stats(struct bpf_program *p, uint64_t *runs, uint64_t *ns)
{
	struct bpf_prog_info info = {0};
	uint32_t len = sizeof(info);

	if (!bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len)) {
		*runs = info.run_cnt;
		*ns = info.run_time_ns;
	}
}

void sp_starve_stats(struct sp_starve *t, struct sp_starve_stats *s)
{
	*s = t->st;
	if (!t->skel)
		return;
	if (t->skel->bss)
		s->ringbuf_drops = t->skel->bss->starve_stats[0];
	prog_stats(t->skel->progs.starve_switch, &s->switch_runs, &s->switch_ns);
	prog_stats(t->skel->progs.starve_sample, &s->sample_runs, &s->sample_ns);
}

void sp_starve_close(struct sp_starve *t)
{
	if (!t)
		return;
	if (t->namer_started) {
		/* the namer names what is queued, then exits; hand those out */
		pthread_mutex_lock(&t->qlock);
		t->qstop = true;
		pthread_cond_signal(&t->qwork);
		pthread_mutex_unlock(&t->qlock);
		pthread_join(t->namer, NULL);
		deliver(t, false);
		t->namer_started = false;
	}
	pthread_mutex_destroy(&t->qlock);
	pthread_cond_destroy(&t->qwork);
	pthread_cond_destroy(&t->qidle);
	if (t->wake_fd >= 0)
		close(t->wake_fd);
	ring_buffer__free(t->rb);
	for (int i = 0; i < t->nlinks; i++)
		bpf_link__destroy(t->links[i]);
	for (int i = 0; i < t->npfds; i++)
		close(t->pfds[i]);
	free(t->links);
	free(t->pfds);
	starve_bpf__destroy(t->skel);
	sp__syms_free(t->syms);
	free(t->slotbuf);
	if (t->wd)
		for (uint32_t i = 0; i < t->reg.max_slots; i++)
			if (t->wd[i].tid && t->wd[i].pidfd >= 0)
				close(t->wd[i].pidfd);
	free(t->wd);
	free(t);
}
