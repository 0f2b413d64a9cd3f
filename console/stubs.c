/*
 * stubs.c - subcommands not built yet. Each says so and exits 2; a part
 * moves out of here when it lands.
 */
#include "commands.h"

#define NOT_YET(fn, name)                                                      \
	int fn(int argc, char **argv)                                          \
	{                                                                      \
		(void)argc;                                                    \
		(void)argv;                                                    \
		sp_cli_err(name, "not built yet in this version of spindle");  \
		return 2;                                                      \
	}

NOT_YET(sp_cmd_record, "record")
NOT_YET(sp_cmd_report, "report")
NOT_YET(sp_cmd_export, "export")
NOT_YET(sp_cmd_trace, "trace")
