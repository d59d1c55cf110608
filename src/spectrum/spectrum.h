/* spectrum.h: the spectral core (lanczos.c, dense.c, density.c). */
#ifndef NT_SPECTRUM_H
#define NT_SPECTRUM_H
#include "noether.h"

/* A symmetric linear operator on R^n, applied to a block of k vectors at once:
 * Y (k x n, rows) = A X (k x n, rows).  block: the largest k the callback takes at once. */
typedef void (*nt_apply_fn)(void *ctx, int k, const double *X, double *Y);
typedef struct { int64_t n; int block; nt_apply_fn apply; void *ctx; } nt_operator;

int nt_eigen_dense(const nt_operator *op, double *values, double *vectors, nt_error *err);
int nt_eigen_lanczos(const nt_operator *op, int nev, int largest, double tol, double *values,
                     double *vectors, int *n_products, nt_error *err);
int nt_slq(const nt_operator *op, int n_probes, int m, uint64_t seed, double *nodes, double *weights,
           nt_error *err);
void nt_density_grid(const double *nodes, const double *weights, int n_nodes, double sigma,
                     const double *x, int npts, double *rho);
double nt_hutchinson(const nt_operator *op, int n_probes, uint64_t seed, double *std_error);

#endif
