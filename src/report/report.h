/* report.h: the last stage of the flow: a run directory (summary.json and the CSV time
 * series of noether run) into figures (gnuplot, PNG and SVG) and report.html.  Part of
 * the command-line program, not of libnoether; it builds on libnoether and src/util only
 * (src/cli includes it, never the reverse). */
#ifndef NT_REPORT_H
#define NT_REPORT_H
#include <signal.h>
#include <stdio.h>
#include <cJSON.h>
#include "noether.h"

/* A CSV file with a header row, every field a number (empty or unparsable: NAN). */
typedef struct {
    int cols, rows;
    char **names;     /* column names, quotes removed */
    double *x;        /* rows x cols, row-major */
} report_table;

/* Reads dir/name; 0 when the file is absent or empty (t zeroed). */
int report_table_read(const char *dir, const char *name, report_table *t);
void report_table_free(report_table *t);
/* The column called name (-1 when absent); value of row r, column c. */
int report_col(const report_table *t, const char *name);
double report_at(const report_table *t, int r, int c);
/* 1 when column c has a finite value (and, when positive, a positive one). */
int report_col_has(const report_table *t, int c, int positive);

/* One figure of the report: its file stem under plots/, title and how to read it. */
typedef struct {
    char stem[32];
    char title[96];
    char caption[1024];
} report_figure;

/* Writes plots/plots.gp and runs gnuplot on it in dir: every figure as PNG and SVG.
 * Fills figs (room for 16) and *n_figs.  NT_EFAIL naming gnuplot's log when it fails.
 * stop (may be NULL): the command's stop flag, set to the signal by a SIGINT/SIGTERM
 * handler: gnuplot is then ended and 128 + the signal returned. */
int report_plots(const char *dir, const cJSON *summary, const volatile sig_atomic_t *stop, report_figure *figs,
                 int *n_figs, nt_error *err);
/* The plots, then report.html (self-contained but for the images beside it).  v: the run's
 * verdicts (nt_verdicts_decide on the facts of summary): the "At a glance" marks and which
 * of its rows are shown come from them, never from a threshold of the report's own. */
int report_build(const char *dir, const cJSON *summary, const nt_verdicts *v, const volatile sig_atomic_t *stop,
                 nt_error *err);
/* The closing lines of noether run / demo on stdout, with the same verdicts. */
void report_print_summary(FILE *f, const char *dir, const cJSON *summary, const nt_verdicts *v);
/* The eigenvalues symmetry predicts at a critical point of L_gamma (summary's flat view),
 * as text: "32 at 2 gamma, 17 at gamma" (gamma = 0: "49 at 0"). */
void report_critical_point(const cJSON *flat, char *buf, size_t cap);
/* Writes dir/name whole or not at all (temporary file, then rename). */
int report_write(const char *dir, const char *name, const char *text, nt_error *err);
#endif
