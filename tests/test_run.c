/* test_run.c: the main job as a user runs it: noether demo and noether run on the examples,
 * through the built binary.  The report is opened in headless Chromium (screenshot not
 * blank, every image loaded) and each example's summary.json must show what its line in
 * examples/README.md promises. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <cJSON.h>
#include "helpers.h"
#include "browser.h"

/* noether ARGS must exit with rc; returns stderr for messages */
static void run_expect(int rc_want, const char *fmt, ...)
{
    char args[4096], *out, *err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = run_noether(args, &out, &err);
    cr_assert_eq(rc, rc_want, "noether %s: exit %d, want %d; stderr: %s", args, rc, rc_want, err);
    free(out);
    free(err);
}

static cJSON *summary(const char *dir) { return json_file(dir, "summary.json"); }
#define num json_num

static const cJSON *obj(const cJSON *o, const char *path)   /* "a.b.c" */
{
    char buf[256], *save, *key;
    snprintf(buf, sizeof buf, "%s", path);
    for (key = strtok_r(buf, ".", &save); key; key = strtok_r(NULL, ".", &save)) {
        o = cJSON_GetObjectItem(o, key);
        cr_assert_not_null(o, "summary has no '%s' (in %s)", key, path);
    }
    return o;
}

static long file_size(const char *dir, const char *name)
{
    char p[NT_PATH_MAX];
    struct stat st;
    path_join(p, dir, name);
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* ------------------------------------------------------------------ the demo */

static const char *const demo_figures[] = {"loss", "ledger", "ledger_gaps", "distances", "identities", "ritz",
                                           "alignment", "density", "sectors"};

Test(run, demo_writes_the_report_its_plots_and_consistent_numbers)
{
    char dir[256], o[NT_PATH_MAX], p[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(o, dir, "demo");
    run_expect(0, "demo -o %s --quiet", o);
    cr_assert_gt(file_size(o, "report.html"), 5000);
    for (size_t i = 0; i < sizeof demo_figures / sizeof *demo_figures; i++) {
        char name[64];
        snprintf(name, sizeof name, "plots/%s.svg", demo_figures[i]);
        cr_assert_gt(file_size(o, name), 5000, "%s missing or nearly empty", name);
        snprintf(name, sizeof name, "plots/%s.png", demo_figures[i]);
        path_join(p, o, name);
        int w, h;
        double ink = png_ink(p, &w, &h);
        cr_assert(w >= 800 && h >= 400, "%s is %d x %d", name, w, h);
        cr_assert(ink > 0.01, "%s is blank: %.4f of its pixels differ from the background", name, ink);
    }
    cJSON *s = summary(o);
    const cJSON *an = obj(s, "analysis");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(an, "all_identities_hold")));
    cr_assert_leq(num(obj(s, "ledger"), "max_gap"), 1e-10);
    cr_assert_eq(cJSON_GetArraySize(obj(s, "analysis.checkpoints")), 21, "2000 steps analysed every 100");
    const cJSON *flat = obj(s, "analysis.final.flat");
    cr_assert_eq(num(flat, "found"), num(flat, "predicted_everywhere"), "flat directions at gamma: found %g, predicted %g",
                 num(flat, "found"), num(flat, "predicted_everywhere"));
    const cJSON *it;
    int sectors = 0;
    cJSON_ArrayForEach(it, obj(s, "analysis.final.sectors"))
        if (cJSON_GetObjectItem(it, "multiplicity_found")) {
            cr_assert_eq(num(it, "multiplicity_found"), num(it, "predicted_multiplicity"));
            sectors++;
        }
    cr_assert_eq(sectors, 2, "one S_n sector per hidden layer");
    /* the final checkpoint's L_gamma is noether grad's at params_final.npy */
    char *out;
    path_join(p, o, "params_final.npy");
    char args[NT_PATH_MAX + 64];
    snprintf(args, sizeof args, "grad --params %s --json", p);
    cr_assert_eq(run_noether(args, &out, NULL), 0);
    cJSON *g = cJSON_Parse(out);
    const cJSON *last = cJSON_GetArrayItem(obj(s, "analysis.checkpoints"), 20);
    cr_assert(fabs(num(g, "loss") - num(last, "loss_gamma")) <= 1e-13 * num(g, "loss"), "grad %.17g, run %.17g",
              num(g, "loss"), num(last, "loss_gamma"));
    cJSON_Delete(g);
    free(out);
    cJSON_Delete(s);
}

Test(run, png_check_sees_a_blank_image)   /* negative control of png_ink: gnuplot's empty canvas */
{
    char dir[256], gp[NT_PATH_MAX], png[NT_PATH_MAX], cmd[3 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(gp, dir, "blank.gp");
    path_join(png, dir, "blank.png");
    char script[NT_PATH_MAX + 128];
    snprintf(script, sizeof script, "set terminal pngcairo size 900,500 background rgb 'white'\nset output '%s'\n"
                                    "unset border\nunset tics\nunset key\nplot [0:1][0:1] NaN\n", png);
    write_text(gp, script);
    snprintf(cmd, sizeof cmd, "gnuplot %s 2>/dev/null", gp);
    cr_assert_eq(system(cmd), 0, "gnuplot did not run");
    cr_assert_lt(png_ink(png, NULL, NULL), 0.001);
}

/* ------------------------------------------------------------------ the report in a browser */

static const char *const demo_listed[] = {"loss", "ledger", "ledger_gaps", "distances", "identities", "ritz",
                                          "alignment", "density", "sectors", NULL};

/* the demo's report as a user sees it (tests/browser.c), and the negative controls of each
 * thing seen: a deleted figure, an external request and a console message are noticed, a
 * blank page is blank */
Test(run, report_opens_in_headless_chromium)
{
    cr_assert_eq(system("command -v chromium >/dev/null"), 0,
                 "chromium is not installed (scripts/setup.sh installs Debian's chromium)");
    char dir[256], o[NT_PATH_MAX], html[NT_PATH_MAX], shot[NT_PATH_MAX], cmd[4 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(o, dir, "demo");
    run_expect(0, "demo -o %s --quiet", o);
    cr_assert_eq(report_seen(o, demo_listed), (int)(sizeof demo_figures / sizeof *demo_figures), "figures on the page");

    char png[NT_PATH_MAX];
    path_join(png, o, "plots/ledger.png");
    cr_assert_eq(remove(png), 0);
    path_join(html, o, "report.html");
    browsed b = browse(html, dir);
    cr_assert_eq(b.loaded, b.images - 1, "a deleted figure still counted as loaded (%d of %d)", b.loaded, b.images);
    cr_assert_eq(b.external + b.console, 0);
    char *text = read_file(html, NULL), *end = strstr(text, "</body>");
    cr_assert_not_null(end);
    char *bad = malloc(strlen(text) + 256);
    sprintf(bad, "%.*s<img src=\"https://example.com/figure.png\"><script>console.log('seen')</script>%s",
            (int)(end - text), text, end);
    path_join(html, o, "bad.html");
    write_text(html, bad);
    free(text);
    free(bad);
    b = browse(html, dir);
    cr_assert_geq(b.external, 1, "an external image was not noticed");
    cr_assert_geq(b.console, 1, "a console message was not noticed");

    path_join(html, dir, "blank.html");
    path_join(shot, dir, "shot.png");
    write_text(html, "<!DOCTYPE html><html><body style=\"background:#fff\"></body></html>\n");
    snprintf(cmd, sizeof cmd, "HOME=/tmp chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
             "--window-size=1100,2400 --screenshot=%s file://%s >/dev/null 2>&1", shot, html);
    cr_assert_eq(system(cmd), 0);
    cr_assert_lt(png_ink(shot, NULL, NULL), 0.001, "a blank page is not seen as blank");
}

/* ------------------------------------------------------------------ the examples */

/* the report's "At a glance" row that starts with question carries mark */
static void row_marked(const char *dir, const char *question, const char *mark)
{
    char p[NT_PATH_MAX];
    path_join(p, dir, "report.html");
    char *html = read_file(p, NULL), *row = strstr(html, question);
    cr_assert_not_null(row, "the report has no row '%s'", question);
    char *end = strstr(row, "</tr>");
    cr_assert_not_null(end);
    *end = 0;
    cr_assert_not_null(strstr(row, mark), "row '%s' has no %s: %s", question, mark, row);
    free(html);
}

static cJSON *run_example(const char *name, char *o)
{
    char dir[256];
    tmpdir_new(dir);
    path_join(o, dir, "out");
    run_expect(0, "run %s/examples/%s -o %s --quiet", NOETHER_SOURCE_DIR, name, o);
    cr_assert_gt(file_size(o, "report.html"), 5000);
    report_seen(o, NULL);   /* every figure it lists loads, nothing external, no console message */
    cJSON *s = summary(o);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(obj(s, "analysis"), "all_identities_hold")));
    cr_assert_leq(num(obj(s, "ledger"), "max_gap"), 1e-10);
    return s;
}

/* `noether CMD` (run or train) on an example with the text `from` replaced by `to` (a
 * negative control); returns its summary */
static cJSON *run_changed(const char *cmd, const char *name, const char *from, const char *to)
{
    char dir[256], spec[NT_PATH_MAX], src[NT_PATH_MAX], o[NT_PATH_MAX], changed[4096];
    tmpdir_new(dir);
    snprintf(src, sizeof src, "%s/examples/%s", NOETHER_SOURCE_DIR, name);
    char *text = read_file(src, NULL), *at = strstr(text, from);
    cr_assert_not_null(at, "%s has no '%s'", name, from);
    snprintf(changed, sizeof changed, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    free(text);
    path_join(spec, dir, "changed.json");
    write_text(spec, changed);
    path_join(o, dir, "out");
    run_expect(0, "%s %s -o %s --quiet", cmd, spec, o);
    return summary(o);
}

/* Kunin et al.: weight decay and the finite learning rate break the rescaling law; weight
 * decay alone breaks the translation law (A = 0: no finite-step term), so each SGD step
 * multiplies it by exactly 1 - lr gamma, while gradient flow gives Q0 e^{-gamma t}: the two
 * differ by the O(lr^2) effect, relative n (lr gamma)^2 / 2 after n steps */
Test(examples, kunin_fashion)
{
    char o[NT_PATH_MAX];
    cJSON *s = run_example("kunin_fashion.json", o);
    const cJSON *q;
    int rescale = 0, broken = 0, translation = 0;
    cJSON_ArrayForEach(q, obj(s, "ledger.per_quantity")) {
        const char *name = cJSON_GetObjectItem(q, "name")->valuestring;
        double size = fabs(num(q, "initial")) + fabs(num(q, "measured")), m = num(q, "measured");
        if (!strncmp(name, "rescale", 7)) {
            rescale++;
            cr_assert(fabs(num(q, "weight_decay")) > 1e-6 * size, "%s: no weight-decay term", name);
            broken += fabs(num(q, "second_order")) > 1e-3 * size && fabs(m - num(q, "gradient_flow")) > 1e-3 * size;
        } else if (!strncmp(name, "translation", 11)) {
            translation++;
            cr_assert(fabs(num(q, "weight_decay")) > 1e-3 * size, "%s: weight decay did not act", name);
            cr_assert_eq(num(q, "second_order"), 0, "%s: a translation has no finite-step term", name);
            const double a = num(q, "initial"), lg = 0.1 * 0.001, n = 1000;   /* the example's lr gamma, steps */
            cr_assert(fabs(m - a * pow(1 - lg, n)) <= 1e-12 * size, "%s: measured %.17g, Q0 (1 - lr gamma)^n %.17g",
                      name, m, a * pow(1 - lg, n));
            cr_assert(fabs(num(q, "gradient_flow") - a * exp(-lg * n)) <= 1e-12 * size, "%s: gradient flow %.17g",
                      name, num(q, "gradient_flow"));
            if (fabs(a) > 1e-3 * size)   /* the O(lr^2) gap, to 1% */
                cr_assert(fabs((a * exp(-lg * n) - m) / (a * exp(-lg * n)) - n * lg * lg / 2) <= 0.01 * n * lg * lg / 2,
                          "%s: GF %.17g, SGD %.17g", name, a * exp(-lg * n), m);
        }
    }
    cr_assert_eq(rescale, 16);
    cr_assert_geq(broken, 12, "only %d of 16 rescaling laws broken by the finite step (dead units keep theirs)", broken);
    cr_assert_eq(translation, 17);
    cr_assert(strstr(cJSON_GetObjectItem(obj(s, "analysis.discovery"), "note")->valuestring, "not computed: d = 12730"));
    /* Lanczos knows the ends only: the report says why there is no flat count and no sector */
    row_marked(o, "How many flat directions?", "not counted");
    row_marked(o, "S<sub>n</sub> sectors", "not computed: breaking subspace larger than");
    cJSON_Delete(s);
}

/* Tarmoun et al., Min et al.: a deep linear network conserves W_l W_l^T - W_{l+1}^T W_{l+1}
 * under gradient flow; gradient descent moves it only by the finite-step term */
Test(examples, deep_linear_imbalance)
{
    char o[NT_PATH_MAX];
    cJSON *s = run_example("deep_linear.json", o);
    const cJSON *q;
    int gl = 0;
    double loss0 = num(cJSON_GetArrayItem(obj(s, "analysis.checkpoints"), 0), "loss");
    cr_assert_lt(num(s, "final_loss"), 0.01 * loss0, "did not train");
    double scale = 0, moved = 0;
    cJSON_ArrayForEach(q, obj(s, "ledger.per_quantity"))
        if (!strncmp(cJSON_GetObjectItem(q, "name")->valuestring, "gl", 2)) scale = fmax(scale, fabs(num(q, "initial")));
    cJSON_ArrayForEach(q, obj(s, "ledger.per_quantity")) {
        if (strncmp(cJSON_GetObjectItem(q, "name")->valuestring, "gl", 2)) continue;
        gl++;
        double a = num(q, "initial"), m = num(q, "measured");
        cr_assert(fabs(num(q, "gradient_flow") - a) <= 1e-12 * scale, "gradient flow does not conserve it");
        cr_assert(fabs(m - a - num(q, "second_order")) <= 1e-12 * scale, "the change is not the finite-step term");
        moved = fmax(moved, fabs(m - a));
    }
    cr_assert(moved > 0 && moved <= 0.01 * scale, "the imbalance moved by %g of %g", moved, scale);
    cr_assert_eq(gl, 2 * 21, "the symmetric part of gl(6) on two hidden layers: 21 entries each");
    /* noether discover's count (docs/theory.md §7): 21 + 21 laws, all the catalogue's */
    const cJSON *laws = obj(s, "analysis.discovery");
    cr_assert_eq((int)num(laws, "conserved"), 42);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(laws, "explained")));
    row_marked(o, "Does the catalogue explain every conservation law", "&#10003;");
    cJSON_Delete(s);
}

/* Lyu & Li: a homogeneous network under the exponential loss grows its norm and its
 * normalized margin once it separates the data; its radial curvature has a closed form */
Test(examples, lyu_li_margin)
{
    char o[NT_PATH_MAX];
    cJSON *s = run_example("lyu_li_margin.json", o);
    {   /* ledger.csv: norm and margin along the run */
        char p[NT_PATH_MAX];
        path_join(p, o, "ledger.csv");
        char *text = read_file(p, NULL), *line = strchr(text, '\n') + 1;
        double norm0 = NAN, norm_last = 0, first_margin = NAN, last_margin = 0, prev = -INFINITY;
        int increasing = 1;
        for (; *line; line = strchr(line, '\n') + 1) {   /* step,loss,loss_gamma,accuracy,test_loss,test_accuracy,norm2,margin */
            double v[8];
            if (sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", v, v + 1, v + 2, v + 3, v + 4, v + 5, v + 6, v + 7) != 8) break;
            if (isnan(norm0)) norm0 = v[6];
            norm_last = v[6];
            if (v[7] > 0) {
                if (isnan(first_margin)) first_margin = v[7];
                increasing &= v[7] >= prev - 1e-12;
                prev = v[7];
                last_margin = v[7];
            }
        }
        free(text);
        cr_assert_gt(norm_last, 1.2 * norm0, "|theta|^2 from %g to %g", norm0, norm_last);
        cr_assert(first_margin > 0 && last_margin > 2 * first_margin, "margin %g -> %g", first_margin, last_margin);
        cr_assert(increasing, "the normalized margin decreased once positive");
        /* the library's account of the same rows (summary.json), and the report shows it */
        const cJSON *mg = obj(s, "analysis.margin_growth");
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(mg, "separated")));
        cr_assert_eq(num(mg, "margin_falls") + num(mg, "norm2_falls"), 0);
        cr_assert_eq(num(mg, "margin_final"), last_margin);
        cr_assert_eq(num(mg, "norm2_final"), norm_last);
        cr_assert_geq(num(mg, "margin_at_separation"), first_margin);
        row_marked(o, "Does the margin grow", "&#10003;");
        cr_assert_gt(file_size(o, "plots/margin.png"), 5000);
        cr_assert_gt(file_size(o, "plots/radial.png"), 5000);
        /* lambda_max 300 at the start, under 1 at the end: the Ritz values and the radial
         * curvature on scales that keep the end apart (not a linear axis from 0 to 300) */
        char gpath[NT_PATH_MAX];
        path_join(gpath, o, "plots/plots.gp");
        char *gp = read_file(gpath, NULL);
        const char *stems[2] = {"# ---- ritz\n", "# ---- radial\n"}, *want[2] = {"set nonlinear y via asinh", "set logscale y"};
        for (int k = 0; k < 2; k++) {   /* each figure's section of plots.gp, to the next one */
            char *from = strstr(gp, stems[k]);
            cr_assert_not_null(from, "plots.gp has no %s", stems[k]);
            char *to = strstr(from + 1, "# ---- "), keep = to ? *to : 0;
            if (to) *to = 0;
            cr_assert_not_null(strstr(from, want[k]), "%s drawn without '%s'", stems[k], want[k]);
            if (to) *to = keep;
        }
        free(gp);
    }
    const cJSON *sh = obj(s, "analysis.final.sharp");
    cr_assert(fabs(num(sh, "radial_curvature") - num(sh, "closed_form")) <= 1e-10 * fabs(num(sh, "closed_form")));
    cJSON_Delete(s);
}

/* Ziyin: strong enough weight decay makes the mirror planes of tanh units attractive: every
 * unit collapses onto its sign-flip fixed-point set; the predicted stability margin of each
 * mirror is positive (a negative control: weak weight decay, no collapse, negative margin) */
static void mirrors(const cJSON *s, int *collapsed, int *n, int *stable)
{
    const cJSON *it;
    *collapsed = *n = *stable = 0;
    cJSON_ArrayForEach(it, obj(s, "analysis.distances_to_fixed_points"))
        if (!strncmp(cJSON_GetObjectItem(it, "name")->valuestring, "sign_flip", 9)) {
            (*n)++;
            *collapsed += num(it, "final") < 1e-10 * num(it, "initial");
        }
    cJSON_ArrayForEach(it, obj(s, "analysis.final.sectors"))
        if (cJSON_GetObjectItem(it, "mirror")) *stable += num(it, "stability_margin") > 0;
}

Test(examples, ziyin_mirror_collapse)
{
    char o[NT_PATH_MAX];
    cJSON *s = run_example("ziyin_mirror.json", o);
    int collapsed, n, stable;
    mirrors(s, &collapsed, &n, &stable);
    cr_assert_eq(n, 8);
    cr_assert_eq(collapsed, 8, "%d of 8 units collapsed", collapsed);
    cr_assert_eq(stable, 8, "%d of 8 mirrors predicted stable", stable);
    {   /* the distance figure is about the mirrors: their panel first, all 8 of them */
        char p[NT_PATH_MAX];
        path_join(p, o, "plots/plots.gp");
        char *gp = read_file(p, NULL), *fig = strstr(gp, "# ---- distances");
        cr_assert_not_null(fig);
        char *flips = strstr(fig, "sign flips of odd units (mirror planes): 8 maps"), *swaps = strstr(fig, "swaps of two units");
        cr_assert(flips && (!swaps || flips < swaps), "the sign-flip panel is missing or not first");
        free(gp);
    }
    cJSON_Delete(s);

    s = run_changed("run", "ziyin_mirror.json", "\"weight_decay\": 0.5", "\"weight_decay\": 0.01");
    mirrors(s, &collapsed, &n, &stable);
    cr_assert_eq(collapsed, 0, "weak weight decay: %d units collapsed", collapsed);
    cr_assert_lt(stable, 8, "weak weight decay: every mirror predicted stable");
    cJSON_Delete(s);
}

/* A point where the 8 tanh units of a layer are equal: the S_8 sector spectrum comes in
 * groups of n - 1 = 7, and training keeps the units equal up to round-off growing at the
 * rate the breaking spectrum predicts (the point is a saddle) */
Test(examples, collapsed_units_multiplicity)
{
    char o[NT_PATH_MAX];
    cJSON *s = run_example("collapsed_units.json", o);
    const cJSON *it;
    int found = 0;
    cJSON_ArrayForEach(it, obj(s, "analysis.final.sectors"))
        if (cJSON_GetObjectItem(it, "layer")) {
            cr_assert_eq(num(it, "units"), 8);
            cr_assert_eq(num(it, "multiplicity_found"), 7);
            cr_assert_eq(num(it, "multiplicity_min"), 7, "a group of other than n - 1");
            found++;
        }
    cr_assert_eq(found, 1);
    cJSON_ArrayForEach(it, obj(s, "fixed_points")) {
        cr_assert_leq(num(it, "distance_initial"), 1e-15, "did not start on the collapsed point");
        cr_assert_leq(num(it, "distance_final"), 1e-9, "left the collapsed point");
    }
    cJSON_Delete(s);
}

/* run needs a spec: without one, exit 2 and one line naming what is missing; an analysis
 * key it does not know is named too */
Test(run, usage_errors_are_one_line)
{
    char *out, *err;
    cr_assert_eq(run_noether("run", &out, &err), 2);
    cr_assert_str_empty(out);
    cr_assert_not_null(strstr(err, "SPEC"), "stderr: %s", err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "not one line: %s", err);
    free(out);
    free(err);
    char dir[256], spec[NT_PATH_MAX], args[2 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "s.json");
    write_text(spec, "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 3}], \"loss\": \"cross_entropy\"},"
                     " \"data\": {\"source\": \"builtin\", \"name\": \"iris\"}, \"analysis\": {\"evry\": 10}}");
    snprintf(args, sizeof args, "run %s -o %s/out", spec, dir);
    cr_assert_eq(run_noether(args, &out, &err), 2);
    cr_assert_not_null(strstr(err, "analysis.evry"), "stderr: %s", err);
    free(out);
    free(err);
}

/* Layer normalization (eps = 0) makes the weights feeding it scale-invariant: their gradient
 * is orthogonal to them, so gradient flow conserves |w|^2 and each SGD step grows it by
 * exactly its finite-step term (the effective learning rate falls as the norm grows); the
 * block's gradient sits in the top eigenspace as (S1) predicts */
Test(examples, layernorm_scale)
{
    char o[NT_PATH_MAX];
    cJSON *s = run_example("layernorm_scale.json", o);
    const cJSON *q;
    int scale = 0;
    cJSON_ArrayForEach(q, obj(s, "ledger.per_quantity")) {
        if (strncmp(cJSON_GetObjectItem(q, "name")->valuestring, "scale", 5)) continue;
        scale++;
        double a = num(q, "initial"), m = num(q, "measured");
        cr_assert(fabs(num(q, "first_order")) <= 1e-12 * a, "g is not orthogonal to w: %g", num(q, "first_order"));
        cr_assert(fabs(num(q, "gradient_flow") - a) <= 1e-12 * a, "gradient flow does not conserve |w|^2");
        cr_assert(m - a > 1e-3 * a, "|w|^2 did not grow: %g -> %g", a, m);
        cr_assert(fabs(m - a - num(q, "second_order")) <= 1e-12 * a, "the growth is not the finite-step term");
    }
    cr_assert_eq(scale, 2);
    cJSON_ArrayForEach(q, obj(s, "analysis.final.alignment_scale_invariant")) {
        double meas = num(q, "fraction_in_top_measured"), pred = num(q, "fraction_in_top_predicted");
        cr_assert(fabs(meas - pred) <= 1e-8 * pred, "alignment measured %.17g, predicted %.17g", meas, pred);
    }
    cJSON_Delete(s);
}

/* the scalings of the ledger whose names start with prefix ("unit_scale", "channel_scale"),
 * each with a first-order term at round-off (the gradient orthogonal to the unit's or
 * channel's weights at every step); returns how many */
static int orthogonal_scales(const cJSON *s, const char *prefix)
{
    const cJSON *q;
    int n = 0;
    cJSON_ArrayForEach(q, obj(s, "ledger.per_quantity"))
        if (!strncmp(cJSON_GetObjectItem(q, "name")->valuestring, prefix, strlen(prefix))) {
            n++;
            cr_assert(fabs(num(q, "first_order")) <= 1e-12 * num(q, "initial"), "g not orthogonal to the unit's weights");
        }
    return n;
}

static int orthogonal_unit_scales(const cJSON *s)
{
    return orthogonal_scales(s, "unit_scale");
}

/* Batch normalization in training mode (eps = 0): every unit's row and bias feeding it is
 * scale-invariant and its bias before the normalization a pure shift; the shifts, with the
 * logit translations, are exactly flat at every theta: the spectrum of H_gamma has exactly
 * that many eigenvalues at gamma (16 + 16 + 17 = 49); every identity holds in training mode */
Test(examples, batchnorm_flat_directions)
{
    char o[NT_PATH_MAX];
    cJSON *s = run_example("batchnorm_wine.json", o);
    const cJSON *flat = obj(s, "analysis.final.flat");
    cr_assert_eq(num(flat, "predicted_everywhere"), 49);
    cr_assert_eq(num(flat, "found"), 49, "eigenvalues at gamma: %g", num(flat, "found"));
    int unit_scales = orthogonal_unit_scales(s);
    cr_assert_eq(unit_scales, 32);
    cJSON_Delete(s);
}

/* a dense spectrum that would not fit in memory is refused with the size it needs (the
 * 269,322 parameters of examples/fashion_mlp.json: 1.1 TB), not attempted */
Test(run, dense_spectrum_too_large_is_refused)
{
    char args[NT_PATH_MAX + 128], *out, *err;
    snprintf(args, sizeof args, "spectrum %s/examples/fashion_mlp.json --method dense --top 1 --bottom 1",
             NOETHER_SOURCE_DIR);
    cr_assert_eq(run_noether(args, &out, &err), 2, "stderr: %s", err);
    cr_assert_not_null(strstr(err, "1160549434944 bytes"), "the size it needs is not named: %s", err);
    cr_assert_not_null(strstr(err, "--method lanczos"), "%s", err);
    cr_assert_str_empty(out);
    free(out);
    free(err);
}

/* A small CNN on Fashion-MNIST images (1 x 28 x 28) with batch normalizations in training
 * mode after its convolution (BatchNorm2d: per channel) and after its first dense layer
 * (BatchNorm1d): every identity holds; the 4 channel bias shifts and the 16 unit bias shifts
 * before the normalizations and the 17 logit translations are flat at every theta, and the
 * exact spectrum has at least those 37 eigenvalues at gamma (dead units would add more); the
 * channel and unit scalings' first-order terms vanish (g orthogonal to each channel's and
 * unit's weights) */
Test(examples, cnn_batchnorm_fashion)
{
    char o[NT_PATH_MAX];
    cJSON *s = run_example("cnn_batchnorm_fashion.json", o);
    const cJSON *flat = obj(s, "analysis.final.flat");
    cr_assert_eq(num(flat, "predicted_everywhere"), 4 + 16 + 17);
    cr_assert_geq(num(flat, "found"), 4 + 16 + 17, "eigenvalues at gamma: %g", num(flat, "found"));
    cr_assert_eq(orthogonal_unit_scales(s), 16);
    cr_assert_eq(orthogonal_scales(s, "channel_scale"), 4);
    cr_assert_gt(num(s, "test_accuracy"), 0.5);
    cJSON_Delete(s);
}

/* the per-head imbalances (the symmetric parts of gl_qk and gl_vo) of a run: how many, the
 * Frobenius norms of their initial, measured and gradient-flow values; each has a first-order
 * term at round-off (the gradient is orthogonal to every generator at every step) */
static int head_imbalance(const cJSON *s, double *initial, double *measured, double *flow, double *flow_moved)
{
    const cJSON *q;
    int n = 0;
    double a = 0, m = 0, f = 0, moved = 0, scale = 0;
    cJSON_ArrayForEach(q, obj(s, "ledger.per_quantity")) {
        const char *name = cJSON_GetObjectItem(q, "name")->valuestring;
        if (strncmp(name, "gl_qk_sym", 9) && strncmp(name, "gl_vo_sym", 9)) continue;
        n++;
        a += pow(num(q, "initial"), 2);
        m += pow(num(q, "measured"), 2);
        f += pow(num(q, "gradient_flow"), 2);
        moved = fmax(moved, fabs(num(q, "gradient_flow") - num(q, "initial")));
        scale = fmax(scale, fabs(num(q, "initial")));
        cr_assert(fabs(num(q, "first_order")) <= 1e-12 * scale, "%s: first-order term %g", name, num(q, "first_order"));
    }
    *initial = sqrt(a), *measured = sqrt(m), *flow = sqrt(f), *flow_moved = moved / scale;
    return n;
}

/* Balancedness per attention head: q^T k and W_O v are unchanged by (q, k) -> (N q, N^-T k)
 * and (v, W_O) -> (N v, W_O N^-1), so gradient flow conserves W_Q,h W_Q,h^T - W_K,h W_K,h^T and
 * W_V,h W_V,h^T - W_O,h^T W_O,h, and with weight decay shrinks them as e^{-2 gamma t}: with
 * gamma = 0.01 the imbalance falls below 0.3 of its size (gradient flow: e^{-3}); without weight decay (the
 * negative control) gradient flow keeps it exactly and SGD moves it by its finite-step term */
Test(examples, attention_heads_balance)
{
    char o[NT_PATH_MAX];
    cJSON *s = run_example("attention_heads.json", o);
    double a, m, f, moved;
    cr_assert_eq(head_imbalance(s, &a, &m, &f, &moved), 2 * 2 * 10, "d_head = 4: 10 symmetric entries per head and pair");
    cr_assert_lt(m, 0.3 * a, "weight decay: the imbalance went from %g to %g", a, m);
    cr_assert_lt(f, 0.3 * a, "weight decay: gradient flow took it from %g to %g", a, f);
    cr_log_info("attention heads, weight decay 0.01: imbalance %.3f -> %.3f (gradient flow %.3f)", a, m, f);
    /* the two laws the catalogue lacks (README: discovery), marked in the report */
    const cJSON *laws = obj(s, "analysis.discovery");
    cr_assert_eq((int)num(laws, "conserved") - (int)num(laws, "catalogue_conserved"), 2);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(laws, "explained")));
    row_marked(o, "Does the catalogue explain every conservation law", "out_proj.bias");
    row_marked(o, "Does the catalogue explain every conservation law", "&#10007;");
    cJSON_Delete(s);

    s = run_changed("train", "attention_heads.json", "\"weight_decay\": 0.01", "\"weight_decay\": 0");
    cr_assert_eq(head_imbalance(s, &a, &m, &f, &moved), 40);
    cr_assert_leq(moved, 1e-12, "without weight decay gradient flow moved an imbalance by %g of the scale", moved);
    cr_assert_gt(m, 0.8 * a, "without weight decay the imbalance went from %g to %g", a, m);
    cr_log_info("attention heads, no weight decay: imbalance %.3f -> %.3f (gradient flow %.3f)", a, m, f);
    cJSON_Delete(s);
}
