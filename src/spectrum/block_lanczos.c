/* block_lanczos.c: the nev largest or smallest eigenpairs of a symmetric operator by a
 * thick-restart block Lanczos (block Krylov-Schur) method, matrix-free, with products in
 * blocks of b vectors (op->apply takes them at once: the engine's block HVP).
 *
 * The basis V (rows, orthonormal) holds nl locked Ritz vectors, then the active part.  A step
 * appends the block Q, computes W = A Q (b products) and its coefficients H = V^T W
 * (classical Gram-Schmidt, a second pass when DGKS's test asks: twice is enough), the new
 * columns of the projected matrix T = V^T A V.  The remainder F = (I - V V^T) W is factored as F = R Q'
 * (Q' orthonormal, the next block; a direction F lacks, a rank-deficient block, is replaced by
 * a random vector orthogonalized against V).  After every step the active T is diagonalized
 * (LAPACK dsyev): a Ritz pair (theta, y = V s) has A y - theta y = sum_j s_j F_j (only the last
 * block's products leave span V), so its residual norm is |R^T s_last| exactly, s_last the
 * entries of s on the last block.  A pair has converged when that norm is <= tol max(eps^(2/3),
 * |theta|), ARPACK's own test (dsconv), so the accuracy is ARPACK's.  When V is full, the
 * active part is restarted with its `keep` most wanted Ritz vectors (thick restart: V S, T =
 * diag(theta); Q' is orthogonal to the old V, so to the new one, and the next step's
 * coefficients against the Ritz vectors rebuild the arrow of T), and the converged wanted
 * pairs are locked: moved to the front, their couplings to later blocks set to 0 (a change of
 * at most tol |theta|), never multiplied again, still orthogonalized against.
 *
 * Sizes (nt_block_lanczos_default): keep 2 nev at the top, 3 nev at the crowded bottom, the
 * basis max(3 keep, keep + 12 b).  A basis of a few blocks past keep is what makes a block
 * thick restart cost several times the products: each restart cycle then adds only a few
 * degrees to the Krylov polynomial (measured on the demo's model, top 10, b = 16: 608
 * products with a basis of keep + 4 b, 272 with keep + 12 b; ARPACK 92).  Even so the block
 * Krylov space gains one degree per b products, and the extreme eigenvalues converge with
 * the degree: b = 1 needs 0.6-0.95 x ARPACK's products, b = 2 0.9-1.5 x, b = 4 1.2-2.3 x,
 * b = 16 2.7-8.6 x (numbers and the rule that follows in lanczos.c). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "noether.h"
#include "analysis.h"

#define BLOCK_SEED 0x424c4f43ULL   /* the fixed start block and replacements: "BLOC" */
#define BLOCK_MAX_RESTARTS 1000
#define BLOCK_DEFICIENT 1e-12       /* |F_j| below this times |A q_j|: no new direction */

typedef struct {
    const nt_operator *op;
    int64_t n;
    int b, mmax, keep, nev, largest;
    double *V, *Q, *W, *Y;   /* mmax, b, b, keep rows of n */
    double *T, *H, *C, *S;   /* mmax x mmax, mmax x b, mmax x b, mmax x mmax */
    double *R, *wnorm, *theta, *res, *Sk, *Z, *w;   /* Sk: keep x mmax; Z, w: dsyevr's */
    lapack_int *isuppz;
    int *idx;                /* mmax: the restart's columns, the result's order */
    int cur, nl, bq, bl;     /* rows in V, locked rows, rows in Q, rows of the last block */
    int count;               /* Ritz pairs in theta, S, res */
    uint64_t randoms;        /* replacement vectors drawn */
} blz;

/* X (k rows) -= V[0, rows)^T (V X^T): classical Gram-Schmidt, repeated once when a row lost
 * more than 1 - 1/sqrt(2) of its norm (DGKS, as ARPACK's dsaitr: twice is enough); H (rows x
 * b, may be NULL) += the coefficients.  One vector: dgemv (dgemm would pack V). */
static void orth_basis(blz *s, double *X, int k, int rows, double *H)
{
    const int n = (int)s->n;
    if (rows == 0) return;
    double before[NT_BLOCK_LANCZOS_MAX_B];
    for (int j = 0; j < k; j++) before[j] = cblas_dnrm2(n, X + (int64_t)j * n, 1);
    for (int pass = 0; pass < 2; pass++) {
        if (k == 1) {
            cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, n, 1.0, s->V, n, X, 1, 0.0, s->C, s->b);
            cblas_dgemv(CblasRowMajor, CblasTrans, rows, n, -1.0, s->V, n, s->C, s->b, 1.0, X, 1);
        } else {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, k, n, 1.0, s->V, n, X, n, 0.0, s->C, s->b);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, n, rows, -1.0, s->C, s->b, s->V, n, 1.0, X, n);
        }
        if (H) for (int i = 0; i < rows; i++) for (int j = 0; j < k; j++) H[i * s->b + j] += s->C[i * s->b + j];
        int again = 0;
        for (int j = 0; j < k; j++) again |= cblas_dnrm2(n, X + (int64_t)j * n, 1) < M_SQRT1_2 * before[j];
        if (!again) break;
        for (int j = 0; j < k; j++) before[j] = cblas_dnrm2(n, X + (int64_t)j * n, 1);
    }
}

/* x -= the projections on Q rows [0, cnt), twice (the block's own Gram-Schmidt); the
 * coefficients added to r (may be NULL); returns |x|. */
static double orth_block(blz *s, double *x, int cnt, double *r)
{
    const int n = (int)s->n;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < cnt; i++) {
            const double c = cblas_ddot(n, s->Q + (int64_t)i * n, 1, x, 1);
            cblas_daxpy(n, -c, s->Q + (int64_t)i * n, 1, x, 1);
            if (r) r[i] += c;
        }
    return cblas_dnrm2(n, x, 1);
}

/* The next block: F = W (bl rows, orthogonal to V[0, cur)) = R Q, Q with bq = min(b, n - cur)
 * orthonormal rows; a missing direction is a random vector orthogonal to V and Q. */
static void next_block(blz *s)
{
    const int n = (int)s->n;
    s->bq = s->b < s->n - s->cur ? s->b : (int)(s->n - s->cur);
    memset(s->R, 0, sizeof(double) * (size_t)(s->b * s->b));
    int cnt = 0;
    for (int j = 0; j < s->bl; j++) {
        double *f = s->W + (int64_t)j * n;
        const double before = cblas_dnrm2(n, f, 1);
        double nrm = orth_block(s, f, cnt, s->R + j * s->b);
        if (nrm < 0.7 * before) {   /* cancellation within the block: once more against V and Q */
            orth_basis(s, f, 1, s->cur, NULL);
            nrm = orth_block(s, f, cnt, s->R + j * s->b);
        }
        if (cnt < s->bq && nrm > BLOCK_DEFICIENT * s->wnorm[j]) {
            cblas_dcopy(n, f, 1, s->Q + (int64_t)cnt * n, 1);
            cblas_dscal(n, 1.0 / nrm, s->Q + (int64_t)cnt * n, 1);
            s->R[j * s->b + cnt++] = nrm;
        }
    }
    while (cnt < s->bq) {   /* a rank-deficient block: random directions */
        double *q = s->Q + (int64_t)cnt * n;
        for (int i = 0; i < n; i++) q[i] = nt_rand_normal(BLOCK_SEED + 1, s->randoms, (uint64_t)i);
        s->randoms++;
        const double before = cblas_dnrm2(n, q, 1);
        orth_basis(s, q, 1, s->cur, NULL);
        const double nrm = orth_block(s, q, cnt, NULL);
        if (nrm > 1e-8 * before) { cblas_dscal(n, 1.0 / nrm, q, 1); cnt++; }
    }
}

/* Y = A Q in calls of at most op->block vectors */
static int apply_block(blz *s, int k, int *products, nt_error *err)
{
    const int kb = s->op->block > 0 ? s->op->block : 1;
    for (int j0 = 0; j0 < k; j0 += kb) {
        const int kk = k - j0 < kb ? k - j0 : kb;
        int rc = s->op->apply(s->op->ctx, kk, s->Q + (int64_t)j0 * s->n, s->W + (int64_t)j0 * s->n, err);
        if (rc != NT_OK) return rc;
    }
    *products += k;
    return NT_OK;
}

/* One step: append Q to V, its products, T's new columns, the next block. */
static int step(blz *s, int *products, nt_error *err)
{
    const int n = (int)s->n, b = s->b, m = s->mmax;
    memcpy(s->V + (int64_t)s->cur * n, s->Q, sizeof(double) * (size_t)s->bq * (size_t)n);
    s->bl = s->bq;
    int rc = apply_block(s, s->bl, products, err);
    if (rc != NT_OK) return rc;
    for (int j = 0; j < s->bl; j++) s->wnorm[j] = cblas_dnrm2(n, s->W + (int64_t)j * n, 1);
    const int rows = s->cur + s->bl;
    memset(s->H, 0, sizeof(double) * (size_t)(rows * b));
    orth_basis(s, s->W, s->bl, rows, s->H);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < s->bl; j++) {
            const int c = s->cur + j;
            double h = s->H[i * b + j];
            if (i >= s->cur) h = 0.5 * (h + s->H[c * b + (i - s->cur)]);   /* Q^T A Q, symmetrized */
            if (i < s->nl) h = 0;                                          /* locked: deflated */
            s->T[i * m + c] = s->T[c * m + i] = h;
        }
    s->cur = rows;
    next_block(s);
    return NT_OK;
}

/* Rayleigh-Ritz on the active part: the `count` most wanted Ritz pairs (LAPACK dsyevr, only
 * those), theta[t] and S's row t (n_active entries: y_t = sum_i S[t][i] v_{nl+i}) most wanted
 * first, and their residual norms res[t] = |R^T s_last|; returns 1 when the nev - nl most
 * wanted have converged (*fail set on a LAPACK error). */
static int converged(const blz *s, int t, double tol)
{
    const double eps23 = pow(DBL_EPSILON / 2, 2.0 / 3.0);   /* dlamch('E')^(2/3), as ARPACK's dsconv */
    return s->res[t] <= tol * fmax(eps23, fabs(s->theta[t]));
}

static int ritz(blz *s, int count, double tol, nt_error *err, int *fail)
{
    const int m = s->mmax, na = s->cur - s->nl, nw = s->nev - s->nl, b = s->b;
    if (count > na) count = na;
    for (int i = 0; i < na; i++) memcpy(s->Z + i * na, s->T + (s->nl + i) * m + s->nl, sizeof(double) * (size_t)na);
    const lapack_int il = s->largest ? na - count + 1 : 1, iu = s->largest ? na : count;
    lapack_int found = 0;
    lapack_int info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'I', 'U', na, s->Z, na, 0.0, 0.0, il, iu, 0.0, &found,
                                     s->w, s->S, na, s->isuppz);
    if (info != 0 || found != count) {
        *fail = nt_fail(err, NT_EFAIL, "block Lanczos: LAPACK dsyevr info %d (%d of %d pairs, order %d)", (int)info,
                        (int)found, count, na);
        return 0;
    }
    /* column j of S (ascending) -> row t (most wanted first), in Z, then back */
    for (int t = 0; t < count; t++) {
        const int j = s->largest ? count - 1 - t : t;
        s->theta[t] = s->w[j];
        memcpy(s->Z + t * na, s->S + j * na, sizeof(double) * (size_t)na);
    }
    memcpy(s->S, s->Z, sizeof(double) * (size_t)(count * na));
    const int last = na - s->bl;   /* the last block's entries in a Ritz vector's coefficients */
    for (int t = 0; t < count; t++) {
        double r2 = 0;
        for (int k = 0; k < s->bq; k++) {
            double r = 0;
            for (int j = 0; j < s->bl; j++) r += s->R[j * b + k] * s->S[t * na + last + j];
            r2 += r * r;
        }
        s->res[t] = sqrt(r2);
    }
    s->count = count;
    if (count < nw) return 0;
    for (int t = 0; t < nw; t++)
        if (!converged(s, t, tol)) return 0;
    return 1;
}

/* Thick restart: lock the converged among the nev - nl most wanted, keep the next ones
 * (all of ritz's count). */
static void restart(blz *s, double tol)
{
    const int n = (int)s->n, m = s->mmax, na = s->cur - s->nl, nw = s->nev - s->nl;
    int *cols = s->idx, L = 0, k = 0;
    for (int t = 0; t < nw && t < s->count; t++)   /* first the pairs to lock */
        if (converged(s, t, tol)) cols[L++] = t;
    k = L;
    for (int t = 0; t < s->count; t++) {
        int taken = 0;
        for (int j = 0; j < L; j++) taken |= cols[j] == t;
        if (!taken) cols[k++] = t;
    }
    /* Y = S(cols) V_active (k x na times na x n), then into V after the locked rows */
    for (int r = 0; r < k; r++) memcpy(s->Sk + r * na, s->S + cols[r] * na, sizeof(double) * (size_t)na);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, n, na, 1.0, s->Sk, na, s->V + (int64_t)s->nl * n, n,
                0.0, s->Y, n);
    memcpy(s->V + (int64_t)s->nl * n, s->Y, sizeof(double) * (size_t)k * (size_t)n);
    for (int i = s->nl; i < s->cur; i++) memset(s->T + i * m + s->nl, 0, sizeof(double) * (size_t)(m - s->nl));
    for (int r = 0; r < k; r++) s->T[(s->nl + r) * m + s->nl + r] = s->theta[cols[r]];
    s->nl += L;
    s->cur = s->nl + (k - L);
}

/* The converged pairs, most wanted first: locked (T's diagonal, V's rows) and active. */
static void collect(blz *s, double *values, double *vectors)
{
    const int n = (int)s->n, m = s->mmax, na = s->cur - s->nl, nw = s->nev - s->nl;
    double *val = s->res;   /* reused: nev values, locked then active */
    for (int i = 0; i < s->nl; i++) val[i] = s->T[i * m + i];
    for (int t = 0; t < nw; t++) val[s->nl + t] = s->theta[t];
    if (vectors && nw > 0)   /* the active Ritz vectors into Y */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nw, n, na, 1.0, s->S, na, s->V + (int64_t)s->nl * n,
                    n, 0.0, s->Y, n);
    int *order = s->idx;
    nt_eigen_order(val, s->nev, s->largest, order);
    for (int i = 0; i < s->nev; i++) {
        const int o = order[i];
        values[i] = val[o];
        if (vectors)
            memcpy(vectors + (int64_t)i * n, o < s->nl ? s->V + (int64_t)o * n : s->Y + (int64_t)(o - s->nl) * n,
                   sizeof(double) * (size_t)n);
    }
}

static void blz_free(blz *s)
{
    free(s->V); free(s->Q); free(s->W); free(s->Y); free(s->T); free(s->H); free(s->C); free(s->S);
    free(s->R); free(s->wnorm); free(s->theta); free(s->res); free(s->Sk); free(s->Z); free(s->w); free(s->isuppz);
    free(s->idx);
}

void nt_block_lanczos_default(const nt_operator *op, int nev, int largest, nt_block_lanczos_opts *o)
{
    /* b = 2 at most: the fewest products of the blocks measured (lanczos.c's table) */
    const int b = op->block < 2 ? 1 : 2;
    const int keep = largest ? 2 * nev : 3 * nev;   /* the crowded bottom end keeps more */
    const int basis = 3 * keep > keep + 12 * b ? 3 * keep : keep + 12 * b;
    *o = (nt_block_lanczos_opts){ .block = b, .keep = keep, .basis = basis };
}

int nt_eigen_block_lanczos(const nt_operator *op, int nev, int largest, double tol, const nt_block_lanczos_opts *o,
                           double *values, double *vectors, int *n_products, nt_error *err)
{
    const int64_t n = op->n;
    int products = 0;
    if (n_products) *n_products = 0;
    if (n < 1 || n > INT_MAX)
        return nt_fail(err, NT_EINPUT, "block Lanczos: dimension %lld out of range", (long long)n);
    if (nev < 1 || nev > n)
        return nt_fail(err, NT_EINPUT, "block Lanczos: %d eigenvalues asked of a %lld-dimensional operator", nev,
                       (long long)n);
    if (o && (o->block < 0 || o->block > NT_BLOCK_LANCZOS_MAX_B || o->basis < 0 || o->keep < 0))
        return nt_fail(err, NT_EINPUT, "block Lanczos: block %d (0..%d), basis %d, keep %d (>= 0)", o->block,
                       NT_BLOCK_LANCZOS_MAX_B, o->basis, o->keep);
    nt_block_lanczos_opts d;
    nt_block_lanczos_default(op, nev, largest, &d);
    blz s = { .op = op, .n = n, .nev = nev, .largest = largest,
              .b = o && o->block > 0 ? o->block : d.block,
              .keep = o && o->keep > 0 ? o->keep : d.keep,
              .mmax = o && o->basis > 0 ? o->basis : d.basis };
    if (s.b > n) s.b = (int)n;
    if (s.keep < nev + 1) s.keep = nev + 1;
    if (s.mmax < s.keep + s.b) s.mmax = s.keep + s.b;
    if (s.mmax > n) s.mmax = (int)n;   /* the whole space: the Ritz values are exact once V is full */
    if (s.keep > s.mmax) s.keep = s.mmax;
    const size_t rn = (size_t)n * sizeof(double), m = (size_t)s.mmax, b = (size_t)s.b;
    s.V = malloc(m * rn); s.Q = malloc(b * rn); s.W = malloc(b * rn); s.Y = malloc((size_t)s.keep * rn);
    s.T = calloc(m * m, sizeof(double)); s.H = malloc(m * b * sizeof(double)); s.C = malloc(m * b * sizeof(double));
    s.S = malloc(m * m * sizeof(double)); s.R = malloc(b * b * sizeof(double)); s.wnorm = malloc(b * sizeof(double));
    s.theta = malloc(m * sizeof(double)); s.res = malloc(m * sizeof(double));
    s.Sk = malloc((size_t)s.keep * m * sizeof(double)); s.Z = malloc(m * m * sizeof(double));
    s.w = malloc(m * sizeof(double)); s.isuppz = malloc(2 * m * sizeof(lapack_int)); s.idx = malloc(m * sizeof(int));
    int rc = NT_OK;
    if (!s.V || !s.Q || !s.W || !s.Y || !s.T || !s.H || !s.C || !s.S || !s.R || !s.wnorm || !s.theta || !s.res || !s.Sk ||
        !s.Z || !s.w || !s.isuppz || !s.idx) {
        rc = nt_fail(err, NT_EFAIL, "block Lanczos: out of memory for %d vectors of %lld", s.mmax + s.keep + 2 * s.b,
                     (long long)n);
        goto done;
    }
    if (tol <= 0) tol = DBL_EPSILON;
    /* the start block: uniform in (-1, 1), fixed seed, orthonormalized (rank-deficient: replaced) */
    for (int j = 0; j < s.b; j++)
        for (int64_t i = 0; i < n; i++) s.W[j * n + i] = 2 * nt_rand_uniform(BLOCK_SEED, (uint64_t)j, (uint64_t)i) - 1;
    s.bl = s.b;
    for (int j = 0; j < s.b; j++) s.wnorm[j] = cblas_dnrm2((int)n, s.W + j * n, 1);
    next_block(&s);
    for (int restarts = 0;;) {
        if ((rc = step(&s, &products, err)) != NT_OK) goto done;
        int fail = NT_OK;
        const int full = s.cur + (s.b < n - s.cur ? s.b : n - s.cur) > s.mmax;
        if (ritz(&s, full ? s.keep - s.nl : nev - s.nl, tol, err, &fail)) break;
        if ((rc = fail) != NT_OK) goto done;
        if (full) {
            if (++restarts > BLOCK_MAX_RESTARTS) {
                rc = nt_fail(err, NT_EFAIL, "block Lanczos (nev %d, block %d, basis %d, n %lld): not converged after "
                             "%d restarts (%d products), %d locked", nev, s.b, s.mmax, (long long)n,
                             BLOCK_MAX_RESTARTS, products, s.nl);
                goto done;
            }
            restart(&s, tol);
        }
    }
    collect(&s, values, vectors);
done:
    if (n_products) *n_products = products;
    blz_free(&s);
    return rc;
}
