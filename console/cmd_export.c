/*
 * cmd_export.c - `spindle export`: a recording as Chrome trace-event JSON,
 * which Perfetto UI (ui.perfetto.dev) and chrome://tracing open.
 *
 * Mapping: pid = the recorded process; tid = worker index (a track per
 * worker, named "worker N"); each poll a complete event (ph "X") named after
 * its task's name, args {task, result, delay_us}; each wake that led to a
 * poll a flow (ph "s" on the waking worker's track at the wake, bound to the
 * enclosing slice - the waking poll when a task woke it - and ph "f", bp "e",
 * at the woken poll; a wake from a thread that is not a worker starts its
 * arrow in a 1 us "wake" slice on a track of that thread: tid = its thread
 * id for FOREIGN wakes whose thread is known, else OFF_WORKER_TID, "other
 * threads"); steals, parks and lost events as instant events on the
 * worker track ("lost" global); warnings as global instant events with their
 * detail in args, except the eBPF tracer's findings (`spindle trace -o`),
 * which are annotations on the poll they describe: an instant event at the
 * poll's start on its worker's track (the poll found in the polls table by
 * task and time; without one, the worker the tracer named), named after the
 * finding's headline, with the verdict, times, culprit and fix in args.
 * Times are microseconds of the recording.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "db.h"
#include "trace_events.h"

#define CMD "export"

static void usage(FILE *f)
{
	fprintf(f, "usage: spindle export FILE -o OUT.json\n\n"
		   "Write a recording as Chrome trace-event JSON for Perfetto UI or\n"
		   "chrome://tracing: a track per worker with each poll as a slice named\n"
		   "after its task, wakes as flow arrows into the poll they caused, steals,\n"
		   "parks and warnings as instant events. OUT '-' is standard output.\n\n"
		   "examples:\n"
		   "  spindle export t.db -o t.json     # then open t.json in ui.perfetto.dev\n");
}

static void jstr(FILE *o, const char *s)
{
	fputc('"', o);
	for (const unsigned char *p = (const unsigned char *)(s ? s : "?"); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(o, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(o, "\\u%04x", *p);
		else
			fputc(*p, o);
	}
	fputc('"', o);
}

static double us(int64_t ns)
{
	return (double)ns / 1e3;
}

#define OFF_WORKER_TID 999999999 /* track of off-worker wakes whose thread is unknown */
#define MAX_OFF_TRACKS 256

struct ex {
	sqlite3 *db;
	FILE *o;
	int64_t pid;
	int first;
	int64_t off[MAX_OFF_TRACKS]; /* off-worker tracks used (named at the end) */
	size_t noff;
	int wcol; /* warnings has its worker column (db_schema.h) */
	char err[512];
};

static void sep(struct ex *x)
{
	fputs(x->first ? "\n" : ",\n", x->o);
	x->first = 0;
}

static int fail(struct ex *x)
{
	snprintf(x->err, sizeof x->err, "unreadable or corrupt recording: %s",
		 sqlite3_errmsg(x->db));
	return -1;
}

static int tracks(struct ex *x)
{
	sqlite3_stmt *st;
	char cmd[256];
	if (spdb_meta_text(x->db, "command", cmd, sizeof cmd))
		snprintf(cmd, sizeof cmd, "spindle process");
	sep(x);
	fprintf(x->o, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%lld,\"args\":{\"name\":",
		(long long)x->pid);
	jstr(x->o, cmd);
	fputs("}}", x->o);
	if (spdb_prepare(x->db,
			 x->wcol ? "SELECT DISTINCT worker FROM polls UNION SELECT DISTINCT worker "
				   "FROM parks UNION SELECT DISTINCT worker FROM warnings WHERE "
				   "worker IS NOT NULL AND source = 'spindle trace'"
				 : "SELECT DISTINCT worker FROM polls UNION SELECT DISTINCT worker "
				   "FROM parks",
			 &st, x->err, sizeof x->err))
		return -1;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long w = sqlite3_column_int64(st, 0);
		sep(x);
		fprintf(x->o,
			"{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%lld,\"tid\":%lld,"
			"\"args\":{\"name\":\"worker %lld\"}}",
			(long long)x->pid, w, w);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(x);
}

/* The track of an off-worker wake (source, flags of its row). */
static int64_t off_track(struct ex *x, sqlite3_stmt *st, int src_col, int flags_col)
{
	unsigned src = (unsigned)(sqlite3_column_int64(st, flags_col) & SP_WAKE_SRC_MASK) >>
		       SP_WAKE_SRC_SHIFT;
	int64_t tid = OFF_WORKER_TID;
	if (src == SP_WAKE_SRC_FOREIGN && sqlite3_column_type(st, src_col) != SQLITE_NULL &&
	    sqlite3_column_int64(st, src_col) > 0)
		tid = sqlite3_column_int64(st, src_col);
	for (size_t i = 0; i < x->noff; i++)
		if (x->off[i] == tid)
			return tid;
	if (x->noff == MAX_OFF_TRACKS)
		return OFF_WORKER_TID; /* named already: the first one is it */
	x->off[x->noff++] = tid;
	return tid;
}

static void name_off_tracks(struct ex *x)
{
	for (size_t i = 0; i < x->noff; i++) {
		sep(x);
		fprintf(x->o,
			"{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%lld,\"tid\":%lld,"
			"\"args\":{\"name\":",
			(long long)x->pid, (long long)x->off[i]);
		if (x->off[i] == OFF_WORKER_TID)
			fputs("\"other threads\"}}", x->o);
		else
			fprintf(x->o, "\"thread %lld\"}}", (long long)x->off[i]);
	}
}

/* Polls, and the flow from the wake that made each runnable. */
static int polls(struct ex *x)
{
	sqlite3_stmt *st;
	int rc;
	if (spdb_prepare(x->db,
			 "SELECT p.end, p.task, p.worker, p.dur, p.result, p.delay, s.name, "
			 "w.ts, w.worker, w.flags, w.source FROM polls p "
			 "LEFT JOIN tasks t ON t.id = p.task LEFT JOIN sites s ON s.id = t.site "
			 "LEFT JOIN wakes w ON w.ts = p.end - p.dur - p.delay AND w.task = p.task",
			 &st, x->err, sizeof x->err))
		return -1;
	long long flow = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t end = sqlite3_column_int64(st, 0), dur = sqlite3_column_int64(st, 3);
		long long task = sqlite3_column_int64(st, 1), wk = sqlite3_column_int64(st, 2);
		sep(x);
		fprintf(x->o, "{\"ph\":\"X\",\"cat\":\"poll\",\"name\":");
		jstr(x->o, (const char *)sqlite3_column_text(st, 6));
		fprintf(x->o,
			",\"pid\":%lld,\"tid\":%lld,\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"task\":"
			"%lld,\"result\":\"%s\"",
			(long long)x->pid, wk, us(end - dur), us(dur), task,
			sqlite3_column_int64(st, 4) & 1 ? "ready" : "pending");
		if (sqlite3_column_type(st, 5) != SQLITE_NULL)
			fprintf(x->o, ",\"delay_us\":%.3f", us(sqlite3_column_int64(st, 5)));
		fputs("}}", x->o);
		if (sqlite3_column_type(st, 7) == SQLITE_NULL)
			continue;
		/* An arrow from the waking worker's track, or from a slice on
		 * the waking thread's (a flow starts inside a slice). */
		int64_t from, ts = sqlite3_column_int64(st, 7);
		if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
			from = sqlite3_column_int64(st, 8);
		} else {
			from = off_track(x, st, 10, 9);
			sep(x);
			fprintf(x->o,
				"{\"ph\":\"X\",\"cat\":\"wake\",\"name\":\"wake\",\"pid\":%lld,"
				"\"tid\":%lld,\"ts\":%.3f,\"dur\":1,\"args\":{\"task\":%lld}}",
				(long long)x->pid, (long long)from, us(ts), task);
		}
		flow++;
		sep(x);
		fprintf(x->o,
			"{\"ph\":\"s\",\"cat\":\"wake\",\"name\":\"wake\",\"id\":%lld,"
			"\"pid\":%lld,\"tid\":%lld,\"ts\":%.3f,\"args\":{\"flags\":%lld}}",
			flow, (long long)x->pid, (long long)from, us(ts),
			(long long)sqlite3_column_int64(st, 9));
		sep(x);
		fprintf(x->o,
			"{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"wake\",\"name\":\"wake\","
			"\"id\":%lld,\"pid\":%lld,\"tid\":%lld,\"ts\":%.3f}",
			flow, (long long)x->pid, wk, us(end - dur));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(x);
}

static int instants(struct ex *x)
{
	static const char *const sql[] = {
		"SELECT ts, worker, 'steal', 'victim', victim, 'tasks', count FROM steals",
		"SELECT end - dur, worker, 'park', 'dur_us', dur / 1000, 'worker', worker FROM "
		"parks",
		"SELECT ts, NULL, 'lost events', 'ring', ring, 'count', count FROM lost",
	};
	for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
		sqlite3_stmt *st;
		int rc;
		if (spdb_prepare(x->db, sql[i], &st, x->err, sizeof x->err))
			return -1;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			int global = sqlite3_column_type(st, 1) == SQLITE_NULL;
			sep(x);
			fprintf(x->o,
				"{\"ph\":\"i\",\"cat\":\"runtime\",\"name\":\"%s\",\"s\":\"%s\","
				"\"pid\":%lld,\"tid\":%lld,\"ts\":%.3f,\"args\":{\"%s\":%lld,"
				"\"%s\":%lld}}",
				(const char *)sqlite3_column_text(st, 2), global ? "g" : "t",
				(long long)x->pid,
				global ? 0 : (long long)sqlite3_column_int64(st, 1),
				us(sqlite3_column_int64(st, 0)),
				(const char *)sqlite3_column_text(st, 3),
				(long long)sqlite3_column_int64(st, 4),
				(const char *)sqlite3_column_text(st, 5),
				(long long)sqlite3_column_int64(st, 6));
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return fail(x);
	}
	return 0;
}

/* Does the warnings table have its worker column (files of older writers don't)? */
static int has_worker_col(sqlite3 *db)
{
	sqlite3_stmt *st;
	int yes = 0;
	if (sqlite3_prepare_v2(db,
			       "SELECT count(*) FROM pragma_table_info('warnings') "
			       "WHERE name = 'worker'",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		yes = sqlite3_column_int(st, 0) > 0;
	sqlite3_finalize(st);
	return yes;
}

/* The poll a tracer finding describes: the task's first poll ending at or
 * after the finding's start that began by its end. 0 and its worker and
 * start, or -1 (none). */
static int finding_poll(sqlite3_stmt *pq, int64_t ts, int64_t dur, int64_t task, int64_t *worker,
			int64_t *start)
{
	int found = -1;
	sqlite3_reset(pq);
	sqlite3_bind_int64(pq, 1, ts);
	sqlite3_bind_int64(pq, 2, ts + (dur > 0 ? dur : 0) + 60000000000ll);
	sqlite3_bind_int64(pq, 3, task);
	if (sqlite3_step(pq) == SQLITE_ROW &&
	    sqlite3_column_int64(pq, 1) <= ts + (dur > 0 ? dur : 0)) {
		*worker = sqlite3_column_int64(pq, 0);
		*start = sqlite3_column_int64(pq, 1);
		found = 0;
	}
	return found;
}

/* The tracer's detail (db_schema.h warnings): "; "-separated parts, the
 * headline first (it begins with the verdict and names the culprit), the
 * fix last. The verdict, the culprit and the fix as args. */
static void tracer_args(FILE *o, const char *d)
{
	const char *end = strstr(d, "; ");
	const char *fix = strstr(d, "; fix: ");
	fprintf(o, ",\"verdict\":\"%s\"",
		!strncmp(d, "blocked", 7)  ? "blocked"
		: !strncmp(d, "on-CPU", 6) ? "on-cpu"
					   : "preempted");
	if (!end)
		end = d + strlen(d);
	const char *c = strstr(d, ", culprit ");
	if (c && c < end) {
		c += strlen(", culprit ");
		const char *r = strstr(c, " (still running");
		if (r && r < end)
			end = r;
		char buf[512];
		snprintf(buf, sizeof buf, "%.*s", (int)(end - c), c);
		fputs(",\"culprit\":", o);
		jstr(o, buf);
	}
	if (fix) {
		fputs(",\"fix\":", o);
		jstr(o, fix + strlen("; fix: "));
	}
}

static int warnings(struct ex *x)
{
	sqlite3_stmt *st, *pq;
	int rc;
	if (spdb_prepare(
		    x->db,
		    x->wcol ? "SELECT ts, kind, task, dur, detail, source, worker FROM warnings"
			    : "SELECT ts, kind, task, dur, detail, source, NULL FROM warnings",
		    &st, x->err, sizeof x->err))
		return -1;
	if (spdb_prepare(x->db,
			 "SELECT worker, end - dur FROM polls WHERE end >= ?1 AND end <= ?2 AND "
			 "task = ?3 ORDER BY end LIMIT 1",
			 &pq, x->err, sizeof x->err)) {
		sqlite3_finalize(st);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 1);
		const char *src = (const char *)sqlite3_column_text(st, 5);
		const char *detail = (const char *)sqlite3_column_text(st, 4);
		int64_t ts = sqlite3_column_int64(st, 0), dur = sqlite3_column_int64(st, 3);
		int64_t task = sqlite3_column_int64(st, 2), worker = -1, start = ts;
		int tracer = kind && src && detail && !strcmp(kind, "long_poll") &&
			     !strcmp(src, "spindle trace");
		if (tracer && finding_poll(pq, ts, dur, task, &worker, &start) &&
		    sqlite3_column_type(st, 6) != SQLITE_NULL)
			worker = sqlite3_column_int64(st, 6);
		sep(x);
		if (tracer && worker >= 0) {
			/* An annotation on the poll: named after the headline. */
			const char *p = strstr(detail, "; ");
			int n = p ? (int)(p - detail) : (int)strlen(detail);
			char name[256];
			snprintf(name, sizeof name, "%.*s", n, detail);
			fprintf(x->o,
				"{\"ph\":\"i\",\"cat\":\"tracer\",\"s\":\"t\",\"pid\":%lld,"
				"\"tid\":%lld,\"ts\":%.3f,\"name\":",
				(long long)x->pid, (long long)worker, us(start));
			jstr(x->o, name);
			fprintf(x->o,
				",\"args\":{\"kind\":\"long_poll\",\"task\":%lld,\"dur_us\":%.3f",
				(long long)task, us(dur));
			tracer_args(x->o, detail);
			fputs(",\"detail\":", x->o);
			jstr(x->o, detail);
			fputs(",\"source\":\"spindle trace\"}}", x->o);
			continue;
		}
		fprintf(x->o,
			"{\"ph\":\"i\",\"cat\":\"warning\",\"s\":\"g\",\"pid\":%lld,\"tid\":0,"
			"\"ts\":%.3f,\"name\":",
			(long long)x->pid, us(ts));
		jstr(x->o, kind);
		fprintf(x->o,
			",\"args\":{\"task\":%lld,\"dur_us\":%.3f,\"detail\":", (long long)task,
			us(dur));
		jstr(x->o, detail);
		fputs(",\"source\":", x->o);
		jstr(x->o, src);
		fputs("}}", x->o);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(pq);
	return rc == SQLITE_DONE ? 0 : fail(x);
}

int sp_cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *out = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if (c == 'o') {
			out = optarg;
		} else if (c == 'h') {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc || !out) {
		sp_cli_err(CMD, "give one recording and -o OUT.json (try 'spindle export --help')");
		return 2;
	}
	struct ex x = {.first = 1};
	if (spdb_open_ro(&x.db, argv[optind], x.err, sizeof x.err)) {
		sp_cli_err(CMD, "%s", x.err);
		return 2;
	}
	if (spdb_meta_int(x.db, "pid", &x.pid))
		x.pid = 0;
	x.wcol = has_worker_col(x.db);
	x.o = strcmp(out, "-") ? fopen(out, "w") : stdout;
	if (!x.o) {
		sp_cli_err(CMD, "%s: cannot write", out);
		sqlite3_close(x.db);
		return 2;
	}
	fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[", x.o);
	int rc = tracks(&x) || polls(&x) || instants(&x) || warnings(&x);
	if (!rc)
		name_off_tracks(&x);
	fputs("\n]}\n", x.o);
	if (x.o != stdout && fclose(x.o) && !rc) {
		snprintf(x.err, sizeof x.err, "%s: write failed", out);
		rc = 1;
	}
	sqlite3_close(x.db);
	if (rc) {
		sp_cli_err(CMD, "%s: %s", argv[optind], x.err);
		return 2;
	}
	return 0;
}
