/* html.c: report.html from summary.json and the figures: one page that opens from disk
 * with no external assets (styles inline, figures as SVG files beside it), in the order a
 * reader asks the questions: what was run, does every identity hold, what did training
 * conserve and break, what does the curvature look like, where does the symmetry show in
 * it.  Also the closing summary of noether run / demo on stdout. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "report.h"
#include "../util/buf.h"

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* text with the five HTML special characters escaped */
static void esc(nt_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': nt_buf_printf(b, "&lt;"); break;
        case '>': nt_buf_printf(b, "&gt;"); break;
        case '&': nt_buf_printf(b, "&amp;"); break;
        case '"': nt_buf_printf(b, "&quot;"); break;
        case '\'': nt_buf_printf(b, "&#39;"); break;
        default: nt_buf_printf(b, "%c", *s);
        }
    }
}

static const char style[] =
    "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;"
    "color:#222;line-height:1.45;background:#fff}"
    "h1{font-size:1.7em;margin-bottom:.1em}h2{font-size:1.25em;border-bottom:2px solid #1f77b4;padding-bottom:.2em;"
    "margin-top:2em}.sub{color:#666;margin-top:0}"
    "table{border-collapse:collapse;margin:.8em 0;font-size:.92em}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left;vertical-align:top}th{background:#f0f4f8}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}"
    "figure{margin:1.5em 0;padding:0}figure img{width:100%;border:1px solid #ddd}"
    "figcaption{font-size:.92em;color:#333;margin-top:.4em}code{background:#f4f4f4;padding:0 .2em}"
    "details{margin:1em 0}summary{cursor:pointer;font-weight:bold}";

/* one row of the at-a-glance table: a check mark (HOLDS), a cross (FAILS), no mark (NONE:
 * not a check) or the words (NOT_APPLICABLE); the verdicts are decided by nt_verdicts_decide */
static void glance(nt_buf *b, const char *what, const char *measured, const char *expected, nt_verdict ok)
{
    nt_buf_printf(b, "<tr><td>%s</td><td>%s</td><td>%s</td><td class=\"%s\">%s</td></tr>\n", what, measured, expected,
               ok == NT_VERDICT_HOLDS ? "ok" : ok == NT_VERDICT_FAILS ? "bad" : "",
               ok == NT_VERDICT_HOLDS ? "&#10003;" : ok == NT_VERDICT_FAILS ? "&#10007;"
               : ok == NT_VERDICT_NOT_APPLICABLE ? "not applicable" : "");
}

/* verdict k of n, ABSENT beyond them */
static nt_verdict nth(const nt_verdict *a, int n, int k)
{
    return k < n ? a[k] : NT_VERDICT_ABSENT;
}

/* noether discover's question to the catalogue (docs/theory.md §7): the laws the model has,
 * and what of them the catalogue does not explain */
static void laws_text(const cJSON *dc, char *m, size_t cap)
{
    int n = snprintf(m, cap, "%d conservation laws for any loss (d &minus; dim Lie(W)); the catalogue's quantities "
                     "account for %d", (int)num(dc, "conserved"), (int)num(dc, "catalogue_conserved"));
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(dc, "missing_from_catalogue"))
        if (k++ < 2 && n > 0 && (size_t)n < cap) n += snprintf(m + n, cap - (size_t)n, "%s%s", k == 1 ? "; beyond it: " : "; ",
                                                              it->valuestring);
}

static void laws_row(nt_buf *b, const cJSON *dc, nt_verdict v)
{
    const char *q = "Does the catalogue explain every conservation law (noether discover)?";
    char m[512];
    if (v == NT_VERDICT_ABSENT) {
        if (dc) glance(b, q, str(dc, "note"), "", NT_VERDICT_NONE);
        return;
    }
    laws_text(dc, m, sizeof m);
    glance(b, q, m, "all of them, and no map or law it lacks (docs/theory.md &sect;7)", v);
}

static void at_a_glance(nt_buf *b, const cJSON *s, const nt_verdicts *v)
{
    const cJSON *an = cJSON_GetObjectItem(s, "analysis"), *led = cJSON_GetObjectItem(s, "ledger"),
                *fin = cJSON_GetObjectItem(an, "final"), *flat = cJSON_GetObjectItem(fin, "flat"), *it;
    char m[512], e[512];
    nt_buf_printf(b, "<table><tr><th>question</th><th>measured</th><th>expected</th><th></th></tr>\n");
    int n_cp = cJSON_GetArraySize(cJSON_GetObjectItem(an, "checkpoints"));
    snprintf(m, sizeof m, "%d identities of %d transformations checked at %d checkpoint%s; worst residual %.1e",
             (int)num(an, "identities"), (int)num(an, "transformations"), n_cp, n_cp == 1 ? "" : "s",
             num(an, "worst_residual"));
    glance(b, "Do the symmetry identities hold?", m, "all below " NT_STR(NT_IDENTITY_TOL) " (round-off)", v->identities);
    double flow = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(led, "per_quantity")) {
        double q = num(it, "measured"), g = num(it, "gradient_flow"), q0 = num(it, "initial");
        flow = fmax(flow, fabs(q - g) / fmax(fmax(fabs(q), fabs(q0)), 1e-300));
    }
    const double ind = num(led, "conserved_independent");   /* NAN: not computed */
    snprintf(m, sizeof m, "%d quantities (%d conserved, %d of them independent); ledger gap %.1e; gradient-flow law "
             "off by up to %.1e (relative)", (int)num(led, "quantities"), (int)num(led, "conserved"),
             ind >= 0 ? (int)ind : -1, num(led, "max_gap"), flow);
    if (v->ledger == NT_VERDICT_NOT_APPLICABLE)
        snprintf(m, sizeof m, "no quantities: the model has no continuous symmetry with a symmetric generator");
    glance(b, "Does the ledger account for every step?", m, "ledger gap at round-off", v->ledger);
    snprintf(m, sizeof m, "%s, %d steps: loss L %.5g, L<sub>&gamma;</sub> %.5g (training set, final &theta;)", str(s, "optimizer"),
             (int)num(s, "steps"), num(s, "final_loss"), num(s, "final_loss_gamma"));
    if (!isnan(num(s, "train_accuracy"))) snprintf(m + strlen(m), sizeof m - strlen(m), ", training accuracy %.3f", num(s, "train_accuracy"));
    if (!isnan(num(s, "test_accuracy"))) snprintf(m + strlen(m), sizeof m - strlen(m), ", test accuracy %.3f", num(s, "test_accuracy"));
    glance(b, "How did training go?", m, v->training == NT_VERDICT_FAILS ? str(s, "stopped") : "", v->training);
    const cJSON *top = cJSON_GetObjectItem(fin, "top"), *bot = cJSON_GetObjectItem(fin, "bottom");
    snprintf(m, sizeof m, "&lambda;<sub>max</sub> %.4g, &lambda;<sub>min</sub> %.4g (%s)",
             cJSON_GetArraySize(top) ? cJSON_GetArrayItem(top, 0)->valuedouble : NAN,
             cJSON_GetArraySize(bot) ? cJSON_GetArrayItem(bot, 0)->valuedouble : NAN, str(fin, "method"));
    glance(b, "How curved is the end point?", m, "", NT_VERDICT_NONE);
    if (v->flat != NT_VERDICT_ABSENT) {
        snprintf(m, sizeof m, "%d eigenvalues at &gamma; = %g (within %.1e)", (int)num(flat, "found"), num(flat, "gamma"),
                 num(flat, "tolerance"));
        if (num(flat, "dead_units") > 0)   /* what the shifts do not account for */
            snprintf(m + strlen(m), sizeof m - strlen(m), "; %d ReLU units are dead on every training sample: their "
                     "incoming weights, biases and outgoing weights, %d coordinates, are flat at this &theta;",
                     (int)num(flat, "dead_units"), (int)num(flat, "dead_unit_directions"));
        char cp[128];
        report_critical_point(flat, cp, sizeof cp);
        snprintf(e, sizeof e, "at least %d (pure shifts: logit translations, biases before a normalization; at every &theta;); "
                 "at a critical point of L<sub>&gamma;</sub>: %s (docs/theory.md (S1&gamma;))",
                 (int)num(flat, "predicted_everywhere"), cp);
        glance(b, "How many flat directions?", m, e, v->flat);
    } else if (flat) {   /* said, not left out: why there is no count */
        snprintf(m, sizeof m, "not counted: the final spectrum is %s's, only its ends are known, so the eigenvalues "
                 "at &gamma; = %g cannot be counted", str(fin, "method"), num(flat, "gamma"));
        if (num(flat, "dead_units") > 0)
            snprintf(m + strlen(m), sizeof m - strlen(m), "; %d ReLU units are dead on every training sample, %d "
                     "coordinates flat at this &theta; beside the shifts", (int)num(flat, "dead_units"),
                     (int)num(flat, "dead_unit_directions"));
        snprintf(e, sizeof e, "at least %d (pure shifts, at every &theta;)", (int)num(flat, "predicted_everywhere"));
        glance(b, "How many flat directions?", m, e, NT_VERDICT_NONE);
    }
    const cJSON *al = cJSON_GetObjectItem(fin, "alignment");
    if (al) {
        snprintf(m, sizeof m, "%.3f of |g|&sup2; in the top-%d eigenspace", num(al, "gradient_fraction_in_top"), (int)num(al, "k"));
        glance(b, "Where does the gradient point?", m, "", NT_VERDICT_NONE);
    }
    int k = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(fin, "alignment_scale_invariant")) {
        double a = num(it, "fraction_in_top_measured"), p = num(it, "fraction_in_top_predicted");
        snprintf(m, sizeof m, "%s: %.6f of its gradient's |g|&sup2; in the top-%d eigenspace", str(it, "name"), a,
                 (int)num(it, "k"));
        snprintf(e, sizeof e, "%.6f: &theta;'s weight times (&lambda; &minus; 2&gamma;)&sup2; (S1)", p);
        glance(b, "Scale-invariant block: where is its gradient?", m, e, nth(v->block, v->blocks, k++));
    }
    const cJSON *sh = cJSON_GetObjectItem(fin, "sharp");
    if (v->sharp != NT_VERDICT_ABSENT) {
        snprintf(m, sizeof m, "radial curvature %.10g", num(sh, "radial_curvature"));
        snprintf(e, sizeof e, "closed form %.10g (degree %g)", num(sh, "closed_form"), num(sh, "degree"));
        glance(b, "Radial sharpness (homogeneous model)", m, e, v->sharp);
    }
    k = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(fin, "sectors")) {
        const nt_verdict vs = nth(v->sector, v->sectors, k++);
        if (vs == NT_VERDICT_ABSENT && cJSON_IsString(cJSON_GetObjectItem(it, "skipped"))) {
            snprintf(m, sizeof m, "layer %d: not computed: %s", (int)num(it, "layer"), str(it, "skipped"));
            glance(b, "S<sub>n</sub> sectors at the symmetric point", m, "", NT_VERDICT_NONE);
        }
        if (vs == NT_VERDICT_ABSENT) continue;
        snprintf(m, sizeof m, "layer %d, %d units: eigenvalues in groups of %d (margin %.3g)", (int)num(it, "layer"),
                 (int)num(it, "units"), (int)num(it, "multiplicity_found"), num(it, "stability_margin"));
        snprintf(e, sizeof e, "multiplicity n&minus;1 = %d", (int)num(it, "predicted_multiplicity"));
        glance(b, "S<sub>n</sub> sectors at the symmetric point", m, e, vs);
    }
    const cJSON *mg = cJSON_GetObjectItem(an, "margin_growth");
    if (v->margin != NT_VERDICT_ABSENT && mg) {
        if (v->margin == NT_VERDICT_NOT_APPLICABLE && cJSON_IsTrue(cJSON_GetObjectItem(mg, "separated")))
            snprintf(m, sizeof m, "separated at step %d, the last logged step (normalized margin %.3g, |&theta;|&sup2; "
                     "%.4g): no step after it to compare", (int)num(mg, "separated_step"), num(mg, "margin_final"),
                     num(mg, "norm2_final"));
        else if (v->margin == NT_VERDICT_NOT_APPLICABLE)
            snprintf(m, sizeof m, "the data were never separated: the normalized margin is %.3g at the end",
                     num(mg, "margin_final"));
        else
            snprintf(m, sizeof m, "separated from step %d: normalized margin %.3g &rarr; %.3g (fell at %d logged "
                     "steps), |&theta;|&sup2; %.4g &rarr; %.4g (fell at %d)", (int)num(mg, "separated_step"),
                     num(mg, "margin_at_separation"), num(mg, "margin_final"), (int)num(mg, "margin_falls"),
                     num(mg, "norm2_at_separation"), num(mg, "norm2_final"), (int)num(mg, "norm2_falls"));
        glance(b, "Does the margin grow (Lyu &amp; Li)?", m, "once separated, both rise at every step "
               "(docs/theory.md &sect;2)", v->margin);
    }
    laws_row(b, cJSON_GetObjectItem(an, "discovery"), v->laws);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(s, "fixed_points")) {
        snprintf(m, sizeof m, "%s: distance %.3g &rarr; %.3g", str(it, "name"), num(it, "distance_initial"), num(it, "distance_final"));
        snprintf(e, sizeof e, "%s", cJSON_GetObjectItem(it, "stable_predicted") ?
                 (cJSON_IsTrue(cJSON_GetObjectItem(it, "stable_predicted")) ? "stable (linearized, docs/theory.md §4)" : "unstable (linearized)") : "");
        glance(b, "Fixed point the run started on", m, e, NT_VERDICT_NONE);
    }
    double lo = INFINITY, hi = 0, plo = INFINITY, phi = 0, start = 0;
    int n_fp = 0, from = 0, to = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(an, "fixed_point_growth")) {
        lo = fmin(lo, num(it, "measured")); hi = fmax(hi, num(it, "measured"));
        plo = fmin(plo, num(it, "predicted")); phi = fmax(phi, num(it, "predicted"));
        start = fmax(start, num(it, "predicted_from_start"));
        from = (int)num(it, "from_step"); to = (int)num(it, "to_step");
        n_fp++;
    }
    if (n_fp) {
        snprintf(m, sizeof m, "%d fixed point%s: the distance grew %.4g&ndash;%.4g&times; from step %d to %d", n_fp,
                 n_fp > 1 ? "s" : "", lo, hi, from, to);
        snprintf(e, sizeof e, "%.4g&ndash;%.4g&times;: max |1 &minus; &eta;&lambda;| of H<sub>&gamma;</sub> on Fix(T)<sup>&perp;</sup> "
                 "at each checkpoint, per step (docs/theory.md §4); the start's spectrum alone: %.3g&times;", plo, phi, start);
        glance(b, "Growth away from the fixed point (linearized along the run)", m, e, NT_VERDICT_NONE);
    }
    nt_buf_printf(b, "</table>\n");
}

static void checkpoints_table(nt_buf *b, const cJSON *an)
{
    const cJSON *c;
    nt_buf_printf(b, "<table><tr><th>step</th><th>loss L</th><th>L<sub>&gamma;</sub></th><th>|g<sub>&gamma;</sub>|</th><th>identities holding</th><th>worst residual</th>"
                  "<th>&lambda;<sub>max</sub></th><th>&lambda;<sub>min</sub></th><th>|g|&sup2; in top-k</th>"
                  "<th>orbit rank</th><th>eigenvalues at &gamma;</th></tr>\n");
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(an, "checkpoints")) {
        char flat[16] = "&ndash;";
        if (cJSON_GetObjectItem(c, "eigenvalues_at_gamma")) snprintf(flat, sizeof flat, "%d", (int)num(c, "eigenvalues_at_gamma"));
        nt_buf_printf(b, "<tr><td class=n>%d</td><td class=n>%.6g</td><td class=n>%.6g</td><td class=n>%.3e</td><td class=n>%d / %d</td>"
                      "<td class=n>%.1e</td><td class=n>%.5g</td><td class=n>%.5g</td><td class=n>%.3f</td>"
                      "<td class=n>%d</td><td class=n>%s</td></tr>\n",
                   (int)num(c, "step"), num(c, "loss"), num(c, "loss_gamma"), num(c, "grad_norm"), (int)num(c, "identities_holding"),
                   (int)num(c, "identities"), num(c, "worst_residual"), num(c, "lambda_max"), num(c, "lambda_min"),
                   num(c, "gradient_fraction_in_top"), (int)num(c, "orbit_rank"), flat);
    }
    nt_buf_printf(b, "</table>\n");
}

static void identities_table(nt_buf *b, const cJSON *an)
{
    const cJSON *it;
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(an, "identities_final"));
    nt_buf_printf(b, "<details><summary>Every identity at the final parameters (%d rows)</summary>\n"
                  "<table><tr><th>transformation</th><th>kind</th><th>type</th><th>1st order</th><th>2nd order</th>"
                  "<th>holds</th></tr>\n", n);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(an, "identities_final")) {
        nt_buf_printf(b, "<tr><td><code>");
        esc(b, str(it, "name"));
        int ok = cJSON_IsTrue(cJSON_GetObjectItem(it, "holds"));
        nt_buf_printf(b, "</code></td><td>%s</td><td>%s</td><td class=n>%.2e</td><td class=n>%.2e</td>"
                      "<td class=\"%s\">%s</td></tr>\n", str(it, "kind"), str(it, "type"),
                   num(it, "first_order_residual"), num(it, "second_order_residual"), ok ? "ok" : "bad", ok ? "yes" : "no");
    }
    nt_buf_printf(b, "</table></details>\n");
}

static void model_section(nt_buf *b, const cJSON *s)
{
    const cJSON *info = cJSON_GetObjectItem(s, "info"), *L, *kv;
    nt_buf_printf(b, "<p>Model: input %d &rarr; ", (int)num(info, "input"));
    cJSON_ArrayForEach(L, cJSON_GetObjectItem(info, "layers")) {
        nt_buf_printf(b, "[");
        int first = 1;
        cJSON_ArrayForEach(kv, L) {
            if (!cJSON_IsString(kv) && !cJSON_IsNumber(kv) && !cJSON_IsFalse(kv)) continue;
            nt_buf_printf(b, first ? "" : " ");
            first = 0;
            if (cJSON_IsFalse(kv)) nt_buf_printf(b, "no ");
            esc(b, kv->string);
            if (cJSON_IsString(kv)) { nt_buf_printf(b, " "); esc(b, kv->valuestring); }
            if (cJSON_IsNumber(kv)) nt_buf_printf(b, " %g", kv->valuedouble);
        }
        nt_buf_printf(b, "] ");
    }
    nt_buf_printf(b, "&rarr; %s loss; d = %d parameters. Data: ", str(info, "loss"), (int)num(info, "d"));
    esc(b, str(cJSON_GetObjectItem(info, "data"), "description"));
    nt_buf_printf(b, ". Training: %s, learning rate %g, weight decay &gamma; = %g, %d steps.", str(s, "optimizer"), num(s, "lr"), num(s, "weight_decay"), (int)num(s, "steps"));
    const cJSON *from = cJSON_GetObjectItem(s, "theta_origin");
    if (!strcmp(str(from, "from"), "params")) {
        nt_buf_printf(b, " &theta; at the start: read from <code>");
        esc(b, str(from, "file"));
        nt_buf_printf(b, "</code> (%.0f bytes, FNV-1a 64 hash <code>%s</code>)", num(from, "bytes"), str(from, "fnv1a64"));
    } else if (from) {
        nt_buf_printf(b, " &theta; at the start: the spec's seeded initialization (seed %.0f)", num(from, "seed"));
    }
    if ((int)num(s, "steps") == 0)
        nt_buf_printf(b, ". No training: every analysis below is at this one &theta;, so the report has no curves over steps");
    nt_buf_printf(b, ".</p>\n");
}

int report_build(const char *dir, const cJSON *summary, const nt_verdicts *v, const volatile sig_atomic_t *stop,
                 nt_error *err)
{
    report_figure figs[16];
    int n_figs = 0;
    if (report_plots(dir, summary, stop, figs, &n_figs, err)) return err->code;
    const cJSON *an = cJSON_GetObjectItem(summary, "analysis");
    nt_buf b = {0};
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    nt_buf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                   "<title>noether report: ");
    esc(&b, str(summary, "spec"));
    nt_buf_printf(&b, "</title>\n<style>%s</style></head>\n<body>\n<h1>What symmetry does to this network</h1>\n"
                   "<p class=\"sub\">noether run &middot; spec <code>", style);
    esc(&b, str(summary, "spec"));
    nt_buf_printf(&b, "</code> &middot; %s &middot; %.1f s</p>\n", when, num(summary, "seconds_total"));
    model_section(&b, summary);
    nt_buf_printf(&b, "<h2>At a glance</h2>\n");
    at_a_glance(&b, summary, v);
    const char *sections[][2] = {
        {"Training", "loss"}, {NULL, "margin"}, {"Conservation laws and what broke them", "ledger"}, {NULL, "ledger_gaps"},
        {NULL, "distances"}, {"The identities", "identities"}, {"Curvature", "ritz"}, {NULL, "alignment"},
        {NULL, "radial"}, {"Flat directions and symmetry sectors", "density"}, {NULL, "sectors"}};
    for (size_t k = 0; k < sizeof sections / sizeof sections[0]; k++)
        for (int f = 0; f < n_figs; f++) {
            if (strcmp(figs[f].stem, sections[k][1])) continue;
            if (sections[k][0]) nt_buf_printf(&b, "<h2>%s</h2>\n", sections[k][0]);
            nt_buf_printf(&b, "<figure><img src=\"plots/%s.png\" alt=\"%s\">\n"
                           "<figcaption><b>%s.</b> %s (<a href=\"plots/%s.svg\">SVG</a>)</figcaption></figure>\n",
                       figs[f].stem, figs[f].title, figs[f].title, figs[f].caption, figs[f].stem);
        }
    nt_buf_printf(&b, "<h2>Checkpoints</h2>\n");
    checkpoints_table(&b, an);
    identities_table(&b, an);
    nt_buf_printf(&b, "<h2>Files</h2>\n<p><code>summary.json</code> (every number above), <code>ledger.csv</code> "
                   "(a row per logged step: loss, accuracy, each quantity measured, by the ledger and by the "
                   "gradient-flow law), <code>analysis.csv</code> (a row per checkpoint), <code>density.csv</code>, "
                   "<code>sectors.csv</code>, <code>spectrum.json</code>, <code>params_init.npy</code>, "
                   "<code>params_final.npy</code>, the figures in <code>plots/</code> (redraw them with "
                   "<code>gnuplot plots/plots.gp</code> from this folder). The mathematics behind every number: "
                   "docs/theory.md in the repository; equation labels like (F3) refer to it.</p>\n"
                   "<script>window.addEventListener('load',function(){var i=document.images,n=0;"
                   "for(var k=0;k<i.length;k++)if(i[k].complete&&i[k].naturalWidth>0)n++;"
                   "document.body.setAttribute('data-images-loaded',n+'/'+i.length);"
                   "var r=performance.getEntriesByType('resource'),x=0;"
                   "for(var k=0;k<r.length;k++)if(!/^file:/.test(r[k].name))x++;"
                   "document.body.setAttribute('data-external-requests',x+'');});</script>\n"
                   "</body></html>\n");
    int rc = report_write(dir, "report.html", b.s, err);
    free(b.s);
    return rc;
}

void report_print_summary(FILE *f, const char *dir, const cJSON *s, const nt_verdicts *v)
{
    const cJSON *an = cJSON_GetObjectItem(s, "analysis"), *led = cJSON_GetObjectItem(s, "ledger"),
                *fin = cJSON_GetObjectItem(an, "final"), *flat = cJSON_GetObjectItem(fin, "flat"), *it;
    int n_cp = cJSON_GetArraySize(cJSON_GetObjectItem(an, "checkpoints"));
    fprintf(f, "identities   %d identities of %d transformations %s at all %d checkpoints (worst residual %.1e)\n",
            (int)num(an, "identities"), (int)num(an, "transformations"),
            v->identities == NT_VERDICT_FAILS ? "do NOT all hold" : "hold", n_cp, num(an, "worst_residual"));
    fprintf(f, "training     %d steps of %s: loss L %.5g, L_gamma %.5g", (int)num(s, "steps"), str(s, "optimizer"),
            num(s, "final_loss"), num(s, "final_loss_gamma"));
    if (!isnan(num(s, "test_accuracy"))) fprintf(f, ", test accuracy %.3f", num(s, "test_accuracy"));
    fprintf(f, "\nledger       %d conserved or tracked quantities (%d conserved, %d of them independent); measured and "
            "predicted agree to %.1e\n", (int)num(led, "quantities"), (int)num(led, "conserved"),
            num(led, "conserved_independent") >= 0 ? (int)num(led, "conserved_independent") : -1, num(led, "max_gap"));
    const cJSON *top = cJSON_GetObjectItem(fin, "top"), *bot = cJSON_GetObjectItem(fin, "bottom");
    if (cJSON_GetArraySize(top) && cJSON_GetArraySize(bot))
        fprintf(f, "curvature    lambda_max %.4g, lambda_min %.4g (%s); %.3f of |g|^2 in the top-%d eigenspace\n",
                cJSON_GetArrayItem(top, 0)->valuedouble, cJSON_GetArrayItem(bot, 0)->valuedouble, str(fin, "method"),
                num(cJSON_GetObjectItem(fin, "alignment"), "gradient_fraction_in_top"), cJSON_GetArraySize(top));
    if (v->flat != NT_VERDICT_ABSENT) {
        char cp[128];
        report_critical_point(flat, cp, sizeof cp);
        fprintf(f, "flat         %d eigenvalues at gamma = %g; predicted %d everywhere (pure shifts); "
                   "at a critical point: %s\n", (int)num(flat, "found"), num(flat, "gamma"),
                (int)num(flat, "predicted_everywhere"), cp);
    }
    const cJSON *mg = cJSON_GetObjectItem(an, "margin_growth");
    if (v->margin == NT_VERDICT_HOLDS || v->margin == NT_VERDICT_FAILS)
        fprintf(f, "margin       separated from step %d: normalized margin %.3g -> %.3g, |theta|^2 %.4g -> %.4g; "
                "%d + %d falls\n", (int)num(mg, "separated_step"), num(mg, "margin_at_separation"),
                num(mg, "margin_final"), num(mg, "norm2_at_separation"), num(mg, "norm2_final"),
                (int)num(mg, "margin_falls"), (int)num(mg, "norm2_falls"));
    const cJSON *sh = cJSON_GetObjectItem(fin, "sharp");
    if (v->sharp != NT_VERDICT_ABSENT) fprintf(f, "sharp        radial curvature %.10g, closed form %.10g\n", num(sh, "radial_curvature"),
                    num(sh, "closed_form"));
    int k = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(fin, "sectors"))
        if (nth(v->sector, v->sectors, k++) != NT_VERDICT_ABSENT)
            fprintf(f, "sectors      layer %d, %d units: multiplicity %d found, %d predicted\n", (int)num(it, "layer"),
                    (int)num(it, "units"), (int)num(it, "multiplicity_found"), (int)num(it, "predicted_multiplicity"));
    const cJSON *dc = cJSON_GetObjectItem(an, "discovery");
    if (v->laws != NT_VERDICT_ABSENT)
        fprintf(f, "laws         conservation laws: %d (%s)\n", (int)num(dc, "conserved"),
                v->laws == NT_VERDICT_HOLDS ? "all explained by the catalogue's symmetries"
                                            : "not all explained by the catalogue: noether discover SPEC says which");
    fprintf(f, "report       %s/report.html\n", dir);
}
