/* algebra.c: the Lie algebra of the symmetries a model has (docs/theory.md §7).  An affine
 * field xi(theta) = A theta + c is a symmetry when J_x(theta) xi(theta) = 0 for every input x
 * and every theta (its flow leaves every output unchanged); with an output generator B it is
 * an equivariance, J_x(theta) xi(theta) = B f(theta; x).  Each row of J at a point theta_s
 * (a random input, one output k) is one linear equation on the unknowns, so the algebra is
 * the null space of the stacked rows over random inputs and random points:
 *   full space (d <= NT_DISCOVER_FULL_MAX): the unknowns are A (d x d), c (d), B (K x K):
 *       row (s, x, k) = [ j (x) theta_s | j | -e_k (x) f(theta_s; x) ],  j = J_{x,k}(theta_s);
 *   structured space (larger d): per hidden dense interface l, A acts on its units' parts
 *       as P (x) I on the rows of W_l and b_l and Q (x) I on the reader's columns (P, Q in
 *       gl(n_l)), c = 0, B = 0; all interfaces' unknowns in one system.
 * A symmetry with A symmetric is the gradient of the charge Q(theta) = theta^T A theta / 2 +
 * c^T theta, conserved by gradient flow of any loss: adding the rows A - A^T = 0 gives them,
 * and the rank of their gradients A theta + c at theta is the number of independent ones. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include <lapacke.h>
#include "noether.h"
#include "../transform/units.h"

enum { SAMPLES = 16 };

typedef struct {
    const nt_model *m;
    int64_t d;
    int K, full, n_int;          /* full space, or n_int structured interfaces */
    nt_dense D[NT_MAX_LAYERS];
    int inter[NT_MAX_LAYERS];    /* the hidden layers l (1-based) searched */
    int64_t off[NT_MAX_LAYERS];  /* their unknowns: P at off, Q at off + n^2 */
    int64_t n_sym;               /* unknowns of a symmetry (no B) */
    int64_t n_all;               /* with B (full space) */
} space;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int space_init(space *S, const nt_model *m, nt_algebra *o)
{
    memset(S, 0, sizeof *S);
    S->m = m;
    S->d = m->d;
    S->K = m->output;
    S->full = m->d <= NT_DISCOVER_FULL_MAX;
    if (S->full) {
        S->n_sym = S->d * S->d + S->d;
        S->n_all = S->n_sym + (int64_t)S->K * S->K;
        snprintf(o->search_space, sizeof o->search_space, "full: A (d x d), c, B (K x K), %lld unknowns",
                 (long long)S->n_all);
        return NT_OK;
    }
    const int nd = nt_dense_layers(m, S->D);
    for (int l = 1; l < nd; l++) {
        if (S->D[l - 1].rd_rows == 0) continue;
        const int64_t n = S->D[l - 1].n_out;
        if (S->n_sym + 2 * n * n > NT_DISCOVER_STRUCTURED_MAX) break;
        S->inter[S->n_int] = l;
        S->off[S->n_int++] = S->n_sym;
        S->n_sym += 2 * n * n;
    }
    S->n_all = S->n_sym;
    snprintf(o->search_space, sizeof o->search_space, "structured: P, Q in gl(n) on the units of %d hidden dense "
             "layer%s, %lld unknowns", S->n_int, S->n_int == 1 ? "" : "s", (long long)S->n_sym);
    return NT_OK;
}

/* the equation of one row j of J at theta_s (outputs f of its input) into row */
static void equation(const space *S, const double *j, const double *th, const double *f, int k, double *row)
{
    const int64_t d = S->d;
    if (S->full) {
        for (int64_t i = 0; i < d; i++) {
            for (int64_t l = 0; l < d; l++) row[i * d + l] = j[i] * th[l];
            row[d * d + i] = j[i];
        }
        for (int64_t x = 0; x < (int64_t)S->K * S->K; x++) row[S->n_sym + x] = x / S->K == k ? -f[x % S->K] : 0.0;
        return;
    }
    for (int t = 0; t < S->n_int; t++) {
        const int l = S->inter[t], n = S->D[l - 1].n_out;
        double *P = row + S->off[t], *Q = P + (int64_t)n * n;
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) {
                nt_range ra[3], rb[3];
                nt_unit_ranges(S->D, l, a, ra);
                nt_unit_ranges(S->D, l, b, rb);
                double p = 0, q = 0;
                for (int role = 0; role < 2; role++)
                    for (int64_t i = 0; i < ra[role].count; i++) p += j[nt_at(&ra[role], i)] * th[nt_at(&rb[role], i)];
                for (int64_t i = 0; i < ra[2].count; i++) q += j[nt_at(&ra[2], i)] * th[nt_at(&rb[2], i)];
                P[a * n + b] = p;
                Q[a * n + b] = q;
            }
    }
}

/* A structured solution z as moves A[dst][src] += coef, one per coordinate of each pair of
 * units' parts (P on the rows of W_l and b_l, Q on the reader's columns) */
typedef void (*move_fn)(void *ctx, int64_t dst, int64_t src, double coef);

static void structured_moves(const space *S, const double *z, move_fn emit, void *ctx)
{
    for (int t = 0; t < S->n_int; t++) {
        const int l = S->inter[t], n = S->D[l - 1].n_out;
        const double *P = z + S->off[t], *Q = P + (int64_t)n * n;
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) {
                nt_range ra[3], rb[3];
                nt_unit_ranges(S->D, l, a, ra);
                nt_unit_ranges(S->D, l, b, rb);
                for (int role = 0; role < 3; role++)
                    for (int64_t i = 0; i < ra[role].count; i++)
                        emit(ctx, nt_at(&ra[role], i), nt_at(&rb[role], i), role < 2 ? P[a * n + b] : Q[a * n + b]);
            }
    }
}

typedef struct { const double *theta; double *xi; } applied;
static void apply_move(void *ctx, int64_t dst, int64_t src, double coef)
{
    applied *x = ctx;
    x->xi[dst] += coef * x->theta[src];
}

typedef struct { double *A; int64_t d; } dense;
static void dense_move(void *ctx, int64_t dst, int64_t src, double coef)
{
    dense *x = ctx;
    x->A[dst * x->d + src] += coef;
}

/* xi = A theta + c of one solution z (length n_sym) */
static void field_at(const space *S, const double *z, const double *theta, double *xi)
{
    const int64_t d = S->d;
    if (S->full) {
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)d, 1.0, z, (int)d, theta, 1, 0.0, xi, 1);
        cblas_daxpy((int)d, 1.0, z + d * d, 1, xi, 1);
        return;
    }
    memset(xi, 0, sizeof(double) * (size_t)d);
    applied x = { theta, xi };
    structured_moves(S, z, apply_move, &x);
}

/* the dense A (d x d) and c (d) of a solution */
static void dense_generator(const space *S, const double *z, double *A, double *c)
{
    const int64_t d = S->d;
    if (S->full) {
        memcpy(A, z, sizeof(double) * (size_t)(d * d));
        memcpy(c, z + d * d, sizeof(double) * (size_t)d);
        return;
    }
    memset(A, 0, sizeof(double) * (size_t)(d * d));
    memset(c, 0, sizeof(double) * (size_t)d);
    dense x = { A, d };
    structured_moves(S, z, dense_move, &x);
}

/* the rows A - A^T = 0 (and B = 0 is imposed by leaving B out): P, Q symmetric in the
 * structured space; returns how many were written into M from row r0 */
static int64_t symmetric_rows(const space *S, double *M, int64_t ld)
{
    int64_t r = 0;
    if (S->full) {
        for (int64_t i = 0; i < S->d; i++)
            for (int64_t l = i + 1; l < S->d; l++, r++) {
                M[r * ld + i * S->d + l] = 1;
                M[r * ld + l * S->d + i] = -1;
            }
        return r;
    }
    for (int t = 0; t < S->n_int; t++) {
        const int n = S->D[S->inter[t] - 1].n_out;
        for (int part = 0; part < 2; part++) {
            const int64_t base = S->off[t] + (int64_t)part * n * n;
            for (int a = 0; a < n; a++)
                for (int b = a + 1; b < n; b++, r++) {
                    M[r * ld + base + a * n + b] = 1;
                    M[r * ld + base + b * n + a] = -1;
                }
        }
    }
    return r;
}

static int64_t symmetric_count(const space *S)
{
    if (S->full) return S->d * (S->d - 1) / 2;
    int64_t r = 0;
    for (int t = 0; t < S->n_int; t++) {
        const int64_t n = S->D[S->inter[t] - 1].n_out;
        r += n * (n - 1);
    }
    return r;
}

/* The null space of M (rows x cols, row-major; destroyed): its dimension, and its basis
 * (rows of length cols, malloc'd into *basis when not NULL); the singular values on both
 * sides of the cut (relative to the largest) into cut[0] (largest counted zero) and cut[1]. */
static int null_space(double *M, int64_t rows, int64_t cols, double tol, double **basis, int *dim, double cut[2],
                      nt_error *err)
{
    /* M = Q R first (LAPACK dgeqrf): R (cols x cols) has M's singular values and null space,
     * and its divide-and-conquer SVD (dgesdd) is the cheap one */
    if (rows > cols) {
        double *tau = malloc(sizeof(double) * (size_t)cols);
        lapack_int info = tau ? LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)rows, (lapack_int)cols, M, (lapack_int)cols,
                                               tau) : -1000;
        free(tau);
        if (info != 0) return nt_fail(err, NT_EFAIL, "discover: LAPACK dgeqrf failed (info %d)", (int)info);
        for (int64_t i = 1; i < cols; i++) memset(M + i * cols, 0, sizeof(double) * (size_t)i);
        rows = cols;
    }
    const int64_t mn = rows < cols ? rows : cols;
    double *s = malloc(sizeof(double) * (size_t)mn), *Vt = malloc(sizeof(double) * (size_t)(cols * cols));
    double *U = malloc(sizeof(double) * (size_t)(rows * rows));
    if (!s || !Vt || !U) {
        free(s); free(Vt); free(U);
        return nt_fail(err, NT_EFAIL, "discover: out of memory for the SVD of %lld x %lld", (long long)rows,
                       (long long)cols);
    }
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'A', (lapack_int)rows, (lapack_int)cols, M, (lapack_int)cols, s,
                                     U, (lapack_int)rows, Vt, (lapack_int)cols);
    free(U);
    if (info != 0) {
        free(s); free(Vt);
        return nt_fail(err, NT_EFAIL, "discover: LAPACK dgesdd failed (info %d)", (int)info);
    }
    int64_t rank = 0;
    while (rank < mn && s[rank] > tol * s[0]) rank++;
    cut[1] = rank > 0 ? s[rank - 1] / s[0] : 0;
    cut[0] = rank < mn ? s[rank] / s[0] : 0;
    *dim = (int)(cols - rank);
    if (basis) {
        *basis = malloc(sizeof(double) * (size_t)((*dim > 0 ? *dim : 1) * cols));
        if (*basis) memcpy(*basis, Vt + rank * cols, sizeof(double) * (size_t)(*dim * cols));
    }
    free(s); free(Vt);
    return basis && !*basis ? nt_fail(err, NT_EFAIL, "discover: out of memory for the basis") : NT_OK;
}

/* rank of the rows of X (n x d, destroyed) at tolerance tol relative to the largest
 * singular value; into *rank */
static int rank_of(double *X, int n, int64_t d, double tol, int *rank, nt_error *err)
{
    *rank = 0;
    if (n == 0) return NT_OK;
    const int64_t mn = n < d ? n : d;
    double *s = malloc(sizeof(double) * (size_t)mn);
    if (!s) return nt_fail(err, NT_EFAIL, "discover: out of memory");
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', n, (lapack_int)d, X, (lapack_int)d, s, NULL, n, NULL,
                                     (lapack_int)d);
    if (info == 0)
        while (*rank < mn && s[*rank] > tol * s[0]) (*rank)++;
    free(s);
    return info == 0 ? NT_OK : nt_fail(err, NT_EFAIL, "discover: LAPACK dgesdd failed (info %d)", (int)info);
}

int nt_discover_algebra(nt_engine *e, const nt_model *m, const double *theta, const nt_transform *list, int n,
                        nt_algebra *o, nt_error *err)
{
    memset(o, 0, sizeof *o);
    const double t0 = now();
    space S;
    space_init(&S, m, o);
    const int64_t d = m->d, K = m->output, N = SAMPLES;
    o->tol = NT_DISCOVER_ALGEBRA_TOL;
    o->samples = (int)N;
    o->equivariances = S.full ? 0 : -1;
    if (S.n_sym == 0) {
        o->seconds = now() - t0;
        return NT_OK;
    }
    /* The rows of one point are j (x) [theta_s, 1]: at most rank J <= min(N K, d) independent
     * ones.  Points for 1.5 independent rows per unknown (and at least 3). */
    const int64_t per_point = N * K < d ? N * K : d;
    o->points = (int)((3 * S.n_all / 2 + per_point - 1) / per_point) + 2;
    const int64_t rows = (int64_t)o->points * N * K, n_skew = symmetric_count(&S);
    const double need = 16.0 * (double)(rows + n_skew) * (double)S.n_all + 8.0 * (double)S.n_all * (double)S.n_all;
    int rc = nt_memory_fits(err, need, 0, "on this machine", "the symmetry search (%lld unknowns)", (long long)S.n_all);
    if (rc) return rc;
    double *M = calloc((size_t)((rows + n_skew) * S.n_all), sizeof(double)), *W = malloc(sizeof(double) * (size_t)((rows + n_skew) * S.n_all));
    double *x = malloc(sizeof(double) * (size_t)(N * m->input)), *th = malloc(sizeof(double) * (size_t)d);
    double *F = malloc(sizeof(double) * (size_t)(N * K)), *j = malloc(sizeof(double) * (size_t)d);
    const int coupled = nt_model_batch_coupled(m);
    double *seed = calloc((size_t)(N * K), sizeof(double));
    double *basis = NULL, *charges = NULL, *X = NULL;   /* X: the charges' and fields' values at theta */
    if (!M || !W || !x || !th || !F || !j || !seed) {
        rc = nt_fail(err, NT_EFAIL, "discover: out of memory for %lld equations", (long long)rows);
        goto done;
    }
    for (int64_t i = 0; i < N * m->input; i++) x[i] = nt_rand_normal(NT_DISCOVER_SEED, 2, (uint64_t)i);
    const double rms = nt_norm2(d, theta) / sqrt((double)d);
    int64_t r = 0;
    for (int s = 0; s < o->points && !rc; s++) {
        for (int64_t i = 0; i < d; i++)
            th[i] = theta[i] + (s ? rms * nt_rand_normal(NT_DISCOVER_SEED, 3 + (uint64_t)s, (uint64_t)i) : 0);
        nt_dataset all = { .n = N, .dim = m->input, .x = x };
        if ((rc = nt_outputs(e, th, &all, F, err))) break;
        /* row (x, k): J_{x,k} by a vector-Jacobian product seeded with e_k on x alone (on the
         * whole batch when a batch normalization couples the samples) */
        for (int64_t xn = 0; xn < N && !rc; xn++) {
            nt_dataset one = { .n = 1, .dim = m->input, .x = x + xn * m->input };
            for (int k = 0; k < K && !rc; k++, r++) {
                seed[(coupled ? xn * K : 0) + k] = 1;
                rc = nt_vjp(e, th, coupled ? &all : &one, seed, j, err);
                seed[(coupled ? xn * K : 0) + k] = 0;
                equation(&S, j, th, F + xn * K, k, M + r * S.n_all);
            }
        }
    }
    if (rc) goto done;
    /* symmetries and equivariances (the full space's B), then symmetries alone (B left out:
     * the first n_sym columns), then the charges (A symmetric) */
    int dim_all = 0, dim_sym = 0;
    double cut[2];
    if (S.full) {
        memcpy(W, M, sizeof(double) * (size_t)(rows * S.n_all));
        if ((rc = null_space(W, rows, S.n_all, o->tol, NULL, &dim_all, cut, err))) goto done;
    }
    for (int64_t i = 0; i < rows; i++) memcpy(W + i * S.n_sym, M + i * S.n_all, sizeof(double) * (size_t)S.n_sym);
    if ((rc = null_space(W, rows, S.n_sym, o->tol, &basis, &dim_sym, o->sv_cut, err))) goto done;
    o->lie_algebra_dim = dim_sym;
    if (S.full) o->equivariances = dim_all - dim_sym;
    for (int64_t i = 0; i < rows; i++) memcpy(W + i * S.n_sym, M + i * S.n_all, sizeof(double) * (size_t)S.n_sym);
    memset(W + rows * S.n_sym, 0, sizeof(double) * (size_t)(n_skew * S.n_sym));
    symmetric_rows(&S, W + rows * S.n_sym, S.n_sym);
    if ((rc = null_space(W, rows + n_skew, S.n_sym, o->tol, &charges, &o->charges, cut, err))) goto done;
    /* at theta: the charges' gradients, the algebra's fields, the catalogue's */
    int n_cat = 0, rank_cat = 0, rank_both = 0;
    for (int t = 0; t < n; t++)
        if (!list[t].discrete && !list[t].equivariance) n_cat += list[t].generators;
    const int n_x = o->charges > dim_sym + n_cat ? o->charges : dim_sym + n_cat;
    X = malloc(sizeof(double) * (size_t)(n_x > 0 ? n_x : 1) * (size_t)d);
    if (!X) {
        rc = nt_fail(err, NT_EFAIL, "discover: out of memory for %d vectors of %lld", n_x, (long long)d);
        goto done;
    }
    for (int i = 0; i < o->charges; i++) field_at(&S, charges + (int64_t)i * S.n_sym, theta, X + (int64_t)i * d);
    if ((rc = rank_of(X, o->charges, d, 1e-9, &o->charges_independent, err))) goto done;
    for (int pass = 0; pass < 2 && !rc; pass++) {   /* pass 0: the catalogue alone; 1: with the algebra */
        int64_t q = 0;
        for (int t = 0; t < n; t++)
            for (int i = 0; !list[t].discrete && !list[t].equivariance && i < list[t].generators; i++)
                nt_tr_xi(m, &list[t], i, theta, X + q++ * d);
        for (int i = 0; pass && i < dim_sym; i++) field_at(&S, basis + (int64_t)i * S.n_sym, theta, X + q++ * d);
        rc = rank_of(X, (int)q, d, 1e-9, pass ? &rank_both : &rank_cat, err);
    }
    o->missing_from_catalogue = rank_both - rank_cat;
    o->catalogue_rank = rank_cat;
    /* the basis as dense generators, for --out-generators */
    if (!rc && d <= NT_DISCOVER_DENSE_MAX && dim_sym > 0) {
        o->A = malloc(sizeof(double) * (size_t)dim_sym * (size_t)(d * d));
        o->c = malloc(sizeof(double) * (size_t)dim_sym * (size_t)d);
        if (!o->A || !o->c) rc = nt_fail(err, NT_EFAIL, "discover: out of memory for %d generators", dim_sym);
        for (int i = 0; !rc && i < dim_sym; i++)
            dense_generator(&S, basis + (int64_t)i * S.n_sym, o->A + (int64_t)i * d * d, o->c + (int64_t)i * d);
        o->n_generators = rc ? 0 : dim_sym;
    }
done:
    free(M); free(W); free(x); free(th); free(F); free(j); free(seed); free(basis); free(charges); free(X);
    o->seconds = now() - t0;
    if (rc) nt_algebra_free(o);
    return rc;
}

void nt_algebra_free(nt_algebra *o)
{
    free(o->A);
    free(o->c);
    o->A = o->c = NULL;
    o->n_generators = 0;
}
