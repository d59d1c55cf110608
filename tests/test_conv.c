/* test_conv.c: 2-D convolution (stride, zero padding), average and max pooling, flatten, on
 * image inputs: gradient and Hessian-vector products against finite differences, alone and
 * composed with normalizations and a residual block; the same network against PyTorch's
 * nn.Conv2d / MaxPool2d / AvgPool2d (skipped with the reason where torch is missing); the
 * convolution's four rules over groups of samples (one GEMM per group) against a direct
 * sum over kernel taps, sample by sample, for several group sizes and 1 or 3 tangents. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"
#include "../src/engine/tape.h"

static nt_layer conv(int c, int k, int s, int p) { return (nt_layer){ .kind = NT_LAYER_CONV, .units = c, .kernel = k, .stride = s, .padding = p, .bias = 1 }; }
static nt_layer pool(int max, int k, int s) { return (nt_layer){ .kind = NT_LAYER_POOL, .pool_max = max, .kernel = k, .stride = s }; }
static nt_layer dense(int units) { return (nt_layer){ .kind = NT_LAYER_DENSE, .units = units, .bias = 1 }; }
static nt_layer act(nt_act a) { return (nt_layer){ .kind = NT_LAYER_ACT, .act = a, .alpha = 0.01 }; }
static const nt_layer FLAT = { .kind = NT_LAYER_FLATTEN };

Test(conv, alone_padded)
{
    nt_layer L[] = { conv(3, 3, 1, 1), act(NT_ACT_TANH), FLAT, dense(3) };
    fd_check_image((const int[3]){2, 5, 4}, L, 4, NT_LOSS_CROSS_ENTROPY, 0.0, 71, 0.5, "conv");
}

Test(conv, strided_without_bias)
{
    nt_layer c = conv(4, 2, 2, 0);
    c.bias = 0;
    nt_layer L[] = { c, act(NT_ACT_SOFTPLUS), FLAT, dense(2) };
    fd_check_image((const int[3]){1, 6, 6}, L, 4, NT_LOSS_MSE, 0.01, 72, 0.5, "conv");
}

Test(conv, average_pool)
{
    nt_layer L[] = { conv(3, 3, 1, 1), act(NT_ACT_GELU), pool(0, 2, 2), FLAT, dense(3) };
    fd_check_image((const int[3]){2, 6, 6}, L, 5, NT_LOSS_CROSS_ENTROPY, 0.0, 73, 0.5, "avg pool");
}

/* max pooling is piecewise linear: differences are exact away from ties, which random
 * inputs avoid */
Test(conv, max_pool)
{
    nt_layer L[] = { conv(3, 3, 1, 0), act(NT_ACT_TANH), pool(1, 2, 1), FLAT, dense(3) };
    fd_check_image((const int[3]){1, 6, 5}, L, 5, NT_LOSS_CROSS_ENTROPY, 0.003, 74, 0.5, "max pool");
}

Test(conv, composed_with_norms_and_residual)
{
    nt_layer L[] = { conv(3, 3, 1, 1), { .kind = NT_LAYER_BATCHNORM, .affine = 1, .eps = 1e-5 }, act(NT_ACT_RELU),
                     { .kind = NT_LAYER_BRANCH }, conv(3, 3, 1, 1), act(NT_ACT_TANH), { .kind = NT_LAYER_ADD },
                     pool(1, 2, 2), conv(2, 2, 1, 0), FLAT, { .kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5 },
                     dense(3) };
    fd_check_image((const int[3]){2, 6, 6}, L, 12, NT_LOSS_CROSS_ENTROPY, 0.001, 75, 0.5, "conv net");
}

Test(conv, shapes_are_checked)
{
    nt_model m;
    nt_error err = {0};
    nt_layer a[] = { conv(3, 7, 1, 0), FLAT, dense(2) };   /* kernel larger than the image */
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){1, 5, 5}, a, 3, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "model.layers[0].conv"), "%s", err.msg);
    nt_layer b[] = { conv(3, 3, 1, 0), dense(2) };   /* dense on an image */
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){1, 5, 5}, b, 2, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "flatten it first"), "%s", err.msg);
    nt_layer c[] = { dense(4), conv(2, 1, 1, 0), dense(2) };   /* conv on a flat vector */
    cr_assert_eq(nt_model_init(&m, 5, c, 3, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "needs an image"), "%s", err.msg);
    nt_layer d[] = { conv(3, 3, 2, 1), FLAT, dense(2) };   /* (5 + 2 - 3)/2 + 1 = 3: 3 x 3 x 3 */
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){2, 5, 5}, d, 3, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(m.layers[0].shape_out[1], 3);
    cr_assert_eq(m.d, 3 * 2 * 9 + 3 + 2 * 27 + 2);
    cr_assert_str_eq(m.tensors[0].name, "0.weight");
    cr_assert_eq(m.tensors[0].ndim, 4);
    nt_model_free(&m);
}

/* ---- the batched convolution against a direct reference.  For one sample, with x its
 * input (C_in x H x W) and z an output (C_out x H' x W'), the three sums every rule is made
 * of, written as plain loops over the taps (ki, kj) that read pixel (oh s + ki - pad,
 * ow s + kj - pad):  conv: z += W * x;  conv_t: x += W^T * z;  corr: G += z (x) x (the
 * weight-shaped correlation).  flip reads the kernel upside down (the negative control). */
typedef enum { REF_CONV, REF_CONV_T, REF_CORR } ref_kind;

static void ref_taps(const nt_layer *L, ref_kind kind, int flip, const double *Wt, double *G, double *x, double *z)
{
    const int Ci = L->shape_in[0], H = L->shape_in[1], Wd = L->shape_in[2], Co = L->units, k = L->kernel;
    const int Ho = L->shape_out[1], Wo = L->shape_out[2];
    for (int co = 0; co < Co; co++)
        for (int ci = 0; ci < Ci; ci++)
            for (int ki = 0; ki < k; ki++)
                for (int kj = 0; kj < k; kj++) {
                    const int t = ((co * Ci + ci) * k + (flip ? k - 1 - ki : ki)) * k + (flip ? k - 1 - kj : kj);
                    for (int oh = 0; oh < Ho; oh++)
                        for (int ow = 0; ow < Wo; ow++) {
                            const int ih = oh * L->stride + ki - L->padding, iw = ow * L->stride + kj - L->padding;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= Wd) continue;
                            double *xp = &x[(ci * H + ih) * Wd + iw], *zp = &z[(co * Ho + oh) * Wo + ow];
                            if (kind == REF_CONV) *zp += Wt[t] * *xp;
                            else if (kind == REF_CONV_T) *xp += Wt[t] * *zp;
                            else G[t] += *zp * *xp;
                        }
                }
}

/* what the four rules of conv node p write, for n samples and kk tangents: values,
 * tangents, the input's adjoint and its tangent, the gradient and its kk tangents */
typedef struct { double *val, *tan, *adj, *adjtan, *g, *HV; } conv_out;

static conv_out conv_out_new(int64_t n, int kk, int64_t wi, int64_t wo, int64_t d)
{
    return (conv_out){ calloc(n * wo, 8), calloc(n * kk * wo, 8), calloc(n * wi, 8), calloc(n * kk * wi, 8),
                       calloc(d, 8), calloc(kk * d, 8) };
}

static void conv_out_free(conv_out *o)
{
    free(o->val); free(o->tan); free(o->adj); free(o->adjtan); free(o->g); free(o->HV);
}

/* the rules by direct sums, sample by sample, from the inputs the engine's op reads */
static void conv_reference(const nt_engine *e, const nt_node *p, int flip, conv_out *o)
{
    const nt_node *q = &e->nodes[p->in];
    const nt_layer *L = p->layer;
    const int64_t n = e->n, kk = e->kk, d = e->d, wi = q->width, wo = p->width, Co = L->units, P = wo / Co;
    const double *W = e->theta + p->off_w;
    for (int64_t r = 0; r < n; r++) {
        double *h = q->val + r * wi, *zb = p->adj + r * wo;
        for (int64_t i = 0; i < wo; i++) o->val[r * wo + i] = p->off_b >= 0 ? e->theta[p->off_b + i / P] : 0;
        ref_taps(L, REF_CONV, flip, W, NULL, h, o->val + r * wo);                       /* z = W h + b */
        ref_taps(L, REF_CORR, flip, NULL, o->g + p->off_w, h, zb);                      /* W_bar += z_bar (x) h */
        for (int64_t i = 0; i < wo && p->off_b >= 0; i++) o->g[p->off_b + i / P] += zb[i];
        if (q->need_adj) ref_taps(L, REF_CONV_T, flip, W, NULL, o->adj + r * wi, zb);   /* h_bar = W^T z_bar */
        for (int64_t j = 0; j < kk; j++) {
            const double *Wj = e->V + j * d + p->off_w;
            double *zt = o->tan + (r * kk + j) * wo, *zbt = p->adjtan + (r * e->kk + j) * wo, *HW = o->HV + j * d;
            double *ht = q->has_tan ? q->tan + (r * kk + j) * wi : NULL;
            for (int64_t i = 0; i < wo; i++) zt[i] = p->off_b >= 0 ? e->V[j * d + p->off_b + i / P] : 0;
            ref_taps(L, REF_CONV, flip, Wj, NULL, h, zt);                               /* z. = W. h + W h. + b. */
            if (ht) ref_taps(L, REF_CONV, flip, W, NULL, ht, zt);
            ref_taps(L, REF_CORR, flip, NULL, HW + p->off_w, h, zbt);                   /* W_bar. += z_bar. (x) h + z_bar (x) h. */
            if (ht) ref_taps(L, REF_CORR, flip, NULL, HW + p->off_w, ht, zb);
            for (int64_t i = 0; i < wo && p->off_b >= 0; i++) HW[p->off_b + i / P] += zbt[i];
            if (q->need_adj) {                                                          /* h_bar. = W^T z_bar. + W.^T z_bar */
                ref_taps(L, REF_CONV_T, flip, W, NULL, o->adjtan + (r * kk + j) * wi, zbt);
                ref_taps(L, REF_CONV_T, flip, Wj, NULL, o->adjtan + (r * kk + j) * wi, zb);
            }
        }
    }
}

/* the engine's op, in groups of `group` samples */
static void conv_engine(nt_engine *e, nt_node *p, int64_t group, conv_out *o)
{
    nt_node *q = &e->nodes[p->in];
    const int64_t n = e->n, kk = e->kk, wi = q->width, wo = p->width;
    p->group = group;
    e->g = o->g;
    e->HV = o->HV;
    nt_op_conv(e, p, NT_FWD);
    nt_op_conv(e, p, NT_TAN);
    nt_op_conv(e, p, NT_ADJ);
    nt_op_conv(e, p, NT_ADJTAN);
    memcpy(o->val, p->val, sizeof(double) * n * wo);
    memcpy(o->tan, p->tan, sizeof(double) * n * kk * wo);
    if (q->need_adj) {
        memcpy(o->adj, q->adj, sizeof(double) * n * wi);
        memcpy(o->adjtan, q->adjtan, sizeof(double) * n * kk * wi);
    }
}

/* max |a - b| / max |b| over the six outputs together */
static double conv_out_diff(const conv_out *a, const conv_out *b, int64_t n, int kk, int64_t wi, int64_t wo, int64_t d)
{
    const double *A[6] = { a->val, a->tan, a->adj, a->adjtan, a->g, a->HV }, *B[6] = { b->val, b->tan, b->adj, b->adjtan, b->g, b->HV };
    const int64_t len[6] = { n * wo, n * kk * wo, n * wi, n * kk * wi, d, kk * d };
    double num = 0, den = 0;
    for (int t = 0; t < 6; t++)
        for (int64_t i = 0; i < len[t]; i++) {
            num = fmax(num, fabs(A[t][i] - B[t][i]));
            den = fmax(den, fabs(B[t][i]));
        }
    return num / den;
}

/* Two convolutions (no bias, stride 1, no padding; then bias, stride 2, padding 1, on a
 * non-square image), 7 samples in groups of 1, 2, 3, 5 and 7 (the remainders 1, 1 and 2 in a
 * last, smaller group), 1 and 3 tangents: every output within 1e-13 of the direct sums; the
 * reference with its kernel read upside down differs by far more (negative control). */
Test(conv, groups_match_direct_sums)
{
    nt_layer c1 = conv(3, 2, 1, 0), c2 = conv(4, 3, 2, 1);
    c1.bias = 0;
    nt_layer L[] = { c1, act(NT_ACT_TANH), c2, FLAT, dense(2) };
    nt_model m;
    nt_error err = {0};
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){2, 6, 5}, L, 5, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_OK, "%s", err.msg);
    const int64_t n = 7, d = m.d;
    const int kmax = 3;
    nt_engine *e = nt_engine_new(&m, n, kmax);
    cr_assert_not_null(e);
    double *theta = malloc(sizeof(double) * d), *V = malloc(sizeof(double) * kmax * d);
    double *x = malloc(sizeof(double) * n * m.input);
    fill_normal(theta, d, 0.5, 81);
    fill_normal(V, kmax * d, 1.0, 82);
    fill_normal(x, n * m.input, 1.0, 83);
    e->theta = theta;
    e->V = V;
    e->n = n;
    e->nodes[0].val = x;
    int checked = 0;
    for (int i = 1; i < e->n_nodes; i++) {
        nt_node *p = &e->nodes[i], *q = &e->nodes[p->in];
        if (p->op != NT_OP_CONV) continue;
        cr_assert_geq(p->group, n, "the tiny model's scratch holds the chunk in one group");
        const int64_t wi = q->width, wo = p->width;
        for (int kk = 1; kk <= kmax; kk += kmax - 1) {
            e->kk = kk;
            /* the op's inputs: the input's value (and tangents), the output's adjoint and its tangents */
            if (i > 1) fill_normal(q->val, n * wi, 1.0, 84 + i);
            if (q->has_tan) fill_normal(q->tan, n * kk * wi, 1.0, 85 + i);
            fill_normal(p->adj, n * wo, 1.0, 86 + i);
            fill_normal(p->adjtan, n * kk * wo, 1.0, 87 + i);
            conv_out ref = conv_out_new(n, kk, wi, wo, d), flipped = conv_out_new(n, kk, wi, wo, d);
            conv_reference(e, p, 0, &ref);
            conv_reference(e, p, 1, &flipped);
            const int64_t groups[] = { 1, 2, 3, 5, 7 };
            for (int gi = 0; gi < 5; gi++) {
                conv_out got = conv_out_new(n, kk, wi, wo, d);
                conv_engine(e, p, groups[gi], &got);
                const double diff = conv_out_diff(&got, &ref, n, kk, wi, wo, d);
                const double control = conv_out_diff(&got, &flipped, n, kk, wi, wo, d);
                cr_log_info("conv node %d, k = %d, groups of %lld: %.1e from the direct sums, %.1e from the flipped kernel's",
                            i, kk, (long long)groups[gi], diff, control);
                cr_expect_leq(diff, 1e-13, "node %d, k = %d, groups of %lld: %.2e", i, kk, (long long)groups[gi], diff);
                cr_expect_geq(control, 1e-2, "negative control: node %d, k = %d: %.2e", i, kk, control);
                conv_out_free(&got);
                checked++;
            }
            conv_out_free(&ref);
            conv_out_free(&flipped);
        }
    }
    cr_assert_eq(checked, 2 * 2 * 5);
    nt_engine_free(e);
    nt_model_free(&m);
    free(theta); free(V); free(x);
}
