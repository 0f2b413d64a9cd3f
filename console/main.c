/*
 * main.c - the `spindle` command: dispatch to a subcommand.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *what;
} cmds[] = {
	{"ps", sp_cmd_ps, "list the traceable spindle processes"},
	{"top", sp_cmd_top, "live console of a process's tasks and workers"},
	{"record", sp_cmd_record, "record a process's events into SQLite"},
	{"report", sp_cmd_report, "diagnose a recording: stalled tasks, long polls, delays"},
	{"export", sp_cmd_export, "export a recording as Chrome trace-event JSON (Perfetto)"},
	{"trace", sp_cmd_trace, "eBPF tracer: long polls, blocking syscalls, culprit stacks"},
};

void sp_cli_comm(int pid, char *buf, size_t n)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	FILE *f = fopen(path, "r");
	buf[0] = 0;
	if (f) {
		if (fgets(buf, (int)n, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
	}
	if (!buf[0])
		snprintf(buf, n, "?");
}

void sp_cli_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "spindle %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int sp_cli_num(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s ? s : "", &end);
	if (!s || !*s || *end || errno || v < lo || v > hi) {
		sp_cli_err(cmd, "%s wants a number from %g to %g, not '%s'", opt, lo, hi, s ? s : "");
		return -1;
	}
	*out = v;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: spindle <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].what);
	fprintf(f, "\n'spindle <command> --help' describes a command.\n"
		   "Targets turn their event rings on with SPINDLE_TRACE=1.\n\n"
		   "examples:\n"
		   "  SPINDLE_TRACE=1 ./build/bin/demo &   # a traced process\n"
		   "  spindle ps                           # find it\n"
		   "  spindle top                          # watch it\n"
		   "  spindle record -o t.db -- ./build/bin/lostwake && spindle report t.db\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "spindle: unknown command '%s' (try 'spindle --help')\n", argv[1]);
	return 2;
}
