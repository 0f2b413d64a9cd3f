/*
 * make_seed.c - writes valid segment images for the fuzzer's starting
 * corpus (make fuzz runs it): a small segment with rings holding records,
 * a site and live tasks, so mutations start from deep inside the format.
 *
 *   make_seed DIR    writes DIR/seed-small and DIR/seed-wrapped
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace_segment.h"

void sp__panic(const char *what)
{
	fprintf(stderr, "make_seed: %s\n", what);
	abort();
}

static int make(const char *dir, const char *name, uint32_t events)
{
	char path[512], tmp[64];
	snprintf(tmp, sizeof tmp, "/dev/shm/spindle-seed.%d", (int)getpid());
	sp__segment seg;
	sp__seg_site_slots = 4;
	if (sp__seg_create_at(&seg, tmp, 2, 8, 4) != 0)
		return -1;
	static const int key;
	uint32_t site = sp__seg_site(&seg, &key, "seed-task", "tests/fuzz/make_seed.c", 42);
	int slot = sp__seg_task_alloc(&seg);
	sp__seg_task t = {.id = 7, .parent = 1, .state = 4, .polls = 3, .site = site};
	sp__seg_task_spawn(&seg, (unsigned)slot, &t);
	sp__seg_wstat_write(&seg, 0, 1234, 0, 5, 1);
	for (unsigned r = 0; r < 2; r++) {
		sp__ring *ring = sp__seg_ring(&seg, r);
		for (uint32_t i = 0; i < events; i++)
			sp__ring_emit_at(ring, 1000 + i, 2 + i % 3, r, 7);
	}
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(seg.base, 1, seg.size, f) != seg.size) {
		sp__seg_destroy(&seg);
		return -1;
	}
	fclose(f);
	sp__seg_destroy(&seg);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_seed DIR\n");
		return 2;
	}
	if (make(argv[1], "seed-small", 3) || make(argv[1], "seed-wrapped", 21)) {
		fprintf(stderr, "make_seed: cannot write the seeds\n");
		return 1;
	}
	return 0;
}
