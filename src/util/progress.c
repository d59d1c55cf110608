/* progress.c: the library's one progress facility (include/noether.h, "progress"): a callback
 * told how much of a named phase is done, and an operator wrapper that counts the products
 * of a long matrix-free phase (the spectrum's ends, the trace, the density) as its progress.
 * The library never prints; the command prints on stderr (src/cli/progress.c). */
#include "noether.h"

void nt_progress_report(const nt_progress *p, const char *phase, int64_t done, int64_t total)
{
    if (p && p->fn) p->fn(p->ctx, phase, done, total);
}

/* the inner operator's product, then the count of products so far */
static int counted_apply(void *ctx, int k, const double *X, double *Y, nt_error *err)
{
    nt_counted_operator *c = ctx;
    int rc = c->inner.apply(c->inner.ctx, k, X, Y, err);
    if (rc) return rc;
    c->done += k;
    nt_progress_report(c->p, c->phase, c->done, c->total);
    return NT_OK;
}

nt_operator nt_counted_operator_new(nt_counted_operator *c, const nt_operator *inner, const nt_progress *p,
                                    const char *phase, int64_t total)
{
    *c = (nt_counted_operator){ .inner = *inner, .p = p, .phase = phase, .done = 0, .total = total };
    nt_progress_report(p, phase, 0, total);
    return (nt_operator){ .n = inner->n, .block = inner->block, .apply = counted_apply, .ctx = c };
}
