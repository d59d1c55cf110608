/* test_lanes.c: sample-parallel lanes (nt_engine_set_threads, src/engine/lanes.c).
 *   - on an MLP with curvature, a convolutional network and an attention block, 2 and 3
 *     lanes give the loss, the gradient and blocks of products of one lane to round-off
 *     (1e-13 relative), chunks that divide nothing; a frozen engine with lanes gives bitwise
 *     its full products; one lane is bitwise an engine whose default is one lane; the same
 *     comparison against one sample fewer fails (negative control: the check sees a row), and
 *     results bitwise those of one lane would fail too (the lanes did not run);
 *   - batch normalization (rows coupled: its statistics summed over the lanes inside the pass),
 *     dense and 2-d, the same; a data set of fewer than 64 rows a lane takes fewer lanes;
 *   - the reduction hook is handed the lanes' summed buffer, once a block;
 *   - a training run with lanes follows the one-lane run to round-off;
 *   - a child forked after the lanes' threads were made computes with threads of its own;
 *   - `noether grad` under NOETHER_THREADS=2 and =1: the same gradient to 1e-12. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include <cJSON.h>
#include "helpers.h"

#define DENSE(u) {.kind = NT_LAYER_DENSE, .units = (u), .bias = 1}
#define ACT(a) {.kind = NT_LAYER_ACT, .act = (a), .alpha = 0.01}

enum { K = 5, KBLOCK = 2, CHUNK = 7 };

/* the small model most tests here take: 6 -> dense 9 -> tanh -> dense 3, cross-entropy */
static void small_mlp(nt_model *m, double weight_decay)
{
    make_mlp(m, 6, 1, (const int[]){9}, NT_ACT_TANH, 3, NT_LOSS_CROSS_ENTROPY, 1, weight_decay);
}

/* everything a sweep returns: loss, gradient, K products (blocks of KBLOCK), and the
 * products of a frozen engine */
typedef struct { double loss, loss_h, *g, *HV, *HVf; } results;

static results compute(const nt_model *m, const nt_dataset *ds, const double *theta, const double *V, int threads)
{
    const int64_t d = m->d;
    nt_engine *e = nt_engine_new(m, CHUNK, KBLOCK);
    if (threads) nt_engine_set_threads(e, threads);
    results r = { .g = malloc(sizeof(double) * d), .HV = malloc(sizeof(double) * K * d),
                  .HVf = malloc(sizeof(double) * K * d) };
    r.loss = t_grad(e, theta, ds, r.g);
    r.loss_h = t_loss_value(e, theta, ds);
    t_hvp(e, theta, ds, K, V, r.HV, NULL);
    cr_assert(nt_engine_freeze(e, theta, ds, 1e9), "the freeze was declined");
    t_hvp(e, theta, ds, K, V, r.HVf, NULL);
    nt_engine_free(e);
    return r;
}

static void results_free(results *r)
{
    free(r->g); free(r->HV); free(r->HVf);
}

/* the largest relative difference of loss, gradient and products */
static double worst(const results *a, const results *b, int64_t d)
{
    double w = fabs(a->loss - b->loss) / fabs(b->loss);
    w = fmax(w, fabs(a->loss_h - b->loss_h) / fabs(b->loss_h));
    w = fmax(w, nt_rel_diff(d, a->g, b->g));
    for (int j = 0; j < K; j++) w = fmax(w, nt_rel_diff(d, a->HV + j * d, b->HV + j * d));
    return w;
}

static int bitwise(const results *a, const results *b, int64_t d)
{
    return a->loss == b->loss && a->loss_h == b->loss_h && !memcmp(a->g, b->g, sizeof(double) * d) &&
           !memcmp(a->HV, b->HV, sizeof(double) * K * d) && !memcmp(a->HVf, b->HVf, sizeof(double) * K * d);
}

/* lanes 2 and 3 against one lane on n samples of m; one lane against the default engine */
static void check_model(nt_model *m, int64_t n, const char *label)
{
    nt_dataset ds;
    make_data(&ds, m, n, 5);
    const int64_t d = m->d;
    double *theta = malloc(sizeof(double) * d), *V = malloc(sizeof(double) * K * d);
    fill_normal(theta, d, 0.4, 6);
    fill_normal(V, K * d, 1.0, 7);
    setenv("NOETHER_THREADS", "1", 1);   /* the plain engine's default: one lane */
    results one = compute(m, &ds, theta, V, 1), plain = compute(m, &ds, theta, V, 0);
    unsetenv("NOETHER_THREADS");
    cr_assert(bitwise(&one, &plain, d), "%s: one lane differs from an engine without lanes", label);
    for (int T = 2; T <= 3; T++) {
        results r = compute(m, &ds, theta, V, T);
        const double w = worst(&r, &one, d);
        cr_log_info("%s, %d lanes: %.1e relative to one lane", label, T, w);
        cr_expect_leq(w, 1e-13, "%s, %d lanes: %.2e from one lane", label, T, w);
        /* the lanes ran: other sums, other round-off (deterministic, so a fixed fact) */
        cr_expect_gt(w, 0, "%s, %d lanes: bitwise one lane's results; did the lanes run?", label, T);
        cr_expect(!memcmp(r.HV, r.HVf, sizeof(double) * K * d), "%s, %d lanes: frozen products differ", label, T);
        results_free(&r);
    }
    /* negative control: the same check against the set without its last sample */
    nt_dataset fewer = ds;
    fewer.n--;
    results f = compute(m, &fewer, theta, V, 2);
    cr_expect_gt(worst(&f, &one, d), 1e-6, "%s: one sample fewer passed the check", label);
    results_free(&f);
    results_free(&one);
    results_free(&plain);
    free(theta); free(V);
    nt_dataset_free(&ds);
}

Test(lanes, an_mlp_with_curvature)
{
    nt_model m;
    make_mlp(&m, 6, 2, (const int[]){9, 7}, NT_ACT_TANH, 4, NT_LOSS_CROSS_ENTROPY, 1, 0.01);
    check_model(&m, 201, "tanh MLP");
    nt_model_free(&m);
    make_mlp(&m, 6, 1, (const int[]){9}, NT_ACT_RELU, 3, NT_LOSS_MSE, 1, 0.0);
    check_model(&m, 199, "relu MLP, MSE");
    nt_model_free(&m);
    /* K d = 77k sums: the lanes' products are added on both threads (lanes.c) */
    make_mlp(&m, 50, 2, (const int[]){100, 100}, NT_ACT_SOFTPLUS, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.0);
    check_model(&m, 193, "softplus MLP, d = 15.5k");
    nt_model_free(&m);
}

/* The lanes' threads are kept between calls (lanes.c's crew); a child forked after they were
 * made has none of them, and makes its own: its gradient (2 lanes, under alarm(30): waiting on
 * the parent's threads would hang) is bitwise the parent's.  Control: the child's gradient at
 * another theta differs, so the comparison sees the computation. */
Test(lanes, a_forked_child_makes_threads_of_its_own)
{
    nt_model m;
    small_mlp(&m, 0.0);
    nt_dataset ds;
    make_data(&ds, &m, 200, 5);
    const int64_t d = m.d;
    double *theta = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * d), *gc = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.4, 6);
    nt_engine *e = nt_engine_new(&m, 1024, 1);
    nt_engine_set_threads(e, 2);
    t_grad(e, theta, &ds, g);
    for (int moved = 0; moved < 2; moved++) {
        fflush(NULL);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            alarm(30);
            if (moved) theta[0] += 0.1;
            nt_error err;
            double loss;
            int rc = nt_grad(e, theta, &ds, &loss, gc, &err);
            _exit(rc ? 2 : memcmp(g, gc, sizeof(double) * (size_t)d) ? 3 : 0);
        }
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFEXITED(st), "the child did not end by itself (signal %d: it waited on threads it has not)",
                  WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        cr_assert_eq(WEXITSTATUS(st), moved ? 3 : 0, "child %s: exit %d", moved ? "at another theta" : "at theta",
                     WEXITSTATUS(st));
    }
    t_grad(e, theta, &ds, gc);   /* the parent's threads still serve it */
    cr_assert(!memcmp(g, gc, sizeof(double) * (size_t)d));
    nt_engine_free(e);
    free(theta); free(g); free(gc);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}

Test(lanes, a_convolutional_network)
{
    nt_model m;
    nt_error err = {0};
    nt_layer L[] = { {.kind = NT_LAYER_CONV, .units = 3, .kernel = 3, .stride = 1, .padding = 1, .bias = 1},
                     ACT(NT_ACT_SOFTPLUS), {.kind = NT_LAYER_POOL, .pool_max = 1, .kernel = 2, .stride = 2},
                     {.kind = NT_LAYER_FLATTEN}, DENSE(3) };
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){2, 6, 6}, L, 5, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_OK, "%s",
                 err.msg);
    check_model(&m, 197, "conv");
    nt_model_free(&m);
}

Test(lanes, an_attention_block)
{
    nt_model m;
    nt_error err = {0};
    nt_layer L[] = { DENSE(8), {.kind = NT_LAYER_BRANCH}, {.kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5},
                     {.kind = NT_LAYER_ATTENTION, .heads = 2, .causal = 1, .bias = 1}, {.kind = NT_LAYER_ADD},
                     {.kind = NT_LAYER_MEAN_TOKENS}, ACT(NT_ACT_GELU), DENSE(3) };
    cr_assert_eq(nt_model_init_sequence(&m, 4, 5, L, 8, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_OK, "%s", err.msg);
    check_model(&m, 195, "attention");
    nt_model_free(&m);
}

/* one lane's results, bitwise, where lanes cannot split the rows */
static void expect_one_lane(nt_model *m, int64_t n, const char *label)
{
    nt_dataset ds;
    make_data(&ds, m, n, 9);
    const int64_t d = m->d;
    double *theta = malloc(sizeof(double) * d), *V = malloc(sizeof(double) * K * d);
    fill_normal(theta, d, 0.4, 10);
    fill_normal(V, K * d, 1.0, 11);
    results one = compute(m, &ds, theta, V, 1), r = compute(m, &ds, theta, V, 4);
    cr_expect(bitwise(&r, &one, d), "%s: 4 lanes asked, not one lane's results", label);
    results_free(&one);
    results_free(&r);
    free(theta); free(V);
    nt_dataset_free(&ds);
}

Test(lanes, batch_norm_sums_its_statistics_over_the_lanes)
{
    nt_model m;
    nt_error err = {0};
    nt_layer L[] = { DENSE(6), {.kind = NT_LAYER_BATCHNORM, .affine = 1, .eps = 1e-5}, ACT(NT_ACT_TANH), DENSE(3) };
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){4, 0, 0}, L, 4, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_OK, "%s",
                 err.msg);
    check_model(&m, 200, "batch norm");
    nt_model_free(&m);
    nt_layer C[] = { {.kind = NT_LAYER_CONV, .units = 3, .kernel = 3, .stride = 1, .padding = 1, .bias = 1},
                     {.kind = NT_LAYER_BATCHNORM, .affine = 1, .eps = 1e-5}, ACT(NT_ACT_RELU),
                     {.kind = NT_LAYER_FLATTEN}, DENSE(3) };
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){2, 5, 5}, C, 5, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_OK, "%s",
                 err.msg);
    check_model(&m, 196, "conv, batch norm 2-d");
    nt_model_free(&m);
}

Test(lanes, a_small_set_keeps_one_lane)
{
    nt_model m;
    small_mlp(&m, 0.0);
    expect_one_lane(&m, 127, "127 rows");   /* 2 lanes need 128 */
    nt_model_free(&m);
}

/* a hook that keeps the buffer it is handed and changes nothing */
typedef struct { double *buf; int64_t len, n; int calls; } capture;

static int capture_fn(void *ctx, double *sums, int64_t len, int64_t *n, nt_error *err)
{
    (void)err;
    capture *c = ctx;
    free(c->buf);
    c->buf = malloc(sizeof(double) * (size_t)len);
    memcpy(c->buf, sums, sizeof(double) * (size_t)len);
    c->len = len;
    c->n = *n;
    c->calls++;
    return NT_OK;
}

Test(lanes, the_hook_is_handed_the_lanes_sums)
{
    nt_model m;
    small_mlp(&m, 0.0);
    nt_dataset ds;
    make_data(&ds, &m, 130, 12);
    const int64_t d = m.d;
    double *theta = malloc(sizeof(double) * d), *V = malloc(sizeof(double) * KBLOCK * d);
    double *HV = malloc(sizeof(double) * KBLOCK * d), *g = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.4, 13);
    fill_normal(V, KBLOCK * d, 1.0, 14);
    capture c[2] = {0};
    for (int T = 1; T <= 2; T++) {
        nt_engine *e = nt_engine_new(&m, CHUNK, KBLOCK);
        nt_engine_set_threads(e, T);
        nt_error err;
        cr_assert_eq(nt_engine_set_reduce(e, capture_fn, &c[T - 1], &err), NT_OK);
        t_hvp(e, theta, &ds, KBLOCK, V, HV, g);
        nt_engine_free(e);
    }
    cr_assert_eq(c[0].calls, 1);
    cr_assert_eq(c[1].calls, 1, "%d lanes: the hook was called %d times", 2, c[1].calls);
    cr_assert_eq(c[1].n, ds.n);
    cr_assert_eq(c[1].len, c[0].len);
    const double w = nt_rel_diff(c[0].len, c[1].buf, c[0].buf);
    cr_expect_leq(w, 1e-13, "the lanes' buffer is %.2e from one lane's", w);
    free(c[0].buf); free(c[1].buf);
    free(theta); free(V); free(HV); free(g);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}

Test(lanes, a_training_run_follows_the_one_lane_run)
{
    nt_model m;
    small_mlp(&m, 0.001);
    nt_data data = {0};
    make_data(&data.train, &m, 320, 15);
    nt_spec spec = { .model = m };
    spec.train = (nt_train_spec){ .optimizer = NT_OPT_ADAM, .lr = 0.01, .steps = 40, .batch = 160, .log_every = 1000,
                                  .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8 };
    const int64_t d = m.d;
    double *th[2];
    for (int T = 1; T <= 2; T++) {
        char v[8];
        snprintf(v, sizeof v, "%d", T);
        setenv("NOETHER_THREADS", v, 1);   /* nt_train's engine takes the default */
        th[T - 1] = malloc(sizeof(double) * d);
        fill_normal(th[T - 1], d, 0.4, 16);
        nt_error err;
        cr_assert_eq(nt_train(&spec, &data, NULL, 0, th[T - 1], NULL, 0, NULL, NULL, &err), NT_OK, "%s", err.msg);
    }
    unsetenv("NOETHER_THREADS");
    double *th0 = malloc(sizeof(double) * d);
    fill_normal(th0, d, 0.4, 16);
    const double moved = nt_rel_diff(d, th[0], th0), w = nt_rel_diff(d, th[1], th[0]);
    cr_assert_gt(moved, 1e-3, "the run did not move theta");
    cr_log_info("40 Adam steps, 2 lanes: %.1e relative to one lane's theta", w);
    cr_expect_leq(w, 1e-11, "40 Adam steps with 2 lanes are %.2e from one lane's", w);
    cr_expect_gt(w, 0, "bitwise one lane's run: did the lanes run?");
    free(th[0]); free(th[1]); free(th0);
    nt_dataset_free(&data.train);
    nt_model_free(&m);
}

static double grad_norm(const char *threads)
{
    char cmd[256], *out = NULL;
    snprintf(cmd, sizeof cmd, "grad --json");
    setenv("NOETHER_THREADS", threads, 1);
    cr_assert_eq(run_noether(cmd, &out, NULL), 0);
    unsetenv("NOETHER_THREADS");
    cJSON *doc = cJSON_Parse(out);
    cr_assert(doc, "not JSON: %s", out);
    const double v = cJSON_GetObjectItem(doc, "grad_norm")->valuedouble;
    cJSON_Delete(doc);
    free(out);
    return v;
}

Test(lanes, the_command_under_two_threads)
{
    const double one = grad_norm("1"), two = grad_norm("2");
    cr_log_info("noether grad: |g| %.17g with 2 lanes, %.17g with 1", two, one);
    cr_expect_leq(fabs(two - one), 1e-12 * one, "|g| %.17g with 2 lanes, %.17g with 1", two, one);
    cr_expect_gt(one, 0);
}

/* A freeze is keyed on the whole data set: 201 rows after a freeze on their first 200 (whose
 * lane 0 is the same 100 rows) are computed in full, bitwise as an engine never frozen. */
Test(lanes, a_freeze_is_keyed_on_the_whole_set)
{
    nt_model m;
    small_mlp(&m, 0.0);
    nt_dataset all, first = {0};
    make_data(&all, &m, 201, 30);
    first = all;
    first.n = 200;
    const int64_t d = m.d;
    double *theta = malloc(sizeof(double) * d), *V = malloc(sizeof(double) * d);
    double *hv = malloc(sizeof(double) * d), *want = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.4, 31);
    fill_normal(V, d, 1.0, 32);
    nt_engine *e = nt_engine_new(&m, CHUNK, 1), *plain = nt_engine_new(&m, CHUNK, 1);
    nt_engine_set_threads(e, 2);
    nt_engine_set_threads(plain, 2);
    cr_assert(nt_engine_freeze(e, theta, &first, 1e9));
    t_hvp(e, theta, &all, 1, V, hv, NULL);
    t_hvp(plain, theta, &all, 1, V, want, NULL);
    cr_expect(!memcmp(hv, want, sizeof(double) * d), "the product on 201 rows read the freeze on 200");
    t_hvp(e, theta, &first, 1, V, hv, NULL);   /* and the frozen set itself still is */
    t_hvp(plain, theta, &first, 1, V, want, NULL);
    cr_expect(!memcmp(hv, want, sizeof(double) * d));
    nt_engine_free(e);
    nt_engine_free(plain);
    free(theta); free(V); free(hv); free(want);
    nt_dataset_free(&all);
    nt_model_free(&m);
}

/* the caller's hook under lanes with batch normalization: lane 0 hands it the lanes' total
 * of each in-pass sum, so it is called as often as with one lane (each batch-norm phase, and
 * the final sums), and the results are one lane's to round-off */
static int count_fn(void *ctx, double *sums, int64_t len, int64_t *n, nt_error *err)
{
    (void)sums; (void)len; (void)n; (void)err;
    (*(int *)ctx)++;
    return NT_OK;
}

Test(lanes, batch_norm_under_the_callers_hook)
{
    nt_model m;
    nt_error err = {0};
    nt_layer L[] = { DENSE(6), {.kind = NT_LAYER_BATCHNORM, .affine = 1, .eps = 1e-5}, ACT(NT_ACT_TANH), DENSE(3) };
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){4, 0, 0}, L, 4, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_OK, "%s",
                 err.msg);
    nt_dataset ds;
    make_data(&ds, &m, 140, 40);
    const int64_t d = m.d;
    double *theta = malloc(sizeof(double) * d), *V = malloc(sizeof(double) * KBLOCK * d);
    double *HV[2] = { malloc(sizeof(double) * KBLOCK * d), malloc(sizeof(double) * KBLOCK * d) };
    fill_normal(theta, d, 0.4, 41);
    fill_normal(V, KBLOCK * d, 1.0, 42);
    int calls[2] = {0};
    for (int T = 1; T <= 2; T++) {
        nt_engine *e = nt_engine_new(&m, CHUNK, KBLOCK);
        nt_engine_set_threads(e, T);
        cr_assert_eq(nt_engine_set_reduce(e, count_fn, &calls[T - 1], &err), NT_OK);
        t_hvp(e, theta, &ds, KBLOCK, V, HV[T - 1], NULL);
        nt_engine_free(e);
    }
    cr_expect_gt(calls[0], 1, "batch norm's phases did not reach the hook");
    cr_expect_eq(calls[1], calls[0], "the hook was called %d times with 2 lanes, %d with one", calls[1], calls[0]);
    const double w = nt_rel_diff(KBLOCK * d, HV[1], HV[0]);
    cr_expect_leq(w, 1e-13, "2 lanes under the hook: %.2e from one lane", w);
    free(theta); free(V); free(HV[0]); free(HV[1]);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}
