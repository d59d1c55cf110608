/* plot.h: what the report's figure files share (internal to src/report): the plotter that
 * collects gnuplot scripts, one figure's registration, and the axis scaling of axes.c. */
#ifndef NT_REPORT_PLOT_H
#define NT_REPORT_PLOT_H
#include "report.h"
#include "../util/buf.h"

typedef struct {
    nt_buf gp;        /* plots/plots.gp, for the reader: the figures under their names */
    nt_buf run;       /* what gnuplot runs here: the same into *.part files */
    report_figure *figs;
    int n;
    const volatile sig_atomic_t *stop;   /* may be NULL: nonzero (the signal) when the command is asked to stop */
} plotter;

/* One figure: body (gnuplot commands) drawn to plots/<stem>.png and .svg; height 0: the default. */
void report_figure_add(plotter *p, const char *stem, const char *title, const char *caption, const char *body,
                       int height);
/* The finite values of columns cols (negative ones skipped) from row from_row on: *v malloc'd. */
void report_values(const report_table *t, const int *cols, int n_cols, int from_row, double **v, int *n);
/* Chooses the scale of axis ("x", "y", "y2") for the values v and writes its commands into b:
 * log, symmetric log or linear with few round ticks.  Returns the scale's name, for a label. */
const char *report_axis(nt_buf *b, const char *axis, const double *v, int n);
/* At most max_tics ticks at a round step on a linear axis. */
void report_linear_tics(nt_buf *b, const char *axis, double lo, double hi, int max_tics);

/* The figures of plots_symmetry.c: distances to the fixed-point sets, one panel per kind of
 * discrete symmetry; the normalized margin and |theta|^2 of a homogeneous model. */
void report_distance_figure(plotter *p, const report_table *L);
void report_margin_figure(plotter *p, const report_table *L);
#endif
