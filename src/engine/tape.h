/* tape.h: the engine's internal structures.  A model becomes a tape of nodes in
 * topological order (input, one node per layer, the loss head).  Each node's op is one
 * function switched on an action, in the manner of KANN's op table:
 *
 *   NT_FWD     value          v = op(in)
 *   NT_TAN     tangent        v. = Dop(in) in. + (d op / d theta) theta.
 *   NT_ADJ     adjoint        in_bar += Dop^T v_bar;  theta_bar += (d op / d theta)^T v_bar
 *   NT_ADJTAN  adjoint's tangent (forward-over-reverse): the tangent of NT_ADJ's outputs
 *
 * With theta. = v and the input's tangent zero, theta_bar = sum_n grad l_n and its tangent
 * is sum_n (Hess l_n) v, exactly (Pearlmutter's R-operator).  Tangents are carried as a
 * block of k: the tangent buffer of a node of width w is n x k x w (sample-major), so that
 * "in. W^T" for all k at once is one GEMM of (n k) rows. */
#ifndef NT_TAPE_H
#define NT_TAPE_H
#include <cblas.h>
#include "noether.h"

enum { NT_FWD, NT_TAN, NT_ADJ, NT_ADJTAN };
enum { NT_OP_INPUT, NT_OP_DENSE, NT_OP_ACT, NT_OP_NORM, NT_OP_BNORM, NT_OP_BRANCH, NT_OP_ADD, NT_OP_CONV, NT_OP_POOL,
       NT_OP_ATTN, NT_OP_MEAN_TOKENS, NT_OP_LOSS, NT_OP_COUNT };

typedef struct nt_node {
    int op;
    int in;            /* input node, -1 for the data input */
    int in2;           /* add: the branch node whose value it adds (the skip connection);
                        * branch: its add node, whose adjoint it adds to its own */
    int width;         /* per-sample width of the value */
    int tokens;        /* T on a sequence (the value is T rows of width / T), else 1 */
    int64_t aux;       /* per-sample size of d1 and d2 (0: none) */
    int has_tan;       /* the tangent can be non-zero (parameters upstream) */
    int need_adj;      /* the adjoint is needed (parameters upstream) */
    const nt_layer *layer;
    int64_t off_w, off_b;  /* dense: offsets of W and b in theta (off_b < 0: no bias);
                            * norm: of its weight and bias (< 0: not affine) */
    double *val;       /* n x w */
    double *tan;       /* n x k x w */
    double *adj;       /* n x w */
    double *adjtan;    /* n x k x w */
    double *work;      /* conv: the scratch of a group of samples (op_table.c); attention: five
                        * T x T (not kept by freezing) */
    int64_t group;     /* conv: samples per GEMM, as many as its scratch holds (op_table.c) */
    double *d1, *d2;   /* act: sigma'(z), sigma''(z); norm: x_hat, and 1/sqrt(var + eps) at
                        * the start of each row of d2; batch norm: x_hat, and 1/sqrt(var + eps)
                        * per feature in the first row of d2; max pool: the input index of
                        * each output's maximum (d1); attention: the weights P of each head
                        * (d1, H x T x T per sample); loss: u = dl/df (d1) */
} nt_node;

/* The tape being built (tape.c): each layer's registry entry adds its nodes after node cur
 * (tape_layers.c); open holds the branch nodes of the residual blocks open there. */
#define NT_LAYER_MAX_NODES 3   /* an attention layer: in-projection, core, out-projection */
typedef struct nt_tape_build {
    const nt_model *m;
    nt_node *nodes;
    int cur;          /* the last node built */
    int layer;        /* the layer being built */
    int open[NT_MAX_RESIDUAL_DEPTH + 1], depth;
} nt_tape_build;

#define NT_MAX_LANES 8   /* sample-parallel lanes of an engine (lanes.c) */

struct nt_engine {
    const nt_model *m;
    int64_t chunk;     /* rows the workspace holds */
    int k;             /* tangents the workspace holds */
    int n_nodes;
    nt_node *nodes;
    double *mem;       /* every buffer, allocated once */
    double *vbuf;      /* k x d: unit vectors for the dense Hessian */
    double *pack;      /* k x (largest n_out n_in): the k tangents of one W, stacked */
    /* the pass in progress */
    int64_t n;         /* rows of this chunk */
    int kk;            /* tangents in this pass (<= k) */
    int64_t d;
    const double *theta, *V;  /* parameters and their tangents (kk x d) */
    double *g, *HV;           /* sums over samples of theta_bar (NULL: not wanted) and its tangents */
    const double *y;          /* targets of this chunk */
    double *rho;              /* output map (K x K) or NULL: the loss is l(rho f, y) */
    double loss_sum;
    struct nt_frozen *frozen; /* values and adjoints kept at one theta (freeze.c), or NULL */
    int coupled;              /* batch normalization: every data set is one chunk */
    nt_reduce_fn reduce;      /* the reduction hook (nt_engine_set_reduce) or NULL */
    void *reduce_ctx;
    double *red;              /* 1 + k d: the contiguous [loss sum | g sums | HV sums] it is handed */
    int sync_rc;              /* the hook's error inside a pass (synchronized batch norm, ops_bnorm.c), */
    nt_error sync_err;        /* reported by the engine's call; reset by nt_engine_ready */
    double *bn_sums;          /* batch norm's channel sums, (5 + 7 k) x its widest C (ops_bnorm.c), */
    int64_t bn_cap;           /* allocated at its first pass */
    int lanes;                /* sample-parallel lanes asked for (lanes.c) */
    struct nt_engine *peer[NT_MAX_LANES - 1];   /* lane t's engine is peer[t - 1], made at first use */
    double *sums;             /* a peer's own g and product sums, (1 + k) d */
    struct nt_crew *crew;     /* the lanes' threads, kept between calls (lanes.c) */
};

/* lanes.c: the rows of a data set split into contiguous shards, each swept by its own engine
 * on its own thread.  nt_lanes_for: the lanes a call on ds takes (fewer than asked
 * at fewer than 64 rows a lane); nt_lane_rows: lane t's rows of T; nt_lanes_run: fn on
 * every lane at once (NT_EFAIL when a peer engine cannot be allocated), then g and HV (n_hv
 * doubles) += the peers' sums, and times scale. */
typedef void (*nt_lane_fn)(struct nt_engine *e, const nt_dataset *rows, int lane, void *arg);
int nt_lanes_for(const struct nt_engine *e, const nt_dataset *ds);
nt_dataset nt_lane_rows(const nt_dataset *ds, int t, int T);
struct nt_engine *nt_lane_engine(struct nt_engine *e, int t, int T);
int nt_lanes_run(struct nt_engine *e, const nt_dataset *ds, int T, nt_lane_fn fn, void *arg, double *g, double *HV,
                 int64_t n_hv, double scale);
void nt_lanes_free(struct nt_engine *e);

/* (Re)allocates the workspace for chunks of `chunk` rows (a no-op when it holds them; a
 * frozen engine is thawed first).  Batch normalization couples the rows of a data set, so
 * its engines call it with the set's size: every data set is then one chunk. */
int nt_engine_fit(struct nt_engine *e, int64_t chunk);
/* The op table (op_table.c): per op its rules (one function switched on the action), the
 * per-sample size of its kept derivatives (d1, d2) and the size of its scratch (work) for
 * chunks of `chunk` rows and k tangents (conv records there its group, p->group); NULL: none. */
typedef struct {
    const char *name;
    void (*run)(struct nt_engine *e, nt_node *p, int action);
    int64_t (*aux)(const nt_node *p);
    int64_t (*work)(nt_node *p, int64_t chunk, int k);
} nt_op_info;
extern const nt_op_info nt_ops[NT_OP_COUNT];
/* nt_ops[p->op].run (the input has no rules) */
void nt_op_run(struct nt_engine *e, nt_node *p, int action);
/* The rules: ops.c, batch norm in ops_bnorm.c, the image ops in ops_image.c, the sequence ops
 * in ops_sequence.c. */
void nt_op_dense(struct nt_engine *e, nt_node *p, int action);
void nt_op_act(struct nt_engine *e, nt_node *p, int action);
void nt_op_norm(struct nt_engine *e, nt_node *p, int action);
void nt_op_bnorm(struct nt_engine *e, nt_node *p, int action);
void nt_op_residual(struct nt_engine *e, nt_node *p, int action);
void nt_op_loss(struct nt_engine *e, nt_node *p, int action);
void nt_op_conv(struct nt_engine *e, nt_node *p, int action);
void nt_op_pool(struct nt_engine *e, nt_node *p, int action);
void nt_op_attn(struct nt_engine *e, nt_node *p, int action);
void nt_op_mean_tokens(struct nt_engine *e, nt_node *p, int action);
/* C (M x N, ldc) = beta C + op(A) op(B), row-major (cblas_dgemm) */
#define ROW CblasRowMajor
#define NT CblasNoTrans
#define TR CblasTrans
void nt_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K, const double *A, int64_t lda,
             const double *B, int64_t ldb, double beta, double *C, int64_t ldc);
/* freeze.c: whether the engine is frozen at (theta, ds); one block of products there. */
/* The checks every entry point makes before a sweep (engine.c): shapes, and the whole data
 * set in one chunk for a batch-coupled model; with_loss: targets of the loss's width. */
int nt_engine_ready(struct nt_engine *e, const double *theta, const nt_dataset *ds, int with_loss, nt_error *err);
int nt_engine_frozen_at(const struct nt_engine *e, const double *theta, const nt_dataset *ds);
double nt_frozen_sweep(struct nt_engine *e, int kk, const double *V, double *HV);

#endif
