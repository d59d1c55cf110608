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

/* batch normalization: the whole data set in one chunk */
static void fit(nt_engine *e, const nt_dataset *ds)
{
    if (e->coupled) nt_engine_fit(e, ds->n);
}

/* The whole data set: loss sum, and with `what` the gradient sum (into g) and the
 * tangent sums (into HV, kk x d). */
static double sweep(nt_engine *e, const double *theta, const nt_dataset *ds, int kk,
                    const double *V, double *g, double *HV, int what)
{
    const int last = e->n_nodes - 1;
    fit(e, ds);
    e->theta = theta;
    e->V = V;
    e->kk = kk;
    e->g = g;
    e->HV = HV;
    e->loss_sum = 0;
    if (g) memset(g, 0, sizeof(double) * (size_t)e->d);
    if (HV) memset(HV, 0, sizeof(double) * (size_t)(kk * e->d));
    for (int64_t s = 0; s < ds->n; s += e->chunk) {
        int64_t n = ds->n - s < e->chunk ? ds->n - s : e->chunk;
        forward(e, ds, s, n, last, what);
        if (what & PASS_ADJ) backward(e, last, what);
    }
    return e->loss_sum;
}

/* The hook's turn: [loss sum | g sums (d) | HV sums (kk x d)] (the parts computed) copied
 * into one contiguous buffer, handed with N, copied back.  Without a hook nothing is touched,
 * so the results are bitwise those of an engine that has none. */
static double reduce(nt_engine *e, double sum, double *g, int kk, double *HV, int64_t *N)
{
    if (!e->reduce) return sum;
    const size_t d = (size_t)e->d, nhv = HV ? (size_t)kk * d : 0;
    double *b = e->red;
    b[0] = sum;
    if (g) memcpy(b + 1, g, sizeof(double) * d);
    if (nhv) memcpy(b + 1 + (g ? d : 0), HV, sizeof(double) * nhv);
    e->reduce(e->reduce_ctx, b, (int64_t)(1 + (g ? d : 0) + nhv), N);
    if (g) memcpy(g, b + 1, sizeof(double) * d);
    if (nhv) memcpy(HV, b + 1 + (g ? d : 0), sizeof(double) * nhv);
    return b[0];
}

void nt_engine_reduce(nt_engine *e, double *sums, int64_t len, int64_t *n)
{
    if (e->reduce) e->reduce(e->reduce_ctx, sums, len, n);
}

int nt_engine_sharded(const nt_engine *e)
{
    return e->reduce != NULL;
}

/* sum / N + gamma-term, for the loss, the gradient and the products; N and the sums are
 * first those of every shard when a hook is set */
static double finish(nt_engine *e, const double *theta, const nt_dataset *ds, double sum,
                     double *g, int kk, const double *V, double *HV)
{
    int64_t N = ds->n;
    sum = reduce(e, sum, g, kk, HV, &N);
    const double inv = 1.0 / (double)N, gam = e->m->weight_decay;
    const int d = (int)e->d;
    if (g) {
        cblas_dscal(d, inv, g, 1);
        if (gam != 0) cblas_daxpy(d, gam, theta, 1, g, 1);
    }
    for (int j = 0; HV && j < kk; j++) {
        cblas_dscal(d, inv, HV + (int64_t)j * d, 1);
        if (gam != 0) cblas_daxpy(d, gam, V + (int64_t)j * d, 1, HV + (int64_t)j * d, 1);
    }
    double loss = sum * inv;
    if (gam != 0) loss += 0.5 * gam * cblas_ddot(d, theta, 1, theta, 1);
    return loss;
}

double nt_loss_value(nt_engine *e, const double *theta, const nt_dataset *ds)
{
    double s = sweep(e, theta, ds, 0, NULL, NULL, NULL, 0);
    return finish(e, theta, ds, s, NULL, 0, NULL, NULL);
}

double nt_grad(nt_engine *e, const double *theta, const nt_dataset *ds, double *g)
{
    double s = sweep(e, theta, ds, 0, NULL, g, NULL, PASS_ADJ);
    return finish(e, theta, ds, s, g, 0, NULL, NULL);
}

double nt_hvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k,
              const double *V, double *HV, double *g)
{
    double loss = 0;   /* g == NULL: the adjoints are needed, the parameter gradient is not */
    /* blocks of at most e->k tangents */
    for (int j0 = 0; j0 < k; j0 += e->k) {
        int kk = k - j0 < e->k ? k - j0 : e->k;
        const double *Vj = V + (int64_t)j0 * e->d;
        double *HVj = HV + (int64_t)j0 * e->d;
        double s = !g && nt_engine_frozen_at(e, theta, ds) ? nt_frozen_sweep(e, kk, Vj, HVj)
                   : sweep(e, theta, ds, kk, Vj, g, HVj, PASS_TAN | PASS_ADJ | PASS_ADJTAN);
        loss = finish(e, theta, ds, s, g, kk, Vj, HVj);
    }
    return loss;
}

void nt_hessian(nt_engine *e, const double *theta, const nt_dataset *ds, double *H)
{
    const int64_t d = e->d;
    for (int64_t j0 = 0; j0 < d; j0 += e->k) {
        int kk = d - j0 < e->k ? (int)(d - j0) : e->k;
        memset(e->vbuf, 0, sizeof(double) * (size_t)(kk * d));
        for (int j = 0; j < kk; j++) e->vbuf[j * d + j0 + j] = 1.0;
        /* row j0 + j of H is (H e_{j0+j})^T: H is symmetric */
        nt_hvp(e, theta, ds, kk, e->vbuf, H + j0 * d, NULL);
    }
}

/* ---- model outputs, their JVP and VJP --------------------------------------------- */

void nt_outputs(nt_engine *e, const double *theta, const nt_dataset *ds, double *F)
{
    const int out = e->n_nodes - 2, K = e->m->output;
    fit(e, ds);
    e->theta = theta;
    for (int64_t s = 0; s < ds->n; s += e->chunk) {
        int64_t n = ds->n - s < e->chunk ? ds->n - s : e->chunk;
        forward(e, ds, s, n, out, 0);
        memcpy(F + s * K, e->nodes[out].val, sizeof(double) * (size_t)(n * K));
    }
}

void nt_jvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k,
            const double *V, double *Fdot)
{
    const int out = e->n_nodes - 2, K = e->m->output;
    fit(e, ds);
    e->theta = theta;
    for (int j0 = 0; j0 < k; j0 += e->k) {
        int kk = k - j0 < e->k ? k - j0 : e->k;
        e->V = V + (int64_t)j0 * e->d;
        e->kk = kk;
        for (int64_t s = 0; s < ds->n; s += e->chunk) {
            int64_t n = ds->n - s < e->chunk ? ds->n - s : e->chunk;
            forward(e, ds, s, n, out, PASS_TAN);
            const double *t = e->nodes[out].tan;
            for (int64_t r = 0; r < n; r++)   /* Fdot is n x k x K; the block is n x kk x K */
                memcpy(Fdot + ((s + r) * k + j0) * K, t + r * kk * K, sizeof(double) * (size_t)(kk * K));
        }
    }
}

void nt_vjp(nt_engine *e, const double *theta, const nt_dataset *ds, const double *Fbar,
            double *out_g)
{
    const int out = e->n_nodes - 2, K = e->m->output;
    fit(e, ds);
    e->theta = theta;
    e->kk = 0;
    e->g = out_g;
    memset(out_g, 0, sizeof(double) * (size_t)e->d);
    for (int64_t s = 0; s < ds->n; s += e->chunk) {
        int64_t n = ds->n - s < e->chunk ? ds->n - s : e->chunk;
        forward(e, ds, s, n, out, 0);
        memcpy(e->nodes[out].adj, Fbar + s * K, sizeof(double) * (size_t)(n * K));
        backward(e, out, 0);
    }
}
