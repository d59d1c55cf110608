/*
 * noether.h: the whole public API of libnoether.
 *
 * noether turns "this network is invariant or equivariant under this transformation of
 * its parameters" into measured facts: exact gradients, Hessian-vector products and the
 * identities of docs/theory.md.  Data flows one way:
 *
 *     spec / data  ->  model (layers, parameter layout)  ->  engine (loss, g, Hv, H)
 *
 * Conventions (GSL-like):
 *   - every name starts with nt_; every fallible call returns NT_OK or an error code and
 *     fills an nt_error whose message names the file, field or flag that was wrong;
 *   - workspaces (nt_engine) are allocated once and passed in; no hidden global state;
 *   - parameters are one flat float64 vector theta of length d, laid out as docs/interface.md
 *     says (PyTorch's order for nn.Sequential of nn.Linear: W (n_out x n_in) then b).
 */
#ifndef NOETHER_H
#define NOETHER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* NT_VERSION, the version as a string: meson.build's project version, the one place it is
 * written.  The build passes it to every compilation (-DNT_VERSION) and installs this header
 * with it written in (tools/version_header.py). */
#ifndef NT_VERSION
#define NT_VERSION "unknown"
#endif

/* NT_API marks the public functions: the library is built with -fvisibility=hidden, so
 * they are the only names libnoether.so exports (its internal functions, nt_gemm,
 * nt_op_run and the like, stay inside).  NT_PRINTF(f, a): argument f is a printf format
 * whose arguments start at a (checked by GCC and Clang, nothing elsewhere). */
#if defined(__GNUC__) || defined(__clang__)
#define NT_API __attribute__((visibility("default")))
#define NT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NT_API
#define NT_PRINTF(f, a)
#endif

/* ------------------------------------------------------------------ errors */

/* The codes double as the command-line exit codes (docs/interface.md). */
enum { NT_OK = 0, NT_EFAIL = 1, NT_EINPUT = 2 };

typedef struct {
    int code;       /* NT_OK, NT_EFAIL or NT_EINPUT */
    char msg[512];  /* one line naming what was wrong */
} nt_error;

/* Sets err (if not NULL) to code and the printf-style message; returns code. */
/* Writes path whole or not at all: write(f, ctx) fills a temporary file beside it (returns 1
 * when every write succeeded), which then replaces path once flushed to the disk (fsync).
 * Only a regular file or a new path is replaced: anything else at path (a FIFO, a device,
 * a symlink, a folder) is refused with NT_EINPUT naming it. */
NT_API int nt_file_write(const char *path, int (*write)(FILE *f, const void *ctx), const void *ctx, nt_error *err);
/* The same; sync 0 skips the fsync (whole if the process dies, not if the machine does). */
NT_API int nt_file_write_sync(const char *path, int (*write)(FILE *f, const void *ctx), const void *ctx, int sync,
                       nt_error *err);
NT_API int nt_fail(nt_error *err, int code, const char *fmt, ...) NT_PRINTF(3, 4);

/* Bytes of physical memory of this machine. */
NT_API double nt_memory_bytes(void);
/* NT_OK when need <= limit bytes (limit <= 0: the machine's memory); otherwise NT_EINPUT with
 * "WHAT needs N bytes (G GiB), more than the M bytes (G GiB) LIMIT_NAME" (WHAT from fmt;
 * LIMIT_NAME NULL: "of memory available"). */
NT_API int nt_memory_fits(nt_error *err, double need, double limit, const char *limit_name, const char *fmt, ...)
    NT_PRINTF(5, 6);

/* ------------------------------------------------------------------ progress */

/* Progress of long work (src/util/progress.c): fn(ctx, phase, done, total) as the units of a
 * phase complete (Hessian-vector products, probes, layers, generators): done 0 as it starts,
 * done = total as it ends; total 0 when it is not known in advance (ARPACK stops when it has
 * converged).  fn NULL: nothing is reported.  The library never prints: noether prints it on
 * stderr (docs/interface.md, "Progress"). */
typedef void (*nt_progress_fn)(void *ctx, const char *phase, int64_t done, int64_t total);
typedef struct { nt_progress_fn fn; void *ctx; } nt_progress;
/* Calls p->fn when p and p->fn are not NULL. */
NT_API void nt_progress_report(const nt_progress *p, const char *phase, int64_t done, int64_t total);

/* ------------------------------------------------------------------ arrays (NPY) */

/* A dense C-order array held as float64 whatever its dtype on disk.  NPY files are version
 * 1.0 to 3.0, any real or integer dtype (float16/32/64, int8..int64, uint8..uint64, bool;
 * either byte order; each value converted exactly to float64, integers beyond 2^53 rounded;
 * is_int set for integers), C or Fortran order (read into C order).  Complex, string,
 * object, date and structured dtypes are refused naming the dtype; a zip or pickle file (a
 * PyTorch .pt) is refused saying how to export theta as .npy. */
typedef struct {
    int ndim;
    int64_t shape[4];
    int64_t size;   /* product of the shape */
    int is_int;     /* the file held integers */
    double *data;
} nt_array;

/* a->data is malloc'd, freed by nt_array_free; after an error there is nothing to free (the
 * same for every reader below that fills an nt_array). */
NT_API int nt_npy_read(const char *path, nt_array *a, nt_error *err);
/* The header of an NPY file (its dtype checked as nt_npy_read does, no data read). */
typedef struct {
    char descr[16];     /* the dtype as written: '<f8', '<f4', '|u1', ... */
    int fortran;        /* the data is in Fortran (column-major) order */
    int ndim;
    int64_t shape[4];
} nt_npy_header;
NT_API int nt_npy_header_read(const char *path, nt_npy_header *h, nt_error *err);
/* 1 when h's dtype is a float narrower than float64 (float32, float16): its values are exact
 * in float64, but they are the data as given, not the data they were rounded from. */
NT_API int nt_npy_is_narrow_float(const nt_npy_header *h);
/* The same for part `part` of `parts` balanced contiguous shares of the rows (nt_parallel_shard;
 * parts <= 1: the whole array): only those rows are read and checked (the file's size is
 * checked whole), shape[0] their count; *first, *rows (may be NULL): where they start, and
 * how many rows the file holds. */
NT_API int nt_npy_read_rows(const char *path, int part, int parts, nt_array *a, int64_t *first, int64_t *rows,
                            nt_error *err);
/* Writes '<f8' version 1.0, whole or not at all (temporary file, then rename). */
NT_API int nt_npy_write(const char *path, const double *data, int ndim, const int64_t *shape,
                 nt_error *err);
NT_API void nt_array_free(nt_array *a);

/* ------------------------------------------------------------------ model */

typedef enum {
    NT_ACT_IDENTITY, NT_ACT_RELU, NT_ACT_LEAKY_RELU, NT_ACT_TANH, NT_ACT_SIGMOID,
    NT_ACT_SOFTPLUS, NT_ACT_GELU, NT_ACT_SQUARE, NT_ACT_COUNT
} nt_act;

typedef enum {
    NT_LOSS_MSE, NT_LOSS_CROSS_ENTROPY, NT_LOSS_LOGISTIC, NT_LOSS_EXPONENTIAL, NT_LOSS_COUNT
} nt_loss;

/* A residual block {"residual": [layers]} is flattened into BRANCH, its layers, ADD: the
 * value at BRANCH is added to the value before ADD (the skip connection). */
/* On a sequence (T tokens of D features) dense layers, activations and layer norms act on
 * each token alone; ATTENTION mixes the tokens; MEAN_TOKENS averages them into one vector. */
typedef enum { NT_LAYER_DENSE, NT_LAYER_ACT, NT_LAYER_LAYERNORM, NT_LAYER_BATCHNORM, NT_LAYER_BRANCH,
               NT_LAYER_ADD, NT_LAYER_CONV, NT_LAYER_POOL, NT_LAYER_FLATTEN, NT_LAYER_ATTENTION,
               NT_LAYER_MEAN_TOKENS, NT_LAYER_COUNT } nt_layer_kind;

typedef struct {
    nt_layer_kind kind;
    int units;      /* dense: output width */
    int bias;       /* dense: has a bias vector */
    nt_act act;     /* act: which activation */
    double alpha;   /* leaky_relu slope */
    int affine;     /* layernorm, batchnorm: has its weight (gain) and bias */
    double eps;     /* layernorm, batchnorm: added to the variance (PyTorch's default 1e-5) */
    int kernel, stride, padding;   /* conv (units = output channels, bias as dense), pool */
    int pool_max;   /* pool: 1 max, 0 average */
    int heads;      /* attention: number of heads (units = 0; bias as dense, on all four projections) */
    int causal;     /* attention: token i attends to tokens j <= i only */
    /* set by nt_model_init: the shape of the value before and after the layer, (C, H, W)
     * for an image (C-order: channel, row, column) or (width, 0, 0) for a flat vector */
    int shape_in[3], shape_out[3];
    /* set by nt_model_init: T when the layer's input is a sequence of T tokens (shape_in is
     * then one token's, (D, 0, 0)), 0 otherwise */
    int tokens;
} nt_layer;

/* One parameter tensor of the layout: name as in PyTorch's state_dict of the same
 * nn.Sequential ("0.weight", "0.bias", "2.weight", ...). */
typedef struct {
    char name[32];
    int layer;          /* index into model.layers */
    int64_t offset;     /* first coordinate in theta */
    int ndim;
    int64_t shape[4];   /* conv: (out channels, in channels, kernel, kernel) */
    int64_t size;
} nt_tensor;

/* The most layers a model may have (spec and nt_model_init refuse more): per-layer tables
 * of the transformations are sized by it. */
#define NT_MAX_LAYERS 1024
/* The deepest nesting of residual blocks (spec and nt_model_init refuse deeper). */
#define NT_MAX_RESIDUAL_DEPTH 16

typedef struct {
    int input;          /* features per sample */
    int image[3];       /* the input as an image (C, H, W), or zeros for a flat vector */
    int sequence[2];    /* the input as a sequence (T tokens, D features), or zeros */
    int output;         /* K, the width of f */
    int n_layers;
    nt_layer *layers;
    nt_loss loss;
    double weight_decay;  /* gamma: L_gamma = L + (gamma/2)|theta|^2 */
    int64_t d;            /* number of parameters */
    int n_tensors;
    nt_tensor *tensors;
} nt_model;

/* Copies layers and derives output width and layout; NT_EINPUT on impossible sizes.  m's
 * layers and tensors are malloc'd, freed by nt_model_free (nothing to free after an error). */
NT_API int nt_model_init(nt_model *m, int input, const nt_layer *layers, int n_layers,
                  nt_loss loss, double weight_decay, nt_error *err);
/* The same for an image input of C x H x W (input = C H W features, C-order). */
NT_API int nt_model_init_image(nt_model *m, const int image[3], const nt_layer *layers, int n_layers,
                        nt_loss loss, double weight_decay, nt_error *err);
/* The same for a sequence input of T tokens of D features (input = T D, token-major). */
NT_API int nt_model_init_sequence(nt_model *m, int tokens, int features, const nt_layer *layers, int n_layers,
                           nt_loss loss, double weight_decay, nt_error *err);
/* 1 when a layer couples the samples of a batch (batch normalization in training mode: the
 * loss of a data set is then a function of the whole set, processed as one chunk). */
NT_API int nt_model_batch_coupled(const nt_model *m);
/* The size of a normalization's weight and of its bias (set by nt_model_init): the width
 * it normalizes, except a batch normalization of an image, per channel (nn.BatchNorm2d): C. */
NT_API int nt_layer_norm_params(const nt_layer *L);
NT_API void nt_model_free(nt_model *m);
/* The coordinates [*off, *off + *n) of theta a block name selects: a tensor name ("2.weight"),
 * or a layer by its model.layers index, "2" or "layer=2" (all its tensors: the index the
 * generator names carry).  NT_EINPUT naming the block when nothing matches. */
NT_API int nt_layout_block(const nt_model *m, const char *name, int64_t *off, int64_t *n, nt_error *err);

/* Static strings (never freed). */
NT_API const char *nt_act_name(nt_act a);
NT_API const char *nt_loss_name(nt_loss l);

/* sigma(z), sigma'(z), sigma''(z) (any output pointer may be NULL). */
NT_API void nt_act_eval(nt_act a, double alpha, double z, double *s, double *ds, double *d2s);
/* The same on n values (d2s may be NULL: sigma'' is not wanted; the others may not). */
NT_API void nt_act_eval_n(nt_act a, double alpha, int64_t n, const double *z, double *s, double *ds, double *d2s);
/* sigma'' = 0 wherever it is defined (identity, relu, leaky_relu). */
NT_API int nt_act_piecewise_linear(nt_act a);

/* Per-sample loss l(f, y) on K outputs, its gradient u = dl/df (may be NULL) and
 * U w = (d2l/df2) w for a given w (both NULL-able).  Exact definitions: docs/interface.md. */
NT_API double nt_loss_eval(nt_loss l, int K, const double *f, const double *y, double *u);
NT_API void nt_loss_hess_apply(nt_loss l, int K, const double *f, const double *y,
                        const double *w, double *Uw);

typedef enum { NT_INIT_HE, NT_INIT_XAVIER, NT_INIT_NORMAL } nt_init_scheme;

#define NT_MAX_FIXED 8

typedef struct {
    uint64_t seed;
    nt_init_scheme scheme;
    double std;       /* "normal": weight standard deviation */
    double bias_std;  /* biases ~ N(0, bias_std^2); 0 gives zero biases */
    /* start on the fixed-point set of these discrete symmetries (catalogue names), then
     * move off it by `perturb` along Fix(T)^perp of the first one (nt_start_fixed) */
    int n_fixed;
    char fixed_point[NT_MAX_FIXED][96];
    double perturb;
} nt_init;

/* Seeded initialization: each tensor draws from its own stream (seed, tensor index), so
 * the values do not depend on anything but the seed and the layout. */
NT_API void nt_init_params(const nt_model *m, const nt_init *init, double *theta);

/* ------------------------------------------------------------------ random numbers */

/* Counter-based: the i-th draw of stream (seed, stream) is a pure function of the three,
 * so sharded or resumed runs can reproduce one another. */
NT_API uint64_t nt_rand_u64(uint64_t seed, uint64_t stream, uint64_t i);
NT_API double nt_rand_uniform(uint64_t seed, uint64_t stream, uint64_t i);  /* in (0, 1) */
NT_API double nt_rand_normal(uint64_t seed, uint64_t stream, uint64_t i);   /* N(0, 1) */

/* ------------------------------------------------------------------ data */

/* n samples: x is n x dim (C order), y is n x ydim.  For cross_entropy y holds the class
 * id (ydim 1); for logistic/exponential y is -1 or +1 (ydim 1); for mse y is the target. */
typedef struct {
    int64_t n;
    int dim;
    int ydim;
    double *x;
    double *y;
} nt_dataset;

typedef struct {
    nt_dataset train;
    nt_dataset test;     /* n == 0 when the source has no held-out split */
    char desc[256];      /* one line: where the data came from */
    /* a shard (nt_data_shard): train holds rows [shard_start, shard_start + train.n) of the
     * shard_total rows of the whole training set; shard_total 0: not sharded */
    int64_t shard_start, shard_total;
    uint64_t train_hash;   /* a shard: nt_dataset_hash of the whole training set (checkpoints) */
} nt_data;

/* free()s x and y: for the library's own data sets (nt_data_load's), not a binding's arrays. */
NT_API void nt_dataset_free(nt_dataset *ds);
/* A data set built outside the library (a binding's arrays) against model m: at least one
 * sample, x and y present, dim == m->input, ydim 1 (cross_entropy, logistic, exponential) or
 * K (mse), every value finite, class ids in 0..K-1 (cross_entropy), labels -1 or +1
 * (logistic, exponential).  NT_EINPUT naming the first fault.  The engine's calls (nt_grad,
 * nt_hvp, ...) check only the shapes, per call: values are checked here, once. */
NT_API int nt_dataset_check(const nt_model *m, const nt_dataset *ds, nt_error *err);
NT_API void nt_data_free(nt_data *data);
/* Keeps part `part` of `parts` of the training rows (nt_parallel_shard's balanced contiguous
 * shares; the test set stays whole), recording where they sit in shard_start, shard_total.
 * NT_EINPUT when there are fewer rows than parts, NT_EFAIL out of memory. */
NT_API int nt_data_shard(nt_data *data, int part, int parts, nt_error *err);
/* FNV-1a of a data set's sizes and values, continuing from h (NT_HASH_INIT to start). */
NT_API uint64_t nt_dataset_hash(const nt_dataset *ds, uint64_t h);

/* Readers behind the data sources (also usable on their own). */
/* CSV (plain or gzipped): rows of numbers; a first line with a non-numeric field is a
 * header and skipped.  Returns the rows as an n x cols array. */
NT_API int nt_csv_read(const char *path, nt_array *a, nt_error *err);
/* IDX (plain or gzipped, ubyte): images n x rows x cols or labels n. */
NT_API int nt_idx_read(const char *path, nt_array *a, nt_error *err);
/* The same keeping only the first `keep` rows (keep <= 0: all): only they are held and
 * converted, the rest of the file is read to check it; *rows = the rows the file holds. */
NT_API int nt_idx_read_rows(const char *path, int64_t keep, nt_array *a, int64_t *rows, nt_error *err);
/* The same for part `part` of `parts` balanced contiguous shares (nt_parallel_shard) of those
 * first `keep` rows: only the part's rows are held and converted, shape[0] their count. */
NT_API int nt_idx_read_part(const char *path, int64_t keep, int part, int parts, nt_array *a, int64_t *rows,
                            nt_error *err);
/* The CSVs built into the library ("iris", "wine", "breast_cancer"): same as nt_csv_read. */
NT_API int nt_builtin_csv(const char *name, nt_array *a, nt_error *err);

/* ------------------------------------------------------------------ spec */

typedef enum { NT_DATA_NPY, NT_DATA_CSV, NT_DATA_IDX, NT_DATA_TEACHER, NT_DATA_BUILTIN, NT_DATA_SEQUENCE } nt_data_source;
typedef enum { NT_OPT_GD, NT_OPT_SGD, NT_OPT_MOMENTUM, NT_OPT_ADAM } nt_optimizer;

#define NT_PATH_MAX 1024
#define NT_MAX_HIDDEN 8

typedef struct {
    nt_data_source source;
    char x[NT_PATH_MAX], y[NT_PATH_MAX];          /* npy */
    char path[NT_PATH_MAX];                       /* csv */
    char name[64];                                /* builtin: iris, wine, breast_cancer */
    int label_column;                             /* csv/builtin: -1 = last */
    char images[NT_PATH_MAX], labels[NT_PATH_MAX];/* idx (train) */
    char test_images[NT_PATH_MAX], test_labels[NT_PATH_MAX];
    int64_t limit;                                /* at most this many samples, 0 = all */
    int standardize;                              /* z-score each feature (train stats) */
    double test_fraction;                         /* seeded held-out split (csv, builtin, npy, teacher) */
    uint64_t split_seed;
    /* teacher: x ~ N(0, I); y from a random network input -> hidden... -> output */
    int64_t n;
    uint64_t seed;
    int n_hidden, hidden[NT_MAX_HIDDEN];
    nt_act teacher_act;
    double noise;                                 /* mse: Gaussian noise on targets */
} nt_data_spec;

typedef struct {
    nt_optimizer optimizer;
    double lr;
    int64_t steps;
    int64_t batch;      /* 0 = full batch */
    uint64_t seed;
    double momentum, beta1, beta2, eps;
    int64_t log_every, checkpoint_every;
} nt_train_spec;

typedef struct {
    int64_t every;
    int top, bottom;
} nt_analysis_spec;

typedef struct {
    char name[64];
    int discrete;                          /* 0: continuous (A, c, B); 1: discrete (T, rho) */
    char matrix[NT_PATH_MAX];              /* A (continuous) or T (discrete) */
    char shift[NT_PATH_MAX];               /* c, may be empty */
    char output[NT_PATH_MAX];              /* B or rho, may be empty */
} nt_transform_spec;

typedef struct {
    char path[NT_PATH_MAX];    /* the spec file ("<builtin>" for the default) */
    char dir[NT_PATH_MAX];     /* its folder: relative paths in the spec start here */
    nt_model model;
    nt_data_spec data;
    nt_init init;
    nt_train_spec train;
    nt_analysis_spec analysis;
    int n_transforms;
    nt_transform_spec *transforms;
    uint64_t hash;             /* nt_hash64 of the spec's JSON text (a resumed run checks it) */
} nt_spec;

/* Parses and validates a spec; unknown keys, wrong types and impossible sizes give
 * NT_EINPUT with the key named ("spec.json: model.layers[2].dense: ...").  A spec filled is
 * freed with nt_spec_free; after an error there is nothing to free. */
NT_API int nt_spec_load(const char *path, nt_spec *spec, nt_error *err);
NT_API int nt_spec_parse(const char *json, const char *path, nt_spec *spec, nt_error *err);
/* The same for len bytes of text (a NUL byte among them is refused). */
NT_API int nt_spec_parse_n(const char *json, size_t len, const char *path, nt_spec *spec, nt_error *err);
NT_API void nt_spec_free(nt_spec *spec);
/* The built-in default: a ReLU MLP with a softmax head on the wine data (a static string). */
NT_API const char *nt_default_spec_json(void);
/* Loads the spec's data and checks it against the model (dims, label range); freed with
 * nt_data_free (nothing to free after an error). */
NT_API int nt_data_load(const nt_spec *spec, nt_data *data, nt_error *err);
/* nt_data_load of part `part` of `parts` of the training rows (parts <= 1: nt_data_load).  NPY
 * (without limit) and IDX data, without test_fraction or standardize, are read as shards: each
 * rank holds and checks only its rows (an IDX test set whole); every other source is loaded
 * whole, then cut (nt_data_shard).
 * Collective under MPI (every rank calls it); an error on one rank is every rank's. */
NT_API int nt_data_load_shard(const nt_spec *spec, int part, int parts, nt_data *data, nt_error *err);
/* Reads a parameter vector of length d from NPY ((d,) or (1, d)). */
NT_API int nt_params_read(const char *path, const nt_model *m, double *theta, nt_error *err);

/* ------------------------------------------------------------------ engine */

/* The differentiation engine: a tape of tensor operations (one per layer plus the loss
 * head), each with forward, tangent, adjoint and adjoint-tangent rules.  A workspace is
 * sized once for (model, chunk of samples, block of k tangents); data sets larger than
 * the chunk are processed chunk by chunk, the per-sample sums accumulated and divided by N
 * once at the end.  All entry points evaluate L_gamma, with weight decay included. */
typedef struct nt_engine nt_engine;

/* The chunk of samples the library's own engines (nt_train's) and the noether commands'
 * take: a data set of up to NT_ENGINE_CHUNK samples is one chunk, a larger one is processed
 * NT_ENGINE_CHUNK samples at a time.  The chunk sets the order of the sums (so their
 * round-off), not their values. */
#define NT_ENGINE_CHUNK 1024

/* A workspace for chunks of `chunk` samples and blocks of k tangents (NULL when it cannot be
 * allocated).  m is borrowed, not copied: it must outlive the engine (nt_engine_free). */
NT_API nt_engine *nt_engine_new(const nt_model *m, int64_t chunk, int k);
NT_API void nt_engine_free(nt_engine *e);
NT_API int nt_engine_k(const nt_engine *e);
/* Sample-parallel lanes: nt_loss_value, nt_grad, nt_hvp (and so nt_hessian, the Hessian
 * operator and training) split a data set's rows into `threads` contiguous shards, each swept
 * by an engine of its own (a peer made at first use, chunks of ceil(chunk / threads) rows) on
 * a thread of its own with single-threaded BLAS; the shards' sums are added in order before
 * the division by N (and before the reduction hook).  The default is NOETHER_THREADS when
 * set, OpenBLAS's thread count otherwise.  Lanes change the order of the sums (their
 * round-off), not their values; one lane is bitwise an engine without lanes.  Batch
 * normalization's statistics are summed over the lanes inside the pass (and then handed to
 * the reduction hook, as over MPI's shards).  A data set of fewer than 64 rows a lane takes
 * fewer lanes.  At most 8; setting them thaws the engine.  While lanes run, OpenBLAS's thread count is 1
 * for the whole process. */
NT_API void nt_engine_set_threads(nt_engine *e, int threads);
/* The lanes a new engine takes: NOETHER_THREADS when set, OpenBLAS's thread count
 * otherwise; at least 1. */
NT_API int nt_threads_default(void);
NT_API int nt_engine_threads(const nt_engine *e);
/* Keeps the forward values, adjoints and layers' derivatives of every chunk at theta on ds
 * (at most max_bytes of them), so that nt_hvp there with g == NULL runs only the tangent and
 * adjoint-tangent sweeps, with bitwise the same results (every other call runs in full).
 * "There" means theta's value (the engine keeps a copy and compares the d doubles at each
 * product; a buffer changed in place is another point, computed in full) and the same data
 * set (n, dim, ydim and the x, y addresses: the samples' values must not change in place
 * until nt_engine_thaw; nt_engine_set_output_map thaws, its loss being another).  A
 * freeze replaces the previous one.  Returns 1 when frozen, 0 when declined (more
 * than max_bytes, or out of memory). */
NT_API int nt_engine_freeze(nt_engine *e, const double *theta, const nt_dataset *ds, double max_bytes);
NT_API void nt_engine_thaw(nt_engine *e);

/* The seam of data parallelism.  Every loss, gradient and product is a sum over samples
 * divided once by N (then weight decay added once): L = (1/N) sum_n l_n, g = (1/N) sum_n
 * grad l_n, H v = (1/N) sum_n (Hess l_n) v.  A reduction hook is called by nt_loss_value,
 * nt_grad and nt_hvp (once per block of at most nt_engine_k products) between the sweep over
 * this process's samples and that finish, on
 *     sums = [loss sum | g sums (d, when the call computes g) | H v sums (kk x d, nt_hvp)]
 * (len doubles, contiguous) and on *n, this process's sample count: it replaces both by the
 * totals over every shard (an MPI allreduce of the buffer and of n), and the engine then
 * divides by the new *n.  It returns NT_OK, or an error code with err filled (a failed
 * exchange, an error on another shard), which the engine's call returns.  The sums are unscaled: no 1/N, no weight decay (each shard's
 * gamma terms would otherwise be counted once per shard).  fn NULL removes the hook; with
 * no hook the results are bitwise those of an engine that never had one.  With a hook a
 * shard may hold no samples (a minibatch none of whose rows it holds).  Batch
 * normalization is synchronized through the same hook: each of its means over the batch is
 * reduced inside the pass (the channels' sums of a phase at once), so every shard
 * normalizes with the whole set's statistics; every shard must then make the same calls
 * (outputs, JVP and VJP included), a shard without rows running them empty.  NT_EFAIL when
 * the buffer (1 + (k + 1) d doubles) does not fit in memory.  Everything built on nt_grad
 * and nt_hvp is reduced with them (nt_hessian, the Hessian operator and so the spectra,
 * nt_train's steps), and nt_check reduces the sums it forms itself from the outputs (R, the
 * output part of (S2), the per-sample magnitudes) through nt_engine_reduce.  Not reduced:
 * nt_outputs and nt_jvp (per sample: each shard has its own rows) and nt_vjp (a sum, but of
 * the caller's seeds: the caller reduces it, nt_engine_reduce).  src/parallel's
 * nt_parallel_reduce is the MPI hook. */
typedef int (*nt_reduce_fn)(void *ctx, double *sums, int64_t len, int64_t *n, nt_error *err);
/* ctx is borrowed: it must outlive the hook. */
NT_API int nt_engine_set_reduce(nt_engine *e, nt_reduce_fn fn, void *ctx, nt_error *err);

/* Sums of the caller's own over samples (R, magnitudes, a VJP of per-sample seeds) through
 * the engine's hook, as the engine reduces its products: sums (len doubles) and *n become
 * the totals over every shard.  Without a hook nothing changes (NT_OK); the hook's error
 * otherwise. */
NT_API int nt_engine_reduce(nt_engine *e, double *sums, int64_t len, int64_t *n, nt_error *err);
/* 1 when the engine has a reduction hook (its sums are those of every shard). */
NT_API int nt_engine_sharded(const nt_engine *e);

/* Every call below returns NT_OK, or NT_EINPUT (a data set not shaped for the model: input
 * width, target width; no samples; no vectors), or NT_EFAIL (out of memory: batch
 * normalization needs the whole data set in one chunk; a failed reduction hook), with err
 * filled (err may be NULL).  The outputs are unset after an error.  They check shapes, not
 * values: a data set from outside is checked once with nt_dataset_check.  Out-parameters
 * named loss may be NULL. */

/* *loss = L_gamma(theta). */
NT_API int nt_loss_value(nt_engine *e, const double *theta, const nt_dataset *ds, double *loss, nt_error *err);
/* *loss = L_gamma and g = grad L_gamma (length d). */
NT_API int nt_grad(nt_engine *e, const double *theta, const nt_dataset *ds, double *loss, double *g, nt_error *err);
/* Exact Hessian-vector products by forward-over-reverse: V is k x d (row j = v_j, k >= 1; run
 * in blocks of nt_engine_k(e) rows), HV is k x d with row j = H_gamma v_j.  g (may be NULL)
 * receives the gradient, computed on the way; with g NULL on an engine frozen at (theta, ds)
 * only the tangent and adjoint-tangent sweeps run (nt_engine_freeze).  *loss = L_gamma. */
NT_API int nt_hvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *HV,
                  double *g, double *loss, nt_error *err);
/* Dense d x d Hessian of L_gamma from blocks of products with unit vectors. */
NT_API int nt_hessian(nt_engine *e, const double *theta, const nt_dataset *ds, double *H, nt_error *err);
/* The same, reporting its progress (the products, d of them) through p (may be NULL). */
NT_API int nt_hessian_progress(nt_engine *e, const double *theta, const nt_dataset *ds, double *H, const nt_progress *p,
                               nt_error *err);

/* The outputs f (n x K) of the last chunk of samples the engine ran, *n of them: after a
 * call on a data set that fits in one chunk, its outputs, at no extra cost.  The pointer is
 * into the engine's workspace: valid until the engine's next call. */
NT_API const double *nt_engine_outputs(const nt_engine *e, int64_t *n);
/* Model outputs F (n x K) for every sample (targets not needed). */
NT_API int nt_outputs(nt_engine *e, const double *theta, const nt_dataset *ds, double *F, nt_error *err);
/* Output Jacobian-vector products: Fdot[n, j, :] = J_n v_j, Fdot is n x k x K. */
NT_API int nt_jvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *Fdot,
                  nt_error *err);
/* Output vector-Jacobian product summed over samples: out = sum_n J_n^T Fbar[n, :]
 * (Fbar is n x K; no 1/N, no weight decay). */
NT_API int nt_vjp(nt_engine *e, const double *theta, const nt_dataset *ds, const double *Fbar, double *out,
                  nt_error *err);

/* The second order of the outputs weighted by a constant Fbar (n x K): g = sum_n J_n^T Fbar_n
 * (as nt_vjp; may be NULL) and HV row j = sum_n sum_k Fbar_nk (Hess_theta f_k(theta; x_n)) v_j,
 * the Hessian of the weighted outputs along each row v_j of V (k x d): the first Lie brackets
 * of the fields grad f_k (docs/theory.md §7).  No 1/N, no weight decay, not reduced. */
NT_API int nt_output_hvp(nt_engine *e, const double *theta, const nt_dataset *ds, const double *Fbar, int k,
                         const double *V, double *HV, double *g, nt_error *err);

/* An output map rho (K x K, row-major; NULL for the identity): from then on the engine's
 * loss is L^rho(theta) = E l(rho f(theta; x), y) (docs/theory.md §4), with its gradient and
 * Hessian-vector products.  The outputs, JVP and VJP stay those of f.  rho is copied. */
NT_API void nt_engine_set_output_map(nt_engine *e, const double *rho);

/* ------------------------------------------------------------------ data parallelism (MPI) */

/* src/parallel/parallel.c, the only place that calls MPI.  A process started by mpirun (and
 * a library built with MPI) is one of nt_parallel_size() ranks; any other process is rank 0
 * of 1 and every call below is the identity (no MPI_Init needed to use the library).
 * nt_parallel_init: MPI_Init when started by mpirun (NT_EFAIL when it fails); NT_OK and
 * nothing else otherwise.  nt_parallel_finalize: MPI_Finalize when initialized. */
NT_API int nt_parallel_init(int *argc, char ***argv, nt_error *err);
NT_API void nt_parallel_finalize(void);
NT_API int nt_parallel_rank(void);
NT_API int nt_parallel_size(void);
/* Part `part` of `parts` balanced contiguous shares of n rows: [floor(part n / parts),
 * floor((part + 1) n / parts)), sizes differing by at most one. */
NT_API void nt_parallel_shard(int64_t n, int part, int parts, int64_t *start, int64_t *count);
/* The engine's reduction hook (nt_engine_set_reduce, ctx NULL): one MPI_Allreduce (sum) of
 * the sums and the sample count; NT_EFAIL with err filled when it fails. */
NT_API int nt_parallel_reduce(void *ctx, double *sums, int64_t len, int64_t *n, nt_error *err);
/* The minimum of x over the ranks. */
NT_API double nt_parallel_min(double x);
/* Collective agreement on an error: every rank calls it with its status (rc, and err filled
 * when rc != 0); every rank gets back the code of the lowest failing rank, and err its
 * message (NT_OK when none failed). */
NT_API int nt_parallel_agree(int rc, nt_error *err);
/* This rank has failed with err: agree on it with the other ranks (which meet it in
 * nt_parallel_agree or fail themselves) within `timeout` seconds and return the agreed
 * code (err holding the lowest failing rank's message); when they do not come, print err
 * on this rank's stderr and end every rank (MPI_Abort with err's code).  Without MPI:
 * err's code. */
NT_API int nt_parallel_fail(nt_error *err, double timeout);
/* FNV-1a continued over every rank's bytes in rank order (h from rank 0, the result on every
 * rank): the hash of the concatenation of the shards, as one process takes it. */
NT_API uint64_t nt_parallel_chain(uint64_t h, const void *bytes, size_t n);
/* The file descriptor nt_parallel_fail prints on (a rank > 0 whose stderr is silenced). */
NT_API void nt_parallel_set_stderr(int fd);

/* ------------------------------------------------------------------ transformations */

/* A transformation of the parameters (docs/theory.md §1), a structured operator on theta:
 *   continuous: a family of affine generators xi_i(theta) = A_i theta + c_i with output
 *               generators B_i (f(T_s theta) = e^{s B_i} f(theta));
 *   discrete:   a linear map T with output map rho (f(T theta) = rho f(theta)).
 * Built-in entries never hold d x d matrices; a user-declared one holds dense arrays. */
typedef enum {
    NT_TR_RESCALE,      /* unit `a` of hidden layer `layer`: +1 on its row of W_l and b_l, -p on its column of W_{l+1} */
    NT_TR_GL,           /* gl(n) of hidden layer `layer` (identity activation): generator E_ab, n^2 of them */
    NT_TR_TRANSLATION,  /* softmax head: logit shift through the bias and each column of the last W */
    NT_TR_HOMOGENEOUS,  /* A = diag(1 on weights, k_l on layer-l biases), B = k I */
    NT_TR_BIAS_SHIFT,   /* linear hidden layer with biases on both sides: b_l += s e_i, b_{l+1} -= s W_{l+1} e_i */
    NT_TR_SWAP,         /* units a, b of hidden layer `layer` exchanged */
    NT_TR_SIGN_FLIP,    /* unit a of hidden layer `layer` negated (odd activation) */
    NT_TR_OUTPUT_SWAP,  /* outputs a, b exchanged: rows of the last W and b; rho = the swap */
    NT_TR_SCALE,        /* W and b of the dense layer feeding a layer normalization (through positively
                         * homogeneous activations), scaled together: A = +1 on both */
    NT_TR_UNIT_SCALE,   /* unit a's row of W and bias feeding a batch normalization: A = +1 on both */
    NT_TR_NORM_SHIFT,   /* the bias right before a normalization, shifted: A = 0, c = e_i (batch:
                         * one generator per unit) or c = 1 on the whole bias (layer: p = 1) */
    NT_TR_GL_QK,        /* head a of attention layer `layer`: q -> N q, k -> N^-T k; generators E_ab, d_head^2 */
    NT_TR_GL_VO,        /* head a of attention layer `layer`: v -> N v, W_O,a -> W_O,a N^-1; E_ab, d_head^2 */
    NT_TR_HEAD_SWAP,    /* heads a, b of attention layer `layer` exchanged */
    NT_TR_DENSE,        /* user-declared: dense A, c, B or T, rho */
    /* channels of a convolution at model.layers[layer] (docs/layers.md); a, b: channels */
    NT_TR_CHANNEL_RESCALE,   /* +1 on filter a and bias a, -p on the next layer's slice reading channel a */
    NT_TR_CHANNEL_SWAP,      /* channels a, b exchanged (filters, biases, the next layer's slices) */
    NT_TR_CHANNEL_SIGN_FLIP, /* channel a negated (odd activations, average pooling) */
    NT_TR_CHANNEL_SCALE,     /* filter a and bias a feeding a batch normalization: A = +1 on both (a = -1:
                              * every filter and bias, feeding a layer normalization over C H W) */
    NT_TR_CHANNEL_SHIFT,     /* the bias right before a batch normalization: A = 0, c = e on bias i
                              * (one generator per channel; p = 1: c = 1 on every bias, before a layer norm) */
    /* units of a normalization at model.layers[layer] (src/transform/norms.c); a, b: units (channels) */
    NT_TR_NORM_RESCALE,      /* its weight a and bias a x e^s, the next layer's slice reading unit a x e^{-ps} */
    NT_TR_NORM_SWAP,         /* units a, b exchanged: the producer's rows (filters) and biases, the
                              * normalization's weights and biases, the next layer's slices */
    NT_TR_NORM_FLIP,         /* batch norm: the producer's row a, bias a and the weight a negated; layer norm
                              * (a = -1): the whole producer and every weight negated */
    NT_TR_EVEN_FLIP,         /* even activation (square): row a of W_l and b_l[a] negated, hidden layer `layer`
                              * (the last dense layer when layer = number of dense layers) */
    NT_TR_CHANNEL_EVEN_FLIP, /* even activation after the convolution at model.layers[layer]: filter a, bias a negated */
    NT_TR_KEY_SHIFT,         /* attention layer `layer`: b_K += s e_i (q^T c is the same for every key: the
                              * softmax removes it); A = 0, D generators */
    NT_TR_VALUE_SHIFT,       /* attention layer `layer`: b_V += s e_i, b_O -= s W_O e_i (the rows of P sum
                              * to 1); D generators */
    NT_TR_KIND_COUNT         /* the number of kinds */
} nt_transform_kind;

typedef struct {
    char name[96];
    nt_transform_kind kind;
    int discrete;        /* 0: continuous family, 1: discrete map */
    int equivariance;    /* B != 0 (continuous) or rho != I (discrete) */
    int generators;      /* continuous: size of the family; discrete: 1 */
    int layer;           /* hidden layer (1 = output of the first dense layer); attention and channel
                          * entries: the layer's index in model.layers */
    int a, b;            /* units (attention: heads; convolutions: channels) */
    double p;            /* rescale: homogeneity degree of the activation; homogeneous: k */
    /* user-declared (NT_TR_DENSE): d x d A or T, c (d), K x K B or rho; NULL = 0 / I */
    double *A, *c, *B;
} nt_transform;

/* The built-in catalogue of a model (docs/theory.md §5): only what the layer structure implies.
 * *list is malloc'd, freed with nt_transforms_free(*list, *n). */
NT_API int nt_catalogue(const nt_model *m, nt_transform **list, int *n);
/* Appends the spec's user-declared transformations (dense NPY matrices, checked in size) to
 * *list (realloc'd; its entries' A, c, B malloc'd: nt_transforms_free frees them). */
NT_API int nt_transforms_load(const nt_spec *spec, nt_transform **list, int *n, nt_error *err);
NT_API void nt_transforms_free(nt_transform *list, int n);
/* The name of generator i of a family ("gl[layer=2,i=0,j=1]"); the entry's name when it
 * has one generator. */
NT_API void nt_generator_name(const nt_model *m, const nt_transform *t, int i, char *buf, size_t cap);

/* Continuous generator i: xi = A theta + c; y = A x; y = A^T x; B (K x K). */
NT_API void nt_tr_xi(const nt_model *m, const nt_transform *t, int i, const double *theta, double *xi);
NT_API void nt_tr_apply_A(const nt_model *m, const nt_transform *t, int i, const double *x, double *y);
NT_API void nt_tr_apply_At(const nt_model *m, const nt_transform *t, int i, const double *x, double *y);
NT_API void nt_tr_output_B(const nt_model *m, const nt_transform *t, int i, double *B);
/* y^T A_i x and c_i^T y, from the structure (cost of the generator's support, not d). */
NT_API double nt_tr_bilinear(const nt_model *m, const nt_transform *t, int i, const double *y, const double *x);
NT_API double nt_tr_shift_dot(const nt_model *m, const nt_transform *t, int i, const double *y);
/* The magnitude of the terms of Q_i(theta) = theta^T A_i theta / 2 + c_i^T theta:
 * sum |theta_r A_rc theta_c| / 2 + sum |c_r theta_r|, the scale of its round-off. */
NT_API double nt_tr_magnitude(const nt_model *m, const nt_transform *t, int i, const double *theta);
/* Discrete: y = T x, y = T^T x, rho (K x K). */
NT_API void nt_tr_apply_T(const nt_model *m, const nt_transform *t, const double *x, double *y);
NT_API void nt_tr_apply_Tt(const nt_model *m, const nt_transform *t, const double *x, double *y);
NT_API void nt_tr_output_rho(const nt_model *m, const nt_transform *t, double *rho);

/* ------------------------------------------------------------------ identities */

/* One checked generator or discrete map.  Residuals are relative (docs/theory.md §6):
 * |lhs - rhs| / max(size(lhs) + size(rhs), 1e-300), each side computed independently from
 * engine primitives; the size of a side is the magnitude of the terms it was computed from
 * (see src/identity/check.c), so that an identity whose two sides vanish, like H xi = 0
 * for a translation, is measured against the scale of H and xi, not against round-off. */
typedef struct {
    char name[128];
    int entry;                /* index into the transformation list */
    int discrete, equivariance;
    double first_order;       /* (F1gamma) or (D1gamma) for the gradient */
    double second_order;      /* max of (S1gamma) and (S2gamma), or (D1gamma) on probe vectors */
    double s1, s2;            /* continuous: the two second-order identities separately */
    double fixed_gradient;    /* discrete symmetry at its fixed point: |T g - g| (NAN: not applicable) */
    double fixed_hessian;     /* ... and |T H v - H T v| */
    int holds;
} nt_check_result;

/* The tolerance below which an identity holds (docs/theory.md §6): the default of noether
 * check --tol and the one noether run applies.  Float64 round-off gives 1e-17 to 1e-14, a
 * transformation that is not a symmetry 1e-3 to 1.  NT_STR(NT_IDENTITY_TOL) is "1e-8". */
#define NT_IDENTITY_TOL 1e-8
#define NT_STR_(x) #x
#define NT_STR(x) NT_STR_(x)

/* Evaluates every identity of every transformation at theta on the data set.  The engine
 * is used for products (any chunk, k >= 1).  results has room for the total number of
 * generators (nt_check_count).  NT_OK, or the engine's error, or NT_EFAIL when its workspace
 * does not fit in memory, with err filled (results unset). */
NT_API int nt_check_count(const nt_transform *list, int n);
/* (A sharded engine: its own sums reduced too, see nt_engine_set_reduce.) */
NT_API int nt_check(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta,
                    const nt_transform *list, int n, double tol, nt_check_result *results, nt_error *err);
/* The same, reporting its progress (the generators checked, of nt_check_count) through p
 * (may be NULL). */
NT_API int nt_check_progress(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta,
                             const nt_transform *list, int n, double tol, nt_check_result *results,
                             const nt_progress *p, nt_error *err);

/* ------------------------------------------------------------------ dynamics */

/* A quantity Q = (1/2) theta^T A theta + c^T theta of a continuous transformation with a
 * symmetric generator (docs/theory.md §2), A = A_gen + A_gen2 (gen2 >= 0: the symmetric
 * combination E_ab + E_ba of gl(n)).  Its ledger accumulates (F3) with the step s actually
 * taken (theta' = theta + s):  Q(theta') - Q(theta) = xi^T s + (1/2) s^T A s, split as
 *   first  = xi^T s_data   (zero for GD/SGD on a symmetry, the R-term of an equivariance,
 *                           non-zero for Adam: the preconditioner does not commute with A)
 *   decay  = xi^T s_decay  (the part of the step that weight decay contributed)
 *   second = (1/2) s^T A s (the O(eta^2) term)
 * and the gradient-flow law (F2) at the time t = lr * steps.  Since xi^T theta = 2Q - c^T theta
 * (A != 0) and = Q (A = 0), (F2) reads dQ/dt = -rate gamma Q + S with rate 2 (A != 0) or 1
 * (A = 0) and S = -R + gamma c^T theta (A != 0) or -R (A = 0), so
 *   gradient_flow = e^{-rate gamma t} Q(0) + integral_0^t e^{-rate gamma (t - tau)} S dtau:
 * the decay factor exact, the source integral (flow_source) over the recorded run with S
 * held at its value at the start of each step (R from the outputs on the step's batch).
 * A symmetry with c = 0 (or with A = 0) has S = 0: the column is Q(0) e^{-2 gamma t} (or
 * Q(0) e^{-gamma t}) exactly.  For momentum and Adam t = lr * steps is still plain GD's
 * time: the column is what gradient flow on L_gamma would give, not a limit of them. */
typedef struct {
    char name[112];
    int entry, gen, gen2;
    int equivariance;
    int rate;                                /* 2 when A != 0, 1 for a pure shift (A = 0) */
    double initial;                          /* Q(theta_0) */
    double measured, predicted, gradient_flow;
    double flow_source;                      /* the source integral of gradient_flow */
    double first, decay, second;             /* cumulative sums of the terms */
    double size;                             /* largest magnitude of Q's terms + sum of |step terms|:
                                                the scale of the gaps */
    double max_gap;                          /* max over steps |measured - predicted| / size */
} nt_quantity;

/* The ledger's quantities for a catalogue (every continuous entry with a symmetric A); *q is
 * malloc'd (free()). */
NT_API int nt_ledger_quantities(const nt_model *m, const nt_transform *list, int n, nt_quantity **q, int *nq);
NT_API double nt_quantity_value(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                         const double *theta);
/* Its gradient at theta, g = xi(theta) = A theta + c (with gl(n)'s symmetric pair E_ab + E_ba
 * summed); work: d doubles of scratch. */
NT_API void nt_quantity_gradient(const nt_model *m, const nt_transform *list, const nt_quantity *q,
                                 const double *theta, double *g, double *work);
/* How many of those quantities are independent (src/transform/independent.c): of the
 * conserved ones (B = 0; their number into *listed, may be NULL), the rank of their gradients
 * xi_i(theta) = A_i theta + c_i, from the eigenvalues of the Gram matrix of the normalized
 * gradients (LAPACK dsyevd; rank = #{lambda > tol lambda_max}, tol 1e-10 is right for most
 * uses).  theta NULL: a seeded generic point (N(0, 1) entries), where the rank is generic.
 * Overlapping entries (a linear network's rescalings are gl(n)'s diagonal) count once.
 * Returns -1 (not computed) beyond NT_INDEPENDENT_MAX conserved quantities. */
#define NT_INDEPENDENT_MAX 2048
NT_API int nt_catalogue_independent(const nt_model *m, const nt_transform *list, int n, const double *theta, double tol,
                             int *listed);

/* What a training run reports at each logged step. */
typedef struct {
    int64_t step;
    double loss, loss_gamma;          /* L(theta) and L_gamma(theta) = L + (gamma/2)|theta|^2 at this
                                         step's theta, over the whole training set */
    double accuracy;                  /* on the training set at theta (classification; NAN for mse) */
    double test_loss, test_accuracy;  /* NAN without a test set */
    double norm2;                     /* |theta|^2 */
    double margin;                    /* min_n y_n f_n / |theta|^k for a k-homogeneous model with
                                         logistic or exponential loss; NAN otherwise */
    double seconds;
} nt_train_log;

typedef void (*nt_train_fn)(void *ctx, const nt_train_log *log, const double *theta,
                            const nt_quantity *q, int nq);

/* Trains theta in place with the spec's optimizer, keeping the ledger of q (from
 * nt_ledger_quantities on list).  fn (may be NULL) is called at step 0, every
 * train.log_every steps and at the end.  A non-finite loss or gradient stops the run with
 * NT_EFAIL naming the step; theta then holds the last finite parameters. */
NT_API int nt_train(const nt_spec *spec, const nt_data *data, const nt_transform *list, int n_list,
             double *theta, nt_quantity *q, int nq, nt_train_fn fn, void *ctx, nt_error *err);

/* ------------------------------------------------------------------ checkpoints and resuming */

/* Everything a run holds between two steps besides theta and the ledger q: with them it
 * continues bit for bit as if never stopped (minibatches are a pure function of (seed,
 * epoch), so there is no random state). */
typedef struct {
    int64_t d;
    int64_t step;        /* steps taken: the next step's index */
    int started;         /* q initialized and step 0 logged (0 for a fresh run) */
    int stopped;         /* out: the run stopped on the stop flag before its last step */
    double *opt;         /* 3 d: the data and weight-decay parts of the momentum velocity or of
                            Adam's first moment, then Adam's second moment (t = step) */
    double seconds;      /* wall time of the run so far */
    int64_t data_hash;   /* a hash of the data, taken once (nt_train_state_files) */
    int n_files;         /* the files the spec refers to (data, transformations), hashed once */
    char *files;         /* ... their paths, one a line */
    int64_t *file_hash;  /* ... and a hash of each one's bytes (0: unreadable) */
} nt_train_state;

NT_API int nt_train_state_init(nt_train_state *s, int64_t d);   /* a fresh start; NT_EFAIL out of memory */
/* Hashes the data and every file the spec refers to (data, transformation matrices) into
 * s, once per run: recorded by _save, compared by _load (which calls it when it was not). */
NT_API void nt_train_state_files(nt_train_state *s, const nt_spec *spec, const nt_data *data);
NT_API void nt_train_state_free(nt_train_state *s);

/* Called at a step boundary to save the run (see nt_train_control). */
typedef int (*nt_checkpoint_fn)(void *ctx, const nt_train_state *s, const double *theta,
                                const nt_quantity *q, int nq, nt_error *err);

typedef struct {
    nt_train_state *state;         /* where to start (fresh or loaded); kept current */
    volatile sig_atomic_t *stop;   /* may be NULL; nonzero at a step boundary: checkpoint, stop */
    int64_t checkpoint_every;      /* > 0: checkpoint every this many steps (not at the last) */
    nt_checkpoint_fn checkpoint;   /* may be NULL; an error from it stops the run with it */
    void *ctx;
    /* may be NULL: the reduction hook of the run's engine (nt_engine_set_reduce), so that
     * each step's gradient is that of every shard's samples.  With data sharded
     * (nt_data_shard, nt_data_load_shard) the minibatches are drawn from the permutation of
     * the whole set's rows, each shard taking the rows of a batch it holds; the logged
     * training loss and accuracy, the margin and R of an equivariance's gradient-flow column
     * are reduced too, and the stop flag is agreed at each step (the largest signal of any
     * rank): a run on every shard then takes the steps of one run on the whole set, to the
     * order of the sums.  The test set is each rank's whole copy. */
    nt_reduce_fn reduce;
    void *reduce_ctx;
} nt_train_control;

/* nt_train from ctl->state (a fresh state: nt_train itself), stopping at the first step
 * boundary where *ctl->stop is set (state->stopped = 1, NT_OK, theta and q as they are
 * there, checkpoint called).  fn is not called at the start of a resumed run. */
NT_API int nt_train_run(const nt_spec *spec, const nt_data *data, const nt_transform *list, int n_list,
                 double *theta, nt_quantity *q, int nq, nt_train_fn fn, void *ctx,
                 const nt_train_control *ctl, nt_error *err);

/* A checkpoint file: named records (float64 or int64 arrays, bytes) in one file, written
 * whole or not at all (temporary file, then rename).  Layout, little-endian: the magic
 * "NTCKPT2\n", then per record a uint32 name length, the name, a type byte ('f', 'i' or
 * 'b'), a uint64 count and the payload; the last record is named "end" and holds one int64,
 * the FNV-1a hash of every byte before it: the reader verifies it before it parses
 * anything, so a damaged file is refused, never used.  A reader error names the file and
 * the record (or the byte offset where the file stops making sense). */
typedef struct nt_checkpoint nt_checkpoint;

NT_API nt_checkpoint *nt_checkpoint_new(void);
NT_API void nt_checkpoint_free(nt_checkpoint *c);
/* Adds (or replaces) a record; the data are copied. */
NT_API void nt_checkpoint_put_f64(nt_checkpoint *c, const char *name, int64_t n, const double *x);
NT_API void nt_checkpoint_put_i64(nt_checkpoint *c, const char *name, int64_t n, const int64_t *x);
NT_API void nt_checkpoint_put_bytes(nt_checkpoint *c, const char *name, int64_t n, const void *x);
NT_API int nt_checkpoint_write(const nt_checkpoint *c, const char *path, nt_error *err);
/* *c: a new checkpoint (nt_checkpoint_free), NULL after an error. */
NT_API int nt_checkpoint_read(const char *path, nt_checkpoint **c, nt_error *err);
/* Exactly n values of the named record (NT_EINPUT naming file and record otherwise). */
NT_API int nt_checkpoint_get_f64(const nt_checkpoint *c, const char *name, int64_t n, double *x, nt_error *err);
NT_API int nt_checkpoint_get_i64(const nt_checkpoint *c, const char *name, int64_t n, int64_t *x, nt_error *err);
/* A bytes record (not copied, NUL-terminated; valid while c lives), its length into *n. */
NT_API int nt_checkpoint_get_bytes(const nt_checkpoint *c, const char *name, const char **x, int64_t *n,
                            nt_error *err);
/* The number of values (bytes) of a record, -1 when it is missing. */
NT_API int64_t nt_checkpoint_count(const nt_checkpoint *c, const char *name);
/* The file it was read from ("<checkpoint>" for a new one). */
NT_API const char *nt_checkpoint_path(const nt_checkpoint *c);

/* A text side file beside a checkpoint (noether train's DIR/checkpoint.rows: the ledger
 * rows so far), appended at each checkpoint so that a checkpoint costs O(new rows); the
 * checkpoint records the file's length and hash (a 2-value int64 record), and a resume
 * verifies the file's first length bytes against it and cuts what a later, unfinished
 * checkpoint appended.  A plain struct; nothing to free. */
typedef struct {
    char path[NT_PATH_MAX + 64];
    size_t saved;       /* bytes of the file the checkpoint vouches for ... */
    uint64_t hash;      /* ... and their nt_hash64 */
} nt_checkpoint_rows;
/* Names the file (empty, hash NT_HASH_INIT); fresh: removes it (a new run's rows start empty). */
NT_API void nt_checkpoint_rows_init(nt_checkpoint_rows *r, const char *path, int fresh);
/* Appends text[r->saved, len) (text: every row so far), flushed to the disk at most once a
 * second (as nt_checkpoint_write); on failure NT_EFAIL and the file cut back to r->saved. */
NT_API int nt_checkpoint_rows_append(nt_checkpoint_rows *r, const char *text, size_t len, nt_error *err);
/* Records r's length and hash in c as the int64 record name. */
NT_API void nt_checkpoint_rows_put(nt_checkpoint *c, const nt_checkpoint_rows *r, const char *name);
/* Reads record name of c, checks the file's first bytes against it and cuts the file to
 * them; *text (malloc, NUL-terminated; the caller frees) and *len the rows.  NT_EINPUT
 * when the file is missing, short or damaged (hash differs), naming it and c's file. */
NT_API int nt_checkpoint_rows_load(nt_checkpoint_rows *r, const nt_checkpoint *c, const char *name, char **text,
                                   size_t *len, nt_error *err);

/* The run's records: what it is a run of (spec hash and path, a hash of the data, d, the
 * ledger's quantity names, a hash of every file the spec refers to) and its state (step,
 * optimizer, loss sums, wall time, theta, every ledger accumulator: Q(0), measured,
 * predicted, gradient flow and its source integral, the three term sums, size, max gap).
 * _load checks the first against spec, data and q (NT_EINPUT
 * naming the record: a checkpoint of another spec, data or model) and fills the rest. */
NT_API void nt_train_state_save(nt_checkpoint *c, const nt_spec *spec, const nt_data *data,
                         const nt_train_state *s, const double *theta, const nt_quantity *q, int nq);
NT_API int nt_train_state_load(const nt_checkpoint *c, const nt_spec *spec, const nt_data *data,
                        nt_train_state *s, double *theta, nt_quantity *q, int nq, nt_error *err);

/* A logged row (nt_train_log) as a 9-value float64 record in field order (noether train's
 * cli.last_log, kept for the summary of a resumed run) and back. */
NT_API void nt_train_log_save(nt_checkpoint *c, const char *name, const nt_train_log *L);
NT_API int nt_train_log_load(const nt_checkpoint *c, const char *name, nt_train_log *L, nt_error *err);

/* Projects theta onto Fix(T) = {T theta = theta} of each named discrete symmetry of list
 * (built-in swaps and sign flips: orthogonal involutions, so the projection is
 * (theta + T theta)/2), then adds a seeded step of norm `perturb` in Fix(T)^perp of the
 * first.  NT_EINPUT naming an unknown or unsuitable name. */
NT_API int nt_start_fixed(const nt_model *m, const nt_transform *list, int n, const nt_init *init,
                   double *theta, nt_error *err);
/* The initial theta of a spec, as every noether command takes it without --params:
 * nt_init_params(spec->init), then, when init.fixed_point names symmetries, nt_start_fixed
 * on list (NULL: the model's catalogue, nt_catalogue; the built-in swaps and sign flips are
 * the only ones it accepts).  NT_EINPUT naming the spec file and the fixed point. */
NT_API int nt_spec_theta(const nt_spec *spec, const nt_transform *list, int n, double *theta, nt_error *err);
/* The spectrum of H_gamma restricted to Fix(T)^perp at theta (docs/theory.md §4: the breaking
 * directions of a built-in swap or sign flip), ascending, into lam; returns its dimension
 * (nt_breaking_dim).  coef (may be NULL) receives the components of theta's breaking part
 * P_perp theta on the eigenvectors: under GD with step lr, to first order,
 * |P_perp theta_t|^2 = sum_i coef_i^2 (1 - lr lam_i)^(2t). */
NT_API int nt_breaking_dim(const nt_model *m, const nt_transform *t);
/* Its orthonormal basis, rows of O (nt_breaking_dim x d): (e_x - T e_x)/|e_x - T e_x| over
 * the coordinates x of unit a. */
NT_API void nt_breaking_basis(const nt_model *m, const nt_transform *t, double *O);
NT_API int nt_breaking_spectrum(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta,
                                const nt_transform *t, double *lam, double *coef, nt_error *err);

/* ------------------------------------------------------------------ fixed points along a run */

/* docs/theory.md §4 along a training run (src/dynamics/fixed_track.c).  A discrete symmetry
 * T (rho = I) is tracked by the distance of theta to its fixed-point set,
 *     dist_T(theta) = |theta - T theta| / 2,
 * which is |theta - P theta| for the projection P = (I + T)/2 onto Fix(T) of an orthogonal
 * involution (every built-in swap and sign flip).  1 when t is tracked: discrete, not an
 * equivariance. */
NT_API int nt_fixed_tracked(const nt_transform *t);
/* dist[i] = dist_T(theta) for every tracked entry of list, 0 for the others.  NT_EFAIL out
 * of memory (d doubles of scratch). */
NT_API int nt_fixed_distances(const nt_model *m, const nt_transform *list, int n, const double *theta, double *dist,
                              nt_error *err);

/* The distances at the logged steps of a run that the stability report needs: the first
 * logged step (the start), the second and third (the first two after it) and the latest. */
typedef struct {
    int n;                       /* entries of the list (arrays of n, 0 for untracked entries) */
    int64_t d;
    int n_logs;                  /* logged steps so far */
    int64_t last_step;           /* the latest logged step */
    int64_t first_step, second_step;   /* the second and third logged steps (0 until logged) */
    double *initial, *latest;    /* distances at the first and at the latest logged step */
    double *first, *second;      /* ... at the second and third logged steps */
    double *work;                /* d doubles of scratch */
} nt_fixed_track;

NT_API int nt_fixed_track_init(nt_fixed_track *tr, const nt_model *m, int n, nt_error *err);  /* NT_EFAIL: memory */
/* Records theta at a logged step: latest = the distances there (and initial, first, second
 * at the first three logged steps). */
NT_API void nt_fixed_track_log(nt_fixed_track *tr, const nt_model *m, const nt_transform *list, int64_t step,
                               const double *theta);
NT_API void nt_fixed_track_free(nt_fixed_track *tr);
/* The track into a checkpoint as two records (noether train's cli.distances and cli.logs):
 * dist_name holds 4 (n + 1) doubles, initial, latest, first and second, each followed by a
 * 0; logs_name the int64 last_step, first_step, second_step, n_logs.  _load fills a track of
 * the same n (nt_fixed_track_init) from them: NT_EINPUT naming the file and record when one
 * is missing or of another size. */
NT_API void nt_fixed_track_save(nt_checkpoint *c, const nt_fixed_track *tr, const char *dist_name, const char *logs_name);
NT_API int nt_fixed_track_load(const nt_checkpoint *c, nt_fixed_track *tr, const char *dist_name, const char *logs_name,
                               nt_error *err);

/* The stability of each fixed point a run started on (spec->init.fixed_point, each name as it
 * matches entries of list), docs/theory.md §4: the spectrum lambda of H_gamma on Fix(T)^perp at
 * theta0 (nt_breaking_spectrum), the per-step factor of GD/SGD along those directions,
 * max_i |1 - lr lambda_i| (stable when < 1), and the distance the linearized dynamics predicts
 * at the first logged step t_1 after the start, sqrt(sum_i c_i^2 (1 - lr lambda_i)^(2 t_1)),
 * against the measured one; and the factor the run shows between its second and third logged
 * steps, (d_2 / d_1)^(1/(t_2 - t_1)). */
typedef struct {
    char name[96];
    int entry;                    /* index into list */
    int breaking_dimension;       /* nt_breaking_dim */
    double lambda_min, lambda_max;
    double distance_initial, distance_final;   /* at the first and latest logged steps */
    int predicted;                /* optimizer gd or sgd: the factor and the distance below (GD's,
                                     computed for every optimizer) are predictions for the run */
    int stable_predicted;         /* predicted_factor < 1 */
    double predicted_factor;      /* max_i |1 - lr lambda_i| */
    int64_t first_log_step;       /* t_1, -1 with fewer than two logged steps */
    double predicted_distance_first_log, measured_distance_first_log;   /* NAN without t_1 */
    double measured_factor;       /* NAN with fewer than three logged steps or a zero distance */
} nt_fixed_point;

typedef struct {
    int n;
    nt_fixed_point *points;       /* one per (name, matching entry), in the order of the names */
} nt_fixed_points;

/* theta0: the run's start; e: any engine of the model (its chunk sets the order of the sums:
 * noether train's has one chunk of up to NT_ENGINE_CHUNK samples and 16 tangents); tr: the run's track on
 * the same list (NT_EINPUT otherwise), or NULL (no run: the distances at theta0, nothing
 * measured).  A name that matches no entry, or only entries without breaking directions (not
 * a built-in swap or sign flip), is left out.  NT_EFAIL out of memory.  out is freed with
 * nt_fixed_points_free (nothing to free after an error). */
NT_API int nt_fixed_points_analyse(nt_engine *e, const nt_spec *spec, const nt_dataset *ds, const nt_transform *list,
                                   int n, const double *theta0, const nt_fixed_track *tr, nt_fixed_points *out,
                                   nt_error *err);
NT_API void nt_fixed_points_free(nt_fixed_points *fp);

/* ------------------------------------------------------------------ discovery */

/* The conservation laws of gradient flow a model has (docs/theory.md §7): d - dim Lie(W)(theta),
 * W the fields grad_theta f_k(theta; x) over outputs k and inputs x, Lie(W) what their
 * brackets generate.  A count for the model under any data and loss (x ~ N(0, I) stands for
 * "any data"), measured at theta. */
#define NT_DISCOVER_TOL 1e-7   /* a candidate joins the span when its residual exceeds this part of it */
#define NT_DISCOVER_SEED 31
#define NT_DISCOVER_MAX_DEPTH 4

typedef struct {
    int samples;     /* random inputs (0: 2 max(d/K, input) + 16: rows for every field) */
    double tol;      /* rank tolerance (0: NT_DISCOVER_TOL) */
    double step;     /* depth 3's differences: h |X_c| = step max(1, |theta|) (0: 1e-4), x10 per level */
    int depth;       /* deepest bracket level, 1..NT_DISCOVER_MAX_DEPTH (0: that); from 3 on, the
                      * levels stop at the first that adds nothing */
    uint64_t seed;   /* the inputs and the random combinations (0: NT_DISCOVER_SEED) */
    void (*progress)(void *ctx, const char *phase);
    void *ctx;
} nt_conservation_opts;

typedef struct {
    int conserved;          /* d - rank at the deepest level */
    int depth;              /* levels computed: 1 the fields, 2 their brackets (exact), 3 brackets of
                             * brackets (central differences of exact brackets), 4 (differences of those) */
    int stagnated;          /* the deepest level added nothing: the count is final */
    int rank[NT_DISCOVER_MAX_DEPTH];         /* the span's dimension after levels 1..depth */
    int candidates[NT_DISCOVER_MAX_DEPTH];   /* random combinations tried at each level */
    int discarded;          /* candidates of levels 3.. whose differences crossed a kink of an activation */
    int samples, products;  /* inputs, and products with the engine */
    int rounds;             /* rounds of fresh inputs for J's rows, the last adding nothing (saturated) */
    double tol, step;
    double accepted_min;    /* the smallest residual ratio that joined the span, */
    double rejected_max;    /* the largest that did not: the gap the tolerance sits in */
    int sv_first, n_sv;     /* singular values of the normalized candidates number sv_first..+n_sv, */
    double sv[8], sv_max;   /* relative to the largest (sv_max), around the rank (n_sv 0: d too large) */
    double seconds;
    int n_laws;             /* = conserved: an orthonormal basis of the laws' gradients at theta, */
    double *laws;           /* the complement of Lie(W)(theta) (n_laws x d) */
} nt_conservation;

/* e: an engine of m (any chunk, k >= 1); theta borrowed.  NT_EINPUT when the d x d basis does
 * not fit in memory, NT_EFAIL out of memory or an engine error.  nt_conservation_free after
 * NT_OK (nothing to free otherwise). */
NT_API int nt_conservation_count(nt_engine *e, const nt_model *m, const double *theta,
                                 const nt_conservation_opts *opts, nt_conservation *o, nt_error *err);
NT_API void nt_conservation_free(nt_conservation *o);

/* The Lie algebra of the affine symmetries xi = A theta + c (J_x(theta) xi = 0 for every x and
 * theta), a null space over random inputs and points (docs/theory.md §7); the equivariances
 * (J xi = B f) beside it in the full space; the quadratic charges of its symmetric part. */
#define NT_DISCOVER_FULL_MAX 48          /* d up to this: the full space (d^2 + d + K^2 unknowns) */
#define NT_DISCOVER_STRUCTURED_MAX 4096  /* unknowns of the structured space (hidden layers taken in order) */
#define NT_DISCOVER_DENSE_MAX 2048       /* d up to this: the basis as dense d x d generators */
#define NT_DISCOVER_ALGEBRA_TOL 1e-9     /* singular values below this part of the largest are zero */
typedef struct {
    char search_space[160];     /* which space was searched, in words */
    int lie_algebra_dim;        /* symmetries found (B = 0) */
    int equivariances;          /* further dimensions with B != 0 (full space; -1: not searched) */
    int charges;                /* symmetric generators: charges theta^T A theta / 2 + c^T theta */
    int charges_independent;    /* the rank of their gradients A theta + c at theta */
    int missing_from_catalogue; /* dimensions of the algebra's span at theta outside the catalogue's */
    int catalogue_rank;         /* the span of the catalogue's continuous symmetries at theta */
    int points, samples;        /* random points (theta first) and inputs */
    double tol, sv_cut[2];      /* the largest singular value counted zero, the smallest counted not (relative) */
    int n_generators;           /* the basis as dense generators (0 when d > NT_DISCOVER_DENSE_MAX): */
    double *A, *c;              /* n_generators x d x d and n_generators x d */
    double seconds;
} nt_algebra;

/* list: the catalogue to compare with (continuous symmetries only).  nt_algebra_free after NT_OK. */
NT_API int nt_discover_algebra(nt_engine *e, const nt_model *m, const double *theta, const nt_transform *list, int n,
                               nt_algebra *o, nt_error *err);
NT_API void nt_algebra_free(nt_algebra *o);

/* The permutations and sign flips of hidden units that are symmetries (docs/theory.md §7),
 * found from the outputs on random inputs at theta and two random points, against what
 * the catalogue's discrete entries (list) generate. */
#define NT_DISCOVER_MAX_MISSING 64
typedef struct {
    int layer;                      /* model.layers index of the dense layer whose outputs are the units */
    int units, orbits;              /* orbits of units under the exchanges found (1: all of S_n) */
    double log10_order;             /* the group they generate: log10 prod_orbits |orbit|! */
    double catalogue_log10_order;   /* the same for the catalogue's exchanges */
    int odd_flips, even_flips;      /* units whose negation (all three parts / inputs only) is one */
} nt_discrete_layer;

typedef struct {
    int n_layers;
    nt_discrete_layer *layers;
    int n_missing, missing_more;    /* found, not generated by the catalogue (names as the catalogue's) */
    char missing[NT_DISCOVER_MAX_MISSING][64];
} nt_discrete;

/* samples: random inputs (0: 64).  nt_discrete_free after NT_OK (nothing to free otherwise). */
NT_API int nt_discover_discrete(nt_engine *e, const nt_model *m, const double *theta, const nt_transform *list, int n,
                                int samples, nt_discrete *o, nt_error *err);
NT_API void nt_discrete_free(nt_discrete *o);

/* All three, and whether the catalogue explains them: the count at a generic point near
 * theta (laws; at_theta beside it: theta itself can be special) equal to the catalogue's
 * independent conserved quantities that hold for any loss (catalogue_laws; -1 not computed),
 * and nothing found that the catalogue lacks. */
#define NT_DISCOVER_MAX_UNEXPLAINED 8
typedef struct {
    nt_conservation laws, at_theta;
    nt_algebra algebra;
    nt_discrete discrete;
    int catalogue_laws;
    int missing;         /* discrete maps and continuous directions the catalogue does not generate */
    int unexplained;     /* the laws' directions outside its quantities' gradients at the point, */
    char unexplained_where[NT_DISCOVER_MAX_UNEXPLAINED][160];   /* each: the tensors carrying it */
    int not_conserved;   /* its quantities whose gradient leaves the laws' span (claimed, not conserved) */
    int explained;
} nt_discovery;

/* nt_discovery_free after NT_OK (nothing to free otherwise). */
NT_API int nt_discover(nt_engine *e, const nt_model *m, const double *theta, const nt_transform *list, int n,
                       const nt_conservation_opts *opts, nt_discovery *o, nt_error *err);
NT_API void nt_discovery_free(nt_discovery *o);

/* ------------------------------------------------------------------ spectra */

/* A symmetric linear operator on R^n, applied to a block of k vectors at once:
 * Y (k x n, rows) = A X (k x n, rows).  block: the largest k the callback takes at once.
 * The callback returns NT_OK or an error code with err filled; the spectral routines stop
 * at the first error and return it. */
typedef int (*nt_apply_fn)(void *ctx, int k, const double *X, double *Y, nt_error *err);
typedef struct { int64_t n; int block; nt_apply_fn apply; void *ctx; } nt_operator;

/* inner with each product counted as progress of phase (total: the products expected, 0 not
 * known); reports done 0 at once.  c holds the count and must outlive the operator. */
typedef struct { nt_operator inner; const nt_progress *p; const char *phase; int64_t done, total; } nt_counted_operator;
NT_API nt_operator nt_counted_operator_new(nt_counted_operator *c, const nt_operator *inner, const nt_progress *p,
                                           const char *phase, int64_t total);

/* All eigenvalues, ascending, of the matrix built from products with unit vectors
 * (symmetrized, LAPACK dsyevr); vectors (n x n, row i = eigenvector i) when not NULL. */
NT_API int nt_eigen_dense(const nt_operator *op, double *values, double *vectors, nt_error *err);
/* The nev largest (descending) or smallest (ascending) eigenvalues by a restarted Lanczos
 * method: ARPACK's implicitly restarted Lanczos (dsaupd/dseupd) below n = 5000, the
 * thick-restart Lanczos of nt_eigen_block_lanczos with single products from there (fewer
 * products, the same test; measured in src/spectrum/lanczos.c); tol 0 means DBL_EPSILON; the
 * dense path when nev >= n - 1; vectors (nev x n rows) when not NULL; NT_EINPUT for nev
 * outside 1..n, NT_EFAIL with ARPACK's info otherwise; *n_products (may be NULL) counts
 * products. */
NT_API int nt_eigen_lanczos(const nt_operator *op, int nev, int largest, double tol, double *values,
                     double *vectors, int *n_products, nt_error *err);
/* The same by ARPACK alone, whatever n (nt_eigen_lanczos's small-n path). */
NT_API int nt_eigen_arpack(const nt_operator *op, int nev, int largest, double tol, double *values,
                           double *vectors, int *n_products, nt_error *err);
/* The block method's sizes: block b (products per step, op->apply called with at most
 * op->block at once; 1..NT_BLOCK_LANCZOS_MAX_B), basis (the most vectors kept, locked ones
 * included) and keep (Ritz vectors kept at a restart); 0 takes nt_block_lanczos_default's:
 * b = min(op->block, 2) (larger blocks cost more products, measured in lanczos.c), keep 2 nev
 * (top) or 3 nev (bottom), basis max(3 keep, keep + 12 b). */
#define NT_BLOCK_LANCZOS_MAX_B 16
typedef struct { int block, basis, keep; } nt_block_lanczos_opts;
NT_API void nt_block_lanczos_default(const nt_operator *op, int nev, int largest, nt_block_lanczos_opts *o);
/* The nev largest (descending) or smallest (ascending) eigenpairs by a thick-restart block
 * Lanczos with locking (src/spectrum/block_lanczos.c), products in blocks of o->block; the
 * same convergence test as ARPACK's (residual <= tol max(eps^(2/3), |theta|), tol 0 meaning
 * DBL_EPSILON), the same outputs as nt_eigen_lanczos; o may be NULL (the defaults). */
NT_API int nt_eigen_block_lanczos(const nt_operator *op, int nev, int largest, double tol,
                                  const nt_block_lanczos_opts *o, double *values, double *vectors, int *n_products,
                                  nt_error *err);
/* Stochastic Lanczos quadrature: n_probes Rademacher probes (entry i of probe p is +1 when
 * the low bit of nt_rand_u64(seed, p, i) is set), m steps each: nodes and weights
 * (n_probes * m; unused steps weigh 0), weights summing to 1; its first two moments are the
 * Hutchinson estimates of tr(A)/n and tr(A^2)/n from the same probes. */
NT_API int nt_slq(const nt_operator *op, int n_probes, int m, uint64_t seed, double *nodes, double *weights,
           nt_error *err);
/* The density sum_j w_j N(x; theta_j, sigma^2) on a grid. */
NT_API void nt_density_grid(const double *nodes, const double *weights, int n_nodes, double sigma,
                     const double *x, int npts, double *rho);
/* *trace = tr(A) ~ (1/P) sum_p v_p^T A v_p over P Rademacher probes; *std_error (may be
 * NULL; NAN for one probe).  NT_EINPUT for n or n_probes below 1. */
NT_API int nt_hutchinson(const nt_operator *op, int n_probes, uint64_t seed, double *trace, double *std_error,
                         nt_error *err);

/* The Hessian H_gamma at theta as an operator on the coordinates [off, off + n) of theta
 * (a restriction to named tensors), deflated by the orthonormal rows of Q (r x d) when Q is
 * not NULL: x -> P H P x, P = I - Q^T Q.  The context owns workspaces of the engine's block;
 * theta, ds and Q are borrowed, not copied.  It freezes e at (theta, ds) (nt_engine_freeze,
 * up to 2 GiB kept) until nt_hessian_operator_free, which thaws e and frees the workspaces.
 * nt_hessian_operator fills op; NT_EINPUT for coordinates outside theta, NT_EFAIL out of
 * memory; nt_hessian_operator_free is safe after either. */
typedef struct {
    nt_engine *e;
    const nt_dataset *ds;
    const double *theta;
    int64_t d, off, n;
    const double *Q;
    int r, block;
    double *X, *Y;
} nt_hessian_ctx;

NT_API int nt_hessian_operator(nt_hessian_ctx *h, nt_operator *op, nt_engine *e, const nt_model *m,
                               const nt_dataset *ds, const double *theta, int64_t off, int64_t n, const double *Q,
                               int r, nt_error *err);
NT_API void nt_hessian_operator_free(nt_hessian_ctx *h);

/* An orthonormal basis Q (rank x d, malloc'd; NULL without generators) of the orbit span of
 * the continuous symmetries (B = 0) of list at theta, by a dense SVD of the n_gen x d
 * generator matrix; sv (malloc'd, n_gen entries) its singular values, descending.  Returns
 * the rank, the count of those above tol * sv[0].  The caller frees Q and sv. */
NT_API int nt_orbit_basis(const nt_model *m, const nt_transform *list, int n, const double *theta, double tol,
                   double **Q, double **sv, int *n_gen);

/* What the continuous symmetries (B = 0) of list predict at theta, from the generators'
 * structure (src/spectrum/orbit.c; no d x m matrix): the orbit rank (singular values of the
 * generator matrix above tol * the largest) and the eigenvalues of H_gamma at a critical
 * point of L_gamma with their multiplicities (S1gamma): 2 gamma on the span of the symmetric
 * linear generators, gamma on the shifts', 0 on the antisymmetric ones' (all 0 when
 * gamma = 0).  More than 4000 generators: rank -1, nothing computed. */
typedef struct {
    int generators, rank;
    double tol;
    double *sv;          /* singular values, descending (generators of them) */
    int refined;         /* small singular values recomputed past the Gram matrix's squaring */
    int n_values;        /* predicted eigenvalues at a critical point */
    double value[3];
    int multiplicity[3];
    char what[3][48];
    int unpredicted;     /* affine or non-symmetric generators: no closed-form eigenvalue */
    int shift_rank;      /* the pure shifts' span: eigenvalue gamma of H_gamma at every theta */
} nt_orbit;

/* Fills o (freed with nt_orbit_free); returns o->rank, 0 when not analysed (rank -1). */
NT_API int nt_orbit_analyse(const nt_model *m, const nt_transform *list, int n, const double *theta, double tol, nt_orbit *o);
NT_API void nt_orbit_free(nt_orbit *o);
/* (S1gamma) on the whole orbit span: q random combinations xi of the symmetry generators,
 * H_gamma xi against -A^T g_gamma + gamma (xi + A^T theta) (g the gradient of L_gamma at
 * theta) as vectors, one block product; the worst relative difference, each measured
 * against |lhs| + |rhs| + s_H |xi| with s_H = |H v| / |v| on a random v (into
 * *curvature_scale, may be NULL); 0 without generators.  q is cut to nt_engine_k(e) - 1
 * (at least 1: v takes the block's last row); the combinations' coefficients and v are
 * N(0, 1) draws of seed. */
NT_API int nt_orbit_s1_check(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                             const double *theta, const double *g, int q, uint64_t seed, double *worst,
                             double *curvature_scale, nt_error *err);

/* The S_n sector of hidden layer `layer`: theta projected onto Fix(S_n) into theta_sym
 * (copied as is unless `project`), and the eigenvalues (ascending) of H_gamma there on the
 * breaking subspace into lam (room for nt_sn_sector_dim: (n - 1) times the size of a
 * unit). */
NT_API int nt_sn_sector_dim(const nt_model *m, int layer);
NT_API int nt_sn_sector(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, int layer,
                        int project, double *theta_sym, double *lam, nt_error *err);
/* Groups of ascending values closer than tol: their sizes into mult; returns the count. */
NT_API int nt_multiplicities(const double *lam, int n, double tol, int *mult);

/* ------------------------------------------------------------------ verdicts */

/* What a run's measurements say against the theory (docs/theory.md §6), decided in one place
 * (src/analysis/verdict.c) for every reader: the "At a glance" table of noether run's report,
 * its closing lines, summary.json's all_identities_hold and its exit code 3. */
typedef enum {
    NT_VERDICT_ABSENT = -3,          /* not measured in this run: no row, no line */
    NT_VERDICT_NOT_APPLICABLE = -2,  /* nothing to check (no identities, no ledger quantity): said so */
    NT_VERDICT_NONE = -1,            /* a measurement with nothing it must agree with: no mark */
    NT_VERDICT_FAILS = 0,
    NT_VERDICT_HOLDS = 1
} nt_verdict;

/* The ledger closes at round-off (F3): its largest max_gap, relative to the size of Q's
 * terms (about 1e-15 when it holds), must stay below this. */
#define NT_LEDGER_TOL 1e-8
/* A measured number against its closed form: the radial curvature of a homogeneous model
 * against k(k-1)E[u^T f] + k^2 E[f^T U f] over |theta|^2 plus gamma (§3), within
 * NT_CLOSED_FORM_TOL (|r| + |c|); a scale-invariant block's gradient fraction in the top-k
 * eigenspace against (S1gamma)'s prediction p, within NT_CLOSED_FORM_TOL |p|. */
#define NT_CLOSED_FORM_TOL 1e-8

/* ReLU units dead on every sample of ds at theta (src/spectrum/dead.c): each one's incoming
 * weights, bias and outgoing weights are coordinates where every derivative of L vanishes,
 * eigenvectors of H_gamma with eigenvalue gamma beside the symmetries' (docs/theory.md §3).
 * units: how many; directions: their coordinates, each counted once.  Both -1 (not computed)
 * for models other than chains of dense layers and activations. */
typedef struct { int units; int64_t directions; } nt_dead;
NT_API int nt_dead_units(const nt_model *m, const nt_dataset *ds, const double *theta, nt_dead *out, nt_error *err);

/* Lyu & Li (docs/theory.md §2, a k-homogeneous model under a margin loss) along a run's
 * logged rows (src/analysis/margin.c): the normalized margin min_n y_n f_n / |theta|^k and
 * |theta|^2 from the stretch where the margin stays positive (the data separated) to the end.
 * Gradient descent there keeps increasing |theta|^2 and the normalized margin. */
typedef struct {
    int rows;                        /* logged rows with a finite margin */
    int separated;                   /* 1 when the margin is positive from some row to the last */
    int rows_separated;              /* the rows of that stretch (1: no step after separation logged) */
    double separated_step;           /* the first step of that stretch (NAN when not separated) */
    double margin_at_separation, margin_final;
    double norm2_at_separation, norm2_final;
    int margin_falls;                /* rows after separation where the margin fell below the row before */
    int norm2_falls;                 /* the same for |theta|^2 */
    double largest_fall;             /* the largest such fall of the margin, relative to the value before */
} nt_margin_growth;
/* From n rows of (step, margin, norm2); NT_EINPUT naming the array when one is NULL or n < 0. */
NT_API int nt_margin_analyse(int n, const double *step, const double *margin, const double *norm2,
                             nt_margin_growth *g, nt_error *err);

/* The plain numbers a run measured (the options of nt_verdicts_decide); counts of -1 mean
 * "not measured". */
typedef struct {
    /* the identities (F1gamma), (S1gamma), (S2gamma), (D1gamma) at each analysis checkpoint,
     * each decided by nt_check against NT_IDENTITY_TOL */
    int identities;                  /* identities checked at every checkpoint (0: none to check) */
    int checkpoints;
    const int *identities_holding;   /* per checkpoint: how many held */
    /* the training ledger (F3) */
    int quantities;                  /* ledger quantities (0: none to check) */
    double ledger_max_gap;           /* the largest max_gap over them (NAN fails) */
    int stopped;                     /* training stopped before its last step (a diverged run) */
    /* eigenvalues of H_gamma at gamma (S1gamma): the pure shifts force at least their rank */
    int flat_found;                  /* counted in the final spectrum (-1: not every eigenvalue known) */
    int flat_predicted;              /* the rank of the shifts' span */
    /* a homogeneous model: the final radial curvature and its closed form (§3) */
    int sharp;                       /* 1 when measured */
    double radial_curvature, radial_closed_form;
    /* scale-invariant blocks: the gradient's fraction in the top-k eigenspace (§3) */
    int blocks;
    const double *block_measured, *block_predicted;
    /* S_n sectors (§4): per hidden layer, the multiplicity of the breaking eigenvalues */
    int sectors;
    const int *sector_found;         /* -1: not computed for that layer */
    const int *sector_predicted;     /* n - 1 */
    /* a homogeneous model under a margin loss (Lyu & Li): NULL when not measured */
    const nt_margin_growth *margin;
    /* noether discover's verdict on the catalogue (nt_discover): NULL when not computed */
    const nt_discovery *discovery;
} nt_run_facts;

/* The verdicts, each a nt_verdict:
 *   identities  NOT_APPLICABLE without identities, HOLDS when every one held at every checkpoint;
 *   ledger      NOT_APPLICABLE without quantities, HOLDS when ledger_max_gap < NT_LEDGER_TOL;
 *   training    FAILS when the run stopped early, NONE otherwise;
 *   flat        ABSENT when not counted, HOLDS when flat_found >= flat_predicted;
 *   sharp       ABSENT when not measured, HOLDS within NT_CLOSED_FORM_TOL;
 *   block[i]    HOLDS within NT_CLOSED_FORM_TOL;
 *   sector[i]   ABSENT when not computed, HOLDS when the multiplicity found is n - 1;
 *   margin      ABSENT when not measured, NOT_APPLICABLE when the data were never separated
 *               or no logged row follows separation,
 *               HOLDS when neither the normalized margin nor |theta|^2 fell after separation;
 *   laws        ABSENT when not computed, HOLDS when the catalogue explains every conservation
 *               law the model has (nt_discovery.explained); informative: the exit code does
 *               not read it (it judges the catalogue, not the run). */
typedef struct {
    nt_verdict identities, ledger, training, flat, sharp, margin, laws;
    int blocks, sectors;
    nt_verdict *block;    /* blocks of them (malloc'd) */
    nt_verdict *sector;   /* sectors of them (malloc'd) */
} nt_verdicts;

/* Decides every verdict of f into v (freed with nt_verdicts_free, also after an error).
 * NT_EINPUT naming the field for inconsistent facts (a negative count, a missing array, more
 * identities holding than checked); NT_EFAIL out of memory. */
NT_API int nt_verdicts_decide(const nt_run_facts *f, nt_verdicts *v, nt_error *err);
NT_API void nt_verdicts_free(nt_verdicts *v);

/* ------------------------------------------------------------------ a run's computations */

/* The tally of a checkpoint's identities (src/analysis/run.c): how many of res[0..n) hold,
 * and the worst of their first- and second-order residuals (0 when n = 0). */
NT_API void nt_check_tally(const nt_check_result *res, int n, int *held, double *worst);

/* docs/theory.md §4 along a run: for each fixed point the spec starts on (spec->init.fixed_point,
 * each name as it matches entries of list), the spectrum of H_gamma on Fix(T)^perp at theta
 * (nt_breaking_spectrum without coefficients: dsyev 'N') and the per-step factor of the
 * linearized GD/SGD dynamics there, max_i |1 - lr lambda_i|. */
typedef struct {
    char name[96];
    double lambda_min;   /* the lowest breaking eigenvalue */
    double factor;       /* max_i |1 - lr lambda_i| (0 without breaking directions) */
} nt_breaking_factor;
/* *out (malloc'd, free()) gets one per (name, matching entry), *n_out their number; *out NULL
 * and *n_out -1 when none applies (no fixed point, or an optimizer other than gd and sgd).
 * NT_EFAIL out of memory. */
NT_API int nt_breaking_factors(nt_engine *e, const nt_spec *spec, const nt_dataset *ds, const double *theta,
                               const nt_transform *list, int n, nt_breaking_factor **out, int *n_out,
                               nt_error *err);

/* The growth of the distance to a starting fixed point against the linearized dynamics along
 * the run: per step the breaking part grows by at most f (nt_breaking_factor), measured at
 * each of n_cp analysis checkpoints (steps[k], factor[k]; NAN where not measured); log f is
 * taken linear in the step between checkpoints (trapezoids), so predicted =
 * exp(sum_k (s_{k+1} - s_k) (log f_k + log f_{k+1}) / 2) over the window from checkpoint 1 to
 * the last (the first steps leave out: the start's round-off is not yet along the most
 * unstable direction).  measured = d_to / d_from, the distances at the window's ends;
 * predicted_from_start = factor[0]^(window's steps).  NT_EINPUT with n_cp < 3. */
typedef struct {
    double from_step, to_step;
    double measured, predicted, predicted_from_start;
} nt_growth;
NT_API int nt_fixed_point_growth(int n_cp, const double *steps, const double *factor, double d_from, double d_to,
                                 nt_growth *g, nt_error *err);

/* The density of SLQ nodes and weights (n of them) broadened by a Gaussian of sigma a
 * hundredth of the spectral range of the weighted nodes (at least 1e-12), on npts >= 2 grid
 * points from lo - 5 sigma to hi + 5 sigma; returns sigma. */
NT_API double nt_density_broaden(const double *nodes, const double *weights, int n, int npts, double *grid,
                                 double *rho);
/* "holds", "fails", "not applicable", "none" or "absent". */
NT_API const char *nt_verdict_name(nt_verdict v);

/* ------------------------------------------------------------------ the spectrum's analyses */

/* Everything noether spectrum reports at theta, computed by one call (src/spectrum/analysis.c
 * and predict.c), every verdict decided there: both ends of the spectrum of H_gamma (dense or
 * Lanczos), its trace and density, the gradient's alignment, and what the symmetries predict
 * beside them (docs/theory.md §3-§4): the flat view (nt_orbit), the sharp view of a
 * homogeneous model, the S_n sectors and mirror margins, the scale-invariant alignment. */
typedef enum { NT_METHOD_AUTO, NT_METHOD_DENSE, NT_METHOD_LANCZOS } nt_spectrum_method;

struct nt_spectrum;
/* The seeds of the random probes of nt_spectrum_analyse: the trace's Hutchinson probes and
 * the density's SLQ probes (nt_hutchinson, nt_slq). */
#define NT_TRACE_SEED 17
#define NT_DENSITY_SEED 23
typedef struct {
    int top, bottom;             /* eigenvalues at each end (clipped to n) */
    nt_spectrum_method method;   /* AUTO: dense up to n = 3000; Lanczos falls back to dense when
                                    an end asks for n - 1 or more (ARPACK needs nev < n - 1) */
    const char *block;           /* H restricted to a tensor or a layer (nt_layout_block); NULL: all of
                                    theta (and only then the alignment and the predictions) */
    int deflate;                 /* P H P, P the projector off the orbit span (no sharp view) */
    int trace;                   /* Hutchinson, 100 probes (seed NT_TRACE_SEED = 17); exact beside it when dense */
    int density;                 /* SLQ, 10 probes x min(n, 80) steps (seed NT_DENSITY_SEED = 23), with its moments */
    int sectors;                 /* S_n sectors of the hidden layers and mirror margins */
    int each_generator;          /* |H xi| of every symmetry generator, a product each */
    /* optional: the progress of every phase (the products of the ends, the trace's and the
     * density's probes, the sectors' layers, the predictions), and a call once the ends are
     * known (with ctx) */
    nt_progress progress;
    void (*ends_known)(void *ctx, const struct nt_spectrum *r);
    void *ctx;
} nt_spectrum_opts;

/* The flat view (theory.md §3, (S1gamma)): nt_orbit_analyse at rank tolerance 1e-10, each
 * predicted eigenvalue beside the count found in the whole spectrum, (S1gamma) on random
 * combinations (nt_orbit_s1_check), and per generator |H xi| against |-A^T g + gamma (xi +
 * A^T theta)| (each_generator), each difference relative to the two sides plus s_H |xi|. */
typedef struct {
    nt_orbit orbit;          /* orbit.rank -1: more than 4000 generators, not analysed */
    int found[3];            /* eigenvalues within found_tol of orbit.value[v]; -1 without the whole spectrum */
    double found_tol;        /* 1e-9 max |lambda| (theory.md §6) */
    int s1_combinations;     /* random combinations checked (0 without generators) */
    double s1_worst, curvature_scale;
    int n_each;              /* each_generator: symmetry generators, and per generator: */
    double *h_xi_norm, *h_xi_predicted;
    double each_worst;
} nt_flat_view;

/* The sharp view of a bias-free k-homogeneous model (theory.md §3): theta^T H_gamma theta /
 * |theta|^2 against (k(k-1) E[u^T f] + k^2 E[f^T U f] + gamma |theta|^2) / |theta|^2. */
typedef struct {
    int applies;             /* 0: not homogeneous, biases, a block or deflation: nothing below */
    double degree, radial_curvature, closed_form, lambda_max;
    double relative_difference;   /* nt_rel_diff of the two: round-off when the identity holds */
} nt_sharp_view;

/* H_gamma on the breaking subspace of S_n at the point where a hidden layer's units are equal
 * (theory.md §4): every eigenvalue n - 1 times (a repeated one a multiple of it), so the
 * multiplicity found is the greatest common divisor of the sizes of the groups of eigenvalues
 * closer than tol = 1e-9 max |lambda|. */
typedef struct {
    int layer, units, dimension;   /* layer: the hidden layer's place (1: the first), as nt_sn_sector takes it */
    int layer_index;               /* the model.layers index of the dense layer computing the units (the
                                      index generator names and noether's outputs carry) */
    int skipped;             /* dimension beyond 4000: nothing below */
    int predicted, found, min, max, groups;   /* multiplicities: n - 1, the gcd, the group sizes */
    int holds;               /* found a positive multiple of predicted */
    double tol, lambda_min, lambda_max;       /* lambda_min: the stability margin (gamma included) */
    double *eigenvalues;     /* dimension of them, ascending */
} nt_sector;

/* A mirror (sign flip of an odd unit) at the point where the unit is dead: lambda_min of
 * H_gamma on Fix(T)^perp, stable when positive (theory.md §4). */
typedef struct { char name[96]; int dimension; double margin; int stable; } nt_mirror;

/* A scale-invariant block S (xi = P_S theta, theory.md §3): the fraction of |P_S g|^2 in the
 * top-k eigenspace, measured, beside the one (S1gamma) predicts, sum_i (lambda_i - 2 gamma)^2
 * (v_i^T P_S theta)^2 / |(H_gamma - 2 gamma) P_S theta|^2. */
typedef struct { char name[96]; int k; double gradient_norm, measured, predicted; } nt_scale_alignment;

typedef struct nt_spectrum {
    int64_t d, n;            /* parameters; the operator's size (a block's, or d) */
    int dense, top, bottom, products;
    double loss, grad_norm;  /* L_gamma and |g_gamma| at theta */
    double *top_values, *bottom_values;       /* descending / ascending */
    double *top_vectors, *bottom_vectors;     /* rows of n */
    double *values;          /* dense: all n, ascending; NULL otherwise */
    int at_gamma;            /* dense: eigenvalues within at_gamma_tol of gamma; -1 otherwise */
    double at_gamma_tol;     /* 1e-9 max |lambda| */
    int deflated;            /* deflate: the dimensions removed (the orbit rank at tolerance 1e-10) */
    int trace_probes;        /* trace: */
    double trace, trace_std_error, trace_exact;   /* exact: NAN unless dense */
    int density_probes, density_steps;       /* density: nodes and weights (probes x steps) */
    double *nodes, *weights;
    /* moments k = 1, 2 (tr(H^k)/n) over the probes, their standard errors, the probes that
     * would bring each under 1 % of its moment, and (dense) the exact ones (NAN otherwise) */
    double moment[2], moment_std_error[2], moment_probes_for_1_percent[2], moment_exact[2];
    double gradient_fraction_in_top;         /* |P_top g|^2 / |g|^2; NAN with a block */
    int has_flat;            /* the predictions (no block): */
    nt_flat_view flat;
    nt_sharp_view sharp;
    int n_sectors, n_mirrors, n_scale;
    nt_sector *sectors;
    nt_mirror *mirrors;
    nt_scale_alignment *scale;
    /* seconds of each phase */
    double t_gradient, t_operator, t_eigenvalues, t_predictions, t_total;
} nt_spectrum;

/* NT_EINPUT: no tensor named block, top or bottom negative, or a dense spectrum needing more
 * than half the machine's memory (naming the bytes); NT_EFAIL: a loss or gradient that is
 * not finite at theta (before LAPACK or ARPACK sees it), ARPACK or LAPACK failing, or out of
 * memory.  On error r holds nothing to free. */
NT_API int nt_spectrum_analyse(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list,
                               int n_list, const double *theta, const nt_spectrum_opts *o, nt_spectrum *r,
                               nt_error *err);
NT_API void nt_spectrum_free(nt_spectrum *r);

/* The JSON document of noether spectrum --json (docs/interface.md) for r, as that command
 * prints it (cJSON_Print), from r and what was asked: block (NULL: all of theta), deflate,
 * trace, density, sectors as given to nt_spectrum_analyse; all_values: every eigenvalue of a
 * dense spectrum too.  malloc'd text (free()), NULL out of memory. */
typedef struct { const char *block; int deflate, trace, density, sectors, all_values; } nt_spectrum_doc_opts;
NT_API char *nt_spectrum_json(const nt_spectrum *r, const nt_spectrum_doc_opts *o);

/* ------------------------------------------------------------------ the BLAS kernel */

/* OpenBLAS picks its kernel when it loads; on a CPU it does not know it falls back to a
 * generic one several times slower (src/util/blas.c).  nt_blas_select(argv), first thing
 * in main, executes the program once more with OPENBLAS_CORETYPE set to the kernel of the
 * CPU's instruction set (AVX-512: SkylakeX, AVX2 + FMA: Haswell) when OpenBLAS chose one
 * below it and the user set no OPENBLAS_CORETYPE; it returns 0 when nothing was needed,
 * -1 when the re-execution failed (the program goes on with the kernel it has).  A library
 * user that cannot re-execute (a Python process) sets OPENBLAS_CORETYPE to
 * nt_blas_info_get's `better` before OpenBLAS loads.
 * nt_blas_quiet (called by nt_blas_select, and by the Python module when it loads) shortens
 * the time OpenBLAS's idle threads spin after a threaded call from ~80 ms to ~0.3 ms, unless
 * the user set OPENBLAS_THREAD_TIMEOUT: a spinning thread takes a core from the engine's lanes
 * (a gradient right after a threaded dgemm: 7.4 ms against 3.7).  It restarts OpenBLAS's
 * thread pool: call it where no BLAS call is in flight. */
typedef struct {
    char kernel[32];     /* the kernel in use (openblas_get_corename) */
    char fallback[32];   /* the one OpenBLAS chose, when nt_blas_select replaced it ("" otherwise) */
    char better[32];     /* the kernel this CPU should run, when the one in use is below it */
    int cpu_tier;        /* 3 AVX-512, 2 AVX2 + FMA, 1 older */
    int user_set;        /* OPENBLAS_CORETYPE came from the user */
    int selected;        /* nt_blas_select chose the kernel */
} nt_blas_info;

NT_API int nt_blas_select(char **argv);
NT_API void nt_blas_quiet(void);
/* How long OpenBLAS's idle threads spin after a call before they sleep, as log2 of CPU cycles
 * (OpenBLAS's default 28; nt_blas_quiet's 20), and who set it: "noether", "OpenBLAS" (its
 * default), or the variable the user set ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT"). */
NT_API int nt_blas_idle_spin(const char **set_by);
NT_API void nt_blas_info_get(nt_blas_info *info);
NT_API int nt_cpu_tier(void);
/* The kernel to run on a CPU of this tier when `kernel` is below it, else NULL. */
NT_API const char *nt_blas_better_kernel(const char *kernel, int cpu_tier);

/* ------------------------------------------------------------------ small helpers */

/* FNV-1a (64 bits) of n bytes, continuing from h (start with NT_HASH_INIT). */
#define NT_HASH_INIT 0xcbf29ce484222325ULL
NT_API uint64_t nt_hash64(const void *data, size_t n, uint64_t h);
NT_API double nt_norm2(int64_t n, const double *x);                       /* Euclidean norm */
NT_API double nt_rel_diff(int64_t n, const double *a, const double *b);   /* |a-b| / max(|a|+|b|, tiny) */
/* NT_EFAIL naming what is not finite: the loss, or entries of x (n of them; `what`: "gradient",
 * "Hessian-vector products"; x may be NULL), so that nothing non-finite is handed on. */
NT_API int nt_require_finite(double loss, const double *x, int64_t n, const char *what, nt_error *err);

#ifdef __cplusplus
}
#endif
#endif /* NOETHER_H */
