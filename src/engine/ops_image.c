/* ops_image.c: the ops on images (C x H x W per sample, C-order): 2-D convolution by
 * im2col and GEMM, and average and max pooling; each with the four rules of ops.c. */
#include <string.h>
#include "tape.h"

/* ---- 2-D convolution (nn.Conv2d: weight (C_out, C_in, k, k), stride, zero padding), by
 * im2col and GEMM over a group of g samples at once: col(h) is K x (g P), K = C_in k k, P =
 * H' W' output positions, column r P + i the patch that output position i of sample r reads,
 * and with z, z_bar gathered into C_out x (g P) (column block r is sample r's C_out x P):
 *   forward          z = W col(h) + b 1^T
 *   tangent          z. = W col(h.) + W. col(h) + b. 1^T
 *   adjoint          W_bar += z_bar col(h)^T,  b_bar += z_bar 1,  h_bar = col2im(W^T z_bar)
 *   adjoint-tangent  W_bar. += z_bar. col(h)^T + z_bar col(h.)^T,  b_bar. += z_bar. 1,
 *                    h_bar. = col2im(W^T z_bar. + W.^T z_bar)
 * col2im adds each column entry back to the pixel it was read from (the transpose of im2col);
 * the sums over samples are those of the per-sample products, in another order (round-off).
 * The k tangents' W. col(h) is one GEMM ([W._1; ...; W._k] col(h)), and so is
 * [W_bar._1; ...; W_bar._k] = z_bar.^T-stacked times col(h)^T, as the dense op packs them. */

/* the outputs o in [*lo, *hi) whose input o s + kt - pad lies inside [0, len) (len = H or W,
 * o < n = H' or W') */
static void inside_range(int len, int n, int s, int kt, int pad, int *lo, int *hi)
{
    const int first = pad - kt, last = len - 1 + pad - kt;
    *lo = first <= 0 ? 0 : (first + s - 1) / s;
    *hi = last < 0 ? 0 : last / s + 1;
    if (*hi > n) *hi = n;
    if (*hi < *lo) *hi = *lo;
}

/* col (K x g P, ld g P) = im2col of the g images x + r ldx (dir 0), or (dir 1) the images
 * x + r ldx = col2im(col) (assigned).  For each tap (ki, kj) the output rows and columns
 * that read inside the image are ranges [oh0, oh1) x [lo, hi): the padding's zeros are
 * blocks, the inside a strided copy, no test per entry. */
static void im2col(const nt_layer *L, int64_t g, double *x, int64_t ldx, double *col, int dir)
{
    const int C = L->shape_in[0], H = L->shape_in[1], W = L->shape_in[2], k = L->kernel;
    const int Ho = L->shape_out[1], Wo = L->shape_out[2], s = L->stride, pad = L->padding;
    const int64_t P = (int64_t)Ho * Wo, G = g * P;
    for (int64_t r = 0; r < g; r++) {   /* one image at a time: it stays in cache while its K rows are written */
        double *img = x + r * ldx;
        if (dir) memset(img, 0, sizeof(double) * (size_t)C * H * W);
        for (int c = 0; c < C; c++)
            for (int ki = 0; ki < k; ki++) {
                int oh0, oh1;
                inside_range(H, Ho, s, ki, pad, &oh0, &oh1);
                for (int kj = 0; kj < k; kj++) {
                    int lo, hi;
                    inside_range(W, Wo, s, kj, pad, &lo, &hi);
                    double *out = col + ((int64_t)(c * k + ki) * k + kj) * G + r * P;
                    if (!dir) {   /* the padding rows above and below */
                        memset(out, 0, sizeof(double) * (size_t)oh0 * Wo);
                        memset(out + (int64_t)oh1 * Wo, 0, sizeof(double) * (size_t)(Ho - oh1) * Wo);
                    }
                    if (hi <= lo) {
                        if (!dir) memset(out + (int64_t)oh0 * Wo, 0, sizeof(double) * (size_t)(oh1 - oh0) * Wo);
                        continue;
                    }
                    for (int oh = oh0; oh < oh1; oh++) {
                        double *o = out + (int64_t)oh * Wo;
                        /* in[(ow - lo) s]: the input column ow s + kj - pad of row oh s + ki - pad */
                        double *in = img + ((int64_t)c * H + oh * s + ki - pad) * W + lo * s + kj - pad;
                        if (dir) {
                            for (int ow = lo; ow < hi; ow++) in[(ow - lo) * s] += o[ow];
                            continue;
                        }
                        for (int ow = 0; ow < lo; ow++) o[ow] = 0;
                        for (int ow = lo; ow < hi; ow++) o[ow] = in[(ow - lo) * s];
                        for (int ow = hi; ow < Wo; ow++) o[ow] = 0;
                    }
                }
            }
    }
}

/* Z (rows x g P) <-> the g samples' rows x P blocks at y + r ldy: gather (dir 0) Z from y,
 * or scatter (dir 1) y = Z + b 1^T (b per row, NULL: none) */
static void regroup(int64_t g, int64_t rows, int64_t P, double *y, int64_t ldy, double *Z, const double *b, int dir)
{
    const int64_t G = g * P;
    for (int64_t r = 0; r < g; r++)
        for (int64_t c = 0; c < rows; c++) {
            double *yr = y + r * ldy + c * P, *zr = Z + c * G + r * P;
            if (!dir) memcpy(zr, yr, sizeof(double) * (size_t)P);
            else if (!b) memcpy(yr, zr, sizeof(double) * (size_t)P);
            else for (int64_t i = 0; i < P; i++) yr[i] = zr[i] + b[c];
        }
}

/* out[c] += sum of row c of Z (rows x G): b_bar += z_bar 1 */
static void add_row_sums(int64_t rows, int64_t G, const double *Z, double *out)
{
    for (int64_t c = 0; c < rows; c++) {
        double acc = 0;
        for (int64_t i = 0; i < G; i++) acc += Z[c * G + i];
        out[c] += acc;
    }
}

/* the four rules on samples [r0, r0 + g) */
static void conv_group(nt_engine *e, nt_node *p, const nt_node *q, int action, int64_t r0, int64_t g)
{
    const nt_layer *L = p->layer;
    const int64_t k = e->kk, d = e->d, wi = q->width, wo = p->width;
    const int64_t Co = L->units, K = (int64_t)L->shape_in[0] * L->kernel * L->kernel, P = wo / Co, G = g * P;
    const int64_t cap = p->group * P;   /* columns each scratch matrix holds (op_table.c) */
    const double *Wt = e->theta + p->off_w;
    double *col = p->work, *colt = col + K * cap, *tmp = colt + K * cap, *zb = tmp + K * cap, *zbt = zb + Co * cap;
    double *h = q->val + r0 * wi;
    switch (action) {
    case NT_FWD:
        im2col(L, g, h, wi, col, 0);
        nt_gemm(NT, NT, Co, G, K, Wt, K, col, G, 0.0, zb, G);
        regroup(g, Co, P, p->val + r0 * wo, wo, zb, p->off_b >= 0 ? e->theta + p->off_b : NULL, 1);
        break;
    case NT_TAN:
        im2col(L, g, h, wi, col, 0);
        for (int64_t j = 0; j < k; j++)
            memcpy(e->pack + j * Co * K, e->V + j * d + p->off_w, sizeof(double) * (size_t)(Co * K));
        nt_gemm(NT, NT, k * Co, G, K, e->pack, K, col, G, 0.0, zbt, G);   /* [W._1; ...; W._k] col(h) */
        for (int64_t j = 0; j < k; j++) {
            double *zj = zbt + j * Co * G;
            if (q->has_tan) {
                im2col(L, g, q->tan + (r0 * k + j) * wi, k * wi, colt, 0);
                nt_gemm(NT, NT, Co, G, K, Wt, K, colt, G, 1.0, zj, G);
            }
            regroup(g, Co, P, p->tan + (r0 * k + j) * wo, k * wo, zj, p->off_b >= 0 ? e->V + j * d + p->off_b : NULL, 1);
        }
        break;
    case NT_ADJ:
        regroup(g, Co, P, p->adj + r0 * wo, wo, zb, NULL, 0);
        if (e->g) {
            im2col(L, g, h, wi, col, 0);
            nt_gemm(NT, TR, Co, K, G, zb, G, col, G, 1.0, e->g + p->off_w, K);
            if (p->off_b >= 0) add_row_sums(Co, G, zb, e->g + p->off_b);
        }
        if (q->need_adj) {
            nt_gemm(TR, NT, K, G, Co, Wt, K, zb, G, 0.0, tmp, G);
            im2col(L, g, q->adj + r0 * wi, wi, tmp, 1);
        }
        break;
    case NT_ADJTAN:
        regroup(g, Co, P, p->adj + r0 * wo, wo, zb, NULL, 0);
        for (int64_t j = 0; j < k; j++)
            regroup(g, Co, P, p->adjtan + (r0 * k + j) * wo, k * wo, zbt + j * Co * G, NULL, 0);
        im2col(L, g, h, wi, col, 0);
        nt_gemm(NT, TR, k * Co, K, G, zbt, G, col, G, 0.0, e->pack, K);   /* [W_bar._j] from z_bar. col(h)^T */
        for (int64_t j = 0; j < k; j++) {
            const double *zj = zbt + j * Co * G, *Pj = e->pack + j * Co * K, *Wj = e->V + j * d + p->off_w;
            double *HW = e->HV + j * d + p->off_w;
            for (int64_t i = 0; i < Co * K; i++) HW[i] += Pj[i];
            if (p->off_b >= 0) add_row_sums(Co, G, zj, e->HV + j * d + p->off_b);
            if (q->has_tan) {
                im2col(L, g, q->tan + (r0 * k + j) * wi, k * wi, colt, 0);
                nt_gemm(NT, TR, Co, K, G, zb, G, colt, G, 1.0, HW, K);
            }
            if (q->need_adj) {
                nt_gemm(TR, NT, K, G, Co, Wt, K, zj, G, 0.0, tmp, G);
                nt_gemm(TR, NT, K, G, Co, Wj, K, zb, G, 1.0, tmp, G);
                im2col(L, g, q->adjtan + (r0 * k + j) * wi, k * wi, tmp, 1);
            }
        }
        break;
    }
}

void nt_op_conv(nt_engine *e, nt_node *p, int action)
{
    const nt_node *q = &e->nodes[p->in];
    for (int64_t r0 = 0; r0 < e->n; r0 += p->group)
        conv_group(e, p, q, action, r0, e->n - r0 < p->group ? e->n - r0 : p->group);
}

/* ---- pooling over k x k windows with stride s, per channel (no padding):
 *   average  y = mean of the window: linear, the same map on tangents, its transpose on
 *            adjoints (each window entry gets y_bar / k^2);
 *   max      y = h[m], m the window's first largest entry (kept in d1): y. = h.[m],
 *            h_bar[m] += y_bar, h_bar.[m] += y_bar. (piecewise linear: no curvature term). */
void nt_op_pool(nt_engine *e, nt_node *p, int action)
{
    const nt_node *q = &e->nodes[p->in];
    const nt_layer *L = p->layer;
    const int64_t n = e->n, k = e->kk, wi = q->width, wo = p->width;
    const int C = L->shape_in[0], H = L->shape_in[1], W = L->shape_in[2], kk = L->kernel, s = L->stride;
    const int Ho = L->shape_out[1], Wo = L->shape_out[2];
    const double inv = 1.0 / (double)(kk * kk);
    const int64_t copies = action == NT_FWD || action == NT_ADJ ? 1 : k;
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < copies; j++) {
            /* the input and output rows this pass reads and writes */
            const double *x = action == NT_FWD ? q->val + r * wi : action == NT_TAN ? q->tan + (r * k + j) * wi : NULL;
            double *y = action == NT_FWD ? p->val + r * wo : action == NT_TAN ? p->tan + (r * k + j) * wo : NULL;
            const double *yb = action == NT_ADJ ? p->adj + r * wo : action == NT_ADJTAN ? p->adjtan + (r * k + j) * wo : NULL;
            double *xb = action == NT_ADJ ? q->adj + r * wi : action == NT_ADJTAN ? q->adjtan + (r * k + j) * wi : NULL;
            if (xb) {
                if (!q->need_adj) continue;
                memset(xb, 0, sizeof(double) * (size_t)wi);
            }
            for (int c = 0; c < C; c++)
                for (int oh = 0; oh < Ho; oh++)
                    for (int ow = 0; ow < Wo; ow++) {
                        const int64_t o = ((int64_t)c * Ho + oh) * Wo + ow;
                        double *arg = p->d1 + r * wo + o;
                        if (L->pool_max && action != NT_FWD) {   /* the kept maximum */
                            const int64_t m = (int64_t)*arg;
                            if (y) y[o] = x[m];
                            else xb[m] += yb[o];
                            continue;
                        }
                        double acc = 0, best = 0;
                        int64_t bi = -1;
                        for (int a = 0; a < kk; a++)
                            for (int b = 0; b < kk; b++) {
                                const int64_t idx = ((int64_t)c * H + oh * s + a) * W + ow * s + b;
                                if (y) {
                                    acc += x[idx];
                                    if (bi < 0 || x[idx] > best) { best = x[idx]; bi = idx; }
                                } else {
                                    xb[idx] += yb[o] * inv;
                                }
                            }
                        if (!y) continue;
                        if (L->pool_max) { y[o] = best; *arg = (double)bi; }
                        else y[o] = acc * inv;
                    }
        }
}
