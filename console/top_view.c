/*
 * top_view.c - the ncurses screen of `spindle top`. It draws the model and
 * turns keys into changes of the view options; it never reads the target
 * (cmd_top.c's top_sample does). One loop: wait for a key at most
 * TOP_POLL_MS, drain the stream, tick at the refresh interval, draw.
 *
 * Screen: line 0 summary, line 1 warning counts, then the body of the
 * current view (Tasks, Workers, Warnings, Task detail, Help), last line
 * status/keys (or the filter prompt). Every line is cut to the width; below
 * MIN_COLS x MIN_LINES the screen says so instead of drawing.
 */
#include <curses.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "replay.h"
#include "top_app.h"

#define TOP_POLL_MS 50
#define MIN_COLS 60
#define MIN_LINES 10

enum view { V_TASKS, V_WORKERS, V_WARNINGS, V_DETAIL, V_HELP };
enum { C_HEAD = 1, C_WARN, C_SEL, C_TITLE, C_DIM, C_GOOD };

struct ui {
	top_app *a;
	enum view view, back;
	size_t sel, top; /* selected row, first row shown */
	uint64_t sel_id; /* the selected task, kept across re-sorts */
	uint64_t detail_id;
	int editing; /* the filter prompt is open */
	char edit[64];
	size_t edit_len;
	char msg[160]; /* replay: a read error, shown on the status line */
};

static int color_on;

static void pen_on(int pair, int extra)
{
	if (color_on && pair)
		attron(COLOR_PAIR(pair) | extra);
	else
		attron(extra | (pair == C_WARN ? A_BOLD : 0) | (pair == C_SEL ? A_REVERSE : 0) |
		       (pair == C_TITLE ? A_REVERSE : 0));
}

static void pen_off(void)
{
	attrset(A_NORMAL);
}

/* Print at (y, 0) cut to the width, padded with spaces when pad is set. */
static void line_at(int y, int pad, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void line_at(int y, int pad, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (y < 0 || y >= LINES)
		return;
	int w = COLS;
	if ((int)strlen(buf) > w)
		buf[w] = 0;
	mvaddstr(y, 0, buf);
	if (pad)
		for (int x = (int)strlen(buf); x < w; x++)
			addch(' ');
}

static void draw_summary(struct ui *u)
{
	top_app *a = u->a;
	size_t live, done, nw, total;
	topm_task_count(a->m, &live, &done);
	topm_warnings(a->m, &nw, &total);
	const char *st = !a->alive ? "TARGET EXITED (last state)" : a->paused ? "PAUSED" : "live";
	pen_on(C_HEAD, A_BOLD);
	if (a->rp)
		line_at(0, 1,
			"spindle top  REPLAY %s (pid %d, %s)  tasks %zu live %zu done  workers %u  "
			"%llu ev/s",
			a->replay_path, a->pid, a->comm, live, done, topm_worker_count(a->m),
			(unsigned long long)a->ev_rate);
	else
		line_at(0, 1,
			"spindle top  pid %d (%s)  tasks %zu live %zu done  workers %u  %llu ev/s  "
			"[%s]",
			a->pid, a->comm, live, done, topm_worker_count(a->m),
			(unsigned long long)a->ev_rate, st);
	pen_off();
	unsigned per[TOPM_W__COUNT] = {0};
	const topm_warning *w = topm_warnings(a->m, &nw, &total);
	for (size_t i = 0; i < nw; i++)
		per[w[i].kind]++;
	char b[256] = "";
	size_t k = 0;
	for (unsigned i = 0; i < TOPM_W__COUNT; i++)
		if (per[i])
			k += (size_t)snprintf(b + k, sizeof b - k, "  %u %s", per[i],
					      topm_warn_name(i));
	pen_on(total ? C_WARN : C_GOOD, 0);
	line_at(1, 1, "warnings: %s", total ? b + 2 : "none");
	pen_off();
}

static void cols_title(char *buf, size_t n, const top_app *a)
{
	size_t k = 0;
	buf[0] = 0;
	for (int c = 0; c < TOPM_COL__COUNT && k < n; c++) {
		char t[32];
		snprintf(t, sizeof t, "%s%s", topm_cols[c].title,
			 c == a->vo.sort_col ? (a->vo.reverse ^ topm_cols[c].desc ? "v" : "^")
					     : "");
		k += (size_t)snprintf(buf + k, n - k, "%*s ", topm_cols[c].width, t);
	}
}

static void row_text(top_app *a, const topm_task *t, char *buf, size_t n)
{
	char cell[128];
	size_t k = 0;
	for (int c = 0; c < TOPM_COL__COUNT && k < n; c++) {
		topm_cell(a->m, t, c, cell, sizeof cell);
		int w = topm_cols[c].width, aw = w < 0 ? -w : w;
		if ((int)strlen(cell) > aw)
			cell[aw] = 0;
		k += (size_t)snprintf(buf + k, n - k, "%*s ", w, cell);
	}
}

/* Keep the selection on the same task after a rebuild, and on screen. */
static void fix_selection(struct ui *u, int rows)
{
	top_app *a = u->a;
	if (u->sel_id)
		for (size_t i = 0; i < a->nrows; i++)
			if (a->rows[i]->id == u->sel_id) {
				u->sel = i;
				break;
			}
	if (a->nrows && u->sel >= a->nrows)
		u->sel = a->nrows - 1;
	if (!a->nrows)
		u->sel = 0;
	if (u->sel < u->top)
		u->top = u->sel;
	if (rows > 0 && u->sel >= u->top + (size_t)rows)
		u->top = u->sel - (size_t)rows + 1;
	u->sel_id = a->nrows ? a->rows[u->sel]->id : 0;
}

static void draw_tasks(struct ui *u, int y0, int rows)
{
	top_app *a = u->a;
	char buf[1024];
	cols_title(buf, sizeof buf, a);
	pen_on(C_TITLE, 0);
	line_at(y0, 1, "%s", buf);
	pen_off();
	fix_selection(u, rows - 1);
	for (int r = 0; r + 1 < rows; r++) {
		size_t i = u->top + (size_t)r;
		if (i >= a->nrows) {
			line_at(y0 + 1 + r, 1, "%s", i == 0 && r == 0 ? "  (no task matches)" : "");
			continue;
		}
		topm_task *t = a->rows[i];
		row_text(a, t, buf, sizeof buf);
		int pair = i == u->sel		   ? C_SEL
			   : t->warn		   ? C_WARN
			   : t->state == TOPM_DONE ? C_DIM
						   : 0;
		pen_on(pair, 0);
		line_at(y0 + 1 + r, 1, "%s", buf);
		pen_off();
	}
}

static void draw_workers(struct ui *u, int y0, int rows)
{
	top_app *a = u->a;
	char age[32];
	pen_on(C_TITLE, 0);
	line_at(y0, 1, "%-3s %6s %8s %9s %10s %6s %5s %-8s %-14s %8s %8s", "W", "BUSY%",
		"POLLS/S", "STEALS-IN", "STEALS-OUT", "PARKS", "QUEUE", "CURRENT", "NAME", "POLLAGE",
		"TID");
	uint32_t inject = 0, inj, depth;
	pen_off();
	int y = y0 + 1;
	for (unsigned i = 0; i < topm_worker_count(a->m) && y < y0 + rows; i++) {
		const topm_worker *w = topm_worker_get(a->m, i);
		if (!w->present)
			continue;
		char cur[24] = "-";
		const char *name = "";
		snprintf(age, sizeof age, "-");
		if (w->current) {
			topm_task *t = topm_task_get(a->m, w->current);
			snprintf(cur, sizeof cur, "%llu", (unsigned long long)w->current);
			name = t ? topm_site_get(a->m, t->site)->name : "?";
			topm_fmt_ns(topm_now(a->m) > w->poll_start ? topm_now(a->m) - w->poll_start
								   : 0,
				    age, sizeof age);
		} else if (w->parked) {
			snprintf(cur, sizeof cur, "parked");
		}
		int blocked =
			w->current && topm_now(a->m) - w->poll_start >= topm_cfg(a->m)->blocked_ns;
		pen_on(blocked ? C_WARN : 0, 0);
		char q[16] = "-";
		if (a->s && spc_stream_worker_queue(a->s, (int)i, &depth, &inj) == 0) {
			snprintf(q, sizeof q, "%u", depth);
			inject = inj;
		}
		line_at(y++, 1, "%-3u %6.1f %8.0f %9llu %10llu %6llu %5s %-8s %-14.14s %8s %8u", i,
			w->busy_pct, w->polls_per_s, (unsigned long long)w->steals_in,
			(unsigned long long)w->steals_out, (unsigned long long)w->parks, q, cur, name,
			age, w->tid);
		pen_off();
	}
	if (y < y0 + rows)
		line_at(y++, 1, "%s", "");
	if (y < y0 + rows)
		line_at(y++, 1,
			"injection queue: %u   (QUEUE: the worker's local queue with its LIFO "
			"slot, as it last published it)",
			inject);
}

static void draw_warnings(struct ui *u, int y0, int rows)
{
	top_app *a = u->a;
	size_t n, total;
	const topm_warning *w = topm_warnings(a->m, &n, &total);
	pen_on(C_TITLE, 0);
	line_at(y0, 1, "%-14s %-4s %7s %-14s %s", "WARNING", "WHEN", "TASK", "NAME", "WHY");
	pen_off();
	if (!n)
		line_at(y0 + 1, 1, "  no warnings");
	for (size_t i = 0; i < n && (int)i + 1 < rows; i++) {
		char text[200];
		topm_task *t = topm_task_get(a->m, w[i].task);
		topm_warning_text(a->m, &w[i], text, sizeof text);
		pen_on(w[i].live ? C_WARN : 0, 0);
		line_at(y0 + 1 + (int)i, 1, "%-14s %-4s %7llu %-14.14s %s",
			topm_warn_name(w[i].kind), w[i].live ? "NOW" : "was",
			(unsigned long long)w[i].task,
			topm_site_get(a->m, t ? t->site : SP_SITE_NONE)->name, text);
		pen_off();
	}
}

static void hist_line(int y, top_app *a, const char *what, const uint16_t *h, uint64_t max)
{
	char sp[TOPM_HIST_BUCKETS + 1], p50[16], p90[16], p99[16], mx[16];
	topm_sparkline(h, sp);
	topm_fmt_ns(topm_hist_pct(h, 50), p50, sizeof p50);
	topm_fmt_ns(topm_hist_pct(h, 90), p90, sizeof p90);
	topm_fmt_ns(topm_hist_pct(h, 99), p99, sizeof p99);
	topm_fmt_ns(max, mx, sizeof mx);
	(void)a;
	line_at(y, 1, "  %-11s 1us[%s]1s  p50<%s p90<%s p99<%s max %s", what, sp, p50, p90, p99,
		mx);
}

static void draw_detail(struct ui *u, int y0, int rows)
{
	top_app *a = u->a;
	topm_task *t = topm_task_get(a->m, u->detail_id);
	int y = y0, end = y0 + rows;
	if (!t) {
		line_at(y, 1, "task %llu is gone (finished and expired); Esc goes back",
			(unsigned long long)u->detail_id);
		return;
	}
	const topm_site *s = topm_site_get(a->m, t->site);
	char tot[16], b[16], sc[16], id[16], age[16];
	uint64_t vb, vs, vi;
	topm_task_times(a->m, t, &vb, &vs, &vi);
	topm_fmt_ns(topm_task_total(a->m, t), tot, sizeof tot);
	topm_fmt_ns(vb, b, sizeof b);
	topm_fmt_ns(vs, sc, sizeof sc);
	topm_fmt_ns(vi, id, sizeof id);
	topm_fmt_ns(topm_task_poll_age(a->m, t), age, sizeof age);
	int64_t wk = topm_task_wakers(t);
	pen_on(C_TITLE, 0);
	line_at(y++, 1, "task %llu  %s  %s:%u", (unsigned long long)t->id, s->name, s->file,
		s->line);
	pen_off();
	line_at(y++, 1, "  state %s%s  worker %d  poll age %s", topm_state_name(t->state),
		t->aborted ? " (aborted)" : "", t->worker, t->state == TOPM_RUNNING ? age : "-");
	line_at(y++, 1, "  total %s  busy %s  scheduled %s  idle %s", tot, b, sc, id);
	line_at(y++, 1,
		"  polls %llu  wakes %llu  self-wakes %llu  waker clones %llu  drops %llu  "
		"outstanding %s",
		(unsigned long long)t->polls, (unsigned long long)t->wakes,
		(unsigned long long)t->self_wakes, (unsigned long long)t->clones,
		(unsigned long long)t->drops,
		wk < 0	  ? "?"
		: wk == 0 ? "0"
		: wk == 1 ? "1"
			  : "2+");
	for (unsigned k = 0; k < TOPM_W__COUNT; k++)
		if (t->warn & (1u << k)) {
			pen_on(C_WARN, 0);
			line_at(y++, 1, "  WARNING %s", topm_warn_name(k));
			pen_off();
		}
	topm_task *p = topm_task_get(a->m, t->parent);
	uint64_t kids[8];
	size_t nk = topm_children(a->m, t->id, kids, 8);
	char kb[200] = "";
	size_t k = 0;
	for (size_t i = 0; i < nk && i < 8; i++)
		k += (size_t)snprintf(kb + k, sizeof kb - k, " %llu", (unsigned long long)kids[i]);
	line_at(y++, 1, "  parent %llu %s  children %zu:%s%s", (unsigned long long)t->parent,
		p ? topm_site_get(a->m, p->site)->name : "", nk, kb, nk > 8 ? " ..." : "");
	hist_line(y++, a, "poll time", t->hist_poll, t->max_poll_ns);
	hist_line(y++, a, "sched delay", t->hist_sched, t->max_sched_ns);
	line_at(y++, 1, "%s", "");
	pen_on(C_TITLE, 0);
	line_at(y++, 1, "recent events (newest last)");
	pen_off();
	topm_ev ev[TOPM_FOCUS_EVENTS];
	int room = end - y;
	size_t n = topm_focus_events(a->m, ev, room > 0 ? (size_t)room : 0);
	for (size_t i = 0; i < n && y < end; i++) {
		char ago[16];
		uint64_t now = topm_now(a->m);
		topm_fmt_ns(now > ev[i].ns ? now - ev[i].ns : 0, ago, sizeof ago);
		char what[96];
		spc_event_detail(ev[i].type, ev[i].a, what, sizeof what);
		line_at(y++, 1, "  -%-9s %-12s %-60.60s %s%d", ago, spc_event_name(ev[i].type), what,
			ev[i].worker >= 0 ? "w" : "", ev[i].worker);
	}
	while (y < end)
		line_at(y++, 1, "%s", "");
}

static const char *help_text[] = {
	"spindle top - keys",
	"",
	"  Tab, 1 2 3     tasks / workers / warnings view",
	"  Up Down PgUp PgDn Home End   select a task",
	"  Enter          the selected task's detail (counters, parent, children,",
	"                 histograms, recent events); Esc or Backspace goes back",
	"  s  >   <       sort by the next / previous column;  r  reverse the order",
	"  /              filter by name or file:line (empty clears);  Esc cancels",
	"  d              show or hide finished tasks (kept --keep seconds)",
	"  space  p       pause / resume (events missed while paused count as lost)",
	"  h  ?           this help;  q  quit",
	"replay (--replay FILE): the screen at a time cursor of the recording",
	"  Right Left  . ,      the cursor forward / back by the refresh interval (-d)",
	"  ] [  Shift-arrows    forward / back by 0.1 s",
	"  Home End             the recording's start / end (not the selection)",
	"  w  W                 the longest poll: running (a live long-poll) / its end",
	"",
	"warnings (WARN column letters):",
	"  P long-poll      a poll >= --long-poll ms, live while it runs",
	"  L lost-waker     pending, no waker outstanding, not scheduled: never runs again",
	"  S self-wake      more than --self-wake % of its wakes are self-wakes",
	"  D sched-delay    woken but not polled for >= --sched-delay ms",
	"  B blocked-worker a worker stuck in one poll of this task >= --blocked ms",
	"",
	"any key returns",
};

static void draw(struct ui *u)
{
	top_app *a = u->a;
	erase();
	if (COLS < MIN_COLS || LINES < MIN_LINES) {
		mvprintw(0, 0, "terminal too small (%dx%d, need %dx%d)", COLS, LINES, MIN_COLS,
			 MIN_LINES);
		refresh();
		return;
	}
	draw_summary(u);
	int y0 = 2, rows = LINES - 3;
	switch (u->view) {
	case V_TASKS:
		draw_tasks(u, y0, rows);
		break;
	case V_WORKERS:
		draw_workers(u, y0, rows);
		break;
	case V_WARNINGS:
		draw_warnings(u, y0, rows);
		break;
	case V_DETAIL:
		draw_detail(u, y0, rows);
		break;
	case V_HELP:
		for (size_t i = 0; i < sizeof help_text / sizeof help_text[0] && (int)i < rows; i++)
			line_at(y0 + (int)i, 1, "%s", help_text[i]);
		break;
	}
	pen_on(C_TITLE, 0);
	if (u->editing)
		line_at(LINES - 1, 1, "filter: %s_", u->edit);
	else if (a->rp)
		line_at(LINES - 1, 1,
			"REPLAY t=%.3f s of %.3f s | %s | < > , . [ ] Home End w W move | sort %s%s "
			"| filter '%s' | h help  q quit",
			(double)replay_cursor(a->rp) / 1e9, (double)replay_end(a->rp) / 1e9,
			u->msg[0] ? u->msg : "paused", topm_cols[a->vo.sort_col].key,
			a->vo.reverse ? " rev" : "", a->filter);
	else
		line_at(LINES - 1, 1,
			"%s lost %llu%s | sort %s%s | filter '%s' | %s | h help  q quit",
			a->alive ? (a->paused ? "PAUSED" : "") : "target exited:",
			(unsigned long long)a->lost,
			a->table_stale ? " (table: no answer)" : "", topm_cols[a->vo.sort_col].key,
			a->vo.reverse ? " rev" : "", a->filter,
			a->vo.show_done ? "finished shown" : "finished hidden");
	pen_off();
	refresh();
}

/* ---- keys ---------------------------------------------------------------------------- */

static void edit_key(struct ui *u, int ch)
{
	if (ch == 27) {
		u->editing = 0;
	} else if (ch == '\n' || ch == KEY_ENTER) {
		snprintf(u->a->filter, sizeof u->a->filter, "%s", u->edit);
		u->editing = 0;
		u->sel = u->top = 0;
		u->sel_id = 0;
		top_rebuild(u->a);
	} else if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && u->edit_len) {
		u->edit[--u->edit_len] = 0;
	} else if (ch >= 32 && ch < 127 && u->edit_len + 1 < sizeof u->edit) {
		u->edit[u->edit_len++] = (char)ch;
		u->edit[u->edit_len] = 0;
	}
}

static void move_sel(struct ui *u, long d)
{
	long n = (long)u->a->nrows, s = (long)u->sel + d;
	if (s >= n)
		s = n - 1;
	if (s < 0)
		s = 0;
	u->sel = (size_t)s;
	u->sel_id = n ? u->a->rows[u->sel]->id : 0;
	/* Rows past the sorted head (vo.limit) are in no order: moving near
	 * them sorts further before they are shown. */
	topm_view_opts *vo = &u->a->vo;
	if (vo->limit && u->sel + 2 * (size_t)LINES >= vo->limit) {
		vo->limit = u->sel + 4 * (size_t)LINES + 256;
		top_rebuild(u->a);
		u->sel_id = u->a->nrows ? u->a->rows[u->sel]->id : 0;
	}
}

/* --replay: move the cursor to t; the model may be a new one (a move back
 * rebuilds it), so the detail's focus is set again. */
static void replay_to(struct ui *u, int64_t t)
{
	top_app *a = u->a;
	u->msg[0] = 0;
	if (top_replay_seek(a, t))
		snprintf(u->msg, sizeof u->msg, "read error: %s", replay_err(a->rp));
	if (u->view == V_DETAIL)
		topm_focus(a->m, u->detail_id);
	if (u->sel >= a->nrows)
		u->sel = a->nrows ? a->nrows - 1 : 0;
	u->sel_id = a->nrows ? a->rows[u->sel]->id : 0;
}

/* Where replay cursor key ch moves the cursor from *t: 1 and *t updated, 0
 * when ch is no cursor key. */
static int replay_target(struct ui *u, int ch, int64_t *t)
{
	top_app *a = u->a;
	int64_t step = (int64_t)a->interval_ns, fine = 100000000, w;
	switch (ch) {
	case KEY_RIGHT:
	case '.':
		*t += step;
		break;
	case KEY_LEFT:
	case ',':
		*t -= step;
		break;
	case KEY_SRIGHT:
	case ']':
		*t += fine;
		break;
	case KEY_SLEFT:
	case '[':
		*t -= fine;
		break;
	case KEY_HOME:
		*t = 0;
		break;
	case KEY_END:
		*t = replay_end(a->rp);
		break;
	case 'w':
	case 'W':
		if ((w = top_replay_worst(a, ch == 'W')) >= 0)
			*t = w;
		else
			snprintf(u->msg, sizeof u->msg, "no poll in this recording");
		break;
	default:
		return 0;
	}
	/* clamped here too, so that steps past an end do not add up */
	if (*t < 0)
		*t = 0;
	if (*t > replay_end(a->rp))
		*t = replay_end(a->rp);
	return 1;
}

/* The replay's cursor keys; 1 when ch was one. A move back rebuilds the
 * model from the start (slow on a big recording): the cursor keys typed
 * meanwhile are taken together, one move. */
static int replay_key(struct ui *u, int ch)
{
	int64_t t = replay_cursor(u->a->rp);
	if (!replay_target(u, ch, &t))
		return 0;
	timeout(0);
	for (int next; (next = getch()) != ERR;) {
		if (!replay_target(u, next, &t)) {
			ungetch(next);
			break;
		}
	}
	timeout(TOP_POLL_MS);
	if (t != replay_cursor(u->a->rp))
		replay_to(u, t);
	return 1;
}

/* Returns 1 to quit. */
static int key(struct ui *u, int ch)
{
	top_app *a = u->a;
	int page = LINES > 6 ? LINES - 5 : 1;
	if (u->editing) {
		edit_key(u, ch);
		return 0;
	}
	if (u->view == V_HELP) {
		u->view = u->back;
		return 0;
	}
	if (a->rp && replay_key(u, ch))
		return 0;
	switch (ch) {
	case 'q':
	case 'Q':
		return 1;
	case 'h':
	case '?':
	case KEY_F(1):
		u->back = u->view;
		u->view = V_HELP;
		break;
	case '\t':
		u->view = u->view == V_TASKS	 ? V_WORKERS
			  : u->view == V_WORKERS ? V_WARNINGS
						 : V_TASKS;
		break;
	case '1':
		u->view = V_TASKS;
		break;
	case '2':
		u->view = V_WORKERS;
		break;
	case '3':
		u->view = V_WARNINGS;
		break;
	case KEY_UP:
	case 'k':
		move_sel(u, -1);
		break;
	case KEY_DOWN:
	case 'j':
		move_sel(u, 1);
		break;
	case KEY_PPAGE:
		move_sel(u, -page);
		break;
	case KEY_NPAGE:
		move_sel(u, page);
		break;
	case KEY_HOME:
		move_sel(u, -(long)a->nrows);
		break;
	case KEY_END:
		move_sel(u, (long)a->nrows);
		break;
	case '\n':
	case KEY_ENTER:
		if (u->view == V_TASKS && a->nrows) {
			u->detail_id = a->rows[u->sel]->id;
			topm_focus(a->m, u->detail_id);
			u->view = V_DETAIL;
		}
		break;
	case 27:
	case KEY_BACKSPACE:
	case 127:
	case KEY_LEFT:
		if (u->view == V_DETAIL)
			u->view = V_TASKS;
		break;
	case 's':
	case '>':
		a->vo.sort_col = (a->vo.sort_col + 1) % TOPM_COL__COUNT;
		top_rebuild(a);
		break;
	case '<':
		a->vo.sort_col = (a->vo.sort_col + TOPM_COL__COUNT - 1) % TOPM_COL__COUNT;
		top_rebuild(a);
		break;
	case 'r':
		a->vo.reverse = !a->vo.reverse;
		top_rebuild(a);
		break;
	case '/':
		u->editing = 1;
		snprintf(u->edit, sizeof u->edit, "%s", a->filter);
		u->edit_len = strlen(u->edit);
		break;
	case 'd':
		a->vo.show_done = !a->vo.show_done;
		top_rebuild(a);
		break;
	case ' ':
	case 'p':
		a->paused = !a->paused;
		break;
	default:
		break;
	}
	return 0;
}

static int screen_start(void)
{
	if (!initscr())
		return -1;
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	set_escdelay(25);
	timeout(TOP_POLL_MS);
	return 0;
}

static void colors(int want)
{
	color_on = want && has_colors() && start_color() == OK;
	if (!color_on)
		return;
	use_default_colors();
	init_pair(C_HEAD, COLOR_CYAN, -1);
	init_pair(C_WARN, COLOR_RED, -1);
	init_pair(C_SEL, COLOR_BLACK, COLOR_CYAN);
	init_pair(C_TITLE, COLOR_BLACK, COLOR_GREEN);
	init_pair(C_DIM, COLOR_BLUE, -1);
	init_pair(C_GOOD, COLOR_GREEN, -1);
}

int top_view_run(top_app *a)
{
	struct ui u = {.a = a, .view = V_TASKS};
	/* the screen shows a head of the view: sort only that much */
	a->vo.limit = 4 * (size_t)(LINES > 0 ? LINES : 50) + 256;
	if (screen_start())
		return 2;
	if (COLS < MIN_COLS || LINES < MIN_LINES) {
		int c = COLS, l = LINES;
		endwin();
		fprintf(stderr, "spindle top: terminal too small (%dx%d, need at least %dx%d)\n", c,
			l, MIN_COLS, MIN_LINES);
		return 2;
	}
	colors(a->color);
	draw(&u);
	for (;;) {
		int ch = getch();
		if (ch != ERR) {
			if (ch != KEY_RESIZE && key(&u, ch))
				break;
			draw(&u);
			continue;
		}
		if (a->paused)
			continue;
		int was = a->alive;
		int due = spc_mono_ns() - a->last_tick >= a->interval_ns;
		top_sample(a, due);
		if (due || was != a->alive)
			draw(&u);
	}
	endwin();
	return 0;
}

int top_view_choose(const int *pids, char (*what)[96], int n)
{
	int sel = 0;
	if (screen_start())
		return -1;
	timeout(-1);
	if (COLS < 40 || LINES < n + 4) {
		endwin();
		return -1;
	}
	for (;;) {
		erase();
		mvaddstr(0, 0,
			 "spindle top: several spindle processes run; pick one (Enter, q quits)");
		for (int i = 0; i < n; i++) {
			if (i == sel)
				attron(A_REVERSE);
			mvaddnstr(2 + i, 0, what[i], COLS);
			attroff(A_REVERSE);
		}
		refresh();
		int ch = getch();
		if (ch == 'q' || ch == 27) {
			endwin();
			return 0;
		}
		if (ch == KEY_UP && sel > 0)
			sel--;
		if (ch == KEY_DOWN && sel + 1 < n)
			sel++;
		if (ch == '\n' || ch == KEY_ENTER) {
			endwin();
			return pids[sel];
		}
	}
}
