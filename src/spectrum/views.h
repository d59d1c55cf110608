/* views.h: the Hessian operator and the symmetry-aware views (views.c). */
#ifndef NT_VIEWS_H
#define NT_VIEWS_H
#include "spectrum.h"

/* The Hessian H_gamma at theta as an operator on the coordinates [off, off + n) of theta
 * (a restriction to named tensors), deflated by the orthonormal rows of Q (r x d) when Q is
 * not NULL: x -> P H P x, P = I - Q^T Q.  The context owns workspaces of the engine's block. */
typedef struct {
    nt_engine *e;
    const nt_dataset *ds;
    const double *theta;
    int64_t d, off, n;
    const double *Q;
    int r, block;
    double *X, *Y;
} nt_hessian_ctx;

nt_operator nt_hessian_operator(nt_hessian_ctx *h, nt_engine *e, const nt_model *m, const nt_dataset *ds,
                                const double *theta, int64_t off, int64_t n, const double *Q, int r);
void nt_hessian_operator_free(nt_hessian_ctx *h);

/* An orthonormal basis Q (rank x d, malloc'd) of the orbit span of the continuous symmetries
 * (B = 0) of list at theta; sv (malloc'd, n_gen entries) the singular values of the
 * generator matrix, descending; the rank counts those above tol * sv[0]. */
int nt_orbit_basis(const nt_model *m, const nt_transform *list, int n, const double *theta, double tol,
                   double **Q, double **sv, int *n_gen);

/* The S_n sector of hidden layer `layer`: theta projected onto Fix(S_n) into theta_sym
 * (copied as is unless `project`), and the eigenvalues (ascending) of H_gamma there on the
 * breaking subspace into lam (room for nt_sn_sector_dim); returns that dimension, (n - 1)
 * times the size of a unit. */
int nt_sn_sector_dim(const nt_model *m, int layer);
int nt_sn_sector(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, int layer,
                 int project, double *theta_sym, double *lam);
/* Groups of ascending values closer than tol: their sizes into mult; returns the count. */
int nt_multiplicities(const double *lam, int n, double tol, int *mult);

#endif
