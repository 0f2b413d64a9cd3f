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

