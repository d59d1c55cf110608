/* discover.c: the three searches of noether discover together (docs/theory.md §7), and the
 * verdict: whether the catalogue explains what was found.  The count of conservation laws
 * is Marcotte's, for any loss of the outputs; the catalogue's conserved quantities that hold
 * for any loss are its symmetries of the outputs (a softmax head's logit translation holds
 * for that loss only, so it is left out of the comparison). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "noether.h"

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
        o->missing = o->discrete.n_missing + o->discrete.missing_more + o->algebra.missing_from_catalogue;
        o->explained = o->laws.stagnated && o->laws.conserved == o->catalogue_laws && o->missing == 0;
    }
    free(generic);
    free(any_loss);
    if (rc) nt_discovery_free(o);
    return rc;
}

void nt_discovery_free(nt_discovery *o)
{
    nt_algebra_free(&o->algebra);
    nt_discrete_free(&o->discrete);
}
