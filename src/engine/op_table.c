/* op_table.c: the engine's op table, in the manner of KANN's: per op its rules and the sizes
 * of what it keeps per sample (d1, d2: derivatives the adjoint and the adjoint's tangent
 * reuse) and of its scratch (work, not kept by freezing).  A new op is a row here and its
 * rules function (docs/adding-a-layer.md). */
#include "tape.h"

/* the elementwise ops keep one value per output: sigma' and sigma'' (act), x_hat and
 * 1/sqrt(var + eps) (norms), the argmax (max pool), u = dl/df (the loss, d1 only) */
static int64_t per_output(const nt_node *p)
{
    return p->width;
}

/* the attention weights P of each head, H x T x T */
static int64_t attn_aux(const nt_node *p)
{
    return (int64_t)p->layer->heads * p->tokens * p->tokens;
}

/* four rows of one token (layer norm) */
static int64_t norm_work(nt_node *p, int64_t chunk, int k)
{
    return 4 * (int64_t)(p->width / p->tokens);
}

/* four output rows (the loss head) */
static int64_t loss_work(nt_node *p, int64_t chunk, int k)
{
    return 4 * (int64_t)p->width;
}

/* conv (ops_image.c): per sample of a group, its columns of the im2col matrices of the
 * values, of one tangent and of an adjoint (3 K x P, K = C_in k k) and of the gathered
 * adjoint and k adjoint tangents ((1 + k) C_out x P).  The group: as many samples as
 * CONV_BUDGET doubles hold, and no more than keep its GEMM C_out x K x (g P) within
 * CONV_GEMM_MAX multiply-adds, at least one, at most the chunk: each GEMM spans many
 * samples and the scratch stays bounded whatever the chunk and k.  OpenBLAS (0.3.21) runs a
 * GEMM of up to 2^18 multiply-adds on one thread and splits larger ones over its threads;
 * on these shared 2-core machines the split conv GEMMs were slower and erratic (bench_layers'
 * CNN gradient at 2 threads, best of 15 in three rounds: 20.8 to 52 ms uncapped, 18.2 to
 * 19.0 ms capped; at one thread the two equal). */
#define CONV_BUDGET ((int64_t)1 << 18)
#define CONV_GEMM_MAX ((int64_t)1 << 18)
static int64_t conv_work(nt_node *p, int64_t chunk, int k)
{
    const nt_layer *L = p->layer;
    const int64_t K = (int64_t)L->shape_in[0] * L->kernel * L->kernel, P = (int64_t)L->shape_out[1] * L->shape_out[2];
    const int64_t per_sample = (3 * K + (1 + (int64_t)k) * L->units) * P;
    int64_t g = CONV_BUDGET / per_sample;
    if (g > CONV_GEMM_MAX / (L->units * K * P)) g = CONV_GEMM_MAX / (L->units * K * P);
    if (g > chunk) g = chunk;
    if (g < 1) g = 1;
    p->group = g;
    return g * per_sample;
}

/* five T x T matrices */
static int64_t attn_work(nt_node *p, int64_t chunk, int k)
{
    return 5 * (int64_t)p->tokens * p->tokens;
}

const nt_op_info nt_ops[NT_OP_COUNT] = {
    [NT_OP_INPUT] = { "input", NULL, NULL, NULL },
    [NT_OP_DENSE] = { "dense", nt_op_dense, NULL, NULL },
    [NT_OP_ACT] = { "act", nt_op_act, per_output, NULL },
    [NT_OP_NORM] = { "layernorm", nt_op_norm, per_output, norm_work },
    [NT_OP_BNORM] = { "batchnorm", nt_op_bnorm, per_output, NULL },
    [NT_OP_BRANCH] = { "branch", nt_op_residual, NULL, NULL },
    [NT_OP_ADD] = { "add", nt_op_residual, NULL, NULL },
    [NT_OP_CONV] = { "conv", nt_op_conv, NULL, conv_work },
    [NT_OP_POOL] = { "pool", nt_op_pool, per_output, NULL },
    [NT_OP_ATTN] = { "attention", nt_op_attn, attn_aux, attn_work },
    [NT_OP_MEAN_TOKENS] = { "mean_tokens", nt_op_mean_tokens, NULL, NULL },
    [NT_OP_LOSS] = { "loss", nt_op_loss, per_output, loss_work },
};

void nt_op_run(nt_engine *e, nt_node *p, int action)
{
    if (nt_ops[p->op].run) nt_ops[p->op].run(e, p, action);
}
