/*
 * cmd_report.c - `spindle report`: the diagnosis of a recording.
 *
 * Model first: analyse() reads the database (read-only) into a `findings`
 * struct in a fixed number of passes - tasks, polls and wakes in key order
 * (one pass each), then primary-key lookups for the few stalled tasks and
 * long polls - and print_text() / print_json() render it. Exit status 0 when
 * nothing is flagged, 1 when something is, 2 for bad input.
 *
 * Definitions (thresholds are options):
 *   stalled      a task still pending (its last poll returned Pending, it
 *                did not complete) that nothing polled or woke for at least
 *                --stall ms before its end (abort, or the recording's end).
 *                Why, from its waker holders (db_schema.h wakers):
 *                  lost waker       no waker outstanding: flagged
 *                  waiting on fd N  the outstanding waker is the reactor's
 *                  waiting on timer / channel / sync / join / blocking
 *                the waits are shown but not flagged (an idle accept loop
 *                is not a bug). For an aborted task, holders whose last
 *                change came within 1 ms of the abort count as held until
 *                it (the abort dropped them).
 *   woken, never polled  a wake (or the spawn) after the last poll that no
 *                poll followed for >= --sched-delay ms: flagged
 *   long poll    dur >= --long-poll ms: flagged; victims are tasks queued on
 *                that worker (their waking wake went to its LIFO or local
 *                queue) that were runnable while it ran, with the part of
 *                their scheduling delay that overlapped it; and tasks
 *                woken by a timer that this worker fired after the poll
 *                though it was due during it (timers table), with the part
 *                of the poll after the deadline
 *   sched delay  per spawn site name, percentiles of polls' delay; flagged
 *                when p99 >= --sched-delay ms
 *   self-wake heavy  tasks with >= 100 polls of which >= --self-wake % were
 *                self-woken (a busy yield loop): flagged
 *   warnings     rows of the warnings table (the eBPF tracer): flagged
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "report.h"

#define CMD "report"

static void usage(FILE *f)
{
	fprintf(f, "usage: spindle report FILE [--json] [--since S] [--until S] [thresholds]\n\n"
		   "Diagnose a recording made by 'spindle record': stalled tasks and why\n"
		   "(lost waker, an fd or timer that never fired, woken but never polled),\n"
		   "the longest polls and the tasks they delayed, scheduling-delay\n"
		   "percentiles per task name, per-worker utilisation, steals and parks,\n"
		   "self-wake-heavy tasks, and the warnings of other tools.\n"
		   "Exit status: 0 nothing flagged, 1 something flagged, 2 bad input.\n\n"
		   "options:\n"
		   "  --json              machine-readable output\n"
		   "  --since S, --until S  only [S, S'] seconds of the recording\n"
		   "  --long-poll MS      flag polls this long (default 10)\n"
		   "  --sched-delay MS    flag task names whose p99 delay reaches it, and tasks\n"
		   "                      woken but not polled this long (default 10)\n"
		   "  --stall MS          pending with nothing happening this long is a stall\n"
		   "                      (default 100)\n"
		   "  --self-wake PCT     flag tasks self-woken in PCT%% of >= 100 polls (default "
		   "90)\n"
		   "  --top N             long polls and victims listed (default 10)\n\n"
		   "examples:\n"
		   "  spindle record -o t.db -- ./build/bin/lostwake && spindle report t.db\n"
		   "  spindle report t.db --json --long-poll 5 | jq .long_polls\n");
}

static int parse_num(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (*end || end == s || !isfinite(v) || v < 0)
		return -1;
	*out = v;
	return 0;
}

int sp_cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"since", required_argument, NULL, 's'},
					     {"until", required_argument, NULL, 'u'},
					     {"long-poll", required_argument, NULL, 'l'},
					     {"sched-delay", required_argument, NULL, 'd'},
					     {"stall", required_argument, NULL, 'S'},
					     {"self-wake", required_argument, NULL, 'w'},
					     {"top", required_argument, NULL, 'n'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	spr_opts o = {.long_poll_ns = 10000000,
		      .sched_delay_ns = 10000000,
		      .stall_ns = 100000000,
		      .self_wake_pct = 90,
		      .top = 10,
		      .since_ns = INT64_MIN,
		      .until_ns = INT64_MAX};
	int json = 0, c;
	double v;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (c == 'j') {
			json = 1;
			continue;
		}
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == '?' || parse_num(optarg, &v)) {
			if (c != '?')
				sp_cli_err(CMD, "bad value '%s' for --%s", optarg,
					   c == 's'   ? "since"
					   : c == 'u' ? "until"
						      : "threshold");
			else
				usage(stderr);
			return 2;
		}
		switch (c) {
		case 's':
			o.since_ns = (int64_t)(v * 1e9);
			break;
		case 'u':
			o.until_ns = (int64_t)(v * 1e9);
			break;
		case 'l':
			o.long_poll_ns = (int64_t)(v * 1e6);
			break;
		case 'd':
			o.sched_delay_ns = (int64_t)(v * 1e6);
			break;
		case 'S':
			o.stall_ns = (int64_t)(v * 1e6);
			break;
		case 'w':
			o.self_wake_pct = v;
			break;
		case 'n':
			o.top = (unsigned)v;
			break;
		}
	}
	if (optind + 1 != argc) {
		sp_cli_err(CMD, "give one recording (try 'spindle report --help')");
		return 2;
	}
	const char *path = argv[optind];
	char err[512];
	sqlite3 *db;
	if (spdb_open_ro(&db, path, err, sizeof err)) {
		sp_cli_err(CMD, "%s", err);
		return 2;
	}
	spr_findings *f = NULL;
	if (spr_analyse(db, &o, &f, err, sizeof err)) {
		sp_cli_err(CMD, "%s: %s", path, err);
		sqlite3_close(db);
		return 2;
	}
	sqlite3_close(db);
	if (json)
		spr_print_json(stdout, f, path);
	else
		spr_print_text(stdout, f, path);
	int flagged = f->flagged;
	spr_free(f);
	return flagged ? 1 : 0;
}
