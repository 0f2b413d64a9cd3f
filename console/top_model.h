/*
 * top_model.h - the model behind `spindle top`: pure C, no curses, no I/O.
 *
 * It consumes the merged event stream of a process (spc_event, stream.h) and
 * snapshots of its task table (sp__seg_task), and keeps:
 *   - tasks in a hash by id: state (running / scheduled / idle / done), the
 *     counters, time per state, a poll-duration and a scheduled-delay
 *     histogram, a small ring of the task's recent events;
 *   - workers: polls, busy time, steals in and out, parks, the task being
 *     polled now and since when, thread id;
 *   - warnings, re-evaluated by topm_tick: long poll, lost waker, self-wake
 *     heavy, scheduling delay, blocked worker.
 * A view is a filtered, sorted list of tasks (topm_view) that the ncurses
 * view and the batch printer both render with topm_cell.
 *
 * BOUNDS (so that memory stays flat under 100k live tasks and churn): a task
 * is a fixed-size record (histograms of TOPM_HIST_BUCKETS counters, a ring of
 * TOPM_TASK_EVENTS events); finished tasks are dropped keep_done_ns after
 * they end and beyond max_done of them (oldest first); the warning list holds
 * at most TOPM_MAX_WARNINGS entries (the count of all is kept); the focus ring
 * (recent events of the selected task) is TOPM_FOCUS_EVENTS long.
 *
 * TIME. Every time is CLOCK_MONOTONIC nanoseconds (spc_event.ns); `now` is
 * passed in by the caller, so tests drive the clock. Events may arrive late
 * (spc_event.late): durations that would be negative count as 0.
 *
 * TRUST. Events can be lost (the producers never wait). The task table is
 * the catch-up: topm_snapshot_* raises each counter to the table's value
 * when the table is ahead, adds tasks the events never showed, and ends
 * tasks that left the table (missing from two snapshots in a row).
 */
#ifndef SPINDLE_CONSOLE_TOP_MODEL_H
#define SPINDLE_CONSOLE_TOP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define TOPM_HIST_BUCKETS 20   /* log2 buckets from 1 us: <1us, <2us ... >=256 ms */
#define TOPM_TASK_EVENTS 8     /* recent events kept per task */
#define TOPM_FOCUS_EVENTS 256  /* recent events kept for the selected task */
#define TOPM_MAX_WARNINGS 1024 /* warning entries listed (all are counted) */
#define TOPM_MAX_WORKERS 256
#define TOPM_SITE_EXTRA 0x10000u /* site indexes from here: table-only sites */

enum topm_state { TOPM_SCHEDULED, TOPM_RUNNING, TOPM_IDLE, TOPM_DONE };

/* Warning kinds; a task's `warn` is a bit set of (1 << kind). */
enum topm_warn_kind {
	TOPM_W_LONG_POLL,
	TOPM_W_LOST_WAKER,
	TOPM_W_SELF_WAKE,
	TOPM_W_SCHED_DELAY,
	TOPM_W_BLOCKED_WORKER,
	TOPM_W_KERNEL, /* a finding of the eBPF tracer (spindle top --bpf) */
	TOPM_W__COUNT,
};

typedef struct topm_config {
	uint64_t long_poll_ns;	 /* a poll at least this long (default 10 ms) */
	uint64_t lost_waker_ns;	 /* idle with no waker for this long (100 ms) */
	unsigned self_wake_pct;	 /* self-wakes above this % of wakes (50) */
	unsigned self_wake_min;	 /* ... once the task has this many wakes (20) */
	uint64_t sched_delay_ns; /* woken, not polled for this long (10 ms) */
	uint64_t blocked_ns;	 /* a worker in one poll for this long (100 ms) */
	uint64_t warn_hold_ns;	 /* a past long poll / delay stays listed (10 s) */
	uint64_t keep_done_ns;	 /* finished tasks stay this long (30 s) */
	uint32_t max_done;	 /* and at most this many (10000) */
} topm_config;

void topm_config_default(topm_config *c);

/* One event of a task's history, compact. */
typedef struct topm_ev {
	uint64_t ns;
	uint32_t a;
	uint8_t type;  /* SP_EV_* */
	int8_t worker; /* -1: not a worker (or >= 127) */
	uint16_t pad;
} topm_ev;

typedef struct topm_site {
	uint32_t line;
	uint8_t known; /* 0: not resolved (yet) */
	char name[SP__SEG_NAME_LEN + 1];
	char file[SP__SEG_SITE_FILE_LEN + 1];
} topm_site;

typedef struct topm_task {
	uint64_t id, parent;
	uint32_t site;	      /* site index (topm_site_get), SP_SITE_NONE if unknown */
	uint8_t state;	      /* enum topm_state */
	uint8_t aborted;      /* DONE by cancellation */
	uint8_t notified;     /* woken while running: scheduled at POLL_END */
	uint8_t counts_known; /* waker counts are complete (seen from spawn or table) */
	int16_t worker;	      /* last worker that polled it, -1 none */
	uint16_t missing;     /* consecutive table snapshots without it */
	uint32_t warn;	      /* active warning bits (topm_tick) */
	uint64_t polls, wakes, self_wakes;
	uint64_t clones, drops;		     /* drops include by-value wakes */
	uint64_t busy_ns, sched_ns, idle_ns; /* time per state, closed intervals */
	uint64_t spawn_ns, since_ns;	     /* since_ns: entered the current state */
	uint64_t done_ns;
	uint64_t max_poll_ns, max_sched_ns;
	uint64_t long_poll_ns, long_poll_at; /* last poll >= threshold, its end */
	uint64_t delay_ns, delay_at;	     /* last delay >= threshold, its poll start */
	uint16_t hist_poll[TOPM_HIST_BUCKETS];
	uint16_t hist_sched[TOPM_HIST_BUCKETS];
	uint8_t ev_head, ev_count;
	topm_ev ev[TOPM_TASK_EVENTS];
	uint32_t hnext; /* internal: free-list link */
} topm_task;

typedef struct topm_worker {
	int present;
	uint32_t tid;
	uint64_t polls, busy_ns, steals_in, steals_out, parks;
	int parked;
	uint64_t current; /* task in poll now, 0 none */
	uint64_t poll_start;
	/* rates over the last tick interval */
	uint64_t last_polls, last_busy_ns;
	double busy_pct, polls_per_s;
} topm_worker;

typedef struct topm_warning {
	uint8_t kind;	/* enum topm_warn_kind */
	uint8_t live;	/* 1: true now; 0: seen within warn_hold_ns */
	int16_t worker; /* -1 when it is not about a worker */
	uint64_t task;
	uint64_t value_ns; /* poll age, delay, idle time; percent for SELF_WAKE */
	uint64_t at_ns;	   /* when it was (last) true */
} topm_warning;

typedef struct topm_model topm_model;

/* Resolves a segment site index (SPAWN's a); returns 0 and fills out, or -1
 * when the site is not readable (yet). The model asks again later. */
typedef int (*topm_site_fn)(void *arg, uint32_t idx, topm_site *out);

topm_model *topm_new(const topm_config *cfg, topm_site_fn site_fn, void *site_arg);
void topm_free(topm_model *m);
const topm_config *topm_cfg(const topm_model *m);

/* Feed one event (the stream's callback). */
void topm_event(topm_model *m, const spc_event *ev);
void topm_event_cb(const spc_event *ev, void *m);

/* Task table snapshot: begin, one call per live slot (times already in ns),
 * end. complete: the table holds every live task (it was not full and no
 * slot was skipped as busy); only then do tasks missing from it end. See
 * TRUST above. */
void topm_snapshot_begin(topm_model *m, uint64_t now);
void topm_snapshot_task(topm_model *m, const sp__seg_task *t, uint64_t spawn_ns, uint64_t last_ns);
void topm_snapshot_end(topm_model *m, uint64_t now, int complete);

/* Expire finished tasks, compute worker rates, re-evaluate every warning. */
void topm_tick(topm_model *m, uint64_t now);

/* Lookups. */
topm_task *topm_task_get(const topm_model *m, uint64_t id);
const topm_site *topm_site_get(topm_model *m, uint32_t idx); /* never NULL */
size_t topm_task_count(const topm_model *m, size_t *live, size_t *done);
unsigned topm_worker_count(const topm_model *m);
const topm_worker *topm_worker_get(const topm_model *m, unsigned w);
const topm_warning *topm_warnings(const topm_model *m, size_t *n, size_t *total);
uint64_t topm_events_seen(const topm_model *m);
uint64_t topm_now(const topm_model *m); /* the last tick's now */

/* Time in the task's current state, and its totals including it (ns). */
uint64_t topm_task_total(const topm_model *m, const topm_task *t);
void topm_task_times(const topm_model *m, const topm_task *t, uint64_t *busy, uint64_t *sched,
		     uint64_t *idle);
/* Age of the poll running now, 0 when not running. */
uint64_t topm_task_poll_age(const topm_model *m, const topm_task *t);
/* Outstanding wakers (clones - drops), -1 when not known. */
int64_t topm_task_wakers(const topm_task *t);
const char *topm_state_name(unsigned state);
const char *topm_warn_name(unsigned kind);  /* "long-poll" ... */
/* A finding from outside the event stream (the eBPF tracer): shown as a
 * TOPM_W_KERNEL warning of `task` for the warning hold time, with `text` as
 * its explanation. The model keeps the last TOPM_MAX_KERNEL of them. */
#define TOPM_MAX_KERNEL 64
void topm_kernel_finding(topm_model *m, uint64_t task, int worker, uint64_t at_ns,
			 uint64_t dur_ns, const char *text);
const char *topm_warn_short(unsigned kind); /* one letter for the task list */
/* One line explaining a warning (for the Warnings view). */
void topm_warning_text(topm_model *m, const topm_warning *w, char *buf, size_t n);

/* Histograms: bucket of a duration, the duration a bucket ends at, and
 * percentiles (p in 0..100) as the end of the bucket holding it. */
unsigned topm_hist_bucket(uint64_t ns);
uint64_t topm_hist_bucket_end(unsigned b);
uint64_t topm_hist_pct(const uint16_t *h, unsigned pct);
/* ASCII sparkline of a histogram, n = TOPM_HIST_BUCKETS characters + NUL. */
void topm_sparkline(const uint16_t *h, char *out);

/* Children of a task (up to max ids), returns how many there are. */
size_t topm_children(const topm_model *m, uint64_t id, uint64_t *out, size_t max);

/* Recent events of the selected task: topm_focus(m, id) starts collecting
 * (the task's own small ring seeds it); topm_focus_events returns them oldest
 * first. */
void topm_focus(topm_model *m, uint64_t id);
size_t topm_focus_events(const topm_model *m, topm_ev *out, size_t max);

/* ---- columns, sorting, filtering -------------------------------------------- */

enum topm_col {
	TOPM_COL_WARN,
	TOPM_COL_ID,
	TOPM_COL_STATE,
	TOPM_COL_NAME,
	TOPM_COL_TOTAL,
	TOPM_COL_BUSY,
	TOPM_COL_SCHED,
	TOPM_COL_IDLE,
	TOPM_COL_POLLS,
	TOPM_COL_WAKES,
	TOPM_COL_SELF,
	TOPM_COL_AGE,
	TOPM_COL_WORKER,
	TOPM_COL_LOC,
	TOPM_COL__COUNT,
};

typedef struct topm_coldef {
	const char *key;   /* for --sort */
	const char *title; /* header */
	int width;	   /* negative: left aligned */
	int desc;	   /* default sort direction is descending */
} topm_coldef;

extern const topm_coldef topm_cols[TOPM_COL__COUNT];
int topm_col_by_key(const char *key); /* -1 when unknown */

typedef struct topm_view_opts {
	int sort_col;	    /* enum topm_col */
	int reverse;	    /* flip the column's default direction */
	int show_done;	    /* list finished tasks too */
	const char *filter; /* substring of name or file:line, case-insensitive; NULL/"" all */
	size_t limit;	    /* only the first `limit` rows need the order (a screen's
			     * worth): the rest follow in no order; 0: sort all */
} topm_view_opts;

/* Fill *out (grown as needed with realloc; *cap its capacity) with the tasks
 * the options select, sorted (ties by id). Returns how many. */
size_t topm_view(topm_model *m, const topm_view_opts *o, topm_task ***out, size_t *cap);

/* Text of one cell of a task row (no padding). */
void topm_cell(topm_model *m, const topm_task *t, int col, char *buf, size_t n);
/* Durations as "812us", "12.3ms", "4.02s", "3m12s". */
void topm_fmt_ns(uint64_t ns, char *buf, size_t n);

#endif
