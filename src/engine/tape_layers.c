/* tape_layers.c: the nodes each layer kind becomes on the tape, named by its registry entry
 * (model/registry.h).  Every parameter offset is read from the model's tensors (the layout
 * model.c derives), never worked out again here. */
#include "tape.h"
#include "../model/registry.h"

/* the node after the last one built, reading it */
static nt_node *next_node(nt_tape_build *b, const nt_layer *L)
{
    nt_node *q = &b->nodes[b->cur], *p = &b->nodes[++b->cur];
    *p = (nt_node){ .in = b->cur - 1, .layer = L, .tokens = L->tokens ? L->tokens : 1, .width = q->width,
                    .has_tan = q->has_tan, .need_adj = q->need_adj, .off_w = -1, .off_b = -1 };
    return p;
}

/* a node with parameters: W (and b) at the offsets of tensors w and b (b NULL: no bias) */
static nt_node *param_node(nt_tape_build *b, const nt_layer *L, int op, int width, const nt_tensor *w, const nt_tensor *bias)
{
    nt_node *p = next_node(b, L);
    p->op = op;
    p->width = width;
    p->has_tan = p->need_adj = 1;
    p->off_w = w->offset;
    p->off_b = bias ? bias->offset : -1;
    return p;
}

/* z = h W^T + b per token: weight, then bias when the layer has one */
void nt_tape_dense(nt_tape_build *b, const nt_layer *L)
{
    int n;
    const nt_tensor *t = nt_layer_tensors(b->m, b->layer, &n);
    param_node(b, L, NT_OP_DENSE, (L->tokens ? L->tokens : 1) * L->units, &t[0], n > 1 ? &t[1] : NULL);
}

/* an activation, and a flatten: the same values in the same order */
void nt_tape_elementwise(nt_tape_build *b, const nt_layer *L)
{
    next_node(b, L)->op = NT_OP_ACT;
}

void nt_tape_norm(nt_tape_build *b, const nt_layer *L)
{
    int n;
    const nt_tensor *t = nt_layer_tensors(b->m, b->layer, &n);
    nt_node *p = next_node(b, L);
    p->op = L->kind == NT_LAYER_LAYERNORM ? NT_OP_NORM : NT_OP_BNORM;
    if (n == 2) {   /* affine: weight and bias (per channel for BatchNorm2d) */
        p->off_w = t[0].offset;
        p->off_b = t[1].offset;
        p->has_tan = p->need_adj = 1;
    }
}

/* BRANCH keeps its value for the ADD that closes the block, which adds it (the skip) */
void nt_tape_residual(nt_tape_build *b, const nt_layer *L)
{
    nt_node *p = next_node(b, L);
    if (L->kind == NT_LAYER_BRANCH) {
        p->op = NT_OP_BRANCH;
        b->open[b->depth++] = b->cur;
        return;
    }
    nt_node *br = &b->nodes[b->open[--b->depth]];
    p->op = NT_OP_ADD;
    p->in2 = b->open[b->depth];
    br->in2 = b->cur;
    p->has_tan |= br->has_tan;
    p->need_adj |= br->need_adj;
}

void nt_tape_conv(nt_tape_build *b, const nt_layer *L)
{
    int n;
    const nt_tensor *t = nt_layer_tensors(b->m, b->layer, &n);
    param_node(b, L, NT_OP_CONV, L->shape_out[0] * L->shape_out[1] * L->shape_out[2], &t[0], n > 1 ? &t[1] : NULL);
}

/* a pooling of an image, or the mean over tokens */
void nt_tape_pool(nt_tape_build *b, const nt_layer *L)
{
    nt_node *p = next_node(b, L);
    p->op = L->kind == NT_LAYER_POOL ? NT_OP_POOL : NT_OP_MEAN_TOKENS;
    p->width = L->kind == NT_LAYER_POOL ? L->shape_out[0] * L->shape_out[1] * L->shape_out[2] : L->shape_out[0];
}

/* three nodes: [Q | K | V] = X [W_Q; W_K; W_V]^T + b per token, the heads, W_O per token */
void nt_tape_attention(nt_tape_build *b, const nt_layer *L)
{
    int n;
    const nt_tensor *t = nt_layer_tensors(b->m, b->layer, &n);
    const int D = L->shape_in[0], T = L->tokens ? L->tokens : 1;
    param_node(b, L, NT_OP_DENSE, T * 3 * D, &t[0], L->bias ? &t[1] : NULL);
    nt_node *core = next_node(b, L);
    core->op = NT_OP_ATTN;
    core->width = T * D;
    core->has_tan = core->need_adj = 1;
    param_node(b, L, NT_OP_DENSE, T * D, &t[L->bias ? 2 : 1], L->bias ? &t[3] : NULL);
}
