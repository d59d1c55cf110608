/* ledger.h: the structured forms behind the ledger (ledger.c), shared with train.c. */
#ifndef NT_LEDGER_H
#define NT_LEDGER_H
#include "noether.h"

/* y^T A x and c^T y of quantity q (A symmetric). */
double nt_ledger_bilinear(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                          const double *y, const double *x);
double nt_ledger_shift(const nt_model *m, const nt_transform *list, const nt_quantity *q, const double *y);

/* Where each quantity's forms are read (which sums, which supports), and room for the sums:
 * made once for a list of quantities, used by every nt_ledger_forms on them.  NULL: out of
 * memory. */
#define NT_LEDGER_PAIRS 4   /* pairs (y, x) a call may ask */
typedef struct nt_ledger_plan nt_ledger_plan;
nt_ledger_plan *nt_ledger_plan_new(const nt_model *m, const nt_transform *list, const nt_quantity *q, int nq);
void nt_ledger_plan_free(nt_ledger_plan *plan);

/* out[p nq + j] = y_p^T A_j x_p for np <= NT_LEDGER_PAIRS pairs and all nq quantities of the
 * plan at once: one pass over theta's layout for the pairs, then O(1) per diagonal move
 * (off-diagonal moves over their support).  magnitude (may be NULL) receives, for the last
 * pair with y = x = theta, the magnitude of each Q's terms (nt_tr_magnitude).  With produce,
 * y and x are made during the pass: produce(ctx, lo, hi, to) is called on consecutive ranges
 * covering [0, d), each before the pass reads y or x there, so that a training step writes
 * them while they are in cache (train.c).  produce may be NULL.  For a training step's pairs
 * ((s, t), (s_decay, t), (s, s), (t, t): made vectors s, s_decay, t) to is NULL where the made
 * vectors are read after the pass, and there produce writes them in place; on a row of a
 * weight matrix read only through its sums it is three rows of scratch, and produce writes
 * element lo + i of s, s_decay and t at to[0][i], to[1][i] and to[2][i] instead (all three),
 * leaving the vectors' own places unwritten. */
typedef void (*nt_range_fn)(void *ctx, int64_t lo, int64_t hi, double *const *to);
void nt_ledger_forms(const nt_model *m, const nt_transform *list, const nt_quantity *q, nt_ledger_plan *plan,
                     int np, const double *const *y, const double *const *x, double *out, double *magnitude,
                     nt_range_fn produce, void *ctx);

/* The magnitude of Q's terms at theta (see nt_tr_magnitude). */
double nt_quantity_magnitude(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                             const double *theta);

#endif
