/* helpers.h: shared by the Criterion tests: temporary folders, running the built
 * noether binary as a real process, and small fixtures. */
#ifndef NT_TEST_HELPERS_H
#define NT_TEST_HELPERS_H
#include <stdint.h>
#include "noether.h"

/* A fresh temporary folder (mkdtemp under /tmp); the path is static storage per call site
 * copied into buf (size >= 256). */
void tmpdir_new(char *buf);
/* path = dir/name into buf (size NT_PATH_MAX). */
void path_join(char *buf, const char *dir, const char *name);
/* Writes text to a file; aborts the test on failure. */
void write_text(const char *path, const char *text);
/* Runs `NOETHER_BIN args` through /bin/sh, stdout and stderr captured (malloc'd, may be
 * NULL-ed by passing NULL).  Returns the exit code, or -1 if it did not exit normally. */
int run_noether(const char *args, char **out, char **err);
/* The same under `mpirun -q --oversubscribe -np np` (as root too: the OMPI_ALLOW_RUN_AS_ROOT
 * variables are set; leak detection off for Open MPI's own allocations). */
int run_mpi(int np, const char *args, char **out, char **err);
/* Fills x with N(0, scale^2) draws of stream `stream`. */
void fill_normal(double *x, int64_t n, double scale, uint64_t stream);
/* A model with data, an engine, a random theta and its catalogue. */
typedef struct {
    nt_model m;
    nt_dataset ds;
    nt_engine *e;
    double *theta;
    nt_transform *list;
    int n;
} model_fixture;

/* make_mlp(input, n_hidden, widths, act, K, loss, bias, wd), n_samples of make_data, an
 * engine (chunk, k), theta ~ N(0, 0.36), the catalogue. */
void mf_new(model_fixture *f, int input, int n_hidden, const int *widths, nt_act act, int K, nt_loss loss,
                 int bias, double wd, int64_t n_samples, int64_t chunk, int k, uint64_t seed);
void mf_free(model_fixture *f);
/* Gradient and H v of a model of these layers (input 5, 13 samples, chunks of 5) against
 * central differences, to 1e-7; the errors logged under label. */
void fd_check_layers(const nt_layer *layers, int n_layers, nt_loss loss, double wd, uint64_t seed, double scale,
                     const char *label);
/* The same with the input an image (C, H, W), or (features, 0, 0). */
void fd_check_image(const int image[3], const nt_layer *layers, int n_layers, nt_loss loss, double wd, uint64_t seed,
                    double scale, const char *label);
/* The same with the input a sequence of T tokens of D features. */
void fd_check_sequence(int tokens, int features, const nt_layer *layers, int n_layers, nt_loss loss, double wd,
                       uint64_t seed, double scale, const char *label);
/* 1 when /usr/bin/python3 imports torch and numpy (Debian's python3-torch). */
int torch_available(void);
/* The model m (kept) on n samples of make_data(seed), theta ~ N(0, 0.25), against the PyTorch
 * module `net` (a Python expression, parameters in parameters() order, after the python code
 * `prelude`; torch_loss "ce", "mse", "logistic" or "exp"; m's weight decay): out = relative
 * differences of the loss, the gradient and H v (double backward) on one random v.  Runs the
 * data set as one batch (training mode). */
void torch_diffs(const nt_model *m, const char *prelude, const char *net, const char *torch_loss, int64_t n, uint64_t seed,
                 double out[3]);
#endif

/* A small MLP: input -> [dense w_i, act]... -> dense K, with loss, bias and weight decay. */
void make_mlp(nt_model *m, int input, int n_hidden, const int *widths, nt_act act, int K,
              nt_loss loss, int bias, double wd);
/* n random samples for model m: x ~ N(0, 1), targets valid for the loss. */
void make_data(nt_dataset *ds, const nt_model *m, int64_t n, uint64_t stream);
/* Central differences, 4 points: (-F(x+2h) + 8F(x+h) - 8F(x-h) + F(x-2h)) / 12h, error O(h^4). */
double fd_loss_dir(nt_engine *e, int64_t d, const double *theta, const nt_dataset *ds,
                   const double *v, double h);
void fd_grad_dir(nt_engine *e, int64_t d, const double *theta, const nt_dataset *ds,
                 const double *v, double h, double *out);

/* Starts NOETHER_BIN with argv (argv[0] is the first argument, NULL-terminated) as a child
 * process, stdout and stderr into files (NULL: /dev/null), with default handling of SIGINT
 * and SIGTERM and OPENBLAS_NUM_THREADS=1; returns its pid. */
int spawn_noether(const char *const *argv, const char *out_path, const char *err_path);
/* Waits for a child: its exit code, or 128 + the signal that killed it. */
int wait_noether(int pid);
/* dir/name parsed as JSON (the test fails when it is missing or not JSON); a number in it
 * (the test fails when key is not a number). */
struct cJSON *json_file(const char *dir, const char *name);
double json_num(const struct cJSON *o, const char *key);
/* The whole file (malloc'd, NUL-terminated; NULL when unreadable), its length into *n. */
char *read_file(const char *path, size_t *n);
/* 1 when the two files hold the same bytes (asserts both are readable). */
int same_file(const char *a, const char *b);
/* 1 when two ledger.csv files agree in every column but `seconds` (wall time). */
int same_ledger(const char *a, const char *b);
/* Starts NOETHER_BIN argv (as spawn_noether, stderr into err_path), waits until `file`
 * exists, sends sig and returns the exit code (128 + signal when killed; the plain exit
 * code when it ended before the file appeared). */
int kill_at_file(const char *const *argv, const char *file, int sig, const char *err_path);
/* A tanh MLP 4-5-3 on iris (d = 43, ~100k steps/s, Adam): steps, train.checkpoint_every,
 * log_every, and extra top-level JSON ending in a comma (or ""). */
void tiny_spec(const char *path, long steps, long every, long log_every, const char *extra);
/* Runs noether ARGS expecting exit `want`; stderr into *err_out (malloc'd) when not NULL. */
void expect_rc(const char *args, int want, char **err_out);
/* Runs noether ARGS expecting exit 2, nothing on stdout and one stderr line naming a and b. */
void expect_refused(const char *args, const char *a, const char *b);

/* The library's calls that return a status, for tests of what they compute: each asserts
 * NT_OK (the test fails with the library's message otherwise) and returns the value.
 * t_grad, t_hvp and t_loss_value return L_gamma. */
double t_loss_value(nt_engine *e, const double *theta, const nt_dataset *ds);
double t_grad(nt_engine *e, const double *theta, const nt_dataset *ds, double *g);
double t_hvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *HV, double *g);
void t_hessian(nt_engine *e, const double *theta, const nt_dataset *ds, double *H);
void t_outputs(nt_engine *e, const double *theta, const nt_dataset *ds, double *F);
void t_jvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *Fdot);
void t_vjp(nt_engine *e, const double *theta, const nt_dataset *ds, const double *Fbar, double *out);
void t_check(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, const nt_transform *list,
             int n, double tol, nt_check_result *results);
nt_operator t_hessian_operator(nt_hessian_ctx *h, nt_engine *e, const nt_model *m, const nt_dataset *ds,
                               const double *theta, int64_t off, int64_t n, const double *Q, int r);
double t_hutchinson(const nt_operator *op, int n_probes, uint64_t seed, double *std_error);
void t_breaking_spectrum(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta,
                         const nt_transform *t, double *lam, double *coef);
void t_sn_sector(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, int layer, int project,
                 double *theta_sym, double *lam);
double t_orbit_s1_check(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                        const double *theta, const double *g, int q, uint64_t seed, double *curvature_scale);
