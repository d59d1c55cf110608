/* margin.c: Lyu & Li's margin growth along a run (docs/theory.md §2, the homogeneous case):
 * for a k-homogeneous model under a margin loss (exponential, logistic), once every training sample has
 * y_n f(x_n; theta) > 0, gradient descent keeps |theta|^2 growing and the normalized margin
 * min_n y_n f_n / |theta|^k rising.  From the logged rows (ledger.csv's step, margin, norm2):
 * where the data are separated for good, and whether either quantity fell afterwards. */
#include <math.h>
#include "noether.h"

int nt_margin_analyse(int n, const double *step, const double *margin, const double *norm2, nt_margin_growth *g,
                      nt_error *err)
{
    if (n < 0) return nt_fail(err, NT_EINPUT, "margin growth: n: %d rows is negative", n);
    if (!step || !margin || !norm2 || !g)
        return nt_fail(err, NT_EINPUT, "margin growth: %s is missing",
                       !step ? "step" : !margin ? "margin" : !norm2 ? "norm2" : "the result");
    *g = (nt_margin_growth){ .separated_step = NAN, .margin_at_separation = NAN, .margin_final = NAN,
                             .norm2_at_separation = NAN, .norm2_final = NAN };
    int last = -1, from = -1;
    for (int i = 0; i < n; i++)
        if (isfinite(margin[i])) { g->rows++; last = i; }
    if (last < 0) return NT_OK;
    /* the stretch of positive margins that reaches the last row */
    for (int i = last; i >= 0 && (!isfinite(margin[i]) || margin[i] > 0); i--)
        if (isfinite(margin[i])) from = i;
    g->margin_final = margin[last];
    g->norm2_final = norm2[last];
    if (from < 0) return NT_OK;
    g->separated = 1;
    for (int i = from; i <= last; i++) g->rows_separated += isfinite(margin[i]) != 0;
    g->separated_step = step[from];
    g->margin_at_separation = margin[from];
    g->norm2_at_separation = norm2[from];
    double pm = margin[from], pn = norm2[from];
    for (int i = from + 1; i <= last; i++) {
        if (!isfinite(margin[i])) continue;
        if (margin[i] < pm) {
            g->margin_falls++;
            g->largest_fall = fmax(g->largest_fall, (pm - margin[i]) / pm);
        }
        g->norm2_falls += norm2[i] < pn;
        pm = margin[i];
        pn = norm2[i];
    }
    return NT_OK;
}
