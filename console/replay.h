/*
 * replay.h - `spindle top --replay FILE`: the console's model (top_model.h)
 * fed from a recording (db_schema.h) instead of a live process, up to a time
 * cursor. No curses, no terminal: cmd_top.c drives it, the tests link it.
 *
 * EVENTS. The tables are turned back into the model's event stream, merged
 * in time order from a few key-ordered cursors (one SQL statement each):
 *   tasks.spawn -> SPAWN (parent in .task)   tasks.end -> TASK_DONE
 *   polls.end - dur -> POLL_START            polls.end -> POLL_END
 *   wakes.ts -> WAKE (source task in .task for kinds TASK, JOIN)
 *   steals.ts -> STEAL   parks.end - dur -> PARK   parks.end -> UNPARK
 *   wakers -> WAKER_CLONE at `first`, WAKER_DROP at `last` (the table is an
 *             aggregate: between them a task's outstanding count is too high,
 *             never too low, so no lost waker is shown early)
 *   warnings (other tools' findings, spindle trace -o) -> a 'kernel'
 *             finding (topm_kernel_finding) at ts + dur, when it was known
 * Ties (equal ns) go in the order a worker produces them: a poll's end, then
 * what follows at that instant (the next poll's start, the wakes and spawns
 * it makes), then the task's end.
 * Tasks spawned before the recording (spawn NULL or negative: an attach)
 * are seeded idle since their spawn (or the start), with waker counts
 * unknown: what they did before it is not recorded.
 *
 * TIME. The model sees CLOCK_MONOTONIC ns: meta.t0_ns + the recording's
 * relative ns. The cursor is relative ns, clamped to [0, end].
 *
 * SEEKING. Forward moves feed the events up to the new cursor; a move back
 * rebuilds the model from the start (a new model: replay_model changes).
 * Memory stays the model's bounds plus one row per cursor: the model ticks
 * every second of recording time while it is fed, so finished tasks expire.
 */
#ifndef SPINDLE_CONSOLE_REPLAY_H
#define SPINDLE_CONSOLE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "top_model.h"

typedef struct replay replay;

/* Open and validate path (spdb_open_ro: one-line errors in err), load its
 * sites, build the model at cursor 0. 0, or -1 with err set. */
int replay_open(replay **out, const char *path, const topm_config *cfg, char *err, size_t errlen);
void replay_close(replay *r);

/* Move the cursor to t (relative ns, clamped) and tick the model there; the
 * tick before it is at t - rate_ns (worker rates over that window). 0, or -1
 * with replay_err set (a read error: the model is then partial). */
int replay_seek(replay *r, int64_t t, uint64_t rate_ns);
const char *replay_err(const replay *r);

topm_model *replay_model(replay *r); /* valid until the next replay_seek */
int64_t replay_cursor(const replay *r);
int64_t replay_end(const replay *r);	  /* the recording's last time */
uint64_t replay_t0(const replay *r);	  /* monotonic ns of relative 0 */
uint64_t replay_ev_rate(const replay *r); /* events per second before the cursor */
int replay_pid(const replay *r);
const char *replay_command(const replay *r);

/* The longest poll: its start, duration and task. 0, or -1 when none. */
int replay_worst_poll(replay *r, int64_t *start, int64_t *dur, uint64_t *task);

#endif
