/* ledger.h: the structured forms behind the ledger (ledger.c), shared with train.c. */
#ifndef NT_LEDGER_H
#define NT_LEDGER_H
#include "noether.h"

/* y^T A x and c^T y of quantity q (A symmetric). */
double nt_ledger_bilinear(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                          const double *y, const double *x);
double nt_ledger_shift(const nt_model *m, const nt_transform *list, const nt_quantity *q, const double *y);

/* The magnitude of Q's terms at theta (see nt_tr_magnitude). */
double nt_quantity_magnitude(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                             const double *theta);

#endif
