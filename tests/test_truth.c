/* test_truth.c: what the outputs say is what they are (issue #13).  Each test runs the
 * built binary and recomputes the claim independently:
 *   - the gradient_flow column is the gradient-flow law (F2) under weight decay, the closed
 *     forms Q(0) e^{-2 gamma t} (symmetric linear generator) and Q(0) e^{-gamma t} (shift),
 *     not a GD path re-summed with Euler steps;
 *   - the logged loss is L(theta_k) and L_gamma(theta_k) on the training set, the numbers
 *     `noether grad` computes at that theta, in the ledger, the summary and the checkpoints;
 *   - the report's "At a glance" says "not applicable" for a check with nothing to check. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cJSON.h>
#include "helpers.h"

/* noether ARGS must exit 0 */
static void run_ok(const char *args)
{
    char *out, *err;
    int rc = run_noether(args, &out, &err);
    cr_assert_eq(rc, 0, "noether %s: exit %d; stderr: %s", args, rc, err);
    free(out);
    free(err);
}

#define num json_num

/* ---- ledger.csv: a header of (possibly quoted) names, rows of numbers ------------------ */

typedef struct {
    int cols, rows;
    char **names;
    double *x;   /* rows x cols */
} table;

/* the fields of one line, quotes removed, into out (malloc'd strings); returns how many */
static int split(char *line, char **out, int max)
{
    int n = 0;
    char *p = line;
    while (*p && *p != '\n' && n < max) {
        char buf[512];
        size_t k = 0;
        int quoted = *p == '"';
        if (quoted) p++;
        while (*p && (quoted ? *p != '"' : (*p != ',' && *p != '\n')) && k + 1 < sizeof buf) buf[k++] = *p++;
        if (quoted && *p == '"') p++;
        buf[k] = 0;
        out[n++] = strdup(buf);
        if (*p == ',') p++;
    }
    return n;
}

static void table_read(const char *dir, const char *name, table *t)
{
    char path[NT_PATH_MAX];
    path_join(path, dir, name);
    size_t len;
    char *text = read_file(path, &len);
    cr_assert_not_null(text, "%s not written", path);
    enum { MAXC = 4096 };
    char **f = malloc(sizeof(char *) * MAXC);
    char *line = text, *next = strchr(line, '\n');
    t->cols = split(line, f, MAXC);
    t->names = malloc(sizeof(char *) * (size_t)t->cols);
    memcpy(t->names, f, sizeof(char *) * (size_t)t->cols);
    t->rows = 0;
    t->x = NULL;
    for (line = next ? next + 1 : NULL; line && *line; line = next ? next + 1 : NULL) {
        next = strchr(line, '\n');
        int n = split(line, f, MAXC);
        cr_assert_eq(n, t->cols, "%s: row %d has %d fields, the header %d", name, t->rows, n, t->cols);
        t->x = realloc(t->x, sizeof(double) * (size_t)((t->rows + 1) * t->cols));
        for (int c = 0; c < n; c++) {
            t->x[t->rows * t->cols + c] = *f[c] ? strtod(f[c], NULL) : NAN;
            free(f[c]);
        }
        t->rows++;
    }
    free(f);
    free(text);
}

static int col(const table *t, const char *name)
{
    for (int c = 0; c < t->cols; c++)
        if (!strcmp(t->names[c], name)) return c;
    return -1;
}

static double at(const table *t, int row, int c) { return t->x[row * t->cols + c]; }

static void table_free(table *t)
{
    for (int c = 0; c < t->cols; c++) free(t->names[c]);
    free(t->names);
    free(t->x);
}

static void write_spec(char *spec, const char *dir, const char *json)
{
    path_join(spec, dir, "spec.json");
    write_text(spec, json);
}

/* ---- 1. the gradient-flow column -------------------------------------------------------- */

/* A ReLU MLP with a softmax head under GD with gamma = 0.05.  Gradient flow on L_gamma has
 * dQ/dt = -2 gamma Q for every rescaling quantity (R = 0, c = 0) and dQ/dt = -gamma Q for every
 * logit translation (A = 0): at each logged row the column must be Q(0) e^{-2 gamma t}
 * (e^{-gamma t}), t = lr * step, with Q(0) the measured value of row 0.  Negative control: the
 * old column, the GD path re-summed with Euler steps, is measured - (the O(eta^2) sum) under
 * GD on a symmetry; it misses the closed form by orders of magnitude more. */
Test(truth, gradient_flow_column_is_the_closed_form)
{
    char dir[256], spec[NT_PATH_MAX], args[3 * NT_PATH_MAX], out[NT_PATH_MAX];
    const double gam = 0.05, lr = 0.05;
    tmpdir_new(dir);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"input\": 5, \"layers\": [{\"dense\": 6}, {\"act\": \"relu\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"},"
             " \"data\": {\"source\": \"teacher\", \"n\": 64, \"seed\": 3}, \"init\": {\"seed\": 1, \"bias_std\": 0.2},"
             " \"weight_decay\": %g, \"train\": {\"optimizer\": \"gd\", \"lr\": %g, \"steps\": 400, \"log_every\": 50}}", gam, lr);
    write_spec(spec, dir, json);
    path_join(out, dir, "out");
    snprintf(args, sizeof args, "train %s -o %s --quiet", spec, out);
    run_ok(args);
    table t;
    table_read(out, "ledger.csv", &t);
    cJSON *s = json_file(out, "summary.json");
    const cJSON *q;
    int rescale = 0, translation = 0, st = col(&t, "step");
    double worst = 0, euler = INFINITY;
    cJSON_ArrayForEach(q, cJSON_GetObjectItem(cJSON_GetObjectItem(s, "ledger"), "per_quantity")) {
        const char *name = cJSON_GetObjectItem(q, "name")->valuestring;
        int rate = !strncmp(name, "rescale", 7) ? 2 : !strncmp(name, "translation", 11) ? 1 : 0;
        if (!rate) continue;
        rescale += rate == 2;
        translation += rate == 1;
        char c[256];
        snprintf(c, sizeof c, "%s:measured", name);
        int cm = col(&t, c);
        snprintf(c, sizeof c, "%s:gradient_flow", name);
        int cf = col(&t, c);
        cr_assert(cm >= 0 && cf >= 0, "no columns for %s", name);
        const double q0 = at(&t, 0, cm), scale = fabs(q0);
        if (scale < 1e-8) continue;   /* a dead unit or a balanced translation: nothing decays */
        for (int r = 0; r < t.rows; r++) {
            double law = q0 * exp(-rate * gam * lr * at(&t, r, st));
            double err = fabs(at(&t, r, cf) - law) / scale;
            worst = fmax(worst, err);
            cr_assert_leq(err, 1e-12, "%s, step %g: column %.17g, Q(0) e^(-%d gamma t) = %.17g", name, at(&t, r, st),
                          at(&t, r, cf), rate, law);
        }
        if (rate == 2) {   /* the control: what the column was (GD, a symmetry: measured - O(eta^2) sum) */
            double old = num(q, "measured") - num(q, "second_order");
            double law = q0 * exp(-2 * gam * lr * at(&t, t.rows - 1, st));
            euler = fmin(euler, fabs(old - law) / scale);
        }
    }
    cr_assert_eq(rescale, 6);
    cr_assert_eq(translation, 1 + 6, "the bias and the 6 columns of the head");
    cr_assert_gt(euler, 1e4 * fmax(worst, 1e-15), "control: the Euler-resummed value misses by only %.3e (column %.3e)",
                 euler, worst);
    cr_log_info("gradient-flow column vs closed form: %.2e; the Euler-resummed GD path: at least %.2e", worst, euler);
    cJSON_Delete(s);
    table_free(&t);
}

/* ---- 2. the logged loss ------------------------------------------------------------------- */

/* |theta|^2 of an NPY parameter file */
static double norm2_npy(const char *dir, const char *name)
{
    char p[NT_PATH_MAX];
    path_join(p, dir, name);
    nt_array a;
    nt_error err = {0};
    cr_assert_eq(nt_npy_read(p, &a, &err), NT_OK, "%s", err.msg);
    double s = 0;
    for (int64_t i = 0; i < a.size; i++) s += a.data[i] * a.data[i];
    nt_array_free(&a);
    return s;
}

/* L_gamma at params DIR/NAME as noether grad computes it */
static double grad_loss(const char *spec, const char *dir, const char *name)
{
    char args[4 * NT_PATH_MAX], p[NT_PATH_MAX], *out, *err;
    path_join(p, dir, name);
    snprintf(args, sizeof args, "grad %s --params %s --json", spec, p);
    cr_assert_eq(run_noether(args, &out, &err), 0, "noether %s: %s", args, err);
    cJSON *doc = cJSON_Parse(out);
    cr_assert_not_null(doc, "grad --json: %s", out);
    double L = num(doc, "loss");
    cJSON_Delete(doc);
    free(out);
    free(err);
    return L;
}

/* SGD on minibatches with weight decay, through noether run: the first and last rows of
 * ledger.csv carry L and L_gamma of params_init.npy and params_final.npy on the training set
 * (L_gamma = what noether grad computes there, L = that minus (gamma/2)|theta|^2 computed
 * here), to round-off; the summary's final_loss(_gamma) and the last analysis checkpoint
 * show the same numbers.  Control: the comparison can fail (L_gamma at the start is not the
 * one at the end, and L differs from L_gamma by far more than the tolerance). */
Test(truth, logged_loss_is_the_loss_at_theta, .timeout = 120)
{
    char dir[256], spec[NT_PATH_MAX], args[3 * NT_PATH_MAX], out[NT_PATH_MAX];
    const double gam = 0.01;
    tmpdir_new(dir);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 8}, {\"act\": \"relu\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"},"
             " \"data\": {\"source\": \"builtin\", \"name\": \"iris\", \"standardize\": true}, \"weight_decay\": %g,"
             " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"batch\": 16, \"steps\": 60, \"log_every\": 7},"
             " \"analysis\": {\"every\": 30, \"spectrum\": {\"top\": 2, \"bottom\": 2}}}", gam);
    write_spec(spec, dir, json);
    path_join(out, dir, "out");
    snprintf(args, sizeof args, "run %s -o %s --quiet", spec, out);
    run_ok(args);
    table t;
    table_read(out, "ledger.csv", &t);
    int cl = col(&t, "loss"), cg = col(&t, "loss_gamma");
    cr_assert(cl >= 0 && cg >= 0, "ledger.csv needs columns loss and loss_gamma");
    const char *files[2] = {"params_init.npy", "params_final.npy"};
    const int rows[2] = {0, t.rows - 1};
    double lg[2];
    for (int k = 0; k < 2; k++) {
        lg[k] = grad_loss(spec, out, files[k]);
        double l = lg[k] - 0.5 * gam * norm2_npy(out, files[k]);
        double eg = fabs(at(&t, rows[k], cg) - lg[k]) / lg[k], el = fabs(at(&t, rows[k], cl) - l) / l;
        cr_assert_leq(eg, 1e-13, "%s: logged L_gamma %.17g, noether grad %.17g", files[k], at(&t, rows[k], cg), lg[k]);
        cr_assert_leq(el, 1e-13, "%s: logged L %.17g, L_gamma - (gamma/2)|theta|^2 = %.17g", files[k], at(&t, rows[k], cl), l);
        cr_assert_gt(fabs(at(&t, rows[k], cg) - at(&t, rows[k], cl)), 1e6 * 1e-13 * lg[k], "control: L and L_gamma agree");
    }
    cr_assert_gt(fabs(lg[1] - lg[0]), 1e6 * 1e-13 * lg[0], "control: training did not change the loss");
    cJSON *s = json_file(out, "summary.json");
    cr_assert_eq(num(s, "final_loss"), at(&t, t.rows - 1, cl));
    cr_assert_eq(num(s, "final_loss_gamma"), at(&t, t.rows - 1, cg));
    const cJSON *cps = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "analysis"), "checkpoints"), *c;
    cr_assert_eq(cJSON_GetArraySize(cps), 3);
    cJSON_ArrayForEach(c, cps) {   /* every checkpoint is a logged step: the same numbers */
        int r = 0;
        while (r < t.rows && at(&t, r, col(&t, "step")) != num(c, "step")) r++;
        cr_assert_lt(r, t.rows, "checkpoint at step %g is not a logged row", num(c, "step"));
        cr_assert_eq(num(c, "loss"), at(&t, r, cl), "step %g", num(c, "step"));
        cr_assert_eq(num(c, "loss_gamma"), at(&t, r, cg), "step %g", num(c, "step"));
    }
    cJSON_Delete(s);
    table_free(&t);
}

/* ---- 3. At a glance: a check that checks nothing -------------------------------------- */

/* the at-a-glance row that starts with `question`, up to the end of the row (malloc'd) */
static char *glance_row(const char *dir, const char *question)
{
    char p[NT_PATH_MAX];
    path_join(p, dir, "report.html");
    size_t n;
    char *html = read_file(p, &n);
    cr_assert_not_null(html, "no report.html");
    char *a = strstr(html, question);
    cr_assert_not_null(a, "no row '%s' in the report", question);
    char *b = strstr(a, "</tr>");
    cr_assert_not_null(b);
    char *row = strndup(a, (size_t)(b - a));
    free(html);
    return row;
}

/* A tanh MLP with the squared loss has no ledger quantity (no rescaling, no translation,
 * not homogeneous): the ledger row says "not applicable", no check mark.  Control: a ReLU
 * model with a softmax head has quantities and keeps its check mark. */
Test(truth, at_a_glance_says_not_applicable, .timeout = 120)
{
    const char *models[2] = {
        "{\"input\": 4, \"layers\": [{\"dense\": 5}, {\"act\": \"tanh\"}, {\"dense\": 1}], \"loss\": \"mse\"}",
        "{\"input\": 4, \"layers\": [{\"dense\": 5}, {\"act\": \"relu\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"}"};
    const char *data[2] = {"{\"source\": \"teacher\", \"n\": 40, \"seed\": 2}",
                           "{\"source\": \"builtin\", \"name\": \"iris\", \"standardize\": true}"};
    for (int k = 0; k < 2; k++) {
        char dir[256], spec[NT_PATH_MAX], args[3 * NT_PATH_MAX], out[NT_PATH_MAX], json[1024];
        tmpdir_new(dir);
        snprintf(json, sizeof json, "{\"model\": %s, \"data\": %s, \"train\": {\"optimizer\": \"gd\", \"lr\": 0.05, \"steps\": 20},"
                 " \"analysis\": {\"every\": 10, \"spectrum\": {\"top\": 2, \"bottom\": 2}}}", models[k], data[k]);
        write_spec(spec, dir, json);
        path_join(out, dir, "out");
        snprintf(args, sizeof args, "run %s -o %s --quiet", spec, out);
        run_ok(args);
        cJSON *s = json_file(out, "summary.json");
        int nq = (int)num(cJSON_GetObjectItem(s, "ledger"), "quantities");
        cJSON_Delete(s);
        char *row = glance_row(out, "Does the ledger account for every step?");
        if (k == 0) {
            cr_assert_eq(nq, 0, "the tanh/mse model has %d ledger quantities", nq);
            cr_assert_not_null(strstr(row, "not applicable"), "row: %s", row);
            cr_assert_null(strstr(row, "&#10003;"), "a check mark for nothing checked: %s", row);
        } else {
            cr_assert_gt(nq, 0);
            cr_assert_not_null(strstr(row, "&#10003;"), "row: %s", row);
            cr_assert_null(strstr(row, "not applicable"), "row: %s", row);
        }
        free(row);
    }
}

/* ---- 4. growth away from a saddle fixed point ------------------------------------------- */

/* examples/collapsed_units.json: 8 equal tanh units, a saddle of the breaking directions whose
 * lambda_min rises from -0.92 to -0.05 along the run.  The round-off the run makes grows away
 * from each swap's Fix(T); linearized along the run (the per-step factor max |1 - lr lambda| on
 * Fix(T)^perp measured at each analysis checkpoint) the predicted growth from the first
 * checkpoint after the start to the end must match the measured one within 25 %.  Control:
 * the start's factor raised to the same steps, what a linearization at theta_0 predicts, is
 * off by more than 10 orders of magnitude. */
Test(truth, collapsed_units_growth_is_predicted_along_the_run, .timeout = 120)
{
    char dir[256], args[3 * NT_PATH_MAX], out[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(out, dir, "out");
    snprintf(args, sizeof args, "run %s/examples/collapsed_units.json -o %s --quiet", NOETHER_SOURCE_DIR, out);
    run_ok(args);
    cJSON *s = json_file(out, "summary.json");
    const cJSON *it, *g = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "analysis"), "fixed_point_growth");
    cr_assert(cJSON_IsArray(g), "summary.json has no analysis.fixed_point_growth");
    int n = 0;
    cJSON_ArrayForEach(it, g) {
        double meas = num(it, "measured"), pred = num(it, "predicted"), start = num(it, "predicted_from_start");
        cr_assert_gt(meas, 10, "%s: the distance grew only %g times", cJSON_GetObjectItem(it, "name")->valuestring, meas);
        cr_assert_leq(fabs(log(pred / meas)), log(1.25), "%s: predicted %g, measured %g",
                      cJSON_GetObjectItem(it, "name")->valuestring, pred, meas);
        cr_assert_gt(start / meas, 1e10, "control: the start's factor predicts %g against %g measured", start, meas);
        cr_log_info("%s, steps %g-%g: grew %.4g x, predicted %.4g x (start's factor alone %.3g x)",
                    cJSON_GetObjectItem(it, "name")->valuestring, num(it, "from_step"), num(it, "to_step"), meas, pred, start);
        n++;
    }
    cr_assert_geq(n, 6, "only %d of the 7 swaps left their fixed point", n);
    char *row = glance_row(out, "Growth away from the fixed point");
    free(row);
    cJSON_Delete(s);
}

/* ---- 5. the general case: R != 0 under weight decay ------------------------------------ */

/* A bias-free ReLU network (2-homogeneous: A = I, B = 2I, R = 2 E[u^T f] != 0) under GD with
 * gamma = 0.05: the column integrates dQ/dt = -2 gamma Q - R with the decay exact and R along
 * the recorded run, which is gradient flow up to the O(lr) error of following the GD path.
 * At fixed t = lr * steps, shrinking lr 10x must bring the measured Q (GD) and the column 10x
 * closer (first order), and the R term must matter (the column is not Q0 e^{-2 gamma t}). */
Test(truth, gradient_flow_column_with_r_converges, .timeout = 60)
{
    const double gam = 0.05, t = 2.0, lrs[2] = {0.02, 0.002};
    double gap[2], off_closed = 0;
    for (int k = 0; k < 2; k++) {
        char dir[256], spec[NT_PATH_MAX], args[3 * NT_PATH_MAX], out[NT_PATH_MAX], json[1024];
        tmpdir_new(dir);
        snprintf(json, sizeof json,
                 "{\"model\": {\"input\": 5, \"layers\": [{\"dense\": 6, \"bias\": false}, {\"act\": \"relu\"},"
                 " {\"dense\": 1, \"bias\": false}], \"loss\": \"exponential\"},"
                 " \"data\": {\"source\": \"teacher\", \"n\": 64, \"seed\": 3}, \"init\": {\"seed\": 1},"
                 " \"weight_decay\": %g, \"train\": {\"optimizer\": \"gd\", \"lr\": %g, \"steps\": %d, \"log_every\": 100000}}",
                 gam, lrs[k], (int)lround(t / lrs[k]));
        write_spec(spec, dir, json);
        path_join(out, dir, "out");
        snprintf(args, sizeof args, "train %s -o %s --quiet", spec, out);
        run_ok(args);
        cJSON *s = json_file(out, "summary.json");
        const cJSON *q;
        int seen = 0;
        cJSON_ArrayForEach(q, cJSON_GetObjectItem(cJSON_GetObjectItem(s, "ledger"), "per_quantity")) {
            if (strncmp(cJSON_GetObjectItem(q, "name")->valuestring, "homogeneous", 11)) continue;
            double a = num(q, "initial"), m = num(q, "measured"), f = num(q, "gradient_flow");
            gap[k] = fabs(m - f) / fabs(a);
            if (k == 1) off_closed = fabs(f - a * exp(-2 * gam * t)) / fabs(a);
            seen = 1;
        }
        cr_assert(seen, "no homogeneous quantity");
        cJSON_Delete(s);
    }
    cr_assert_lt(gap[1], gap[0] / 5, "shrinking lr 10x: |GD - column| %.3e -> %.3e", gap[0], gap[1]);
    cr_assert_gt(off_closed, 100 * gap[1], "R did not matter: column %.3e from Q0 e^(-2 gamma t)", off_closed);
    cr_log_info("homogeneous norm, gamma %.2f, t %.1f: |GD - column| %.3e at lr %.3g, %.3e at lr %.3g; R moves it %.3e",
                gam, t, gap[0], lrs[0], gap[1], lrs[1], off_closed);
}
