/* test_libtrain.c: what noether train computes is the library's (issue #15): the initial theta
 * of a spec (nt_spec_theta), the distances of theta to the fixed-point sets of the discrete
 * symmetries along a run (nt_fixed_distances, nt_fixed_track_*) and the stability report of
 * the fixed points a run starts on (nt_fixed_points_analyse, docs/theory.md §4).  Each is
 * checked through the library, against the built binary's files bit for bit, and against
 * the mathematics; every test has a negative control showing that its comparison can fail. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cJSON.h>
#include <criterion/criterion.h>
#include "helpers.h"

/* A tanh MLP 4-6-3 on iris starting on the fixed points of a swap and a sign flip, off the
 * sign flip's by `perturb`; train is the JSON of "train". */
static void fixed_spec(const char *path, double wd, double perturb, const char *train)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 6}, {\"act\": \"tanh\"}, {\"dense\": 3}],"
             " \"loss\": \"cross_entropy\"},\n \"data\": {\"source\": \"builtin\", \"name\": \"iris\", \"standardize\": true},\n"
             " \"init\": {\"seed\": 1, \"bias_std\": 0.1, \"fixed_point\": [\"sign_flip[layer=0,unit=2]\","
             " \"swap[layer=0,units=3,4]\"], \"perturb\": %.17g},\n \"weight_decay\": %.17g,\n \"train\": %s}\n",
             perturb, wd, train);
    write_text(path, text);
}

static void load_spec(const char *path, nt_spec *spec)
{
    nt_error err = {0};
    cr_assert_eq(nt_spec_load(path, spec, &err), NT_OK, "%s", err.msg);
}

/* `noether train spec -o dir --quiet`, expecting exit 0 */
static void train_cli(const char *spec, const char *dir)
{
    char args[3 * NT_PATH_MAX];
    snprintf(args, sizeof args, "train %s -o %s --quiet", spec, dir);
    expect_rc(args, 0, NULL);
}

static const cJSON *item(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    cr_assert_not_null(v, "no key %s", k);
    return v;
}

/* ---- 1. the initial theta of a spec ---------------------------------------------------- */

/* nt_spec_theta is bitwise the theta noether train starts from (params_init.npy), with and
 * without init.fixed_point (and with a perturbation off it), and with the catalogue passed
 * in or built by the call.  Negative control: the plain seeded draw (nt_init_params) is not
 * the fixed-point spec's theta, and is the plain spec's. */
Test(libtrain, spec_theta_is_the_cli_theta)
{
    char dir[256], perturbed[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(perturbed, dir, "perturbed.json");
    fixed_spec(perturbed, 0.01, 1e-3, "{\"optimizer\": \"gd\", \"lr\": 0.05, \"steps\": 3, \"log_every\": 1}");
    const char *specs[] = {NOETHER_SOURCE_DIR "/examples/collapsed_units.json",
                           NOETHER_SOURCE_DIR "/examples/ziyin_mirror.json", perturbed};
    const int fixed[] = {1, 0, 1};
    for (int s = 0; s < 3; s++) {
        char out[NT_PATH_MAX], npy[NT_PATH_MAX];
        snprintf(out, sizeof out, "%s/run%d", dir, s);
        train_cli(specs[s], out);
        path_join(npy, out, "params_init.npy");
        nt_spec spec;
        load_spec(specs[s], &spec);
        const int64_t d = spec.model.d;
        nt_array cli = {0};
        nt_error err = {0};
        cr_assert_eq(nt_npy_read(npy, &cli, &err), NT_OK, "%s", err.msg);
        cr_assert_eq(cli.size, d);
        double *theta = malloc(sizeof(double) * (size_t)d), *with = malloc(sizeof(double) * (size_t)d);
        double *plain = malloc(sizeof(double) * (size_t)d);
        cr_assert_eq(nt_spec_theta(&spec, NULL, 0, theta, &err), NT_OK, "%s", err.msg);
        cr_expect_eq(memcmp(theta, cli.data, sizeof(double) * (size_t)d), 0, "%s: nt_spec_theta is not the CLI's theta",
                     specs[s]);
        nt_transform *list;
        int n;
        cr_assert_eq(nt_catalogue(&spec.model, &list, &n), NT_OK);
        cr_assert_eq(nt_spec_theta(&spec, list, n, with, &err), NT_OK, "%s", err.msg);
        cr_expect_eq(memcmp(with, theta, sizeof(double) * (size_t)d), 0, "%s: the catalogue passed in changes theta",
                     specs[s]);
        /* negative control: the seeded draw alone is the CLI's theta only without fixed points */
        nt_init_params(&spec.model, &spec.init, plain);
        const int same = memcmp(plain, cli.data, sizeof(double) * (size_t)d) == 0;
        const double diff = nt_rel_diff(d, plain, cli.data);
        cr_expect_eq(same, !fixed[s], "%s: nt_init_params %s the CLI's theta (relative difference %.3e)", specs[s],
                     same ? "is" : "is not", diff);
        if (fixed[s]) cr_expect_gt(diff, 1e-3, "%s: the fixed-point start barely moves theta", specs[s]);
        cr_log_info("%s: d = %lld, nt_init_params vs the CLI's theta: %.3e", specs[s], (long long)d, diff);
        nt_transforms_free(list, n);
        free(theta); free(with); free(plain);
        nt_array_free(&cli);
        nt_spec_free(&spec);
    }
}

/* A fixed point that is not a swap or sign flip of the model: NT_EINPUT from the library
 * naming the spec file and the key, and the CLI's exit 2 with the same line.  Control: the
 * same spec with a valid name loads. */
Test(libtrain, spec_theta_refuses_an_unknown_fixed_point)
{
    char dir[256], path[NT_PATH_MAX], args[3 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(path, dir, "spec.json");
    for (int valid = 0; valid < 2; valid++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 6}, {\"act\": \"tanh\"}, {\"dense\": 3}],"
                 " \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"builtin\", \"name\": \"iris\"},"
                 " \"init\": {\"fixed_point\": [\"%s\"]}}", valid ? "sign_flip[layer=0,unit=0]" : "output_swap[outputs=0,1]");
        write_text(path, text);
        nt_spec spec;
        load_spec(path, &spec);
        double *theta = malloc(sizeof(double) * (size_t)spec.model.d);
        nt_error err = {0};
        int rc = nt_spec_theta(&spec, NULL, 0, theta, &err);
        if (valid) {
            cr_expect_eq(rc, NT_OK, "%s", err.msg);
        } else {
            cr_expect_eq(rc, NT_EINPUT);
            cr_expect_not_null(strstr(err.msg, path), "the message does not name the file: %s", err.msg);
            cr_expect_not_null(strstr(err.msg, "init.fixed_point[0]"), "the message does not name the key: %s", err.msg);
            snprintf(args, sizeof args, "info %s", path);
            char *out, *cerr;
            cr_expect_eq(run_noether(args, &out, &cerr), NT_EINPUT);
            char line[1024];
            snprintf(line, sizeof line, "noether info: %s\n", err.msg);
            cr_expect_str_eq(cerr, line, "the CLI's line is not the library's message");
            free(out);
            free(cerr);
        }
        free(theta);
        nt_spec_free(&spec);
    }
}

/* ---- 2. distances to Fix(T) ------------------------------------------------------------- */

/* dist_T(theta) = |theta - T theta| / 2 is |O theta|, the norm of theta's part in Fix(T)^perp
 * (O the orthonormal breaking basis, nt_breaking_basis: another computation), for every
 * built-in swap and sign flip; 0 for the entries not tracked (continuous, equivariances);
 * and at most round-off on theta projected onto Fix(T) by nt_start_fixed.  Negative control:
 * at the unprojected theta the distance is far from 0. */
Test(libtrain, distances_are_the_distance_to_fix)
{
    model_fixture f;
    const int widths[] = {5, 4};
    mf_new(&f, 3, 2, widths, NT_ACT_TANH, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.01, 20, 20, 4, 7);
    const int64_t d = f.m.d;
    double *dist = malloc(sizeof(double) * (size_t)f.n), *at = malloc(sizeof(double) * (size_t)f.n);
    double *theta = malloc(sizeof(double) * (size_t)d);
    nt_error err = {0};
    cr_assert_eq(nt_fixed_distances(&f.m, f.list, f.n, f.theta, dist, &err), NT_OK, "%s", err.msg);
    int tracked = 0;
    for (int t = 0; t < f.n; t++) {
        const nt_transform *T = &f.list[t];
        cr_expect_eq(nt_fixed_tracked(T), T->discrete && !T->equivariance, "%s", T->name);
        if (!nt_fixed_tracked(T)) {
            cr_expect_eq(dist[t], 0.0, "%s is not tracked but has distance %g", T->name, dist[t]);
            continue;
        }
        tracked++;
        const int dim = nt_breaking_dim(&f.m, T);
        cr_assert_gt(dim, 0, "%s", T->name);
        double *O = malloc(sizeof(double) * (size_t)dim * (size_t)d), s = 0;
        nt_breaking_basis(&f.m, T, O);
        for (int i = 0; i < dim; i++) {
            double c = 0;
            for (int64_t x = 0; x < d; x++) c += O[(int64_t)i * d + x] * f.theta[x];
            s += c * c;
        }
        free(O);
        const double want = sqrt(s);
        cr_expect_leq(fabs(dist[t] - want), 1e-14 * want, "%s: |theta - T theta|/2 = %.17g, |O theta| = %.17g", T->name,
                      dist[t], want);
        cr_expect_gt(dist[t], 1e-2, "%s: the random theta is near Fix(T) (negative control)", T->name);
        /* onto Fix(T): the distance vanishes to round-off */
        nt_init init = {0};
        init.n_fixed = 1;
        snprintf(init.fixed_point[0], sizeof init.fixed_point[0], "%s", T->name);
        memcpy(theta, f.theta, sizeof(double) * (size_t)d);
        cr_assert_eq(nt_start_fixed(&f.m, f.list, f.n, &init, theta, &err), NT_OK, "%s", err.msg);
        cr_assert_eq(nt_fixed_distances(&f.m, f.list, f.n, theta, at, &err), NT_OK);
        cr_expect_leq(at[t], 1e-15 * nt_norm2(d, theta), "%s: distance %.3e on Fix(T)", T->name, at[t]);
    }
    cr_expect_eq(tracked, 4 + 3 + 5 + 4, "adjacent swaps and sign flips of two tanh layers of 5 and 4 units");
    free(dist); free(at); free(theta);
    mf_free(&f);
}

/* ---- 3. the run: the library's track and report are the CLI's ------------------------- */

typedef struct {
    const nt_spec *spec;
    const nt_transform *list;
    int n;
    nt_fixed_track tr;
    double *rows;   /* the latest distances of the tracked entries, a row per log */
    int n_tracked, n_rows;
} lib_run;

static void on_log(void *ctx, const nt_train_log *L, const double *theta, const nt_quantity *q, int nq)
{
    lib_run *r = ctx;
    nt_fixed_track_log(&r->tr, &r->spec->model, r->list, L->step, theta);
    r->rows = realloc(r->rows, sizeof(double) * (size_t)((r->n_rows + 1) * r->n_tracked));
    for (int t = 0, j = 0; t < r->n; t++)
        if (nt_fixed_tracked(&r->list[t])) r->rows[r->n_rows * r->n_tracked + j++] = r->tr.latest[t];
    r->n_rows++;
}

/* The run through the library (nt_train from nt_spec_theta) with the track fed at each log. */
static void lib_train(const nt_spec *spec, nt_data *data, nt_transform **list, int *n, double *theta0, lib_run *r)
{
    nt_error err = {0};
    cr_assert_eq(nt_data_load(spec, data, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_catalogue(&spec->model, list, n), NT_OK);
    cr_assert_eq(nt_transforms_load(spec, list, n, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_spec_theta(spec, *list, *n, theta0, &err), NT_OK, "%s", err.msg);
    memset(r, 0, sizeof *r);
    r->spec = spec;
    r->list = *list;
    r->n = *n;
    for (int t = 0; t < *n; t++) r->n_tracked += nt_fixed_tracked(&(*list)[t]);
    cr_assert_eq(nt_fixed_track_init(&r->tr, &spec->model, *n, &err), NT_OK, "%s", err.msg);
    double *theta = malloc(sizeof(double) * (size_t)spec->model.d);
    memcpy(theta, theta0, sizeof(double) * (size_t)spec->model.d);
    nt_quantity *q;
    int nq;
    cr_assert_eq(nt_ledger_quantities(&spec->model, *list, *n, &q, &nq), NT_OK);
    cr_assert_eq(nt_train(spec, data, *list, *n, theta, q, nq, on_log, r, &err), NT_OK, "%s", err.msg);
    free(q);
    free(theta);
}

/* the last k comma-separated values of each data row of ledger.csv, as doubles */
static double *csv_tail(const char *path, int k, int *rows)
{
    char *text = read_file(path, NULL);
    cr_assert_not_null(text, "%s", path);
    double *v = NULL;
    int r = 0;
    char *line = strchr(text, '\n') + 1;   /* past the header */
    while (*line) {
        char *end = strchr(line, '\n');
        *end = 0;
        v = realloc(v, sizeof(double) * (size_t)((r + 1) * k));
        char *p = end;
        for (int j = k - 1; j >= 0; j--) {
            while (p > line && p[-1] != ',') p--;
            v[r * k + j] = strtod(p, NULL);
            p--;
        }
        r++;
        line = end + 1;
    }
    free(text);
    *rows = r;
    return v;
}

/* The distance columns of ledger.csv are the track's values at each log, bit for bit, and
 * summary.json's fixed_points are nt_fixed_points_analyse's (an engine like the CLI's: one
 * chunk, 16 tangents), bit for bit, for GD and for SGD; momentum gets no prediction.
 * Negative controls: the report at another start (the plain seeded draw, off the fixed
 * points) has another breaking spectrum, and a track missing its first logs has another
 * first-log distance. */
Test(libtrain, track_and_report_are_the_cli_columns)
{
    const char *trains[] = {"{\"optimizer\": \"gd\", \"lr\": 0.05, \"steps\": 60, \"log_every\": 8}",
                            "{\"optimizer\": \"sgd\", \"lr\": 0.05, \"steps\": 60, \"batch\": 16, \"seed\": 3, \"log_every\": 7}",
                            "{\"optimizer\": \"momentum\", \"lr\": 0.02, \"steps\": 40, \"log_every\": 10}"};
    for (int o = 0; o < 3; o++) {
        char dir[256], path[NT_PATH_MAX], out[NT_PATH_MAX], csv[NT_PATH_MAX];
        tmpdir_new(dir);
        path_join(path, dir, "spec.json");
        path_join(out, dir, "out");
        fixed_spec(path, 0.01, 1e-3, trains[o]);
        train_cli(path, out);
        nt_spec spec;
        load_spec(path, &spec);
        nt_data data;
        nt_transform *list;
        int n;
        lib_run r;
        double *theta0 = malloc(sizeof(double) * (size_t)spec.model.d);
        lib_train(&spec, &data, &list, &n, theta0, &r);
        /* the distance columns */
        int rows;
        path_join(csv, out, "ledger.csv");
        double *cols = csv_tail(csv, r.n_tracked, &rows);
        cr_assert_eq(rows, r.n_rows, "ledger.csv has %d rows, the library logged %d", rows, r.n_rows);
        cr_expect_eq(memcmp(cols, r.rows, sizeof(double) * (size_t)(rows * r.n_tracked)), 0,
                     "%s: the distance columns are not the track's", trains[o]);
        free(cols);
        /* the report */
        nt_engine *e = nt_engine_new(&spec.model, data.train.n < 1024 ? data.train.n : 1024, 16);
        nt_fixed_points fp;
        nt_error err = {0};
        cr_assert_eq(nt_fixed_points_analyse(e, &spec, &data.train, list, n, theta0, &r.tr, &fp, &err), NT_OK, "%s",
                     err.msg);
        cJSON *doc = json_file(out, "summary.json");
        const cJSON *arr = item(doc, "fixed_points");
        cr_assert_eq(cJSON_GetArraySize(arr), fp.n);
        cr_assert_eq(fp.n, 2, "two fixed points named");
        for (int i = 0; i < fp.n; i++) {
            const nt_fixed_point *p = &fp.points[i];
            const cJSON *o_ = cJSON_GetArrayItem(arr, i);
            cr_expect_str_eq(item(o_, "name")->valuestring, p->name);
            cr_expect_eq(json_num(o_, "breaking_dimension"), p->breaking_dimension);
            cr_expect_eq(json_num(o_, "lambda_min"), (p->lambda_min), "%s", p->name);
            cr_expect_eq(json_num(o_, "lambda_max"), (p->lambda_max), "%s", p->name);
            cr_expect_eq(json_num(o_, "distance_initial"), (p->distance_initial), "%s", p->name);
            cr_expect_eq(json_num(o_, "distance_final"), (p->distance_final), "%s", p->name);
            cr_expect_eq(p->predicted, o < 2);
            cr_expect_eq(cJSON_GetObjectItem(o_, "predicted_factor") != NULL, o < 2, "a prediction only for gd and sgd");
            if (o < 2) {
                cr_expect_eq(cJSON_IsTrue(item(o_, "stable_predicted")), p->stable_predicted);
                cr_expect_eq(json_num(o_, "predicted_factor"), (p->predicted_factor));
                cr_expect_eq(json_num(o_, "first_log_step"), (double)p->first_log_step);
                cr_expect_eq(json_num(o_, "predicted_distance_first_log"), (p->predicted_distance_first_log), "%s", p->name);
                cr_expect_eq(json_num(o_, "measured_distance_first_log"), (p->measured_distance_first_log), "%s", p->name);
            }
            const cJSON *mf = cJSON_GetObjectItem(o_, "measured_factor");
            cr_expect_eq(mf != NULL, !isnan(p->measured_factor), "%s: measured_factor", p->name);
            if (mf) cr_expect_eq(mf->valuedouble, (p->measured_factor), "%s", p->name);
        }
        /* the swap's start is exact: distance 0; the sign flip's is off by the perturbation */
        cr_expect_eq(fp.points[1].distance_initial, 0.0);
        cr_expect_leq(fabs(fp.points[0].distance_initial - 1e-3), 1e-15, "the perturbation's norm");
        /* negative controls */
        double *plain = malloc(sizeof(double) * (size_t)spec.model.d);
        nt_init_params(&spec.model, &spec.init, plain);
        nt_fixed_points other;
        cr_assert_eq(nt_fixed_points_analyse(e, &spec, &data.train, list, n, plain, &r.tr, &other, &err), NT_OK);
        cr_expect_gt(fabs(other.points[0].lambda_min - fp.points[0].lambda_min), 1e-6,
                     "the breaking spectrum does not depend on the start (negative control)");
        nt_fixed_points_free(&other);
        nt_fixed_track late = r.tr;
        late.first = late.second;   /* a track that saw the third log as its second */
        cr_assert_eq(nt_fixed_points_analyse(e, &spec, &data.train, list, n, theta0, &late, &other, &err), NT_OK);
        cr_expect_neq(other.points[0].measured_distance_first_log, fp.points[0].measured_distance_first_log,
                      "the first-log distance does not depend on the track (negative control)");
        nt_fixed_points_free(&other);
        free(plain);
        nt_fixed_points_free(&fp);
        cJSON_Delete(doc);
        nt_engine_free(e);
        nt_fixed_track_free(&r.tr);
        free(r.rows);
        free(theta0);
        nt_transforms_free(list, n);
        nt_data_free(&data);
        nt_spec_free(&spec);
    }
}

/* ---- 4. the stability report against the run ------------------------------------------ */

/* docs/theory.md §4 through the library: a dead tanh unit is a saddle without weight decay
 * and attractive with enough of it; the report predicts which (stable_predicted), and the
 * linearized distance at the first log matches the run's to a few percent.  Negative
 * control: the same report for a learning rate four times the run's misses it by far.
 * Without a run (tr NULL) the report has the spectrum and the distance at theta0 and nothing
 * measured; a track of another list is refused. */
Test(libtrain, stability_report_predicts_the_run)
{
    for (int stable = 0; stable < 2; stable++) {
        char dir[256], path[NT_PATH_MAX];
        tmpdir_new(dir);
        path_join(path, dir, "spec.json");
        fixed_spec(path, stable ? 2.0 : 0.0, 1e-6, "{\"optimizer\": \"gd\", \"lr\": 0.02, \"steps\": 48, \"log_every\": 16}");
        nt_spec spec;
        load_spec(path, &spec);
        nt_data data;
        nt_transform *list;
        int n;
        lib_run r;
        double *theta0 = malloc(sizeof(double) * (size_t)spec.model.d);
        lib_train(&spec, &data, &list, &n, theta0, &r);
        nt_engine *e = nt_engine_new(&spec.model, data.train.n, 16);
        nt_fixed_points fp, wrong, bare;
        nt_error err = {0};
        cr_assert_eq(nt_fixed_points_analyse(e, &spec, &data.train, list, n, theta0, &r.tr, &fp, &err), NT_OK, "%s",
                     err.msg);
        const nt_fixed_point *p = &fp.points[0];
        cr_assert_str_eq(p->name, "sign_flip[layer=0,unit=2]");
        cr_expect_eq(p->stable_predicted, stable, "predicted %s", p->stable_predicted ? "stable" : "unstable");
        cr_expect(stable ? p->distance_final < p->distance_initial : p->distance_final > p->distance_initial,
                  "distance %.3e -> %.3e", p->distance_initial, p->distance_final);
        cr_expect_eq(p->first_log_step, 16);
        const double error = fabs(p->predicted_distance_first_log - p->measured_distance_first_log) /
                             p->measured_distance_first_log;
        cr_expect_leq(error, 3e-2, "distance at step 16 predicted %.6e, measured %.6e", p->predicted_distance_first_log,
                      p->measured_distance_first_log);
        /* the measured factor over steps 16..32 against the predicted bound */
        cr_expect(isfinite(p->measured_factor));
        cr_expect_leq(p->measured_factor, p->predicted_factor * (1 + 1e-3), "measured %.6f, predicted at most %.6f",
                      p->measured_factor, p->predicted_factor);
        /* negative control: another learning rate's prediction */
        nt_spec fast = spec;
        fast.train.lr = 4 * spec.train.lr;
        cr_assert_eq(nt_fixed_points_analyse(e, &fast, &data.train, list, n, theta0, &r.tr, &wrong, &err), NT_OK);
        const double miss = fabs(wrong.points[0].predicted_distance_first_log - p->measured_distance_first_log) /
                            p->measured_distance_first_log;
        cr_expect_gt(miss, 0.1, "the prediction for lr x 4 matches the run too (%.3e)", miss);
        cr_log_info("%s: lambda_min %.4f, factor %.6f; step 16: predicted %.6e (lr x 4: %.6e), measured %.6e",
                    stable ? "stable" : "unstable", p->lambda_min, p->predicted_factor, p->predicted_distance_first_log,
                    wrong.points[0].predicted_distance_first_log, p->measured_distance_first_log);
        /* without a run */
        cr_assert_eq(nt_fixed_points_analyse(e, &spec, &data.train, list, n, theta0, NULL, &bare, &err), NT_OK);
        cr_expect_eq(bare.points[0].lambda_min, p->lambda_min);
        cr_expect_eq(bare.points[0].predicted_factor, p->predicted_factor);
        cr_expect_eq(bare.points[0].distance_initial, p->distance_initial);
        cr_expect(isnan(bare.points[0].distance_final) && isnan(bare.points[0].measured_factor));
        cr_expect_eq(bare.points[0].first_log_step, -1);
        /* a track of another list */
        nt_fixed_track other = r.tr;
        other.n = n - 1;
        cr_expect_eq(nt_fixed_points_analyse(e, &spec, &data.train, list, n, theta0, &other, &bare, &err), NT_EINPUT);
        nt_fixed_points_free(&fp);
        nt_fixed_points_free(&wrong);
        nt_fixed_points_free(&bare);
        nt_engine_free(e);
        nt_fixed_track_free(&r.tr);
        free(r.rows);
        free(theta0);
        nt_transforms_free(list, n);
        nt_data_free(&data);
        nt_spec_free(&spec);
    }
}

/* ---- 5. the track across a resume ------------------------------------------------------ */

/* The CLI keeps the track in its checkpoint (records cli.distances, cli.logs): a run stopped
 * by SIGTERM after its third log and resumed writes the uninterrupted run's fixed_points.
 * Negative control: the same resume from a checkpoint whose recorded distances were changed
 * writes other distances. */
Test(libtrain, track_survives_a_resume, .timeout = 300)
{
    char dir[256], path[NT_PATH_MAX], a[NT_PATH_MAX], b[NT_PATH_MAX], c[NT_PATH_MAX], ck[NT_PATH_MAX];
    char args[3 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(path, dir, "spec.json");
    path_join(a, dir, "a");
    path_join(b, dir, "b");
    path_join(c, dir, "c");
    fixed_spec(path, 0.01, 1e-3, "{\"optimizer\": \"gd\", \"lr\": 0.02, \"steps\": 60000, \"log_every\": 100,"
                                 " \"checkpoint_every\": 1000}");
    train_cli(path, a);
    for (int k = 0; k < 2; k++) {
        const char *to = k ? c : b;
        const char *argv[] = {"train", path, "-o", to, "--quiet", NULL};
        path_join(ck, to, "checkpoint.bin");
        char errp[NT_PATH_MAX + 16];
        snprintf(errp, sizeof errp, "%s.stderr", to);
        int rc = kill_at_file(argv, ck, SIGTERM, errp);
        cr_assert_eq(rc, 128 + SIGTERM, "exit %d: the kill did not land mid-run", rc);
    }
    /* the control: c's recorded initial and first-log distances doubled */
    nt_checkpoint *cp;
    nt_error err = {0};
    int64_t logs[4];
    nt_spec spec;
    load_spec(path, &spec);
    nt_transform *list;
    int n;
    cr_assert_eq(nt_catalogue(&spec.model, &list, &n), NT_OK);
    cr_assert_eq(nt_checkpoint_read(ck, &cp, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_checkpoint_get_i64(cp, "cli.logs", 4, logs, &err), NT_OK, "%s", err.msg);
    cr_assert_geq(logs[3], 3, "the checkpoint holds %lld logs, want the first three", (long long)logs[3]);
    const int64_t nd = n + 1;
    double *dist = malloc(sizeof(double) * (size_t)(4 * nd));
    cr_assert_eq(nt_checkpoint_get_f64(cp, "cli.distances", 4 * nd, dist, &err), NT_OK, "%s", err.msg);
    int flip = -1;
    for (int t = 0; t < n; t++) if (!strcmp(list[t].name, "sign_flip[layer=0,unit=2]")) flip = t;
    cr_assert_geq(flip, 0);
    dist[flip] *= 2;
    dist[2 * nd + flip] *= 2;
    nt_checkpoint_put_f64(cp, "cli.distances", 4 * nd, dist);
    cr_assert_eq(nt_checkpoint_write(cp, ck, &err), NT_OK, "%s", err.msg);
    nt_checkpoint_free(cp);
    free(dist);
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "train %s -o %s --resume --quiet", path, k ? c : b);
        expect_rc(args, 0, NULL);
    }
    cJSON *da = json_file(a, "summary.json"), *db = json_file(b, "summary.json"), *dc = json_file(c, "summary.json");
    const cJSON *pa = cJSON_GetArrayItem(item(da, "fixed_points"), 0), *pb = cJSON_GetArrayItem(item(db, "fixed_points"), 0);
    const cJSON *pc = cJSON_GetArrayItem(item(dc, "fixed_points"), 0);
    cr_assert(pa && pb && pc);
    char *ta = cJSON_PrintUnformatted(item(da, "fixed_points")), *tb = cJSON_PrintUnformatted(item(db, "fixed_points"));
    cr_expect_str_eq(tb, ta, "the resumed run's fixed_points differ from the uninterrupted run's");
    cr_expect_eq(json_num(pc, "distance_initial"), 2 * json_num(pa, "distance_initial"), "negative control");
    cr_expect_eq(json_num(pc, "measured_distance_first_log"), 2 * json_num(pa, "measured_distance_first_log"),
                 "negative control");
    cr_expect_eq(json_num(pc, "distance_final"), json_num(pa, "distance_final"), "theta itself resumed exactly");
    free(ta);
    free(tb);
    cJSON_Delete(da);
    cJSON_Delete(db);
    cJSON_Delete(dc);
    nt_transforms_free(list, n);
    nt_spec_free(&spec);
}

/* nt_fixed_track_save / _load: a track through a checkpoint file comes back equal, in the
 * layout of noether train's records (4 (n + 1) doubles, each array followed by a 0).
 * Negative control: a track of another list (n - 1) is refused, naming the record. */
Test(libtrain, track_through_a_checkpoint)
{
    model_fixture f;
    const int widths[] = {4};
    mf_new(&f, 3, 1, widths, NT_ACT_TANH, 2, NT_LOSS_MSE, 1, 0, 10, 10, 2, 11);
    nt_fixed_track tr, back, other;
    nt_error err = {0};
    cr_assert_eq(nt_fixed_track_init(&tr, &f.m, f.n, &err), NT_OK);
    for (int s = 0; s < 4; s++) {   /* four logs along a made-up path */
        for (int64_t i = 0; i < f.m.d; i++) f.theta[i] *= 1.1 + 0.01 * (double)i;
        nt_fixed_track_log(&tr, &f.m, f.list, 5 * s, f.theta);
    }
    cr_assert_eq(tr.n_logs, 4);
    cr_expect(tr.first_step == 5 && tr.second_step == 10 && tr.last_step == 15);
    char dir[256], path[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(path, dir, "track.bin");
    nt_checkpoint *c = nt_checkpoint_new(), *in;
    nt_fixed_track_save(c, &tr, "x.dist", "x.logs");
    cr_assert_eq(nt_checkpoint_write(c, path, &err), NT_OK, "%s", err.msg);
    nt_checkpoint_free(c);
    cr_assert_eq(nt_checkpoint_read(path, &in, &err), NT_OK, "%s", err.msg);
    cr_expect_eq(nt_checkpoint_count(in, "x.dist"), 4 * (f.n + 1));
    cr_assert_eq(nt_fixed_track_init(&back, &f.m, f.n, &err), NT_OK);
    cr_assert_eq(nt_fixed_track_load(in, &back, "x.dist", "x.logs", &err), NT_OK, "%s", err.msg);
    const size_t row = sizeof(double) * (size_t)f.n;
    cr_expect(!memcmp(back.initial, tr.initial, row) && !memcmp(back.latest, tr.latest, row) &&
              !memcmp(back.first, tr.first, row) && !memcmp(back.second, tr.second, row), "the distances differ");
    cr_expect(back.n_logs == 4 && back.first_step == 5 && back.second_step == 10 && back.last_step == 15);
    cr_expect_gt(nt_rel_diff(f.n, tr.initial, tr.latest), 1e-3, "the path moved theta (the arrays differ)");
    cr_assert_eq(nt_fixed_track_init(&other, &f.m, f.n - 1, &err), NT_OK);
    cr_expect_eq(nt_fixed_track_load(in, &other, "x.dist", "x.logs", &err), NT_EINPUT);
    cr_expect_not_null(strstr(err.msg, "x.dist"), "the message does not name the record: %s", err.msg);
    nt_checkpoint_free(in);
    nt_fixed_track_free(&tr);
    nt_fixed_track_free(&back);
    nt_fixed_track_free(&other);
    mf_free(&f);
}
