/* test_verdict.c: every verdict of a run is decided once, by nt_verdicts_decide
 * (src/analysis/verdict.c), from plain numbers (issue #15, item 1):
 *   - each rule of docs/theory.md §6 as the library applies it: the identities at every
 *     checkpoint, the ledger below NT_LEDGER_TOL, the flat count against the shifts' rank,
 *     the radial curvature and a scale-invariant block within NT_CLOSED_FORM_TOL, the S_n
 *     multiplicity n - 1, "not applicable" with nothing to check and "absent" when a number
 *     was not measured; each with a control on the other side of the rule;
 *   - inconsistent facts are refused (NT_EINPUT naming the field), their valid twin accepted;
 *   - noether run's three readers (exit code, summary.json's all_identities_hold, the closing
 *     line, the report's identity row) say the same thing, on a run whose identities fail and
 *     on its control where they hold;
 *   - src/util's text buffer and folders, and the include structure: src/report includes
 *     nothing from src/cli. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cJSON.h>
#include "helpers.h"
#include "../src/util/buf.h"

/* facts of a run where everything holds: 3 checkpoints of 5 identities, a closed ledger, 17
 * eigenvalues at gamma for 17 shifts, a radial curvature at its closed form, one block, two
 * sectors */
static const int all_held[3] = {5, 5, 5};
static const double meas[1] = {0.25}, pred[1] = {0.25};
static const int found[2] = {15, 7}, npred[2] = {15, 7};

static nt_run_facts good(void)
{
    return (nt_run_facts){ .identities = 5, .checkpoints = 3, .identities_holding = all_held,
                           .quantities = 50, .ledger_max_gap = 3e-15, .stopped = 0,
                           .flat_found = 17, .flat_predicted = 17,
                           .sharp = 1, .radial_curvature = 2.5, .radial_closed_form = 2.5 * (1 + 1e-14),
                           .blocks = 1, .block_measured = meas, .block_predicted = pred,
                           .sectors = 2, .sector_found = found, .sector_predicted = npred };
}

static nt_verdicts decide_ok(const nt_run_facts *f)
{
    nt_verdicts v;
    nt_error err = {0};
    int rc = nt_verdicts_decide(f, &v, &err);
    cr_assert_eq(rc, NT_OK, "nt_verdicts_decide: %s", err.msg);
    return v;
}

/* everything holds on good facts: the control for every test below */
Test(verdict, everything_holds)
{
    nt_run_facts f = good();
    nt_verdicts v = decide_ok(&f);
    cr_assert_eq(v.identities, NT_VERDICT_HOLDS);
    cr_assert_eq(v.ledger, NT_VERDICT_HOLDS);
    cr_assert_eq(v.training, NT_VERDICT_NONE);
    cr_assert_eq(v.flat, NT_VERDICT_HOLDS);
    cr_assert_eq(v.sharp, NT_VERDICT_HOLDS);
    cr_assert_eq(v.blocks, 1);
    cr_assert_eq(v.block[0], NT_VERDICT_HOLDS);
    cr_assert_eq(v.sectors, 2);
    cr_assert_eq(v.sector[0], NT_VERDICT_HOLDS);
    cr_assert_eq(v.sector[1], NT_VERDICT_HOLDS);
    nt_verdicts_free(&v);
    cr_assert_null(v.block);
    cr_assert_null(v.sector);
}

/* one identity missing at one checkpoint fails the run's identities; none to check is "not
 * applicable", never a check mark */
Test(verdict, identities)
{
    nt_run_facts f = good();
    const int one_short[3] = {5, 4, 5};
    f.identities_holding = one_short;
    nt_verdicts v = decide_ok(&f);
    cr_assert_eq(v.identities, NT_VERDICT_FAILS);
    nt_verdicts_free(&v);
    const int none[3] = {0, 0, 0};
    f.identities = 0;
    f.identities_holding = none;
    v = decide_ok(&f);
    cr_assert_eq(v.identities, NT_VERDICT_NOT_APPLICABLE);
    nt_verdicts_free(&v);
    f = good();   /* control: the same counts all held */
    v = decide_ok(&f);
    cr_assert_eq(v.identities, NT_VERDICT_HOLDS);
    nt_verdicts_free(&v);
}

/* the ledger closes below NT_LEDGER_TOL (strictly); a gap at the tolerance or NAN fails;
 * without quantities there is nothing to check, whatever the gap */
Test(verdict, ledger)
{
    nt_run_facts f = good();
    const double gaps[] = {NT_LEDGER_TOL * 0.99, NT_LEDGER_TOL, 1e-6, NAN};
    const nt_verdict want[] = {NT_VERDICT_HOLDS, NT_VERDICT_FAILS, NT_VERDICT_FAILS, NT_VERDICT_FAILS};
    for (int i = 0; i < 4; i++) {
        f.ledger_max_gap = gaps[i];
        nt_verdicts v = decide_ok(&f);
        cr_assert_eq(v.ledger, want[i], "gap %g: %s", gaps[i], nt_verdict_name(v.ledger));
        nt_verdicts_free(&v);
    }
    f.quantities = 0;
    f.ledger_max_gap = 1;
    nt_verdicts v = decide_ok(&f);
    cr_assert_eq(v.ledger, NT_VERDICT_NOT_APPLICABLE);
    cr_assert_str_eq(nt_verdict_name(v.ledger), "not applicable");
    nt_verdicts_free(&v);
}

/* at least as many eigenvalues at gamma as shifts (S1gamma): more holds, fewer fails, not
 * counted is absent */
Test(verdict, flat)
{
    nt_run_facts f = good();
    const int counts[] = {18, 17, 16, -1};
    const nt_verdict want[] = {NT_VERDICT_HOLDS, NT_VERDICT_HOLDS, NT_VERDICT_FAILS, NT_VERDICT_ABSENT};
    for (int i = 0; i < 4; i++) {
        f.flat_found = counts[i];
        nt_verdicts v = decide_ok(&f);
        cr_assert_eq(v.flat, want[i], "found %d of 17: %s", counts[i], nt_verdict_name(v.flat));
        nt_verdicts_free(&v);
    }
}

/* the radial curvature at its closed form to round-off holds; 1e-6 off fails; a model that
 * is not homogeneous has none (absent); a scale-invariant block likewise */
Test(verdict, closed_forms)
{
    nt_run_facts f = good();
    f.radial_closed_form = 2.5 * (1 + 1e-6);
    const double off[1] = {0.25 * (1 + 1e-6)};
    f.block_measured = off;
    nt_verdicts v = decide_ok(&f);
    cr_assert_eq(v.sharp, NT_VERDICT_FAILS);
    cr_assert_eq(v.block[0], NT_VERDICT_FAILS);
    nt_verdicts_free(&v);
    f.sharp = 0;
    v = decide_ok(&f);
    cr_assert_eq(v.sharp, NT_VERDICT_ABSENT);
    nt_verdicts_free(&v);
    f = good();   /* control: within NT_CLOSED_FORM_TOL */
    f.radial_closed_form = 2.5 * (1 + 0.5 * NT_CLOSED_FORM_TOL);
    v = decide_ok(&f);
    cr_assert_eq(v.sharp, NT_VERDICT_HOLDS);
    nt_verdicts_free(&v);
}

/* S_n sectors: multiplicity n - 1 holds, another fails, a layer not computed is absent;
 * a stopped run's training fails */
Test(verdict, sectors_and_training)
{
    nt_run_facts f = good();
    const int got[3] = {14, 7, -1}, want[3] = {15, 7, 3};
    f.sectors = 3;
    f.sector_found = got;
    f.sector_predicted = want;
    f.stopped = 1;
    nt_verdicts v = decide_ok(&f);
    cr_assert_eq(v.sector[0], NT_VERDICT_FAILS);
    cr_assert_eq(v.sector[1], NT_VERDICT_HOLDS);
    cr_assert_eq(v.sector[2], NT_VERDICT_ABSENT);
    cr_assert_eq(v.training, NT_VERDICT_FAILS);
    nt_verdicts_free(&v);
}

/* inconsistent facts: NT_EINPUT naming the field, v left empty; the valid twin passes */
Test(verdict, refuses_inconsistent_facts)
{
    const int too_many[3] = {5, 6, 5};
    struct { nt_run_facts f; const char *field; } bad[6];
    for (int i = 0; i < 6; i++) bad[i].f = good();
    bad[0].f.identities = -1; bad[0].field = "identities";
    bad[1].f.identities_holding = NULL; bad[1].field = "identities_holding";
    bad[2].f.identities_holding = too_many; bad[2].field = "identities_holding[1]";
    bad[3].f.quantities = -2; bad[3].field = "quantities";
    bad[4].f.block_measured = NULL; bad[4].field = "blocks";
    bad[5].f.sector_predicted = NULL; bad[5].field = "sectors";
    for (int i = 0; i < 6; i++) {
        nt_verdicts v;
        nt_error err = {0};
        cr_assert_eq(nt_verdicts_decide(&bad[i].f, &v, &err), NT_EINPUT, "case %d accepted", i);
        cr_assert_eq(err.code, NT_EINPUT);
        cr_assert_not_null(strstr(err.msg, bad[i].field), "case %d: %s", i, err.msg);
        cr_assert_null(v.block);
        nt_verdicts_free(&v);
    }
    nt_verdicts v;
    nt_error err = {0};
    cr_assert_eq(nt_verdicts_decide(NULL, &v, &err), NT_EINPUT);
    nt_run_facts f = good();
    cr_assert_eq(nt_verdicts_decide(&f, &v, &err), NT_OK);
    nt_verdicts_free(&v);
}

/* ---- the binary: one verdict, three readers ------------------------------------------- */

static char *slurp(const char *path)
{
    char *s = read_file(path, NULL);
    cr_assert_not_null(s, "%s: cannot open", path);
    return s;
}

/* a tanh MLP 4-8-3 on iris (d = 67), 60 GD steps, with (bad) or without a declared flow of a
 * random generator, which is no symmetry: its identities must fail */
static void run_case(const char *dir, int bad, int rc_want, const char *line_want, int hold_want, const char *mark)
{
    char spec[NT_PATH_MAX], out_dir[NT_PATH_MAX], a_path[NT_PATH_MAX], args[3 * NT_PATH_MAX], path[NT_PATH_MAX];
    enum { D = 67 };
    double *A = malloc(sizeof(double) * D * D);
    fill_normal(A, D * D, 1, 7);
    path_join(a_path, dir, "A.npy");
    nt_error err;
    cr_assert_eq(nt_npy_write(a_path, A, 2, (const int64_t[]){D, D}, &err), NT_OK, "%s", err.msg);
    free(A);
    path_join(spec, dir, "spec.json");
    char text[1024];
    snprintf(text, sizeof text,
             "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 8}, {\"act\": \"tanh\"}, {\"dense\": 3}], "
             "\"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"builtin\", \"name\": \"iris\", \"standardize\": true}, "
             "\"weight_decay\": 0.001, \"train\": {\"optimizer\": \"gd\", \"lr\": 0.1, \"steps\": 60, \"log_every\": 10}, "
             "\"analysis\": {\"every\": 30, \"spectrum\": {\"top\": 3, \"bottom\": 3}}%s}",
             bad ? ", \"transformations\": [{\"name\": \"random_flow\", \"kind\": \"continuous\", \"generator\": \"A.npy\"}]"
                 : "");
    write_text(spec, text);
    path_join(out_dir, dir, "out");
    snprintf(args, sizeof args, "run '%s' -o '%s'", spec, out_dir);
    char *out, *errs;
    int rc = run_noether(args, &out, &errs);
    cr_assert_eq(rc, rc_want, "noether %s: exit %d; stderr: %s", args, rc, errs);
    cr_assert_not_null(strstr(out, line_want), "closing lines: %s", out);
    path_join(path, out_dir, "summary.json");
    char *js = slurp(path);
    cJSON *doc = cJSON_Parse(js);
    const cJSON *hold = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "analysis"), "all_identities_hold");
    cr_assert(cJSON_IsBool(hold));
    cr_assert_eq(cJSON_IsTrue(hold), hold_want);
    path_join(path, out_dir, "report.html");
    char *html = slurp(path);
    const char *row = strstr(html, "Do the symmetry identities hold?");
    cr_assert_not_null(row);
    const char *end = strstr(row, "</tr>");
    cr_assert_not_null(end);
    char r[2048];
    snprintf(r, sizeof r, "%.*s", (int)(end - row < 2000 ? end - row : 2000), row);
    cr_assert_not_null(strstr(r, mark), "identity row: %s", r);
    cJSON_Delete(doc);
    free(js);
    free(html);
    free(out);
    free(errs);
}

Test(verdict, run_readers_agree_when_identities_fail, .timeout = 300)
{
    char dir[256];
    tmpdir_new(dir);
    run_case(dir, 1, 3, "do NOT all hold at all 3 checkpoints", 0, "&#10007;");
}

/* control: the same run without the random flow: exit 0, "hold", a check mark */
Test(verdict, run_readers_agree_when_identities_hold, .timeout = 300)
{
    char dir[256];
    tmpdir_new(dir);
    run_case(dir, 0, 0, "transformations hold at all 3 checkpoints", 1, "&#10003;");
}

/* ---- src/util: the text buffer and folders the report and the CLI share ---------------- */

Test(verdict, util_buf_and_folders)
{
    nt_buf b = {0};
    for (int i = 0; i < 1000; i++) nt_buf_printf(&b, "%d,", i % 10);
    cr_assert_eq(b.len, 2000);
    cr_assert_eq(strlen(b.s), 2000);
    cr_assert_eq(b.s[1998], '9');
    char dir[256], deep[NT_PATH_MAX], file[NT_PATH_MAX], under[NT_PATH_MAX + 8];
    tmpdir_new(dir);
    snprintf(deep, sizeof deep, "%s/a/b/c", dir);
    nt_error err = {0};
    cr_assert_eq(nt_mkdir_p(deep, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_mkdir_p(deep, &err), NT_OK, "an existing folder is kept: %s", err.msg);
    path_join(file, deep, "t.txt");
    cr_assert_eq(nt_text_write(file, b.s, &err), NT_OK, "%s", err.msg);
    char *back = slurp(file);
    cr_assert_str_eq(back, b.s);
    free(back);
    /* negative control: a folder under a regular file cannot be made */
    snprintf(under, sizeof under, "%s/x", file);
    cr_assert_eq(nt_mkdir_p(under, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "cannot create directory"), "%s", err.msg);
    free(b.s);
}

/* ---- the include structure -------------------------------------------------------------- */

/* how many files of folder (under the source tree) include a header path containing `what` */
static int includes(const char *folder, const char *what, int *files)
{
    char dirpath[NT_PATH_MAX];
    snprintf(dirpath, sizeof dirpath, "%s/%s", NOETHER_SOURCE_DIR, folder);
    DIR *d = opendir(dirpath);
    cr_assert_not_null(d, "%s", dirpath);
    struct dirent *ent;
    int n = 0;
    *files = 0;
    while ((ent = readdir(d))) {
        size_t len = strlen(ent->d_name);
        if (len < 3 || (strcmp(ent->d_name + len - 2, ".c") && strcmp(ent->d_name + len - 2, ".h"))) continue;
        char path[2 * NT_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dirpath, ent->d_name);
        char *s = slurp(path);
        (*files)++;
        for (const char *p = s; (p = strstr(p, "#include")); p++) {
            const char *eol = strchr(p, '\n');
            char line[512];
            snprintf(line, sizeof line, "%.*s", (int)(eol ? eol - p : (long)strlen(p)), p);
            if (strstr(line, what)) { n++; break; }
        }
        free(s);
    }
    closedir(d);
    return n;
}

/* src/report includes nothing from src/cli; control: the scan finds src/cli's include of
 * src/report (the one direction there is) */
Test(verdict, report_does_not_include_cli)
{
    int files;
    cr_assert_eq(includes("src/report", "cli/", &files), 0, "a file of src/report includes src/cli");
    cr_assert_geq(files, 4);
    cr_assert_eq(includes("src/report", "cli.h", &files), 0, "a file of src/report includes cli.h");
    cr_assert_geq(includes("src/cli", "report/report.h", &files), 1, "the scan missed cmd_run.c's include");
}
