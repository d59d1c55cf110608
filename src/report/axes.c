/* axes.c: how the report's figures scale their axes, chosen from the values they show so
 * that a small end of the data is never flattened against a large one:
 *   - a logarithmic axis where every value is positive and they span more than a decade;
 *   - a symmetric-log axis, y -> asinh(y / s), where values of both signs (or values near 0
 *     beside large ones) meet: linear within s of 0, logarithmic beyond, with s a tenth of
 *     the smallest nonzero |value| so that every value sits on the logarithmic part;
 *   - otherwise a linear axis with at most a few ticks, at round steps.
 * Tick labels are written out explicitly (gnuplot's automatic ticks on a nonlinear axis
 * follow the linear coordinate and crowd). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "plot.h"

void report_values(const report_table *t, const int *cols, int n_cols, int from_row, double **v, int *n)
{
    *v = malloc(sizeof(double) * ((size_t)t->rows * (n_cols > 0 ? n_cols : 1) + 1));
    *n = 0;
    for (int k = 0; k < n_cols; k++) {
        if (cols[k] < 0) continue;
        for (int r = from_row; r < t->rows; r++) {
            double x = report_at(t, r, cols[k]);
            if (isfinite(x)) (*v)[(*n)++] = x;
        }
    }
}

/* a round step (1, 2 or 5 times a power of ten) giving at most max_tics ticks on [lo, hi] */
static double round_step(double lo, double hi, int max_tics)
{
    double raw = (hi - lo) / (max_tics > 1 ? max_tics - 1 : 1), p = pow(10, floor(log10(raw)));
    const double m[4] = {1, 2, 5, 10};
    for (int k = 0; k < 4; k++)
        if (m[k] * p >= raw) return m[k] * p;
    return 10 * p;
}

void report_linear_tics(nt_buf *b, const char *axis, double lo, double hi, int max_tics)
{
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi)) return;
    double step = round_step(lo, hi, max_tics);
    nt_buf_printf(b, "set %stics %.17g\nset format %s '%%.4g'\n", axis, step, axis);
}

/* "10^{k}" tick labels at 0 and at +-10^k within the values' range, every `every` decades */
static void decade_tics(nt_buf *b, const char *axis, double lo, double hi, double s, int with_zero)
{
    int k0 = (int)floor(log10(s * 10)), k1 = (int)ceil(log10(fmax(fabs(lo), fabs(hi))));
    static const int steps[6] = {1, 2, 3, 5, 10, 20};
    int every = 50, first = 1;
    for (int i = 5; i >= 0; i--)
        if ((k1 - k0) / steps[i] <= 6) every = steps[i];
    nt_buf_printf(b, "set %stics (", axis);
    if (with_zero) { nt_buf_printf(b, "\"0\" 0"); first = 0; }
    for (int sign = -1; sign <= 1; sign += 2)
        for (int k = k0 - ((k0 % every) + every) % every; k <= k1; k += every) {
            double x = sign * pow(10, k);
            if (x < lo * (lo < 0 ? 1.5 : 0.67) || x > hi * (hi > 0 ? 1.5 : 0.67)) continue;
            nt_buf_printf(b, "%s\"%s10^{%d}\" %.17g", first ? "" : ", ", sign < 0 ? "-" : "", k, x);
            first = 0;
        }
    nt_buf_printf(b, ")\n");
}

const char *report_axis(nt_buf *b, const char *axis, const double *v, int n)
{
    double lo = INFINITY, hi = -INFINITY, small = INFINITY;
    for (int i = 0; i < n; i++) {
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
        if (v[i] != 0) small = fmin(small, fabs(v[i]));
    }
    if (n == 0 || !(hi > lo)) return "linear";
    double big = fmax(fabs(lo), fabs(hi));
    if (lo > 0 && hi / lo > 10) {
        nt_buf_printf(b, "set logscale %s\nset %srange [%.17g:%.17g]\n", axis, axis, lo / 1.5, hi * 1.5);
        if (hi / lo < 1e3) nt_buf_printf(b, "set format %s '%%g'\nset m%stics 10\n", axis, axis);
        else decade_tics(b, axis, lo, hi, lo / 10, 0);
        return "log scale";
    }
    if (isfinite(small) && big / small > 100) {
        /* symmetric log: asinh(y/s) is y/s near 0 and sign(y) log(2|y|/s) beyond s */
        double s = fmax(small / 10, big * 1e-12);
        nt_buf_printf(b, "S_%s = %.17g\nset nonlinear %s via asinh(%s/S_%s) inverse S_%s*sinh(%s)\n", axis, s, axis,
                      axis, axis, axis, axis);
        double a = asinh(lo / s), z = asinh(hi / s), pad = 0.04 * (z - a);
        nt_buf_printf(b, "set %srange [%.17g:%.17g]\n", axis, s * sinh(a - pad), s * sinh(z + pad));
        decade_tics(b, axis, lo, hi, s, lo <= 0 && hi >= 0);
        return "symmetric log scale";
    }
    report_linear_tics(b, axis, lo, hi, 6);
    return "linear";
}
