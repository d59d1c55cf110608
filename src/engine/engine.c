/* engine.c: the entry points.  Each runs the tape chunk by chunk over the samples,
 * accumulating sums, then divides by N once and adds weight decay:
 *     L_gamma = L + (gamma/2)|theta|^2,  g_gamma = g + gamma theta,  H_gamma v = H v + gamma v.
 * Between the sweep and the finish, a reduction hook (nt_engine_set_reduce) may replace the
 * sums and N of this process's samples by those of every shard: the seam of data
 * parallelism (sum_n over shards of sum over their samples = the sum over all samples). */
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "tape.h"

/* What one pass over a chunk computes. */
enum { PASS_TAN = 1, PASS_ADJ = 2, PASS_ADJTAN = 4 };

/* Runs the tape on rows [start, start + n) through node `last` (inclusive); with PASS_ADJ
 * the reverse sweep starts from `last`, whose adjoint the caller has seeded when `last` is
 * not the loss head. */
static void forward(nt_engine *e, const nt_dataset *ds, int64_t start, int64_t n, int last, int what)
{
    e->n = n;
    e->nodes[0].val = ds->x + start * ds->dim;
    e->y = ds->y ? ds->y + start * ds->ydim : NULL;
    for (int i = 1; i <= last; i++) {
        nt_node *p = &e->nodes[i];
        nt_op_run(e, p, NT_FWD);
        if ((what & PASS_TAN) && p->has_tan) nt_op_run(e, p, NT_TAN);
    }
}

static void backward(nt_engine *e, int last, int what)
{
    for (int i = last; i >= 1; i--) {
        nt_node *p = &e->nodes[i];
        if (!p->need_adj) continue;
        nt_op_run(e, p, NT_ADJ);
        if (what & PASS_ADJTAN) nt_op_run(e, p, NT_ADJTAN);
    }
}

/* A shard holding none of a pass's rows still runs it, with no rows, when batch
 * normalization synchronizes its statistics through the hook: the other shards wait for its
 * (zero) sums (ops_bnorm.c, bn_sync). */
static int empty_pass(const nt_engine *e, const nt_dataset *ds)
{
    return ds->n == 0 && e->coupled && e->reduce;
}

/* The hook's error met inside a pass (synchronized batch norm), or NT_OK. */
static int sync_status(const nt_engine *e, nt_error *err)
{
    if (e->sync_rc == NT_OK) return NT_OK;
    if (err) *err = e->sync_err;
    return e->sync_rc;
}

/* What every entry point checks before a sweep (cheap: shapes, not values; nt_dataset_check
 * checks the values once): a data set of the model's input width, targets of the loss's
 * width when the loss is computed, and for batch normalization the whole data set in one
 * chunk (its statistics are over every sample: a smaller workspace would give wrong ones). */
int nt_engine_ready(nt_engine *e, const double *theta, const nt_dataset *ds, int with_loss, nt_error *err)
{
    const nt_model *m = e->m;
    if (!theta) return nt_fail(err, NT_EINPUT, "engine: no parameter vector");
    /* a shard (an engine with a reduction hook) may hold none of a minibatch's rows: its sums
     * are zero, the total count is checked after the reduction */
    if (!ds || ds->n < 0 || (ds->n == 0 && !e->reduce) || (ds->n > 0 && !ds->x))
        return nt_fail(err, NT_EINPUT, "engine: the data set has no samples");
    if (ds->dim != m->input)
        return nt_fail(err, NT_EINPUT, "engine: the data set has %d features per sample, the model takes %d", ds->dim,
                       m->input);
    const int ydim = m->loss == NT_LOSS_MSE ? m->output : 1;
    if (with_loss && (!ds->y || ds->ydim != ydim))
        return nt_fail(err, NT_EINPUT, "engine: the data set has %d targets per sample, %s loss with %d outputs takes %d",
                       ds->y ? ds->ydim : 0, nt_loss_name(m->loss), m->output, ydim);
    e->sync_rc = NT_OK;
    if (e->coupled && nt_engine_fit(e, ds->n) != NT_OK)
        return nt_fail(err, NT_EFAIL, "engine: batch normalization needs all %lld samples in one chunk: out of memory",
                       (long long)ds->n);
    return NT_OK;
}

/* The rows of ds on this engine alone: loss sum, and with `what` the gradient sum (into g)
 * and the tangent sums (into HV, kk x d). */
static double sweep_rows(nt_engine *e, const double *theta, const nt_dataset *ds, int kk,
                         const double *V, double *g, double *HV, int what)
{
    const int last = e->n_nodes - 1;
    e->theta = theta;
    e->V = V;
    e->kk = kk;
    e->g = g;
    e->HV = HV;
    e->loss_sum = 0;
    if (g) memset(g, 0, sizeof(double) * (size_t)e->d);
    if (HV) memset(HV, 0, sizeof(double) * (size_t)(kk * e->d));
    for (int64_t s = 0; s < ds->n || (s == 0 && empty_pass(e, ds)); s += e->chunk) {
        int64_t n = ds->n - s < e->chunk ? ds->n - s : e->chunk;
        forward(e, ds, s, n, last, what);
        if (what & PASS_ADJ) backward(e, last, what);
    }
    return e->loss_sum;
}

/* One sweep's arguments, and each lane's loss sum; lane t > 0 sums g and HV into its
 * engine's own buffer (lanes.c). */
typedef struct {
    const double *theta, *V;
    int kk, what, frozen;
    double *g, *HV;
    double sum[NT_MAX_LANES];
} sweep_args;

static void sweep_lane(nt_engine *le, const nt_dataset *rows, int t, void *arg)
{
    sweep_args *a = arg;
    double *g = a->g && t ? le->sums : a->g, *HV = a->HV && t ? le->sums + le->d : a->HV;
    a->sum[t] = a->frozen ? nt_frozen_sweep(le, a->kk, a->V, HV)
                          : sweep_rows(le, a->theta, rows, a->kk, a->V, g, HV, a->what);
}

/* Without a reduction hook, the lanes' add of g and HV (sweep) also divides them by N: one
 * pass fewer over k d doubles, the same bits; finish then does not. */
static int lanes_divide(const nt_engine *e, const nt_dataset *ds)
{
    return nt_lanes_for(e, ds) > 1 && !e->reduce;
}

/* The whole data set, over the engine's lanes (frozen: the kept values of nt_engine_freeze);
 * the lanes' sums are added in lane order into *sum, g and HV (divided by N: lanes_divide). */
static int sweep(nt_engine *e, const double *theta, const nt_dataset *ds, int kk, const double *V, double *g,
                 double *HV, int what, int frozen, double *sum, nt_error *err)
{
    sweep_args a = { .theta = theta, .V = V, .kk = kk, .what = what, .frozen = frozen, .g = g, .HV = HV };
    const int T = nt_lanes_for(e, ds);
    if (T == 1) {
        sweep_lane(e, ds, 0, &a);
    } else if (nt_lanes_run(e, ds, T, sweep_lane, &a, g, HV, (int64_t)kk * e->d,
                            lanes_divide(e, ds) ? 1.0 / (double)ds->n : 1.0) != NT_OK) {
        return nt_fail(err, NT_EFAIL, "engine: %d lanes of %lld samples: out of memory or no threads", T,
                       (long long)ds->n);
    }
    *sum = a.sum[0];
    for (int t = 1; t < T; t++) *sum += a.sum[t];
    return NT_OK;
}

/* The hook's turn: [loss sum | g sums (d) | HV sums (kk x d)] (the parts computed) copied
 * into one contiguous buffer, handed with N, copied back.  Without a hook nothing is touched,
 * so the results are bitwise those of an engine that has none. */
static int reduce(nt_engine *e, double *sum, double *g, int kk, double *HV, int64_t *N, nt_error *err)
{
    if (!e->reduce) return NT_OK;
    const size_t d = (size_t)e->d, nhv = HV ? (size_t)kk * d : 0;
    double *b = e->red;
    b[0] = *sum;
    if (g) memcpy(b + 1, g, sizeof(double) * d);
    if (nhv) memcpy(b + 1 + (g ? d : 0), HV, sizeof(double) * nhv);
    int rc = e->reduce(e->reduce_ctx, b, (int64_t)(1 + (g ? d : 0) + nhv), N, err);
    if (rc != NT_OK) return rc;
    if (*N < 1) return nt_fail(err, NT_EFAIL, "engine: the reduction hook returned %lld samples", (long long)*N);
    if (g) memcpy(g, b + 1, sizeof(double) * d);
    if (nhv) memcpy(HV, b + 1 + (g ? d : 0), sizeof(double) * nhv);
    *sum = b[0];
    return NT_OK;
}

int nt_engine_reduce(nt_engine *e, double *sums, int64_t len, int64_t *n, nt_error *err)
{
    return e->reduce ? e->reduce(e->reduce_ctx, sums, len, n, err) : NT_OK;
}

int nt_engine_sharded(const nt_engine *e)
{
    return e->reduce != NULL;
}

/* sum / N + gamma-term, for the loss, the gradient and the products (g and HV divided already
 * when lanes_divide); N and the sums are first those of every shard when a hook is set */
static int finish(nt_engine *e, const double *theta, const nt_dataset *ds, double sum,
                  double *g, int kk, const double *V, double *HV, double *loss, nt_error *err)
{
    int64_t N = ds->n;
    int rc = sync_status(e, err);
    if (rc == NT_OK) rc = reduce(e, &sum, g, kk, HV, &N, err);
    if (rc != NT_OK) return rc;
    const double inv = 1.0 / (double)N, gam = e->m->weight_decay;
    const int scaled = lanes_divide(e, ds);
    const int d = (int)e->d;
    if (g) {
        if (!scaled) cblas_dscal(d, inv, g, 1);
        if (gam != 0) cblas_daxpy(d, gam, theta, 1, g, 1);
    }
    for (int j = 0; HV && j < kk; j++) {
        if (!scaled) cblas_dscal(d, inv, HV + (int64_t)j * d, 1);
        if (gam != 0) cblas_daxpy(d, gam, V + (int64_t)j * d, 1, HV + (int64_t)j * d, 1);
    }
    double L = sum * inv;
    if (gam != 0) L += 0.5 * gam * cblas_ddot(d, theta, 1, theta, 1);
    if (loss) *loss = L;
    return NT_OK;
}

int nt_loss_value(nt_engine *e, const double *theta, const nt_dataset *ds, double *loss, nt_error *err)
{
    int rc = nt_engine_ready(e, theta, ds, 1, err);
    if (rc != NT_OK) return rc;
    double s = 0;
    rc = sweep(e, theta, ds, 0, NULL, NULL, NULL, 0, 0, &s, err);
    return rc != NT_OK ? rc : finish(e, theta, ds, s, NULL, 0, NULL, NULL, loss, err);
}

int nt_grad(nt_engine *e, const double *theta, const nt_dataset *ds, double *loss, double *g, nt_error *err)
{
    int rc = nt_engine_ready(e, theta, ds, 1, err);
    if (rc != NT_OK) return rc;
    double s = 0;
    rc = sweep(e, theta, ds, 0, NULL, g, NULL, PASS_ADJ, 0, &s, err);
    return rc != NT_OK ? rc : finish(e, theta, ds, s, g, 0, NULL, NULL, loss, err);
}

int nt_hvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *HV,
           double *g, double *loss, nt_error *err)
{
    int rc = nt_engine_ready(e, theta, ds, 1, err);
    if (rc == NT_OK && (k < 1 || !V || !HV)) rc = nt_fail(err, NT_EINPUT, "engine: no vectors to multiply (k = %d)", k);
    /* g == NULL: the adjoints are needed, the parameter gradient is not; blocks of at most
     * e->k tangents */
    for (int j0 = 0; rc == NT_OK && j0 < k; j0 += e->k) {
        int kk = k - j0 < e->k ? k - j0 : e->k;
        const double *Vj = V + (int64_t)j0 * e->d;
        double *HVj = HV + (int64_t)j0 * e->d;
        double s = 0;
        rc = sweep(e, theta, ds, kk, Vj, g, HVj, PASS_TAN | PASS_ADJ | PASS_ADJTAN,
                   !g && nt_engine_frozen_at(e, theta, ds), &s, err);
        if (rc == NT_OK) rc = finish(e, theta, ds, s, g, kk, Vj, HVj, loss, err);
    }
    return rc;
}

int nt_hessian(nt_engine *e, const double *theta, const nt_dataset *ds, double *H, nt_error *err)
{
    return nt_hessian_progress(e, theta, ds, H, NULL, err);
}

int nt_hessian_progress(nt_engine *e, const double *theta, const nt_dataset *ds, double *H, const nt_progress *p,
                        nt_error *err)
{
    const int64_t d = e->d;
    int rc = NT_OK;
    nt_progress_report(p, "dense Hessian (products with unit vectors)", 0, d);
    for (int64_t j0 = 0; rc == NT_OK && j0 < d; j0 += e->k) {
        int kk = d - j0 < e->k ? (int)(d - j0) : e->k;
        memset(e->vbuf, 0, sizeof(double) * (size_t)(kk * d));
        for (int j = 0; j < kk; j++) e->vbuf[j * d + j0 + j] = 1.0;
        /* row j0 + j of H is (H e_{j0+j})^T: H is symmetric */
        rc = nt_hvp(e, theta, ds, kk, e->vbuf, H + j0 * d, NULL, NULL, err);
        if (rc == NT_OK) nt_progress_report(p, "dense Hessian (products with unit vectors)", j0 + kk, d);
    }
    return rc;
}

/* ---- model outputs, their JVP and VJP --------------------------------------------- */

int nt_outputs(nt_engine *e, const double *theta, const nt_dataset *ds, double *F, nt_error *err)
{
    const int out = e->n_nodes - 2, K = e->m->output;
    int rc = nt_engine_ready(e, theta, ds, 0, err);
    if (rc != NT_OK) return rc;
    e->theta = theta;
    for (int64_t s = 0; s < ds->n || (s == 0 && empty_pass(e, ds)); s += e->chunk) {
        int64_t n = ds->n - s < e->chunk ? ds->n - s : e->chunk;
        forward(e, ds, s, n, out, 0);
        memcpy(F + s * K, e->nodes[out].val, sizeof(double) * (size_t)(n * K));
    }
    return sync_status(e, err);
}

int nt_jvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *Fdot,
           nt_error *err)
{
    const int out = e->n_nodes - 2, K = e->m->output;
    int rc = nt_engine_ready(e, theta, ds, 0, err);
    if (rc != NT_OK) return rc;
    e->theta = theta;
    for (int j0 = 0; j0 < k; j0 += e->k) {
        int kk = k - j0 < e->k ? k - j0 : e->k;
        e->V = V + (int64_t)j0 * e->d;
        e->kk = kk;
        for (int64_t s = 0; s < ds->n || (s == 0 && empty_pass(e, ds)); s += e->chunk) {
            int64_t n = ds->n - s < e->chunk ? ds->n - s : e->chunk;
            forward(e, ds, s, n, out, PASS_TAN);
            const double *t = e->nodes[out].tan;
            for (int64_t r = 0; r < n; r++)   /* Fdot is n x k x K; the block is n x kk x K */
                memcpy(Fdot + ((s + r) * k + j0) * K, t + r * kk * K, sizeof(double) * (size_t)(kk * K));
        }
    }
    return sync_status(e, err);
}

/* Forward-over-reverse from the output node instead of the loss: its adjoint seeded with
 * Fbar (a constant weighting, so the adjoint's tangent is seeded with zero).  The parameter
 * adjoint is J^T Fbar; its tangent along v_j is the Hessian of Fbar . f applied to v_j. */
int nt_output_hvp(nt_engine *e, const double *theta, const nt_dataset *ds, const double *Fbar, int k, const double *V,
                  double *HV, double *g, nt_error *err)
{
    const int out = e->n_nodes - 2, K = e->m->output;
    int rc = nt_engine_ready(e, theta, ds, 0, err);
    if (rc == NT_OK && (k < 1 || !V || !HV || !Fbar))
        rc = nt_fail(err, NT_EINPUT, "engine: no vectors to multiply (k = %d)", k);
    if (rc != NT_OK) return rc;
    nt_node *o = &e->nodes[out];
    e->theta = theta;
    if (g) memset(g, 0, sizeof(double) * (size_t)e->d);
    memset(HV, 0, sizeof(double) * (size_t)k * (size_t)e->d);
    for (int j0 = 0; j0 < k; j0 += e->k) {
        int kk = k - j0 < e->k ? k - j0 : e->k;
        e->V = V + (int64_t)j0 * e->d;
        e->kk = kk;
        e->HV = HV + (int64_t)j0 * e->d;
        e->g = j0 == 0 ? g : NULL;   /* the first block's adjoint is J^T Fbar */
        for (int64_t s = 0; s < ds->n; s += e->chunk) {
            int64_t n = ds->n - s < e->chunk ? ds->n - s : e->chunk;
            forward(e, ds, s, n, out, PASS_TAN);
            memcpy(o->adj, Fbar + s * K, sizeof(double) * (size_t)(n * K));
            memset(o->adjtan, 0, sizeof(double) * (size_t)(n * kk * K));
            backward(e, out, PASS_ADJTAN);
        }
    }
    return NT_OK;
}

int nt_vjp(nt_engine *e, const double *theta, const nt_dataset *ds, const double *Fbar, double *out_g,
           nt_error *err)
{
    const int out = e->n_nodes - 2, K = e->m->output;
    int rc = nt_engine_ready(e, theta, ds, 0, err);
    if (rc != NT_OK) return rc;
    e->theta = theta;
    e->kk = 0;
    e->g = out_g;
    memset(out_g, 0, sizeof(double) * (size_t)e->d);
    for (int64_t s = 0; s < ds->n || (s == 0 && empty_pass(e, ds)); s += e->chunk) {
        int64_t n = ds->n - s < e->chunk ? ds->n - s : e->chunk;
        forward(e, ds, s, n, out, 0);
        memcpy(e->nodes[out].adj, Fbar + s * K, sizeof(double) * (size_t)(n * K));
        backward(e, out, 0);
    }
    return sync_status(e, err);
}
