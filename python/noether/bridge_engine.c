/* bridge_engine.c: the engine's calls of the CPython bridge, in one place, each returning
 * the library's status (NT_OK, or err filled naming what failed).  The engine checks shapes,
 * not values: a loss that is not finite (a theta with NaN or Inf, an overflow) is made an
 * error here, so that no such number is handed to Python as a result. */
#include "bridge.h"

int ntpy_loss(nt_engine *e, const double *theta, const nt_dataset *ds, double *loss, nt_error *err)
{
    int rc = nt_loss_value(e, theta, ds, loss, err);
    return rc ? rc : nt_require_finite(*loss, NULL, 0, "loss", err);
}

int ntpy_grad(nt_engine *e, const double *theta, const nt_dataset *ds, double *loss, double *g, nt_error *err)
{
    int rc = nt_grad(e, theta, ds, loss, g, err);
    return rc ? rc : nt_require_finite(*loss, NULL, 0, "loss", err);
}

int ntpy_hvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *HV,
             nt_error *err)
{
    double loss = 0;
    int rc = nt_hvp(e, theta, ds, k, V, HV, NULL, &loss, err);
    return rc ? rc : nt_require_finite(loss, NULL, 0, "loss", err);
}

int ntpy_hessian(nt_engine *e, const double *theta, const nt_dataset *ds, double *H, nt_error *err)
{
    double loss = 0;   /* one more forward pass, so that a theta with NaN is refused, not differentiated */
    int rc = ntpy_loss(e, theta, ds, &loss, err);
    return rc ? rc : nt_hessian(e, theta, ds, H, err);
}

int ntpy_check(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, const nt_transform *list,
               int n, double tol, nt_check_result *res, nt_error *err)
{
    return nt_check(e, m, ds, theta, list, n, tol, res, err);
}
