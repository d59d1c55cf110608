/* test_usability.c: the command line a researcher meets (issue #20), through the built noether
 * binary: spectrum's text output carries every figure asked for, the same numbers as --json;
 * float32, integer and Fortran-order NPY inputs give the results of their float64 C-order
 * twins, with one note on stderr for float32; a PyTorch file given to --params says how to
 * export theta; -o refuses a folder that is not an earlier run of the same spec.  Each with
 * a negative control. */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "helpers.h"

static int have_numpy(void)
{
    return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

/* runs `/usr/bin/python3 -c CODE` in dir (CODE without double quotes) */
static void python_in(const char *dir, const char *code)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd %s && /usr/bin/python3 -c \"%s\"", dir, code);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static char *run_ok(const char *args, char **err)
{
    char *out;
    int rc = run_noether(args, &out, err);
    cr_assert_eq(rc, 0, "noether %s: exit %d: %s", args, rc, err ? *err : "");
    return out;
}

/* the number after `label` in text, or NAN */
static double number_after(const char *text, const char *label)
{
    const char *p = strstr(text, label);
    return p ? strtod(p + strlen(label), NULL) : NAN;
}

/* ------------------------------------------------------------------ spectrum's text output */

/* Every requested figure is in the text output, equal (at the printed precision) to the JSON's;
 * control: without the flags none of those lines is printed. */
Test(usability, spectrum_text_prints_every_requested_figure)
{
    char dir[256], spec[NT_PATH_MAX], args[2 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    tiny_spec(spec, 10, 0, 10, "");
    const char *flags = "--density --trace --deflate --top 3 --bottom 3 --method dense";
    snprintf(args, sizeof args, "spectrum %s %s", spec, flags);
    char *text = run_ok(args, NULL);
    snprintf(args, sizeof args, "spectrum %s %s --json", spec, flags);
    char *js = run_ok(args, NULL);
    cJSON *doc = cJSON_Parse(js);
    cr_assert_not_null(doc, "not JSON: %s", js);
    const cJSON *tr = cJSON_GetObjectItem(doc, "trace"), *de = cJSON_GetObjectItem(doc, "density"),
                *df = cJSON_GetObjectItem(doc, "deflated");
    struct { const char *label; double json; } want[] = {
        {"at gamma: ", json_num(doc, "eigenvalues_at_gamma")},
        {"deflate: ", json_num(df, "removed_dimensions")},
        {"trace:   ", json_num(tr, "hutchinson")},
        {"(Hutchinson, ", json_num(tr, "probes")},
        {"; exact ", json_num(tr, "exact")},
        {"density: ", json_num(de, "probes")},
        {"tr(H^1)/n = ", json_num(de, "moment1")},
        {"tr(H^2)/n = ", json_num(de, "moment2")},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        double shown = number_after(text, want[i].label);
        cr_assert(isfinite(shown), "no '%s' in:\n%s", want[i].label, text);
        cr_assert_leq(fabs(shown - want[i].json), 1e-5 * fabs(want[i].json), "'%s' %.17g, JSON %.17g", want[i].label,
                      shown, want[i].json);
    }
    /* the removed rank is the orbit rank: a real figure, not a zero */
    cr_assert_gt(json_num(df, "removed_dimensions"), 0);
    cJSON_Delete(doc);
    free(js);
    free(text);
    /* control: no flag, no line */
    snprintf(args, sizeof args, "spectrum %s --top 3 --bottom 3 --method lanczos", spec);
    text = run_ok(args, NULL);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_null(strstr(text, want[i].label), "'%s' printed without its flag:\n%s", want[i].label, text);
    free(text);
}

/* spectrum --json names the operator's size "dim" (a block's size, or d); "n" is grad's
 * sample count.  Control: without --block, dim = d. */
Test(usability, spectrum_dim_is_the_operator_size)
{
    char *js = run_ok("spectrum --block 2.bias --top 2 --bottom 2 --json", NULL);
    cJSON *doc = cJSON_Parse(js);
    cr_assert_eq(json_num(doc, "dim"), 16);
    cr_assert_null(cJSON_GetObjectItem(doc, "n"), "spectrum --json still has \"n\"");
    const double d = json_num(doc, "d");
    cJSON_Delete(doc);
    free(js);
    js = run_ok("spectrum --top 2 --bottom 2 --json", NULL);
    doc = cJSON_Parse(js);
    cr_assert_eq(json_num(doc, "dim"), d);
    cr_assert_gt(d, 16);
    cJSON_Delete(doc);
    free(js);
    js = run_ok("grad --json", NULL);
    doc = cJSON_Parse(js);
    cr_assert_neq(json_num(doc, "n"), d, "grad's n is the sample count");
    cJSON_Delete(doc);
    free(js);
}

/* ------------------------------------------------------------------ NPY inputs */

/* theta in float32 gives exactly the results of the same values in float64 (loss bit for bit,
 * the gradient file byte for byte), with one note naming the file on stderr; control: the
 * float64 file prints nothing on stderr; the float32 values differ from the float64 draw they
 * were rounded from, so the loss there is different. */
Test(usability, float32_params_are_exact_for_the_values_given)
{
    if (!have_numpy()) cr_skip_test("/usr/bin/python3 cannot import numpy");
    char dir[256], args[4 * NT_PATH_MAX];
    tmpdir_new(dir);
    python_in(dir, "import numpy as np; t = np.random.default_rng(0).normal(size=547) * 0.3; "
                   "np.save('t32.npy', t.astype(np.float32)); "
                   "np.save('t64.npy', t.astype(np.float32).astype(np.float64)); np.save('raw.npy', t)");
    char *err32, *err64, *errraw;
    snprintf(args, sizeof args, "grad --params %s/t32.npy --out %s/g32.npy --json", dir, dir);
    char *a = run_ok(args, &err32);
    snprintf(args, sizeof args, "grad --params %s/t64.npy --out %s/g64.npy --json", dir, dir);
    char *b = run_ok(args, &err64);
    snprintf(args, sizeof args, "grad --params %s/raw.npy --json", dir);
    char *c = run_ok(args, &errraw);
    cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(b), *jc = cJSON_Parse(c);
    cr_assert_eq(json_num(ja, "loss"), json_num(jb, "loss"));
    cr_assert_neq(json_num(ja, "loss"), json_num(jc, "loss"), "control: the float64 draw gives the same loss");
    char g32[NT_PATH_MAX], g64[NT_PATH_MAX];
    path_join(g32, dir, "g32.npy");
    path_join(g64, dir, "g64.npy");
    cr_assert(same_file(g32, g64), "the gradients differ");
    cr_assert_not_null(strstr(err32, "t32.npy (<f4)"), "no note naming the file: '%s'", err32);
    cr_assert_not_null(strstr(err32, "float32"), "'%s'", err32);
    cr_assert(strchr(err32, '\n') == err32 + strlen(err32) - 1, "the note is not one line: '%s'", err32);
    cr_assert_str_empty(err64, "float64 input printed: '%s'", err64);
    cr_assert_str_empty(errraw, "float64 input printed: '%s'", errraw);
    cJSON_Delete(ja), cJSON_Delete(jb), cJSON_Delete(jc);
    free(a), free(b), free(c), free(err32), free(err64), free(errraw);
}

/* Data as float32 features with uint8 or int32 labels, and hvp vectors in Fortran order, give
 * the results of their float64 / int64 C-order twins exactly; control: complex labels are
 * refused naming the dtype. */
Test(usability, integer_labels_and_fortran_order)
{
    if (!have_numpy()) cr_skip_test("/usr/bin/python3 cannot import numpy");
    char dir[256], args[4 * NT_PATH_MAX], p[NT_PATH_MAX];
    tmpdir_new(dir);
    python_in(dir, "import numpy as np; r = np.random.default_rng(1); x = r.normal(size=(40, 4)).astype(np.float32); "
                   "y = r.integers(0, 3, size=40); np.save('x32.npy', x); np.save('x64.npy', x.astype(np.float64)); "
                   "np.save('yu8.npy', y.astype(np.uint8)); np.save('yi32.npy', y.astype(np.int32)); "
                   "np.save('yi64.npy', y.astype(np.int64)); np.save('yc.npy', y.astype(np.complex64)); "
                   "V = r.normal(size=(3, 43)); np.save('VC.npy', V); np.save('VF.npy', np.asfortranarray(V))");
    const char *variants[][2] = {{"x64", "yi64"}, {"x32", "yu8"}, {"x32", "yi32"}};
    double loss[3], hv[3][3];
    for (int v = 0; v < 3; v++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 5}, {\"act\": \"tanh\"}, {\"dense\": 3}],"
                 " \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"npy\", \"x\": \"%s.npy\", \"y\": \"%s.npy\"}}",
                 variants[v][0], variants[v][1]);
        snprintf(p, sizeof p, "%s/spec%d.json", dir, v);
        write_text(p, text);
        snprintf(args, sizeof args, "hvp %s --vectors %s/%s.npy --json", p, dir, v == 2 ? "VF" : "VC");
        char *err, *out = run_ok(args, &err);
        cJSON *doc = cJSON_Parse(out);
        loss[v] = json_num(doc, "loss");
        const cJSON *n = cJSON_GetObjectItem(doc, "hv_norm");
        for (int k = 0; k < 3; k++) hv[v][k] = cJSON_GetArrayItem(n, k)->valuedouble;
        cr_assert_eq(!!strstr(err, "x32.npy (<f4)"), v > 0, "the float32 note: '%s'", err);
        cJSON_Delete(doc);
        free(out), free(err);
    }
    for (int v = 1; v < 3; v++) {
        cr_assert_eq(loss[v], loss[0], "%s/%s", variants[v][0], variants[v][1]);
        for (int k = 0; k < 3; k++) cr_assert_eq(hv[v][k], hv[0][k], "vector %d of %s", k, v == 2 ? "VF" : "VC");
    }
    write_text(p, "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 3}], \"loss\": \"cross_entropy\"},"
                  " \"data\": {\"source\": \"npy\", \"x\": \"x64.npy\", \"y\": \"yc.npy\"}}");
    snprintf(args, sizeof args, "grad %s", p);
    expect_refused(args, "yc.npy", "'<c8' holds complex");
}

/* A PyTorch file (a zip archive, or a legacy pickle) given to --params says how to export
 * theta; control: the exported .npy is accepted. */
Test(usability, pytorch_file_says_how_to_export)
{
    char dir[256], p[NT_PATH_MAX], args[2 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(p, dir, "model.pt");
    write_text(p, "PK\x03\x04 archive/data.pkl");
    snprintf(args, sizeof args, "grad --params %s", p);
    expect_refused(args, "model.pt", "python3 -m noether export");
    expect_refused(args, "model.pt", "parameters_to_vector(model.parameters()).detach().double().numpy()");
    path_join(p, dir, "legacy.pt");
    write_text(p, "\x80\x02\x8a\x0alegacy");
    snprintf(args, sizeof args, "grad --params %s", p);
    expect_refused(args, "legacy.pt", "python3 -m noether export");
    /* control: theta written as .npy is read */
    path_join(p, dir, "theta.npy");
    double *theta = calloc(547, sizeof *theta);
    nt_error err;
    cr_assert_eq(nt_npy_write(p, theta, 1, (int64_t[]){547}, &err), NT_OK, "%s", err.msg);
    free(theta);
    snprintf(args, sizeof args, "grad --params %s --json", p);
    free(run_ok(args, NULL));
}

/* ------------------------------------------------------------------ the output folder */

/* -o onto a folder that holds someone else's files is refused, naming the folder and --force,
 * and nothing in it is touched; --force writes into it; an earlier run of the same spec is
 * overwritten without --force; one of another spec is refused. */
Test(usability, output_folder_of_something_else_is_refused)
{
    char dir[256], spec[NT_PATH_MAX], spec2[NT_PATH_MAX], out[NT_PATH_MAX], mine[NT_PATH_MAX], args[4 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    path_join(spec2, dir, "spec2.json");
    tiny_spec(spec, 20, 0, 10, "");
    tiny_spec(spec2, 30, 0, 10, "");
    path_join(out, dir, "thesis");
    cr_assert_eq(mkdir(out, 0777), 0);
    path_join(mine, out, "chapter1.tex");
    write_text(mine, "my thesis\n");
    snprintf(args, sizeof args, "train %s -o %s --quiet", spec, out);
    expect_refused(args, out, "--force");
    size_t n;
    char *kept = read_file(mine, &n);
    cr_assert_str_eq(kept, "my thesis\n");
    free(kept);
    char p[NT_PATH_MAX];
    path_join(p, out, "params_init.npy");
    cr_assert_neq(access(p, F_OK), 0, "a refused folder was written into");
    path_join(p, out, ".lock");
    cr_assert_neq(access(p, F_OK), 0, "a refused folder kept a lock file");
    /* control: --force writes into it (and keeps the user's file) */
    snprintf(args, sizeof args, "train %s -o %s --quiet --force", spec, out);
    expect_rc(args, 0, NULL);
    path_join(p, out, "params_init.npy");
    cr_assert_eq(access(p, F_OK), 0);
    /* an earlier run of the same spec: rerun without --force */
    char empty[NT_PATH_MAX];
    path_join(empty, dir, "fresh");
    snprintf(args, sizeof args, "train %s -o %s --quiet", spec, empty);
    expect_rc(args, 0, NULL);
    expect_rc(args, 0, NULL);
    /* ... of another spec: refused */
    snprintf(args, sizeof args, "train %s -o %s --quiet", spec2, empty);
    expect_refused(args, empty, "another spec");
}

/* ------------------------------------------------------------------ names */

/* layer=i in a generator name is the model.layers index: each rescale[layer=i,...] moves the
 * rows of the tensor i.weight (as many units as it has rows), translation[layer=i] the last
 * dense layer's; --block takes the same i (all the layer's tensors) beside a tensor name.
 * Controls: the old ordinal (layer=1 for the first hidden layer) names nothing; --block of a
 * layer without parameters is refused. */
Test(usability, layer_in_names_is_the_model_layers_index)
{
    char *js = run_ok("info --json", NULL), *sy = run_ok("symmetries --json", NULL);
    cJSON *info = cJSON_Parse(js), *sym = cJSON_Parse(sy);
    const cJSON *t, *layout = cJSON_GetObjectItem(info, "layout");
    int rescales = 0, translations = 0;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(sym, "transformations")) {
        const char *name = cJSON_GetObjectItem(t, "name")->valuestring;
        int layer, unit;
        char tensor[32];
        if (sscanf(name, "rescale[layer=%d,unit=%d]", &layer, &unit) == 2 ||
            sscanf(name, "translation[layer=%d]", &layer) == 1) {
            snprintf(tensor, sizeof tensor, "%d.weight", layer);
            const cJSON *L, *hit = NULL;
            cJSON_ArrayForEach(L, layout) if (!strcmp(cJSON_GetObjectItem(L, "name")->valuestring, tensor)) hit = L;
            cr_assert_not_null(hit, "%s: no tensor %s", name, tensor);
            const double rows = cJSON_GetArrayItem(cJSON_GetObjectItem(hit, "shape"), 0)->valuedouble;
            if (name[0] == 'r') {
                cr_assert_lt(unit, rows, "%s: %s has %.0f rows", name, tensor, rows);
                rescales++;
            } else {
                cr_assert_eq(rows, json_num(info, "output"), "%s: %s is not the head", name, tensor);
                translations++;
            }
        }
        cr_assert_null(strstr(name, "[layer=1,"), "%s: model.layers[1] is an activation", name);
    }
    cr_assert_eq(rescales, 32);
    cr_assert_eq(translations, 1);
    /* --block 2 = --block layer=2 = 2.weight and 2.bias together */
    char *a = run_ok("spectrum --block 2 --top 2 --bottom 0 --json", NULL), *b = run_ok("spectrum --block layer=2 --top 2 --bottom 0 --json", NULL);
    cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(b);
    cr_assert_eq(json_num(ja, "dim"), json_num(jb, "dim"));
    double layer2 = 0;   /* the sizes of 2.weight and 2.bias in noether info's layout */
    cJSON_ArrayForEach(t, layout)
        if (!strncmp(cJSON_GetObjectItem(t, "name")->valuestring, "2.", 2)) {
            double size = 1;
            const cJSON *x;
            cJSON_ArrayForEach(x, cJSON_GetObjectItem(t, "shape")) size *= x->valuedouble;
            layer2 += size;
        }
    cr_assert_eq(json_num(ja, "dim"), layer2, "layer 2: W and b");
    cr_assert_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(ja, "top"), 0)->valuedouble,
                 cJSON_GetArrayItem(cJSON_GetObjectItem(jb, "top"), 0)->valuedouble);
    expect_refused("spectrum --block 1", "--block", "'1'");
    expect_refused("spectrum --block layer=9", "--block", "layer=9");
    cJSON_Delete(ja), cJSON_Delete(jb), cJSON_Delete(info), cJSON_Delete(sym);
    free(a), free(b), free(js), free(sy);
}

/* ------------------------------------------------------------------ progress */

/* NOETHER_PROGRESS=0 (every report printed, no delay: no timing in the test): each phase of
 * spectrum on stderr with its count against its total, the dense products counted to d in
 * blocks, each phase closed with its time; stdout unchanged.  Control: NOETHER_PROGRESS=off
 * prints nothing on stderr. */
Test(usability, progress_of_every_phase_on_stderr)
{
    const char *args = "spectrum --density --trace --sectors --top 2 --bottom 2 --method dense";
    cr_assert_eq(setenv("NOETHER_PROGRESS", "0", 1), 0);
    char *err, *out = run_ok(args, &err);
    /* the totals as the JSON document of the same call states them: dim products, the trace's
     * probes, the density's probes x steps, one unit per sector (no mirrors under relu) */
    char json_args[256];
    snprintf(json_args, sizeof json_args, "%s --json", args);
    char *js = run_ok(json_args, NULL);
    cJSON *doc = cJSON_Parse(js);
    const cJSON *de = cJSON_GetObjectItem(doc, "density");
    const long dim = (long)json_num(doc, "dim"), probes = (long)json_num(cJSON_GetObjectItem(doc, "trace"), "probes"),
               slq = (long)(json_num(de, "probes") * json_num(de, "steps")),
               sectors = cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "predictions"), "sectors"));
    char phases[5][128];
    snprintf(phases[0], 128, "dense Hessian (products with unit vectors)  %ld/%ld  done in", dim, dim);
    snprintf(phases[1], 128, "trace (Hutchinson probes)  %ld/%ld  done in", probes, probes);
    snprintf(phases[2], 128, "spectral density (SLQ products)  %ld/%ld  done in", slq, slq);
    snprintf(phases[3], 128, "S_n sectors and mirror margins (layers and mirrors)  %ld/%ld  done in", sectors, sectors);
    snprintf(phases[4], 128, "the symmetry predictions (flat, sharp)  1/1  done in");
    for (size_t i = 0; i < 5; i++)
        cr_assert_not_null(strstr(err, phases[i]), "no '%s' in:\n%.2000s", phases[i], err);
    char partial[128];   /* a count on the way: the first block of 16 products (the engine's block) */
    snprintf(partial, sizeof partial, "dense Hessian (products with unit vectors)  16/%ld  ", dim);
    cr_assert_not_null(strstr(err, partial), "no intermediate count");
    cr_assert_gt(sectors, 0);
    cJSON_Delete(doc);
    free(js);
    cr_assert_not_null(strstr(err, " s left"), "no time left");
    /* check counts the generators (as many as check --json lists), hessian the products (d) */
    char *cerr, args2[NT_PATH_MAX + 64], dir[256], want[160];
    char *cj = run_ok("check --json", &cerr);
    cJSON *cdoc = cJSON_Parse(cj);
    const int count = cJSON_GetArraySize(cJSON_GetObjectItem(cdoc, "transformations")), d = (int)json_num(cdoc, "d");
    snprintf(want, sizeof want, "noether check: identities (generators checked)  %d/%d  done in", count, count);
    cr_assert_not_null(strstr(cerr, want), "no '%s' in %.2000s", want, cerr);
    cJSON_Delete(cdoc);
    free(cj), free(cerr);
    tmpdir_new(dir);
    snprintf(args2, sizeof args2, "hessian --out %s/H.npy", dir);
    free(run_ok(args2, &cerr));
    snprintf(want, sizeof want, "noether hessian: dense Hessian (products with unit vectors)  %d/%d  done in", d, d);
    cr_assert_not_null(strstr(cerr, want), "no '%s' in %.2000s", want, cerr);
    free(cerr);
    cr_assert_eq(setenv("NOETHER_PROGRESS", "off", 1), 0);
    char *off, *out2 = run_ok(args, &off);
    unsetenv("NOETHER_PROGRESS");
    cr_assert_str_empty(off, "NOETHER_PROGRESS=off printed: %s", off);
    /* stdout the same but for the first line's seconds */
    cr_assert_str_eq(strchr(out, '\n'), strchr(out2, '\n'), "progress changed stdout");
    free(err), free(out), free(off), free(out2);
}

/* the library's side: nt_spectrum_analyse reports every phase through nt_progress, each
 * count non-decreasing to its total, the dense products to n = d; with the hook the results
 * are bitwise those without it.  Control: without --trace and --density their phases are not
 * reported. */
typedef struct { char phase[8][96]; int64_t last[8], total[8]; int n, monotone; } progress_record;

static void record(void *ctx, const char *phase, int64_t done, int64_t total)
{
    progress_record *r = ctx;
    int i = 0;
    while (i < r->n && strcmp(r->phase[i], phase)) i++;
    if (i == r->n && r->n < 8) snprintf(r->phase[r->n++], sizeof r->phase[0], "%s", phase), r->last[i] = -1;
    if (i == 8) return;
    r->monotone &= done >= r->last[i];
    r->last[i] = done;
    r->total[i] = total;
}

Test(usability, library_progress_reports_each_phase)
{
    model_fixture f;
    mf_new(&f, 4, 2, (const int[]){6, 5}, NT_ACT_TANH, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.01, 40, 16, 4, 7);
    progress_record rec = {.monotone = 1};
    nt_spectrum_opts o = {.top = 3, .bottom = 3, .method = NT_METHOD_DENSE, .trace = 1, .density = 1, .sectors = 1,
                          .progress = {record, &rec}};
    nt_spectrum a, b;
    nt_error err;
    cr_assert_eq(nt_spectrum_analyse(f.e, &f.m, &f.ds, f.list, f.n, f.theta, &o, &a, &err), NT_OK, "%s", err.msg);
    o.progress.fn = NULL;
    cr_assert_eq(nt_spectrum_analyse(f.e, &f.m, &f.ds, f.list, f.n, f.theta, &o, &b, &err), NT_OK, "%s", err.msg);
    for (int i = 0; i < 3; i++) cr_assert_eq(a.top_values[i], b.top_values[i]);
    cr_assert_eq(a.trace, b.trace);
    cr_assert(rec.monotone, "a count went down");
    cr_assert_geq(rec.n, 5, "%d phases", rec.n);
    int dense = 0;
    for (int i = 0; i < rec.n; i++) {
        cr_assert_eq(rec.last[i], rec.total[i], "%s: ended at %lld of %lld", rec.phase[i], (long long)rec.last[i],
                     (long long)rec.total[i]);
        if (strstr(rec.phase[i], "dense Hessian")) {
            dense = 1;
            cr_assert_eq(rec.total[i], f.m.d);
        }
    }
    cr_assert(dense, "no dense products reported");
    /* control: what is not asked for is not reported (no trace, no density phase) */
    progress_record only = {.monotone = 1};
    o.trace = o.density = 0;
    o.progress = (nt_progress){record, &only};
    nt_spectrum c;
    cr_assert_eq(nt_spectrum_analyse(f.e, &f.m, &f.ds, f.list, f.n, f.theta, &o, &c, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(only.n, rec.n - 2, "%d phases without trace and density, %d with", only.n, rec.n);
    for (int i = 0; i < only.n; i++) cr_assert(!strstr(only.phase[i], "trace") && !strstr(only.phase[i], "density"));
    nt_spectrum_free(&c);
    nt_spectrum_free(&a);
    nt_spectrum_free(&b);
    mf_free(&f);
}
