/*
 * error.c - error names and messages, generated from SP_ERRNO_MAP, and the
 * one place that aborts on a broken invariant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *sp_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case SP_ENORUNTIME:
		return "no runtime on this thread";
#define SP__XX(name, msg)                                                      \
	case SP_##name:                                                        \
		return msg;
		SP_ERRNO_MAP(SP__XX)
#undef SP__XX
	default:
		return err < 0 ? strerror(-err) : "unknown error";
	}
}

const char *sp_err_name(int err)
{
	switch (err) {
	case SP_ENORUNTIME:
		return "SP_ENORUNTIME";
#define SP__XX(name, msg)                                                      \
	case SP_##name:                                                        \
		return "SP_" #name;
		SP_ERRNO_MAP(SP__XX)
#undef SP__XX
	default:
		return "SP_EUNKNOWN";
	}
}

void sp__panic(const char *invariant)
{
	fprintf(stderr, "spindle: invariant broken: %s\n", invariant);
	fflush(stderr);
	abort();
}
