/* plots_symmetry.c: the report's figures of what the discrete symmetries and homogeneity do
 * over training, from ledger.csv:
 *   - the distance |theta - T theta| / 2 of theta to each fixed-point set Fix(T), one panel
 *     per kind of map (sign flips, the mirror planes of odd units, first; then unit swaps and
 *     the rest), each map its own curve when there are few, else the median over the maps
 *     of that kind and the band from the smallest to the largest (docs/theory.md §4);
 *   - for a homogeneous model under a margin loss, the normalized margin and |theta|^2
 *     (Lyu & Li: once the data are separated, |theta|^2 grows without bound and the
 *     normalized margin rises). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "plot.h"

#define MAX_KINDS 3
#define FEW 4   /* up to this many maps of a kind: one curve each */

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the kind of a map: its name up to '[' ("sign_flip", "swap", "norm_flip") */
static void kind_of(const char *name, char *kind, size_t cap)
{
    size_t n = strcspn(name, "[");
    snprintf(kind, cap, "%.*s", (int)n, name);
}

static const char *kind_title(const char *kind)
{
    if (!strcmp(kind, "sign_flip")) return "sign flips of odd units (mirror planes)";
    if (!strcmp(kind, "swap")) return "swaps of two units";
    if (!strcmp(kind, "norm_flip")) return "sign flips of a normalization";
    if (!strcmp(kind, "norm_swap")) return "swaps of two normalized units";
    if (!strcmp(kind, "head_swap")) return "swaps of two attention heads";
    if (!strcmp(kind, "channel_swap")) return "swaps of two channels";
    if (!strcmp(kind, "channel_sign_flip")) return "sign flips of odd channels";
    if (!strcmp(kind, "even_flip") || !strcmp(kind, "channel_even_flip")) return "sign flips into an even activation";
    return kind;
}

/* one panel: the maps of one kind (columns cols), each a curve or the median and the band */
static void distance_panel(nt_buf *b, const report_table *L, const char *kind, const int *cols, int n, int panel)
{
    int st = report_col(L, "step"), nv;
    double *v;
    report_values(L, cols, n, 0, &v, &nv);
    nt_buf_printf(b, "set title '%s: %d map%s' noenhanced\n", kind_title(kind), n, n > 1 ? "s" : "");
    const char *scale = report_axis(b, "y", v, nv);
    free(v);
    nt_buf_printf(b, "set ylabel '|{/Symbol q} - T{/Symbol q}| / 2 (%s)'\n", scale);
    if (n <= FEW) {
        nt_buf_printf(b, "set key top right noenhanced font ',9'\nplot ");
        for (int k = 0; k < n; k++)
            nt_buf_printf(b, "%s'ledger.csv' every ::1 using %d:%d with lines lt %d title '%.*s'", k ? ", " : "",
                          st + 1, cols[k] + 1, k + 1, (int)strlen(L->names[cols[k]]) - 9, L->names[cols[k]]);
    } else {
        /* per logged step: smallest, median and largest distance over the maps of this kind */
        double *row = malloc(sizeof(double) * n);
        nt_buf_printf(b, "$kind%d << EOD\n", panel);
        for (int r = 0; r < L->rows; r++) {
            int m = 0;
            for (int k = 0; k < n; k++) {
                double x = report_at(L, r, cols[k]);
                if (isfinite(x)) row[m++] = x;
            }
            if (!m) continue;
            qsort(row, (size_t)m, sizeof *row, by_value);
            double med = m % 2 ? row[m / 2] : 0.5 * (row[m / 2 - 1] + row[m / 2]);
            nt_buf_printf(b, "%.17g,%.17g,%.17g,%.17g\n", report_at(L, r, st), row[0], med, row[m - 1]);
        }
        free(row);
        nt_buf_printf(b, "EOD\nset key top right font ',9'\n"
                      "plot $kind%d using 1:2:4 with filledcurves fs transparent solid 0.25 noborder lt 1 "
                      "title 'smallest to largest', $kind%d using 1:3 with lines lt 1 title 'median'", panel, panel);
    }
    nt_buf_printf(b, "\nunset nonlinear y\nunset logscale y\nset ytics autofreq\nset yrange [*:*]\nset format y '%%g'\n");
}

void report_distance_figure(plotter *p, const report_table *L)
{
    char kinds[MAX_KINDS][32], kind[32];
    int nk = 0, *cols[MAX_KINDS], nc[MAX_KINDS] = {0}, dropped = 0;
    for (int pass = 0; pass < 2; pass++)   /* sign flips first: the mirrors are what collapse */
        for (int c = 0; c < L->cols; c++) {
            size_t len = strlen(L->names[c]);
            if (len <= 9 || strcmp(L->names[c] + len - 9, ":distance") || !report_col_has(L, c, 0)) continue;
            kind_of(L->names[c], kind, sizeof kind);
            if ((pass == 0) != !strcmp(kind, "sign_flip")) continue;
            int k = 0;
            while (k < nk && strcmp(kinds[k], kind)) k++;
            if (k == nk) {
                if (nk == MAX_KINDS) {   /* said on the figure, not dropped in silence */
                    dropped = 1;
                    continue;
                }
                snprintf(kinds[nk], sizeof kinds[nk], "%s", kind);
                cols[nk] = malloc(sizeof(int) * (size_t)L->cols);
                nk++;
            }
            cols[k][nc[k]++] = c;
        }
    if (nk == 0) return;
    nt_buf b = {0};
    nt_buf_printf(&b, "set multiplot layout %d,1 title 'Distance to the fixed-point sets of discrete symmetries%s'\n"
                  "set xlabel 'step'\n", nk, dropped ? " (the first " NT_STR(MAX_KINDS) " kinds; ledger.csv has every map)" : "");
    report_linear_tics(&b, "x", report_at(L, 0, report_col(L, "step")), report_at(L, L->rows - 1, report_col(L, "step")), 6);
    for (int k = 0; k < nk; k++) {
        distance_panel(&b, L, kinds[k], cols[k], nc[k], k);
        free(cols[k]);
    }
    report_figure_add(p, "distances", "Distance to fixed-point sets",
           "For the discrete symmetries T of the catalogue, one panel per kind (sign flips of odd units first: "
           "their fixed-point sets are the mirror planes; then swaps of two units), the distance "
           "|&theta; &minus; T&theta;|/2 from the parameters to Fix(T), the set where the symmetry is unbroken. "
           "With more than " NT_STR(FEW) " maps of a kind, the line is their median and the band spans the smallest "
           "to the largest. A curve falling to zero is a collapse onto a mirror plane or onto identical units "
           "(docs/theory.md §4).",
           b.s, nk > 1 ? 420 * nk : 0);
    free(b.s);
}

void report_margin_figure(plotter *p, const report_table *L)
{
    int st = report_col(L, "step"), mg = report_col(L, "margin"), n2 = report_col(L, "norm2"), nv;
    if (!report_col_has(L, mg, 0) || n2 < 0) return;
    double *v;
    nt_buf b = {0};
    nt_buf_printf(&b, "set multiplot layout 1,2 title 'Margin growth of a homogeneous model (Lyu and Li)'\n"
                  "set xlabel 'step'\nunset key\n");
    report_linear_tics(&b, "x", report_at(L, 0, st), report_at(L, L->rows - 1, st), 5);
    report_values(L, &mg, 1, 0, &v, &nv);
    nt_buf_printf(&b, "set title 'normalized margin'\n");
    const char *scale = report_axis(&b, "y", v, nv);
    free(v);
    nt_buf_printf(&b, "set ylabel 'min_n y_n f_n / |{/Symbol q}|^k (%s)'\nset arrow from graph 0, first 0 to graph 1, "
                  "first 0 nohead lt 8 dt 3\nplot 'ledger.csv' every ::1 using %d:%d with lines lt 1\n"
                  "unset arrow\nunset nonlinear y\nunset logscale y\nset ytics autofreq\nset yrange [*:*]\n"
                  "set format y '%%g'\nset title '|{/Symbol q}|^2'\n", scale, st + 1, mg + 1);
    report_values(L, &n2, 1, 0, &v, &nv);
    scale = report_axis(&b, "y", v, nv);
    free(v);
    nt_buf_printf(&b, "set ylabel '|{/Symbol q}|^2 (%s)'\nplot 'ledger.csv' every ::1 using %d:%d with lines lt 2\n",
                  scale, st + 1, n2 + 1);
    report_figure_add(p, "margin", "Normalized margin and parameter norm",
           "For a positively homogeneous model of degree k under a margin loss (exponential or logistic): the "
           "normalized margin min<sub>n</sub> y<sub>n</sub> f(x<sub>n</sub>; &theta;) / |&theta;|<sup>k</sup> "
           "(left; the dotted line is 0: above it every training sample is classified correctly) and "
           "|&theta;|<sup>2</sup> (right), at every logged step (ledger.csv's margin and norm2). Lyu and Li (2020): "
           "once the data are separated, gradient descent keeps increasing |&theta;|<sup>2</sup> and the normalized "
           "margin rises.",
           b.s, 0);
    free(b.s);
}
