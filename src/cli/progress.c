/* progress.c: the library's progress reports (nt_progress) printed on stderr, the rule of
 * docs/interface.md ("Progress"): nothing for a phase until it has run `delay` seconds (2);
 * then on a terminal one line rewritten at most 4 times a second, otherwise a line every
 * `every` seconds (10), each with the units done, the total and the time left at the rate so
 * far (the ETA; a count and a rate where the total is not known in advance), and a closing
 * line with the phase's time.  NOETHER_PROGRESS=off prints nothing; NOETHER_PROGRESS=S sets
 * both delay and every to S seconds (0: every report, for tests). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

void cli_progress_init(cli_progress *p, const char *cmd, int quiet)
{
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->tty = isatty(2);
    p->delay = 2;
    p->every = p->tty ? 0.25 : 10;
    const char *env = getenv("NOETHER_PROGRESS");
    p->off = quiet || (env && !strcmp(env, "off"));
    if (env && strcmp(env, "off")) {
        char *end;
        double s = strtod(env, &end);
        if (end != env && s >= 0) p->delay = p->every = s;
    }
}

/* the line of a phase: "noether CMD: PHASE  done/total  ETA 12 s" */
static void print_line(cli_progress *p, int64_t done, int64_t total, double now)
{
    const double t = now - p->start;
    fprintf(stderr, "%snoether %s: %s  %lld", p->tty ? "\r" : "", p->cmd, p->phase, (long long)done);
    if (total > 0) {
        fprintf(stderr, "/%lld", (long long)total);
        if (done >= total) fprintf(stderr, "  done in %.1f s", t);
        else if (done > 0) fprintf(stderr, "  %.0f s left", t / (double)done * (double)(total - done));
    } else {
        fprintf(stderr, "  (%.1f/s; no total known in advance)", t > 0 ? (double)done / t : 0.0);
    }
    fputs(p->tty ? "   " : "\n", stderr);
    p->open = p->tty;
    p->last = now;
}

void cli_progress_end_line(cli_progress *p)
{
    if (p->open) fputc('\n', stderr);
    p->open = 0;
}

static void report(void *ctx, const char *phase, int64_t done, int64_t total)
{
    cli_progress *p = ctx;
    const double now = cli_now();
    if (done == 0 || strncmp(p->phase, phase, sizeof p->phase - 1)) {   /* a phase starts (again) */
        cli_progress_end_line(p);
        snprintf(p->phase, sizeof p->phase, "%s", phase);
        p->start = now;
        p->shown = 0;
    }
    const int ended = total > 0 && done >= total;
    if (now - p->start < p->delay && !(ended && p->shown)) return;
    if (!ended && p->shown && now - p->last < p->every) return;
    print_line(p, done, total, now);
    p->shown = 1;
    if (ended) cli_progress_end_line(p);
}

nt_progress cli_progress_hook(cli_progress *p)
{
    return (nt_progress){ .fn = p->off ? NULL : report, .ctx = p };
}
