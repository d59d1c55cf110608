/* plots.c: the figures of the report, drawn by gnuplot (pngcairo and svg terminals) from
 * the CSV files of the run directory: loss and accuracy; the ledger's quantities measured
 * against their ledger prediction and the gradient-flow law (docs/theory.md (F2), (F3)) and the
 * gaps of both over training; distances to fixed-point sets; the Ritz values at both ends
 * over training; the identities' worst residual; gradient alignment; the radial curvature
 * of a homogeneous model beside its closed form; the final spectral density with the
 * predicted flat count; the S_n sector spectra.  A figure whose data are absent (a
 * regression has no accuracy, a model without discrete symmetries no distances) is left
 * out rather than drawn empty.
 * Durable: gnuplot draws into plots/<stem>.<ext>.part (a script of its own, beside the
 * plots.gp kept for the reader); each file is checked whole (PNG to its IEND chunk, SVG to
 * </svg>) and only then renamed into place, so a full disk or a kill never leaves a
 * truncated figure.  gnuplot dies with noether (PR_SET_PDEATHSIG) and is ended when a
 * SIGINT/SIGTERM stops the command (its stop flag, given to report_plots). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include "plot.h"

#define W 900
#define H 560

static const char preamble[] =
    "set datafile separator ','\n"
    "set datafile missing ''\n"
    "set grid lc rgb '#dddddd' lw 1\n"
    "set border lc rgb '#444444'\n"
    "set key box opaque samplen 2 spacing 1.1\n"
    "set linetype 1 lc rgb '#1f77b4' lw 2 pt 7 ps 0.6\n"
    "set linetype 2 lc rgb '#d62728' lw 2 pt 5 ps 0.6\n"
    "set linetype 3 lc rgb '#2ca02c' lw 2 pt 9 ps 0.7\n"
    "set linetype 4 lc rgb '#ff7f0e' lw 2 pt 11 ps 0.7\n"
    "set linetype 5 lc rgb '#9467bd' lw 2 pt 13 ps 0.7\n"
    "set linetype 6 lc rgb '#8c564b' lw 2 pt 3 ps 0.7\n"
    "set linetype 7 lc rgb '#e377c2' lw 2\n"
    "set linetype 8 lc rgb '#7f7f7f' lw 2\n"
    "set linetype cycle 8\n";

/* one figure: the body drawn twice, to PNG and to SVG */
void report_figure_add(plotter *p, const char *stem, const char *title, const char *caption, const char *body,
                       int height)
{
    const int h = height > 0 ? height : H;
    report_figure *f = &p->figs[p->n++];
    snprintf(f->stem, sizeof f->stem, "%s", stem);
    snprintf(f->title, sizeof f->title, "%s", title);
    snprintf(f->caption, sizeof f->caption, "%s", caption);
    for (int k = 0; k < 2; k++) {
        nt_buf *b = k ? &p->run : &p->gp;
        const char *part = k ? ".part" : "";
        nt_buf_printf(b, "\n# ---- %s\nreset session\n%s", stem, preamble);
        nt_buf_printf(b, "set terminal pngcairo size %d,%d enhanced font 'DejaVu Sans,11' background rgb 'white'\n"
                      "set output 'plots/%s.png%s'\n%s\nunset multiplot\nset output\n", W, h, stem, part, body);
        nt_buf_printf(b, "set terminal svg size %d,%d enhanced font 'DejaVu Sans,11' background rgb 'white'\n"
                      "set output 'plots/%s.svg%s'\n%s\nunset multiplot\nset output\n", W, h, stem, part, body);
    }
}

static void loss_figure(plotter *p, const report_table *L)
{
    int st = report_col(L, "step"), lo = report_col(L, "loss"), tl = report_col(L, "test_loss"),
        ac = report_col(L, "accuracy"), ta = report_col(L, "test_accuracy");
    nt_buf b = {0};
    int pos = report_col_has(L, lo, 1) && (!report_col_has(L, tl, 0) || report_col_has(L, tl, 1));
    nt_buf_printf(&b, "set title 'Loss and accuracy'\nset xlabel 'step'\nset ylabel 'loss (mean over samples)%s'\n"
                   "%s\nset bmargin 7\nset xlabel offset 0,0.6\nset key at screen 0.5, screen 0.01 center bottom horizontal maxrows 1\n",
                   pos ? ", log scale" : "", pos ? "set logscale y" : "");
    int acc = report_col_has(L, ac, 0);
    if (acc) nt_buf_printf(&b, "set y2label 'accuracy'\nset y2range [0:1.02]\nset y2tics 0.1\nset ytics nomirror\n");
    nt_buf_printf(&b, "plot 'ledger.csv' every ::1 using %d:%d with lines lt 1 title 'training loss'", st + 1, lo + 1);
    if (report_col_has(L, tl, 0)) nt_buf_printf(&b, ", '' every ::1 using %d:%d with lines lt 2 title 'test loss'", st + 1, tl + 1);
    if (acc) nt_buf_printf(&b, ", '' every ::1 using %d:%d axes x1y2 with lines lt 3 dt 2 title 'training accuracy'", st + 1, ac + 1);
    if (acc && report_col_has(L, ta, 0))
        nt_buf_printf(&b, ", '' every ::1 using %d:%d axes x1y2 with lines lt 4 dt 2 title 'test accuracy'", st + 1, ta + 1);
    report_figure_add(p, "loss", "Loss and accuracy",
           "The training loss L(&theta;) at each logged step's &theta;: the mean loss over the whole training set, weight "
           "decay's term excluded (ledger.csv's loss_gamma column has L<sub>&gamma;</sub> = L + (&gamma;/2)|&theta;|&sup2;) and, "
           "where the spec holds out a test set, the test loss; accuracy on the right axis for classifiers.",
           b.s, 0);
    free(b.s);
}

/* the quantities whose gradient-flow law broke most, relative to their size (those of
 * round-off size, like an unbroken translation's, left out): up to four panels */
static void ledger_figure(plotter *p, const report_table *L, const cJSON *summary)
{
    const cJSON *per = cJSON_GetObjectItem(cJSON_GetObjectItem(summary, "ledger"), "per_quantity"), *it;
    int n = cJSON_GetArraySize(per), pick[4], np = 0, idx = 0;
    double *score = malloc(sizeof(double) * (n + 1)), big = 0;
    cJSON_ArrayForEach(it, per)
        big = fmax(big, fabs(cJSON_GetObjectItem(it, "initial")->valuedouble) + fabs(cJSON_GetObjectItem(it, "measured")->valuedouble));
    cJSON_ArrayForEach(it, per) {
        double a = cJSON_GetObjectItem(it, "initial")->valuedouble, m = cJSON_GetObjectItem(it, "measured")->valuedouble,
               f = cJSON_GetObjectItem(it, "gradient_flow")->valuedouble, size = fabs(a) + fabs(m);
        score[idx++] = size > 1e-8 * big ? fabs(m - f) / size : -1;
    }
    for (; np < 4 && np < n; np++) {   /* the four largest scores */
        int best = -1;
        for (int j = 0; j < n; j++)
            if (score[j] >= 0 && (best < 0 || score[j] > score[best])) best = j;
        if (best < 0) break;
        pick[np] = best;
        score[best] = -1;
    }
    free(score);
    if (n == 0 || np == 0) return;
    nt_buf b = {0};
    int st = report_col(L, "step");
    /* one legend for all panels, below them; few ticks per small panel */
    nt_buf_printf(&b, "set multiplot layout %d,%d title 'Conserved or tracked quantities: measured, ledger, gradient flow' "
                   "margins 0.11,0.97,%.2f,0.90 spacing 0.12,0.14\nset xlabel 'step' offset 0,0.3\n"
                   "set key at screen 0.5, screen 0.01 center bottom horizontal maxrows 1\n",
                   np > 2 ? 2 : 1, np > 1 ? 2 : 1, np > 2 ? 0.13 : 0.2);
    report_linear_tics(&b, "x", report_at(L, 0, st), report_at(L, L->rows - 1, st), 5);
    for (int k = 0; k < np; k++) {
        const char *name = cJSON_GetObjectItem(cJSON_GetArrayItem(per, pick[k]), "name")->valuestring;
        char col[160];
        snprintf(col, sizeof col, "%s:measured", name);
        int cm = report_col(L, col);
        snprintf(col, sizeof col, "%s:predicted", name);
        int cp = report_col(L, col);
        snprintf(col, sizeof col, "%s:gradient_flow", name);
        int cf = report_col(L, col);
        if (cm < 0 || cp < 0 || cf < 0) continue;
        int every = L->rows > 40 ? L->rows / 20 : 1, three[3] = {cm, cp, cf}, nv;
        double *v, lo = INFINITY, hi = -INFINITY;
        report_values(L, three, 3, 0, &v, &nv);
        for (int i = 0; i < nv; i++) { lo = fmin(lo, v[i]); hi = fmax(hi, v[i]); }
        free(v);
        report_linear_tics(&b, "y", lo, hi, 5);
        nt_buf_printf(&b, "%sset title '%s' noenhanced font ',10'\nset ylabel 'Q'\n"
                       "plot 'ledger.csv' every ::1 using %d:%d with lines lt 1 title 'measured', "
                       "'' every %d::1 using %d:%d with points lt 2 title 'ledger (F3)', "
                       "'' every ::1 using %d:%d with lines lt 3 dt 2 title 'gradient flow (F2)'\n",
                       k ? "unset key\n" : "", name, st + 1, cm + 1, every, st + 1, cp + 1, st + 1, cf + 1);
    }
    report_figure_add(p, "ledger", "Conserved and broken quantities",
           "Each panel is one quantity Q = &theta;<sup>T</sup>A&theta;/2 + c<sup>T</sup>&theta; of a continuous "
           "symmetry (the ones that moved most, relative to their size). Solid: Q measured on the parameters. "
           "Points: the ledger's prediction, which adds up the first-order, weight-decay and finite-step terms of "
           "every step actually taken (docs/theory.md (F3)); it must lie on the solid line. Dashed: the gradient-flow "
           "law (F2) at t = lr &middot; steps: Q(0) e<sup>&minus;2&gamma;t</sup> for a symmetry with c = 0, "
           "Q(0) e<sup>&minus;&gamma;t</sup> for a shift (with R &ne; 0 the decay exact and the R integral along "
           "the run); where it parts from the solid line, the finite learning rate (and batch noise, and for "
           "momentum or Adam the optimizer itself) broke the law gradient flow would keep.",
           b.s, np > 2 ? 680 : 0);
    free(b.s);
}

/* the largest relative gap over all quantities, ledger and gradient-flow law, per step */
static void gaps_figure(plotter *p, const char *dir, const report_table *L, const cJSON *summary)
{
    const cJSON *per = cJSON_GetObjectItem(cJSON_GetObjectItem(summary, "ledger"), "per_quantity"), *it;
    int nq = cJSON_GetArraySize(per), st = report_col(L, "step");
    if (nq == 0 || L->rows < 2) return;
    int *cm = malloc(sizeof(int) * 3 * nq), j = 0;
    cJSON_ArrayForEach(it, per) {
        char col[160];
        const char *sfx[3] = {"measured", "predicted", "gradient_flow"};
        for (int s = 0; s < 3; s++) {
            snprintf(col, sizeof col, "%s:%s", cJSON_GetObjectItem(it, "name")->valuestring, sfx[s]);
            cm[3 * j + s] = report_col(L, col);
        }
        j++;
    }
    /* each quantity's scale: the ledger's own (summary's per_quantity size: the largest
     * magnitude of Q's terms plus the sum of |step terms|, the denominator of max_gap), so
     * that the figure, ledger_gaps.csv and max_gap share one definition; a summary without
     * it (written before it was added): the largest |Q| measured */
    double *scale = malloc(sizeof(double) * nq);
    j = 0;
    cJSON_ArrayForEach(it, per) {
        const cJSON *sz = cJSON_GetObjectItem(it, "size");
        scale[j] = cJSON_IsNumber(sz) ? sz->valuedouble : 0;
        for (int r = 0; r < L->rows && !cJSON_IsNumber(sz) && cm[3 * j] >= 0; r++)
            scale[j] = fmax(scale[j], fabs(report_at(L, r, cm[3 * j])));
        j++;
    }
    int zeros = 0;
    nt_buf csv = {0};
    nt_buf_printf(&csv, "step,ledger_gap,gradient_flow_gap\n");
    for (int r = 0; r < L->rows; r++) {
        double gl = 0, gf = 0;
        for (j = 0; j < nq; j++) {
            if (cm[3 * j] < 0) continue;
            double sc = fmax(scale[j], 1e-300), m = report_at(L, r, cm[3 * j]);
            gl = fmax(gl, fabs(m - report_at(L, r, cm[3 * j + 1])) / sc);
            gf = fmax(gf, fabs(m - report_at(L, r, cm[3 * j + 2])) / sc);
        }
        zeros |= gl == 0 || gf == 0;
        nt_buf_printf(&csv, "%.17g,%.6e,%.6e\n", report_at(L, r, st), gl, gf);
    }
    nt_error err;
    int bad = report_write(dir, "ledger_gaps.csv", csv.s, &err);
    free(csv.s);
    free(cm);
    free(scale);
    if (bad) return;
    /* exact zeros (step 0, where both laws start at Q(0)) have no place on a log axis: drawn
     * on the floor 1e-18, below round-off, and said so on the figure */
    nt_buf b = {0};
    nt_buf_printf(&b, "set title 'Largest relative gap over all quantities'\nset xlabel 'step'\n"
                  "set ylabel '|Q measured - Q law| / scale of Q'\nset logscale y\nset format y '10^{%%T}'\n"
                  "set yrange [1e-18:*]\nset key bottom right\n%s"
                  "plot 'ledger_gaps.csv' every ::1 using 1:($3 > 0 ? $3 : 1e-18) with lines lt 1 "
                  "title 'gradient-flow law (F2)', '' every ::1 using 1:($2 > 0 ? $2 : 1e-18) with lines lt 2 "
                  "title 'ledger (F3)'", zeros ? "set label 2 'exact zeros drawn at 10^{-18}' at graph 0.02, graph 0.04 "
                  "font ',9' tc rgb '#555555'\n" : "");
    report_figure_add(p, "ledger_gaps", "How well the ledger closes",
           "For every logged step, the largest difference over all quantities between Q measured and (red) "
           "the ledger's prediction, (blue) the gradient-flow law, each relative to the scale of its quantity: "
           "the largest magnitude of Q's terms plus the sum of the magnitudes of its step terms over the run "
           "(summary.json's per_quantity size). That is the denominator of the ledger gap of the table above "
           "(max_gap), which divides by the scale reached at each step, so max_gap is the largest of these gaps "
           "or above it, never below. The ledger accounts for every step exactly, so its gap sits at round-off, "
           "many orders of magnitude below the gradient-flow gap, which is the size of what finite steps (and "
           "the optimizer) did to the laws gradient flow keeps. Exact zeros are drawn at 10<sup>&minus;18</sup>.",
           b.s, 0);
    free(b.s);
}

/* the columns PREFIX1, PREFIX2, ... of t (up to 64) */
static int numbered_cols(const report_table *t, const char *prefix, int *cols)
{
    char name[32];
    int k = 0;
    for (; k < 64 && (snprintf(name, sizeof name, "%s%d", prefix, k + 1), cols[k] = report_col(t, name)) >= 0; k++) {}
    return k;
}

/* one panel of Ritz values over training, its axis scaled to the values (a symmetric-log
 * axis where eigenvalues near 0 sit beside large ones: they stay apart instead of merging
 * into one band at 0) */
static void ritz_panel(nt_buf *b, const report_table *A, const char *title, const int *cols, int n, int lt)
{
    double *v;
    int nv;
    report_values(A, cols, n, 0, &v, &nv);
    nt_buf_printf(b, "set title '%s'\n", title);
    const char *scale = report_axis(b, "y", v, nv);
    free(v);
    nt_buf_printf(b, "set ylabel 'eigenvalue of H_{/Symbol g} (%s)'\nplot ", scale);
    for (int k = 0; k < n; k++)
        nt_buf_printf(b, "%s'analysis.csv' using %d:%d with linespoints lt %d", k ? ", " : "", report_col(A, "step") + 1,
                      cols[k] + 1, lt);
    if (n == 0) nt_buf_printf(b, "0 lt 8");
    nt_buf_printf(b, "\nunset nonlinear y\nunset logscale y\nset ytics autofreq\nset yrange [*:*]\nset format y '%%g'\n");
}

static void ritz_figure(plotter *p, const report_table *A)
{
    int top[64], bot[64], nt = numbered_cols(A, "top_", top), nb = numbered_cols(A, "bottom_", bot);
    if (A->rows < 1 || nt == 0) return;
    nt_buf b = {0};
    nt_buf_printf(&b, "set multiplot layout 1,2 title 'Hessian spectrum at both ends over training (H including weight decay)'\n"
                   "set xlabel 'step'\nunset key\n");
    report_linear_tics(&b, "x", report_at(A, 0, report_col(A, "step")), report_at(A, A->rows - 1, report_col(A, "step")), 5);
    ritz_panel(&b, A, "largest eigenvalues", top, nt, 1);
    ritz_panel(&b, A, "smallest eigenvalues", bot, nb, 2);
    report_figure_add(p, "ritz", "Both ends of the spectrum",
           "The largest (left) and smallest (right) eigenvalues of the Hessian H<sub>&gamma;</sub> of the "
           "training loss with weight decay, at each analysis checkpoint: exact (LAPACK) for small models, "
           "ARPACK's Lanczos otherwise. Sharpness is the left panel's top curve; negative values on the right "
           "are directions of negative curvature. Where small eigenvalues sit beside large ones the axis is "
           "logarithmic (positive values) or symmetric-logarithmic (asinh(&lambda;/s): linear within s of 0, "
           "logarithmic beyond, s a tenth of the smallest nonzero |&lambda;|), so that the values near 0 stay apart.",
           b.s, 0);
    free(b.s);
}

static void identities_figure(plotter *p, const report_table *A)
{
    int st = report_col(A, "step"), w = report_col(A, "worst_residual");
    if (!report_col_has(A, w, 0)) return;
    int zeros = 0;
    for (int r = 0; r < A->rows; r++) zeros |= report_at(A, r, w) == 0;
    nt_buf b = {0};
    nt_buf_printf(&b, "set title 'Worst identity residual over the catalogue'\nset xlabel 'step'\n"
                   "set ylabel 'relative residual'\nset logscale y\nset format y '10^{%%T}'\nset yrange [1e-18:1e-4]\n"
                   "set key top right\n%splot 'analysis.csv' using %d:($%d > 0 ? $%d : 1e-18) with linespoints lt 1 "
                   "title 'worst residual', %g with lines lt 2 dt 2 title 'tolerance'",
                   zeros ? "set label 2 'exact zeros drawn at 10^{-18}' at graph 0.02, graph 0.04 font ',9' "
                   "tc rgb '#555555'\n" : "", st + 1, w + 1, w + 1, NT_IDENTITY_TOL);
    report_figure_add(p, "identities", "The identities at every checkpoint",
           "The worst relative residual over every identity of every transformation of the catalogue "
           "(first order (F1), second order (S1), (S2), discrete transport (D1) and the fixed-point "
           "identities), at each checkpoint; each side computed independently. Below the dashed line "
           "(the tolerance " NT_STR(NT_IDENTITY_TOL) ") an identity holds; float64 round-off is about 1e-16. "
           "Residuals that are exactly zero (both sides equal in every bit) are drawn at 10<sup>&minus;18</sup>.",
           b.s, 0);
    free(b.s);
}

static void alignment_figure(plotter *p, const report_table *A, const cJSON *summary)
{
    int st = report_col(A, "step"), c = report_col(A, "gradient_fraction_in_top");
    if (!report_col_has(A, c, 0)) return;
    int k = cJSON_GetArraySize(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(summary, "analysis"), "final"), "top"));
    nt_buf b = {0};
    nt_buf_printf(&b, "set title 'Gradient in the top-%d eigenspace'\nset xlabel 'step'\n"
                   "set ylabel 'fraction of |g|^2'\nset yrange [0:1.02]\nunset key\n"
                   "plot 'analysis.csv' using %d:%d with linespoints lt 1",
                   k, st + 1, c + 1);
    report_figure_add(p, "alignment", "Gradient alignment",
           "The fraction of the squared norm of the full-batch gradient that lies in the span of the top "
           "eigenvectors of the Hessian. Gradient descent concentrating in a few sharp directions shows as a "
           "curve rising towards one.",
           b.s, 0);
    free(b.s);
}

/* the radial curvature theta^T H theta / |theta|^2 against its closed form (docs/theory.md §3)
 * and lambda_max, on an axis scaled to them (lambda_max at the start can be 1e5 times the
 * end's curvature); below, their relative difference against the tolerance */
static void radial_figure(plotter *p, const report_table *A)
{
    int st = report_col(A, "step"), r = report_col(A, "radial_curvature"), f = report_col(A, "radial_closed_form"),
        l = report_col(A, "lambda_max"), three[3] = {r, f, l}, nv, zeros = 0;
    if (!report_col_has(A, r, 0)) return;
    for (int i = 0; i < A->rows; i++) zeros |= report_at(A, i, r) == report_at(A, i, f);
    double *v;
    report_values(A, three, 3, 0, &v, &nv);
    nt_buf b = {0};
    nt_buf_printf(&b, "set multiplot layout 2,1 title 'Radial curvature of a homogeneous model'\nset xlabel 'step'\n"
                  "set title 'curvature'\nset key top right\n");
    const char *scale = report_axis(&b, "y", v, nv);
    free(v);
    nt_buf_printf(&b, "set ylabel '%s'\n"
                  "plot 'analysis.csv' using %d:%d with lines lt 1 title 'measured {/Symbol q}^T H {/Symbol q} / |{/Symbol q}|^2', "
                  "'' using %d:%d with points lt 2 ps 1.2 title 'closed form (§3)', "
                  "'' using %d:%d with linespoints lt 3 dt 2 title '{/Symbol l}_{max}'\n"
                  "unset nonlinear y\nunset logscale y\nset ytics autofreq\nset yrange [*:*]\n"
                  "set title 'measured against closed form'\nset logscale y\nset format y '10^{%%T}'\n"
                  "set yrange [1e-18:1e-4]\nset ylabel 'relative difference'\n%s"
                  "plot 'analysis.csv' using %d:(d = abs($%d - $%d) / abs($%d), d > 0 ? d : 1e-18) with linespoints "
                  "lt 1 title '|measured - closed form| / |closed form|', %g with lines lt 2 dt 2 title 'tolerance'",
                  scale, st + 1, r + 1, st + 1, f + 1, st + 1, l + 1,
                  zeros ? "set label 2 'exact zeros drawn at 10^{-18}' at graph 0.02, graph 0.08 font ',9' "
                  "tc rgb '#555555'\n" : "", st + 1, r + 1, f + 1, f + 1, NT_CLOSED_FORM_TOL);
    report_figure_add(p, "radial", "Sharpness along the radial direction",
           "For a positively homogeneous model, the Rayleigh quotient of H along &theta; (line) against its closed "
           "form from the outputs and the loss's first two derivatives (points), and the largest eigenvalue, which "
           "bounds it (dashed), on a scale that keeps the end's small values apart from the start's large ones. "
           "Below: their relative difference, which must stay under the tolerance (dashed, NT_CLOSED_FORM_TOL); "
           "exact zeros are drawn at 10<sup>&minus;18</sup>.",
           b.s, 760);
    free(b.s);
}

static void density_figure(plotter *p, const report_table *D, const cJSON *summary)
{
    if (D->rows < 2) return;
    const cJSON *fin = cJSON_GetObjectItem(cJSON_GetObjectItem(summary, "analysis"), "final");
    const cJSON *flat = cJSON_GetObjectItem(fin, "flat");
    double gam = cJSON_GetObjectItem(flat, "gamma")->valuedouble, peak = 0;
    for (int r = 0; r < D->rows; r++) peak = fmax(peak, report_at(D, r, 1));
    if (!(peak > 0)) return;
    const cJSON *found = cJSON_GetObjectItem(flat, "found");
    char label[384], cp[128];
    report_critical_point(flat, cp, sizeof cp);
    /* two lines: the predictions, then the count found (only where every eigenvalue is known) */
    char counted[96];
    if (cJSON_IsNumber(found)) snprintf(counted, sizeof counted, "found at {/Symbol g}: %d", found->valueint);
    else snprintf(counted, sizeof counted, "not counted: only the ends of the spectrum are known (Lanczos)");
    snprintf(label, sizeof label, "predicted at {/Symbol g} = %g: %d everywhere\\n(at a critical point: %s)\\n%s", gam,
             cJSON_GetObjectItem(flat, "predicted_everywhere")->valueint, cp, counted);
    nt_buf b = {0};
    nt_buf_printf(&b, "set title 'Spectral density of H at the end (stochastic Lanczos quadrature)'\n"
                   "set xlabel 'eigenvalue'\nset ylabel 'density (log scale)'\nset logscale y\nset format y '10^{%%T}'\n"
                   "set yrange [%g:%g]\nset key top right\nset arrow from %g, graph 0 to %g, graph 1 nohead lt 2 dt 2\n"
                   "set label 1 \"%s\" at graph 0.98, graph 0.8 right font ',10'\n"
                   "plot 'density.csv' every ::1 using 1:($2 > %g ? $2 : NaN) with lines lt 1 title 'density', "
                   "NaN with lines lt 2 dt 2 title 'gamma (flat directions)'",
                   peak * 1e-7, peak * 3, gam, gam, label, peak * 1e-7);
    report_figure_add(p, "density", "Spectral density",
           "The eigenvalue density of H<sub>&gamma;</sub> at the final parameters by stochastic Lanczos "
           "quadrature (10 probes, Gaussian broadening), on a log scale. The dashed line marks &gamma;: every flat "
           "direction of the loss is an eigenvector of H<sub>&gamma;</sub> with eigenvalue &gamma;. The label "
           "gives how many the symmetries predict: the pure shifts (logit translations, biases right before a "
           "normalization) everywhere; at a critical point of L<sub>&gamma;</sub> the eigenvalues (S1&gamma;) forces, "
           "2&gamma; on the symmetric generators' span, &gamma; on the shifts', 0 on the antisymmetric ones' (all 0 "
           "without weight decay); and how many the exact spectrum has at &gamma; (small models).",
           b.s, 0);
    free(b.s);
}

static void sectors_figure(plotter *p, const report_table *S, const cJSON *summary)
{
    if (S->rows < 1 || S->cols < 2) return;
    const cJSON *sec = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(summary, "analysis"), "final"),
                                           "sectors"), *it;
    nt_buf b = {0};
    nt_buf_printf(&b, "set title 'H on the breaking subspace of S_n (units made equal)'\nset xlabel 'eigenvalue index'\n"
                   "set ylabel 'eigenvalue'\nset key top left\nplot ");
    int k = 0;
    cJSON_ArrayForEach(it, sec) {
        const cJSON *layer = cJSON_GetObjectItem(it, "layer"), *units = cJSON_GetObjectItem(it, "units");
        if (!layer || !cJSON_GetObjectItem(it, "multiplicity_found")) continue;
        char col[32];
        snprintf(col, sizeof col, "layer_%d", layer->valueint);
        int c = report_col(S, col);
        if (c < 0) continue;
        nt_buf_printf(&b, "%s'sectors.csv' every ::1 using 1:%d with points lt %d title 'layer %d: %d units, "
                       "multiplicity %d found, %d predicted'",
                   k ? ", " : "", c + 1, k + 1, layer->valueint, units->valueint,
                   cJSON_GetObjectItem(it, "multiplicity_found")->valueint,
                   cJSON_GetObjectItem(it, "predicted_multiplicity")->valueint);
        k++;
    }
    if (k) report_figure_add(p, "sectors", "Symmetry sectors",
                  "The spectrum of H restricted to Fix(S<sub>n</sub>)<sup>&perp;</sup>, the directions that break the "
                  "permutation symmetry of a hidden layer's n units, at the point where the units are made equal "
                  "(the parameters projected onto the fixed-point set). Representation theory predicts every "
                  "eigenvalue there n&minus;1 times: the points come in flat steps of n&minus;1. The smallest one is "
                  "the stability margin of the symmetric point (docs/theory.md §4).",
                  b.s, 0);
    free(b.s);
}

static const char *const exts[2] = {"png", "svg"};

/* 1 when the figure file is whole: a PNG ends in its IEND chunk, an SVG in </svg> */
static int figure_whole(const char *path, int svg)
{
    static const unsigned char iend[8] = {'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    unsigned char tail[64] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int ok = fseek(f, -64, SEEK_END) == 0 || fseek(f, 0, SEEK_SET) == 0;
    size_t n = ok ? fread(tail, 1, sizeof tail, f) : 0;
    fclose(f);
    if (svg) {
        tail[n < sizeof tail ? n : sizeof tail - 1] = 0;
        for (size_t i = 0; i < n; i++) if (!tail[i]) tail[i] = ' ';
        return strstr((const char *)tail, "</svg>") != NULL;
    }
    return n >= 8 && !memcmp(tail + n - 8, iend, 8);
}

static void remove_parts(const char *dir, const plotter *p)
{
    char path[NT_PATH_MAX + 64];
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "%s/plots/%s.%s.part", dir, p->figs[i].stem, exts[k]);
            remove(path);
        }
    snprintf(path, sizeof path, "%s/plots/.plots.part.gp", dir);
    remove(path);
}

static const char *sig_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

/* runs gnuplot on plots/.plots.part.gp in dir, its messages into plots/gnuplot.log; ends it
 * when the command is asked to stop; then every figure checked whole and renamed into place */
static int run_gnuplot(const char *dir, const plotter *p, nt_error *err)
{
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return nt_fail(err, NT_EFAIL, "cannot start gnuplot: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);   /* never outlive noether (a kill -9 included) */
        if (getppid() != parent) _exit(125);
        if (chdir(dir) != 0) _exit(126);
        int fd = open("plots/gnuplot.log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
        execlp("gnuplot", "gnuplot", "plots/.plots.part.gp", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) break;
        if (p->stop && *p->stop) kill(pid, SIGTERM);   /* then reaped by the next waitpid */
    }
    const int sig = p->stop ? *p->stop : 0;
    if (sig) {
        remove_parts(dir, p);
        return nt_fail(err, 128 + sig, "interrupted by %s while gnuplot drew the figures", sig_name(sig));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        remove_parts(dir, p);
        return nt_fail(err, NT_EFAIL, "gnuplot not found (scripts/setup.sh installs gnuplot-nox)");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        remove_parts(dir, p);
        return nt_fail(err, NT_EFAIL, "gnuplot failed on %s/plots/plots.gp: see %s/plots/gnuplot.log", dir, dir);
    }
    char part[NT_PATH_MAX + 64], path[NT_PATH_MAX + 64];
    for (int i = 0; i < p->n; i++)   /* all whole before any is renamed */
        for (int k = 0; k < 2; k++) {
            snprintf(part, sizeof part, "%s/plots/%s.%s.part", dir, p->figs[i].stem, exts[k]);
            if (!figure_whole(part, k)) {
                remove_parts(dir, p);
                return nt_fail(err, NT_EFAIL, "%s/plots/%s.%s: gnuplot could not write it whole (a full disk?); "
                               "see %s/plots/gnuplot.log", dir, p->figs[i].stem, exts[k], dir);
            }
        }
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < 2; k++) {
            snprintf(part, sizeof part, "%s/plots/%s.%s.part", dir, p->figs[i].stem, exts[k]);
            snprintf(path, sizeof path, "%s/plots/%s.%s", dir, p->figs[i].stem, exts[k]);
            struct stat sb;
            if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
                remove_parts(dir, p);
                return nt_fail(err, NT_EINPUT, "%s: not a regular file: noether writes only regular files or new paths",
                               path);
            }
            if (rename(part, path) != 0) {
                int e = errno;
                remove_parts(dir, p);
                return nt_fail(err, NT_EFAIL, "%s: cannot write: %s", path, strerror(e));
            }
        }
    remove_parts(dir, p);
    return NT_OK;
}

int report_plots(const char *dir, const cJSON *summary, const volatile sig_atomic_t *stop, report_figure *figs,
                 int *n_figs, nt_error *err)
{
    char sub[NT_PATH_MAX + 16];
    snprintf(sub, sizeof sub, "%s/plots", dir);
    *n_figs = 0;
    if (nt_mkdir_p(sub, err)) return err->code;
    plotter p = { {0}, {0}, figs, 0, stop };
    nt_buf_printf(&p.gp, "# The figures of report.html; run from the run directory: gnuplot plots/plots.gp\n");
    nt_buf_printf(&p.run, "# noether's own copy of plots.gp, drawing into *.part files; removed when done\n");
    report_table L, A, D, S;
    report_table_read(dir, "ledger.csv", &L);
    report_table_read(dir, "analysis.csv", &A);
    report_table_read(dir, "density.csv", &D);
    report_table_read(dir, "sectors.csv", &S);
    if (L.rows > 1) {
        loss_figure(&p, &L);
        ledger_figure(&p, &L, summary);
        gaps_figure(&p, dir, &L, summary);
        report_margin_figure(&p, &L);
        report_distance_figure(&p, &L);
    }
    if (A.rows > 1) {   /* curves over the checkpoints; one checkpoint (steps: 0) has its numbers in the tables */
        identities_figure(&p, &A);
        ritz_figure(&p, &A);
        alignment_figure(&p, &A, summary);
        radial_figure(&p, &A);
    }
    density_figure(&p, &D, summary);
    sectors_figure(&p, &S, summary);
    report_table_free(&L);
    report_table_free(&A);
    report_table_free(&D);
    report_table_free(&S);
    int rc = report_write(dir, "plots/plots.gp", p.gp.s, err);
    if (!rc) rc = report_write(dir, "plots/.plots.part.gp", p.run.s, err);
    free(p.gp.s);
    free(p.run.s);
    *n_figs = p.n;
    return rc ? rc : run_gnuplot(dir, &p, err);
}
