/* ops_bnorm.c: batch normalization in training mode (nn.BatchNorm1d / 2d), its four rules
 * with the statistics over the whole batch (synchronized across shards, docs/theory.md §8). */
#include <math.h>
#include <stdlib.h>
#include "tape.h"

/* ---- batch normalization in training mode, per channel over the batch ------------------
 * A channel is one feature of a flat vector (nn.BatchNorm1d) or one of the C channels of an
 * image (nn.BatchNorm2d: the H W positions of channel c of every sample); its statistics are
 * over the n P values it holds in the batch (P = 1, or H W), biased variance.  The rules of
 * the layer normalization with the mean <.> taken over those values instead of over a
 * sample's features: the loss of a batch is a function of the whole batch, which the engine
 * therefore holds in one chunk.  Per channel c, over its values:
 *   x = (z - <z>) s,  s = 1/sqrt(var z + eps),  y = gamma_c x + beta_c
 *   tangent          c. = s (z. - <z.>),  x. = c. - x <x c.>,  y. = gamma_c x. + gamma._c x + beta._c
 *   adjoint          a = gamma_c y_bar,  z_bar = s (a - <a> - x <a x>),
 *                    gamma_bar_c += sum y_bar x,  beta_bar_c += sum y_bar
 *   adjoint-tangent  s. = -s <x c.>,  m = <a x>,  m. = <a. x + a x.>,
 *                    z_bar. = s. (a - <a> - x m) + s (a. - <a.> - x. m - x m.),
 *                    gamma_bar._c += sum (y_bar. x + y_bar x.),  beta_bar._c += sum y_bar.
 * The tangent's means come from one pass: <x c.> = s (<x z.> - <z.> <x>), <x> being 0 up to
 * round-off (and taken as computed); the adjoint-tangent never stores x.: its sums need
 * sum y_bar x. = s (sum y_bar z. - <z.> sum y_bar) - <x c.> sum y_bar x, and its last pass
 * forms x. where it uses it. */

/* Channel c's values are one run of P per row: at x + c P + r ld for rows r < n (ld = w for
 * values and adjoints, k w for tangent j's, from j w).  The sums below keep their
 * accumulators in registers (a sum into memory that may alias the data cannot). */
#define BN_RUNS(r, i) for (int64_t r = 0; r < n; r++) for (int64_t i = 0; i < P; i++)

/* sum of (a - ma)(b - mb) over the runs a, b (b NULL: of a - ma); four partial sums, so
 * that the additions do not wait on each other */
static double bn_dot(int64_t n, int64_t P, const double *a, int64_t lda, double ma, const double *b, int64_t ldb,
                     double mb)
{
    double acc[4] = {0, 0, 0, 0};
    for (int64_t r = 0; r < n; r++) {
        const double *ar = a + r * lda, *br = b ? b + r * ldb : NULL;
        int64_t i = 0;
        if (br)
            for (; i + 4 <= P; i += 4)
                for (int u = 0; u < 4; u++) acc[u] += (ar[i + u] - ma) * (br[i + u] - mb);
        else
            for (; i + 4 <= P; i += 4)
                for (int u = 0; u < 4; u++) acc[u] += ar[i + u] - ma;
        for (; i < P; i++) acc[i & 3] += (ar[i] - ma) * (br ? br[i] - mb : 1.0);
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* sum of the run x */
static double bn_sum(int64_t n, int64_t P, const double *x, int64_t ld)
{
    return bn_dot(n, P, x, ld, 0.0, NULL, 0, 0.0);
}

/* in one pass over the runs: out = (sum a, sum a b, sum c d); c NULL: the first two only */
static void bn_sums(int64_t n, int64_t P, const double *a, int64_t lda, const double *b, int64_t ldb,
                    const double *c, int64_t ldc, const double *dd, int64_t ldd, double out[3])
{
    double s0[2] = {0, 0}, s1[2] = {0, 0}, s2[2] = {0, 0};
    for (int64_t r = 0; r < n; r++) {
        const double *ar = a + r * lda, *br = b + r * ldb;
        if (c) {
            const double *cr = c + r * ldc, *dr = dd + r * ldd;
            for (int64_t i = 0; i < P; i++) {
                s0[i & 1] += ar[i];
                s1[i & 1] += ar[i] * br[i];
                s2[i & 1] += cr[i] * dr[i];
            }
        } else {
            for (int64_t i = 0; i < P; i++) {
                s0[i & 1] += ar[i];
                s1[i & 1] += ar[i] * br[i];
            }
        }
    }
    out[0] = s0[0] + s0[1];
    out[1] = s1[0] + s1[1];
    out[2] = s2[0] + s2[1];
}

/* Synchronized batch normalization (docs/theory.md §8): on a sharded engine (a reduction
 * hook) each mean over the batch is a sum over every shard's values divided by their total
 * count, so the channels' sums of a phase go through the hook together (len doubles) and
 * the count of values with them.  Without a hook nothing is exchanged: the sums and count
 * are this chunk's, the arithmetic that of one process.  Returns the count. */
static double bn_sync(nt_engine *e, double *sums, int64_t len, int64_t count)
{
    if (!e->reduce) return (double)count;
    int rc = e->sync_rc ? NT_OK : e->reduce(e->reduce_ctx, sums, len, &count, &e->sync_err);
    if (rc != NT_OK) e->sync_rc = rc;   /* reported by the engine's call (engine.c) */
    return (double)(count > 0 ? count : 1);
}

/* The tangent's means of every tangent j and channel c in one pass over z.: mz = <z.>,
 * mxc = <x c.> (k x C each); sx (C) receives sum x.  With yb (the adjoint-tangent), also
 * this chunk's sums (sum y_bar._j, sum y_bar._j x, sum y_bar z._j) into loc (3 per j, c). */
static void bn_tangent_means(nt_engine *e, const nt_node *p, const nt_node *q, int64_t C, int64_t P, double *mxc,
                             double *mz, double *sx, const double *yb, double *loc)
{
    const int64_t n = e->n, k = e->kk, w = p->width;
    for (int64_t c = 0; c < C; c++) sx[c] = bn_sum(n, P, p->d1 + c * P, w);
    for (int64_t j = 0; j < k; j++)
        for (int64_t c = 0; c < C; c++) {
            const double *x = p->d1 + c * P, *zt = q->has_tan ? q->tan + j * w + c * P : NULL;
            const double *ybt = yb ? p->adjtan + j * w + c * P : NULL, *ybc = yb ? yb + c * P : NULL;
            double s0 = 0, s1 = 0, l0 = 0, l1 = 0, l2 = 0;
            for (int64_t r = 0; r < n; r++) {
                const double *xr = x + r * w;
                if (zt) {
                    const double *tr = zt + r * k * w;
                    if (ybt) {
                        const double *br = ybt + r * k * w, *ar = ybc + r * w;
                        for (int64_t i = 0; i < P; i++) {
                            s0 += tr[i]; s1 += xr[i] * tr[i];
                            l0 += br[i]; l1 += br[i] * xr[i]; l2 += ar[i] * tr[i];
                        }
                    } else {
                        double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
                        int64_t i = 0;
                        for (; i + 4 <= P; i += 4)
                            for (int u = 0; u < 4; u++) { a[u] += tr[i + u]; b[u] += xr[i + u] * tr[i + u]; }
                        for (; i < P; i++) { a[0] += tr[i]; b[0] += xr[i] * tr[i]; }
                        s0 += (a[0] + a[1]) + (a[2] + a[3]);
                        s1 += (b[0] + b[1]) + (b[2] + b[3]);
                    }
                } else if (ybt) {
                    const double *br = ybt + r * k * w;
                    for (int64_t i = 0; i < P; i++) { l0 += br[i]; l1 += br[i] * xr[i]; }
                }
            }
            mz[j * C + c] = s0;
            mxc[j * C + c] = s1;
            if (loc) { loc[3 * (j * C + c)] = l0; loc[3 * (j * C + c) + 1] = l1; loc[3 * (j * C + c) + 2] = l2; }
        }
    const double inv = 1.0 / bn_sync(e, mxc, 2 * k * C + C, n * P);   /* mxc, mz and sx are contiguous */
    for (int64_t j = 0; j < k; j++)
        for (int64_t c = 0; c < C; c++) {
            mz[j * C + c] *= inv;
            mxc[j * C + c] = p->d2[c] * (mxc[j * C + c] * inv - mz[j * C + c] * sx[c] * inv);
        }
}

/* <a> and <a x> of every channel over the batch, a = gamma_c y_bar, into ma, m (C each);
 * this chunk's sum y_bar and sum y_bar x (gamma's and beta's gradient) into raw (2 C) */
static void bn_adjoint_means(nt_engine *e, const nt_node *p, int64_t C, int64_t P, double *ma, double *m, double *raw)
{
    const int64_t n = e->n, w = p->width;
    const int affine = p->off_w >= 0;
    for (int64_t c = 0; c < C; c++) {
        const double gc = affine ? e->theta[p->off_w + c] : 1.0;
        double t[3];
        bn_sums(n, P, p->adj + c * P, w, p->d1 + c * P, w, NULL, 0, NULL, 0, t);
        raw[c] = t[0];
        raw[C + c] = t[1];
        ma[c] = gc * t[0];
        m[c] = gc * t[1];
    }
    const double count = bn_sync(e, ma, 2 * C, n * P);   /* ma and m are contiguous */
    for (int64_t c = 0; c < C; c++) {
        ma[c] /= count;
        m[c] /= count;
    }
}

void nt_op_bnorm(nt_engine *e, nt_node *p, int action)
{
    const nt_node *q = &e->nodes[p->in];
    const int64_t n = e->n, k = e->kk, w = p->width, d = e->d;
    const int64_t C = nt_layer_norm_params(p->layer), P = w / C;   /* channels, positions per channel */
    const int affine = p->off_w >= 0;
    double *s = p->d2;                      /* first row of d2: s per channel */
    const int64_t need = (5 + 7 * (int64_t)e->k) * C;   /* the sums of the phases below, grown once */
    if (need > e->bn_cap) {
        double *b = realloc(e->bn_sums, sizeof(double) * (size_t)need);
        if (!b) {
            if (!e->sync_rc) e->sync_rc = nt_fail(&e->sync_err, NT_EFAIL, "engine: batch norm: out of memory for %lld sums",
                                                  (long long)need);
            return;
        }
        e->bn_sums = b;
        e->bn_cap = need;
    }
    /* each phase's synchronized sums contiguous: [ma m] (2 C), [mxc mz sx] (2 k C + C),
     * [mat mt] (2 k C); then this chunk's own: raw (2 C), loc (3 k C) */
    double *ma = e->bn_sums, *m = ma + C, *mxc = m + C, *mz = mxc + k * C, *sx = mz + k * C;
    double *mat = sx + C, *mt = mat + k * C, *raw = mt + k * C, *loc = raw + 2 * C;
    switch (action) {
    case NT_FWD: {
        double *var = m;
        for (int64_t c = 0; c < C; c++) mz[c] = bn_sum(n, P, q->val + c * P, w);
        double inv = 1.0 / bn_sync(e, mz, C, n * P);
        for (int64_t c = 0; c < C; c++) {
            mz[c] *= inv;
            var[c] = bn_dot(n, P, q->val + c * P, w, mz[c], q->val + c * P, w, mz[c]);
        }
        inv = 1.0 / bn_sync(e, var, C, n * P);
        for (int64_t c = 0; c < C; c++) {
            const double gc = affine ? e->theta[p->off_w + c] : 1.0, bc = affine ? e->theta[p->off_b + c] : 0.0;
            const double sc = s[c] = 1.0 / sqrt(var[c] * inv + p->layer->eps), mc = mz[c];
            const double *v = q->val + c * P;
            double *x = p->d1 + c * P, *y = p->val + c * P;
            BN_RUNS(r, i) {
                const double xi = (v[r * w + i] - mc) * sc;
                x[r * w + i] = xi;
                y[r * w + i] = gc * xi + bc;
            }
        }
        break;
    }
    case NT_TAN:   /* y. = gamma_c x. + gamma._c x + beta._c, x. = s (z. - <z.>) - x <x c.> */
        bn_tangent_means(e, p, q, C, P, mxc, mz, sx, NULL, NULL);
        for (int64_t j = 0; j < k; j++)
            for (int64_t c = 0; c < C; c++) {
                const double sc = s[c], mzc = mz[j * C + c], mx = mxc[j * C + c];
                const double ga = affine ? e->theta[p->off_w + c] : 1.0, gt = affine ? e->V[j * d + p->off_w + c] : 0.0;
                const double bt = affine ? e->V[j * d + p->off_b + c] : 0.0;
                const double *x = p->d1 + c * P, *zt = q->has_tan ? q->tan + j * w + c * P : NULL;
                double *yt = p->tan + j * w + c * P;
                if (zt) BN_RUNS(r, i) yt[r * k * w + i] = ga * (sc * (zt[r * k * w + i] - mzc) - x[r * w + i] * mx) + gt * x[r * w + i] + bt;
                else BN_RUNS(r, i) yt[r * k * w + i] = gt * x[r * w + i] + bt;
            }
        break;
    case NT_ADJ:
        bn_adjoint_means(e, p, C, P, ma, m, raw);
        for (int64_t c = 0; c < C; c++) {
            const double gc = affine ? e->theta[p->off_w + c] : 1.0, sc = s[c], ma_ = ma[c], m_ = m[c];
            const double *yb = p->adj + c * P, *x = p->d1 + c * P;
            double *zb = q->adj + c * P;
            if (q->need_adj) BN_RUNS(r, i) zb[r * w + i] = sc * (gc * yb[r * w + i] - ma_ - x[r * w + i] * m_);
            if (affine && e->g) {
                e->g[p->off_w + c] += raw[C + c];   /* sum y_bar x */
                e->g[p->off_b + c] += raw[c];       /* sum y_bar */
            }
        }
        break;
    case NT_ADJTAN:
        bn_adjoint_means(e, p, C, P, ma, m, raw);
        bn_tangent_means(e, p, q, C, P, mxc, mz, sx, p->adj, loc);
        for (int64_t j = 0; j < k; j++)
            for (int64_t c = 0; c < C; c++) {
                const double gc = affine ? e->theta[p->off_w + c] : 1.0, gt = affine ? e->V[j * d + p->off_w + c] : 0;
                const double *l = loc + 3 * (j * C + c);
                /* a. = gamma._c y_bar + gamma_c y_bar.:  sum a. = gamma. sum y_bar + gamma sum y_bar.,
                 * sum a. x + a x. = gamma. sum y_bar x + gamma (sum y_bar. x + sum y_bar x.); the last
                 * two sums and sum y_bar. are also gamma_bar._c's and beta_bar._c's terms */
                const double ybxt = s[c] * (l[2] - mz[j * C + c] * raw[c]) - mxc[j * C + c] * raw[C + c];
                mat[j * C + c] = gt * raw[c] + gc * l[0];
                mt[j * C + c] = gt * raw[C + c] + gc * (l[1] + ybxt);
                if (affine) {
                    e->HV[j * d + p->off_w + c] += l[1] + ybxt;
                    e->HV[j * d + p->off_b + c] += l[0];
                }
            }
        const double inv = 1.0 / bn_sync(e, mat, 2 * k * C, n * P);   /* mat and mt are contiguous */
        for (int64_t j = 0; j < k && q->need_adj; j++)
            for (int64_t c = 0; c < C; c++) {
                const double gc = affine ? e->theta[p->off_w + c] : 1.0, gt = affine ? e->V[j * d + p->off_w + c] : 0;
                const double sc = s[c], st = -sc * mxc[j * C + c], ma_ = ma[c], m_ = m[c], mzc = mz[j * C + c];
                const double mx = mxc[j * C + c], mat_ = mat[j * C + c] * inv, mt_ = mt[j * C + c] * inv;
                const double *x = p->d1 + c * P, *yb = p->adj + c * P, *ybt = p->adjtan + j * w + c * P;
                const double *zt = q->has_tan ? q->tan + j * w + c * P : NULL;
                double *zbt = q->adjtan + j * w + c * P;
                BN_RUNS(r, i) {
                    const double xi = x[r * w + i], a = gc * yb[r * w + i], at = gt * yb[r * w + i] + gc * ybt[r * k * w + i];
                    const double xt = (zt ? sc * (zt[r * k * w + i] - mzc) : 0.0) - xi * mx;
                    zbt[r * k * w + i] = st * (a - ma_ - xi * m_) + sc * (at - mat_ - xt * m_ - xi * mt_);
                }
            }
        break;
    }
}
#undef BN_RUNS
