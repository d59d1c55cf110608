/* freeze.c: Hessian-vector products at a fixed theta, for the iterative eigensolvers.
 * H v needs, per chunk, the forward values, the adjoints and the activation derivatives,
 * none of which depends on v: nt_engine_freeze computes them once for every chunk and
 * keeps them, so that each product afterwards runs only the tangent sweep and the
 * adjoint-tangent sweep (for a dense MLP about 30% less work than nt_hvp).  The products
 * are bitwise those of nt_hvp: the same operations in the same order on the same values.
 * Every op of tape.h is frozen: its tangent and adjoint-tangent rules read nothing of the
 * forward and adjoint sweeps but val, adj, d1 and d2 (the work buffers of a convolution or
 * an attention layer are scratch, filled again by each rule); a new op must be checked
 * before it is allowed here.  It declines only when the kept values would exceed max_bytes
 * or do not fit in memory.
 * The key is theta's value, not its address: a copy of the d doubles is kept and compared
 * (memcmp, ~d work, nothing next to a product), so a buffer changed in place (a NumPy array
 * updated by an optimizer) is a different theta and gets a full product; the products read
 * the copy.  The data set is keyed on its fields (n, dim, ydim and the x, y addresses). */
#include <stdlib.h>
#include <string.h>
#include "tape.h"

enum { N_BUF = 4 };   /* val, adj, d1, d2 */

struct nt_frozen {
    double *theta;     /* a copy of the theta frozen at (d) */
    nt_dataset ds;     /* the fields of the rows frozen on (this lane's) */
    nt_dataset key;    /* and of the caller's data set (lane 0's engine keeps it) */
    double loss_sum;
    int lanes;         /* the lanes frozen (each lane's engine keeps its rows) */
    int64_t n_chunks;
    double *mem;
    double **slot;     /* [chunk][node][buffer]: the kept values (NULL where a node has none) */
    double **work;     /* [node][buffer]: the workspace's own buffers, restored after */
};

static double **buffer(nt_node *p, int b)
{
    switch (b) {
    case 0: return &p->val;
    case 1: return &p->adj;
    case 2: return &p->d1;
    default: return &p->d2;
    }
}

/* points every node's buffers at chunk c's kept values */
static void use_chunk(nt_engine *e, int64_t c)
{
    struct nt_frozen *f = e->frozen;
    for (int i = 1; i < e->n_nodes; i++)
        for (int b = 0; b < N_BUF; b++) {
            double *s = f->slot[(c * e->n_nodes + i) * N_BUF + b];
            if (s) *buffer(&e->nodes[i], b) = s;
        }
}

static void use_workspace(nt_engine *e)
{
    for (int i = 1; i < e->n_nodes; i++)
        for (int b = 0; b < N_BUF; b++) *buffer(&e->nodes[i], b) = e->frozen->work[i * N_BUF + b];
}

/* the rows of chunk c: e->n, the input and the targets */
static void set_rows(nt_engine *e, const nt_dataset *ds, int64_t c)
{
    int64_t s = c * e->chunk;
    e->n = ds->n - s < e->chunk ? ds->n - s : e->chunk;
    e->nodes[0].val = ds->x + s * ds->dim;
    e->y = ds->y ? ds->y + s * ds->ydim : NULL;
}

/* one engine's kept values for its rows (one lane's), allocated: 0 when declined */
static int freeze_alloc(nt_engine *e, const double *theta, const nt_dataset *ds, double max_bytes)
{
    int64_t per_row = 0;
    for (int i = 1; i < e->n_nodes; i++) {
        const nt_node *p = &e->nodes[i];
        if (p->op == NT_OP_INPUT) return 0;   /* every op of tape.h is freezable; a new one must be checked */
        for (int b = 0; b < N_BUF; b++) per_row += *buffer((nt_node *)p, b) ? (b < 2 ? p->width : p->aux) : 0;
    }
    if ((double)per_row * (double)ds->n * sizeof(double) > max_bytes) return 0;
    struct nt_frozen *f = calloc(1, sizeof *f);
    if (!f) return 0;
    f->lanes = 1;
    f->theta = malloc(sizeof(double) * (size_t)e->d);
    f->ds = *ds;
    f->n_chunks = (ds->n + e->chunk - 1) / e->chunk;
    f->mem = malloc(sizeof(double) * (size_t)(per_row * ds->n + 1));
    f->slot = calloc((size_t)(f->n_chunks * e->n_nodes * N_BUF), sizeof(double *));
    f->work = calloc((size_t)(e->n_nodes * N_BUF), sizeof(double *));
    if (!f->theta || !f->mem || !f->slot || !f->work) {
        free(f->theta); free(f->mem); free(f->slot); free(f->work); free(f);
        return 0;
    }
    memcpy(f->theta, theta, sizeof(double) * (size_t)e->d);
    for (int i = 1; i < e->n_nodes; i++)
        for (int b = 0; b < N_BUF; b++) f->work[i * N_BUF + b] = *buffer(&e->nodes[i], b);
    e->frozen = f;
    return 1;
}

/* ... and computed: the forward and adjoint sweeps of every chunk into them */
static void freeze_fill(nt_engine *e, const nt_dataset *ds, int lane, void *arg)
{
    (void)lane; (void)arg;
    struct nt_frozen *f = e->frozen;
    double *at = f->mem;
    e->theta = f->theta;
    e->g = NULL;          /* adjoints only: no parameter gradient */
    e->kk = 0;
    e->loss_sum = 0;
    for (int64_t c = 0; c < f->n_chunks; c++) {
        set_rows(e, ds, c);
        for (int i = 1; i < e->n_nodes; i++)
            for (int b = 0; b < N_BUF; b++)
                if (f->work[i * N_BUF + b]) {
                    f->slot[(c * e->n_nodes + i) * N_BUF + b] = at;
                    at += e->n * (b < 2 ? e->nodes[i].width : e->nodes[i].aux);
                }
        use_chunk(e, c);
        for (int i = 1; i < e->n_nodes; i++) nt_op_run(e, &e->nodes[i], NT_FWD);
        for (int i = e->n_nodes - 1; i >= 1; i--)
            if (e->nodes[i].need_adj) nt_op_run(e, &e->nodes[i], NT_ADJ);
    }
    f->loss_sum = e->loss_sum;
    use_workspace(e);
}

/* Each lane's engine keeps its own rows' values (lanes.c), so that a frozen product runs on
 * every lane as a full one does; all lanes' values are allocated before any is computed (the
 * lanes of batch normalization wait for each other: none may decline halfway). */
int nt_engine_freeze(nt_engine *e, const double *theta, const nt_dataset *ds, double max_bytes)
{
    nt_engine_thaw(e);
    if (nt_engine_ready(e, theta, ds, 1, NULL) != NT_OK) return 0;   /* the calls will report it */
    const int T = nt_lanes_for(e, ds);
    for (int t = 0; t < T; t++) {
        nt_engine *le = nt_lane_engine(e, t, T);
        const nt_dataset rows = nt_lane_rows(ds, t, T);
        if (!le || !freeze_alloc(le, theta, &rows, max_bytes * (double)rows.n / (double)ds->n)) {
            nt_engine_thaw(e);
            return 0;
        }
    }
    if (T == 1) freeze_fill(e, ds, 0, NULL);
    else if (nt_lanes_run(e, ds, T, freeze_fill, NULL, NULL, NULL, 0, 1.0) != NT_OK) { nt_engine_thaw(e); return 0; }
    e->frozen->lanes = T;
    e->frozen->key = *ds;
    return 1;
}

static void thaw_one(nt_engine *e)
{
    struct nt_frozen *f = e->frozen;
    if (!f) return;
    free(f->theta);
    free(f->mem);
    free(f->slot);
    free(f->work);
    free(f);
    e->frozen = NULL;
}

void nt_engine_thaw(nt_engine *e)
{
    thaw_one(e);
    for (int t = 0; t < NT_MAX_LANES - 1; t++)
        if (e->peer[t]) thaw_one(e->peer[t]);
}

/* frozen at theta on ds, split in as many lanes */
int nt_engine_frozen_at(const nt_engine *e, const double *theta, const nt_dataset *ds)
{
    const struct nt_frozen *f = e->frozen;
    return f && f->lanes == nt_lanes_for(e, ds) && f->key.n == ds->n && f->key.dim == ds->dim &&
           f->key.ydim == ds->ydim && f->key.x == ds->x && f->key.y == ds->y &&
           memcmp(f->theta, theta, sizeof(double) * (size_t)e->d) == 0;
}

/* one block of kk <= e->k products at the frozen theta: the sums over samples of the
 * adjoint's tangents into HV (kk x d); returns the loss sum */
double nt_frozen_sweep(nt_engine *e, int kk, const double *V, double *HV)
{
    struct nt_frozen *f = e->frozen;
    e->theta = f->theta;
    e->V = V;
    e->kk = kk;
    e->g = NULL;
    e->HV = HV;
    memset(HV, 0, sizeof(double) * (size_t)(kk * e->d));
    for (int64_t c = 0; c < f->n_chunks; c++) {
        set_rows(e, &f->ds, c);
        use_chunk(e, c);
        for (int i = 1; i < e->n_nodes; i++)
            if (e->nodes[i].has_tan) nt_op_run(e, &e->nodes[i], NT_TAN);
        for (int i = e->n_nodes - 1; i >= 1; i--)
            if (e->nodes[i].need_adj) nt_op_run(e, &e->nodes[i], NT_ADJTAN);
    }
    use_workspace(e);
    return f->loss_sum;
}
