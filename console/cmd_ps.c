/*
 * cmd_ps.c - `spindle ps`: the traceable spindle processes on this machine,
 * found by their trace segments (/dev/shm/spindle.<pid>).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "stream.h"
#include "trace_segment.h"

struct ps_state {
	int clean;
	int shown;
	int stale;
};

static void count_task(unsigned slot, const sp__seg_task *t, void *arg)
{
	(void)slot;
	(void)t;
	++*(size_t *)arg;
}

static void ps_one(const sp__seg_info *in, void *arg)
{
	struct ps_state *st = arg;
	char comm[64];
	if (in->state == SP__SEG_STALE) {
		st->stale++;
		if (st->clean) {
			int err = sp__seg_remove_stale(in->pid);
			printf("%7d  %-7s %s\n", in->pid, "removed",
			       err ? strerror(-err) : "(stale segment of a dead process)");
		} else {
			printf("%7d  %-7s %s\n", in->pid, "stale",
			       "(process gone; 'spindle ps --clean' removes it)");
		}
		st->shown++;
		return;
	}
	sp_cli_comm(in->pid, comm, sizeof comm);
	if (in->state == SP__SEG_INVALID) {
		printf("%7d  %-7s %-16s %s\n", in->pid, "invalid", comm, in->errstr);
		st->shown++;
		return;
	}
	sp__seg_reader r;
	if (sp__seg_open(&r, in->pid) != 0) {
		printf("%7d  %-7s %-16s %s\n", in->pid, "invalid", comm, sp__seg_strerror(&r));
		st->shown++;
		return;
	}
	unsigned used = 0;
	for (unsigned i = 0; i < r.hdr.nrings; i++)
		used += sp__seg_reader_ring_owner(&r, i) != 0;
	size_t tasks = 0, busy = 0;
	sp__seg_table_request(&r, SPC_TABLE_WAIT_MS);
	sp__seg_read_tasks(&r, count_task, &tasks, &busy);
	printf("%7d  %-7s %-16s %5u/%-5u %8zu  abi %u.%u\n", in->pid, "live", comm, used,
	       r.hdr.nrings, tasks, r.found_major, r.found_minor);
	sp__seg_close(&r);
	st->shown++;
}

static void ps_usage(FILE *f)
{
	fprintf(f, "usage: spindle ps [--clean]\n\n"
		   "List the spindle processes whose event rings are on (started with\n"
		   "SPINDLE_TRACE=1 or sp_runtime_opts.trace): pid, state, command, rings in use\n"
		   "of rings, live tasks, segment ABI. Segments left by dead processes show as\n"
		   "stale; --clean removes them.\n\n"
		   "examples:\n"
		   "  spindle ps\n"
		   "  spindle ps --clean\n");
}

int sp_cmd_ps(int argc, char **argv)
{
	static const struct option opts[] = {
		{"clean", no_argument, 0, 'c'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	struct ps_state st = {0};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "ch", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			st.clean = 1;
			break;
		case 'h':
			ps_usage(stdout);
			return 0;
		default:
			ps_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		sp_cli_err("ps", "unexpected argument '%s'", argv[optind]);
		return 2;
	}
	printf("%7s  %-7s %-16s %11s %8s  %s\n", "PID", "STATE", "COMMAND", "RINGS", "TASKS",
	       "SEGMENT");
	int n = sp__seg_list(ps_one, &st);
	if (n < 0) {
		sp_cli_err("ps", "cannot read %s: %s", SP__SEG_DIR, strerror(-n));
		return 2;
	}
	if (st.shown == 0)
		fprintf(stderr, "spindle ps: no spindle process is traceable (start one with "
				"SPINDLE_TRACE=1)\n");
	return 0;
}
