/* ledger.c: the conserved or tracked quantities of a catalogue and their values.  Every
 * continuous entry with a symmetric generator gives quantities Q = theta^T A theta / 2 +
 * c^T theta (docs/theory.md §2): one per rescaled unit (|w|^2 + b^2 - p|a|^2, halved), one per
 * symmetric basis element of gl(n) (E_aa and E_ab + E_ba: the entries of
 * W_l W_l^T + b_l b_l^T - W_{l+1}^T W_{l+1}), one per translation (a sum of last-layer
 * parameters) and the homogeneous norm.  All are evaluated from the structure, at the
 * cost of the generator's support. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "ledger.h"
#include "../util/simd.h"
#include "../transform/units.h"

/* the model.layers index of dense layer l (1-based), the index generator names carry */
static int dense_index(const nt_model *m, int l)
{
    nt_dense D[NT_MAX_LAYERS];
    nt_dense_layers(m, D);
    return D[l - 1].layer;
}

/* 2 when the generator's A is not zero, 1 for a pure shift (A = 0): the rate, in units of
 * gamma, at which weight decay alone makes Q decay under gradient flow (docs/theory.md (F2)) */
static int decay_rate(const nt_model *m, const nt_transform *T, int gen)
{
    if (T->kind == NT_TR_DENSE) {
        for (int64_t i = 0; T->A && i < m->d * m->d; i++)
            if (T->A[i] != 0) return 2;
        return 1;
    }
    nt_move mv[NT_TR_MAX_MOVES];
    return nt_tr_moves(m, T, gen, mv) > 0 ? 2 : 1;
}

static int symmetric_dense(const nt_model *m, const double *A)
{
    const int64_t d = m->d;
    if (!A) return 1;
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++)
            if (A[i * d + j] != A[j * d + i]) return 0;
    return 1;
}

int nt_ledger_quantities(const nt_model *m, const nt_transform *list, int n, nt_quantity **out, int *nq)
{
    nt_quantity *q = NULL;
    int count = 0, cap = 0;
    for (int t = 0; t < n; t++) {
        const nt_transform *T = &list[t];
        /* symmetric A only (Q = theta^T A theta / 2 + c^T theta has gradient xi): not the bias
         * shifts (nor attention's value shifts), whose A moves a column of W into a bias */
        if (T->discrete || T->kind == NT_TR_BIAS_SHIFT || T->kind == NT_TR_VALUE_SHIFT ||
            (T->kind == NT_TR_DENSE && !symmetric_dense(m, T->A)))
            continue;
        const int gl = T->kind == NT_TR_GL || T->kind == NT_TR_GL_QK || T->kind == NT_TR_GL_VO;
        int w = 1;   /* gl(n): n, with n^2 generators */
        while (gl && w * w < T->generators) w++;
        for (int i = 0; i < T->generators; i++) {
            int gen2 = -1;
            if (gl) {   /* E_ab with a <= b, paired with E_ba */
                int a = i / w, b = i % w;
                if (a > b) continue;
                if (a < b) gen2 = b * w + a;
            }
            if (count == cap) {
                cap = cap ? 2 * cap : 32;
                q = realloc(q, sizeof *q * (size_t)cap);
            }
            nt_quantity *Q = &q[count++];
            memset(Q, 0, sizeof *Q);
            Q->entry = t;
            Q->gen = i;
            Q->gen2 = gen2;
            Q->equivariance = T->equivariance;
            Q->rate = decay_rate(m, T, i);
            if (T->kind == NT_TR_GL) {
                snprintf(Q->name, sizeof Q->name, "gl_sym[layer=%d,i=%d,j=%d]", dense_index(m, T->layer), i / w, i % w);
            } else if (gl) {
                snprintf(Q->name, sizeof Q->name, "%s_sym[layer=%d,head=%d,i=%d,j=%d]",
                         T->kind == NT_TR_GL_QK ? "gl_qk" : "gl_vo", T->layer, T->a, i / w, i % w);
            } else {
                nt_generator_name(m, T, i, Q->name, sizeof Q->name);
            }
        }
    }
    *out = q;
    *nq = count;
    return NT_OK;
}

double nt_ledger_bilinear(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                          const double *y, const double *x)
{
    const nt_transform *T = &list[q->entry];
    double s = nt_tr_bilinear(m, T, q->gen, y, x);
    if (q->gen2 >= 0) s += nt_tr_bilinear(m, T, q->gen2, y, x);
    return s;
}

double nt_ledger_shift(const nt_model *m, const nt_transform *list, const nt_quantity *q, const double *y)
{
    const nt_transform *T = &list[q->entry];
    return nt_tr_has_shift(T) ? nt_tr_shift_dot(m, T, q->gen, y) : 0;   /* asked per quantity every step */
}

double nt_quantity_value(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                         const double *theta)
{
    return 0.5 * nt_ledger_bilinear(m, list, q, theta, theta) + nt_ledger_shift(m, list, q, theta);
}

void nt_quantity_gradient(const nt_model *m, const nt_transform *list, const nt_quantity *q, const double *theta,
                          double *g, double *work)
{
    const nt_transform *T = &list[q->entry];
    nt_tr_xi(m, T, q->gen, theta, g);
    if (q->gen2 < 0) return;
    nt_tr_apply_A(m, T, q->gen2, theta, work);   /* the symmetric pair E_ab + E_ba of gl(n) */
    for (int64_t j = 0; j < m->d; j++) g[j] += work[j];
}

double nt_quantity_magnitude(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                             const double *theta)
{
    const nt_transform *T = &list[q->entry];
    double s = nt_tr_magnitude(m, T, q->gen, theta);
    if (q->gen2 >= 0) s += nt_tr_magnitude(m, T, q->gen2, theta);
    return s;
}

/* ---- all quantities' bilinear forms at once ------------------------------------------ */

/* Sums of y_i x_i over the rows, the columns and the whole of every weight matrix, and over
 * every bias, for several pairs (y, x) in one pass over theta's layout: they answer the
 * diagonal moves of every built-in generator (a unit's row, bias and column; whole tensors
 * for homogeneity) in O(1).  The plan says where each quantity's moves are read: one of the
 * sums, or the move's support (an off-diagonal move, or a range the sums do not hold). */
enum { AT_ROW, AT_COL, AT_W, AT_B, AT_DIAGONAL, AT_MOVE };   /* sums; over the support */
typedef struct { double coef; int at; int64_t index; } term;

struct nt_ledger_plan {
    int nd;
    nt_dense D[NT_MAX_LAYERS];
    int64_t n_rows, n_cols, row_at[NT_MAX_LAYERS], col_at[NT_MAX_LAYERS];
    char has_cols[NT_MAX_LAYERS];   /* layer q's column sums are kept (a rescaling reads them) */
    char row_only[NT_MAX_LAYERS];   /* layer q's W is read only through the sums: a step makes its
                                     * rows in scratch (nt_range_fn) */
    double *scratch;                /* 3 rows of the widest W (n_in), at 0, widest, 2 widest */
    int widest;
    int nq;
    char *dense;                    /* quantity j's A is a dense matrix: y^T A x in full */
    int *first;                     /* quantity j's terms: terms[first[j] .. first[j + 1]) */
    term *terms;
    nt_move *moves;                 /* the moves read over their support (AT_DIAGONAL, AT_MOVE) */
    double *sums;                   /* the sums of up to NT_LEDGER_PAIRS pairs (sums_fill) */
};

/* where the sums hold a diagonal range r: *at and *index; 0 when they do not */
static int find_sum(const nt_ledger_plan *P, const nt_range *r, int *at, int64_t *index)
{
    for (int q = 0; r->inner <= 1 && q < P->nd; q++) {   /* two-level ranges (channels): over the support */
        const nt_dense *L = &P->D[q];
        int64_t rel = r->start - L->off_w, size = (int64_t)L->n_out * L->n_in;
        if (rel >= 0 && rel < size) {
            if (r->stride == 1 && r->count == L->n_in && rel % L->n_in == 0) {
                *at = AT_ROW; *index = P->row_at[q] + rel / L->n_in; return 1;
            }
            if (P->has_cols[q] && r->stride == L->n_in && r->count == L->n_out && rel < L->n_in) {
                *at = AT_COL; *index = P->col_at[q] + rel; return 1;
            }
            if (r->stride == 1 && r->count == size && rel == 0) { *at = AT_W; *index = q; return 1; }
        }
        if (L->off_b >= 0 && r->start == L->off_b && r->count == L->n_out && r->stride == 1) {
            *at = AT_B; *index = q; return 1;
        }
    }
    return 0;
}

/* *a (cap elements of size) twice as long; 0 when memory runs out (*a is kept) */
static int grow(void **a, int *cap, size_t size)
{
    void *b = realloc(*a, size * (size_t)*cap * 2);
    if (!b) return 0;
    *a = b;
    *cap *= 2;
    return 1;
}

/* the layers whose W the range r may touch (by its span) are read outside the sums */
static void read_outside(nt_ledger_plan *P, const nt_range *r)
{
    if (r->count <= 0) return;
    const int64_t lo = r->start, hi = nt_at(r, r->count - 1);
    for (int q = 0; q < P->nd; q++)
        if (lo < P->D[q].off_w + (int64_t)P->D[q].n_out * P->D[q].n_in && hi >= P->D[q].off_w) P->row_only[q] = 0;
}

nt_ledger_plan *nt_ledger_plan_new(const nt_model *m, const nt_transform *list, const nt_quantity *q, int nq)
{
    nt_ledger_plan *P = calloc(1, sizeof *P);
    if (!P) return NULL;
    P->nd = nt_dense_layers(m, P->D);
    for (int k = 0; k < P->nd; k++) {
        P->row_at[k] = P->n_rows; P->n_rows += P->D[k].n_out;
        P->col_at[k] = P->n_cols; P->n_cols += P->D[k].n_in;
    }
    /* the columns a unit's rescaling reads: those of the dense layer after it (other column
     * ranges, if any, are read over their support) */
    for (int j = 0; j < nq; j++) {
        const nt_transform *T = &list[q[j].entry];
        if (T->kind == NT_TR_RESCALE && T->layer >= 1 && T->layer < P->nd) P->has_cols[T->layer] = 1;
    }
    P->nq = nq;
    P->sums = malloc(sizeof(double) * NT_LEDGER_PAIRS * (size_t)(P->n_rows + P->n_cols + 2 * P->nd));
    for (int k = 0; k < P->nd; k++) {
        P->row_only[k] = 1;
        if (P->D[k].n_in > P->widest) P->widest = P->D[k].n_in;
    }
    P->scratch = calloc(3 * (size_t)P->widest + 1, sizeof(double));
    P->dense = calloc((size_t)nq + 1, 1);
    P->first = malloc(sizeof(int) * ((size_t)nq + 1));
    int cap = 4 * nq + 8, n = 0, nm = 0, cap_m = 8;
    P->terms = malloc(sizeof(term) * (size_t)cap);
    P->moves = malloc(sizeof(nt_move) * (size_t)cap_m);
    nt_move mv[NT_TR_MAX_MOVES];
    for (int j = 0; P->terms && P->moves && P->dense && P->first && P->sums && j < nq; j++) {
        const nt_transform *T = &list[q[j].entry];
        P->first[j] = n;
        if (T->kind == NT_TR_DENSE) {   /* y^T A x over whole vectors */
            P->dense[j] = 1;
            memset(P->row_only, 0, sizeof P->row_only);
            continue;
        }
        for (int g = 0; g < 2; g++) {
            const int gen = g ? q[j].gen2 : q[j].gen;
            if (gen >= 0 && nt_tr_has_shift(T)) {   /* c^T y over the shift's range */
                const nt_range r = nt_tr_shift_range(m, T, gen);
                read_outside(P, &r);
            }
            const int count = gen < 0 ? 0 : nt_tr_moves_in(m, P->D, T, gen, mv);
            for (int k = 0; k < count; k++) {
                const nt_move *M = &mv[k];
                const int diagonal = M->dst.start == M->src.start && M->dst.stride == M->src.stride &&
                                     M->dst.inner == M->src.inner;
                term t = { M->coef, AT_MOVE, nm };
                if (!diagonal || !find_sum(P, &M->dst, &t.at, &t.index)) {
                    if (diagonal) t.at = AT_DIAGONAL;
                    read_outside(P, &M->dst);
                    read_outside(P, &M->src);
                    if (nm == cap_m && !grow((void **)&P->moves, &cap_m, sizeof(nt_move))) goto fail;
                    P->moves[nm++] = *M;
                }
                if (n == cap && !grow((void **)&P->terms, &cap, sizeof(term))) goto fail;
                P->terms[n++] = t;
            }
        }
    }
    if (!P->terms || !P->moves || !P->dense || !P->first || !P->sums || !P->scratch) goto fail;
    P->first[nq] = n;
    return P;
fail:
    nt_ledger_plan_free(P);
    return NULL;
}

void nt_ledger_plan_free(nt_ledger_plan *P)
{
    if (!P) return;
    free(P->dense); free(P->first); free(P->terms); free(P->moves); free(P->sums); free(P->scratch);
    free(P);
}

typedef struct {
    const nt_ledger_plan *P;
    int np;
    double *rows, *cols, *wsum, *bsum;   /* pair p, layer q: rows[p n_rows + row_at[q] + r], ... */
    int step;                            /* the pairs are a training step's (row_step) */
    nt_range_fn produce;                 /* makes y and x on a range of theta's layout, or NULL */
    void *ctx;
    int64_t cursor;                      /* [0, cursor) made */
} sums;

/* The row kernels: 8 doubles at a time in GCC's vector type (one AVX-512 register, two AVX2
 * or four SSE2 ones, as the clone is), a row's sum in 8 partial sums added in one fixed order
 * (HSUM), then the tail: the same bits from either kernel, for a pair alone or in a step's. */
typedef double v8 __attribute__((vector_size(64), aligned(8), may_alias));
#define V8(p) (*(v8 *)(p))
#define CV8(p) (*(const v8 *)(p))
#define HSUM(a) ((((a)[0] + (a)[4]) + ((a)[1] + (a)[5])) + (((a)[2] + (a)[6]) + ((a)[3] + (a)[7])))

/* sum of y_i x_i over a row of n, and c += y * x elementwise when c is not NULL */
NT_CLONES static double row_pair(int64_t n, const double *restrict y, const double *restrict x, double *restrict c)
{
    v8 part = {0};
    double tail = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const v8 t = CV8(y + i) * CV8(x + i);
        if (c) V8(c + i) += t;
        part += t;
    }
    for (; i < n; i++) {
        const double t = y[i] * x[i];
        if (c) c[i] += t;
        tail += t;
    }
    return HSUM(part) + tail;
}

/* A training step's four pairs (s, theta), (s_decay, theta), (s, s), (theta, theta) over a
 * row, each vector loaded once: out[p] the row's sums, and c + p ldc += the products when c
 * is not NULL */
NT_CLONES static void row_step(int64_t n, const double *restrict s, const double *restrict sd,
                               const double *restrict th, double *restrict c, int64_t ldc, double out[4])
{
    v8 p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0};
    double q0 = 0, q1 = 0, q2 = 0, q3 = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const v8 a = CV8(s + i), b = CV8(sd + i), t = CV8(th + i);
        const v8 t0 = a * t, t1 = b * t, t2 = a * a, t3 = t * t;
        if (c) {
            V8(c + i) += t0;
            V8(c + ldc + i) += t1;
            V8(c + 2 * ldc + i) += t2;
            V8(c + 3 * ldc + i) += t3;
        }
        p0 += t0; p1 += t1; p2 += t2; p3 += t3;
    }
    for (; i < n; i++) {
        const double t0 = s[i] * th[i], t1 = sd[i] * th[i], t2 = s[i] * s[i], t3 = th[i] * th[i];
        if (c) { c[i] += t0; c[ldc + i] += t1; c[2 * ldc + i] += t2; c[3 * ldc + i] += t3; }
        q0 += t0; q1 += t1; q2 += t2; q3 += t3;
    }
    out[0] = HSUM(p0) + q0;
    out[1] = HSUM(p1) + q1;
    out[2] = HSUM(p2) + q2;
    out[3] = HSUM(p3) + q3;
}

/* produce(ctx, lo, hi) on [cursor, hi) unless it is done: the pass reads no value of y and x
 * before they are made */
static void advance(sums *S, int64_t hi)
{
    if (S->produce && S->cursor < hi) S->produce(S->ctx, S->cursor, hi, NULL);
    if (S->cursor < hi) S->cursor = hi;
}

static void sums_fill(sums *S, const double *const *y, const double *const *x, int64_t d)
{
    const nt_ledger_plan *P = S->P;
    for (int q = 0; q < P->nd; q++) {
        const nt_dense *L = &P->D[q];
        for (int p = 0; p < S->np; p++) {
            memset(S->cols + p * P->n_cols + P->col_at[q], 0, sizeof(double) * (size_t)L->n_in);
            S->wsum[p * P->nd + q] = 0;
        }
        /* row by row, every pair while the row is in cache: each vector is read once; a step's
         * row read nowhere else is made in scratch (no write of 3 rows to memory and back) */
        const int in_scratch = S->step && S->produce && P->row_only[q];
        double *const scr[3] = { P->scratch, P->scratch + P->widest, P->scratch + 2 * P->widest };
        for (int r = 0; r < L->n_out; r++) {
            const int64_t at = L->off_w + (int64_t)r * L->n_in;
            double row[4], *c = P->has_cols[q] ? S->cols + P->col_at[q] : NULL;
            if (in_scratch) {
                advance(S, at);
                S->produce(S->ctx, at, at + L->n_in, scr);
                S->cursor = at + L->n_in;
                row_step(L->n_in, scr[0], scr[1], scr[2], c, P->n_cols, row);
            } else {
                advance(S, at + L->n_in);
                if (S->step) row_step(L->n_in, y[0] + at, y[1] + at, x[0] + at, c, P->n_cols, row);
            }
            for (int p = 0; p < S->np; p++) {
                if (!S->step) row[0] = row_pair(L->n_in, y[p] + at, x[p] + at, c ? c + p * P->n_cols : NULL);
                S->rows[p * P->n_rows + P->row_at[q] + r] = row[S->step ? p : 0];
                S->wsum[p * P->nd + q] += row[S->step ? p : 0];
            }
        }
    }
    advance(S, d);
    for (int q = 0; q < P->nd; q++)
        for (int p = 0; p < S->np; p++)
            S->bsum[p * P->nd + q] = P->D[q].off_b < 0 ? 0 :
                cblas_ddot(P->D[q].n_out, y[p] + P->D[q].off_b, 1, x[p] + P->D[q].off_b, 1);
}

/* a term's sum for pair p, and (a) the same over |y_i x_i| (for the magnitude) */
static double term_value(const sums *S, int p, const term *t, const double *y, const double *x, double *a)
{
    const nt_ledger_plan *P = S->P;
    double v = 0;
    switch (t->at) {
    case AT_ROW: v = S->rows[p * P->n_rows + t->index]; break;
    case AT_COL: v = S->cols[p * P->n_cols + t->index]; break;
    case AT_W: v = S->wsum[p * P->nd + t->index]; break;
    case AT_B: v = S->bsum[p * P->nd + t->index]; break;
    case AT_DIAGONAL: {   /* a diagonal range the sums do not hold: for y = x a sum of squares */
        const nt_range *r = &P->moves[t->index].dst;
        for (int64_t j = 0; j < r->count; j++) v += y[nt_at(r, j)] * x[nt_at(r, j)];
        break;
    }
    default: {            /* off-diagonal (E_ab, a != b): over the support */
        const nt_move *M = &P->moves[t->index];
        double s = 0;
        for (int64_t i = 0; i < M->dst.count; i++) {
            const double u = y[nt_at(&M->dst, i)] * x[nt_at(&M->src, i)];
            v += u;
            s += fabs(u);
        }
        *a = s;
        return v;
    }
    }
    *a = v;
    return v;
}

void nt_ledger_forms(const nt_model *m, const nt_transform *list, const nt_quantity *q, nt_ledger_plan *P,
                     int np, const double *const *y, const double *const *x, double *out, double *magnitude,
                     nt_range_fn produce, void *ctx)
{
    const int nq = P->nq;
    sums S = { .P = P, .np = np, .produce = produce, .ctx = ctx };
    double *buf = P->sums;
    S.rows = buf; S.cols = buf + np * P->n_rows; S.wsum = S.cols + np * P->n_cols; S.bsum = S.wsum + np * P->nd;
    S.step = np == 4 && y[2] == y[0] && x[2] == y[0] && x[1] == x[0] && y[3] == x[0] && x[3] == x[0];
    sums_fill(&S, y, x, m->d);
    for (int j = 0; j < nq; j++) {
        const nt_transform *T = &list[q[j].entry];
        if (P->dense[j]) {
            for (int p = 0; p < np; p++) out[p * nq + j] = nt_ledger_bilinear(m, list, &q[j], y[p], x[p]);
            if (magnitude) magnitude[j] = nt_quantity_magnitude(m, list, &q[j], x[np - 1]);
            continue;
        }
        double mag = 0;
        for (int p = 0; p < np; p++) {
            double o = 0;
            for (int k = P->first[j]; k < P->first[j + 1]; k++) {
                double a;
                o += P->terms[k].coef * term_value(&S, p, &P->terms[k], y[p], x[p], &a);
                if (p == np - 1) mag += 0.5 * fabs(P->terms[k].coef) * a;
            }
            out[p * nq + j] = o;
        }
        if (magnitude) magnitude[j] = mag + nt_tr_shift_magnitude(m, T, q[j].gen, x[np - 1]);
    }
}
