/* test_cli.c: the noether command run as a real process (through /bin/sh): usage and help,
 * every kind of bad input (exit 2, one line on stderr naming the file and the key, field
 * or row, stdout empty, nothing written), and the good paths checked against the library
 * on the same spec, data and parameters. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cJSON.h>
#include <criterion/criterion.h>
#include "helpers.h"

/* The standard fixture: input 3 -> dense 4 -> tanh -> dense 2, cross_entropy, on FX_N
 * samples of npy data.  d by hand: W1 (4 x 3), b1 (4), W2 (2 x 4), b2 (2). */
#define FX_N 12
#define FX_IN 3
#define FX_D (3 * 4 + 4 + 4 * 2 + 2)
#define STD_MODEL "{\"input\": 3, \"layers\": [{\"dense\": 4}, {\"act\": \"tanh\"}, {\"dense\": 2}], " \
                  "\"loss\": \"cross_entropy\"}"
#define STD_DATA "{\"source\": \"npy\", \"x\": \"x.npy\", \"y\": \"y.npy\"}"
/* the built-in default: 13 -> dense 16 -> relu -> dense 16 -> relu -> dense 3 */
#define DEFAULT_D (13 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3)

typedef struct {
    char dir[256];
    char spec[NT_PATH_MAX];   /* dir/spec.json */
    char out[NT_PATH_MAX];    /* dir/out.npy: the --out of a run, never created by a failing one */
} fixture;

static void fx_path(const fixture *f, const char *name, char *buf)
{
    path_join(buf, f->dir, name);
}

static void write_npy(const char *path, const double *x, int ndim, int64_t s0, int64_t s1)
{
    nt_error err = {0};
    int64_t shape[2] = {s0, s1};
    cr_assert_eq(nt_npy_write(path, x, ndim, shape, &err), NT_OK, "%s", err.msg);
}

/* An NPY file written byte by byte: header dict as given, then the raw data. */
static void write_npy_raw(const char *path, const char *dict, const void *data, size_t n)
{
    size_t len = strlen(dict), total = (10 + len + 1 + 63) / 64 * 64, hlen = total - 10;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)hlen,
                             (unsigned char)(hlen >> 8)};
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp, "cannot write %s", path);
    fwrite(pre, 1, 10, fp);
    fwrite(dict, 1, len, fp);
    for (size_t i = len; i + 1 < hlen; i++) fputc(' ', fp);
    fputc('\n', fp);
    fwrite(data, 1, n, fp);
    cr_assert_eq(fclose(fp), 0);
}

/* A temp folder with x.npy (FX_N x 3), y.npy (labels 0, 1, 0, ...) and spec.json: the
 * standard spec with `model` and `data` replaced when not NULL and `extra` (top-level
 * "key": value text) added when not NULL. */
static void fixture_new(fixture *f, const char *model, const char *data, const char *extra)
{
    tmpdir_new(f->dir);
    fx_path(f, "spec.json", f->spec);
    fx_path(f, "out.npy", f->out);
    char p[NT_PATH_MAX], text[4096];
    double x[FX_N * FX_IN], y[FX_N];
    fill_normal(x, FX_N * FX_IN, 1.0, 41);
    for (int i = 0; i < FX_N; i++) y[i] = i % 2;
    fx_path(f, "x.npy", p);
    write_npy(p, x, 2, FX_N, FX_IN);
    fx_path(f, "y.npy", p);
    write_npy(p, y, 1, FX_N, 0);
    snprintf(text, sizeof text,
             "{\n  \"model\": %s,\n  \"data\": %s,\n  \"init\": {\"seed\": 5, \"scheme\": \"xavier\"},\n"
             "  \"weight_decay\": 0.001%s%s\n}\n",
             model ? model : STD_MODEL, data ? data : STD_DATA, extra ? ",\n  " : "", extra ? extra : "");
    write_text(f->spec, text);
}

/* n seeded values as a (n,) NPY file dir/name; the path into buf. */
static void write_vec(const fixture *f, const char *name, int64_t n, uint64_t stream, char *buf)
{
    double *v = malloc(sizeof(double) * (size_t)n);
    fill_normal(v, n, 0.7, stream);
    fx_path(f, name, buf);
    write_npy(buf, v, 1, n, 0);
    free(v);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot list %s", dir);
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static int vrun(char **out, char **err, const char *fmt, va_list ap)
{
    char args[8192];
    vsnprintf(args, sizeof args, fmt, ap);
    return run_noether(args, out, err);
}

/* Runs noether ARGS; asserts exit 0 and an empty stderr; returns stdout (malloc'd). */
static char *run_ok(const char *fmt, ...)
{
    char *out, *err;
    va_list ap;
    va_start(ap, fmt);
    int rc = vrun(&out, &err, fmt, ap);
    va_end(ap);
    cr_assert_eq(rc, 0, "exit %d, want 0; stderr: %s", rc, err);
    cr_assert_str_empty(err, "stderr not empty on success: %s", err);
    free(err);
    return out;
}

/* Runs noether ARGS in fixture f; asserts exit 2, stdout empty, exactly one line on stderr
 * that contains `a` and `b`, no f->out and nothing else new in f's folder. */
static void expect_bad(const fixture *f, const char *a, const char *b, const char *fmt, ...)
{
    int before = count_entries(f->dir);
    char *out, *err;
    va_list ap;
    va_start(ap, fmt);
    int rc = vrun(&out, &err, fmt, ap);
    va_end(ap);
    cr_assert_eq(rc, 2, "exit %d, want 2; stderr: %s", rc, err);
    cr_assert_str_empty(out, "stdout not empty on bad input: %s", out);
    size_t len = strlen(err);
    cr_assert(len > 1 && err[len - 1] == '\n' && strchr(err, '\n') == err + len - 1,
              "stderr is not exactly one line: '%s'", err);
    cr_assert_not_null(strstr(err, a), "stderr '%s' does not name '%s'", err, a);
    cr_assert_not_null(strstr(err, b), "stderr '%s' does not name '%s'", err, b);
    cr_assert_neq(access(f->out, F_OK), 0, "%s was created by a failing run", f->out);
    cr_assert_eq(count_entries(f->dir), before, "a failing run left files in %s", f->dir);
    free(out);
    free(err);
}

static cJSON *parse_json(const char *text)
{
    cJSON *doc = cJSON_Parse(text);
    cr_assert_not_null(doc, "not valid JSON: %s", text);
    return doc;
}

/* Reads an NPY the CLI wrote and asserts its shape ((s0,) when ndim is 1). */
static void read_npy(const char *path, nt_array *a, int ndim, int64_t s0, int64_t s1)
{
    nt_error err = {0};
    cr_assert_eq(nt_npy_read(path, a, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(a->ndim, ndim, "%s: %d dimensions, want %d", path, a->ndim, ndim);
    cr_assert_eq(a->shape[0], s0, "%s: shape[0] %lld, want %lld", path, (long long)a->shape[0], (long long)s0);
    if (ndim == 2)
        cr_assert_eq(a->shape[1], s1, "%s: shape[1] %lld, want %lld", path, (long long)a->shape[1], (long long)s1);
}

/* Element by element: |got_i - want_i| <= tol |want_i| (the CLI and the library run the same
 * code on the same inputs, so the tolerance only allows for the last bit). */
static void assert_rel(int64_t n, const double *got, const double *want, double tol, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= tol * fabs(want[i]), "%s[%lld]: %.17g, want %.17g", what,
                  (long long)i, got[i], want[i]);
}

/* The library's view of the fixture: spec, data, theta from params and an engine sized as
 * the CLI sizes it (chunk min(n, 1024), k tangents), so results agree to the last bits. */
typedef struct {
    nt_spec spec;
    nt_data data;
    double theta[FX_D];
    nt_engine *e;
} ref;

static void ref_load(ref *r, const fixture *f, const char *params, int k)
{
    nt_error err = {0};
    cr_assert_eq(nt_spec_load(f->spec, &r->spec, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&r->spec, &r->data, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(r->spec.model.d, FX_D);
    cr_assert_eq(nt_params_read(params, &r->spec.model, r->theta, &err), NT_OK, "%s", err.msg);
    r->e = nt_engine_new(&r->spec.model, r->data.train.n < 1024 ? r->data.train.n : 1024, k);
    cr_assert_not_null(r->e);
}

static void ref_free(ref *r)
{
    nt_engine_free(r->e);
    nt_data_free(&r->data);
    nt_spec_free(&r->spec);
}

/* ------------------------------------------------------------------ usage */

static const char *const subcommands[] = {"demo", "run", "info", "grad", "hvp", "hessian", "symmetries", "check", "train", "spectrum"};

Test(cli, help_lists_every_command)
{
    char *out = run_ok("--help");
    cr_assert(strncmp(out, "usage: noether ", 15) == 0, "top-level help: '%s'", out);
    for (size_t i = 0; i < sizeof subcommands / sizeof *subcommands; i++)
        cr_assert_not_null(strstr(out, subcommands[i]), "help does not list '%s'", subcommands[i]);
    free(out);
}

Test(cli, version)
{
    char *out = run_ok("--version");
    cr_assert_str_eq(out, "noether " NT_VERSION "\n");
    free(out);
}

Test(cli, help_of_every_subcommand)
{
    for (size_t i = 0; i < sizeof subcommands / sizeof *subcommands; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: noether %s", subcommands[i]);
        char *out = run_ok("%s --help", subcommands[i]);
        cr_assert(strncmp(out, want, strlen(want)) == 0, "'%s --help' prints '%.60s'", subcommands[i], out);
        free(out);
    }
}

Test(cli, unknown_command_and_option)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    expect_bad(&f, "unknown command", "frobnicate", "frobnicate %s --out %s", f.spec, f.out);
    expect_bad(&f, "unknown option", "--frobnicate", "grad %s --frobnicate --out %s", f.spec, f.out);
    expect_bad(&f, "--out", "needs a value", "grad %s --out", f.spec);
}

/* ------------------------------------------------------------------ bad spec */

Test(cli, malformed_json_names_file_and_line)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    write_text(f.spec, "{\n  \"model\": {\"input\": 3,\n    \"layers\": [{\"dense\": 4} {\"act\": \"tanh\"}],\n"
                       "    \"loss\": \"mse\"},\n  \"data\": " STD_DATA "\n}\n");
    expect_bad(&f, f.spec, "not valid JSON (line 3)", "grad %s --out %s", f.spec, f.out);
}

Test(cli, unknown_top_level_key)
{
    fixture f;
    fixture_new(&f, NULL, NULL, "\"optimiser\": \"sgd\"");
    expect_bad(&f, f.spec, "optimiser: unknown key", "grad %s --out %s", f.spec, f.out);
}

Test(cli, unknown_key_in_model)
{
    fixture f;
    fixture_new(&f, "{\"input\": 3, \"layers\": [{\"dense\": 2}], \"loss\": \"mse\", \"dropout\": 0.5}", NULL, NULL);
    expect_bad(&f, f.spec, "model.dropout", "grad %s --out %s", f.spec, f.out);
}

Test(cli, unknown_layer_kind)
{
    fixture f;
    fixture_new(&f, "{\"input\": 3, \"layers\": [{\"dense\": 4}, {\"lstm\": 3}, {\"dense\": 2}], \"loss\": \"mse\"}",
                NULL, NULL);
    expect_bad(&f, f.spec, "model.layers[1].lstm", "grad %s --out %s", f.spec, f.out);
}

Test(cli, unknown_activation)
{
    fixture f;
    fixture_new(&f, "{\"input\": 3, \"layers\": [{\"dense\": 4}, {\"act\": \"swish\"}, {\"dense\": 2}], \"loss\": \"mse\"}",
                NULL, NULL);
    expect_bad(&f, f.spec, "model.layers[1].act: 'swish'", "grad %s --out %s", f.spec, f.out);
}

Test(cli, wrong_type)
{
    fixture f;
    fixture_new(&f, "{\"input\": \"3\", \"layers\": [{\"dense\": 2}], \"loss\": \"mse\"}", NULL, NULL);
    expect_bad(&f, f.spec, "model.input: must be an integer", "grad %s --out %s", f.spec, f.out);
}

Test(cli, zero_and_negative_sizes)
{
    fixture f;
    fixture_new(&f, "{\"input\": 3, \"layers\": [{\"dense\": 0}, {\"act\": \"tanh\"}, {\"dense\": 2}], \"loss\": \"mse\"}",
                NULL, NULL);
    expect_bad(&f, f.spec, "model.layers[0].dense", "grad %s --out %s", f.spec, f.out);
    fixture g;
    fixture_new(&g, "{\"input\": 3, \"layers\": [{\"dense\": 4}, {\"act\": \"tanh\"}, {\"dense\": -2}], \"loss\": \"mse\"}",
                NULL, NULL);
    expect_bad(&g, g.spec, "model.layers[2].dense", "grad %s --out %s", g.spec, g.out);
    fixture h;
    fixture_new(&h, "{\"input\": 0, \"layers\": [{\"dense\": 2}], \"loss\": \"mse\"}", NULL, NULL);
    expect_bad(&h, h.spec, "model.input", "grad %s --out %s", h.spec, h.out);
}

/* ------------------------------------------------------------------ bad data and arrays */

Test(cli, missing_data_file)
{
    fixture f;
    fixture_new(&f, NULL, "{\"source\": \"npy\", \"x\": \"no_such_x.npy\", \"y\": \"y.npy\"}", NULL);
    char x[NT_PATH_MAX];
    fx_path(&f, "no_such_x.npy", x);
    expect_bad(&f, x, "cannot open", "grad %s --out %s", f.spec, f.out);
}

Test(cli, params_of_wrong_length)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char p[NT_PATH_MAX], want[64];
    write_vec(&f, "p.npy", FX_D - 1, 1, p);
    snprintf(want, sizeof want, "d = %d parameters", FX_D);
    expect_bad(&f, p, want, "grad %s --params %s --out %s", f.spec, p, f.out);
}

Test(cli, params_of_wrong_dtype)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char p[NT_PATH_MAX], dict[128];
    float v[FX_D] = {0};
    snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }", FX_D);
    fx_path(&f, "p32.npy", p);
    write_npy_raw(p, dict, v, sizeof v);
    expect_bad(&f, p, "'<f4'", "grad %s --params %s --out %s", f.spec, p, f.out);
}

Test(cli, csv_ragged_row)
{
    fixture f;
    fixture_new(&f, NULL, "{\"source\": \"csv\", \"path\": \"d.csv\"}", NULL);
    char csv[NT_PATH_MAX];
    fx_path(&f, "d.csv", csv);
    write_text(csv, "a,b,c,label\n0.1,0.2,0.3,0\n0.4,0.5,1\n0.7,0.8,0.9,1\n");
    expect_bad(&f, csv, "line 3 has 3 fields", "grad %s --out %s", f.spec, f.out);
}

Test(cli, csv_non_number_field)
{
    fixture f;
    fixture_new(&f, NULL, "{\"source\": \"csv\", \"path\": \"d.csv\"}", NULL);
    char csv[NT_PATH_MAX];
    fx_path(&f, "d.csv", csv);
    write_text(csv, "a,b,c,label\n0.1,0.2,0.3,0\n0.4,abc,0.6,1\n");
    expect_bad(&f, csv, "line 3 field 2 'abc'", "grad %s --out %s", f.spec, f.out);
}

Test(cli, npy_label_out_of_range)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char y[NT_PATH_MAX], dict[128];
    int64_t lab[FX_N];
    for (int i = 0; i < FX_N; i++) lab[i] = i % 2;
    lab[4] = 2;   /* K = 2: classes 0 and 1 */
    snprintf(dict, sizeof dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }", FX_N);
    fx_path(&f, "y.npy", y);
    write_npy_raw(y, dict, lab, sizeof lab);
    expect_bad(&f, y, "label 2 of sample 4", "grad %s --out %s", f.spec, f.out);
}

Test(cli, csv_label_out_of_range)
{
    fixture f;
    fixture_new(&f, "{\"input\": 3, \"layers\": [{\"dense\": 4}, {\"act\": \"relu\"}, {\"dense\": 3}], "
                    "\"loss\": \"cross_entropy\"}",
                "{\"source\": \"csv\", \"path\": \"d.csv\"}", NULL);
    char csv[NT_PATH_MAX];
    fx_path(&f, "d.csv", csv);
    write_text(csv, "a,b,c,label\n0.1,0.2,0.3,2\n0.4,0.5,0.6,5\n0.7,0.8,0.9,1\n");
    expect_bad(&f, csv, "label 5 of sample 1", "grad %s --out %s", f.spec, f.out);
}

Test(cli, nan_in_data)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char x[NT_PATH_MAX];
    double v[FX_N * FX_IN];
    fill_normal(v, FX_N * FX_IN, 1.0, 2);
    v[5] = NAN;
    fx_path(&f, "x.npy", x);
    write_npy(x, v, 2, FX_N, FX_IN);
    expect_bad(&f, x, "element 5 is nan (row 1, column 2)", "grad %s --out %s", f.spec, f.out);
}

Test(cli, hvp_vectors_of_wrong_shape)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char v[NT_PATH_MAX], want[64];
    double z[2 * (FX_D + 1)] = {0};
    snprintf(want, sizeof want, "(k, %d)", FX_D);
    fx_path(&f, "v.npy", v);
    write_npy(v, z, 2, 2, FX_D + 1);
    expect_bad(&f, v, want, "hvp %s --vectors %s --out %s", f.spec, v, f.out);
    write_npy(v, z, 1, FX_D - 1, 0);
    expect_bad(&f, v, want, "hvp %s --vectors %s --out %s", f.spec, v, f.out);
}

Test(cli, npy_truncated)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char x[NT_PATH_MAX], want[96];
    fx_path(&f, "x.npy", x);
    FILE *fp = fopen(x, "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    fp = fopen(x, "wb");
    fwrite(buf, 1, n - 20, fp);   /* the last 2.5 samples gone */
    fclose(fp);
    snprintf(want, sizeof want, "truncated: expected %d bytes of data, got %d", 8 * FX_N * FX_IN, 8 * FX_N * FX_IN - 20);
    expect_bad(&f, x, want, "grad %s --out %s", f.spec, f.out);
}

Test(cli, data_of_wrong_width)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char x[NT_PATH_MAX];
    double v[FX_N * (FX_IN + 1)];
    fill_normal(v, FX_N * (FX_IN + 1), 1.0, 2);
    fx_path(&f, "x.npy", x);
    write_npy(x, v, 2, FX_N, FX_IN + 1);
    expect_bad(&f, x, "has 4 features per sample, model.input is 3", "grad %s --out %s", f.spec, f.out);
}

Test(cli, infinity_in_data)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char x[NT_PATH_MAX];
    double v[FX_N * FX_IN];
    fill_normal(v, FX_N * FX_IN, 1.0, 2);
    v[7] = -INFINITY;
    fx_path(&f, "x.npy", x);
    write_npy(x, v, 2, FX_N, FX_IN);
    expect_bad(&f, x, "element 7 is infinite (row 2, column 1)", "grad %s --out %s", f.spec, f.out);
}

Test(cli, empty_data)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char x[NT_PATH_MAX], y[NT_PATH_MAX];
    double none[1] = {0};
    fx_path(&f, "x.npy", x);
    fx_path(&f, "y.npy", y);
    write_npy(x, none, 2, 0, FX_IN);
    write_npy(y, none, 1, 0, 0);
    expect_bad(&f, x, "no samples", "grad %s --out %s", f.spec, f.out);
    fixture g;
    fixture_new(&g, NULL, "{\"source\": \"csv\", \"path\": \"d.csv\"}", NULL);
    char csv[NT_PATH_MAX];
    fx_path(&g, "d.csv", csv);
    write_text(csv, "a,b,c,label\n");
    expect_bad(&g, csv, "no data rows", "grad %s --out %s", g.spec, g.out);
}

Test(cli, unreadable_paths)
{
    fixture f;
    fixture_new(&f, NULL, "{\"source\": \"npy\", \"x\": \"sub\", \"y\": \"y.npy\"}", NULL);
    char sub[NT_PATH_MAX], o[NT_PATH_MAX + 8];
    fx_path(&f, "sub", sub);
    cr_assert_eq(mkdir(sub, 0777), 0);
    expect_bad(&f, sub, "cannot read: Is a directory", "grad %s --out %s", f.spec, f.out);   /* data */
    expect_bad(&f, sub, "cannot read: Is a directory", "grad %s --out %s", sub, f.out);      /* spec */
    fixture g;
    fixture_new(&g, NULL, NULL, NULL);
    snprintf(o, sizeof o, "%s/run", g.spec);   /* under a regular file */
    expect_bad(&g, g.spec, "cannot create directory", "train %s -o %s --quiet", g.spec, o);
}

Test(cli, transformation_matrix_of_wrong_size)
{
    fixture f;
    fixture_new(&f, NULL, NULL, "\"transformations\": [{\"name\": \"t\", \"kind\": \"discrete\", \"matrix\": \"T.npy\"}]");
    char T[NT_PATH_MAX], want[96];
    double z[5 * 5] = {0};
    fx_path(&f, "T.npy", T);
    write_npy(T, z, 2, 5, 5);
    snprintf(want, sizeof want, "transformations[0].matrix (T) has shape (5, 5), must be (%d, %d)", FX_D, FX_D);
    expect_bad(&f, T, want, "check %s", f.spec);
}

Test(cli, hessian_refuses_over_max_memory)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char d[64], bytes[64];
    snprintf(d, sizeof d, "d = %d", FX_D);
    snprintf(bytes, sizeof bytes, "%d bytes", 8 * FX_D * FX_D);
    expect_bad(&f, d, bytes, "hessian %s --max-memory 0.000001 --out %s", f.spec, f.out);
    expect_bad(&f, "--max-memory", "'-1'", "hessian %s --max-memory -1 --out %s", f.spec, f.out);
}

/* ------------------------------------------------------------------ good paths */

Test(cli, info_json_d_and_layout)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char *out = run_ok("info %s --json", f.spec);
    cJSON *doc = parse_json(out);
    cr_assert_eq(json_num(doc, "d"), FX_D);
    const cJSON *layout = cJSON_GetObjectItemCaseSensitive(doc, "layout");
    cr_assert(cJSON_IsArray(layout) && cJSON_GetArraySize(layout) == 4, "layout is not an array of 4");
    static const char *const names[4] = {"0.weight", "0.bias", "2.weight", "2.bias"};
    static const int offsets[4] = {0, 12, 16, 24}, shapes[4][2] = {{4, 3}, {4, 0}, {2, 4}, {2, 0}};
    for (int t = 0; t < 4; t++) {
        const cJSON *o = cJSON_GetArrayItem(layout, t);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
        cr_assert(cJSON_IsString(name) && strcmp(name->valuestring, names[t]) == 0, "tensor %d name", t);
        cr_assert_eq(json_num(o, "offset"), offsets[t], "tensor %d offset", t);
        cr_assert_eq(cJSON_GetArraySize(shape), shapes[t][1] ? 2 : 1, "tensor %d ndim", t);
        for (int a = 0; a < cJSON_GetArraySize(shape); a++)
            cr_assert_eq(cJSON_GetArrayItem(shape, a)->valuedouble, shapes[t][a], "tensor %d shape[%d]", t, a);
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    cr_assert_eq(json_num(data, "train"), FX_N);
    cr_assert_eq(json_num(data, "features"), FX_IN);
    cJSON_Delete(doc);
    free(out);
}

Test(cli, grad_matches_library)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char p[NT_PATH_MAX];
    write_vec(&f, "p.npy", FX_D, 3, p);
    int before = count_entries(f.dir);
    char *out = run_ok("grad %s --params %s --out %s --json", f.spec, p, f.out);
    cr_assert_eq(count_entries(f.dir), before + 1, "grad left more than %s in %s", f.out, f.dir);
    cJSON *doc = parse_json(out);
    nt_array G;
    read_npy(f.out, &G, 1, FX_D, 0);
    ref r;
    ref_load(&r, &f, p, 1);
    double g[FX_D];
    double loss = t_grad(r.e, r.theta, &r.data.train, g);
    assert_rel(FX_D, G.data, g, 1e-15, "gradient");
    cr_assert_eq(json_num(doc, "d"), FX_D);
    double jl = json_num(doc, "loss");
    cr_assert(fabs(jl - loss) <= 1e-15 * fabs(loss), "JSON loss %.17g, library %.17g", jl, loss);
    ref_free(&r);
    nt_array_free(&G);
    cJSON_Delete(doc);
    free(out);
}

/* hvp with V of k rows ((k, d)), or one vector (d,) when k == 0; compared to nt_hvp. */
static void check_hvp(int k)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    const int rows = k ? k : 1;
    char p[NT_PATH_MAX], v[NT_PATH_MAX];
    write_vec(&f, "p.npy", FX_D, 3, p);
    double V[4 * FX_D], HV[4 * FX_D];
    fill_normal(V, rows * FX_D, 1.0, 9);
    fx_path(&f, "v.npy", v);
    write_npy(v, V, k ? 2 : 1, k ? k : FX_D, FX_D);
    free(run_ok("hvp %s --params %s --vectors %s --out %s", f.spec, p, v, f.out));
    nt_array A;
    read_npy(f.out, &A, k ? 2 : 1, k ? k : FX_D, FX_D);
    ref r;
    ref_load(&r, &f, p, rows);
    t_hvp(r.e, r.theta, &r.data.train, rows, V, HV, NULL);
    assert_rel(rows * FX_D, A.data, HV, 1e-15, "Hessian-vector products");
    ref_free(&r);
    nt_array_free(&A);
}

Test(cli, hvp_block_matches_library) { check_hvp(3); }
Test(cli, hvp_single_vector_keeps_shape) { check_hvp(0); }

Test(cli, hessian_matches_library)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char p[NT_PATH_MAX];
    write_vec(&f, "p.npy", FX_D, 3, p);
    char *out = run_ok("hessian %s --params %s --out %s", f.spec, p, f.out);
    cr_assert_not_null(strstr(out, f.out), "stdout does not name the output: %s", out);
    nt_array H;
    read_npy(f.out, &H, 2, FX_D, FX_D);
    ref r;
    ref_load(&r, &f, p, FX_D < 32 ? FX_D : 32);
    double *want = malloc(sizeof(double) * FX_D * FX_D);
    t_hessian(r.e, r.theta, &r.data.train, want);
    assert_rel(FX_D * FX_D, H.data, want, 1e-15, "Hessian");
    free(want);
    ref_free(&r);
    nt_array_free(&H);
    free(out);
}

Test(cli, info_without_spec_is_the_builtin_default)
{
    char *out = run_ok("info");
    char want[64];
    snprintf(want, sizeof want, "d = %d", DEFAULT_D);
    cr_assert_not_null(strstr(out, "builtin:wine"), "info does not mention builtin:wine: %s", out);
    cr_assert_not_null(strstr(out, want), "info does not say '%s': %s", want, out);
    free(out);
}

/* ------------------------------------------------------------------ paths */

Test(cli, data_paths_relative_to_the_spec_folder)
{
    fixture f;
    fixture_new(&f, NULL, NULL, NULL);
    char p[NT_PATH_MAX], parent[NT_PATH_MAX];
    write_vec(&f, "p.npy", FX_D, 3, p);
    /* the reference: run from the spec's own folder (each test is its own process) */
    cr_assert_eq(chdir(f.dir), 0);
    char *here = run_ok("grad %s --params %s --json", f.spec, p);
    /* from /, the spec by its absolute path: x.npy and y.npy are found next to the spec */
    cr_assert_eq(chdir("/"), 0);
    char *root = run_ok("grad %s --params %s --json", f.spec, p);
    cJSON *a = parse_json(here), *b = parse_json(root);
    cr_assert_eq(json_num(b, "n"), FX_N);
    cr_assert_eq(json_num(a, "loss"), json_num(b, "loss"), "loss differs when run from /");
    /* from the folder's parent, the spec by a relative path */
    snprintf(parent, sizeof parent, "%s", f.dir);
    char *base = strrchr(parent, '/');
    *base++ = 0;
    cr_assert_eq(chdir(parent), 0);
    char *rel = run_ok("grad %s/spec.json --params %s --json", base, p);
    cJSON *c = parse_json(rel);
    cr_assert_eq(json_num(a, "loss"), json_num(c, "loss"), "loss differs with a relative spec path");
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    free(here);
    free(root);
    free(rel);
}
