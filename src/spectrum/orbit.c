/* orbit.c: what the continuous symmetries predict about the Hessian, from the generators'
 * structure, at a small fraction of the cost of the eigenvalues (docs/theory.md §3):
 *
 *   - the orbit rank, rank{xi_i(theta)}: the generators are sparse (a unit's row, bias and
 *     column; a head's slices), so their Gram matrix G = X X^T is formed exactly from the
 *     nonzeros and decomposed by LAPACK (dsyevd).  G's eigenvalues are the squared singular
 *     values of X; those below 1e-6 of the largest lose digits to the squaring, so they are
 *     recomputed as the singular values of U_s^T X (U_s their eigenvectors: a few rows),
 *     accurate to eps * s_max like an SVD of X, never a dense d x m matrix;
 *   - the eigenvalues at a critical point of L_gamma: there (S1gamma) gives
 *     H_gamma xi = gamma (A + A^T) theta + gamma c, so the span of the symmetric linear
 *     generators (c = 0, A = A^T) holds eigenvalue 2 gamma, the shifts (A = 0) gamma, the
 *     antisymmetric ones 0; a family closed under transposition (gl(n): E_ab and E_ba) splits
 *     into its symmetric and antisymmetric parts; the multiplicities are the ranks of each
 *     part at theta, by the same Gram matrices;
 *   - (S1gamma) on the whole orbit span at once: it is linear in the generator, so q random
 *     combinations xi = sum_i z_i xi_i, checked as vectors, H_gamma xi against
 *     -A^T g_gamma + gamma (xi + A^T theta), test every generator for one block product. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "noether.h"
#include "../transform/units.h"

/* generators past which the Gram matrix (m^2 doubles, an m^3 decomposition) is not formed */
#define MAX_GENERATORS 4000
/* the seed of the random vector r (N(0, 1) entries) on which classify tells the generators'
 * kinds apart (symmetric, shift, antisymmetric or general) */
#define CLASSIFY_SEED 0x0b17

/* A sparse accumulator: y (d, zero between uses) and the coordinates touched since the last
 * gather, each once (mark[j] == stamp). */
typedef struct {
    double *y;
    int *mark;
    int stamp;
    int64_t *idx, n;
} acc;

static void acc_init(acc *s, int64_t d)
{
    s->y = calloc((size_t)d, sizeof(double));
    s->mark = calloc((size_t)d, sizeof(int));
    s->idx = malloc(sizeof(int64_t) * (size_t)d);
    s->stamp = 1;
    s->n = 0;
}

static void acc_free(acc *s) { free(s->y); free(s->mark); free(s->idx); }

static inline void acc_add(acc *s, int64_t j, double v)
{
    if (s->mark[j] != s->stamp) { s->mark[j] = s->stamp; s->idx[s->n++] = j; }
    s->y[j] += v;
}

/* y += alpha A_i x (A_i^T x when transpose), over the generator's support */
static void add_A(const nt_model *m, const nt_transform *t, int i, int transpose, double alpha, const double *x, acc *s)
{
    const int64_t d = m->d;
    if (t->kind == NT_TR_DENSE) {
        for (int64_t r = 0; t->A && r < d; r++) {
            double v = transpose ? 0 : cblas_ddot((int)d, t->A + r * d, 1, x, 1);
            if (transpose) for (int64_t c = 0; c < d; c++) v += t->A[c * d + r] * x[c];
            if (v != 0) acc_add(s, r, alpha * v);
        }
        return;
    }
    nt_move mv[NT_TR_MAX_MOVES];
    int n = nt_tr_moves(m, t, i, mv);
    for (int k = 0; k < n; k++) {
        const nt_range *dst = transpose ? &mv[k].src : &mv[k].dst, *src = transpose ? &mv[k].dst : &mv[k].src;
        for (int64_t j = 0; j < dst->count; j++) acc_add(s, nt_at(dst, j), alpha * mv[k].coef * x[nt_at(src, j)]);
    }
}

/* y += alpha c_i */
static void add_c(const nt_model *m, const nt_transform *t, int i, double alpha, acc *s)
{
    if (t->kind == NT_TR_DENSE) {
        for (int64_t j = 0; t->c && j < m->d; j++) if (t->c[j] != 0) acc_add(s, j, alpha * t->c[j]);
        return;
    }
    nt_range r = nt_tr_shift_range(m, t, i);
    for (int64_t j = 0; j < r.count; j++) acc_add(s, nt_at(&r, j), alpha);
}

/* Sparse rows (CSR): row r holds idx[ptr[r] .. ptr[r+1]) and val. */
typedef struct {
    int m;
    int64_t *ptr, *idx, cap;
    double *val;
} rows;

static void rows_init(rows *R, int m_max)
{
    R->m = 0;
    R->cap = 1024;
    R->ptr = calloc((size_t)m_max + 1, sizeof(int64_t));
    R->idx = malloc(sizeof(int64_t) * (size_t)R->cap);
    R->val = malloc(sizeof(double) * (size_t)R->cap);
}

static void rows_free(rows *R) { free(R->ptr); free(R->idx); free(R->val); }

/* the accumulator's content as the next row (dropping exact zeros); the accumulator is cleared */
static void rows_take(rows *R, acc *s)
{
    int64_t at = R->ptr[R->m];
    if (at + s->n > R->cap) {
        while (at + s->n > R->cap) R->cap *= 2;
        R->idx = realloc(R->idx, sizeof(int64_t) * (size_t)R->cap);
        R->val = realloc(R->val, sizeof(double) * (size_t)R->cap);
    }
    for (int64_t k = 0; k < s->n; k++) {
        int64_t j = s->idx[k];
        if (s->y[j] != 0) { R->idx[at] = j; R->val[at++] = s->y[j]; }
        s->y[j] = 0;
    }
    R->ptr[++R->m] = at;
    s->n = 0;
    s->stamp++;
}

/* The singular values of the m x d matrix whose rows are R (descending, into sv); returns
 * how many of the small ones were recomputed from U_s^T X (see the top of the file). */
static int singular_values(const rows *R, int64_t d, double *sv)
{
    const int m = R->m;
    if (m == 0) return 0;
    /* G = X X^T from the columns: every pair of rows sharing a coordinate */
    int64_t *cnt = calloc((size_t)d + 1, sizeof(int64_t)), nnz = R->ptr[m];
    for (int64_t k = 0; k < nnz; k++) cnt[R->idx[k] + 1]++;
    for (int64_t j = 0; j < d; j++) cnt[j + 1] += cnt[j];
    int *crow = malloc(sizeof(int) * (size_t)(nnz + 1));
    double *cval = malloc(sizeof(double) * (size_t)(nnz + 1));
    int64_t *fill = malloc(sizeof(int64_t) * (size_t)d);
    memcpy(fill, cnt, sizeof(int64_t) * (size_t)d);
    for (int r = 0; r < m; r++)
        for (int64_t k = R->ptr[r]; k < R->ptr[r + 1]; k++) {
            int64_t at = fill[R->idx[k]]++;
            crow[at] = r;
            cval[at] = R->val[k];
        }
    double *G = calloc((size_t)m * (size_t)m, sizeof(double)), *lam = malloc(sizeof(double) * (size_t)m);
    for (int64_t j = 0; j < d; j++)
        for (int64_t a = cnt[j]; a < cnt[j + 1]; a++)
            for (int64_t b = a; b < cnt[j + 1]; b++) {
                int r = crow[a], c = crow[b];
                G[(int64_t)(r < c ? r : c) * m + (r < c ? c : r)] += cval[a] * cval[b];
            }
    free(cnt); free(crow); free(cval); free(fill);
    /* eigenvalues alone first (ascending); the vectors (G's columns) only when some are small */
    double *G0 = malloc(sizeof(double) * (size_t)m * (size_t)m);
    memcpy(G0, G, sizeof(double) * (size_t)m * (size_t)m);
    LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', m, G0, m, lam);
    free(G0);
    const double top = lam[m - 1];
    int small = 0;
    while (small < m && lam[small] < 1e-6 * top) small++;
    if (top > 0 && small > 0) LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', m, G, m, lam);
    for (int i = 0; i < m; i++) sv[m - 1 - i] = sqrt(fmax(lam[i], 0));
    int refined = 0;
    if (top > 0 && small > 0 && (double)small * (double)d * 8 <= 512.0 * (1 << 20)) {
        /* Y = U_s^T X (small x d), its singular values by LAPACK */
        double *Y = calloc((size_t)small * (size_t)d, sizeof(double)), *s = malloc(sizeof(double) * (size_t)small),
               *superb = malloc(sizeof(double) * (size_t)small + 8);
        for (int r = 0; r < m; r++)
            for (int q = 0; q < small; q++) {
                double u = G[(int64_t)r * m + q];
                for (int64_t k = R->ptr[r]; k < R->ptr[r + 1]; k++) Y[(int64_t)q * d + R->idx[k]] += u * R->val[k];
            }
        int ns = small < d ? small : (int)d;
        LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', small, (int)d, Y, (int)d, s, NULL, 1, NULL, 1, superb);
        for (int q = 0; q < small; q++) sv[m - small + q] = q < ns ? s[q] : 0;   /* the smallest, descending */
        refined = small;
        free(Y); free(s); free(superb);
    }
    free(G); free(lam);
    return refined;
}

static int rank_of(const double *sv, int m, double tol)
{
    int r = 0;
    while (r < m && sv[0] > 0 && sv[r] > tol * sv[0]) r++;
    return r;
}

/* families closed under transposition: generator E_ab's A^T is E_ba's A */
static int transpose_closed(nt_transform_kind k)
{
    return k == NT_TR_GL || k == NT_TR_GL_QK || k == NT_TR_GL_VO;
}

enum { SYM, SHIFT, ANTI, SPLIT, GENERAL, ZERO };

static void acc_clear(acc *s)
{
    for (int64_t k = 0; k < s->n; k++) s->y[s->idx[k]] = 0;
    s->n = 0;
    s->stamp++;
}

/* how generator i's A and c look: A = A^T, A = -A^T or A = 0 by their action on a random
 * vector r (the same moves give bitwise the same products), c = 0 or not */
static int classify(const nt_model *m, const nt_transform *t, int i, const double *r, acc *s1, acc *s2)
{
    add_A(m, t, i, 0, 1.0, r, s1);
    add_A(m, t, i, 1, 1.0, r, s2);
    double sym = 0, anti = 0, size = 0, shift = 0;
    for (int pass = 0; pass < 2; pass++) {   /* over the union of both supports */
        const acc *s = pass ? s2 : s1;
        for (int64_t k = 0; k < s->n; k++) {
            double u = s1->y[s->idx[k]], w = s2->y[s->idx[k]];
            sym = fmax(sym, fabs(u - w));
            anti = fmax(anti, fabs(u + w));
            size = fmax(size, fabs(u) + fabs(w));
        }
    }
    acc_clear(s1);
    acc_clear(s2);
    add_c(m, t, i, 1.0, s2);
    for (int64_t k = 0; k < s2->n; k++) shift += fabs(s2->y[s2->idx[k]]);
    acc_clear(s2);
    if (size == 0) return shift > 0 ? SHIFT : ZERO;
    if (shift > 0) return GENERAL;   /* affine: A != 0 and c != 0 */
    if (sym <= 1e-14 * size) return SYM;
    if (anti <= 1e-14 * size) return ANTI;
    return transpose_closed(t->kind) ? SPLIT : GENERAL;
}

void nt_orbit_free(nt_orbit *o) { free(o->sv); memset(o, 0, sizeof *o); }

int nt_orbit_analyse(const nt_model *m, const nt_transform *list, int n, const double *theta, double tol, nt_orbit *o)
{
    const int64_t d = m->d;
    const double gam = m->weight_decay;
    memset(o, 0, sizeof *o);
    o->tol = tol;
    for (int t = 0; t < n; t++) if (!list[t].discrete && !list[t].equivariance) o->generators += list[t].generators;
    if (o->generators > MAX_GENERATORS) { o->rank = -1; return 0; }
    const int g = o->generators;
    o->sv = calloc((size_t)g + 1, sizeof(double));
    rows all, part[3];   /* part: SYM (2 gamma), SHIFT (gamma), ANTI (0) */
    rows_init(&all, g);
    for (int c = 0; c < 3; c++) rows_init(&part[c], g);
    acc s1, s2;
    acc_init(&s1, d);
    acc_init(&s2, d);
    double *r = malloc(sizeof(double) * (size_t)d);
    for (int64_t j = 0; j < d; j++) r[j] = nt_rand_normal(CLASSIFY_SEED, 0, (uint64_t)j);
    for (int t = 0; t < n; t++) {
        const nt_transform *T = &list[t];
        if (T->discrete || T->equivariance) continue;
        for (int i = 0; i < T->generators; i++) {
            add_A(m, T, i, 0, 1.0, theta, &s1);   /* xi_i = A_i theta + c_i */
            add_c(m, T, i, 1.0, &s1);
            rows_take(&all, &s1);
            int cls = classify(m, T, i, r, &s1, &s2);
            if (cls == GENERAL) o->unpredicted++;
            if (cls == SYM || cls == ANTI) {
                add_A(m, T, i, 0, 1.0, theta, &s1);
                rows_take(&part[cls == SYM ? 0 : 2], &s1);
            } else if (cls == SHIFT) {
                add_c(m, T, i, 1.0, &s1);
                rows_take(&part[1], &s1);
            } else if (cls == SPLIT) {   /* (A +- A^T) theta / 2 */
                for (int sign = 0; sign < 2; sign++) {
                    add_A(m, T, i, 0, 0.5, theta, &s1);
                    add_A(m, T, i, 1, sign ? -0.5 : 0.5, theta, &s1);
                    rows_take(&part[sign ? 2 : 0], &s1);
                }
            }
        }
    }
    o->refined = singular_values(&all, d, o->sv);
    o->rank = rank_of(o->sv, g, tol);
    int part_rank[3];
    for (int c = 0; c < 3; c++) {
        double *sv = calloc((size_t)part[c].m + 1, sizeof(double));
        singular_values(&part[c], d, sv);
        part_rank[c] = rank_of(sv, part[c].m, tol);
        free(sv);
    }
    o->shift_rank = part_rank[1];   /* H_gamma c = gamma c at every theta (S1gamma with A = 0) */
    /* the predicted eigenvalues at a critical point of L_gamma; without weight decay they
     * all sit at 0 and the multiplicity is the orbit rank */
    if (gam == 0) {
        if (o->rank > 0) {
            o->value[0] = 0;
            o->multiplicity[0] = o->rank;
            snprintf(o->what[0], sizeof o->what[0], "every symmetry generator (gamma = 0)");
            o->n_values = 1;
        }
        o->unpredicted = 0;
    } else {
        static const char *what[3] = {"symmetric linear generators: 2 gamma", "pure shifts: gamma",
                                      "antisymmetric generators: 0"};
        const double value[3] = {2 * gam, gam, 0};
        for (int c = 0; c < 3; c++) {
            int k = part_rank[c];
            if (k == 0) continue;
            o->value[o->n_values] = value[c];
            o->multiplicity[o->n_values] = k;
            snprintf(o->what[o->n_values], sizeof o->what[0], "%s", what[c]);
            o->n_values++;
        }
    }
    free(r);
    acc_free(&s1);
    acc_free(&s2);
    rows_free(&all);
    for (int c = 0; c < 3; c++) rows_free(&part[c]);
    return o->rank;
}

int nt_orbit_s1_check(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                      const double *theta, const double *g, int q, uint64_t seed, double *worst_out,
                      double *curvature_scale, nt_error *err)
{
    const int64_t d = m->d;
    const double gam = m->weight_decay;
    if (q > nt_engine_k(e) - 1) q = nt_engine_k(e) - 1;
    if (q < 1) q = 1;
    acc s;
    acc_init(&s, d);
    double *X = calloc((size_t)(q + 1) * (size_t)d, sizeof(double)), *HX = malloc(sizeof(double) * (size_t)(q + 1) * (size_t)d),
           *P = calloc((size_t)q * (size_t)d, sizeof(double));
    if (!s.y || !s.mark || !s.idx || !X || !HX || !P) {
        acc_free(&s);
        free(X); free(HX); free(P);
        return nt_fail(err, NT_EFAIL, "(S1) check: out of memory for %d vectors of %lld", q + 1, (long long)d);
    }
    int gen = 0;
    for (int t = 0; t < n; t++) {
        const nt_transform *T = &list[t];
        if (T->discrete || T->equivariance) continue;
        for (int i = 0; i < T->generators; i++, gen++) {
            /* s: xi_i = A_i theta + c_i; then the prediction's -A_i^T g + gamma A_i^T theta */
            add_A(m, T, i, 0, 1.0, theta, &s);
            add_c(m, T, i, 1.0, &s);
            for (int p = 0; p < q; p++) {
                double z = nt_rand_normal(seed, (uint64_t)p, (uint64_t)gen);
                for (int64_t k = 0; k < s.n; k++) {
                    int64_t j = s.idx[k];
                    X[(int64_t)p * d + j] += z * s.y[j];
                    P[(int64_t)p * d + j] += z * gam * s.y[j];
                }
            }
            acc_clear(&s);
            add_A(m, T, i, 1, -1.0, g, &s);
            add_A(m, T, i, 1, gam, theta, &s);
            for (int p = 0; p < q; p++) {
                double z = nt_rand_normal(seed, (uint64_t)p, (uint64_t)gen);
                for (int64_t k = 0; k < s.n; k++) P[(int64_t)p * d + s.idx[k]] += z * s.y[s.idx[k]];
            }
            acc_clear(&s);
        }
    }
    /* the last row: a random direction, for the curvature scale s_H = |H v| / |v| */
    for (int64_t j = 0; j < d; j++) X[(int64_t)q * d + j] = nt_rand_normal(seed, (uint64_t)q, (uint64_t)j);
    int rc = nt_hvp(e, theta, ds, q + 1, X, HX, NULL, NULL, err);
    if (rc != NT_OK) {
        acc_free(&s);
        free(X); free(HX); free(P);
        return rc;
    }
    const double sH = nt_norm2(d, HX + (int64_t)q * d) / nt_norm2(d, X + (int64_t)q * d);
    if (curvature_scale) *curvature_scale = sH;
    double worst = 0;
    for (int p = 0; gen > 0 && p < q; p++) {
        const double *x = X + (int64_t)p * d, *hx = HX + (int64_t)p * d, *pr = P + (int64_t)p * d;
        double diff = 0;
        for (int64_t j = 0; j < d; j++) diff += (hx[j] - pr[j]) * (hx[j] - pr[j]);
        double size = nt_norm2(d, hx) + nt_norm2(d, pr) + sH * nt_norm2(d, x);
        worst = fmax(worst, sqrt(diff) / fmax(size, 1e-300));
    }
    acc_free(&s);
    free(X); free(HX); free(P);
    *worst_out = worst;
    return NT_OK;
}
