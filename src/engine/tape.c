/* tape.c: builds the tape of a model (each layer's nodes from its registry entry,
 * tape_layers.c) and sizes its workspace once for (chunk, k) from the op table's sizes; a
 * model with batch normalization grows it to hold any data set whole (nt_engine_fit). */
#include <stdlib.h>
#include <string.h>
#include "tape.h"
#include "../model/registry.h"

nt_engine *nt_engine_new(const nt_model *m, int64_t chunk, int k)
{
    if (chunk < 1) chunk = 1;
    if (k < 1) k = 1;
    nt_engine *e = calloc(1, sizeof *e);
    e->m = m;
    e->chunk = chunk;
    e->k = k;
    e->d = m->d;
    e->nodes = calloc(2 + (size_t)NT_LAYER_MAX_NODES * m->n_layers, sizeof *e->nodes);

    /* node 0: the data input; then each layer's nodes, as its registry entry builds them;
     * last: the loss head */
    nt_tape_build b = { .m = m, .nodes = e->nodes };
    e->nodes[0] = (nt_node){ .op = NT_OP_INPUT, .in = -1, .width = m->input };
    for (b.layer = 0; b.layer < m->n_layers; b.layer++)
        nt_layer_registry(m->layers[b.layer].kind)->tape(&b, &m->layers[b.layer]);
    e->n_nodes = b.cur + 2;
    nt_node *loss = &e->nodes[e->n_nodes - 1];
    *loss = (nt_node){ .op = NT_OP_LOSS, .in = e->n_nodes - 2, .width = m->output,
                       .has_tan = 0, .need_adj = 1 };

    e->coupled = nt_model_batch_coupled(m);
    nt_engine_set_threads(e, nt_threads_default());
    if (nt_engine_fit(e, chunk) != NT_OK) { free(e->nodes); free(e); return NULL; }
    return e;
}

/* scratch doubles of p's op, not kept by freezing */
static int64_t op_work(const nt_node *p)
{
    return nt_ops[p->op].work ? nt_ops[p->op].work(p) : 0;
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
        p->aux = nt_ops[p->op].aux ? nt_ops[p->op].aux(p) : 0;
        total += p->op == NT_OP_LOSS ? nw + op_work(p) : 2 * nw + 2 * k * nw + 2 * chunk * p->aux + op_work(p);
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
        if (p->op == NT_OP_LOSS) { p->d1 = at; at += nw; p->work = at; at += op_work(p); continue; }
        p->val = at; at += nw;
        p->adj = at; at += nw;
        p->tan = at; at += k * nw;
        p->adjtan = at; at += k * nw;
        if (p->aux) { p->d1 = at; at += chunk * p->aux; p->d2 = at; at += chunk * p->aux; }
        if (op_work(p)) { p->work = at; at += op_work(p); }
    }
    return NT_OK;
}

void nt_engine_free(nt_engine *e)
{
    if (!e) return;
    nt_engine_thaw(e);
    nt_lanes_free(e);
    free(e->mem);
    free(e->bn_sums);
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
