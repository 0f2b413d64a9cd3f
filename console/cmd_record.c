/*
 * cmd_record.c - `spindle record`: run a command with tracing on, or attach
 * to a traced process, and record its events into SQLite (db_schema.h)
 * until it exits, --duration passes, or Ctrl-C.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "commands.h"
#include "recorder.h"

#define CMD "record"
#define SEGMENT_WAIT_NS 10000000000ull /* a child that never traces: give up */

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t child_pid;

static void on_signal(int sig)
{
	/* Forward to the child (it decides how to end); without one, finish. */
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
	else
		stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: spindle record -o FILE [--] CMD [ARGS...]\n"
		   "       spindle record -o FILE -p PID [--duration S]\n"
		   "       spindle record -o FILE --synthetic N [--seed S]\n\n"
		   "Record a spindle process's events (polls, wakes, wakers, steals, parks)\n"
		   "into an SQLite database for 'spindle report' and 'spindle export'.\n"
		   "With CMD, runs it with SPINDLE_TRACE=1 and records from its first event\n"
		   "until it exits (Ctrl-C is passed on to it). With -p, attaches to a\n"
		   "process started with SPINDLE_TRACE=1 and records until it exits,\n"
		   "--duration elapses or Ctrl-C. --synthetic writes a made-up recording\n"
		   "of N polls (benchmarks). Progress is shown once a second on a terminal.\n\n"
		   "options:\n"
		   "  -o, --output FILE   the database to write (replaced if it exists)\n"
		   "  -p, --pid PID       attach to a running process\n"
		   "  -d, --duration S    stop after S seconds (with -p)\n"
		   "  -q, --quiet         no progress line\n"
		   "      --ring N        with CMD: records per ring of each of its threads\n"
		   "                      (a power of two, 1k..1m; default 16k = 512 KiB):\n"
		   "                      larger rings lose less when this reader stalls.\n"
		   "                      A process you attach to sets it itself with\n"
		   "                      SPINDLE_TRACE_RING=N in its environment\n\n"
		   "examples:\n"
		   "  spindle record -o t.db -- ./build/bin/lostwake\n"
		   "  spindle record -o t.db -p 4242 --duration 10\n"
		   "  spindle record -o t.db --ring 256k -- ./build/bin/demo\n"
		   "  spindle report t.db\n");
}

/*
 * fork + exec argv with SPINDLE_TRACE=1. An exec failure comes back through a
 * close-on-exec pipe. Returns the pid or -1 (message printed).
 */
static pid_t spawn_child(char **argv, const char *ring)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC)) {
		sp_cli_err(CMD, "pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		sp_cli_err(CMD, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		setenv("SPINDLE_TRACE", "1", 1);
		if (ring)
			setenv("SPINDLE_TRACE_RING", ring, 1);
		execvp(argv[0], argv);
		int e = errno;
		if (write(p[1], &e, sizeof e) < 0)
			_exit(127);
		_exit(127);
	}
	close(p[1]);
	int e = 0;
	ssize_t n = read(p[0], &e, sizeof e);
	close(p[0]);
	if (n == (ssize_t)sizeof e) {
		waitpid(pid, NULL, 0);
		sp_cli_err(CMD, "cannot run %s: %s", argv[0], strerror(e));
		return -1;
	}
	return pid;
}

/* Wait for the child's segment (polled every 200 us) and open it from its
 * oldest records. 0, 1 when the child ended without one, -1 on error. */
static int attach_child(spc_stream **s, pid_t pid, int *status)
{
	uint64_t t0 = spc_mono_ns();
	const char *err = NULL;
	for (;;) {
		int rc = spc_stream_open(s, pid, SPC_FROM_OLDEST, &err);
		if (rc == 0)
			return 0;
		if (rc != -ENOENT && rc != -EAGAIN && rc != -ESRCH) {
			sp_cli_err(CMD, "process %d: %s", (int)pid, err ? err : strerror(-rc));
			return -1;
		}
		if (waitpid(pid, status, WNOHANG) == pid)
			return 1;
		if (spc_mono_ns() - t0 > SEGMENT_WAIT_NS) {
			sp_cli_err(CMD,
				   "process %d made no trace segment in %llu s (is it a spindle "
				   "program?)",
				   (int)pid, (unsigned long long)(SEGMENT_WAIT_NS / 1000000000ull));
			return -1;
		}
		usleep(200);
	}
}

static void join_args(char *buf, size_t n, char **argv)
{
	size_t k = 0;
	buf[0] = 0;
	for (int i = 0; argv[i] && k + 1 < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? " " : "", argv[i]);
}

static void summary(const char *path, const sprec_stats *st, double secs, uint64_t bytes)
{
	fprintf(stderr,
		"spindle record: %llu events in %.1f s (%.0f/s), %llu lost, %llu polls, %llu "
		"wakes, "
		"%llu tasks, %.1f MB (%.1f bytes/poll) -> %s\n",
		(unsigned long long)st->events, secs, secs > 0 ? (double)st->events / secs : 0.0,
		(unsigned long long)st->lost, (unsigned long long)st->polls,
		(unsigned long long)st->wakes, (unsigned long long)st->tasks, (double)bytes / 1e6,
		st->polls ? (double)bytes / (double)st->polls : 0.0, path);
}

static uint64_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) ? 0 : (uint64_t)sb.st_size;
}

static int record_synthetic(const char *out, uint64_t polls, unsigned seed)
{
	char err[512];
	spdb_writer *w;
	sprec_stats st = {0};
	if (spdb_writer_open(&w, out, err, sizeof err)) {
		sp_cli_err(CMD, "%s", err);
		return 2;
	}
	uint64_t t = spc_mono_ns();
	int rc = spdb_put_meta_int(w, "abi", SPDB_ABI) ||
		 spdb_put_meta_text(w, "clock", "CLOCK_MONOTONIC") ||
		 spdb_put_meta_int(w, "t0_ns", 1000000000) || spdb_put_meta_int(w, "pid", 0) ||
		 spdb_put_meta_int(w, "synthetic", 1) ||
		 spdb_put_meta_text(w, "command", "(synthetic)") ||
		 spdb_put_meta_int(w, "start_unix_ns", (int64_t)spc_real_ns()) ||
		 sprec_synthetic(w, polls, seed, &st);
	if (rc)
		sp_cli_err(CMD, "database: %s", spdb_writer_err(w));
	rc |= spdb_put_meta_int(w, "finished", 1);
	rc |= spdb_writer_close(w, 1);
	summary(out, &st, (double)(spc_mono_ns() - t) / 1e9, file_size(out));
	return rc ? 2 : 0;
}

static int write_meta(spdb_writer *w, spc_stream *s, uint64_t t0, uint64_t t0_unix, char **argv,
		      int pid)
{
	const sp__seg_reader *r = spc_stream_reader(s);
	char buf[4096], abi[32];
	if (argv)
		join_args(buf, sizeof buf, argv);
	else
		snprintf(buf, sizeof buf, "(attached to pid %d)", pid);
	snprintf(abi, sizeof abi, "%u.%u", r->found_major, r->found_minor);
	return spdb_put_meta_int(w, "abi", SPDB_ABI) || spdb_put_meta_text(w, "seg_abi", abi) ||
	       spdb_put_meta_text(w, "clock", "CLOCK_MONOTONIC") ||
	       spdb_put_meta_int(w, "t0_ns", (int64_t)t0) ||
	       spdb_put_meta_int(w, "start_unix_ns", (int64_t)t0_unix) ||
	       spdb_put_meta_int(w, "pid", pid) || spdb_put_meta_text(w, "command", buf) ||
	       spdb_put_meta_int(w, "ring_capacity", r->hdr.ring_capacity) ||
	       spdb_put_meta_int(w, "workers", 0);
}

/* Close and remove a database that never got a recording. */
static void discard_db(spdb_writer *w, const char *path)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char p[4096];
	spdb_writer_close(w, 0);
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s%s", path, suffix[i]);
		unlink(p);
	}
}

static void take_signals(void)
{
	/* SA_RESTART: a signal must not fail a database write it interrupts. */
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int sp_cmd_record(int argc, char **argv)
{
	static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
					     {"pid", required_argument, NULL, 'p'},
					     {"duration", required_argument, NULL, 'd'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"synthetic", required_argument, NULL, 'S'},
					     {"seed", required_argument, NULL, 's'},
					     {"ring", required_argument, NULL, 'r'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *out = NULL;
	long pid = 0;
	double duration = 0;
	int quiet = 0, c;
	unsigned long long synthetic = 0;
	unsigned seed = 1;
	const char *ring = NULL;
	char *end;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+o:p:d:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'p':
			pid = strtol(optarg, &end, 10);
			if (*end || pid <= 0 || pid > 1 << 22) {
				sp_cli_err(CMD, "bad pid '%s'", optarg);
				return 2;
			}
			break;
		case 'd':
			duration = strtod(optarg, &end);
			if (*end || !(duration > 0)) {
				sp_cli_err(CMD, "bad duration '%s' (seconds, > 0)", optarg);
				return 2;
			}
			break;
		case 'q':
			quiet = 1;
			break;
		case 'S':
			synthetic = strtoull(optarg, &end, 10);
			if (*end || !synthetic) {
				sp_cli_err(CMD, "bad --synthetic count '%s'", optarg);
				return 2;
			}
			break;
		case 's':
			seed = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			if (!sp__trace_ring_cap_parse(optarg)) {
				sp_cli_err(CMD,
					   "bad --ring '%s' (records per ring: a power of two from "
					   "1024 to 1M, e.g. 64k)",
					   optarg);
				return 2;
			}
			ring = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	char **cmd = optind < argc ? argv + optind : NULL;
	if (!out) {
		sp_cli_err(CMD, "-o FILE is required (try 'spindle record --help')");
		return 2;
	}
	if (synthetic)
		return record_synthetic(out, synthetic, seed);
	if (!!cmd == !!pid) {
		sp_cli_err(CMD, "give either a command after -- or -p PID (try --help)");
		return 2;
	}
	if (ring && pid) {
		sp_cli_err(CMD, "--ring sizes the rings of a command it starts: a running "
				"process made its rings (start it with SPINDLE_TRACE_RING=N)");
		return 2;
	}

	/* The database first: creating it takes file system work (tens of ms on
	 * a busy machine) that must not stand between attaching and the first
	 * read of the rings, which fill in 16 ms at 1M events/s. */
	char err[512];
	spdb_writer *w;
	if (spdb_writer_open(&w, out, err, sizeof err)) {
		sp_cli_err(CMD, "%s", err);
		return 2;
	}

	/* Attach: the child from its first event, or the live process. */
	spc_stream *s = NULL;
	int status = 0, rc;
	uint64_t t0, t0_unix;
	take_signals();
	if (cmd) {
		pid_t p = spawn_child(cmd, ring);
		if (p < 0) {
			discard_db(w, out);
			return 2;
		}
		child_pid = p;
		pid = p;
		rc = attach_child(&s, p, &status);
		if (rc) {
			if (rc > 0)
				sp_cli_err(CMD, "%s exited before it made a trace segment", cmd[0]);
			else
				kill(p, SIGTERM), waitpid(p, NULL, 0);
			discard_db(w, out);
			return 2;
		}
		/* Time 0: the segment's clock calibration, taken at its
		 * creation, before any of its events. */
		const sp__seg_reader *r = spc_stream_reader(s);
		t0 = r->hdr.clock_ns0;
		t0_unix = r->hdr.created_ns;
	} else {
		const char *serr = NULL;
		rc = spc_stream_open(&s, (int)pid, 0, &serr);
		if (rc) {
			sp_cli_err(CMD, "process %ld: %s", pid, serr ? serr : strerror(-rc));
			discard_db(w, out);
			return 2;
		}
		t0 = spc_mono_ns();
		t0_unix = spc_real_ns();
	}

	if (write_meta(w, s, t0, t0_unix, cmd, (int)pid)) {
		sp_cli_err(CMD, "database: %s", spdb_writer_err(w));
		spdb_writer_close(w, 0);
		spc_stream_close(s);
		if (cmd)
			kill((pid_t)pid, SIGTERM), waitpid((pid_t)pid, NULL, 0);
		return 2;
	}
	sprec_live_opts o = {.stream = s,
			     .db = w,
			     .t0_ns = t0,
			     .duration_s = duration,
			     .stop = &stop_flag,
			     .child_pid = cmd ? (int)pid : 0,
			     .child_status = &status,
			     .progress = !quiet && isatty(2)};
	sprec_stats st = {0};
	uint64_t started = spc_mono_ns();
	rc = sprec_live_run(&o, &st);
	child_pid = 0;
	uint32_t ring_cap = spc_stream_reader(s)->hdr.ring_capacity;
	spc_stream_close(s);
	int fin = spdb_put_meta_int(w, "finished", 1) == 0;
	rc |= spdb_writer_close(w, fin);
	summary(out, &st, (double)(spc_mono_ns() - started) / 1e9, file_size(out));
	if (st.lost)
		fprintf(stderr,
			"spindle record: the lost events were overwritten in the target's rings "
			"(%u records each) before this reader got to them; larger rings ride out "
			"longer stalls: %s\n",
			ring_cap,
			cmd ? "--ring 256k" : "start the target with SPINDLE_TRACE_RING=256k");
	if (cmd && WIFEXITED(status) && WEXITSTATUS(status))
		fprintf(stderr, "spindle record: %s exited with status %d\n", cmd[0],
			WEXITSTATUS(status));
	else if (cmd && WIFSIGNALED(status))
		fprintf(stderr, "spindle record: %s was killed by signal %d\n", cmd[0],
			WTERMSIG(status));
	return rc ? 2 : 0;
}
