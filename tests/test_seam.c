/* test_seam.c: the API's seams for data parallelism and for bindings.
 *   - the reduction hook (nt_engine_set_reduce): a hook that does nothing changes no bit; a
 *     two-shard simulation (each half of a data set, its hook adding the other half's sums
 *     and N) gives the whole set's loss, gradient and H v, and a GD run on one half gives
 *     the whole set's run; without the hook the half's results differ (negative control);
 *   - the frozen engine is keyed on theta's value: theta changed in place after the freeze
 *     gives the product at the new theta, not the stale one;
 *   - libnoether.so exports the public names of noether.h and nothing else. */
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

#define MAX_CALLS 8

/* a hook that keeps a copy of each buffer and N it is handed and changes nothing */
typedef struct {
    double *buf[MAX_CALLS];
    int64_t len[MAX_CALLS], n;
    int calls;
} capture;

static int capture_fn(void *ctx, double *sums, int64_t len, int64_t *n, nt_error *err)
{
    (void)err;
    capture *c = ctx;
    cr_assert_lt(c->calls, MAX_CALLS);
    free(c->buf[c->calls]);
    c->buf[c->calls] = malloc(sizeof(double) * (size_t)len);
    memcpy(c->buf[c->calls], sums, sizeof(double) * (size_t)len);
    c->len[c->calls++] = len;
    c->n = *n;
    return NT_OK;
}

static void capture_free(capture *c)
{
    for (int i = 0; i < MAX_CALLS; i++) free(c->buf[i]);
    memset(c, 0, sizeof *c);
}

/* a hook that adds the other shard's sums of the same call (and its N): what an allreduce of
 * two ranks returns */
typedef struct {
    const capture *other;
    int calls;
} adder;

static int add_fn(void *ctx, double *sums, int64_t len, int64_t *n, nt_error *err)
{
    (void)err;
    adder *a = ctx;
    cr_assert_lt(a->calls, a->other->calls);
    cr_assert_eq(len, a->other->len[a->calls], "the shards' buffers differ in length");
    for (int64_t i = 0; i < len; i++) sums[i] += a->other->buf[a->calls][i];
    *n += a->other->n;
    a->calls++;
    return NT_OK;
}

static int nothing_fn(void *ctx, double *sums, int64_t len, int64_t *n, nt_error *err)
{
    (void)err;
    (*(int *)ctx)++;
    return NT_OK;
}

typedef struct {
    nt_model m;
    nt_dataset ds, half[2];   /* the halves: views of ds, rows [0, h) and [h, n) */
    int64_t d;
    double *theta, *V;
} fixture;

enum { N = 23, CHUNK = 5, K = 3, KBLOCK = 2 };   /* odd halves, chunks that do not divide them, two blocks */

static void fixture_new(fixture *f)
{
    const int widths[2] = {6, 5};
    make_mlp(&f->m, 4, 2, widths, NT_ACT_TANH, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.01);
    make_data(&f->ds, &f->m, N, 41);
    const int64_t h = 11;
    f->half[0] = (nt_dataset){ h, f->ds.dim, f->ds.ydim, f->ds.x, f->ds.y };
    f->half[1] = (nt_dataset){ N - h, f->ds.dim, f->ds.ydim, f->ds.x + h * f->ds.dim, f->ds.y + h * f->ds.ydim };
    f->d = f->m.d;
    f->theta = malloc(sizeof(double) * (size_t)f->d);
    f->V = malloc(sizeof(double) * (size_t)(K * f->d));
    fill_normal(f->theta, f->d, 0.5, 42);
    fill_normal(f->V, K * f->d, 1.0, 43);
}

static void fixture_free(fixture *f)
{
    free(f->theta);
    free(f->V);
    nt_dataset_free(&f->ds);
    nt_model_free(&f->m);
}

/* loss, gradient, and H v with g (K products in blocks of KBLOCK) of e on ds */
typedef struct { double loss, loss_h, *g, *gh, *HV; } results;

static results compute(nt_engine *e, const fixture *f, const nt_dataset *ds)
{
    results r = { 0, 0, malloc(sizeof(double) * (size_t)f->d), malloc(sizeof(double) * (size_t)f->d),
                  malloc(sizeof(double) * (size_t)(K * f->d)) };
    r.loss = t_grad(e, f->theta, ds, r.g);
    r.loss_h = t_hvp(e, f->theta, ds, K, f->V, r.HV, r.gh);
    return r;
}

static void results_free(results *r)
{
    free(r->g); free(r->gh); free(r->HV);
}

Test(seam, a_hook_that_does_nothing_changes_no_bit)
{
    fixture f;
    fixture_new(&f);
    nt_error err = {0};
    nt_engine *plain = nt_engine_new(&f.m, CHUNK, KBLOCK), *hooked = nt_engine_new(&f.m, CHUNK, KBLOCK);
    int calls = 0;
    cr_assert_eq(nt_engine_set_reduce(hooked, nothing_fn, &calls, &err), NT_OK, "%s", err.msg);
    results a = compute(plain, &f, &f.ds), b = compute(hooked, &f, &f.ds);
    cr_assert_eq(calls, 1 + 2, "the hook ran %d times, not once for nt_grad and once per block of nt_hvp", calls);
    cr_assert_eq(memcmp(&a.loss, &b.loss, sizeof a.loss), 0);
    cr_assert_eq(memcmp(&a.loss_h, &b.loss_h, sizeof a.loss), 0);
    cr_assert_eq(memcmp(a.g, b.g, sizeof(double) * (size_t)f.d), 0);
    cr_assert_eq(memcmp(a.gh, b.gh, sizeof(double) * (size_t)f.d), 0);
    cr_assert_eq(memcmp(a.HV, b.HV, sizeof(double) * (size_t)(K * f.d)), 0);
    double la = t_loss_value(plain, f.theta, &f.ds), lb = t_loss_value(hooked, f.theta, &f.ds);
    cr_assert_eq(memcmp(&la, &lb, sizeof la), 0);
    cr_assert_eq(calls, 4);
    /* the frozen path too */
    double *HVa = malloc(sizeof(double) * (size_t)(K * f.d)), *HVb = malloc(sizeof(double) * (size_t)(K * f.d));
    cr_assert_eq(nt_engine_freeze(hooked, f.theta, &f.ds, 1e9), 1);
    t_hvp(plain, f.theta, &f.ds, K, f.V, HVa, NULL);
    t_hvp(hooked, f.theta, &f.ds, K, f.V, HVb, NULL);
    cr_assert_eq(calls, 6);
    cr_assert_eq(memcmp(HVa, HVb, sizeof(double) * (size_t)(K * f.d)), 0);
    /* control: the comparison sees one ulp */
    b.g[3] = nextafter(b.g[3], INFINITY);
    cr_assert_neq(memcmp(a.g, b.g, sizeof(double) * (size_t)f.d), 0);
    /* removed, the hook is not called */
    cr_assert_eq(nt_engine_set_reduce(hooked, NULL, NULL, &err), NT_OK);
    t_loss_value(hooked, f.theta, &f.ds);
    cr_assert_eq(calls, 6);
    free(HVa); free(HVb);
    results_free(&a); results_free(&b);
    nt_engine_free(plain); nt_engine_free(hooked);
    fixture_free(&f);
}

/* the worst relative difference of the shard's results from the whole set's */
static double worst(const results *a, const results *b, int64_t d)
{
    double w = fabs(a->loss - b->loss) / fabs(a->loss);
    w = fmax(w, fabs(a->loss_h - b->loss_h) / fabs(a->loss_h));
    w = fmax(w, nt_rel_diff(d, a->g, b->g));
    w = fmax(w, nt_rel_diff(d, a->gh, b->gh));
    for (int j = 0; j < K; j++) w = fmax(w, nt_rel_diff(d, a->HV + j * d, b->HV + j * d));
    return w;
}

Test(seam, two_shards_with_the_hook_give_the_whole_set)
{
    fixture f;
    fixture_new(&f);
    nt_error err = {0};
    nt_engine *whole = nt_engine_new(&f.m, CHUNK, KBLOCK);
    results all = compute(whole, &f, &f.ds);
    for (int s = 0; s < 2; s++) {   /* each shard in turn, the other one's sums precomputed */
        nt_engine *other = nt_engine_new(&f.m, CHUNK, KBLOCK), *mine = nt_engine_new(&f.m, CHUNK, KBLOCK);
        capture cap = {0};
        cr_assert_eq(nt_engine_set_reduce(other, capture_fn, &cap, &err), NT_OK, "%s", err.msg);
        results o = compute(other, &f, &f.half[1 - s]);
        cr_assert_eq(cap.calls, 3);
        cr_assert_eq(cap.n, f.half[1 - s].n, "the hook was not handed this shard's N");
        cr_assert_eq(cap.len[0], 1 + f.d);
        cr_assert_eq(cap.len[1], 1 + f.d + KBLOCK * f.d);
        cr_assert_eq(cap.len[2], 1 + f.d + (K - KBLOCK) * f.d);
        adder add = { &cap, 0 };
        cr_assert_eq(nt_engine_set_reduce(mine, add_fn, &add, &err), NT_OK, "%s", err.msg);
        results r = compute(mine, &f, &f.half[s]);
        cr_assert_eq(add.calls, 3);
        double w = worst(&all, &r, f.d);
        cr_log_info("shard %d with the hook: worst relative difference %.3g", s, w);
        cr_assert_leq(w, 1e-14, "shard %d: %.3g from the whole set's results", s, w);
        /* control: the same shard without the hook is its own half, not the whole set */
        nt_engine *alone = nt_engine_new(&f.m, CHUNK, KBLOCK);
        results h = compute(alone, &f, &f.half[s]);
        double wh = worst(&all, &h, f.d);
        cr_log_info("shard %d without the hook: %.3g", s, wh);
        cr_assert_gt(wh, 1e-3, "the half alone gave the whole set's results (%.3g)", wh);
        results_free(&o); results_free(&r); results_free(&h);
        capture_free(&cap);
        nt_engine_free(other); nt_engine_free(mine); nt_engine_free(alone);
    }
    results_free(&all);
    nt_engine_free(whole);
    fixture_free(&f);
}

/* the other shard, run at the trainer's current theta whenever the trainer's engine reduces:
 * the simulation of a second rank taking the same step */
typedef struct {
    nt_engine *e;          /* its engine, capturing its sums */
    capture cap;
    const nt_dataset *ds;
    const double *theta;   /* the trainer's theta (updated in place) */
    double *g;
    int calls;
} other_rank;

static int other_rank_fn(void *ctx, double *sums, int64_t len, int64_t *n, nt_error *err)
{
    (void)err;
    other_rank *o = ctx;
    o->cap.calls = 0;
    t_grad(o->e, o->theta, o->ds, o->g);
    adder add = { &o->cap, 0 };
    o->calls++;
    return add_fn(&add, sums, len, n, NULL);
}

static const char train_json[] =
    "{\"model\": {\"input\": 5, \"layers\": [{\"dense\": 6}, {\"act\": \"tanh\"}, {\"dense\": 3}],"
    " \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"teacher\", \"n\": 64, \"seed\": 3},"
    " \"init\": {\"seed\": 1, \"bias_std\": 0.2}, \"weight_decay\": 0.01,"
    " \"train\": {\"optimizer\": \"gd\", \"lr\": 0.5, \"steps\": 20}}";

Test(seam, a_gd_run_on_one_shard_with_the_hook_is_the_whole_sets_run)
{
    nt_spec spec;
    nt_data data;
    nt_error err = {0};
    cr_assert_eq(nt_spec_parse(train_json, "seam.json", &spec, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&spec, &data, &err), NT_OK, "%s", err.msg);
    const nt_model *m = &spec.model;
    const int64_t d = m->d, h = 29;
    const nt_dataset *all = &data.train;
    nt_dataset half[2] = { { h, all->dim, all->ydim, all->x, all->y },
                           { all->n - h, all->dim, all->ydim, all->x + h * all->dim, all->y + h * all->ydim } };
    double *th_all = malloc(sizeof(double) * (size_t)d), *th_shard = malloc(sizeof(double) * (size_t)d);
    double *th_alone = malloc(sizeof(double) * (size_t)d);
    nt_init_params(m, &spec.init, th_all);
    memcpy(th_shard, th_all, sizeof(double) * (size_t)d);
    memcpy(th_alone, th_all, sizeof(double) * (size_t)d);
    cr_assert_eq(nt_train(&spec, &data, NULL, 0, th_all, NULL, 0, NULL, NULL, &err), NT_OK, "%s", err.msg);

    nt_data mine = { .train = half[0] };
    other_rank o = { .e = nt_engine_new(m, 1024, 1), .ds = &half[1], .theta = th_shard,
                     .g = malloc(sizeof(double) * (size_t)d) };
    cr_assert_eq(nt_engine_set_reduce(o.e, capture_fn, &o.cap, &err), NT_OK, "%s", err.msg);
    nt_train_state st;
    cr_assert_eq(nt_train_state_init(&st, d), NT_OK);
    nt_train_control ctl = { .state = &st, .reduce = other_rank_fn, .reduce_ctx = &o };
    cr_assert_eq(nt_train_run(&spec, &mine, NULL, 0, th_shard, NULL, 0, NULL, NULL, &ctl, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(o.calls, spec.train.steps, "the hook ran %d times in %lld steps", o.calls, (long long)spec.train.steps);
    double w = nt_rel_diff(d, th_all, th_shard);
    cr_log_info("theta after %lld GD steps, one shard with the hook against the whole set: %.3g",
                (long long)spec.train.steps, w);
    cr_assert_leq(w, 1e-14, "%.3g", w);

    /* control: the shard alone trains on its half */
    cr_assert_eq(nt_train(&spec, &mine, NULL, 0, th_alone, NULL, 0, NULL, NULL, &err), NT_OK, "%s", err.msg);
    double wa = nt_rel_diff(d, th_all, th_alone);
    cr_log_info("... without the hook: %.3g", wa);
    cr_assert_gt(wa, 1e-4, "%.3g", wa);

    nt_train_state_free(&st);
    capture_free(&o.cap);
    free(o.g);
    nt_engine_free(o.e);
    free(th_all); free(th_shard); free(th_alone);
    nt_data_free(&data);
    nt_spec_free(&spec);
}

Test(seam, the_frozen_engine_sees_theta_changed_in_place)
{
    fixture f;
    fixture_new(&f);
    const int64_t d = f.d;
    nt_engine *frozen = nt_engine_new(&f.m, CHUNK, K), *plain = nt_engine_new(&f.m, CHUNK, K);
    double *HVf = malloc(sizeof(double) * (size_t)(K * d)), *HVp = malloc(sizeof(double) * (size_t)(K * d));
    double *stale = malloc(sizeof(double) * (size_t)(K * d));
    double *copy = malloc(sizeof(double) * (size_t)d);
    memcpy(copy, f.theta, sizeof(double) * (size_t)d);
    cr_assert_eq(nt_engine_freeze(frozen, f.theta, &f.ds, 1e9), 1);
    t_hvp(frozen, f.theta, &f.ds, K, f.V, stale, NULL);   /* at the frozen theta */
    for (int64_t i = 0; i < d; i++) f.theta[i] *= 1.5;     /* in place, as an optimizer on a NumPy array */
    t_hvp(frozen, f.theta, &f.ds, K, f.V, HVf, NULL);
    t_hvp(plain, f.theta, &f.ds, K, f.V, HVp, NULL);
    cr_assert_eq(memcmp(HVf, HVp, sizeof(double) * (size_t)(K * d)), 0,
                 "the frozen engine's product at the changed theta is not the product there (%.3g from it)",
                 nt_rel_diff(K * d, HVf, HVp));
    cr_assert_gt(nt_rel_diff(K * d, stale, HVp), 1e-3, "control: the change of theta changes the product");
    /* the same value at another address is the frozen point: bitwise the unfrozen product */
    t_hvp(frozen, copy, &f.ds, K, f.V, HVf, NULL);
    cr_assert_eq(memcmp(HVf, stale, sizeof(double) * (size_t)(K * d)), 0);
    t_hvp(plain, copy, &f.ds, K, f.V, HVp, NULL);
    cr_assert_eq(memcmp(HVf, HVp, sizeof(double) * (size_t)(K * d)), 0);
    free(copy); free(HVf); free(HVp); free(stale);
    nt_engine_free(frozen); nt_engine_free(plain);
    fixture_free(&f);
}

/* the names noether.h declares NT_API, one per line in a string ("\nname\n...") */
static char *public_names(void)
{
    char *h = read_file(NOETHER_SOURCE_DIR "/include/noether.h", NULL);
    cr_assert_not_null(h);
    size_t cap = strlen(h) + 2, len = 1;
    char *names = calloc(cap, 1);
    names[0] = '\n';
    for (const char *p = strstr(h, "\nNT_API "); p; p = strstr(p + 1, "\nNT_API ")) {
        const char *open = strchr(p, '('), *q = open;
        while (q > p && (q[-1] == '_' || (q[-1] >= 'a' && q[-1] <= 'z') || (q[-1] >= 'A' && q[-1] <= 'Z') ||
                         (q[-1] >= '0' && q[-1] <= '9'))) q--;
        memcpy(names + len, q, (size_t)(open - q));
        len += (size_t)(open - q);
        names[len++] = '\n';
    }
    free(h);
    return names;
}

/* the defined global function names `nm ARGS path` lists that noether.h does not mark
 * NT_API, into bad (comma-separated); returns how many names it listed in all, -1 without nm */
static int not_public(const char *args, const char *path, const char *names, char *bad, size_t cap)
{
    char cmd[2 * NT_PATH_MAX], line[512], sym[256], key[260];
    snprintf(cmd, sizeof cmd, "nm %s '%s' 2>/dev/null", args, path);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    int listed = 0;
    bad[0] = 0;
    while (fgets(line, sizeof line, f)) {
        char type;
        if (sscanf(line, "%*s %c %255s", &type, sym) != 2 || type != 'T') continue;
        listed++;
        snprintf(key, sizeof key, "\n%s\n", sym);
        if (!strstr(names, key) && strlen(bad) + strlen(sym) + 2 < cap) {
            strcat(bad, sym);
            strcat(bad, ",");
        }
    }
    return pclose(f) == 0 ? listed : -1;
}

/* An output map set after a freeze changes the loss the kept values were computed for: the
 * engine thaws, and its products are the ones under the map (they were the old loss's) */
Test(seam, an_output_map_after_a_freeze_is_the_maps_product)
{
    fixture f;
    fixture_new(&f);
    const int64_t d = f.d;
    const double rho[9] = {0, 1, 0, 1, 0, 0, 0, 0, 1};   /* outputs 0 and 1 exchanged */
    nt_engine *frozen = nt_engine_new(&f.m, CHUNK, K), *plain = nt_engine_new(&f.m, CHUNK, K);
    double *HVf = malloc(sizeof(double) * (size_t)(K * d)), *HVp = malloc(sizeof(double) * (size_t)(K * d));
    cr_assert_eq(nt_engine_freeze(frozen, f.theta, &f.ds, 1e9), 1);
    t_hvp(frozen, f.theta, &f.ds, K, f.V, HVf, NULL);
    t_hvp(plain, f.theta, &f.ds, K, f.V, HVp, NULL);
    cr_assert_eq(memcmp(HVf, HVp, sizeof(double) * (size_t)(K * d)), 0, "frozen and plain agree without a map");
    nt_engine_set_output_map(frozen, rho);
    nt_engine_set_output_map(plain, rho);
    t_hvp(frozen, f.theta, &f.ds, K, f.V, HVf, NULL);
    double *HVmap = malloc(sizeof(double) * (size_t)(K * d));
    t_hvp(plain, f.theta, &f.ds, K, f.V, HVmap, NULL);
    cr_expect_eq(memcmp(HVf, HVmap, sizeof(double) * (size_t)(K * d)), 0,
                 "after the map the product is the map's (%.3g from it)", nt_rel_diff(K * d, HVf, HVmap));
    cr_expect_gt(nt_rel_diff(K * d, HVp, HVmap), 1e-3, "control: the map changes the product");
    free(HVf); free(HVp); free(HVmap);
    nt_engine_free(frozen);
    nt_engine_free(plain);
    fixture_free(&f);
}

Test(seam, the_shared_library_exports_the_public_names_only)
{
    if (system("nm --version > /dev/null 2>&1") != 0) cr_skip_test("no nm");
    char dir[NT_PATH_MAX], so[NT_PATH_MAX + 32], a[NT_PATH_MAX + 32], bad[8192];
    snprintf(dir, sizeof dir, "%s", NOETHER_BIN);
    const char *build = dirname(dir);   /* libnoether.so and .a beside the noether binary */
    snprintf(so, sizeof so, "%s/libnoether.so", build);
    snprintf(a, sizeof a, "%s/libnoether.a", build);
    char *names = public_names();
    int n_public = 0;
    for (const char *p = names; *p; p++) n_public += *p == '\n';
    n_public--;
    int listed = not_public("-D --defined-only", so, names, bad, sizeof bad);
    cr_assert_geq(listed, 0, "nm failed on %s", so);
    cr_log_info("%s exports %d functions; noether.h marks %d NT_API", so, listed, n_public);
    cr_assert_str_empty(bad, "exported but not public: %s", bad);
    cr_assert_eq(listed, n_public, "%d exported, %d declared NT_API", listed, n_public);
    /* control: the static library (what the tests and the CLI link) holds the internal
     * names, and the check names them */
    cr_assert_gt(not_public("--defined-only", a, names, bad, sizeof bad), 0);
    cr_assert_not_null(strstr(bad, "nt_gemm,"), "the check did not see nt_gemm in %s: %s", a, bad);
    free(names);
}

/* a data set from outside (a binding's arrays) is checked before the engine, which returns
 * no status, is handed it */
Test(seam, a_data_set_from_outside_is_checked_against_the_model)
{
    fixture f;
    fixture_new(&f);
    nt_error err = {0};
    cr_assert_eq(nt_dataset_check(&f.m, &f.ds, &err), NT_OK, "%s", err.msg);   /* control: a good set passes */
    nt_dataset bad = f.ds;
    bad.n = 0;
    cr_assert_eq(nt_dataset_check(&f.m, &bad, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "0 samples"), "%s", err.msg);
    bad = f.ds;
    bad.dim = f.ds.dim + 1;
    cr_assert_eq(nt_dataset_check(&f.m, &bad, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "5 features per sample, the model takes 4"), "%s", err.msg);
    bad = f.ds;
    bad.ydim = 3;
    cr_assert_eq(nt_dataset_check(&f.m, &bad, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "3 targets per sample"), "%s", err.msg);
    bad = f.ds;
    bad.y = NULL;
    cr_assert_eq(nt_dataset_check(&f.m, &bad, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "target (y)"), "%s", err.msg);
    double keep = f.ds.x[2 * 4 + 1];
    f.ds.x[2 * 4 + 1] = NAN;
    cr_assert_eq(nt_dataset_check(&f.m, &f.ds, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "feature 1 of sample 2 is not finite"), "%s", err.msg);
    f.ds.x[2 * 4 + 1] = keep;
    f.ds.y[7] = 3;   /* three outputs: class ids 0..2 */
    cr_assert_eq(nt_dataset_check(&f.m, &f.ds, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "label 3 of sample 7 is not a class id in 0..2"), "%s", err.msg);
    f.ds.y[7] = 1.5;
    cr_assert_eq(nt_dataset_check(&f.m, &f.ds, &err), NT_EINPUT);
    f.ds.y[7] = 2;
    cr_assert_eq(nt_dataset_check(&f.m, &f.ds, &err), NT_OK, "%s", err.msg);
    fixture_free(&f);
}
