/*
 * cmd_trace.c - `spindle trace`: the eBPF starvation tracer's command line.
 *
 * Argument parsing, starting the target for `-- CMD`, and printing findings
 * (human lines or JSON lines on stdout; banner and notes on stderr). The
 * tracing itself is probes/ (tracer.h); without it (no clang, bpftool, BTF at
 * build time) this command says why and exits 2.
 *
 * With -o FILE the findings also become rows of a recording (trace_db.h).
 * When the target's event rings are on, the recorder (recorder.h) runs in
 * this process too, on the main thread with its writer thread, while the
 * tracer polls on a thread of its own: polls, wakes, tasks and findings land
 * in one database on one time base. With the rings off the database holds
 * the findings, their tasks and the meta rows.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "clock.h"
#include "commands.h"

#ifndef SP_HAVE_BPF

int sp_cmd_trace(int argc, char **argv)
{
	(void)argc, (void)argv;
	sp_cli_err("trace", "built without eBPF support: %s", SP_BPF_REASON);
	return 2;
}

#else

#include "recorder.h"
#include "trace_db.h"
#include "tracer.h"

#define SEGMENT_WAIT_NS 10000000000ull	     /* a child with rings on makes its segment by then */
#define SEGMENT_AFTER_WORKER_NS 500000000ull /* ... or this soon after its first worker */

struct trace_args {
	int pid;
	char **cmd; /* -- CMD ARGS, NULL-terminated */
	double threshold_ms;
	double grace_ms; /* < 0: the default (10 ms; 1000 ms with -o) */
	unsigned hz;
	double duration_s; /* 0: until the target exits or Ctrl-C */
	bool json, verbose;
	const char *out; /* -o: the recording to write */
	trdb *q;	 /* with -o: findings on their way to it */
};

static volatile sig_atomic_t stop;
static uint64_t t0_ns;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: spindle trace [options] -p PID\n"
		"       spindle trace [options] -- CMD [ARGS...]\n"
		"\n"
		"Watch the workers of a spindle process from the kernel (eBPF) and report every\n"
		"poll that runs longer than the threshold, once, with where its time went:\n"
		"on-CPU (a long computation), blocked in a system call (which one), or preempted\n"
		"(by which process); the task, its poll function, the culprit frame and stack,\n"
		"and the fix to consider. Works on any process linked with spindle: it reads the\n"
		"always-on worker-slot registry, SPINDLE_TRACE is not needed. Costs nothing per\n"
		"poll. A worker found already blocked (a process that hangs now) is read\n"
		"from /proc: its system call, a stack scanned from its stack pointer, and\n"
		"the time before the tracer watched as 'unwatched'.\n"
		"Needs root (or CAP_BPF+CAP_PERFMON and ptrace access to the target).\n"
		"\n"
		"options:\n"
		"  -p, --pid PID         trace a running process\n"
		"  -t, --threshold MS    report polls longer than MS milliseconds (default 10)\n"
		"  -F, --frequency HZ    cpu-clock samples per second per CPU while a poll\n"
		"                        is flagged (default 4000; none otherwise)\n"
		"  -d, --duration S      stop after S seconds (a started CMD is then terminated)\n"
		"  -j, --json            one JSON object per finding and line\n"
		"  -o, --output FILE     also write the findings into FILE, a recording in the\n"
		"                        format of 'spindle record' (replaced if it exists), for\n"
		"                        'spindle report' and 'spindle export'. When the target's\n"
		"                        event rings are on, its polls, wakes and tasks are\n"
		"                        recorded into the same file, on the same time line: with\n"
		"                        -- CMD, SPINDLE_TRACE=1 is put in CMD's environment\n"
		"                        (unless SPINDLE_TRACE is set), so one command gives "
		"both;\n"
		"                        with -p, when PID was started with SPINDLE_TRACE=1.\n"
		"                        Otherwise FILE holds the findings and their tasks only\n"
		"  -g, --grace MS        report a poll that is still running MS after it crossed\n"
		"                        the threshold (default 10; 1000 with -o, so that "
		"recorded\n"
		"                        findings carry whole polls)\n"
		"  -v, --verbose         workers as they are found, counters, libbpf's messages\n"
		"  -h, --help            this text\n"
		"\n"
		"exit status: 0 traced until the target exited, the duration ended or Ctrl-C;\n"
		"2 bad arguments or environment (not permitted, no BTF, no such process,\n"
		"not a spindle process).\n"
		"\n"
		"examples:\n"
		"  spindle trace -- ./build/bin/blocking --seconds 5\n"
		"  spindle trace -p $(pgrep -n demo) --threshold 5\n"
		"  spindle trace -p $(pgrep -n myservice) -t 1000 -d 5   # what its stuck workers wait for\n"
		"  spindle trace --json -d 30 -p 4242 > findings.jsonl\n"
		"  spindle trace -o t.db -- ./build/bin/blocking --seconds 2; spindle report "
		"t.db\n");
}

/* 0 ok, 1 --help printed, -1 error printed. */
static int parse_args(int argc, char **argv, struct trace_args *a)
{
	double v;

	*a = (struct trace_args){.pid = -1, .threshold_ms = 10, .grace_ms = -1, .hz = SP_STARVE_SAMPLE_HZ};
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--")) {
			a->cmd = argv + i + 1;
			if (!a->cmd[0]) {
				sp_cli_err("trace", "-- wants a command to run");
				return -1;
			}
			break;
		} else if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			usage(stdout);
			return 1;
		} else if (!strcmp(o, "-j") || !strcmp(o, "--json")) {
			a->json = true;
		} else if (!strcmp(o, "-v") || !strcmp(o, "--verbose")) {
			a->verbose = true;
		} else if (!strcmp(o, "-p") || !strcmp(o, "--pid")) {
			if (sp_cli_num("trace", o, val, 1, 4194304, &v))
				return -1;
			a->pid = (int)v, i++;
		} else if (!strcmp(o, "-t") || !strcmp(o, "--threshold")) {
			if (sp_cli_num("trace", o, val, 0.1, 3600000, &a->threshold_ms))
				return -1;
			i++;
		} else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
			if (!val || !*val) {
				sp_cli_err("trace", "%s wants a file name", o);
				return -1;
			}
			a->out = val, i++;
		} else if (!strcmp(o, "-g") || !strcmp(o, "--grace")) {
			if (sp_cli_num("trace", o, val, 0.001, 3600000, &a->grace_ms))
				return -1;
			i++;
		} else if (!strcmp(o, "-F") || !strcmp(o, "--frequency")) {
			if (sp_cli_num("trace", o, val, 1, 10000, &v))
				return -1;
			a->hz = (unsigned)v, i++;
		} else if (!strcmp(o, "-d") || !strcmp(o, "--duration")) {
			if (sp_cli_num("trace", o, val, 0.001, 31536000, &a->duration_s))
				return -1;
			i++;
		} else {
			sp_cli_err("trace", "unknown option '%s' (try 'spindle trace --help')", o);
			return -1;
		}
	}
	if ((a->pid > 0) == (a->cmd != NULL)) {
		sp_cli_err("trace", "give either -p PID or -- CMD (try 'spindle trace --help')");
		return -1;
	}
	return 0;
}

/* ---- output ------------------------------------------------------------------------------ */

static const char *verdict_name(enum sp_starve_verdict v)
{
	return v == SP_STARVE_BLOCKED ? "blocked" : v == SP_STARVE_ONCPU ? "on-cpu" : "preempted";
}

static void frame_str(const struct sp_starve_frame *f, char *buf, size_t n)
{
	int k;

	if (f->func[0] && f->func_off)
		k = snprintf(buf, n, "%s+0x%llx", f->func, (unsigned long long)f->func_off);
	else if (f->func[0])
		k = snprintf(buf, n, "%s", f->func);
	else if (f->module[0] && f->module_off)
		k = snprintf(buf, n, "%s+0x%llx", f->module, (unsigned long long)f->module_off);
	else
		k = snprintf(buf, n, "0x%llx", (unsigned long long)f->addr);
	if (f->file[0] && k >= 0 && (size_t)k < n)
		k += snprintf(buf + k, n - (size_t)k, " (%s:%d)", f->file, f->line);
	if (f->inlined_in[0] && k >= 0 && (size_t)k < n)
		snprintf(buf + k, n - (size_t)k, " [inlined in %s]", f->inlined_in);
}

static void print_human(const struct sp_starve_finding *f)
{
	char fn[256], buf[256];
	double ms = 1e-6;

	frame_str(&f->poll_fn, fn, sizeof(fn));
	char name[48] = "";
	if (f->task_name[0])
		snprintf(name, sizeof(name), "'%s' ", f->task_name);
	printf("[%8.3f] LONG POLL task %llu %s%s on worker %u (tid %u): %.1f ms%s, %s\n",
	       (double)(f->report_ns - t0_ns) / 1e9, (unsigned long long)f->task_id, name, fn,
	       f->worker_idx, f->tid, (double)f->total_ns * ms,
	       f->running ? " so far (still running)" : "", verdict_name(f->verdict));
	printf("           on-CPU %.1f ms | blocked %.1f ms", (double)f->oncpu_ns * ms,
	       (double)f->blocked_ns * ms);
	for (int i = 0; i < f->nsys; i++) {
		printf("%s %s", i ? "," : " in", f->sys[i].name);
		if (f->nsys > 1)
			printf(" %.1f ms", (double)f->sys[i].ns * ms);
	}
	printf(" | preempted %.1f ms", (double)f->preempted_ns * ms);
	if (f->preempted_ns && f->preempt_comm[0])
		printf(" (by %s, pid %u)", f->preempt_comm, f->preempt_pid);
	if (f->unseen_ns)
		printf(" | unwatched %.1f ms (the poll began before the tracer watched)",
		       (double)f->unseen_ns * ms);
	printf("\n");
	if (f->culprit >= 0) {
		frame_str(&f->frames[f->culprit], buf, sizeof(buf));
		printf("           culprit: %s\n", buf);
	}
	if (f->nframes) {
		printf("           stack%s:", f->stack_samples   ? " (sampled)"
					 : f->stack_scanned ? " (scanned from the blocked thread's sp)"
							    : " (at block)");
		for (int i = 0; i < f->nframes; i++) {
			frame_str(&f->frames[i], buf, sizeof(buf));
			printf("%s%s", i ? " <- " : " ", buf);
		}
		printf("\n");
	}
	printf("           fix: %s\n", f->fix);
	fflush(stdout);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_frame(const struct sp_starve_frame *f)
{
	printf("{\"addr\":\"0x%llx\",\"func\":", (unsigned long long)f->addr);
	json_str(f->func);
	printf(",\"off\":%llu,\"file\":", (unsigned long long)f->func_off);
	json_str(f->file);
	printf(",\"line\":%d,\"inlined_in\":", f->line);
	json_str(f->inlined_in);
	printf(",\"module\":");
	json_str(f->module);
	printf(",\"module_off\":\"0x%llx\"}", (unsigned long long)f->module_off);
}

static void print_json(const struct sp_starve_finding *f)
{
	printf("{\"event\":\"long_poll\",\"t\":%.6f,\"pid\":%d,\"tid\":%u,\"worker\":%u,"
	       "\"task_id\":%llu,\"poll_seq\":%llu,\"poll_fn\":",
	       (double)(f->report_ns - t0_ns) / 1e9, f->pid, f->tid, f->worker_idx,
	       (unsigned long long)f->task_id, (unsigned long long)f->poll_seq);
	json_frame(&f->poll_fn);
	printf(",\"task_name\":");
	json_str(f->task_name);
	printf(",\"running\":%s,\"verdict\":\"%s\",\"total_ms\":%.3f,\"oncpu_ms\":%.3f,"
	       "\"blocked_ms\":%.3f,\"preempted_ms\":%.3f,\"unwatched_ms\":%.3f,\"syscalls\":[",
	       f->running ? "true" : "false", verdict_name(f->verdict), (double)f->total_ns / 1e6,
	       (double)f->oncpu_ns / 1e6, (double)f->blocked_ns / 1e6,
	       (double)f->preempted_ns / 1e6, (double)f->unseen_ns / 1e6);
	for (int i = 0; i < f->nsys; i++) {
		printf("%s{\"nr\":%d,\"name\":", i ? "," : "", f->sys[i].nr);
		json_str(f->sys[i].name);
		printf(",\"ms\":%.3f}", (double)f->sys[i].ns / 1e6);
	}
	printf("],\"preempted_by\":");
	json_str(f->preempted_ns ? f->preempt_comm : "");
	printf(",\"culprit\":");
	if (f->culprit >= 0)
		json_frame(&f->frames[f->culprit]);
	else
		printf("null");
	printf(",\"stack_samples\":%d,\"stack_scanned\":%s,\"stack\":[", f->stack_samples,
	       f->stack_scanned ? "true" : "false");
	for (int i = 0; i < f->nframes; i++) {
		if (i)
			putchar(',');
		json_frame(&f->frames[i]);
	}
	printf("],\"fix\":");
	json_str(f->fix);
	printf("}\n");
	fflush(stdout);
}

static void on_finding(const struct sp_starve_finding *f, void *arg)
{
	const struct trace_args *a = arg;
	if (a->json)
		print_json(f);
	else
		print_human(f);
	if (a->q && trdb_add(a->q, f))
		fprintf(stderr, "spindle trace: out of memory: a finding is not recorded\n");
}

static void on_warning(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "spindle trace: warning: %s\n", msg);
}

static void on_note(const char *msg, void *arg)
{
	const struct trace_args *a = arg;
	if (a->verbose)
		fprintf(stderr, "spindle trace: %s\n", msg);
}

/* ---- the target -------------------------------------------------------------------------- */

/*
 * Fork CMD stopped on a pipe: the tracer attaches to its pid first, so no
 * worker start is missed, then lets it exec. *go is the write end to release
 * it; *execd the read end of a CLOEXEC pipe that reaches EOF at exec.
 */
static int spawn_held(char **cmd, bool rings, int *go, int *execd)
{
	int gp[2], ep[2];

	if (pipe2(gp, O_CLOEXEC) || pipe2(ep, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char c;
		close(gp[1]);
		close(ep[0]);
		if (read(gp[0], &c, 1) != 1)
			_exit(127); /* the tracer gave up */
		if (rings)
			setenv("SPINDLE_TRACE", "1", 0);
		execvp(cmd[0], cmd);
		int e = errno;
		if (write(ep[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(gp[0]);
	close(ep[1]);
	*go = gp[1];
	*execd = ep[0];
	return pid;
}

/* Release the held child; 0 once it has exec'd, else the exec errno. */
static int release(int go, int execd)
{
	int e = 0;
	ssize_t n;

	if (write(go, "g", 1) != 1)
		e = errno;
	close(go);
	do
		n = read(execd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(execd);
	return n == (ssize_t)sizeof(e) ? e : 0;
}

/* CPU seconds of the whole tracer (all threads) so far. */
static double self_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double cpu_at_attach; /* self_cpu() once the programs were attached */

static void print_stats(struct sp_starve *t)
{
	struct sp_starve_stats s;
	struct rusage ru;

	sp_starve_stats(t, &s);
	fprintf(stderr,
		"spindle trace: %llu workers seen, %llu findings, %llu stack samples, %llu "
		"ring buffer drops, sampler turned on or off %llu times, %llu findings dropped\n",
		(unsigned long long)s.workers_seen, (unsigned long long)s.findings,
		(unsigned long long)s.samples, (unsigned long long)s.ringbuf_drops,
		(unsigned long long)s.sampler_switches, (unsigned long long)s.findings_dropped);
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr,
		"spindle trace: bpf sched_switch %llu runs %.3f ms, sampler %llu runs %.3f ms "
		"(times need kernel.bpf_stats_enabled=1); tracer cpu %.3f s user %.3f s sys "
		"in %.3f s, %.3f s of it after attaching\n",
		(unsigned long long)s.switch_runs, (double)s.switch_ns / 1e6,
		(unsigned long long)s.sample_runs, (double)s.sample_ns / 1e6,
		(double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
		(double)(spc_mono_ns() - t0_ns) / 1e9, self_cpu() - cpu_at_attach);
}

/* ---- recording (-o) ---------------------------------------------------------------------- */

struct rec {
	struct trace_args *a;
	struct sp_starve *t;
	int pid;
	spdb_writer *w;
	uint64_t t0;
	uint64_t flushed; /* findings written (rings off) */
	int failed;
	/* the tracer's thread (rings on) */
	pthread_t thr;
	atomic_int mode; /* 0 trace, 1 until the target is gone (by deadline), 2 stop */
	uint64_t deadline;
	int err; /* the thread's end: 0, 1 target gone, < 0 error (why) */
	char why[512];
};

static void join_args(char *buf, size_t n, char **argv)
{
	size_t k = 0;

	buf[0] = 0;
	for (int i = 0; argv[i] && k + 1 < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? " " : "", argv[i]);
}

static int write_meta(struct rec *R, spc_stream *s, uint64_t t0_unix)
{
	spdb_writer *w = R->w;
	char cmd[4096], abi[32];

	if (R->a->cmd)
		join_args(cmd, sizeof(cmd), R->a->cmd);
	else
		snprintf(cmd, sizeof(cmd), "(attached to pid %d)", R->pid);
	if (s) {
		const sp__seg_reader *r = spc_stream_reader(s);
		snprintf(abi, sizeof(abi), "%u.%u", r->found_major, r->found_minor);
		if (spdb_put_meta_text(w, "seg_abi", abi))
			return -1;
	}
	return spdb_put_meta_int(w, "abi", SPDB_ABI) ||
	       spdb_put_meta_text(w, "clock", "CLOCK_MONOTONIC") ||
	       spdb_put_meta_int(w, "t0_ns", (int64_t)R->t0) ||
	       spdb_put_meta_int(w, "start_unix_ns", (int64_t)t0_unix) ||
	       spdb_put_meta_int(w, "pid", R->pid) || spdb_put_meta_text(w, "command", cmd) ||
	       spdb_put_meta_int(w, "workers", 0) || spdb_put_meta_int(w, "rings", s != NULL) ||
	       spdb_put_meta_int(w, "tracer_threshold_ns", (int64_t)(R->a->threshold_ms * 1e6)) ||
	       spdb_writer_commit(w);
}

/*
 * The child was started with SPINDLE_TRACE=1: wait for its segment while the
 * tracer runs (it finds the workers meanwhile). 1 and *s: rings on; 0: off
 * (no segment in time, or the child exited); -1: the tracer failed (why).
 */
static int wait_segment(struct rec *R, spc_stream **s)
{
	uint64_t start = spc_mono_ns(), worker_at = 0;
	const char *err = NULL;

	for (;;) {
		int rc = spc_stream_open(s, R->pid, SPC_FROM_OLDEST, &err);
		if (rc == 0)
			return 1;
		if (rc != -ENOENT && rc != -EAGAIN && rc != -ESRCH) {
			fprintf(stderr, "spindle trace: warning: the event rings of pid %d: %s\n",
				R->pid, err ? err : strerror(-rc));
			return 0;
		}
		rc = sp_starve_poll(R->t, 1, R->why, sizeof(R->why));
		if (rc < 0)
			return -1;
		if (rc == 1 || stop)
			return 0;
		uint64_t now = spc_mono_ns();
		struct sp_starve_stats st;
		sp_starve_stats(R->t, &st);
		if (st.workers_seen && !worker_at)
			worker_at = now;
		if ((worker_at && now - worker_at > SEGMENT_AFTER_WORKER_NS) ||
		    now - start > SEGMENT_WAIT_NS) {
			fprintf(stderr,
				"spindle trace: warning: pid %d made no trace segment (its rings "
				"are "
				"off): recording the findings only\n",
				R->pid);
			return 0;
		}
	}
}

static void *tracer_main(void *arg)
{
	struct rec *R = arg;
	sigset_t set;

	/* Ctrl-C is for the main thread (the recorder's loop sees it). */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		int m = atomic_load(&R->mode);
		if (m == 2 || (m == 1 && spc_mono_ns() > R->deadline))
			break;
		int err = sp_starve_poll(R->t, 50, R->why, sizeof(R->why));
		if (err) {
			R->err = err;
			break;
		}
	}
	return NULL;
}

static int before_commit(spdb_writer *w, void *arg)
{
	return trdb_flush(arg, w);
}

/* Rings on: the recorder here, the tracer on its thread. 0 ok, 2 failed. */
static int record_rings(struct rec *R, spc_stream *s, int child)
{
	struct trace_args *a = R->a;
	int status = INT_MIN, rc = 0;

	double dur = 0;
	if (a->duration_s) {
		dur = a->duration_s - (double)(spc_mono_ns() - t0_ns) / 1e9;
		if (dur <= 0)
			dur = 0.001;
	}
	sprec_live_opts o = {.stream = s,
			     .db = R->w,
			     .t0_ns = R->t0,
			     .duration_s = dur,
			     .stop = &stop,
			     .child_pid = child > 0 ? child : 0,
			     .child_status = &status,
			     .before_commit = before_commit,
			     .commit_arg = a->q};
	sprec_stats st = {0};
	if (pthread_create(&R->thr, NULL, tracer_main, R)) {
		sp_cli_err("trace", "cannot start the tracer's thread");
		return 2;
	}
	if (sprec_live_run(&o, &st))
		rc = 2;
	/* The target gone: let the tracer report what it had flagged. */
	bool gone = child > 0 ? status != INT_MIN : !spc_stream_alive(s);
	R->deadline = spc_mono_ns() + 1000000000u;
	atomic_store(&R->mode, gone ? 1 : 2);
	pthread_join(R->thr, NULL);
	if (R->err < 0) {
		sp_cli_err("trace", "%s", R->why);
		rc = 2;
	}
	if (child > 0 && status != INT_MIN) {
		/* reaped by the recorder: tell run() not to wait for it */
		R->pid = -1;
		if (a->verbose)
			fprintf(stderr, "spindle trace: pid %d exited\n", child);
	}
	if (trdb_flush(a->q, R->w))
		rc = 2;
	fprintf(stderr,
		"spindle trace: recorded %llu findings, %llu polls, %llu wakes, %llu tasks, "
		"%llu events lost -> %s\n",
		(unsigned long long)trdb_count(a->q, NULL), (unsigned long long)st.polls,
		(unsigned long long)st.wakes, (unsigned long long)st.tasks,
		(unsigned long long)st.lost, a->out);
	return rc;
}

/* Rings off: after a poll of the tracer, write what it found. */
static int flush_findings(struct rec *R)
{
	int64_t workers;
	uint64_t n = trdb_count(R->a->q, &workers);

	if (n == R->flushed || R->failed)
		return 0;
	R->flushed = n;
	if (trdb_flush(R->a->q, R->w) || spdb_put_meta_int(R->w, "workers", workers) ||
	    spdb_put_meta_int(R->w, "end_ns", (int64_t)(spc_mono_ns() - R->t0)) ||
	    spdb_writer_commit(R->w)) {
		sp_cli_err("trace", "database: %s", spdb_writer_err(R->w));
		R->failed = 1;
		return -1;
	}
	return 0;
}

/* The tracer's loop until the target exits, the duration ends or Ctrl-C. */
static int trace_loop(struct trace_args *a, struct sp_starve *t, int pid, struct rec *R)
{
	uint64_t end = a->duration_s ? t0_ns + (uint64_t)(a->duration_s * 1e9) : UINT64_MAX;
	char why[512];
	int rc = 0;

	while (!stop && spc_mono_ns() < end) {
		int err = sp_starve_poll(t, 100, why, sizeof(why));
		if (R && flush_findings(R))
			return 2;
		if (err == 1) {
			if (a->verbose)
				fprintf(stderr, "spindle trace: pid %d exited\n", pid);
			break;
		}
		if (err < 0) {
			sp_cli_err("trace", "%s", why);
			rc = 2;
			break;
		}
	}
	return rc;
}

/* -o: write the recording; with the rings on, record them too. */
static int record(struct trace_args *a, struct sp_starve *t, int pid, int child, bool rings,
		  int *reaped)
{
	struct rec R = {.a = a, .t = t, .pid = pid};
	spc_stream *s = NULL;
	uint64_t t0_unix;
	char err[512];
	int rc;

	if (child > 0 && rings) {
		rc = wait_segment(&R, &s);
		if (rc < 0) {
			sp_cli_err("trace", "%s", R.why);
			return 2;
		}
	} else if (child <= 0) {
		const char *e = NULL;
		rc = spc_stream_open(&s, pid, 0, &e);
		if (rc)
			fprintf(stderr,
				"spindle trace: pid %d has no event rings (%s): recording the "
				"findings "
				"only; start it with SPINDLE_TRACE=1 to record its polls and wakes "
				"too\n",
				pid, e ? e : strerror(-rc));
	}
	if (s && child > 0) {
		/* the segment's calibration time: before any of its events */
		const sp__seg_reader *r = spc_stream_reader(s);
		R.t0 = r->hdr.clock_ns0;
		t0_unix = r->hdr.created_ns;
	} else if (s) {
		R.t0 = spc_mono_ns();
		t0_unix = spc_real_ns();
	} else {
		R.t0 = t0_ns;
		t0_unix = spc_real_ns() - (spc_mono_ns() - t0_ns);
	}
	trdb_set(a->q, R.t0, s != NULL);
	if (spdb_writer_open(&R.w, a->out, err, sizeof(err))) {
		sp_cli_err("trace", "%s", err);
		spc_stream_close(s);
		return 2;
	}
	if (write_meta(&R, s, t0_unix)) {
		sp_cli_err("trace", "database: %s", spdb_writer_err(R.w));
		spdb_writer_close(R.w, 0);
		spc_stream_close(s);
		return 2;
	}
	if (s) {
		rc = record_rings(&R, s, child);
		spc_stream_close(s);
		*reaped = R.pid < 0;
	} else {
		rc = trace_loop(a, t, pid, &R);
		if (!rc && flush_findings(&R))
			rc = 2;
		if (!R.failed && (spdb_put_meta_int(R.w, "end_ns", (int64_t)(spc_mono_ns() - R.t0)) ||
				  spdb_writer_commit(R.w)))
			rc = 2;
		if (!R.failed)
			fprintf(stderr, "spindle trace: recorded %llu findings -> %s\n",
				(unsigned long long)R.flushed, a->out);
	}
	if (a->verbose)
		print_stats(t);
	int fin = spdb_put_meta_int(R.w, "finished", 1) == 0;
	if (spdb_writer_close(R.w, fin)) {
		sp_cli_err("trace", "database: %s", spdb_writer_err(R.w));
		rc = 2;
	}
	return rc;
}

static int run(struct trace_args *a)
{
	struct sp_starve_opts o = {
		.pid = a->pid,
		.threshold_ns = (uint64_t)(a->threshold_ms * 1e6),
		.grace_ns = (uint64_t)((a->grace_ms >= 0 ? a->grace_ms
					: a->out	 ? 1000
							 : 10) *
				       1e6),
		.sample_hz = a->hz,
		.verbose = a->verbose,
		.on_finding = on_finding,
		.on_note = on_note,
		.on_warning = on_warning,
		.arg = a,
	};
	struct sp_starve *t;
	char why[512] = "";
	int go = -1, execd = -1, child = -1, status = 0, rc = 0, reaped = 0;
	const char *env = getenv("SPINDLE_TRACE");
	bool rings = a->out && (!env || !strcmp(env, "1"));

	if (a->out && !(a->q = trdb_new())) {
		sp_cli_err("trace", "out of memory");
		return 2;
	}
	if (a->cmd) {
		child = spawn_held(a->cmd, rings, &go, &execd);
		if (child < 0) {
			sp_cli_err("trace", "cannot start %s: %s", a->cmd[0], strerror(errno));
			trdb_free(a->q);
			return 2;
		}
		o.pid = child;
		o.wait_registry = true;
	}
	int err = sp_starve_open(&t, &o, why, sizeof(why));
	if (err) {
		sp_cli_err("trace", "%s", why);
		if (child > 0) {
			close(go); /* the child exits without running CMD */
			close(execd);
			waitpid(child, NULL, 0);
		}
		trdb_free(a->q);
		return 2;
	}
	if (child > 0 && (err = release(go, execd)) != 0) {
		sp_cli_err("trace", "cannot run %s: %s", a->cmd[0], strerror(err));
		waitpid(child, NULL, 0);
		sp_starve_close(t);
		trdb_free(a->q);
		return 2;
	}
	cpu_at_attach = self_cpu();
	fprintf(stderr,
		"spindle trace: tracing pid %d, flagging polls over %g ms (their stacks sampled at %u Hz)%s\n",
		o.pid, a->threshold_ms, a->hz, a->duration_s ? "" : "; Ctrl-C to stop");
	if (a->out) {
		rc = record(a, t, o.pid, child, rings, &reaped);
	} else {
		rc = trace_loop(a, t, o.pid, NULL);
		if (a->verbose)
			print_stats(t);
	}
	sp_starve_close(t);
	if (child > 0 && !reaped) {
		if (waitpid(child, &status, WNOHANG) == 0) {
			kill(child, SIGTERM);
			waitpid(child, &status, 0);
		}
	}
	trdb_free(a->q);
	return rc;
}

int sp_cmd_trace(int argc, char **argv)
{
	struct trace_args a;
	int r = parse_args(argc, argv, &a);

	if (r)
		return r > 0 ? 0 : 2;
	t0_ns = spc_mono_ns();
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return run(&a);
}

#endif
