/*
 * cmd_top.c - `spindle top [PID]`: attach to a live spindle process (read
 * only: its segment is mapped PROT_READ and nothing is ever written to it or
 * signalled), follow its event stream into the model (top_model.h), and show
 * it live (top_view.c) or as text snapshots (--batch, top_batch.c).
 *
 * Sampling: events are drained every TOP_POLL_NS (so the rings do not wrap
 * between reads); every refresh interval the task table is snapshot (the
 * catch-up for lost events), the model ticks and the rows are rebuilt.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "commands.h"
#include "replay.h"
#include "top_app.h"

/* The first complete picture (with rates) comes this long after attaching;
 * the interactive screen shows the table's state at once before it. */
#define TOP_FIRST_NS 200000000ull
#define TOP_SNAP_NS 5000000000ull
/* ...and after new losses no more often than this: each snapshot asks the
 * target's runtime to walk its live tasks (~100 ns a task, on its own
 * thread), and a console that cannot keep up loses events at every tick. */
#define TOP_SNAP_MIN_NS 1000000000ull

static int site_of(void *arg, uint32_t idx, topm_site *out)
{
	const spc_site *s = spc_stream_site(arg, idx);
	if (!s)
		return -1;
	out->line = s->line;
	snprintf(out->name, sizeof out->name, "%s", s->name);
	snprintf(out->file, sizeof out->file, "%s", s->file);
	return 0;
}

struct snap_arg {
	top_app *a;
	size_t n;
};

static void snap_one(const sp__seg_task *t, void *arg)
{
	struct snap_arg *sa = arg;
	spc_stream *s = sa->a->s;
	topm_snapshot_task(sa->a->m, t, t->spawn_ts ? spc_stream_ticks_to_ns(s, t->spawn_ts) : 0,
			   t->last_ts ? spc_stream_ticks_to_ns(s, t->last_ts) : 0);
	sa->n++;
}

void top_rebuild(top_app *a)
{
	a->vo.filter = a->filter;
	a->nrows = topm_view(a->m, &a->vo, &a->rows, &a->cap);
}

/* ---- --bpf: the eBPF tracer in a thread of its own ---------------------------------

 * The tracer's watchdog wants a call every few milliseconds, the console
 * samples once a second: a thread runs sp_starve_poll and queues findings
 * (as text) under a mutex; top_sample moves them into the model. */
#ifdef SP_HAVE_BPF
#include <pthread.h>
#include <stdatomic.h>

#include "tracer.h"

#define BPF_QUEUE 64
struct top_bpf {
	struct sp_starve *t;
	pthread_t th;
	pthread_mutex_t lock;
	_Atomic int stop;
	size_t n; /* queued findings, under lock */
	struct {
		uint64_t task, at_ns, dur_ns;
		int worker;
		char text[200];
	} q[BPF_QUEUE];
};

static void bpf_finding(const struct sp_starve_finding *f, void *arg)
{
	struct top_bpf *b = arg;
	char text[200], what[96] = "";
	const char *verdict = f->verdict == SP_STARVE_BLOCKED ? "blocked" :
			      f->verdict == SP_STARVE_ONCPU  ? "on-CPU" :
								"preempted";
	if (f->verdict == SP_STARVE_BLOCKED && f->nsys > 0)
		snprintf(what, sizeof what, " in %s", f->sys[0].name);
	int k = snprintf(text, sizeof text, "%s%s%s", verdict, what,
			 f->running ? " (still running when reported)" : "");
	if (f->culprit >= 0 && f->culprit < f->nframes && k > 0 && (size_t)k < sizeof text) {
		const struct sp_starve_frame *c = &f->frames[f->culprit];
		if (c->file[0])
			snprintf(text + k, sizeof text - (size_t)k, ", culprit %s (%s:%d)", c->func,
				 c->file, c->line);
		else
			snprintf(text + k, sizeof text - (size_t)k, ", culprit %s", c->func);
	}
	pthread_mutex_lock(&b->lock);
	if (b->n < BPF_QUEUE) {
		b->q[b->n].task = f->task_id;
		b->q[b->n].at_ns = f->start_ns;
		b->q[b->n].dur_ns = f->total_ns;
		b->q[b->n].worker = (int)f->worker_idx;
		snprintf(b->q[b->n].text, sizeof b->q[b->n].text, "%s", text);
		b->n++;
	}
	pthread_mutex_unlock(&b->lock);
}

static void *bpf_main(void *arg)
{
	struct top_bpf *b = arg;
	char why[256];
	while (!atomic_load(&b->stop))
		if (sp_starve_poll(b->t, 50, why, sizeof why) != 0)
			break; /* the target exited, or the tracer failed: keep the console */
	return NULL;
}

static int bpf_start(top_app *a)
{
	struct top_bpf *b = calloc(1, sizeof *b);
	char why[256];
	if (!b)
		return 2;
	pthread_mutex_init(&b->lock, NULL);
	struct sp_starve_opts o = {.pid = a->pid, .on_finding = bpf_finding, .arg = b};
	if (sp_starve_open(&b->t, &o, why, sizeof why) < 0) {
		sp_cli_err("top", "--bpf: %s", why);
		free(b);
		return 2;
	}
	if (pthread_create(&b->th, NULL, bpf_main, b) != 0) {
		sp_starve_close(b->t);
		free(b);
		sp_cli_err("top", "--bpf: cannot start the tracer thread");
		return 2;
	}
	a->tb = b;
	return 0;
}

static void bpf_drain(top_app *a)
{
	struct top_bpf *b = a->tb;
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->n; i++)
		topm_kernel_finding(a->m, b->q[i].task, b->q[i].worker, b->q[i].at_ns,
				    b->q[i].dur_ns, b->q[i].text);
	b->n = 0;
	pthread_mutex_unlock(&b->lock);
}

static void bpf_stop(top_app *a)
{
	struct top_bpf *b = a->tb;
	if (!b)
		return;
	atomic_store(&b->stop, 1);
	pthread_join(b->th, NULL);
	sp_starve_close(b->t);
	pthread_mutex_destroy(&b->lock);
	free(b);
	a->tb = NULL;
}
#else
static int bpf_start(top_app *a)
{
	(void)a;
	sp_cli_err("top", "--bpf: built without eBPF support: %s", SP_BPF_REASON);
	return 2;
}
static void bpf_drain(top_app *a)
{
	(void)a;
}
static void bpf_stop(top_app *a)
{
	(void)a;
}
#endif

void top_sample(top_app *a, int tick)
{
	if (a->rp)
		return; /* a replay moves only with its cursor (top_replay_seek) */
	bpf_drain(a);
	if (a->alive) {
		spc_stream_poll(a->s, topm_event_cb, a->m);
		if (!spc_stream_alive(a->s)) {
			/* the target is gone: deliver what it left, then freeze */
			spc_stream_flush(a->s, topm_event_cb, a->m);
			a->alive = 0;
			tick = 1;
		}
	}
	if (!tick)
		return;
	/* events younger than the slack are still held back by the stream: the
	 * model's clock stays behind by as much, so a poll whose end is held is
	 * not aged past it */
	uint64_t now = spc_mono_ns() - SPC_SLACK_NS;
	/* The table is the catch-up for lost events: read it at the first tick,
	 * after new losses, and every TOP_SNAP_NS (a scan of 100k slots costs
	 * more than a second of events). */
	uint64_t lost = spc_stream_lost_total(a->s);
	if (a->alive && (!a->snap_at || now - a->snap_at >= TOP_SNAP_NS ||
			 (lost != a->lost && now - a->snap_at >= TOP_SNAP_MIN_NS))) {
		struct snap_arg sa = {a, 0};
		a->snap_at = now;
		const sp__seg_reader *r = spc_stream_reader(a->s);
		topm_snapshot_begin(a->m, now);
		spc_stream_tasks(a->s, snap_one, &sa);
		a->table_stale = spc_stream_table_rc(a->s) != 0;
		topm_snapshot_end(a->m, now, sa.n < r->hdr.task_slots);
	}
	/* after an exit the clock stops where the target did */
	topm_tick(a->m, a->alive || !a->last_tick ? now : topm_now(a->m));
	a->lost = lost;
	uint64_t seen = topm_events_seen(a->m);
	if (a->ev_at && now > a->ev_at)
		a->ev_rate = (seen - a->ev_last) * 1000000000ull / (now - a->ev_at);
	a->ev_last = seen;
	a->ev_at = now;
	a->last_tick = now;
	top_rebuild(a);
}

/* ---- which process -------------------------------------------------------------- */

struct find {
	int pids[64];
	char what[64][96];
	int n;
};

static void find_one(const sp__seg_info *in, void *arg)
{
	struct find *fd = arg;
	if (in->state != SP__SEG_LIVE || fd->n == 64)
		return;
	char comm[32];
	sp_cli_comm(in->pid, comm, sizeof comm);
	fd->pids[fd->n] = in->pid;
	snprintf(fd->what[fd->n], sizeof fd->what[0], "%7d  %-16s %u rings", in->pid, comm,
		 in->hdr ? in->hdr->nrings : 0);
	fd->n++;
}

/* The pid to watch, or 0 after printing why there is none. */
static int pick_target(int interactive)
{
	struct find fd = {.n = 0};
	int n = sp__seg_list(find_one, &fd);
	if (n < 0) {
		sp_cli_err("top", "cannot read %s: %s", SP__SEG_DIR, strerror(-n));
		return 0;
	}
	if (fd.n == 0) {
		sp_cli_err("top",
			   "no spindle process is traceable (start one with SPINDLE_TRACE=1)");
		return 0;
	}
	if (fd.n == 1)
		return fd.pids[0];
	if (!interactive) {
		fprintf(stderr, "spindle top: %d spindle processes run; name one:", fd.n);
		for (int i = 0; i < fd.n; i++)
			fprintf(stderr, " %d", fd.pids[i]);
		fputc('\n', stderr);
		return 0;
	}
	int pid = top_view_choose(fd.pids, fd.what, fd.n);
	if (pid < 0)
		sp_cli_err("top", "the terminal is too small to choose a process (name a PID)");
	return pid > 0 ? pid : 0;
}

/* ---- options ----------------------------------------------------------------------- */

static void top_usage(FILE *f)
{
	fprintf(f,
		"usage: spindle top [PID] [options]\n"
		"       spindle top --replay FILE [options]\n\n"
		"Live console of a spindle process's tasks, workers and warnings. Without PID,\n"
		"watches the only traceable process (or lets you choose). Read-only: the target\n"
		"is never written to or stopped. Targets turn their rings on with "
		"SPINDLE_TRACE=1.\n\n"
		"options:\n"
		"  -b, --batch            print plain-text snapshots instead of the live screen\n"
		"  -n, --count N          batch: N snapshots then exit (default: until the target "
		"exits)\n"
		"  -d, --delay SECONDS    refresh interval (default 1, fractions allowed)\n"
		"  -s, --sort COLUMN      warn id state name total busy sched idle polls wakes "
		"self\n"
		"                         age worker loc (default warn)\n"
		"  -r, --reverse          reverse the sort\n"
		"  -f, --filter TEXT      only tasks whose name or file:line contains TEXT\n"
		"  -a, --all              also list finished tasks\n"
		"      --keep SECONDS     keep finished tasks this long (default 30)\n"
		"      --long-poll MS     long-poll warning threshold (default 10)\n"
		"      --lost-waker MS    idle with no waker this long is a lost waker (default "
		"100)\n"
		"      --self-wake PCT    self-wake-heavy above PCT%% of wakes (default 50)\n"
		"      --sched-delay MS   woken but not polled this long (default 10)\n"
		"      --blocked MS       a worker in one poll this long is blocked (default 100)\n"
		"      --no-color         monochrome (also when NO_COLOR is set)\n"
		"      --bpf              also run the eBPF tracer (root): its long-poll findings\n"
		"                         (blocked in which syscall, on-CPU, the culprit) appear\n"
		"                         as 'kernel' warnings\n"
		"      --replay FILE      the console over a recording of `spindle record`, with\n"
		"                         a time cursor (no PID)\n"
		"      --at WHEN          replay: the cursor's first position: SECONDS from the\n"
		"                         recording's start, 'worst' (the longest poll, shown\n"
		"                         live) or 'end' (default: just before the last record,\n"
		"                         so that tasks the exit aborted show as they were);\n"
		"                         batch snapshots follow every -d seconds of recording\n"
		"                         time (default: up to its end)\n\n"
		"keys: arrows/PgUp/PgDn select, Enter task detail, Tab or 1/2/3 tasks/workers/\n"
		"warnings, s/< > sort column, r reverse, / filter, d finished tasks, space or p\n"
		"pause, h help, q quit.\n"
		"replay keys: Left/Right or , . step the cursor by -d, [ ] (or shifted arrows)\n"
		"by 0.1 s, Home/End the start/end, w the worst poll live, W its end.\n\n"
		"examples:\n"
		"  SPINDLE_TRACE=1 build/bin/demo --seconds 60 &\n"
		"  spindle top                          # the live console\n"
		"  spindle top $! --sort busy           # busiest tasks first\n"
		"  spindle top --batch -n 3 -d 0.5      # three text snapshots, half a second "
		"apart\n"
		"  spindle top -b -n 1 --filter conn --long-poll 5\n"
		"  spindle top --replay run.db --at worst   # the recording at its longest poll\n");
}

enum { O_KEEP = 256, O_LONG, O_LOST, O_SELF, O_DELAY, O_BLOCKED, O_NOCOLOR, O_BPF, O_REPLAY, O_AT };

static int parse(int argc, char **argv, top_app *a, topm_config *c, int *batch, int *pid,
		 const char **at)
{
	static const struct option opts[] = {{"batch", no_argument, 0, 'b'},
					     {"count", required_argument, 0, 'n'},
					     {"delay", required_argument, 0, 'd'},
					     {"sort", required_argument, 0, 's'},
					     {"reverse", no_argument, 0, 'r'},
					     {"filter", required_argument, 0, 'f'},
					     {"all", no_argument, 0, 'a'},
					     {"keep", required_argument, 0, O_KEEP},
					     {"long-poll", required_argument, 0, O_LONG},
					     {"lost-waker", required_argument, 0, O_LOST},
					     {"self-wake", required_argument, 0, O_SELF},
					     {"sched-delay", required_argument, 0, O_DELAY},
					     {"blocked", required_argument, 0, O_BLOCKED},
					     {"no-color", no_argument, 0, O_NOCOLOR},
					     {"bpf", no_argument, 0, O_BPF},
					     {"replay", required_argument, 0, O_REPLAY},
					     {"at", required_argument, 0, O_AT},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	int o;
	double d;
	optind = 1;
	while ((o = getopt_long(argc, argv, "bn:d:s:rf:ah", opts, NULL)) != -1) {
		switch (o) {
		case 'b':
			*batch = 1;
			break;
		case 'n':
			if (sp_cli_num("top", "--count", optarg, 1, 1e9, &d))
				return 2;
			a->count = (long)d;
			break;
		case 'd':
			if (sp_cli_num("top", "--delay", optarg, 0.05, 3600, &d))
				return 2;
			a->interval_ns = (uint64_t)(d * 1e9);
			break;
		case 's':
			if ((a->vo.sort_col = topm_col_by_key(optarg)) < 0) {
				sp_cli_err("top", "no column '%s' (see --help)", optarg);
				return 2;
			}
			break;
		case 'r':
			a->vo.reverse = 1;
			break;
		case 'f':
			snprintf(a->filter, sizeof a->filter, "%s", optarg);
			break;
		case 'a':
			a->vo.show_done = 1;
			break;
		case O_KEEP:
			if (sp_cli_num("top", "--keep", optarg, 0, 86400, &d))
				return 2;
			c->keep_done_ns = (uint64_t)(d * 1e9);
			break;
		case O_LONG:
		case O_LOST:
		case O_DELAY:
		case O_BLOCKED:
			if (sp_cli_num("top", argv[optind - 1], optarg, 0.001, 3600000, &d))
				return 2;
			*(o == O_LONG	 ? &c->long_poll_ns
			  : o == O_LOST	 ? &c->lost_waker_ns
			  : o == O_DELAY ? &c->sched_delay_ns
					 : &c->blocked_ns) = (uint64_t)(d * 1e6);
			break;
		case O_SELF:
			if (sp_cli_num("top", "--self-wake", optarg, 0, 100, &d))
				return 2;
			c->self_wake_pct = (unsigned)d;
			break;
		case O_NOCOLOR:
			a->color = 0;
			break;
		case O_BPF:
			a->bpf = 1;
			break;
		case O_REPLAY:
			if (!*optarg || strlen(optarg) >= sizeof a->replay_path) {
				sp_cli_err("top", "--replay wants a recording's file name");
				return 2;
			}
			snprintf(a->replay_path, sizeof a->replay_path, "%s", optarg);
			break;
		case O_AT:
			*at = optarg;
			break;
		case 'h':
			top_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "spindle top: see 'spindle top --help'\n");
			return 2;
		}
	}
	if (optind < argc) {
		char *end;
		long p = strtol(argv[optind], &end, 10);
		if (*end || p <= 0 || p > 0x7fffffff) {
			sp_cli_err("top", "'%s' is not a process id", argv[optind]);
			return 2;
		}
		*pid = (int)p;
		if (optind + 1 < argc) {
			sp_cli_err("top", "unexpected argument '%s'", argv[optind + 1]);
			return 2;
		}
	}
	return -1;
}

static int attach(top_app *a, const topm_config *c)
{
	const char *err = NULL;
	/* From now on, not from the oldest records: rings wrap at different
	 * times, and replaying their uneven histories invents long delays. The
	 * task table gives the state and totals so far. */
	int rc = spc_stream_open(&a->s, a->pid, 0, &err);
	if (rc) {
		if (rc == -ENOENT) {
			if (kill(a->pid, 0) == 0 || errno == EPERM)
				sp_cli_err("top",
					   "process %d has no trace segment (not a spindle "
					   "program, or started without SPINDLE_TRACE=1)",
					   a->pid);
			else
				sp_cli_err("top", "no process %d", a->pid);
		} else if (rc == -EPROTONOSUPPORT) {
			sp_cli_err("top", "process %d: %s (this spindle reads segment ABI %d)",
				   a->pid, err ? err : "unsupported segment version",
				   SP__SEG_ABI_MAJOR);
		} else {
			sp_cli_err("top", "process %d: %s", a->pid, err ? err : strerror(-rc));
		}
		return 2;
	}
	a->m = topm_new(c, site_of, a->s);
	if (!a->m) {
		sp_cli_err("top", "out of memory");
		return 2;
	}
	sp_cli_comm(a->pid, a->comm, sizeof a->comm);
	a->alive = 1;
	a->start_ns = spc_mono_ns() - SPC_SLACK_NS;
	top_sample(a, 1);
	/* the next tick (the first with rates) is due TOP_FIRST_NS after this one */
	a->last_tick -= a->interval_ns > TOP_FIRST_NS ? a->interval_ns - TOP_FIRST_NS : 0;
	return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int run_batch(top_app *a)
{
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	/* the first snapshot after a short look, so that it has worker rates */
	uint64_t first = spc_mono_ns() + TOP_FIRST_NS;
	while (!stop && a->alive && spc_mono_ns() < first) {
		usleep(20000);
		top_sample(a, 0);
	}
	top_sample(a, 1);
	for (long printed = 0;;) {
		top_batch_print(a, stdout);
		if (ferror(stdout))
			return 1;
		if ((a->count && ++printed >= a->count) || !a->alive)
			return 0;
		uint64_t due = a->last_tick + a->interval_ns;
		while (!stop && a->alive && spc_mono_ns() < due) {
			usleep(20000);
			top_sample(a, 0);
		}
		if (stop)
			return 0;
		top_sample(a, 1);
	}
}

/* ---- --replay: a recording with a time cursor ------------------------------------ */

int top_replay_seek(top_app *a, int64_t t)
{
	int rc = replay_seek(a->rp, t, a->interval_ns);
	a->m = replay_model(a->rp);
	a->ev_rate = replay_ev_rate(a->rp);
	a->last_tick = topm_now(a->m);
	top_rebuild(a);
	return rc;
}

int64_t top_replay_worst(top_app *a, int at_end)
{
	int64_t start, dur;
	uint64_t task;
	if (replay_worst_poll(a->rp, &start, &dur, &task))
		return -1;
	if (at_end)
		return start + dur;
	/* just past the long-poll threshold, still inside the poll: the poll
	 * runs at the cursor, so it is a live warning with its age */
	int64_t in = (int64_t)topm_cfg(a->m)->long_poll_ns + 1000000;
	return start + (in < dur ? in : dur > 0 ? dur - 1 : 0);
}

static int run_replay_batch(top_app *a, int64_t at)
{
	int64_t end = replay_end(a->rp);
	signal(SIGPIPE, SIG_IGN);
	for (long printed = 0;;) {
		if (top_replay_seek(a, at)) {
			sp_cli_err("top", "%s: %s", a->replay_path, replay_err(a->rp));
			return 2;
		}
		top_batch_print(a, stdout);
		if (ferror(stdout))
			return 1;
		if ((a->count && ++printed >= a->count) || at >= end)
			return 0;
		at = at + (int64_t)a->interval_ns < end ? at + (int64_t)a->interval_ns : end;
	}
}

static int top_replay(top_app *a, const topm_config *c, int batch, int pid, const char *at)
{
	char err[512];
	double sec = 0;
	int rc;
	if (pid) {
		sp_cli_err("top", "--replay reads a recording: give no PID");
		return 2;
	}
	if (a->bpf) {
		sp_cli_err("top", "--bpf traces a live process: not with --replay");
		return 2;
	}
	if (at && strcmp(at, "worst") && strcmp(at, "end")) {
		char *e;
		sec = strtod(at, &e);
		if (e == at || *e || !(sec >= 0 && sec <= 1e6)) {
			sp_cli_err("top", "--at wants SECONDS, 'worst' or 'end', not '%s'", at);
			return 2;
		}
	}
	if (replay_open(&a->rp, a->replay_path, c, err, sizeof err)) {
		sp_cli_err("top", "%s", err);
		return 2;
	}
	if (!batch && (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO))) {
		replay_close(a->rp);
		sp_cli_err("top", "not a terminal; use --batch for text output");
		return 2;
	}
	a->m = replay_model(a->rp);
	a->pid = replay_pid(a->rp);
	/* comm: the program's base name, from the recorded command line */
	const char *cmd = replay_command(a->rp);
	size_t n = cmd[0] == '(' ? strlen(cmd) : strcspn(cmd, " "); /* "(attached to pid N)" */
	const char *base = cmd;
	for (size_t i = 0; i < n; i++)
		if (cmd[i] == '/')
			base = cmd + i + 1;
	snprintf(a->comm, sizeof a->comm, "%.*s", (int)(n - (size_t)(base - cmd)), base);
	a->start_ns = replay_t0(a->rp);
	a->alive = 0;
	a->paused = 1;
	/* default: just before the last record, which often is the program's
	 * exit aborting what still ran: those tasks show as they were */
	int64_t t = replay_end(a->rp) > 0 ? replay_end(a->rp) - 1 : 0;
	if (at && !strcmp(at, "end"))
		t = replay_end(a->rp);
	else if (at && !strcmp(at, "worst"))
		t = top_replay_worst(a, 0);
	else if (at)
		t = (int64_t)(sec * 1e9);
	if (t < 0)
		t = replay_end(a->rp); /* no poll at all */
	if (batch) {
		rc = run_replay_batch(a, t);
	} else if (top_replay_seek(a, t)) {
		sp_cli_err("top", "%s: %s", a->replay_path, replay_err(a->rp));
		rc = 2;
	} else {
		rc = top_view_run(a);
	}
	free(a->rows);
	replay_close(a->rp);
	return rc;
}

int sp_cmd_top(int argc, char **argv)
{
	top_app a = {.interval_ns = 1000000000ull, .color = 1};
	topm_config c;
	int batch = 0, pid = 0, rc;
	topm_config_default(&c);
	a.vo.sort_col = TOPM_COL_WARN;
	if (getenv("NO_COLOR"))
		a.color = 0;
	const char *at = NULL;
	if ((rc = parse(argc, argv, &a, &c, &batch, &pid, &at)) >= 0)
		return rc;
	if (a.replay_path[0])
		return top_replay(&a, &c, batch, pid, at);
	if (at) {
		sp_cli_err("top", "--at moves a replay's cursor: use it with --replay");
		return 2;
	}
	if (!batch && (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO))) {
		sp_cli_err("top", "not a terminal; use --batch for text output");
		return 2;
	}
	if (!pid && !(pid = pick_target(!batch)))
		return 2;
	a.pid = pid;
	if ((rc = attach(&a, &c)))
		return rc;
	if (a.bpf && (rc = bpf_start(&a))) {
		topm_free(a.m);
		spc_stream_close(a.s);
		return rc;
	}
	rc = batch ? run_batch(&a) : top_view_run(&a);
	bpf_stop(&a);
	free(a.rows);
	topm_free(a.m);
	spc_stream_close(a.s);
	return rc;
}
