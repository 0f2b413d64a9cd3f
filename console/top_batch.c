/*
 * top_batch.c - `spindle top --batch`: the same model as the live console,
 * printed as plain-text snapshots (like `top -b`) for scripts and tests.
 * Each snapshot: a summary line, the workers, the warnings, the tasks; a
 * blank line ends it.
 */
#include <stdio.h>
#include <string.h>

#include "replay.h"
#include "top_app.h"

static void print_workers(top_app *a, FILE *f)
{
	char age[32];
	uint32_t inject = 0, inj;
	fprintf(f, "%-3s %6s %8s %9s %10s %6s %5s %-7s %8s %8s\n", "W", "BUSY%", "POLLS/S",
		"STEALS-IN", "STEALS-OUT", "PARKS", "QUEUE", "CURRENT", "POLLAGE", "TID");
	for (unsigned i = 0; i < topm_worker_count(a->m); i++) {
		const topm_worker *w = topm_worker_get(a->m, i);
		if (!w->present)
			continue;
		char cur[24] = "-";
		if (w->current)
			snprintf(cur, sizeof cur, "%llu", (unsigned long long)w->current);
		else if (w->parked)
			snprintf(cur, sizeof cur, "parked");
		if (w->current)
			topm_fmt_ns(topm_now(a->m) > w->poll_start ? topm_now(a->m) - w->poll_start
								   : 0,
				    age, sizeof age);
		else
			snprintf(age, sizeof age, "-");
		uint32_t depth;
		char q[16] = "-";
		if (a->s && spc_stream_worker_queue(a->s, (int)i, &depth, &inj) == 0) {
			snprintf(q, sizeof q, "%u", depth);
			inject = inj;
		}
		fprintf(f, "%-3u %6.1f %8.0f %9llu %10llu %6llu %5s %-7s %8s %8u\n", i, w->busy_pct,
			w->polls_per_s, (unsigned long long)w->steals_in,
			(unsigned long long)w->steals_out, (unsigned long long)w->parks, q, cur,
			age, w->tid);
	}
	fprintf(f, "injection queue: %u\n", inject);
}

static void print_warnings(top_app *a, FILE *f)
{
	size_t n, total;
	const topm_warning *w = topm_warnings(a->m, &n, &total);
	fprintf(f, "WARNINGS (%zu)\n", total);
	for (size_t i = 0; i < n; i++) {
		char text[200];
		topm_task *t = topm_task_get(a->m, w[i].task);
		const topm_site *s = topm_site_get(a->m, t ? t->site : SP_SITE_NONE);
		topm_warning_text(a->m, &w[i], text, sizeof text);
		fprintf(f, "  %-14s %-4s task %llu %s: %s\n", topm_warn_name(w[i].kind),
			w[i].live ? "NOW" : "was", (unsigned long long)w[i].task, s->name, text);
	}
}

static void print_tasks(top_app *a, FILE *f)
{
	char cell[128];
	for (int c = 0; c < TOPM_COL__COUNT; c++) {
		int wd = topm_cols[c].width;
		fprintf(f, "%*s%s", wd, topm_cols[c].title, c + 1 < TOPM_COL__COUNT ? " " : "\n");
	}
	for (size_t r = 0; r < a->nrows; r++) {
		for (int c = 0; c < TOPM_COL__COUNT; c++) {
			int wd = topm_cols[c].width;
			topm_cell(a->m, a->rows[r], c, cell, sizeof cell);
			fprintf(f, "%*s%s", wd, cell, c + 1 < TOPM_COL__COUNT ? " " : "\n");
		}
	}
}

void top_batch_print(top_app *a, FILE *f)
{
	size_t live, done;
	char up[32];
	topm_task_count(a->m, &live, &done);
	topm_fmt_ns(topm_now(a->m) - a->start_ns, up, sizeof up);
	if (a->rp)
		fprintf(f,
			"spindle top - REPLAY t=%.3f s of %.3f s  %s (pid %d, %s)  tasks %zu live, "
			"%zu done  workers %u  events %llu (%llu/s)\n",
			(double)replay_cursor(a->rp) / 1e9, (double)replay_end(a->rp) / 1e9,
			a->replay_path, a->pid, a->comm, live, done, topm_worker_count(a->m),
			(unsigned long long)topm_events_seen(a->m), (unsigned long long)a->ev_rate);
	else
		fprintf(f,
			"spindle top - pid %d (%s)  watched %s  tasks %zu live, %zu done  "
			"workers %u  events %llu (%llu/s)  lost %llu  target %s%s\n",
			a->pid, a->comm, up, live, done, topm_worker_count(a->m),
			(unsigned long long)topm_events_seen(a->m), (unsigned long long)a->ev_rate,
			(unsigned long long)a->lost, a->alive ? "running" : "exited",
			a->table_stale ? "  (task table: no answer, as last written)" : "");
	fprintf(f, "sort %s%s%s%s\n\n", topm_cols[a->vo.sort_col].key,
		a->vo.reverse ? " reversed" : "", a->filter[0] ? "  filter " : "", a->filter);
	print_workers(a, f);
	fputc('\n', f);
	print_warnings(a, f);
	fputc('\n', f);
	print_tasks(a, f);
	fputc('\n', f);
	fflush(f);
}
