/* ops_image.c: the ops on images (C x H x W per sample, C-order): 2-D convolution by
 * im2col and GEMM, and average and max pooling; each with the four rules of ops.c. */
#include <string.h>
#include "tape.h"

/* ---- 2-D convolution (nn.Conv2d: weight (C_out, C_in, k, k), stride, zero padding), by
 * im2col and GEMM per sample: col(h) is (C_in k k) x P, P = H' W' output positions, and
 *   forward          z = W col(h) + b 1^T                                (C_out x P)
 *   tangent          z. = W col(h.) + W. col(h) + b. 1^T
 *   adjoint          W_bar += z_bar col(h)^T,  b_bar += z_bar 1,  h_bar = col2im(W^T z_bar)
 *   adjoint-tangent  W_bar. += z_bar. col(h)^T + z_bar col(h.)^T,  b_bar. += z_bar. 1,
 *                    h_bar. = col2im(W^T z_bar. + W.^T z_bar)
 * col2im adds each column entry back to the pixel it was read from (the transpose of im2col). */

/* im2col (dir 0: col from x) or its transpose (dir 1: x += col2im(col)) for one sample */
static void im2col(const nt_layer *L, double *x, double *col, int dir)
{
    const int C = L->shape_in[0], H = L->shape_in[1], W = L->shape_in[2], k = L->kernel;
    const int Ho = L->shape_out[1], Wo = L->shape_out[2], s = L->stride, pad = L->padding;
    const int64_t P = (int64_t)Ho * Wo;
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                double *row = col + ((int64_t)(c * k + ki) * k + kj) * P;
                for (int oh = 0; oh < Ho; oh++) {
                    const int ih = oh * s + ki - pad;
                    for (int ow = 0; ow < Wo; ow++) {
                        const int iw = ow * s + kj - pad;
                        const int inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                        double *px = inside ? &x[((int64_t)c * H + ih) * W + iw] : NULL;
                        if (dir == 0) row[oh * Wo + ow] = px ? *px : 0.0;
                        else if (px) *px += row[oh * Wo + ow];
                    }
                }
            }
}

void nt_op_conv(nt_engine *e, nt_node *p, int action)
{
    const nt_node *q = &e->nodes[p->in];
    const nt_layer *L = p->layer;
    const int64_t n = e->n, k = e->kk, d = e->d, wi = q->width, wo = p->width;
    const int64_t Co = L->units, K = (int64_t)L->shape_in[0] * L->kernel * L->kernel, P = wo / Co;
    const double *Wt = e->theta + p->off_w;
    double *col = p->work, *colt = p->work + K * P, *tmp = p->work + 2 * K * P;
    for (int64_t r = 0; r < n; r++) {
        im2col(L, q->val + r * wi, col, 0);
        const double *zb = p->adj + r * wo;
        switch (action) {
        case NT_FWD: {
            double *z = p->val + r * wo;
            for (int64_t c = 0; c < Co; c++)
                for (int64_t i = 0; i < P; i++) z[c * P + i] = p->off_b >= 0 ? e->theta[p->off_b + c] : 0.0;
            nt_gemm(NT, NT, Co, P, K, Wt, K, col, P, 1.0, z, P);
            break;
        }
        case NT_TAN:
            for (int64_t j = 0; j < k; j++) {
                double *zt = p->tan + (r * k + j) * wo;
                for (int64_t c = 0; c < Co; c++)
                    for (int64_t i = 0; i < P; i++) zt[c * P + i] = p->off_b >= 0 ? e->V[j * d + p->off_b + c] : 0.0;
                nt_gemm(NT, NT, Co, P, K, e->V + j * d + p->off_w, K, col, P, 1.0, zt, P);
                if (q->has_tan) {
                    im2col(L, q->tan + (r * k + j) * wi, colt, 0);
                    nt_gemm(NT, NT, Co, P, K, Wt, K, colt, P, 1.0, zt, P);
                }
            }
            break;
        case NT_ADJ:
            if (e->g) {
                nt_gemm(NT, TR, Co, K, P, zb, P, col, P, 1.0, e->g + p->off_w, K);
                if (p->off_b >= 0)
                    for (int64_t c = 0; c < Co; c++)
                        for (int64_t i = 0; i < P; i++) e->g[p->off_b + c] += zb[c * P + i];
            }
            if (q->need_adj) {
                nt_gemm(TR, NT, K, P, Co, Wt, K, zb, P, 0.0, tmp, P);
                memset(q->adj + r * wi, 0, sizeof(double) * (size_t)wi);
                im2col(L, q->adj + r * wi, tmp, 1);
            }
            break;
        case NT_ADJTAN:
            for (int64_t j = 0; j < k; j++) {
                const double *zbt = p->adjtan + (r * k + j) * wo, *Wj = e->V + j * d + p->off_w;
                double *HW = e->HV + j * d + p->off_w;
                nt_gemm(NT, TR, Co, K, P, zbt, P, col, P, 1.0, HW, K);
                if (q->has_tan) {
                    im2col(L, q->tan + (r * k + j) * wi, colt, 0);
                    nt_gemm(NT, TR, Co, K, P, zb, P, colt, P, 1.0, HW, K);
                }
                if (p->off_b >= 0)
                    for (int64_t c = 0; c < Co; c++)
                        for (int64_t i = 0; i < P; i++) e->HV[j * d + p->off_b + c] += zbt[c * P + i];
                if (q->need_adj) {
                    nt_gemm(TR, NT, K, P, Co, Wt, K, zbt, P, 0.0, tmp, P);
                    nt_gemm(TR, NT, K, P, Co, Wj, K, zb, P, 1.0, tmp, P);
                    double *hbt = q->adjtan + (r * k + j) * wi;
                    memset(hbt, 0, sizeof(double) * (size_t)wi);
                    im2col(L, hbt, tmp, 1);
                }
            }
            break;
        }
    }
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
