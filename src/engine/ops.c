/* ops.c: the rules of each op (DESIGN.md's worked example), batch rows, k tangents.
 * Shapes: h is n x n_in (the input value), z is n x n_out, tangents n x k x width.
 * Every dense product goes through BLAS; parameter sums (W_bar, its tangent) accumulate
 * over chunks, the division by N happens once in engine.c.  The tape is a chain: every
 * value has exactly one consumer (a residual block's input has two, the block and the skip:
 * its branch node merges their adjoints), so an op assigns its input's adjoint (and
 * adjoint tangent) rather than adding to it, and nothing needs zeroing between passes. */
#include <math.h>
#include <string.h>
#include <cblas.h>
#include "tape.h"


/* C (rows x cols, ldc) += A B^T-style GEMM, a thin wrapper to keep calls readable */
void nt_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K,
                 const double *A, int64_t lda, const double *B, int64_t ldb,
                 double beta, double *C, int64_t ldc)
{
    cblas_dgemm(ROW, ta, tb, (int)M, (int)N, (int)K, 1.0, A, (int)lda, B, (int)ldb, beta,
                C, (int)ldc);
}

/* C (M x no, ldc) += A (M x ni) B^T (B: no x ni): a narrow output (a classifier's head) in
 * blocks of 64 rows, which OpenBLAS takes to its small-matrix kernel (256 x 10 x 256: 35 us in
 * one call, 4 x 4 us in blocks; 4096 x 10 x 256: 0.52 ms, 0.25 in blocks) */
static void gemm_rows(int64_t M, int64_t no, int64_t ni, const double *A, const double *B, double *C, int64_t ldc)
{
    const int64_t step = no <= 16 ? 64 : M;
    for (int64_t r = 0; r < M; r += step)
        nt_gemm(NT, TR, M - r < step ? M - r : step, no, ni, A + r * ni, ni, B, ni, 1.0, C + r * ldc, ldc);
}

/* out[w] += sum over rows r of X[r * ldx + w], for r < rows */
static void add_col_sums(int64_t rows, int64_t w, const double *X, int64_t ldx, double *out)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < w; i++) out[i] += X[r * ldx + i];
}

/* ---- dense:  z = h W^T + 1 b^T ------------------------------------------------------
 * On a sequence (T tokens) the same map acts on each token's row: h is (n T) x n_in, and
 * the per-tangent parameter terms go sample by sample (T rows each):
 *   TAN  z._rj += h_r W._j^T;   ADJTAN  h_bar._rj += z_bar_r W._j,
 *   W_bar._j += z_bar._rj^T h_r + z_bar_r^T h._rj,  b_bar._j += z_bar._rj^T 1 */
static void dense_tokens(nt_engine *e, nt_node *p, const nt_node *q, int action)
{
    const int64_t n = e->n, k = e->kk, d = e->d, T = p->tokens, no = p->width / T, ni = q->width / T;
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < k; j++) {
            const double *Wj = e->V + j * d + p->off_w, *h = q->val + r * T * ni;
            const int64_t rj = (r * k + j) * T;
            if (action == NT_TAN) {
                nt_gemm(NT, TR, T, no, ni, h, ni, Wj, ni, 1.0, p->tan + rj * no, no);
                continue;
            }
            if (q->need_adj) nt_gemm(NT, NT, T, ni, no, p->adj + r * T * no, no, Wj, ni, 1.0, q->adjtan + rj * ni, ni);
            double *HWj = e->HV + j * d + p->off_w;
            nt_gemm(TR, NT, no, ni, T, p->adjtan + rj * no, no, h, ni, 1.0, HWj, ni);
            if (q->has_tan) nt_gemm(TR, NT, no, ni, T, p->adj + r * T * no, no, q->tan + rj * ni, ni, 1.0, HWj, ni);
            if (p->off_b >= 0) add_col_sums(T, no, p->adjtan + rj * no, no, e->HV + j * d + p->off_b);
        }
}

void nt_op_dense(nt_engine *e, nt_node *p, int action)
{
    const nt_node *q = &e->nodes[p->in];
    const int64_t T = p->tokens, n = e->n * T, k = e->kk, d = e->d, ni = q->width / T, no = p->width / T;
    const double *W = e->theta + p->off_w, *h = q->val;
    switch (action) {
    case NT_FWD:   /* z = h W^T + 1 b^T */
        for (int64_t r = 0; r < n; r++) {
            if (p->off_b >= 0) memcpy(p->val + r * no, e->theta + p->off_b, sizeof(double) * no);
            else memset(p->val + r * no, 0, sizeof(double) * no);
        }
        gemm_rows(n, no, ni, h, W, p->val, no);
        break;
    case NT_TAN:   /* z. = h. W^T + h W._j^T + 1 b._j^T */
        for (int64_t r = 0; r < n * k; r++) {   /* (n k) rows (of T tokens each) */
            double *zt = p->tan + r * no;
            if (p->off_b >= 0) memcpy(zt, e->V + (r / T % k) * d + p->off_b, sizeof(double) * no);
            else memset(zt, 0, sizeof(double) * no);
        }
        if (q->has_tan)   /* all k at once: (n k) x n_in times W^T */
            gemm_rows(n * k, no, ni, q->tan, W, p->tan, no);
        if (T > 1) { dense_tokens(e, p, q, action); break; }
        /* h [W._1; ...; W._k]^T is n x (k n_out): the sample-major layout of z. itself */
        for (int64_t j = 0; j < k; j++)
            memcpy(e->pack + j * no * ni, e->V + j * d + p->off_w, sizeof(double) * no * ni);
        nt_gemm(NT, TR, n, k * no, ni, h, ni, e->pack, ni, 1.0, p->tan, k * no);
        break;
    case NT_ADJ:   /* W_bar += z_bar^T h,  b_bar += z_bar^T 1 (when the gradient is wanted),
                    * h_bar = z_bar W */
        if (e->g) {
            nt_gemm(TR, NT, no, ni, n, p->adj, no, h, ni, 1.0, e->g + p->off_w, ni);
            if (p->off_b >= 0) add_col_sums(n, no, p->adj, no, e->g + p->off_b);
        }
        if (q->need_adj) nt_gemm(NT, NT, n, ni, no, p->adj, no, W, ni, 0.0, q->adj, ni);
        break;
    case NT_ADJTAN:
        /* h_bar. = z_bar. W (all k at once) + z_bar W._j (each j) */
        if (q->need_adj) nt_gemm(NT, NT, n * k, ni, no, p->adjtan, no, W, ni, 0.0, q->adjtan, ni);
        if (T > 1) { dense_tokens(e, p, q, action); break; }
        if (q->need_adj)
            for (int64_t j = 0; j < k; j++)
                nt_gemm(NT, NT, n, ni, no, p->adj, no, e->V + j * d + p->off_w, ni, 1.0, q->adjtan + j * ni, k * ni);
        for (int64_t j = 0; j < k; j++) {
            /* W_bar._j += z_bar._j^T h, z_bar._j the columns j n_out.. of z_bar. viewed as
             * n x (k n_out): straight into the sums (a GEMM into a stack of the k and a pass
             * adding it measured 7 % slower) */
            double *HWj = e->HV + j * d + p->off_w;
            nt_gemm(TR, NT, no, ni, n, p->adjtan + j * no, k * no, h, ni, 1.0, HWj, ni);
            /* W_bar._j += z_bar^T h._j */
            if (q->has_tan) nt_gemm(TR, NT, no, ni, n, p->adj, no, q->tan + j * ni, k * ni, 1.0, HWj, ni);
            /* b_bar._j += z_bar._j^T 1 */
            if (p->off_b >= 0) add_col_sums(n, no, p->adjtan + j * no, k * no, e->HV + j * d + p->off_b);
        }
        break;
    }
}

/* ---- activation:  a = sigma(z), elementwise ----------------------------------------
 * The loops over a row are products of disjoint rows (restrict: the compiler vectorizes). */

/* out = a * b */
static void mul_rows(int64_t w, const double *restrict a, const double *restrict b, double *restrict out)
{
    for (int64_t i = 0; i < w; i++) out[i] = a[i] * b[i];
}

/* out = a * b * c + d * e */
static void mul_add_rows(int64_t w, const double *restrict a, const double *restrict b, const double *restrict c,
                         const double *restrict d, const double *restrict e, double *restrict out)
{
    for (int64_t i = 0; i < w; i++) out[i] = a[i] * b[i] * c[i] + d[i] * e[i];
}

void nt_op_act(nt_engine *e, nt_node *p, int action)
{
    const nt_node *q = &e->nodes[p->in];
    const int64_t n = e->n, k = e->kk, w = p->width;
    const int linear = nt_act_piecewise_linear(p->layer->act);   /* sigma'' = 0 */
    switch (action) {
    case NT_FWD:   /* a = sigma(z); keep sigma'(z), and sigma''(z) unless it is zero */
        nt_act_eval_n(p->layer->act, p->layer->alpha, n * w, q->val, p->val, p->d1, linear ? NULL : p->d2);
        break;
    case NT_TAN:   /* a. = sigma'(z) z. */
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < k; j++)
                mul_rows(w, p->d1 + r * w, q->tan + (r * k + j) * w, p->tan + (r * k + j) * w);
        break;
    case NT_ADJ:   /* z_bar = sigma'(z) a_bar */
        mul_rows(n * w, p->d1, p->adj, q->adj);
        break;
    case NT_ADJTAN: /* z_bar. = sigma''(z) z. a_bar + sigma'(z) a_bar. */
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < k; j++) {
                const double *s1 = p->d1 + r * w, *abt = p->adjtan + (r * k + j) * w;
                double *zbt = q->adjtan + (r * k + j) * w;
                if (linear) mul_rows(w, s1, abt, zbt);
                else mul_add_rows(w, p->d2 + r * w, q->tan + (r * k + j) * w, p->adj + r * w, s1, abt, zbt);
            }
        break;
    }
}

/* ---- layer normalization, per sample over its w features ----------------------------
 *   x = (z - mean z) s,  s = 1/sqrt(var z + eps),  y = gamma x + beta  (or y = x)
 * With the centred, scaled tangent c. = s (z. - mean z.):
 *   tangent          x. = c. - x mean(x c.),  y. = gamma x. + gamma. x + beta.
 *   adjoint          a = gamma y_bar,  z_bar = s (a - mean a - x mean(a x)),
 *                    gamma_bar += y_bar x,  beta_bar += y_bar
 *   adjoint-tangent  with r = a - mean a - x m, m = mean(a x), s. = -s mean(x c.):
 *                    a. = gamma. y_bar + gamma y_bar.,  m. = mean(a. x + a x.),
 *                    z_bar. = s. r + s (a. - mean a. - x. m - x m.),
 *                    gamma_bar. += y_bar. x + y_bar x.,  beta_bar. += y_bar. */

static double mean(int64_t w, const double *v)
{
    double s = 0;
    for (int64_t i = 0; i < w; i++) s += v[i];
    return s / (double)w;
}

static double mean_prod(int64_t w, const double *u, const double *v)
{
    double s = 0;
    for (int64_t i = 0; i < w; i++) s += u[i] * v[i];
    return s / (double)w;
}

/* row j of the tangent buffer holding tangent j of row r (T rows per sample) */
#define TROW(r, j) ((((r) / T) * k + (j)) * T + (r) % T)

/* x. and c. of the tangent in row rt of the tangent buffer (zero when the input carries no tangent) */
static void norm_tangent(const nt_node *q, const double *x, double s, int64_t rt, int64_t w, double *xt, double *ct)
{
    if (!q->has_tan) {
        memset(xt, 0, sizeof(double) * (size_t)w);
        memset(ct, 0, sizeof(double) * (size_t)w);
        return;
    }
    const double *zt = q->tan + rt * w;
    const double mz = mean(w, zt);
    for (int64_t i = 0; i < w; i++) ct[i] = s * (zt[i] - mz);
    const double mxc = mean_prod(w, x, ct);
    for (int64_t i = 0; i < w; i++) xt[i] = ct[i] - x[i] * mxc;
}

void nt_op_norm(nt_engine *e, nt_node *p, int action)
{
    const nt_node *q = &e->nodes[p->in];
    /* rows: the samples, or on a sequence each token of each sample (T of width w) */
    const int64_t T = p->tokens, n = e->n * T, k = e->kk, w = p->width / T, d = e->d;
    const int affine = p->off_w >= 0;
    const double *gam = affine ? e->theta + p->off_w : NULL, *beta = affine ? e->theta + p->off_b : NULL;
    double *xt = p->work, *ct = xt + w, *a = ct + w, *at = a + w;   /* one token's rows (tape.c) */
    for (int64_t r = 0; r < n; r++) {
        const double *x = p->d1 + r * w, *yb = p->adj + r * w;
        double *s = p->d2 + r * w;
        switch (action) {
        case NT_FWD: {
            const double *z = q->val + r * w;
            const double mz = mean(w, z);
            double var = 0;
            for (int64_t i = 0; i < w; i++) var += (z[i] - mz) * (z[i] - mz);
            s[0] = 1.0 / sqrt(var / (double)w + p->layer->eps);
            for (int64_t i = 0; i < w; i++) {
                p->d1[r * w + i] = (z[i] - mz) * s[0];
                p->val[r * w + i] = affine ? gam[i] * p->d1[r * w + i] + beta[i] : p->d1[r * w + i];
            }
            break;
        }
        case NT_TAN:
            for (int64_t j = 0; j < k; j++) {
                double *yt = p->tan + TROW(r, j) * w;
                norm_tangent(q, x, s[0], TROW(r, j), w, xt, ct);
                for (int64_t i = 0; i < w; i++)
                    yt[i] = affine ? gam[i] * xt[i] + e->V[j * d + p->off_w + i] * x[i] + e->V[j * d + p->off_b + i]
                                   : xt[i];
            }
            break;
        case NT_ADJ: {
            for (int64_t i = 0; i < w; i++) a[i] = affine ? gam[i] * yb[i] : yb[i];
            if (q->need_adj) {
                const double ma = mean(w, a), m = mean_prod(w, a, x);
                for (int64_t i = 0; i < w; i++) q->adj[r * w + i] = s[0] * (a[i] - ma - x[i] * m);
            }
            if (affine && e->g)
                for (int64_t i = 0; i < w; i++) {
                    e->g[p->off_w + i] += yb[i] * x[i];
                    e->g[p->off_b + i] += yb[i];
                }
            break;
        }
        case NT_ADJTAN: {
            for (int64_t i = 0; i < w; i++) a[i] = affine ? gam[i] * yb[i] : yb[i];
            const double ma = mean(w, a), m = mean_prod(w, a, x);
            for (int64_t j = 0; j < k; j++) {
                const double *ybt = p->adjtan + TROW(r, j) * w;
                norm_tangent(q, x, s[0], TROW(r, j), w, xt, ct);
                for (int64_t i = 0; i < w; i++)
                    at[i] = affine ? e->V[j * d + p->off_w + i] * yb[i] + gam[i] * ybt[i] : ybt[i];
                if (q->need_adj) {
                    const double st = -s[0] * mean_prod(w, x, ct), mat = mean(w, at);
                    const double mt = mean_prod(w, at, x) + mean_prod(w, a, xt);
                    double *zbt = q->adjtan + TROW(r, j) * w;
                    for (int64_t i = 0; i < w; i++)
                        zbt[i] = st * (a[i] - ma - x[i] * m) + s[0] * (at[i] - mat - xt[i] * m - x[i] * mt);
                }
                if (affine)
                    for (int64_t i = 0; i < w; i++) {
                        e->HV[j * d + p->off_w + i] += ybt[i] * x[i] + yb[i] * xt[i];
                        e->HV[j * d + p->off_b + i] += ybt[i];
                    }
            }
            break;
        }
        }
    }
}

#undef TROW


/* ---- residual blocks: branch (v = h, the block's input kept for the skip connection) and
 * add (v = g + h, g the block's last value, h the branch's).  The tape stays a chain of
 * assignments: add assigns g's adjoint, and the branch adds the add's adjoint (the skip's
 * share) to its own when it assigns its input's:
 *   branch   v = h,  v. = h.,  h_bar = v_bar + a_bar,  h_bar. = v_bar. + a_bar.
 *   add      a = g + v_branch,  a. = g. + v_branch.,  g_bar = a_bar,  g_bar. = a_bar. */
void nt_op_residual(nt_engine *e, nt_node *p, int action)
{
    nt_node *q = &e->nodes[p->in], *o = &e->nodes[p->in2];
    const int64_t nw = e->n * p->width, nkw = nw * e->kk;
    const int add = p->op == NT_OP_ADD;
    switch (action) {
    case NT_FWD:
        for (int64_t i = 0; i < nw; i++) p->val[i] = q->val[i] + (add ? o->val[i] : 0);
        break;
    case NT_TAN:
        for (int64_t i = 0; i < nkw; i++)
            p->tan[i] = (q->has_tan ? q->tan[i] : 0) + (add && o->has_tan ? o->tan[i] : 0);
        break;
    case NT_ADJ:
        if (q->need_adj)
            for (int64_t i = 0; i < nw; i++) q->adj[i] = p->adj[i] + (add ? 0 : o->adj[i]);
        break;
    case NT_ADJTAN:
        if (q->need_adj)
            for (int64_t i = 0; i < nkw; i++) q->adjtan[i] = p->adjtan[i] + (add ? 0 : o->adjtan[i]);
        break;
    }
}

/* ---- loss head:  L = sum_n l(rho f_n, y_n), seeded with L_bar = 1, L_bar. = 0 ------------
 * rho is the engine's output map (identity unless set): f_bar = rho^T u(rho f),
 * f_bar. = rho^T U(rho f) rho f. */

/* y = rho x (K x K, row-major), or a copy when there is no map */
static void map_rho(const double *rho, int K, const double *x, double *y)
{
    for (int i = 0; i < K; i++) {
        double s = 0;
        if (!rho) { y[i] = x[i]; continue; }
        for (int j = 0; j < K; j++) s += rho[i * K + j] * x[j];
        y[i] = s;
    }
}

/* y = rho^T x */
static void map_rho_t(const double *rho, int K, const double *x, double *y)
{
    for (int j = 0; j < K; j++) {
        double s = 0;
        if (!rho) { y[j] = x[j]; continue; }
        for (int i = 0; i < K; i++) s += rho[i * K + j] * x[i];
        y[j] = s;
    }
}

void nt_op_loss(nt_engine *e, nt_node *p, int action)
{
    nt_node *q = &e->nodes[p->in];
    const int64_t n = e->n, k = e->kk;
    const int K = p->width, yd = (e->m->loss == NT_LOSS_MSE) ? K : 1;   /* see nt_dataset */
    const double *rho = e->rho;
    double *f = p->work, *u = f + K, *ft = u + K, *Uw = ft + K;   /* one sample's rows (tape.c) */
    switch (action) {
    case NT_FWD:   /* sum of l(rho f); the seed f_bar = rho^T u kept for the adjoint */
        for (int64_t r = 0; r < n; r++) {
            map_rho(rho, K, q->val + r * K, f);
            e->loss_sum += nt_loss_eval(e->m->loss, K, f, e->y + r * yd, u);
            map_rho_t(rho, K, u, p->d1 + r * K);
        }
        break;
    case NT_ADJ:   /* f_bar = rho^T u */
        memcpy(q->adj, p->d1, sizeof(double) * (size_t)(n * K));
        break;
    case NT_ADJTAN: /* f_bar. = rho^T U rho f. */
        for (int64_t r = 0; r < n; r++) {
            map_rho(rho, K, q->val + r * K, f);
            for (int64_t j = 0; j < k; j++) {
                map_rho(rho, K, q->tan + (r * k + j) * K, ft);
                nt_loss_hess_apply(e->m->loss, K, f, e->y + r * yd, ft, Uw);
                map_rho_t(rho, K, Uw, q->adjtan + (r * k + j) * K);
            }
        }
        break;
    default:
        break;
    }
}
