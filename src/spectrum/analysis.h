/* analysis.h: the symmetry predictions of predict.c, called by nt_spectrum_analyse
 * (analysis.c), and the eigensolvers' shared ordering (lanczos.c); internal to the library. */
#ifndef NT_SPECTRUM_ANALYSIS_H
#define NT_SPECTRUM_ANALYSIS_H
#include "noether.h"

/* order[i] (n entries): the index of the i-th largest (largest) or smallest value of val */
void nt_eigen_order(const double *val, int n, int largest, int *order);

/* The flat view into f: the orbit (rank tolerance tol), the counts found in values (all n
 * eigenvalues ascending, or NULL), (S1gamma) on random combinations, each generator's |H xi|. */
int nt_predict_flat(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                    const double *theta, const double *g, const double *values, int64_t n_values, double tol, int each,
                    nt_flat_view *f, nt_error *err);
/* The sharp view into s (s->applies 0 when the model is not bias-free homogeneous). */
int nt_predict_sharp(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                     const double *theta, double lambda_max, nt_sharp_view *s, nt_error *err);
/* The S_n sectors and the mirrors into r->sectors, r->mirrors. */
int nt_predict_sectors(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                       const double *theta, const nt_progress *p, nt_spectrum *r, nt_error *err);
/* Per scale-invariant block, the alignment of its gradient with the top k eigenpairs (U rows, lam). */
int nt_predict_scale_alignment(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                               const double *theta, const double *g, const double *U, const double *lam, int k,
                               nt_scale_alignment **out, int *n_out, nt_error *err);
#endif
