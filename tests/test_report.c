/* test_report.c: what the report of noether run says (issue #20):
 *   - Lyu & Li's margin growth as the library finds it in logged rows (nt_margin_analyse) and
 *     its verdict, with the controls on the other side of each rule (a fall after separation,
 *     data never separated, nothing logged after separation, a missing array);
 *   - dead ReLU units (nt_dead_units): units killed on purpose account, coordinate for
 *     coordinate, for the eigenvalues of the exact Hessian at gamma that killing them adds;
 *     the control at the living theta counts none;
 *   - an analysis of a given theta without training (steps: 0, --params): summary.json and the
 *     report say where theta came from (the file and its FNV-1a 64 hash, recomputed here), and
 *     the report draws no curves over steps; the control without --params names the seed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cJSON.h>
#include <lapacke.h>
#include "helpers.h"
#include "browser.h"

static nt_verdict margin_verdict(const nt_margin_growth *g)
{
    nt_run_facts f = { .identities = 0, .margin = g };
    nt_verdicts v;
    cr_assert_eq(nt_verdicts_decide(&f, &v, NULL), NT_OK);
    nt_verdict m = v.margin;
    nt_verdicts_free(&v);
    return m;
}

Test(report, margin_growth_from_rows)
{
    /* negative before separation, positive and rising from step 30 on; |theta|^2 rising */
    const double step[6] = {0, 10, 20, 30, 40, 50}, norm2[6] = {5, 4, 6, 7, 8, 9};
    double margin[6] = {-0.3, 0.1, -0.05, 0.01, 0.02, 0.04};
    nt_margin_growth g;
    cr_assert_eq(nt_margin_analyse(6, step, margin, norm2, &g, NULL), NT_OK);
    cr_assert(g.separated && g.separated_step == 30 && g.rows_separated == 3, "separated at %g over %d rows",
              g.separated_step, g.rows_separated);
    cr_assert(g.margin_at_separation == margin[3] && g.margin_final == margin[5]);
    cr_assert(g.norm2_at_separation == norm2[3] && g.norm2_final == norm2[5]);
    cr_assert_eq(g.margin_falls + g.norm2_falls, 0);
    cr_assert_eq(margin_verdict(&g), NT_VERDICT_HOLDS);

    margin[4] = 0.005;   /* the control: the margin falls once after separation */
    cr_assert_eq(nt_margin_analyse(6, step, margin, norm2, &g, NULL), NT_OK);
    cr_assert_eq(g.margin_falls, 1);
    cr_assert(fabs(g.largest_fall - (0.01 - 0.005) / 0.01) <= 1e-15 * 0.5, "largest fall %g", g.largest_fall);
    cr_assert_eq(margin_verdict(&g), NT_VERDICT_FAILS);
    margin[4] = 0.02;
    const double shrinking[6] = {5, 4, 6, 7, 6.5, 9};   /* and |theta|^2 falling once */
    cr_assert_eq(nt_margin_analyse(6, step, margin, shrinking, &g, NULL), NT_OK);
    cr_assert_eq(g.norm2_falls, 1);
    cr_assert_eq(margin_verdict(&g), NT_VERDICT_FAILS);

    margin[5] = -0.01;   /* the last row not separated: never separated for good */
    cr_assert_eq(nt_margin_analyse(6, step, margin, norm2, &g, NULL), NT_OK);
    cr_assert(!g.separated && isnan(g.separated_step));
    cr_assert_eq(margin_verdict(&g), NT_VERDICT_NOT_APPLICABLE);
    margin[5] = 0.04;
    cr_assert_eq(nt_margin_analyse(1, step + 5, margin + 5, norm2 + 5, &g, NULL), NT_OK);   /* one row */
    cr_assert(g.separated && g.rows_separated == 1);
    cr_assert_eq(margin_verdict(&g), NT_VERDICT_NOT_APPLICABLE);
    const double nans[2] = {NAN, NAN};   /* a model without a margin */
    cr_assert_eq(nt_margin_analyse(2, step, nans, norm2, &g, NULL), NT_OK);
    cr_assert_eq(g.rows, 0);
    cr_assert_eq(margin_verdict(NULL), NT_VERDICT_ABSENT);

    nt_error err = {0};
    cr_assert_eq(nt_margin_analyse(6, step, NULL, norm2, &g, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "margin"), "%s", err.msg);
    cr_assert_eq(nt_margin_analyse(-1, step, margin, norm2, &g, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "n: -1"), "%s", err.msg);
}

/* FNV-1a, 64 bits, of a file's bytes: written here again, not taken from the library */
static uint64_t fnv1a_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    uint64_t h = 0xcbf29ce484222325ULL;
    int c;
    while ((c = fgetc(f)) != EOF) h = (h ^ (uint64_t)c) * 0x100000001b3ULL;
    fclose(f);
    return h;
}

static char *text_of(const char *path)
{
    char *s = read_file(path, NULL);
    cr_assert_not_null(s, "%s", path);
    return s;
}

Test(report, analysis_at_given_params_without_training, .timeout = 300)
{
    char dir[256], trained[NT_PATH_MAX], at[NT_PATH_MAX], spec[NT_PATH_MAX], src[NT_PATH_MAX], p[NT_PATH_MAX],
         args[4 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(trained, dir, "trained");
    path_join(at, dir, "at");
    snprintf(src, sizeof src, "%s/examples/ziyin_mirror.json", NOETHER_SOURCE_DIR);
    snprintf(args, sizeof args, "run %s -o %s --quiet", src, trained);
    cr_assert_eq(run_noether(args, NULL, NULL), 0);
    char *text = text_of(src), *steps = strstr(text, "\"steps\": 4000");
    cr_assert_not_null(steps);
    char *zero = malloc(strlen(text) + 8);
    sprintf(zero, "%.*s\"steps\": 0%s", (int)(steps - text), text, steps + strlen("\"steps\": 4000"));
    path_join(spec, dir, "steps0.json");
    write_text(spec, zero);
    free(text);
    free(zero);
    char params[NT_PATH_MAX];
    path_join(params, trained, "params_final.npy");
    snprintf(args, sizeof args, "run %s --params %s -o %s --quiet", spec, params, at);
    cr_assert_eq(run_noether(args, NULL, NULL), 0);

    cJSON *s = json_file(at, "summary.json");
    const cJSON *from = cJSON_GetObjectItem(s, "theta_origin");
    char hash[24];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a_file(params));
    cr_assert_str_eq(cJSON_GetObjectItem(from, "from")->valuestring, "params");
    cr_assert_str_eq(cJSON_GetObjectItem(from, "file")->valuestring, params);
    cr_assert_str_eq(cJSON_GetObjectItem(from, "fnv1a64")->valuestring, hash);
    cr_assert_eq(json_num(s, "steps"), 0);
    /* the analyses at theta are those of the trained run's last checkpoint */
    cJSON *t = json_file(trained, "summary.json");
    const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "analysis"), "checkpoints"), 0),
                *b = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "analysis"), "checkpoints"), 4);
    cr_assert_eq(json_num(b, "step"), 4000);
    cr_assert(fabs(json_num(a, "loss") - json_num(b, "loss")) <= 1e-14 * fabs(json_num(b, "loss")), "loss %.17g vs %.17g",
              json_num(a, "loss"), json_num(b, "loss"));
    cJSON_Delete(t);
    cJSON_Delete(s);

    /* the report: the file and its hash, no curves over steps, what it lists loads */
    path_join(p, at, "report.html");
    char *html = text_of(p);
    cr_assert_not_null(strstr(html, hash), "the report does not give the hash %s", hash);
    cr_assert_not_null(strstr(html, "No training"));
    const char *series[] = {"loss", "ledger", "identities", "ritz", "alignment", "radial", "distances"};
    for (size_t i = 0; i < sizeof series / sizeof *series; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "plots/%s.png", series[i]);
        cr_assert_null(strstr(html, tag), "a curve of one point: %s", series[i]);
    }
    free(html);
    static const char *const at_theta[] = {"density", NULL};
    report_seen(at, at_theta);

    /* the control: the trained run started from the spec's seeded initialization */
    s = json_file(trained, "summary.json");
    from = cJSON_GetObjectItem(s, "theta_origin");
    cr_assert_str_eq(cJSON_GetObjectItem(from, "from")->valuestring, "init");
    cr_assert_null(cJSON_GetObjectItem(from, "fnv1a64"));
    cJSON_Delete(s);
    path_join(p, trained, "report.html");
    html = text_of(p);
    cr_assert_not_null(strstr(html, "seeded initialization"));
    cr_assert_null(strstr(html, "No training"));
    free(html);
}

/* eigenvalues of the exact H_gamma within 1e-9 of its scale from gamma */
static int at_gamma(model_fixture *f, const double *theta)
{
    const int64_t d = f->m.d;
    double *H = malloc(sizeof(double) * (size_t)(d * d)), *w = malloc(sizeof(double) * (size_t)d);
    cr_assert_eq(nt_hessian(f->e, theta, &f->ds, H, NULL), NT_OK);
    cr_assert_eq(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (int)d, H, (int)d, w), 0);
    double scale = fmax(fabs(w[0]), fabs(w[d - 1]));
    int n = 0;
    for (int64_t i = 0; i < d; i++) n += fabs(w[i] - f->m.weight_decay) <= 1e-9 * scale;
    free(H);
    free(w);
    return n;
}

static const nt_tensor *named(const nt_model *m, const char *name)
{
    for (int t = 0; t < m->n_tensors; t++)
        if (!strcmp(m->tensors[t].name, name)) return &m->tensors[t];
    cr_assert_fail("no tensor %s", name);
    return NULL;
}

Test(report, dead_relu_units_explain_the_extra_flat_directions)
{
    model_fixture f;
    const int widths[2] = {5, 6};
    mf_new(&f, 4, 2, widths, NT_ACT_RELU, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.01, 300, 300, 8, 7);
    nt_dead dead;
    cr_assert_eq(nt_dead_units(&f.m, &f.ds, f.theta, &dead, NULL), NT_OK);
    cr_assert_eq(dead.units, 0, "a unit dead at the random theta");
    cr_assert_eq(dead.directions, 0);
    int n0 = at_gamma(&f, f.theta);
    cr_assert_geq(n0, 1, "the logit translation is at gamma at every theta");

    /* units 0 and 2 of the first hidden layer and unit 1 of the second: biases far below
     * every pre-activation */
    f.theta[named(&f.m, "0.bias")->offset + 0] = -100;
    f.theta[named(&f.m, "0.bias")->offset + 2] = -100;
    f.theta[named(&f.m, "2.bias")->offset + 1] = -100;
    cr_assert_eq(nt_dead_units(&f.m, &f.ds, f.theta, &dead, NULL), NT_OK);
    cr_assert_eq(dead.units, 3);
    /* each first-layer unit: 4 incoming weights, its bias, 6 outgoing weights; the second
     * layer's: 5 + 1 + 3, two of its incoming weights being the dead units' outgoing ones */
    const int64_t want = 2 * (4 + 1 + 6) + (5 + 1 + 3) - 2;
    cr_assert_eq(dead.directions, want, "%lld directions, want %lld", (long long)dead.directions, (long long)want);
    /* the spectrum at gamma grows by exactly the dead units' coordinates (the living theta has
     * its own count: the shift, and what else this small network leaves flat) */
    const int n1 = at_gamma(&f, f.theta);
    cr_assert_eq(n1 - n0, want, "the exact spectrum at gamma: %d before, %d after killing the units, %lld predicted",
                 n0, n1, (long long)want);

    nt_error err = {0};
    cr_assert_eq(nt_dead_units(&f.m, &f.ds, NULL, &dead, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "theta"), "%s", err.msg);
    mf_free(&f);
}
