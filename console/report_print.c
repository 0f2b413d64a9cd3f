/*
 * report_print.c - rendering spr_findings (report.h) as text for people and
 * as JSON for tools. The JSON object's keys mirror the struct's sections.
 */
#include <stdio.h>
#include <string.h>

#include "report.h"

static double ms(int64_t ns)
{
	return (double)ns / 1e6;
}

static double sec(int64_t ns)
{
	return (double)ns / 1e9;
}

static const char *base(const char *file)
{
	/* Spawn files are as the compiler saw them; keep the last two parts. */
	const char *p = strrchr(file, '/');
	if (!p)
		return file;
	const char *q = p;
	while (q > file && q[-1] != '/')
		q--;
	return q > file ? q : p + 1;
}

static void stall_text(FILE *o, const spr_stall *s)
{
	fprintf(o, "  %s task %lld '%s' (%s:%lld): ", s->flagged ? "!!" : "  ", (long long)s->task,
		s->site.name, base(s->site.file), (long long)s->site.line);
	switch (s->reason) {
	case SPR_LOST_WAKER:
		fprintf(o,
			"LOST WAKER - pending since t=%.3f s for %.1f ms%s, %lld poll%s, no "
			"waker outstanding (%lld clones, %lld drops, %lld by-value wakes): "
			"nothing can wake it\n",
			sec(s->since), ms(s->quiet_ns), s->aborted ? " until aborted" : "",
			(long long)s->polls, s->polls == 1 ? "" : "s", (long long)s->clones,
			(long long)s->drops, (long long)s->consumed);
		break;
	case SPR_WAITING:
		fprintf(o, "waiting on the %s", spr_holder_name(s->holder));
		if (s->holder == 1)
			fprintf(o, " (fd %lld never became ready)", (long long)s->detail);
		else if (s->holder == 2)
			fprintf(o, " (the timer never fired)");
		fprintf(o, " - pending since t=%.3f s for %.1f ms%s\n", sec(s->since),
			ms(s->quiet_ns), s->aborted ? " until aborted" : "");
		break;
	case SPR_WOKEN_NOT_POLLED:
		fprintf(o, "WOKEN BUT NEVER POLLED - runnable since t=%.3f s for %.1f ms\n",
			sec(s->since), ms(s->quiet_ns));
		break;
	}
}

/* The tracer's detail (db_schema.h warnings): "; "-separated parts, the
 * headline first and the fix last. The length of the headline. */
static int headline(const char *d)
{
	const char *p = strstr(d, "; ");
	return p ? (int)(p - d) : (int)strlen(d);
}

static void tracer_text(FILE *o, const spr_warning *w)
{
	const char *d = w->detail;
	int n = headline(d);
	fprintf(o, "  !! t=%.3f s task %lld '%s' long poll %.1f ms: %.*s\n", sec(w->ts),
		(long long)w->task, w->site.name, w->dur > 0 ? ms(w->dur) : 0.0, n, d);
	d += n;
	while (*d) {
		d += 2; /* "; " */
		n = headline(d);
		fprintf(o, "       %.*s\n", n, d);
		d += n;
	}
}

void spr_print_text(FILE *o, const spr_findings *f, const char *path)
{
	fprintf(o, "spindle report: %s\n", path);
	fprintf(o, "  command  %s%s\n", f->command, f->synthetic ? " (synthetic)" : "");
	fprintf(o,
		"  pid %lld, %.3f s recorded%s, %lld workers, %lld tasks, %lld polls, %lld "
		"wakes, %lld events lost\n",
		(long long)f->pid, sec(f->t_end - f->t_begin),
		f->finished ? "" : " (recorder did not finish)", (long long)f->workers,
		(long long)f->tasks, (long long)f->polls, (long long)f->wakes, (long long)f->lost);
	if (f->rings_off)
		fprintf(o, "  (the event rings were off: the eBPF tracer's findings only; run the "
			   "target with SPINDLE_TRACE=1 to record its polls and wakes too)\n");
	if (f->lost)
		fprintf(o, "  (events were lost: the counts below may fall short; record with "
			   "larger rings, 'spindle record --ring 256k -- CMD')\n");

	fprintf(o, "\nSTALLED TASKS\n");
	if (!f->nstalls)
		fprintf(o, "  none\n");
	for (size_t i = 0; i < f->nstalls; i++)
		stall_text(o, &f->stalls[i]);

	fprintf(o, "\nLONG POLLS (%zu at or over the threshold", f->nlong_total);
	fprintf(o, f->nlong_total > f->nlong ? "; the %zu longest)\n" : ")\n", f->nlong);
	if (!f->nlong)
		fprintf(o, "  none\n");
	for (size_t i = 0; i < f->nlong; i++) {
		const spr_long_poll *l = &f->long_polls[i];
		fprintf(o, "  !! %8.1f ms  task %lld '%s' (%s:%lld) on worker %lld at t=%.3f s\n",
			ms(l->dur), (long long)l->task, l->site.name, base(l->site.file),
			(long long)l->site.line, (long long)l->worker, sec(l->start));
		if (l->tracer) {
			int n = headline(l->tracer);
			fprintf(o, "       tracer: %.*s\n", n, l->tracer);
		}
		for (unsigned k = 0; k < l->nvictims; k++)
			fprintf(o, "       delayed task %lld '%s' by %.1f ms%s\n",
				(long long)l->victims[k].task, l->victims[k].site.name,
				ms(l->victims[k].delay_ns),
				l->victims[k].timer ? " (its timer was due during the poll)" : "");
	}

	fprintf(o, "\nSCHEDULING DELAY (wake to poll, per task name)\n");
	fprintf(o, "     %-20s %10s %9s %9s %9s %9s\n", "name", "polls", "p50 ms", "p90 ms",
		"p99 ms", "max ms");
	for (size_t i = 0; i < f->ndelays; i++) {
		const spr_delay *d = &f->delays[i];
		fprintf(o, "  %s %-20s %10llu %9.3f %9.3f %9.3f %9.3f\n", d->flagged ? "!!" : "  ",
			d->site.name, (unsigned long long)d->polls, ms(d->p50), ms(d->p90),
			ms(d->p99), ms(d->max));
	}

	fprintf(o, "\nWORKERS\n     %6s %10s %7s %8s %8s %8s %10s\n", "worker", "polls", "busy",
		"steals", "stolen", "parks", "parked ms");
	for (size_t i = 0; i < f->nworkers; i++) {
		const spr_worker *w = &f->workers_v[i];
		fprintf(o, "     %6lld %10lld %6.1f%% %8lld %8lld %8lld %10.1f\n",
			(long long)w->worker, (long long)w->polls, w->util * 100,
			(long long)w->steals, (long long)w->stolen, (long long)w->parks,
			ms(w->park_ns));
	}

	if (f->nselfwakes) {
		fprintf(o, "\nSELF-WAKE HEAVY TASKS (busy yield loops)\n");
		for (size_t i = 0; i < f->nselfwakes; i++) {
			const spr_selfwake *s = &f->selfwakes[i];
			fprintf(o, "  !! task %lld '%s' (%s:%lld): %lld of %lld polls self-woken\n",
				(long long)s->task, s->site.name, base(s->site.file),
				(long long)s->site.line, (long long)s->self_wakes,
				(long long)s->polls);
		}
	}
	size_t ntracer = 0;
	for (size_t i = 0; i < f->nwarnings; i++)
		ntracer += f->warnings[i].tracer;
	if (ntracer) {
		fprintf(o, "\nTRACER FINDINGS (eBPF, spindle trace: %zu long poll%s)\n", ntracer,
			ntracer == 1 ? "" : "s");
		for (size_t i = 0; i < f->nwarnings; i++)
			if (f->warnings[i].tracer)
				tracer_text(o, &f->warnings[i]);
	}
	if (f->nwarnings > ntracer) {
		fprintf(o, "\nWARNINGS (from other tools)\n");
		for (size_t i = 0; i < f->nwarnings; i++) {
			const spr_warning *w = &f->warnings[i];
			if (w->tracer)
				continue;
			char task[32] = "";
			if (w->task != SPR_NONE)
				snprintf(task, sizeof task, " task %lld", (long long)w->task);
			fprintf(o, "  !! t=%.3f s %s%s %.1f ms: %s [%s]\n", sec(w->ts), w->kind,
				task, w->dur > 0 ? ms(w->dur) : 0.0, w->detail, w->source);
		}
	}
	fprintf(o, "\n%s\n",
		f->flagged ? "verdict: problems found (marked !!)" : "verdict: nothing flagged");
}

/* ---- JSON ---------------------------------------------------------------------- */

/* An integer, or null for SPR_NONE. */
static void jint(FILE *o, int64_t v)
{
	if (v == SPR_NONE)
		fprintf(o, "null");
	else
		fprintf(o, "%lld", (long long)v);
}

static void jstr(FILE *o, const char *s)
{
	fputc('"', o);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(o, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(o, "\\u%04x", *p);
		else
			fputc(*p, o);
	}
	fputc('"', o);
}

static void jsite(FILE *o, const spr_site *s)
{
	fprintf(o, "\"name\": ");
	jstr(o, s->name);
	fprintf(o, ", \"file\": ");
	jstr(o, s->file);
	fprintf(o, ", \"line\": %lld", (long long)s->line);
}

static const char *const reasons[] = {"lost_waker", "waiting", "woken_not_polled"};

void spr_print_json(FILE *o, const spr_findings *f, const char *path)
{
	fprintf(o, "{\"file\": ");
	jstr(o, path);
	fprintf(o, ", \"command\": ");
	jstr(o, f->command);
	fprintf(o,
		", \"pid\": %lld, \"duration_ns\": %lld, \"finished\": %s, \"workers\": %lld, "
		"\"tasks\": %lld, \"polls\": %lld, \"wakes\": %lld, \"lost\": %lld, "
		"\"flagged\": %s,\n",
		(long long)f->pid, (long long)(f->t_end - f->t_begin),
		f->finished ? "true" : "false", (long long)f->workers, (long long)f->tasks,
		(long long)f->polls, (long long)f->wakes, (long long)f->lost,
		f->flagged ? "true" : "false");
	fprintf(o, " \"stalled\": [");
	for (size_t i = 0; i < f->nstalls; i++) {
		const spr_stall *s = &f->stalls[i];
		fprintf(o, "%s\n  {\"task\": %lld, ", i ? "," : "", (long long)s->task);
		jsite(o, &s->site);
		fprintf(o, ", \"reason\": \"%s\", \"holder\": ", reasons[s->reason]);
		if (s->reason == SPR_WAITING)
			jstr(o, spr_holder_name(s->holder));
		else
			fprintf(o, "null");
		fprintf(o,
			", \"detail\": %lld, \"since_ns\": %lld, \"stalled_ns\": %lld, "
			"\"polls\": %lld, \"clones\": %lld, \"drops\": %lld, \"consumed\": %lld, "
			"\"aborted\": %s, \"flagged\": %s}",
			(long long)s->detail, (long long)s->since, (long long)s->quiet_ns,
			(long long)s->polls, (long long)s->clones, (long long)s->drops,
			(long long)s->consumed, s->aborted ? "true" : "false",
			s->flagged ? "true" : "false");
	}
	fprintf(o, "],\n \"long_polls_total\": %zu, \"long_polls\": [", f->nlong_total);
	for (size_t i = 0; i < f->nlong; i++) {
		const spr_long_poll *l = &f->long_polls[i];
		fprintf(o, "%s\n  {\"task\": %lld, ", i ? "," : "", (long long)l->task);
		jsite(o, &l->site);
		fprintf(o, ", \"worker\": %lld, \"start_ns\": %lld, \"dur_ns\": %lld, \"tracer\": ",
			(long long)l->worker, (long long)l->start, (long long)l->dur);
		if (l->tracer)
			jstr(o, l->tracer);
		else
			fprintf(o, "null");
		fprintf(o, ", \"victims\": [");
		for (unsigned k = 0; k < l->nvictims; k++) {
			fprintf(o, "%s{\"task\": %lld, \"name\": ", k ? ", " : "",
				(long long)l->victims[k].task);
			jstr(o, l->victims[k].site.name);
			fprintf(o, ", \"delay_ns\": %lld%s}", (long long)l->victims[k].delay_ns,
				l->victims[k].timer ? ", \"timer\": true" : "");
		}
		fprintf(o, "]}");
	}
	fprintf(o, "],\n \"sched_delay\": [");
	for (size_t i = 0; i < f->ndelays; i++) {
		const spr_delay *d = &f->delays[i];
		fprintf(o, "%s\n  {\"name\": ", i ? "," : "");
		jstr(o, d->site.name);
		fprintf(o,
			", \"polls\": %llu, \"p50_ns\": %lld, \"p90_ns\": %lld, \"p99_ns\": %lld, "
			"\"max_ns\": %lld, \"flagged\": %s}",
			(unsigned long long)d->polls, (long long)d->p50, (long long)d->p90,
			(long long)d->p99, (long long)d->max, d->flagged ? "true" : "false");
	}
	fprintf(o, "],\n \"workers\": [");
	for (size_t i = 0; i < f->nworkers; i++) {
		const spr_worker *w = &f->workers_v[i];
		fprintf(o,
			"%s\n  {\"worker\": %lld, \"polls\": %lld, \"busy_ns\": %lld, "
			"\"utilisation\": %.4f, \"steals\": %lld, \"stolen\": %lld, "
			"\"parks\": %lld, \"parked_ns\": %lld}",
			i ? "," : "", (long long)w->worker, (long long)w->polls,
			(long long)w->busy_ns, w->util, (long long)w->steals, (long long)w->stolen,
			(long long)w->parks, (long long)w->park_ns);
	}
	fprintf(o, "],\n \"self_wake_heavy\": [");
	for (size_t i = 0; i < f->nselfwakes; i++) {
		const spr_selfwake *s = &f->selfwakes[i];
		fprintf(o, "%s\n  {\"task\": %lld, ", i ? "," : "", (long long)s->task);
		jsite(o, &s->site);
		fprintf(o, ", \"polls\": %lld, \"self_wakes\": %lld}", (long long)s->polls,
			(long long)s->self_wakes);
	}
	fprintf(o, "],\n \"warnings\": [");
	for (size_t i = 0; i < f->nwarnings; i++) {
		const spr_warning *w = &f->warnings[i];
		fprintf(o, "%s\n  {\"ts_ns\": %lld, \"kind\": ", i ? "," : "", (long long)w->ts);
		jstr(o, w->kind);
		fprintf(o, ", \"task\": ");
		jint(o, w->task);
		fprintf(o, ", \"dur_ns\": ");
		jint(o, w->dur);
		fprintf(o, ", \"detail\": ");
		jstr(o, w->detail);
		fprintf(o, ", \"source\": ");
		jstr(o, w->source);
		fprintf(o, ", \"task_name\": ");
		jstr(o, w->site.name);
		fprintf(o, ", \"tracer\": %s}", w->tracer ? "true" : "false");
	}
	fprintf(o, "]}\n");
}
