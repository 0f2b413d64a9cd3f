/*
 * top_app.h - what cmd_top.c (CLI, sampling), top_batch.c (text snapshots)
 * and top_view.c (ncurses) share: the attached process, the model, the view
 * options. Sampling is one step, top_sample; drawing never reads the target.
 */
#ifndef SPINDLE_CONSOLE_TOP_APP_H
#define SPINDLE_CONSOLE_TOP_APP_H

#include <stdio.h>

#include "stream.h"
#include "top_model.h"

typedef struct top_app {
	spc_stream *s;
	topm_model *m;
	int pid;
	char comm[64];
	/* options */
	uint64_t interval_ns; /* refresh (-d) */
	long count;	      /* snapshots in batch mode (-n), 0: until the target exits */
	int color;	      /* 0: monochrome */
	topm_view_opts vo;
	char filter[64];
	/* state */
	int alive;		 /* 0 once the target exited or was killed */
	int paused;		 /* interactive only: stop reading, freeze the screen */
	uint64_t start_ns;	 /* when we attached */
	uint64_t last_tick;	 /* last topm_tick */
	uint64_t snap_at;	 /* last task-table snapshot */
	int table_stale;	 /* the target did not write its table when asked */
	uint64_t seg_start;	 /* the segment's creation, CLOCK_MONOTONIC ns estimate */
	uint64_t lost;		 /* spc_stream_lost_total */
	uint64_t ev_rate;	 /* events per second over the last tick */
	uint64_t ev_last, ev_at; /* events seen at the last rate update, and when */
	/* the current view list */
	topm_task **rows;
	size_t nrows, cap;
	/* --bpf: the eBPF tracer's findings, from its thread (cmd_top.c) */
	int bpf;
	struct top_bpf *tb;
	/* --replay: a recording instead of a process (s is NULL, alive 0, paused
	 * 1); m is the replay's model, replaced when the cursor moves back */
	struct replay *rp;
	char replay_path[256];
} top_app;

/* Drain the stream into the model; when `tick` is set (or the target ended)
 * also snapshot the task table, tick the model and rebuild the rows. */
void top_sample(top_app *a, int tick);
void top_rebuild(top_app *a);
/* --replay: move the cursor to t (recording ns, clamped) and rebuild the
 * rows; 0, or -1 after a read error (the message is in replay_err). */
int top_replay_seek(top_app *a, int64_t t);
/* --replay: the cursor that shows the worst poll live (start + threshold),
 * or its end (at_end); -1 when the recording has no poll. */
int64_t top_replay_worst(top_app *a, int at_end);

/* Plain-text snapshot (batch mode). */
void top_batch_print(top_app *a, FILE *f);
/* The interactive console; returns the exit status. */
int top_view_run(top_app *a);
/* Pick one of several processes; returns its pid, 0 when the user quits. */
int top_view_choose(const int *pids, char (*what)[96], int n);

#endif
