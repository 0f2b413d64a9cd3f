/*
 * cmd_trace.c - `spindle trace`: the eBPF starvation tracer's command line.
 *
 * Argument parsing, starting the target for `-- CMD`, and printing findings
 * (human lines or JSON lines on stdout; banner and notes on stderr). The
 * tracing itself is probes/ (tracer.h); without it (no clang, bpftool, BTF at
 * build time) this command says why and exits 2.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "commands.h"

#ifndef SP_HAVE_BPF

int sp_cmd_trace(int argc, char **argv)
{
	(void)argc, (void)argv;
	sp_cli_err("trace", "built without eBPF support: %s", SP_BPF_REASON);
	return 2;
}

#else

#include "tracer.h"

struct trace_args {
	int pid;
	char **cmd; /* -- CMD ARGS, NULL-terminated */
	double threshold_ms;
	unsigned hz;
	double duration_s; /* 0: until the target exits or Ctrl-C */
	bool json, verbose;
};

static volatile sig_atomic_t stop;
static uint64_t t0_ns;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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
		"poll. Needs root (or CAP_BPF+CAP_PERFMON and ptrace access to the target).\n"
		"\n"
		"options:\n"
		"  -p, --pid PID         trace a running process\n"
		"  -t, --threshold MS    report polls longer than MS milliseconds (default 10)\n"
		"  -F, --frequency HZ    cpu-clock samples per second per CPU (default 1000)\n"
		"  -d, --duration S      stop after S seconds (a started CMD is then terminated)\n"
		"  -j, --json            one JSON object per finding and line\n"
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
		"  spindle trace --json -d 30 -p 4242 > findings.jsonl\n");
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s ? s : "", &end);
	if (!s || !*s || *end || errno || v < lo || v > hi) {
		sp_cli_err("trace", "%s wants a number in %g..%g, not '%s'", opt, lo, hi,
			   s ? s : "");
		return -1;
	}
	*out = v;
	return 0;
}

/* 0 ok, 1 --help printed, -1 error printed. */
static int parse_args(int argc, char **argv, struct trace_args *a)
{
	double v;

	*a = (struct trace_args){.pid = -1, .threshold_ms = 10, .hz = 1000};
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
			if (parse_num(o, val, 1, 4194304, &v))
				return -1;
			a->pid = (int)v, i++;
		} else if (!strcmp(o, "-t") || !strcmp(o, "--threshold")) {
			if (parse_num(o, val, 0.1, 3600000, &a->threshold_ms))
				return -1;
			i++;
		} else if (!strcmp(o, "-F") || !strcmp(o, "--frequency")) {
			if (parse_num(o, val, 1, 10000, &v))
				return -1;
			a->hz = (unsigned)v, i++;
		} else if (!strcmp(o, "-d") || !strcmp(o, "--duration")) {
			if (parse_num(o, val, 0.001, 31536000, &a->duration_s))
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
	printf("\n");
	if (f->culprit >= 0) {
		frame_str(&f->frames[f->culprit], buf, sizeof(buf));
		printf("           culprit: %s\n", buf);
	}
	if (f->nframes) {
		printf("           stack%s:", f->stack_samples ? " (sampled)" : " (at block)");
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
	       "\"blocked_ms\":%.3f,\"preempted_ms\":%.3f,\"syscalls\":[",
	       f->running ? "true" : "false", verdict_name(f->verdict), (double)f->total_ns / 1e6,
	       (double)f->oncpu_ns / 1e6, (double)f->blocked_ns / 1e6,
	       (double)f->preempted_ns / 1e6);
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
	printf(",\"stack_samples\":%d,\"stack\":[", f->stack_samples);
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
static int spawn_held(char **cmd, int *go, int *execd)
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

static int run(struct trace_args *a)
{
	struct sp_starve_opts o = {
		.pid = a->pid,
		.threshold_ns = (uint64_t)(a->threshold_ms * 1e6),
		.sample_hz = a->hz,
		.verbose = a->verbose,
		.on_finding = on_finding,
		.on_note = on_note,
		.on_warning = on_warning,
		.arg = a,
	};
	struct sp_starve *t;
	char why[512] = "";
	int go = -1, execd = -1, child = -1, status = 0, rc = 0;

	if (a->cmd) {
		child = spawn_held(a->cmd, &go, &execd);
		if (child < 0) {
			sp_cli_err("trace", "cannot start %s: %s", a->cmd[0], strerror(errno));
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
		return 2;
	}
	if (child > 0 && (err = release(go, execd)) != 0) {
		sp_cli_err("trace", "cannot run %s: %s", a->cmd[0], strerror(err));
		waitpid(child, NULL, 0);
		sp_starve_close(t);
		return 2;
	}
	fprintf(stderr,
		"spindle trace: tracing pid %d, polls over %g ms, sampling %u Hz per CPU%s\n",
		o.pid, a->threshold_ms, a->hz, a->duration_s ? "" : "; Ctrl-C to stop");
	uint64_t end = a->duration_s ? t0_ns + (uint64_t)(a->duration_s * 1e9) : UINT64_MAX;
	while (!stop && mono_ns() < end) {
		err = sp_starve_poll(t, 100, why, sizeof(why));
		if (err == 1) {
			if (a->verbose)
				fprintf(stderr, "spindle trace: pid %d exited\n", o.pid);
			break;
		}
		if (err < 0) {
			sp_cli_err("trace", "%s", why);
			rc = 2;
			break;
		}
	}
	if (a->verbose) {
		struct sp_starve_stats s;
		sp_starve_stats(t, &s);
		fprintf(stderr,
			"spindle trace: %llu workers seen, %llu findings, %llu stack samples, %llu "
			"ring buffer drops\n",
			(unsigned long long)s.workers_seen, (unsigned long long)s.findings,
			(unsigned long long)s.samples, (unsigned long long)s.ringbuf_drops);
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		fprintf(stderr,
			"spindle trace: bpf sched_switch %llu runs %.3f ms, sampler %llu runs %.3f "
			"ms "
			"(times need kernel.bpf_stats_enabled=1); tracer cpu %.3f s user %.3f s "
			"sys "
			"in %.3f s\n",
			(unsigned long long)s.switch_runs, (double)s.switch_ns / 1e6,
			(unsigned long long)s.sample_runs, (double)s.sample_ns / 1e6,
			(double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
			(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
			(double)(mono_ns() - t0_ns) / 1e9);
	}
	sp_starve_close(t);
	if (child > 0) {
		if (waitpid(child, &status, WNOHANG) == 0) {
			kill(child, SIGTERM);
			waitpid(child, &status, 0);
		}
	}
	return rc;
}

int sp_cmd_trace(int argc, char **argv)
{
	struct trace_args a;
	int r = parse_args(argc, argv, &a);

	if (r)
		return r > 0 ? 0 : 2;
	t0_ns = mono_ns();
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return run(&a);
}

#endif
