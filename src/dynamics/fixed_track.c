/* fixed_track.c: the fixed points of discrete symmetries along a training run
 * (docs/theory.md §4).  At a fixed point theta = T theta of an orthogonal symmetry, T g = g:
 * GD, SGD and gradient flow never leave Fix(T), the discrete counterpart of a conservation
 * law, so a run tracks each discrete symmetry's distance of theta to Fix(T).  A step off
 * Fix(T) evolves under GD with step lr, to first order, as delta' = (I - lr H_gamma|perp) delta
 * (fixed.c), so along the breaking directions the symmetric point is stable iff every
 * eigenvalue lambda of H_gamma restricted to Fix(T)^perp has |1 - lr lambda| < 1; this file
 * turns that spectrum into the per-step factor and the predicted distance and sets them
 * beside what the run measured. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "noether.h"

int nt_fixed_tracked(const nt_transform *t)
{
    return t->discrete && !t->equivariance;
}

/* dist_T(theta) = |theta - T theta| / 2 (the distance to Fix(T) for an orthogonal
 * involution: theta - (theta + T theta)/2); work holds d doubles */
static double distance(const nt_model *m, const nt_transform *t, const double *theta, double *work)
{
    nt_tr_apply_T(m, t, theta, work);
    for (int64_t i = 0; i < m->d; i++) work[i] -= theta[i];
    return 0.5 * nt_norm2(m->d, work);
}

int nt_fixed_distances(const nt_model *m, const nt_transform *list, int n, const double *theta, double *dist,
                       nt_error *err)
{
    double *work = malloc(sizeof(double) * (size_t)(m->d > 0 ? m->d : 1));
    if (!work) return nt_fail(err, NT_EFAIL, "out of memory for the distances to fixed points (d = %lld)",
                              (long long)m->d);
    for (int t = 0; t < n; t++) dist[t] = nt_fixed_tracked(&list[t]) ? distance(m, &list[t], theta, work) : 0;
    free(work);
    return NT_OK;
}

int nt_fixed_track_init(nt_fixed_track *tr, const nt_model *m, int n, nt_error *err)
{
    memset(tr, 0, sizeof *tr);
    tr->n = n;
    tr->d = m->d;
    const size_t cells = (size_t)(n > 0 ? n : 1);
    tr->initial = calloc(cells, sizeof(double));
    tr->latest = calloc(cells, sizeof(double));
    tr->first = calloc(cells, sizeof(double));
    tr->second = calloc(cells, sizeof(double));
    tr->work = malloc(sizeof(double) * (size_t)(m->d > 0 ? m->d : 1));
    if (!tr->initial || !tr->latest || !tr->first || !tr->second || !tr->work) {
        nt_fixed_track_free(tr);
        return nt_fail(err, NT_EFAIL, "out of memory for the distances to fixed points (d = %lld)", (long long)m->d);
    }
    return NT_OK;
}

void nt_fixed_track_log(nt_fixed_track *tr, const nt_model *m, const nt_transform *list, int64_t step,
                        const double *theta)
{
    for (int t = 0; t < tr->n; t++) {
        if (!nt_fixed_tracked(&list[t])) continue;
        tr->latest[t] = distance(m, &list[t], theta, tr->work);
        if (tr->n_logs == 0) tr->initial[t] = tr->latest[t];
        if (tr->n_logs == 1) tr->first[t] = tr->latest[t];
        if (tr->n_logs == 2) tr->second[t] = tr->latest[t];
    }
    tr->last_step = step;
    if (tr->n_logs == 1) tr->first_step = step;
    if (tr->n_logs == 2) tr->second_step = step;
    tr->n_logs++;
}

void nt_fixed_track_free(nt_fixed_track *tr)
{
    free(tr->initial);
    free(tr->latest);
    free(tr->first);
    free(tr->second);
    free(tr->work);
    memset(tr, 0, sizeof *tr);
}

/* dist_name: the four arrays, each in n + 1 cells (the last one 0); logs_name: the steps */
void nt_fixed_track_save(nt_checkpoint *c, const nt_fixed_track *tr, const char *dist_name, const char *logs_name)
{
    const int64_t nd = tr->n + 1, logs[4] = {tr->last_step, tr->first_step, tr->second_step, tr->n_logs};
    const double *from[4] = {tr->initial, tr->latest, tr->first, tr->second};
    double *dist = calloc((size_t)(4 * nd), sizeof(double));
    for (int k = 0; k < 4 && dist; k++) memcpy(dist + k * nd, from[k], sizeof(double) * (size_t)tr->n);
    if (dist) nt_checkpoint_put_f64(c, dist_name, 4 * nd, dist);   /* out of memory: the record is missing, and
                                                                      the load refuses the checkpoint naming it */
    nt_checkpoint_put_i64(c, logs_name, 4, logs);
    free(dist);
}

int nt_fixed_track_load(const nt_checkpoint *c, nt_fixed_track *tr, const char *dist_name, const char *logs_name,
                        nt_error *err)
{
    const int64_t nd = tr->n + 1;
    int64_t logs[4];
    double *dist = malloc(sizeof(double) * (size_t)(4 * nd));
    if (!dist) return nt_fail(err, NT_EFAIL, "out of memory for the distances to fixed points");
    int rc = nt_checkpoint_get_f64(c, dist_name, 4 * nd, dist, err);
    if (!rc) rc = nt_checkpoint_get_i64(c, logs_name, 4, logs, err);
    if (!rc) {
        double *to[4] = {tr->initial, tr->latest, tr->first, tr->second};
        for (int k = 0; k < 4; k++) memcpy(to[k], dist + k * nd, sizeof(double) * (size_t)tr->n);
        tr->last_step = logs[0];
        tr->first_step = logs[1];
        tr->second_step = logs[2];
        tr->n_logs = (int)logs[3];
    }
    free(dist);
    return rc;
}

/* One fixed point: the breaking spectrum lambda and theta0's components c on its
 * eigenvectors (nt_breaking_spectrum), then
 *   factor = max_i |1 - lr lambda_i|                       (GD's per-step factor, §4)
 *   d_1    = sqrt(sum_i c_i^2 (1 - lr lambda_i)^(2 t_1))     (the linearized distance at t_1)
 * and the measured factor (d(t_2) / d(t_1))^(1/(t_2 - t_1)). */
static int analyse_one(nt_engine *e, const nt_spec *spec, const nt_dataset *ds, const nt_transform *list, int t,
                       const double *theta0, const nt_fixed_track *tr, const double *dist0, nt_fixed_point *p,
                       nt_error *err)
{
    const nt_model *m = &spec->model;
    const nt_train_spec *ts = &spec->train;
    const int dim = nt_breaking_dim(m, &list[t]);
    double *lam = malloc(sizeof(double) * (size_t)dim), *coef = malloc(sizeof(double) * (size_t)dim);
    if (!lam || !coef) {
        free(lam);
        free(coef);
        return nt_fail(err, NT_EFAIL, "out of memory for the breaking spectrum of %s (%d directions)", list[t].name,
                       dim);
    }
    const int64_t t1 = tr ? tr->first_step : 0;   /* 0 until logged */
    double factor = 0, d1 = 0;
    int rc = nt_breaking_spectrum(e, m, ds, theta0, &list[t], lam, coef, err);
    if (rc != NT_OK) {
        free(lam);
        free(coef);
        return rc;
    }
    for (int i = 0; i < dim; i++) {
        factor = fmax(factor, fabs(1 - ts->lr * lam[i]));
        d1 += coef[i] * coef[i] * pow(1 - ts->lr * lam[i], 2.0 * (double)t1);
    }
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", list[t].name);
    p->entry = t;
    p->breaking_dimension = dim;
    p->lambda_min = lam[0];
    p->lambda_max = lam[dim - 1];
    p->distance_initial = tr ? tr->initial[t] : dist0[t];
    p->distance_final = tr ? tr->latest[t] : NAN;
    p->predicted = ts->optimizer == NT_OPT_GD || ts->optimizer == NT_OPT_SGD;
    p->stable_predicted = factor < 1;
    p->predicted_factor = factor;
    p->first_log_step = -1;
    p->predicted_distance_first_log = p->measured_distance_first_log = p->measured_factor = NAN;
    if (tr && tr->n_logs > 1) {
        p->first_log_step = t1;
        p->predicted_distance_first_log = sqrt(d1);
        p->measured_distance_first_log = tr->first[t];
    }
    if (tr && tr->n_logs > 2 && tr->first[t] > 0 && tr->second[t] > 0)
        p->measured_factor = pow(tr->second[t] / tr->first[t], 1.0 / (double)(tr->second_step - tr->first_step));
    free(lam);
    free(coef);
    return NT_OK;
}

int nt_fixed_points_analyse(nt_engine *e, const nt_spec *spec, const nt_dataset *ds, const nt_transform *list,
                            int n, const double *theta0, const nt_fixed_track *tr, nt_fixed_points *out,
                            nt_error *err)
{
    const nt_init *init = &spec->init;
    int rc = NT_OK, count = 0;
    double *dist0 = NULL;
    memset(out, 0, sizeof *out);
    if (tr && tr->n != n)
        return nt_fail(err, NT_EINPUT, "the distances were tracked on %d transformations, the list has %d", tr->n, n);
    for (int f = 0; f < init->n_fixed; f++)   /* every (name, matching entry) with breaking directions */
        for (int t = 0; t < n; t++)
            count += !strcmp(list[t].name, init->fixed_point[f]) && nt_breaking_dim(&spec->model, &list[t]) > 0;
    if (!count) return NT_OK;
    out->points = calloc((size_t)count, sizeof *out->points);
    if (!out->points) return nt_fail(err, NT_EFAIL, "out of memory for %d fixed points", count);
    if (!tr) {   /* no run: the distances at theta0 */
        dist0 = malloc(sizeof(double) * (size_t)n);
        rc = dist0 ? nt_fixed_distances(&spec->model, list, n, theta0, dist0, err)
                   : nt_fail(err, NT_EFAIL, "out of memory for %d distances", n);
    }
    for (int f = 0; f < init->n_fixed && !rc; f++)
        for (int t = 0; t < n && !rc; t++) {
            if (strcmp(list[t].name, init->fixed_point[f]) || nt_breaking_dim(&spec->model, &list[t]) == 0) continue;
            rc = analyse_one(e, spec, ds, list, t, theta0, tr, dist0, &out->points[out->n], err);
            if (!rc) out->n++;
        }
    free(dist0);
    if (rc) nt_fixed_points_free(out);
    return rc;
}

void nt_fixed_points_free(nt_fixed_points *fp)
{
    free(fp->points);
    fp->points = NULL;
    fp->n = 0;
}
