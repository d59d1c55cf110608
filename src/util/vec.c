/* vec.c: small vector helpers shared by the engine, the commands and the tests. */
#include <math.h>
#include <cblas.h>
#include "noether.h"

double nt_norm2(int64_t n, const double *x)
{
    return cblas_dnrm2((int)n, x, 1);
}

/* The relative residual of docs/theory.md §6: |a - b| / max(|a| + |b|, 1e-300). */
double nt_rel_diff(int64_t n, const double *a, const double *b)
{
    double diff = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < n; i++) {
        double t = a[i] - b[i];
        diff += t * t;
        na += a[i] * a[i];
        nb += b[i] * b[i];
    }
    double den = sqrt(na) + sqrt(nb);
    return sqrt(diff) / (den > 1e-300 ? den : 1e-300);
}

uint64_t nt_hash64(const void *data, size_t n, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

int nt_require_finite(double loss, const double *x, int64_t n, const char *what, nt_error *err)
{
    if (!isfinite(loss))
        return nt_fail(err, NT_EFAIL, "the loss is not finite (%g) at these parameters: no %s computed", loss, what);
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; x && i < n; i++)
        if (!isfinite(x[i])) { bad++; if (first < 0) first = i; }
    if (!bad) return NT_OK;
    return nt_fail(err, NT_EFAIL, "the %s has %lld entries that are not finite (the first at index %lld, %g)", what,
                   (long long)bad, (long long)first, x[first]);
}
