/* ledger.c: the conserved or tracked quantities of a catalogue and their values.  Every
 * continuous entry with a symmetric generator gives quantities Q = theta^T A theta / 2 +
 * c^T theta (THEORY.md §2): one per rescaled unit (|w|^2 + b^2 - p|a|^2, halved), one per
 * symmetric basis element of gl(n) (E_aa and E_ab + E_ba: the entries of
 * W_l W_l^T + b_l b_l^T - W_{l+1}^T W_{l+1}), one per translation (a sum of last-layer
 * parameters) and the homogeneous norm.  All are evaluated from the structure, at the
 * cost of the generator's support. */
#include <stdlib.h>
#include <string.h>
#include "ledger.h"

static int symmetric_dense(const nt_model *m, const double *A)
{
    const int64_t d = m->d;
    if (!A) return 1;
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++)
            if (A[i * d + j] != A[j * d + i]) return 0;
    return 1;
}

int nt_ledger_quantities(const nt_model *m, const nt_transform *list, int n, nt_quantity **out, int *nq)
{
    nt_quantity *q = NULL;
    int count = 0, cap = 0;
    for (int t = 0; t < n; t++) {
        const nt_transform *T = &list[t];
        if (T->discrete || (T->kind == NT_TR_DENSE && !symmetric_dense(m, T->A))) continue;
        int w = 1;   /* gl(n): n, with n^2 generators */
        while (T->kind == NT_TR_GL && w * w < T->generators) w++;
        for (int i = 0; i < T->generators; i++) {
            int gen2 = -1;
            if (T->kind == NT_TR_GL) {   /* E_ab with a <= b, paired with E_ba */
                int a = i / w, b = i % w;
                if (a > b) continue;
                if (a < b) gen2 = b * w + a;
            }
            if (count == cap) {
                cap = cap ? 2 * cap : 32;
                q = realloc(q, sizeof *q * (size_t)cap);
            }
            nt_quantity *Q = &q[count++];
            memset(Q, 0, sizeof *Q);
            Q->entry = t;
            Q->gen = i;
            Q->gen2 = gen2;
            Q->equivariance = T->equivariance;
            if (T->kind == NT_TR_GL) {
                snprintf(Q->name, sizeof Q->name, "gl_sym[layer=%d,i=%d,j=%d]", T->layer, i / w, i % w);
            } else {
                nt_generator_name(m, T, i, Q->name, sizeof Q->name);
            }
        }
    }
    *out = q;
    *nq = count;
    return NT_OK;
}

double nt_ledger_bilinear(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                          const double *y, const double *x)
{
    const nt_transform *T = &list[q->entry];
    double s = nt_tr_bilinear(m, T, q->gen, y, x);
    if (q->gen2 >= 0) s += nt_tr_bilinear(m, T, q->gen2, y, x);
    return s;
}

double nt_ledger_shift(const nt_model *m, const nt_transform *list, const nt_quantity *q, const double *y)
{
    return nt_tr_shift_dot(m, &list[q->entry], q->gen, y);
}

double nt_quantity_value(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                         const double *theta)
{
    return 0.5 * nt_ledger_bilinear(m, list, q, theta, theta) + nt_ledger_shift(m, list, q, theta);
}

double nt_quantity_magnitude(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                             const double *theta)
{
    const nt_transform *T = &list[q->entry];
    double s = nt_tr_magnitude(m, T, q->gen, theta);
    if (q->gen2 >= 0) s += nt_tr_magnitude(m, T, q->gen2, theta);
    return s;
}
