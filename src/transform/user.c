/* user.c: transformations declared in the spec (docs/interface.md): dense A (d x d), c (d),
 * B (K x K) for a continuous one; T (d x d), rho (K x K) for a discrete one.  Absent c, B
 * and rho mean 0, 0 and I: a symmetry. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "noether.h"

/* reads path into a fresh array of exactly `rows` x `cols` (cols 0: a vector of rows) */
static int read_matrix(const char *path, int index, const char *what, int64_t rows, int64_t cols,
                       double **out, nt_error *err)
{
    nt_array a = {0};
    int rc = nt_npy_read(path, &a, err);
    if (rc) return rc;
    int ok = cols ? (a.ndim == 2 && a.shape[0] == rows && a.shape[1] == cols)
                  : (a.ndim == 1 && a.shape[0] == rows);
    if (!ok) {
        char want[64], got[96] = "(";
        for (int k = 0; k < a.ndim; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", k ? ", " : "", (long long)a.shape[k]);
        strcat(got, a.ndim == 1 ? ",)" : ")");
        if (cols) snprintf(want, sizeof want, "(%lld, %lld)", (long long)rows, (long long)cols);
        else snprintf(want, sizeof want, "(%lld,)", (long long)rows);
        nt_array_free(&a);
        return nt_fail(err, NT_EINPUT, "%s: transformations[%d].%s has shape %s, must be %s", path, index, what, got, want);
    }
    *out = a.data;
    return NT_OK;
}

int nt_transforms_load(const nt_spec *spec, nt_transform **list, int *n, nt_error *err)
{
    const nt_model *m = &spec->model;
    const int64_t d = m->d, K = m->output;
    for (int i = 0; i < spec->n_transforms; i++) {
        const nt_transform_spec *s = &spec->transforms[i];
        nt_transform t = { .kind = NT_TR_DENSE, .discrete = s->discrete, .generators = 1 };
        snprintf(t.name, sizeof t.name, "%s", s->name);
        const char *mname = s->discrete ? "matrix (T)" : "generator (A)";
        const char *oname = s->discrete ? "output_matrix (rho)" : "output_generator (B)";
        int rc = read_matrix(s->matrix, i, mname, d, d, &t.A, err);
        if (!rc && s->shift[0]) rc = read_matrix(s->shift, i, "shift (c)", d, 0, &t.c, err);
        if (!rc && s->output[0]) rc = read_matrix(s->output, i, oname, K, K, &t.B, err);
        if (rc) {
            free(t.A); free(t.c); free(t.B);
            return rc;
        }
        for (int64_t j = 0; t.B && j < K * K; j++) {   /* B != 0, or rho != I */
            double id = s->discrete && j % (K + 1) == 0 ? 1 : 0;
            t.equivariance |= t.B[j] != id;
        }
        *list = realloc(*list, sizeof **list * (size_t)(*n + 1));
        (*list)[(*n)++] = t;
    }
    return NT_OK;
}
