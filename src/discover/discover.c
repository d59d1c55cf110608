/* discover.c: the three searches of noether discover together (docs/theory.md §7), and the
 * verdict: whether the catalogue explains what was found.  The count of conservation laws
 * is Marcotte's, for any loss of the outputs; the catalogue's conserved quantities that hold
 * for any loss are its symmetries of the outputs (a softmax head's logit translation holds
 * for that loss only, so it is left out of the comparison).  The comparison is made on the
 * laws' gradients at the point of the count, not only on their number. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "noether.h"

/* Orthonormalizes the rows of X (n x d) in place by Gram-Schmidt (twice), dropping rows
 * whose residual is below tol of their norm or below floor; returns how many remain (the
 * first rows). */
static int orthonormalize(double *X, int n, int64_t d, double tol, double floor)
{
    int r = 0;
    for (int i = 0; i < n; i++) {
        double *x = X + (int64_t)i * d, *q = X + (int64_t)r * d;
        const double nx = nt_norm2(d, x);
        if (!(nx > 0)) continue;
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < r; k++) {
                const double *b = X + (int64_t)k * d;
                double c = 0;
                for (int64_t j = 0; j < d; j++) c += b[j] * x[j];
                for (int64_t j = 0; j < d; j++) x[j] -= c * b[j];
            }
        const double res = nt_norm2(d, x);
        if (res <= tol * nx || res <= floor) continue;
        for (int64_t j = 0; j < d; j++) q[j] = x[j] / res;
        r++;
    }
    return r;
}

/* The catalogue's conserved quantities that hold for any loss (symmetric A, B = 0, not a
 * softmax head's translation) against the laws found at the point p: each quantity's
 * gradient must lie in their span (else the catalogue claims a law that is none: counted
 * in not_conserved), and the laws' directions outside the quantities' span are the
 * unexplained ones, each described by the tensors that carry it. */
static int compare_laws(const nt_model *m, const nt_transform *list, int n, const double *p, nt_discovery *o,
                        nt_error *err)
{
    const nt_conservation *c = &o->laws;
    const int64_t d = m->d;
    nt_quantity *q = NULL;
    int nq = 0, k = 0;
    if (nt_ledger_quantities(m, list, n, &q, &nq)) return nt_fail(err, NT_EFAIL, "discover: out of memory");
    double *G = malloc(sizeof(double) * (size_t)(nq + c->n_laws + 1) * (size_t)d), *x2 = malloc(sizeof(double) * (size_t)d);
    if (!G || !x2) {
        free(q); free(G); free(x2);
        return nt_fail(err, NT_EFAIL, "discover: out of memory for %d quantities' gradients", nq);
    }
    for (int i = 0; i < nq; i++) {
        const nt_transform *T = &list[q[i].entry];
        if (q[i].equivariance || T->kind == NT_TR_TRANSLATION) continue;
        double *g = G + (int64_t)k++ * d;
        nt_quantity_gradient(m, list, &q[i], p, g, x2);
        /* its part outside the laws' span: not conserved by every loss's flow */
        double inside = 0, total = nt_norm2(d, g);
        for (int l = 0; l < c->n_laws; l++) {
            double t = 0;
            for (int64_t j = 0; j < d; j++) t += c->laws[(int64_t)l * d + j] * g[j];
            inside += t * t;
        }
        if (total > 0 && sqrt(fmax(total * total - inside, 0)) > 1e-6 * total) o->not_conserved++;
    }
    const int rank = orthonormalize(G, k, d, 1e-6, 0);
    /* the laws' basis after the quantities' span is removed: its singular values are 1 for a
     * direction the catalogue lacks, 0 for one it has */
    double *R = G + (int64_t)rank * d;
    if (c->n_laws) memcpy(R, c->laws, sizeof(double) * (size_t)(c->n_laws * d));   /* no laws: laws is NULL */
    for (int l = 0; l < c->n_laws; l++)
        for (int pass = 0; pass < 2; pass++)
            for (int b = 0; b < rank; b++) {
                double t = 0;
                for (int64_t j = 0; j < d; j++) t += G[(int64_t)b * d + j] * R[(int64_t)l * d + j];
                for (int64_t j = 0; j < d; j++) R[(int64_t)l * d + j] -= t * G[(int64_t)b * d + j];
            }
    o->unexplained = orthonormalize(R, c->n_laws, d, 0, 1e-3);   /* rows of norm <= 1 */
    for (int u = 0; u < o->unexplained && u < NT_DISCOVER_MAX_UNEXPLAINED; u++) {
        /* where the direction lives: the tensors with at least 5% of its squared norm */
        char *w = o->unexplained_where[u];
        size_t len = 0;
        w[0] = 0;
        for (int t = 0; t < m->n_tensors; t++) {
            const nt_tensor *T = &m->tensors[t];
            double share = 0;
            for (int64_t j = 0; j < T->size; j++) share += R[(int64_t)u * d + T->offset + j] * R[(int64_t)u * d + T->offset + j];
            if (share >= 0.05 && len + 48 < sizeof o->unexplained_where[0])
                len += (size_t)snprintf(w + len, sizeof o->unexplained_where[0] - len, "%s%s %.0f%%", len ? ", " : "",
                                        T->name, 100 * share);
        }
    }
    free(q); free(G); free(x2);
    return NT_OK;
}

int nt_discover(nt_engine *e, const nt_model *m, const double *theta, const nt_transform *list, int n,
                const nt_conservation_opts *opts, nt_discovery *o, nt_error *err)
{
    memset(o, 0, sizeof *o);
    const int64_t d = m->d;
    double *generic = malloc(sizeof(double) * (size_t)d);
    nt_transform *any_loss = malloc(sizeof(nt_transform) * (size_t)(n > 0 ? n : 1));
    if (!generic || !any_loss) {
        free(generic); free(any_loss);
        return nt_fail(err, NT_EFAIL, "discover: out of memory (d = %lld)", (long long)d);
    }
    /* the count at theta, and at a generic point near it (theta can be special: units
     * collapsed onto each other lower the rank of the fields there) */
    const double rms = nt_norm2(d, theta) / sqrt((double)d);
    for (int64_t i = 0; i < d; i++) generic[i] = theta[i] + rms * nt_rand_normal(NT_DISCOVER_SEED, 7, (uint64_t)i);
    int rc = nt_conservation_count(e, m, theta, opts, &o->at_theta, err);
    if (!rc) rc = nt_conservation_count(e, m, generic, opts, &o->laws, err);
    if (!rc && opts && opts->progress) opts->progress(opts->ctx, "the symmetry algebra (a null space over random inputs and points)");
    if (!rc) rc = nt_discover_algebra(e, m, theta, list, n, &o->algebra, err);
    if (!rc && opts && opts->progress) opts->progress(opts->ctx, "exchanges and sign flips of hidden units");
    if (!rc) rc = nt_discover_discrete(e, m, theta, list, n, 0, &o->discrete, err);
    if (!rc) {
        int k = 0, listed = 0;
        for (int t = 0; t < n; t++)
            if (!list[t].discrete && !list[t].equivariance && list[t].kind != NT_TR_TRANSLATION) any_loss[k++] = list[t];
        o->catalogue_laws = nt_catalogue_independent(m, any_loss, k, NULL, 1e-10, &listed);
        rc = compare_laws(m, list, n, generic, o, err);
        o->missing = o->discrete.n_missing + o->discrete.missing_more + o->algebra.missing_from_catalogue;
        o->explained = !rc && o->laws.stagnated && o->laws.conserved == o->catalogue_laws && o->missing == 0 &&
                       o->unexplained == 0 && o->not_conserved == 0;
    }
    free(generic);
    free(any_loss);
    if (rc) nt_discovery_free(o);
    return rc;
}

void nt_discovery_free(nt_discovery *o)
{
    nt_conservation_free(&o->laws);
    nt_conservation_free(&o->at_theta);
    nt_algebra_free(&o->algebra);
    nt_discrete_free(&o->discrete);
}
