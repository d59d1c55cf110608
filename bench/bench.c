/* bench.c: `make bench`.  How fast are noether's gradient and Hessian-vector products on a
 * real problem, measured against the machine's dgemm and against PyTorch on the SAME problem
 * (same data, same parameters, same vectors), with a correctness cross-check in the same run.
 *
 *   problem  MLP 784-256-256-10 (ReLU, biases), mean cross-entropy, the first 512
 *            Fashion-MNIST training images (pixels/255), float64, OpenBLAS threads as set
 *            (2 on the 2-core machine)
 *   noether  nt_grad; nt_hvp with k = 1; nt_hvp with a block of k = 16 (time per vector)
 *   machine  cblas_dgemm GFLOP/s on the first layer's shape and on 1024^3 (the faster shape;
 *            its median run and its fastest run)
 *   PyTorch  bench/bench_torch.py, run with /usr/bin/python3 on theta, V written here as .npy;
 *            it writes its gradient and H v_0 back, compared here with nt_rel_diff
 *
 * Times are medians of several repetitions after a warm-up (CLOCK_MONOTONIC); a fraction of
 * the dgemm peak compares like with like: the median run against dgemm's median run, the
 * fastest against the fastest, and round by round, a dgemm and a call in each round (this
 * shared machine's speed drifts by up to 1.7 x over minutes, so a median against a fastest
 * run, or runs minutes apart, mix the drift into the ratio).  The program
 * prints a table, writes the numbers as CSV and never fails on timing.
 *
 * Then bench_first.c: the first command a user runs (spectrum --top 5 of a trained network, as
 * a process) against PyHessian's method, the BLAS kernel, the peak memory of each command;
 * and bench_layers.c: a convolutional network and an attention block, the same ratios;
 * bench_spectrum.c: the spectrum's eigensolvers (ARPACK, block Lanczos) side by side.
 *
 * Usage: noether-bench [SOURCE_DIR [CSV [layers|first|engine]]]  (only that part: engine is this
 *        file's MLP and PyTorch's, without the spectrum, the BLAS libraries and the others)
 *        noether-bench --dgemm   (the kernel and its dgemm peak, for bench_first.c)   (defaults: the folder above the binary's folder,
 *        and bench.csv next to the binary) */
#define _GNU_SOURCE
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cblas.h>
#include "noether.h"

#define N_SAMPLES 512
#define K_BLOCK 16
#define FMNIST "/usr/share/datasets/fashion-mnist/"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* What one timed call does: a gradient or a block of k products. */
typedef struct {
    nt_engine *e;
    const double *theta;
    const nt_dataset *ds;
    int k;                  /* 0: nt_grad */
    const double *V;
    double *HV, *g, loss;
} job;

static void run_job(job *j)
{
    nt_error err;
    int rc = j->k ? nt_hvp(j->e, j->theta, j->ds, j->k, j->V, j->HV, j->g, &j->loss, &err)
                  : nt_grad(j->e, j->theta, j->ds, &j->loss, j->g, &err);
    if (rc) { fprintf(stderr, "noether-bench: %s\n", err.msg); exit(1); }
}

/* A timed quantity: its median and its fastest repetition (ms, or GFLOP/s for dgemm). */
typedef struct { double median, fastest; } timing;

static timing sorted(double *t, int reps)
{
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    return (timing){ t[reps / 2], t[0] };
}

/* GFLOP/s of flop operations done in the times ms: at the median run and at the fastest */
static timing gflops(double flop, timing ms)
{
    return (timing){ flop / (ms.median * 1e6), flop / (ms.fastest * 1e6) };
}

/* Wall time (ms) of `reps` calls after one warm-up call. */
static timing time_ms(job *j, int reps)
{
    double t[64];
    run_job(j);
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        run_job(j);
        t[r] = now_ms() - t0;
    }
    return sorted(t, reps);
}

/* Floating-point operations of the dense products (GEMMs) of one pass over N samples with
 * k tangents (k = 0: the gradient alone), counting 2 flops per multiply-add.  Each dense
 * layer l with n_in x n_out weights costs one "unit" P = 2 N n_in n_out per product:
 *   gradient     forward z = h W^T (P), W_bar = z_bar^T h (P), and h_bar = z_bar W (P) for
 *                every layer but the first (the data needs no adjoint);
 *   per tangent  forward tangent h W._j^T (P), plus h._j W^T (P) but the first;
 *                adjoint tangent W_bar._j = z_bar._j^T h (P), plus z_bar^T h._j (P) but the first;
 *                h_bar._j = z_bar._j W + z_bar W._j (2P) but the first.
 * A product without the parameter gradient (g = NULL, as `noether hvp` runs it) skips
 * W_bar (P per layer).  Elementwise work (activations, loss head, bias sums) is not counted. */
static double dense_flops(const nt_model *m, int64_t N, int k)
{
    double total = 0;
    int n_in = m->input, first = 1;
    for (int i = 0; i < m->n_layers; i++) {
        const nt_layer *L = &m->layers[i];
        if (L->kind != NT_LAYER_DENSE) continue;
        double P = 2.0 * (double)N * n_in * L->units;
        double grad = (first ? 2 * P : 3 * P) - (k > 0 ? P : 0);
        double tangent = first ? 2 * P : 6 * P;
        total += grad + k * tangent;
        n_in = L->units;
        first = 0;
    }
    return total;
}

/* dgemm GFLOP/s on a layer-like shape and a square one, the faster (by its fastest run):
 * its median run and its fastest. */
static timing dgemm_peak(void)
{
    const int shapes[2][3] = { {N_SAMPLES, 256, 784}, {1024, 1024, 1024} };   /* M, N, K */
    timing best = { 0, 0 };
    for (int s = 0; s < 2; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        double *A = malloc(sizeof(double) * M * K), *B = malloc(sizeof(double) * K * N);
        double *C = malloc(sizeof(double) * M * N), t[25];
        const int reps = s == 0 ? 25 : 15;
        for (int i = 0; i < M * K; i++) A[i] = nt_rand_normal(1, 0, (uint64_t)i);
        for (int i = 0; i < K * N; i++) B[i] = nt_rand_normal(1, 1, (uint64_t)i);
        for (int r = -1; r < reps; r++) {   /* r = -1: warm-up */
            double t0 = now_ms();
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0, A, K, B, N,
                        0.0, C, N);
            if (r >= 0) t[r] = now_ms() - t0;
        }
        const timing gf = gflops(2.0 * M * N * K, sorted(t, reps));
        if (gf.fastest > best.fastest) best = gf;
        free(A); free(B); free(C);
    }
    return best;
}

/* The job's GFLOP/s (flop a call) as a fraction of dgemm's on 1024^3, pair by pair: each of
 * `reps` rounds times one dgemm and then one call, so both sample the machine in the same
 * moment (its speed drifts over minutes here); the median of the rounds' fractions.  The call
 * runs 2 ms after the dgemm (OpenBLAS's idle threads then asleep), with the caches holding the
 * dgemm's data, as a product in an eigensolver runs after the solver's work. */
static double paired_fraction(job *j, double flop, int reps)
{
    const int n = 1024;
    double *A = malloc(sizeof(double) * n * n), *C = malloc(sizeof(double) * n * n), f[64];
    for (int i = 0; i < n * n; i++) A[i] = nt_rand_normal(1, 2, (uint64_t)i);
    run_job(j);
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, A, n, 0.0, C, n);
        const double t_gemm = now_ms() - t0;
        nanosleep(&(struct timespec){ 0, 2000000 }, NULL);   /* OpenBLAS's idle threads asleep (nt_blas_quiet) */
        t0 = now_ms();
        run_job(j);
        f[r] = (flop / (now_ms() - t0)) / (2.0 * n * n * n / t_gemm);
    }
    free(A); free(C);
    return sorted(f, reps).median;
}

/* ---- PyTorch: the script's "key value" lines -------------------------------------------- */
#define MAX_KV 32
typedef struct { char key[64], val[1024]; } kv;
static kv torch_kv[MAX_KV];
static int n_torch_kv;

static const char *tget(const char *key)
{
    for (int i = 0; i < n_torch_kv; i++)
        if (!strcmp(torch_kv[i].key, key)) return torch_kv[i].val;
    return NULL;
}
static double tnum(const char *key) { return tget(key) ? atof(tget(key)) : -1; }

/* runs a script, adding its "key value" lines to the store; returns its exit status */
static int run_script(const char *cmd)
{
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    char line[4096];
    while (p && fgets(line, sizeof line, p) && n_torch_kv < MAX_KV) {
        line[strcspn(line, "\n")] = 0;
        char *sp = strchr(line, ' ');
        if (!sp) continue;
        *sp = 0;
        snprintf(torch_kv[n_torch_kv].key, sizeof torch_kv[0].key, "%.63s", line);
        snprintf(torch_kv[n_torch_kv++].val, sizeof torch_kv[0].val, "%.1023s", sp + 1);
    }
    return p ? pclose(p) : -1;
}

/* "noether is r x faster" or "PyTorch is r x faster", for r = t_torch / t_noether */
static const char *faster(const char *who, double r, char *buf, size_t cap)
{
    if (r >= 1) snprintf(buf, cap, "%s is %.1f x faster", who, r);
    else snprintf(buf, cap, "PyTorch is %.1f x faster", 1 / r);
    return buf;
}

void bench_layers(const char *src, FILE *csv);   /* bench_layers.c */
void bench_first(const char *src, const char *self, const char *bin, FILE *csv);   /* bench_first.c */
int bench_spectrum_methods(const char *label, const char *key, const nt_operator *op, int K, int reps, FILE *csv,
                           double arpack_vals[2][16], int arpack_products[2], double arpack_secs[2]);   /* bench_spectrum.c */
int bench_spectrum_demo(FILE *csv);   /* bench_spectrum.c */
void bench_blas(const char *bin, int threads, FILE *csv);   /* bench_blas.c */

/* ---- output: one CSV row per number of the table ----------------------------------------- */
static FILE *csv;
static void out(const char *key, double value, const char *unit)
{
    if (csv) fprintf(csv, "%s,%.6g,%s\n", key, value, unit);
}

/* ---- the spectrum: top-10 and bottom-10 on 1024 samples, against SciPy's eigsh over a
 * PyTorch HVP (what PyHessian-style tools do; both are ARPACK underneath, so the product
 * counts are alike and the ratio is the cost of a product) ------------------------------- */
static int bench_spectrum(nt_spec *spec, const double *theta, const char *src, const char *theta_path)
{
    enum { N_SPEC = 1024, K = 10 };
    nt_data data;
    nt_error err = {0};
    spec->data.limit = N_SPEC;
    if (nt_data_load(spec, &data, &err)) { fprintf(stderr, "noether-bench: %s\n", err.msg); return 1; }
    const nt_model *m = &spec->model;
    nt_engine *e = nt_engine_new(m, N_SPEC, K_BLOCK);   /* as noether spectrum: blocks of 16 for the block method */
    nt_hessian_ctx hc;
    nt_operator op;
    if (nt_hessian_operator(&hc, &op, e, m, &data.train, theta, 0, m->d, NULL, 0, &err)) {
        fprintf(stderr, "noether-bench: %s\n", err.msg);
        return 1;
    }
    double vals[2][16], secs[2];
    int products[2];
    int rc = bench_spectrum_methods("spectrum, 1024 samples", "bench", &op, K, 2, csv, vals, products, secs);
    printf("\n   spectrum, %d samples: top-%d %.4g .. %.4g, bottom-%d %.4g .. %.4g\n", N_SPEC, K, vals[0][0],
           vals[0][K - 1], K, vals[1][0], vals[1][K - 1]);
    printf("   noether  Lanczos (ARPACK)  top %6.1f s, %4d HVPs; bottom %6.1f s, %4d HVPs   (the method eigsh runs; "
           "noether spectrum takes b=1's above)\n", secs[0], products[0], secs[1], products[1]);
    out("spectrum_top_seconds", secs[0], "s");      out("spectrum_top_hvps", products[0], "count");
    out("spectrum_bottom_seconds", secs[1], "s");   out("spectrum_bottom_hvps", products[1], "count");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/bench/bench_eigsh.py' --images '%s' --labels '%s' --n %d "
             "--theta '%s' --k %d", src, spec->data.images, spec->data.labels, N_SPEC, theta_path, K);
    int status = run_script(cmd);
    if (tget("eigsh_skip")) {
        printf("   SciPy comparison skipped: %s\n", tget("eigsh_skip"));
    } else if (status != 0 || !tget("eigsh_bottom_values")) {
        fprintf(stderr, "noether-bench: bench_eigsh.py failed\n");
        rc = 1;
    } else {
        const char *ends[2] = {"top", "bottom"};
        for (int end = 0; end < 2; end++) {
            char key[64];
            snprintf(key, sizeof key, "eigsh_%s_values", ends[end]);
            double worst = 0, scale = fabs(vals[0][0]);
            const char *at = tget(key);
            for (int i = 0; i < K && at; i++) {   /* equal accuracy: the same eigenvalues */
                worst = fmax(worst, fabs(atof(at) - vals[end][i]) / scale);
                at = strchr(at, ',');
                at = at ? at + 1 : NULL;
            }
            snprintf(key, sizeof key, "eigsh_%s_seconds", ends[end]);
            double ts = tnum(key);
            snprintf(key, sizeof key, "eigsh_%s_products", ends[end]);
            printf("   SciPy eigsh + PyTorch HVP %-6s %6.1f s, %4d HVPs   noether is %.1f x faster; eigenvalues agree to %.1e\n",
                   ends[end], ts, (int)tnum(key), ts / secs[end], worst);
            snprintf(key, sizeof key, "speedup_spectrum_%s", ends[end]);
            out(key, ts / secs[end], "ratio");
        }
    }
    nt_hessian_operator_free(&hc);
    nt_engine_free(e);
    nt_data_free(&data);
    rc |= bench_spectrum_demo(csv);
    return rc;
}

int main(int argc, char **argv)
{
    nt_blas_select(argv);   /* as noether does: the numbers are those a user gets */
    if (argc > 1 && !strcmp(argv[1], "--dgemm")) {   /* for bench_first.c: this kernel's peak */
        nt_blas_info b;
        nt_blas_info_get(&b);
        printf("kernel %s\ndgemm_gflops %.2f\n", b.kernel, dgemm_peak().fastest);
        return 0;
    }
    char self[NT_PATH_MAX], src[NT_PATH_MAX], csv_path[NT_PATH_MAX], spec_json[4096], exe[NT_PATH_MAX],
         bin[NT_PATH_MAX + 16];
    snprintf(self, sizeof self, "%s", argv[0]);
    if (realpath(argv[0], exe) == NULL) snprintf(exe, sizeof exe, "%s", argv[0]);
    const char *bindir = dirname(self);
    snprintf(bin, sizeof bin, "%s/noether", bindir);
    if (argc > 1) snprintf(src, sizeof src, "%s", argv[1]);
    else snprintf(src, sizeof src, "%s/..", bindir);
    if (argc > 2) snprintf(csv_path, sizeof csv_path, "%s", argv[2]);
    else snprintf(csv_path, sizeof csv_path, "%s/bench.csv", bindir);
    if (argc > 3 && !strcmp(argv[3], "first")) {   /* only bench_first.c's part */
        FILE *f = fopen(csv_path, "w");
        if (!f) return 1;
        fprintf(f, "metric,value,unit\n");
        bench_first(src, exe, bin, f);
        fclose(f);
        return 0;
    }
    if (argc > 3 && !strcmp(argv[3], "layers")) {   /* only bench_layers.c's part */
        FILE *f = fopen(csv_path, "w");
        if (!f) return 1;
        fprintf(f, "metric,value,unit\n");
        bench_layers(src, f);
        fclose(f);
        return 0;
    }

    const int engine_only = argc > 3 && !strcmp(argv[3], "engine");

    /* the problem, through the public API */
    snprintf(spec_json, sizeof spec_json,
        "{\"model\": {\"input\": 784, \"layers\": [{\"dense\": 256}, {\"act\": \"relu\"},"
        " {\"dense\": 256}, {\"act\": \"relu\"}, {\"dense\": 10}], \"loss\": \"cross_entropy\"},"
        " \"data\": {\"source\": \"idx\", \"images\": \"%strain-images-idx3-ubyte.gz\","
        " \"labels\": \"%strain-labels-idx1-ubyte.gz\", \"limit\": %d},"
        " \"init\": {\"seed\": 0, \"scheme\": \"he\", \"bias_std\": 0.1}}",
        FMNIST, FMNIST, N_SAMPLES);
    nt_spec spec;
    nt_data data;
    nt_error err = {0};
    if (nt_spec_parse(spec_json, "<bench>", &spec, &err) || nt_data_load(&spec, &data, &err)) {
        fprintf(stderr, "noether-bench: %s\n", err.msg);
        return 1;
    }
    const nt_model *m = &spec.model;
    const int64_t d = m->d;
    const nt_dataset *ds = &data.train;
    double *theta = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * d);
    double *V = malloc(sizeof(double) * d * K_BLOCK), *HV = malloc(sizeof(double) * d * K_BLOCK);
    double *hv0 = malloc(sizeof(double) * d);
    nt_init_params(m, &spec.init, theta);
    for (int64_t i = 0; i < d * K_BLOCK; i++) V[i] = nt_rand_normal(7, 0, (uint64_t)i);
    nt_engine *e = nt_engine_new(m, N_SAMPLES, K_BLOCK);
    if (!e) { fprintf(stderr, "noether-bench: cannot allocate the engine\n"); return 1; }
    nt_blas_info bi;
    nt_blas_info_get(&bi);
    printf("noether-bench: %s; d = %lld; MLP 784-256-256-10 relu, cross_entropy, float64; "
           "OpenBLAS %d threads, kernel %s (%s); noether %d lanes\n\n", data.desc, (long long)d,
           openblas_get_num_threads(), bi.kernel, bi.selected ? "selected by noether" : bi.user_set ?
           "set by OPENBLAS_CORETYPE" : "chosen by OpenBLAS", nt_engine_threads(e));

    /* noether: gradient, one product, a block of 16; dgemm's peak before and after them (the
     * higher of the two for each statistic: the fractions below are not flattered by drift) */
    timing peak = dgemm_peak();
    job jg = { e, theta, ds, 0, V, HV, g, 0 };
    const timing t_grad = time_ms(&jg, 31);
    double loss = jg.loss;   /* keep g and H v_0 for the comparison with PyTorch */
    job j1 = { e, theta, ds, 1, V, HV, NULL, 0 };
    const timing t_hvp1 = time_ms(&j1, 21);
    memcpy(hv0, HV, sizeof(double) * d);
    job j16 = { e, theta, ds, K_BLOCK, V, HV, NULL, 0 };
    const timing t_hvp16 = time_ms(&j16, 9);
    double rel_block = nt_rel_diff(d, hv0, HV);   /* row 0 of the block vs the k = 1 product */
    const timing again = dgemm_peak();
    peak = (timing){ fmax(peak.median, again.median), fmax(peak.fastest, again.fastest) };
    const double pair_grad = paired_fraction(&jg, dense_flops(m, ds->n, 0), 31);
    const double pair_16 = paired_fraction(&j16, dense_flops(m, ds->n, K_BLOCK), 9);

    /* GFLOP/s of a pass (flop) and its fraction of dgemm's, median to median and fastest to fastest */
    const double fl_grad = dense_flops(m, ds->n, 0), fl_1 = dense_flops(m, ds->n, 1), fl_16 = dense_flops(m, ds->n, K_BLOCK);
    const timing gfg = gflops(fl_grad, t_grad), gf1 = gflops(fl_1, t_hvp1), gf16 = gflops(fl_16, t_hvp16);
    const double per_vec = t_hvp16.median / K_BLOCK;

    csv = fopen(csv_path, "w");
    if (!csv) fprintf(stderr, "noether-bench: cannot write %s; no CSV\n", csv_path);
    else fprintf(csv, "metric,value,unit\n");
    printf("   dgemm peak (%d threads)            %8.1f GFLOP/s median run, %.1f fastest\n", openblas_get_num_threads(),
           peak.median, peak.fastest);
    printf("   noether  gradient                 %8.2f ms (fastest %.2f)   %.1f GFLOP/s: %.0f %% of dgemm's median, "
           "%.0f %% fastest to fastest (target >= 85 %%)\n", t_grad.median, t_grad.fastest, gfg.median,
           100 * gfg.median / peak.median, 100 * gfg.fastest / peak.fastest);
    printf("   noether  HVP (k=1)                %8.2f ms   = %5.2f x gradient   (target <= 3); %.1f GFLOP/s: "
           "%.0f %% of dgemm's median\n", t_hvp1.median, t_hvp1.median / t_grad.median, gf1.median,
           100 * gf1.median / peak.median);
    printf("   noether  HVP block k=16 per vec   %8.2f ms   = %5.2f x gradient   (target <= 1.6); %.1f GFLOP/s: "
           "%.0f %% of dgemm's median, %.0f %% fastest to fastest (target >= 80 %%)\n", per_vec,
           per_vec / t_grad.median, gf16.median, 100 * gf16.median / peak.median, 100 * gf16.fastest / peak.fastest);
    printf("   paired with a dgemm of 1024^3 round by round (the median of the rounds): gradient %.0f %%, "
           "block of 16 %.0f %% of dgemm\n", 100 * pair_grad, 100 * pair_16);
    printf("   (dense flops: gradient %.3f G, one product without the gradient %.3f G, per extra tangent %.3f G)\n",
           fl_grad * 1e-9, fl_1 * 1e-9, (dense_flops(m, ds->n, 2) - fl_1) * 1e-9);

    /* a training step with the ledger against one without (SGD, batch 64, 100 steps, best of 3) */
    nt_transform *list = NULL;
    nt_quantity *q = NULL;
    int n_list = 0, nq = 0;
    nt_catalogue(m, &list, &n_list);
    nt_ledger_quantities(m, list, n_list, &q, &nq);
    spec.train = (nt_train_spec){ .optimizer = NT_OPT_SGD, .lr = 0.01, .steps = 100, .batch = 64,
                                  .log_every = 1000000, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8 };
    /* [0] without the ledger, [1] with it, [2] without, one lane (BLAS's threads in each GEMM) */
    double t_step[3] = {1e300, 1e300, 1e300}, *th = malloc(sizeof(double) * d);
    char lanes[16];
    snprintf(lanes, sizeof lanes, "%d", nt_engine_threads(e));
    for (int rep = 0; rep < 3; rep++)
        for (int with = 0; with < 3; with++) {
            memcpy(th, theta, sizeof(double) * d);
            setenv("NOETHER_THREADS", with == 2 ? "1" : lanes, 1);   /* nt_train's engine takes the default */
            double t0 = now_ms();
            nt_train(&spec, &data, list, n_list, th, with == 1 ? q : NULL, with == 1 ? nq : 0, NULL, NULL, &err);
            t_step[with] = fmin(t_step[with], (now_ms() - t0) / 100);
        }
    setenv("NOETHER_THREADS", lanes, 1);
    printf("   training step, SGD batch 64       %8.2f ms; with the ledger of %d quantities %.2f ms = %.2f x (target <= 1.3)\n",
           t_step[0], nq, t_step[1], t_step[1] / t_step[0]);
    printf("   training step, one lane            %8.2f ms (%d BLAS threads in each GEMM): lanes are %.2f x faster\n",
           t_step[2], openblas_get_num_threads(), t_step[2] / t_step[0]);
    out("train_step_ms", t_step[0], "ms");
    out("train_step_ledger_ms", t_step[1], "ms");
    out("train_step_one_lane_ms", t_step[2], "ms");
    free(th); free(q);
    nt_transforms_free(list, n_list);
    out("noether_grad_ms", t_grad.median, "ms");          out("noether_grad_fastest_ms", t_grad.fastest, "ms");
    out("noether_hvp1_ms", t_hvp1.median, "ms");          out("noether_hvp16_per_vec_ms", per_vec, "ms");
    out("noether_hvp1_over_grad", t_hvp1.median / t_grad.median, "ratio");
    out("noether_hvp16_per_vec_over_grad", per_vec / t_grad.median, "ratio");
    out("noether_block_vs_single_rel_diff", rel_block, "rel");
    out("dgemm_median_gflops", peak.median, "GFLOP/s");   out("dgemm_peak_gflops", peak.fastest, "GFLOP/s");
    out("grad_gflops", gfg.median, "GFLOP/s");            out("grad_fastest_gflops", gfg.fastest, "GFLOP/s");
    out("grad_frac_of_dgemm", gfg.median / peak.median, "ratio");
    out("grad_fastest_frac_of_dgemm_peak", gfg.fastest / peak.fastest, "ratio");
    out("hvp1_gflops", gf1.median, "GFLOP/s");            out("hvp16_gflops", gf16.median, "GFLOP/s");
    out("hvp1_frac_of_dgemm", gf1.median / peak.median, "ratio");
    out("hvp16_frac_of_dgemm", gf16.median / peak.median, "ratio");
    out("hvp16_fastest_frac_of_dgemm_peak", gf16.fastest / peak.fastest, "ratio");
    out("grad_paired_frac_of_dgemm", pair_grad, "ratio");
    out("hvp16_paired_frac_of_dgemm", pair_16, "ratio");

    /* PyTorch on the same theta and V */
    int rc = 0;
    char tmp[] = "/tmp/noether-bench-XXXXXX", cmd[8192], path[4][NT_PATH_MAX + 32];
    const char *names[4] = {"theta.npy", "v.npy", "hv.npy", "g.npy"};
    if (access("/usr/bin/python3", X_OK) != 0) {
        printf("   PyTorch comparison skipped: /usr/bin/python3 is missing\n");
    } else if (!mkdtemp(tmp)) {
        printf("   PyTorch comparison skipped: cannot create a temporary folder\n");
    } else {
        for (int i = 0; i < 4; i++) snprintf(path[i], sizeof path[i], "%s/%s", tmp, names[i]);
        int64_t sh1[1] = {d}, sh2[2] = {K_BLOCK, d};
        if (nt_npy_write(path[0], theta, 1, sh1, &err) || nt_npy_write(path[1], V, 2, sh2, &err)) {
            fprintf(stderr, "noether-bench: %s\n", err.msg);
            return 1;
        }
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/bench/bench_torch.py' --images '%s' "
                 "--labels '%s' --n %d --theta '%s' --v '%s' --hv-out '%s' --g-out '%s'",
                 src, spec.data.images, spec.data.labels, N_SAMPLES, path[0], path[1], path[2], path[3]);
        int status = run_script(cmd);
        nt_array thv = {0}, tg = {0};
        if (tget("torch_skip")) {
            printf("   PyTorch comparison skipped: /usr/bin/python3: %s\n", tget("torch_skip"));
        } else if (status != 0 || !tget("torch_hvp16_per_vec_ms") ||
                   nt_npy_read(path[2], &thv, &err) || nt_npy_read(path[3], &tg, &err) ||
                   thv.size != d || tg.size != d) {
            fprintf(stderr, "noether-bench: %s/bench/bench_torch.py failed (exit status %d)\n", src,
                    status == -1 ? -1 : WEXITSTATUS(status));
            rc = 1;
        } else {
            double tl = tnum("torch_loss"), tgr = tnum("torch_grad_ms"), th1 = tnum("torch_hvp_ms");
            double th16 = tnum("torch_hvp16_per_vec_ms"), gn = nt_norm2(d, g);
            double tgn = tnum("torch_grad_norm");
            double r_loss = nt_rel_diff(1, &loss, &tl), r_g = nt_rel_diff(d, g, tg.data);
            double r_gn = nt_rel_diff(1, &gn, &tgn), r_hv = nt_rel_diff(d, hv0, thv.data);
            char b[3][64];
            const double tgf = dense_flops(m, ds->n, 0) / (tgr * 1e6);
            printf("   PyTorch  gradient                 %8.2f ms   %s   (%.1f GFLOP/s, %.0f %% of dgemm's median)\n", tgr,
                   faster("noether", tgr / t_grad.median, b[0], sizeof b[0]), tgf, 100 * tgf / peak.median);
            printf("   PyTorch  HVP (double backward)    %8.2f ms   %s\n", th1,
                   faster("noether", th1 / t_hvp1.median, b[1], sizeof b[1]));
            printf("   PyTorch  16 HVPs per vector       %8.2f ms   %s  [%s]\n", th16,
                   faster("noether's block", th16 / per_vec, b[2], sizeof b[2]), tget("torch_hvp16_method"));
            if (tget("torch_hvp16_vmap_per_vec_ms"))
                printf("            (double-backward loop %.2f ms/vec, vmap(jvp(grad)) %.2f ms/vec)\n",
                       tnum("torch_hvp16_loop_per_vec_ms"), tnum("torch_hvp16_vmap_per_vec_ms"));
            printf("   agreement with PyTorch (torch %s, %s threads, OMP_WAIT_POLICY=%s): loss rel diff %.1e, grad rel diff "
                   "%.1e (norm %.1e), Hv rel diff %.1e\n", tget("torch_version"), tget("torch_threads"),
                   tget("torch_omp_wait_policy") ? tget("torch_omp_wait_policy") : "?",
                   r_loss, r_g, r_gn, r_hv);
            printf("   (noether block row 0 vs k=1 product: rel diff %.1e)\n", rel_block);
            for (int i = 0; i < n_torch_kv; i++)   /* every torch time as it came */
                if (strstr(torch_kv[i].key, "_ms")) out(torch_kv[i].key, atof(torch_kv[i].val), "ms");
            out("speedup_grad", tgr / t_grad.median, "ratio");
            out("speedup_hvp1", th1 / t_hvp1.median, "ratio");
            out("speedup_hvp16", th16 / per_vec, "ratio");
            out("loss_rel_diff", r_loss, "rel");          out("grad_rel_diff", r_g, "rel");
            out("grad_norm_rel_diff", r_gn, "rel");       out("hv_rel_diff", r_hv, "rel");
            if (r_loss > 1e-10 || r_g > 1e-8 || r_hv > 1e-8) {
                fprintf(stderr, "noether-bench: noether and PyTorch disagree\n");
                rc = 1;
            }
        }
        nt_array_free(&thv);
        nt_array_free(&tg);
        if (!engine_only) rc |= bench_spectrum(&spec, theta, src, path[0]);
        for (int i = 0; i < 4; i++) unlink(path[i]);
        rmdir(tmp);
    }
    if (csv && !engine_only) {
        bench_blas(bindir, openblas_get_num_threads(), csv);
        bench_first(src, exe, bin, csv);
        bench_layers(src, csv);
    }
    if (csv) {
        fclose(csv);
        printf("\n   numbers also in %s\n", csv_path);
    }

    nt_engine_free(e);
    free(theta); free(g); free(V); free(HV); free(hv0);
    nt_data_free(&data);
    nt_spec_free(&spec);
    return rc;
}
