/* lie.c: the number of conservation laws of gradient flow (docs/theory.md §7).  A function
 * h(theta) is conserved by the flow of every loss of the outputs exactly when grad h is
 * orthogonal to every field X_{k,x}(theta) = grad_theta f_k(theta; x) (over outputs k and
 * inputs x) and so, by Frobenius, to the Lie algebra Lie(W) they generate under the
 * bracket [X, Y] = DY X - DX Y.  The number of independent laws near theta is
 *     d - dim Lie(W)(theta)                  (Marcotte, Gribonval & Peyre 2023).
 * Fields are the rows of J on random inputs x_n ~ N(0, I) ("any data"), then random
 * combinations X_a = J^T a (a vector-Jacobian product) over all of them, and their brackets
 *     [X_a, X_b] = H_b X_a - H_a X_b,     H_a = Hess (a . f)      (exact: nt_output_hvp)
 *     [X_c, Y]   = DY X_c - H_c Y         (DY X_c by central differences of Y at theta +- h X_c,
 *                                          Richardson-extrapolated; Y exact at depth 3, itself
 *                                          such a difference at depth 4)
 * Each candidate joins an orthonormal basis when its residual off the basis is above tol
 * of its norm; a level ends when STALL candidates in a row add nothing (a random
 * combination has a component in every direction not yet spanned, with probability 1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include <lapacke.h>
#include "noether.h"

enum { STALL = 6, MAX_DEPTH = NT_DISCOVER_MAX_DEPTH, BLOCK = 128 };

/* the workspaces of one level from 3 on: its combination c, X_c, the field below Y, the
 * differences at h/2 and h/4, the point theta +- h X_c and the field there Z, H_c Y */
typedef struct {
    double *c, *Xc, *Y, *D, *D2, *th, *Z, *HY;
} deep;
#define MAX_SV_DOUBLES 2.5e7   /* the candidates kept for their singular values (n_cand x d) */

typedef struct {
    nt_engine *e;
    const nt_model *m;
    const nt_dataset *ds;
    const double *theta;
    int64_t d, NK;
    double tol;
    double *Q;                 /* r x d, orthonormal rows: the span so far */
    int r;
    double *cand;              /* normalized candidates (NULL when too many for an SVD) */
    int n_cand, cap_cand;
    nt_conservation *out;
    uint64_t seed, draw;       /* the random combinations: stream `draw` of seed */
    double *a, *b, *Xa, *Xb, *HY, *U;       /* workspaces of levels 1 and 2; U the candidate */
    deep lv[MAX_DEPTH + 1];                 /* of levels 3.. */
    double *x3;                /* the inputs of levels 3.. (SPARSE rows) */
    double *pend, *pnorm, *coef;   /* candidates waiting (block x d), their norms, block x d */
    int64_t np, block;
} lie;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void combination(lie *L, double *a)
{
    const uint64_t s = L->draw++;
    for (int64_t i = 0; i < L->NK; i++) a[i] = nt_rand_normal(L->seed, s, (uint64_t)i);
}

/* The candidates waiting (pend, np of them, their norms pnorm) join the span in order: each
 * one's residual off span(Q), by classical Gram-Schmidt twice (the second pass removes what
 * round-off left of the first; against the rows already there in one GEMM pair for the
 * block, then against those this block added), joins Q when |residual| / |v| > tol.
 * *stall counts the candidates in a row that did not join. */
static void flush(lie *L, int *stall)
{
    const int64_t d = L->d, np = L->np, r0 = L->r;
    double *P = L->pend, *C = L->coef;
    for (int pass = 0; pass < 2 && r0 > 0; pass++) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)np, (int)r0, (int)d, 1.0, P, (int)d, L->Q, (int)d,
                    0.0, C, (int)r0);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)np, (int)d, (int)r0, -1.0, C, (int)r0, L->Q,
                    (int)d, 1.0, P, (int)d);
    }
    for (int64_t i = 0; i < np; i++) {
        double *w = P + i * d;
        for (int pass = 0; pass < 2; pass++)
            for (int64_t q = r0; q < L->r; q++) {
                const double *b = L->Q + q * d;
                cblas_daxpy((int)d, -cblas_ddot((int)d, b, 1, w, 1), b, 1, w, 1);
            }
        const double res = nt_norm2(d, w), ratio = res / L->pnorm[i];
        if (ratio > L->tol && L->r < d) {
            cblas_dscal((int)d, 1.0 / res, w, 1);
            memcpy(L->Q + (int64_t)L->r++ * d, w, sizeof(double) * (size_t)d);
            L->out->accepted_min = fmin(L->out->accepted_min, ratio);
            *stall = 0;
        } else {
            L->out->rejected_max = fmax(L->out->rejected_max, ratio);
            (*stall)++;
        }
    }
    L->np = 0;
}

/* v joins the block waiting for flush (kept normalized for the singular values too) */
static void push(lie *L, const double *v)
{
    const int64_t d = L->d;
    const double nv = nt_norm2(d, v);
    if (!(nv > 0)) return;
    if (L->cand && L->n_cand < L->cap_cand) {
        double *row = L->cand + (int64_t)L->n_cand++ * d;
        for (int64_t i = 0; i < d; i++) row[i] = v[i] / nv;
    }
    memcpy(L->pend + L->np * d, v, sizeof(double) * (size_t)d);
    L->pnorm[L->np++] = nv;
}

/* X_a = J^T a at theta */
static int field(lie *L, const double *theta, const double *a, double *X, nt_error *err)
{
    L->out->products++;
    return nt_vjp(L->e, theta, L->ds, a, X, err);
}

/* Y = [X_a, X_b](theta) = H_b X_a - H_a X_b (three products: X_a; then H_b X_a with X_b on the
 * way; then H_a X_b) */
static int bracket(lie *L, const double *theta, double *Y, nt_error *err)
{
    const int64_t d = L->d;
    int rc = field(L, theta, L->a, L->Xa, err);
    if (!rc) rc = nt_output_hvp(L->e, theta, L->ds, L->b, 1, L->Xa, Y, L->Xb, err);
    if (!rc) rc = nt_output_hvp(L->e, theta, L->ds, L->a, 1, L->Xb, L->HY, NULL, err);
    L->out->products += 2;
    if (!rc) cblas_daxpy((int)d, -1.0, L->HY, 1, Y, 1);
    return rc;
}

/* The field of a level at theta into out: 1 X_a, 2 [X_a, X_b] (exact), and from 3 on
 *     [X_c, Y](theta) = DY X_c - H_c Y,   Y the field of the level below,
 * DY X_c from central differences D(h), D(h/2), D(h/4) of Y along X_c, extrapolated
 * (Richardson) to (64 D(h/4) - 20 D(h/2) + D(h)) / 45, error O(h^6).  A smooth Y has
 * D(h) - D(h/2) = 4 (D(h/2) - D(h/4)) to leading order; *reliable is cleared when the
 * ratio is far from 4 (and the differences above round-off): a kink of a piecewise-linear
 * activation lies between the points, and the difference is no derivative.  The step grows
 * tenfold per level, above the round-off of the level below (itself a difference). */
static int nested(lie *L, int lvl, const double *theta, double *out, int *reliable, nt_error *err)
{
    if (lvl == 1) return field(L, theta, L->a, out, err);
    if (lvl == 2) return bracket(L, theta, out, err);
    const int64_t d = L->d;
    deep *v = &L->lv[lvl];
    int rc = field(L, theta, v->c, v->Xc, err);
    if (!rc) rc = nested(L, lvl - 1, theta, v->Y, reliable, err);
    if (rc) return rc;
    const double h = L->out->step * pow(10.0, lvl - 3) * fmax(1.0, nt_norm2(d, theta)) / fmax(nt_norm2(d, v->Xc), 1e-300);
    double *D[3] = { out, v->D, v->D2 };
    for (int q = 0; q < 3 && !rc; q++) {
        const double hq = h / (double)(1 << q);
        for (int64_t i = 0; i < d; i++) v->th[i] = theta[i] + hq * v->Xc[i];
        rc = nested(L, lvl - 1, v->th, D[q], reliable, err);
        for (int64_t i = 0; !rc && i < d; i++) v->th[i] = theta[i] - hq * v->Xc[i];
        if (!rc) rc = nested(L, lvl - 1, v->th, v->Z, reliable, err);
        for (int64_t i = 0; !rc && i < d; i++) D[q][i] = (D[q][i] - v->Z[i]) / (2 * hq);
    }
    if (!rc) rc = nt_output_hvp(L->e, theta, L->ds, v->c, 1, v->Y, v->HY, NULL, err);
    L->out->products++;
    if (rc) return rc;
    double a = 0, b = 0;
    for (int64_t i = 0; i < d; i++) {
        a += (D[0][i] - D[1][i]) * (D[0][i] - D[1][i]);
        b += (D[1][i] - D[2][i]) * (D[1][i] - D[2][i]);
    }
    a = sqrt(a);
    b = sqrt(b);
    const double size = nt_norm2(d, D[2]) + nt_norm2(d, v->HY);
    if (!(a <= 1e-9 * size || (a > 2.5 * b && a < 6.5 * b))) *reliable = 0;
    for (int64_t i = 0; i < d; i++) out[i] = (64 * D[2][i] - 20 * D[1][i] + D[0][i]) / 45 - v->HY[i];
    return NT_OK;
}

/* Depth 3 differences Y(theta +- h X_c): a kink of a piecewise-linear activation between the
 * two points is no derivative.  Its combinations are drawn over a few of the inputs (SPARSE
 * of them, so few pre-activations can cross), the inputs drawn afresh for each candidate:
 * the brackets of the fields of every choice of inputs span the same algebra. */
enum { SPARSE = 6 };

static void pick_inputs(lie *L, nt_dataset *few, double *x)
{
    const nt_dataset *all = L->ds;
    const uint64_t s = L->draw++;
    for (int i = 0; i < SPARSE; i++) {
        const int64_t row = (int64_t)(nt_rand_u64(L->seed, s, (uint64_t)i) % (uint64_t)all->n);
        memcpy(x + (int64_t)i * all->dim, all->x + row * all->dim, sizeof(double) * (size_t)all->dim);
    }
    *few = (nt_dataset){ .n = SPARSE, .dim = all->dim, .x = x };
}

/* The rows of J one by one, X_{k,x} = J_{x,k}^T (a vector-Jacobian product on x alone, cheap),
 * in blocks, over the inputs; then over fresh random inputs (the data set's x redrawn) until
 * a round adds nothing: "any data" is saturated (a ReLU unit's first-layer fields need as
 * many inputs where it is active as the input has dimensions).  Not for a batch-coupled model
 * (its outputs depend on the whole batch: a single input is another model). */
enum { MAX_ROUNDS = 8 };

static int rows(lie *L, nt_error *err)
{
    nt_dataset *all = (nt_dataset *)L->ds;
    const int K = L->m->output;
    int rc = NT_OK, stall = 0, before = -1;
    memset(L->a, 0, sizeof(double) * (size_t)K);
    for (int round = 0; round < MAX_ROUNDS && !rc && L->r > before && L->r < L->d; round++) {
        before = L->r;
        for (int64_t i = 0; round && i < all->n * all->dim; i++)
            all->x[i] = nt_rand_normal(L->seed, 100 + (uint64_t)round, (uint64_t)i);
        for (int64_t n = 0; n < all->n && !rc && L->r < L->d; n++) {
            nt_dataset one = { .n = 1, .dim = all->dim, .x = all->x + n * all->dim };
            for (int k = 0; k < K && !rc; k++) {
                L->a[k] = 1;
                L->out->products++;
                rc = nt_vjp(L->e, L->theta, &one, L->a, L->U, err);
                L->a[k] = 0;
                if (!rc) {
                    L->out->candidates[0]++;
                    push(L, L->U);
                }
                if (L->np == L->block) flush(L, &stall);
            }
        }
        flush(L, &stall);
        L->out->rounds = round + 1;
    }
    return rc;
}

/* one level: random combinations until STALL in a row add nothing (or the span is
 * everything); level 1 starts from the rows of J */
static int level(lie *L, int depth, nt_error *err)
{
    nt_conservation *o = L->out;
    const nt_dataset *all = L->ds;
    const int64_t NK = L->NK, stall_max = depth < 3 ? STALL : 3 * STALL;
    nt_dataset few;
    int rc = NT_OK, stall = 0;
    if (depth == 1 && !nt_model_batch_coupled(L->m)) rc = rows(L, err);
    while (!rc && stall < stall_max && L->r < L->d) {
        int reliable = 1;
        if (depth >= 3) {
            pick_inputs(L, &few, L->x3);
            L->ds = &few;
            L->NK = SPARSE * L->m->output;
        }
        combination(L, L->a);
        combination(L, L->b);
        for (int k = 3; k <= depth; k++) combination(L, L->lv[k].c);
        rc = nested(L, depth, L->theta, L->U, &reliable, err);
        L->ds = all;
        L->NK = NK;
        if (rc) return rc;
        if (!reliable) {   /* discarded, and not counted towards the stall */
            if (++o->discarded > 4 * stall_max + o->candidates[depth - 1])
                return nt_fail(err, NT_EFAIL, "discover: the differences for depth %d keep crossing kinks (%d "
                               "discarded)", depth, o->discarded);
            continue;
        }
        o->candidates[depth - 1]++;
        push(L, L->U);
        flush(L, &stall);
    }
    o->rank[depth - 1] = L->r;
    o->depth = depth;
    return rc;
}

/* the singular values of the normalized candidates around the cut at the rank */
static int singular_values(lie *L, nt_error *err)
{
    nt_conservation *o = L->out;
    if (!L->cand || L->n_cand == 0) return NT_OK;
    const int mn = L->n_cand < L->d ? L->n_cand : (int)L->d;
    double *s = malloc(sizeof(double) * (size_t)mn);
    if (!s) return nt_fail(err, NT_EFAIL, "discover: out of memory for %d singular values", mn);
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', L->n_cand, (lapack_int)L->d, L->cand, (lapack_int)L->d,
                                     s, NULL, L->n_cand, NULL, (lapack_int)L->d);   /* U, V^T not referenced */
    if (info != 0) {
        free(s);
        return nt_fail(err, NT_EFAIL, "discover: LAPACK dgesdd failed (info %d)", (int)info);
    }
    const int rank = o->rank[o->depth - 1], lo = rank - 4 > 0 ? rank - 4 : 0, hi = rank + 4 < mn ? rank + 4 : mn;
    o->sv_first = lo;
    o->n_sv = hi - lo;
    o->sv_max = s[0];
    for (int i = 0; i < o->n_sv; i++) o->sv[i] = s[lo + i] / s[0];
    free(s);
    return NT_OK;
}

/* An orthonormal basis of the orthogonal complement of the span (the laws' gradients at
 * theta: grad h is orthogonal to Lie(W)), by Gram-Schmidt of random vectors against the span
 * and each other (twice, as in flush) */
static int complement(lie *L, nt_error *err)
{
    nt_conservation *o = L->out;
    const int64_t d = L->d, n = d - L->r;
    if (n == 0) return NT_OK;
    o->laws = malloc(sizeof(double) * (size_t)(n * d));
    double *coef = malloc(sizeof(double) * (size_t)d);
    if (!o->laws || !coef) {
        free(coef);
        return nt_fail(err, NT_EFAIL, "discover: out of memory for %lld law gradients", (long long)n);
    }
    for (int64_t k = 0, tries = 0; k < n; tries++) {
        double *w = o->laws + k * d;
        for (int64_t i = 0; i < d; i++) w[i] = nt_rand_normal(L->seed, 1000000 + (uint64_t)tries, (uint64_t)i);
        const double nv = nt_norm2(d, w);
        for (int pass = 0; pass < 2; pass++) {
            cblas_dgemv(CblasRowMajor, CblasNoTrans, L->r, (int)d, 1.0, L->Q, (int)d, w, 1, 0.0, coef, 1);
            cblas_dgemv(CblasRowMajor, CblasTrans, L->r, (int)d, -1.0, L->Q, (int)d, coef, 1, 1.0, w, 1);
            if (k == 0) continue;
            cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)k, (int)d, 1.0, o->laws, (int)d, w, 1, 0.0, coef, 1);
            cblas_dgemv(CblasRowMajor, CblasTrans, (int)k, (int)d, -1.0, o->laws, (int)d, coef, 1, 1.0, w, 1);
        }
        const double res = nt_norm2(d, w);
        if (res <= 1e-6 * nv) continue;   /* (probability 0) */
        cblas_dscal((int)d, 1.0 / res, w, 1);
        k++;
    }
    o->n_laws = (int)n;
    free(coef);
    return NT_OK;
}

void nt_conservation_free(nt_conservation *o)
{
    free(o->laws);
    o->laws = NULL;
    o->n_laws = 0;
}

int nt_conservation_count(nt_engine *e, const nt_model *m, const double *theta, const nt_conservation_opts *opts,
                          nt_conservation *o, nt_error *err)
{
    memset(o, 0, sizeof *o);
    const int64_t d = m->d, K = m->output;
    /* "any data": enough inputs that the rows can span every field: at least d / K of them
     * (K rows each) and, since the first layer's fields are x times a coefficient, at least
     * the input's dimension; twice that, and 16 more */
    const int64_t need = (d + K - 1) / K > m->input ? (d + K - 1) / K : m->input;
    o->samples = opts && opts->samples > 0 ? opts->samples : (int)(2 * need + 16);
    o->tol = opts && opts->tol > 0 ? opts->tol : NT_DISCOVER_TOL;
    o->step = opts && opts->step > 0 ? opts->step : 1e-4;
    const int depth = opts && opts->depth > 0 ? (opts->depth < MAX_DEPTH ? opts->depth : MAX_DEPTH) : MAX_DEPTH;
    o->accepted_min = INFINITY;
    const double t0 = now();
    const int64_t N = o->samples;
    const double keep = 8.0 * (double)d * (double)d + 8.0 * (double)N * (double)(m->input + 3 * K);
    int rc = nt_memory_fits(err, keep, 0, "on this machine", "the count keeps a d x d basis: d = %lld", (long long)d);
    if (rc) return rc;
    nt_dataset ds = { .n = N, .dim = m->input, .ydim = 0 };
    ds.x = malloc(sizeof(double) * (size_t)(N * m->input));
    lie L = { .e = e, .m = m, .ds = &ds, .theta = theta, .d = d, .NK = N * K, .tol = o->tol, .out = o,
              .seed = opts && opts->seed ? opts->seed : NT_DISCOVER_SEED, .draw = 1 };
    L.Q = malloc(sizeof(double) * (size_t)(d * d));
    double **vec[5 + 7 * MAX_DEPTH], **comb[2 + MAX_DEPTH];   /* d each; N K each */
    int nv = 0, nc = 0;
    vec[nv++] = &L.Xa; vec[nv++] = &L.Xb; vec[nv++] = &L.HY; vec[nv++] = &L.U;
    comb[nc++] = &L.a; comb[nc++] = &L.b;
    for (int k = 3; k <= MAX_DEPTH; k++) {
        deep *v = &L.lv[k];
        vec[nv++] = &v->Xc; vec[nv++] = &v->Y; vec[nv++] = &v->D; vec[nv++] = &v->D2; vec[nv++] = &v->th;
        vec[nv++] = &v->Z;
        vec[nv++] = &v->HY;
        comb[nc++] = &v->c;
    }
    L.x3 = malloc(sizeof(double) * SPARSE * (size_t)m->input);
    L.block = BLOCK < d ? BLOCK : d;
    L.pend = malloc(sizeof(double) * (size_t)(L.block * d));
    L.coef = malloc(sizeof(double) * (size_t)(L.block * d));
    L.pnorm = malloc(sizeof(double) * (size_t)L.block);
    int ok = ds.x && L.Q && L.x3 && L.pend && L.coef && L.pnorm;
    for (int i = 0; i < nv; i++) ok &= (*vec[i] = malloc(sizeof(double) * (size_t)d)) != NULL;
    for (int i = 0; i < nc; i++) ok &= (*comb[i] = malloc(sizeof(double) * (size_t)(N * K))) != NULL;
    L.cap_cand = (int)(2 * d + 8 * STALL);
    if ((double)L.cap_cand * (double)d <= MAX_SV_DOUBLES) L.cand = malloc(sizeof(double) * (size_t)L.cap_cand * (size_t)d);
    rc = ok ? NT_OK : nt_fail(err, NT_EFAIL, "discover: out of memory for a basis of %lld x %lld", (long long)d,
                              (long long)d);
    for (int64_t i = 0; ok && i < N * m->input; i++) ds.x[i] = nt_rand_normal(L.seed, 0, (uint64_t)i);
    /* levels until one from 3 on adds nothing (the rank stagnated), or the deepest */
    static const char *phase[] = { "", "conservation laws: the fields grad f_k", "conservation laws: their brackets",
                                   "conservation laws: brackets of brackets (differences)",
                                   "conservation laws: depth 4 (differences of differences)" };
    for (int l = 1; rc == NT_OK && l <= depth; l++) {
        if (opts && opts->progress) opts->progress(opts->ctx, phase[l]);
        rc = level(&L, l, err);
        if (rc == NT_OK && l >= 3 && o->rank[l - 1] == o->rank[l - 2]) break;
    }
    if (rc == NT_OK) rc = singular_values(&L, err);
    if (rc == NT_OK) rc = complement(&L, err);
    if (rc == NT_OK) {
        o->conserved = (int)(d - o->rank[o->depth - 1]);
        o->stagnated = o->depth > 1 && o->rank[o->depth - 1] == o->rank[o->depth - 2];
    }
    o->seconds = now() - t0;
    if (rc) nt_conservation_free(o);
    free(ds.x); free(L.Q); free(L.cand); free(L.x3); free(L.pend); free(L.coef); free(L.pnorm);
    for (int i = 0; i < nv; i++) free(*vec[i]);
    for (int i = 0; i < nc; i++) free(*comb[i]);
    return rc;
}
