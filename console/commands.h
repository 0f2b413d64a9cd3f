/*
 * commands.h - the subcommands of the `spindle` program. Each takes the
 * arguments after its own name (argv[0] is the subcommand name) and returns
 * the process exit status: 0 success, 1 "something was found" where a
 * subcommand defines it (report), 2 bad input or environment.
 */
#ifndef SPINDLE_CONSOLE_COMMANDS_H
#define SPINDLE_CONSOLE_COMMANDS_H

#include <stddef.h>

int sp_cmd_ps(int argc, char **argv);
int sp_cmd_top(int argc, char **argv);
int sp_cmd_record(int argc, char **argv);
int sp_cmd_report(int argc, char **argv);
int sp_cmd_export(int argc, char **argv);
int sp_cmd_trace(int argc, char **argv);

/* The command name of process pid (/proc/<pid>/comm), "?" if unknown. */
void sp_cli_comm(int pid, char *buf, size_t n);

/* One-line error on stderr, "spindle <cmd>: <message>". */
void sp_cli_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse the value s of option opt as a number in [lo, hi] into *out: 0, or
 * -1 after a one-line error ("<opt> wants a number from lo to hi, not 's'").
 * s may be NULL (the option came last, without its value). */
int sp_cli_num(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

#endif
