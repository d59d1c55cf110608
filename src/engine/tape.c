/* tape.c: builds the tape of a model and sizes its workspace once for (chunk, k); a model
 * with batch normalization grows it to hold any data set whole (nt_engine_fit). */
#include <stdlib.h>
#include <string.h>
#include "tape.h"

/* the nodes a layer becomes: an attention three (in-projection, core, out-projection) */
static int nodes_of(const nt_layer *L)
{
    return L->kind == NT_LAYER_ATTENTION ? 3 : 1;
}

/* a dense node (also an attention's projections, per token): W (no x ni) at off_w, b at off_b */
static void dense_node(nt_node *p, const nt_node *q, const nt_layer *L, int in, int no, int64_t *off, int bias)
{
    const int T = L->tokens ? L->tokens : 1;
    *p = (nt_node){ .op = NT_OP_DENSE, .in = in, .layer = L, .tokens = T, .width = T * no, .has_tan = 1, .need_adj = 1 };
    p->off_w = *off;
    *off += (int64_t)no * (q->width / T);
    p->off_b = bias ? *off : -1;
    if (bias) *off += no;
}

nt_engine *nt_engine_new(const nt_model *m, int64_t chunk, int k)
{
    if (chunk < 1) chunk = 1;
    if (k < 1) k = 1;
    nt_engine *e = calloc(1, sizeof *e);
    e->m = m;
    e->chunk = chunk;
    e->k = k;
    e->d = m->d;
    e->n_nodes = 2;
    for (int i = 0; i < m->n_layers; i++) e->n_nodes += nodes_of(&m->layers[i]);
    e->nodes = calloc((size_t)e->n_nodes, sizeof *e->nodes);

    /* node 0: the data input; then the layers' nodes in order; last: the loss head */
    nt_node *nodes = e->nodes;
    nodes[0] = (nt_node){ .op = NT_OP_INPUT, .in = -1, .width = m->input };
    int64_t off = 0;
    int open[NT_MAX_RESIDUAL_DEPTH + 1], depth = 0, cur = 0;   /* open: the branch nodes of the residual blocks open here */
    for (int i = 0; i < m->n_layers; i++) {
        const nt_layer *L = &m->layers[i];
        nt_node *q = &nodes[cur], *p = &nodes[++cur];
        p->in = cur - 1;
        p->layer = L;
        p->tokens = L->tokens ? L->tokens : 1;
        if (L->kind == NT_LAYER_BRANCH || L->kind == NT_LAYER_ADD) {
            p->width = q->width;
            if (L->kind == NT_LAYER_BRANCH) {
                p->op = NT_OP_BRANCH;
                open[depth++] = cur;
                p->has_tan = q->has_tan;
                p->need_adj = q->need_adj;
            } else {
                nt_node *b = &nodes[open[--depth]];
                p->op = NT_OP_ADD;
                p->in2 = open[depth];
                b->in2 = cur;
                p->has_tan = q->has_tan || b->has_tan;
                p->need_adj = q->need_adj || b->need_adj;
            }
            continue;
        }
        if (L->kind == NT_LAYER_ATTENTION) {   /* [Q | K | V] per token, the heads, W_O */
            const int D = L->shape_in[0];
            dense_node(p, q, L, cur - 1, 3 * D, &off, L->bias);
            cur++;
            nodes[cur] = (nt_node){ .op = NT_OP_ATTN, .in = cur - 1, .layer = L, .tokens = p->tokens,
                                    .width = p->tokens * D, .has_tan = 1, .need_adj = 1 };
            cur++;
            dense_node(&nodes[cur], &nodes[cur - 1], L, cur - 1, D, &off, L->bias);
            continue;
        }
        if (L->kind == NT_LAYER_CONV) {
            p->op = NT_OP_CONV;
            p->width = L->shape_out[0] * L->shape_out[1] * L->shape_out[2];
            p->has_tan = p->need_adj = 1;
            p->off_w = off;
            off += (int64_t)L->units * L->shape_in[0] * L->kernel * L->kernel;
            p->off_b = L->bias ? off : -1;
            if (L->bias) off += L->units;
            continue;
        }
        if (L->kind == NT_LAYER_POOL || L->kind == NT_LAYER_MEAN_TOKENS) {
            p->op = L->kind == NT_LAYER_POOL ? NT_OP_POOL : NT_OP_MEAN_TOKENS;
            p->width = L->kind == NT_LAYER_POOL ? L->shape_out[0] * L->shape_out[1] * L->shape_out[2] : L->shape_out[0];
            p->has_tan = q->has_tan;
            p->need_adj = q->need_adj;
            continue;
        }
        if (L->kind == NT_LAYER_DENSE) {
            dense_node(p, q, L, cur - 1, L->units, &off, L->bias);
        } else if (L->kind == NT_LAYER_LAYERNORM || L->kind == NT_LAYER_BATCHNORM) {
            p->op = L->kind == NT_LAYER_LAYERNORM ? NT_OP_NORM : NT_OP_BNORM;
            p->width = q->width;
            p->off_w = p->off_b = -1;
            if (L->affine) {   /* per channel for BatchNorm2d */
                p->off_w = off;
                p->off_b = off + nt_layer_norm_params(L);
                off += 2 * (int64_t)nt_layer_norm_params(L);
            }
            p->has_tan = q->has_tan || L->affine;
            p->need_adj = q->need_adj || L->affine;
        } else {   /* activations, and a flatten: the same values in the same order */
            p->op = NT_OP_ACT;
            p->width = q->width;
            p->has_tan = q->has_tan;
            p->need_adj = q->need_adj;
        }
    }
    nt_node *loss = &nodes[e->n_nodes - 1];
    *loss = (nt_node){ .op = NT_OP_LOSS, .in = e->n_nodes - 2, .width = m->output,
                       .has_tan = 0, .need_adj = 1 };

    e->coupled = nt_model_batch_coupled(m);
    if (nt_engine_fit(e, chunk) != NT_OK) { free(e->nodes); free(e); return NULL; }
    return e;
}

/* per-sample doubles of d1 and d2 (kept derivatives); 0: none */
static int64_t aux_size(const nt_node *p)
{
    if (p->op == NT_OP_ACT || p->op == NT_OP_NORM || p->op == NT_OP_BNORM || p->op == NT_OP_POOL || p->op == NT_OP_LOSS)
        return p->width;   /* the loss: u in d1 only */
    if (p->op == NT_OP_ATTN) return (int64_t)p->layer->heads * p->tokens * p->tokens;   /* the weights P per head */
    return 0;
}

/* scratch doubles of an op, not kept by freezing: the im2col matrices of one sample (conv:
 * three (C_in k k) x (H' W')), five T x T matrices (attention), four rows of one token
 * (layer norm), four output rows (the loss head) */
static int64_t work_size(const nt_node *p, int64_t k)
{
    const nt_layer *L = p->layer;
    if (p->op == NT_OP_BNORM) return (2 + 3 * k) * (int64_t)nt_layer_norm_params(L);   /* ops.c: the channels' sums */
    if (p->op == NT_OP_NORM) return 4 * (int64_t)(p->width / p->tokens);
    if (p->op == NT_OP_LOSS) return 4 * (int64_t)p->width;
    if (p->op == NT_OP_CONV) return 3 * (int64_t)L->shape_in[0] * L->kernel * L->kernel * L->shape_out[1] * L->shape_out[2];
    if (p->op == NT_OP_ATTN) return 5 * (int64_t)p->tokens * p->tokens;
    return 0;
}

/* One allocation for all buffers of (chunk, k): values, adjoints, their k tangents, the
 * derivatives kept by activations and normalizations. */
int nt_engine_fit(nt_engine *e, int64_t chunk)
{
    if (e->mem && chunk <= e->chunk) return NT_OK;
    nt_engine_thaw(e);
    const nt_model *m = e->m;
    const int64_t k = e->k;
    nt_node *nodes = e->nodes;
    int64_t total = k * m->d, largest = 0;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].ndim >= 2 && m->tensors[t].size > largest) largest = m->tensors[t].size;
    total += k * largest;
    for (int i = 1; i < e->n_nodes; i++) {
        nt_node *p = &nodes[i];
        int64_t nw = chunk * p->width;
        p->aux = aux_size(p);
        total += p->op == NT_OP_LOSS ? nw + work_size(p, k) : 2 * nw + 2 * k * nw + 2 * chunk * p->aux + work_size(p, k);
    }
    double *mem = malloc(sizeof(double) * (size_t)total);
    if (!mem) return NT_EFAIL;
    free(e->mem);
    e->mem = mem;
    e->chunk = chunk;
    double *at = e->mem;
    e->vbuf = at; at += k * m->d;
    e->pack = at; at += k * largest;
    for (int i = 1; i < e->n_nodes; i++) {
        nt_node *p = &nodes[i];
        int64_t nw = chunk * p->width;
        if (p->op == NT_OP_LOSS) { p->d1 = at; at += nw; p->work = at; at += work_size(p, k); continue; }
        p->val = at; at += nw;
        p->adj = at; at += nw;
        p->tan = at; at += k * nw;
        p->adjtan = at; at += k * nw;
        if (p->aux) { p->d1 = at; at += chunk * p->aux; p->d2 = at; at += chunk * p->aux; }
        if (work_size(p, k)) { p->work = at; at += work_size(p, k); }
    }
    return NT_OK;
}

void nt_engine_free(nt_engine *e)
{
    if (!e) return;
    nt_engine_thaw(e);
    free(e->mem);
    free(e->nodes);
    free(e->rho);
    free(e->red);
    free(e);
}

int nt_engine_set_reduce(nt_engine *e, nt_reduce_fn fn, void *ctx, nt_error *err)
{
    double *red = NULL;
    if (fn) {   /* the longest buffer: nt_hvp with g, 1 + d + k d */
        red = malloc(sizeof(double) * (size_t)(1 + (e->k + 1) * e->d));
        if (!red) return nt_fail(err, NT_EFAIL, "out of memory for the reduction buffer (%lld doubles)",
                                 (long long)(1 + (e->k + 1) * e->d));
    }
    free(e->red);
    e->red = red;
    e->reduce = fn;
    e->reduce_ctx = ctx;
    return NT_OK;
}

void nt_engine_set_output_map(nt_engine *e, const double *rho)
{
    const size_t K = (size_t)e->m->output;
    nt_engine_thaw(e);   /* the kept adjoints were of the loss under the old map */
    free(e->rho);
    e->rho = NULL;
    if (!rho) return;
    e->rho = malloc(sizeof(double) * K * K);
    memcpy(e->rho, rho, sizeof(double) * K * K);
}

const double *nt_engine_outputs(const nt_engine *e, int64_t *n)
{
    *n = e->n;
    return e->nodes[e->n_nodes - 2].val;
}

int nt_engine_k(const nt_engine *e)
{
    return e->k;
}
