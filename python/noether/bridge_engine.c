/* bridge_engine.c: the engine's calls of the CPython bridge, in one place, each returning
 * the library's status (NT_OK, or err filled naming what failed): a loss, gradient or
 * product that is not finite is an error, never a number handed to Python. */
#include "bridge.h"

int ntpy_loss(nt_engine *e, const double *theta, const nt_dataset *ds, double *loss, nt_error *err)
{
    *loss = nt_loss_value(e, theta, ds);
    return nt_require_finite(*loss, NULL, 0, "loss", err);
}

int ntpy_grad(nt_engine *e, const double *theta, const nt_dataset *ds, double *loss, double *g, nt_error *err)
{
    *loss = nt_grad(e, theta, ds, g);
    return nt_require_finite(*loss, NULL, 0, "loss", err);
}

int ntpy_hvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *HV,
             nt_error *err)
{
    return nt_require_finite(nt_hvp(e, theta, ds, k, V, HV, NULL), NULL, 0, "loss", err);
}

int ntpy_hessian(nt_engine *e, const double *theta, const nt_dataset *ds, double *H, nt_error *err)
{
    nt_hessian(e, theta, ds, H);
    return NT_OK;
}

int ntpy_check(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, const nt_transform *list,
               int n, double tol, nt_check_result *res, nt_error *err)
{
    if (nt_check(e, m, ds, theta, list, n, tol, res))
        return nt_fail(err, NT_EFAIL, "out of memory for the identities' workspace (d = %lld, %d outputs)",
                       (long long)m->d, m->output);
    return NT_OK;
}
