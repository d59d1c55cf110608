/* test_resume.c: interruption and resume of noether train, the built binary as a process.
 * An uninterrupted run against the same run killed (SIGTERM or SIGINT) mid-run and resumed
 * with --resume: params_final.npy byte for byte, ledger.csv byte for byte in every column
 * but `seconds` (wall time), for sgd, momentum and adam (the optimizers with state).  The
 * kill lands mid-run: the checkpoint's step is checked to lie strictly inside the run.
 * Negative controls: a changed spec is refused (exit 2 naming the checkpoint and record);
 * a checkpoint with theta moved by one ulp, with one ledger accumulator changed, or with
 * the optimizer's state changed resumes into outputs that differ, so the comparisons can
 * fail. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include "helpers.h"

#define STEPS 10000
#define EVERY 200   /* train.checkpoint_every */

/* A ReLU/tanh MLP on teacher data with a held-out split and weight decay: rescalings,
 * translations, sign flips (distance columns) and the homogeneous-free ledger all present. */
static void write_spec(const char *path, const char *optimizer, double lr)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\n  \"model\": {\"input\": 6, \"layers\": [{\"dense\": 24}, {\"act\": \"tanh\"}, {\"dense\": 24},"
             " {\"act\": \"relu\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"},\n"
             "  \"data\": {\"source\": \"teacher\", \"n\": 200, \"seed\": 3, \"hidden\": [8], \"activation\": \"tanh\","
             " \"test_fraction\": 0.25},\n"
             "  \"init\": {\"seed\": 1, \"scheme\": \"he\", \"bias_std\": 0.1},\n  \"weight_decay\": 0.001,\n"
             "  \"train\": {\"optimizer\": \"%s\", \"lr\": %g, \"steps\": %d, \"batch\": 16, \"seed\": 2,"
             " \"log_every\": 100, \"checkpoint_every\": %d}\n}\n",
             optimizer, lr, STEPS, EVERY);
    write_text(path, text);
}

static int64_t checkpoint_step(const char *path)
{
    nt_checkpoint *c;
    nt_error err = {0};
    int64_t step;
    cr_assert_eq(nt_checkpoint_read(path, &c, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_checkpoint_get_i64(c, "train.step", 1, &step, &err), NT_OK, "%s", err.msg);
    nt_checkpoint_free(c);
    return step;
}

/* Runs `cmd spec -o dir`, waits for its first checkpoint, sends sig, expects exit
 * 128 + sig with the resume line on stderr; returns the checkpoint's step. */
static int64_t interrupt_cmd(const char *cmd, const char *spec, const char *dir, int sig)
{
    char ckpt[NT_PATH_MAX], errp[NT_PATH_MAX];
    path_join(ckpt, dir, "checkpoint.bin");
    snprintf(errp, sizeof errp, "%s.stderr", dir);
    const char *argv[] = {cmd, spec, "-o", dir, "--quiet", NULL};
    int pid = spawn_noether(argv, NULL, errp);
    struct timespec nap = {0, 500000};
    for (int i = 0; access(ckpt, F_OK) != 0; i++) {
        cr_assert_lt(i, 120000, "no checkpoint after 60 s");
        nanosleep(&nap, NULL);
    }
    kill(pid, sig);
    int rc = wait_noether(pid);
    char *err = read_file(errp, NULL);
    cr_assert_eq(rc, 128 + sig, "exit %d, want %d (the kill must land mid-run); stderr: %s", rc, 128 + sig, err);
    cr_assert_not_null(strstr(err, "--resume"), "no resume line: %s", err);
    cr_assert_not_null(strstr(err, ckpt), "the resume line does not name %s: %s", ckpt, err);
    cr_assert(strchr(err, '\n') == err + strlen(err) - 1, "stderr is not one line: %s", err);
    free(err);
    int64_t step = checkpoint_step(ckpt);
    cr_assert(step > 0 && step < STEPS, "checkpoint at step %lld, want strictly inside 0..%d", (long long)step, STEPS);
    return step;
}

static int64_t interrupt(const char *spec, const char *dir, int sig)
{
    return interrupt_cmd("train", spec, dir, sig);
}

static void run_ok(const char *fmt, const char *a, const char *b)
{
    char args[3 * NT_PATH_MAX], *err;
    snprintf(args, sizeof args, fmt, a, b);
    int rc = run_noether(args, NULL, &err);
    cr_assert_eq(rc, 0, "noether %s: exit %d: %s", args, rc, err);
    free(err);
}

typedef struct {
    char dir[256], spec[NT_PATH_MAX], a[NT_PATH_MAX], b[NT_PATH_MAX];
} resume_fx;

/* A: uninterrupted; B: interrupted by sig, then resumed.  Asserts they agree. */
static void resume_case(resume_fx *f, const char *optimizer, double lr, int sig)
{
    tmpdir_new(f->dir);
    path_join(f->spec, f->dir, "spec.json");
    path_join(f->a, f->dir, "a");
    path_join(f->b, f->dir, "b");
    write_spec(f->spec, optimizer, lr);
    run_ok("train %s -o %s --quiet", f->spec, f->a);
    interrupt(f->spec, f->b, sig);
    char pa[NT_PATH_MAX], pb[NT_PATH_MAX];
    path_join(pb, f->b, "ledger.csv");
    path_join(pa, f->a, "ledger.csv");
    cr_assert(!same_ledger(pa, pb), "the interrupted run's ledger.csv already equals the full one");
    run_ok("train %s -o %s --resume --quiet", f->spec, f->b);
    static const char *const files[] = {"params_init.npy", "params_final.npy"};
    for (int i = 0; i < 2; i++) {
        path_join(pa, f->a, files[i]);
        path_join(pb, f->b, files[i]);
        cr_assert(same_file(pa, pb), "%s: %s differs after resuming", optimizer, files[i]);
    }
    path_join(pa, f->a, "ledger.csv");
    path_join(pb, f->b, "ledger.csv");
    cr_assert(same_ledger(pa, pb), "%s: ledger.csv differs after resuming (seconds aside)", optimizer);
    path_join(pb, f->b, "checkpoint.bin");
    cr_assert_neq(access(pb, F_OK), 0, "a completed run left %s", pb);
}

Test(resume, sgd_sigterm_bit_identical, .timeout = 300)
{
    resume_fx f;
    resume_case(&f, "sgd", 0.05, SIGTERM);
}

Test(resume, momentum_sigint_bit_identical, .timeout = 300)
{
    resume_fx f;
    resume_case(&f, "momentum", 0.02, SIGINT);
}

Test(resume, adam_sigterm_bit_identical, .timeout = 300)
{
    resume_fx f;
    resume_case(&f, "adam", 0.003, SIGTERM);
}

/* noether run: the analyses before the interruption travel in the checkpoint, so the
 * resumed run's analysis.csv (identities, both ends of the spectrum, alignment at every
 * checkpoint) is byte for byte the uninterrupted one's, and so are params_final.npy and
 * ledger.csv (seconds aside); the interrupted run wrote no report */
Test(resume, run_sigterm_bit_identical, .timeout = 600)
{
    resume_fx f;
    tmpdir_new(f.dir);
    path_join(f.spec, f.dir, "spec.json");
    path_join(f.a, f.dir, "a");
    path_join(f.b, f.dir, "b");
    write_spec(f.spec, "sgd", 0.05);
    char *text = read_file(f.spec, NULL), *end = strrchr(text, '}');
    snprintf(end, 80, ",\n  \"analysis\": {\"every\": 1000, \"spectrum\": {\"top\": 3, \"bottom\": 3}}\n}\n");
    write_text(f.spec, text);
    free(text);
    run_ok("run %s -o %s --quiet", f.spec, f.a);
    interrupt_cmd("run", f.spec, f.b, SIGTERM);
    char pa[NT_PATH_MAX], pb[NT_PATH_MAX];
    path_join(pb, f.b, "report.html");
    cr_assert_neq(access(pb, F_OK), 0, "an interrupted run wrote its report");
    run_ok("run %s -o %s --resume --quiet", f.spec, f.b);
    static const char *const files[] = {"params_final.npy", "analysis.csv", "sectors.csv", "density.csv"};
    for (int i = 0; i < 4; i++) {
        path_join(pa, f.a, files[i]);
        path_join(pb, f.b, files[i]);
        cr_assert(same_file(pa, pb), "%s differs after resuming", files[i]);
    }
    path_join(pa, f.a, "ledger.csv");
    path_join(pb, f.b, "ledger.csv");
    cr_assert(same_ledger(pa, pb), "ledger.csv differs after resuming (seconds aside)");
    path_join(pb, f.b, "report.html");
    cr_assert_eq(access(pb, F_OK), 0, "the resumed run wrote no report");
}

/* Copies dir/checkpoint.bin into a fresh run folder `to`, with one record changed
 * (element i of `record` moved by one ulp when delta > 0, else by a relative 1e-9), and
 * checkpoint.rows (the ledger rows it refers to) as it is. */
static void tampered_copy(const char *from, const char *to, const char *record, int64_t i, int delta)
{
    char src[NT_PATH_MAX], dst[NT_PATH_MAX];
    nt_checkpoint *c;
    nt_error err = {0};
    path_join(src, from, "checkpoint.bin");
    path_join(dst, to, "checkpoint.bin");
    cr_assert_eq(mkdir(to, 0777), 0, "cannot create %s", to);
    cr_assert_eq(nt_checkpoint_read(src, &c, &err), NT_OK, "%s", err.msg);
    const int64_t n = nt_checkpoint_count(c, record);
    cr_assert_gt(n, i, "record %s has %lld values", record, (long long)n);
    double *x = malloc(sizeof(double) * (size_t)n);
    cr_assert_eq(nt_checkpoint_get_f64(c, record, n, x, &err), NT_OK, "%s", err.msg);
    x[i] = delta > 0 ? nextafter(x[i], INFINITY) : x[i] * (1 + 1e-9) + 1e-12;
    nt_checkpoint_put_f64(c, record, n, x);
    cr_assert_eq(nt_checkpoint_write(c, dst, &err), NT_OK, "%s", err.msg);
    free(x);
    nt_checkpoint_free(c);
    size_t n_rows;   /* the ledger rows it refers to, as they are */
    path_join(src, from, "checkpoint.rows");
    path_join(dst, to, "checkpoint.rows");
    char *rows = read_file(src, &n_rows);
    cr_assert_not_null(rows, "cannot read %s", src);
    FILE *f = fopen(dst, "wb");
    cr_assert(f && fwrite(rows, 1, n_rows, f) == n_rows && fclose(f) == 0, "cannot write %s", dst);
    free(rows);
}

/* The comparisons can fail: resuming from a checkpoint with theta one ulp off, with one
 * ledger accumulator changed, or with Adam's second moment changed gives outputs that
 * differ; a changed spec, a truncated or missing checkpoint are refused. */
Test(resume, controls_that_must_differ_or_be_refused, .timeout = 300)
{
    resume_fx f;
    char c[NT_PATH_MAX], dl[NT_PATH_MAX], e[NT_PATH_MAX], t[NT_PATH_MAX], spec2[NT_PATH_MAX];
    char pa[NT_PATH_MAX], pb[NT_PATH_MAX], args[4 * NT_PATH_MAX];
    tmpdir_new(f.dir);
    path_join(f.spec, f.dir, "spec.json");
    path_join(f.a, f.dir, "a");
    path_join(f.b, f.dir, "b");
    path_join(c, f.dir, "theta_ulp");
    path_join(dl, f.dir, "ledger_changed");
    path_join(e, f.dir, "moment_changed");
    path_join(t, f.dir, "truncated");
    path_join(spec2, f.dir, "spec2.json");
    write_spec(f.spec, "adam", 0.003);
    write_spec(spec2, "adam", 0.0031);
    run_ok("train %s -o %s --quiet", f.spec, f.a);
    interrupt(f.spec, f.b, SIGTERM);
    tampered_copy(f.b, c, "theta", 0, 1);
    tampered_copy(f.b, dl, "ledger.accumulators", 1, 0);   /* quantity 0's prediction */
    int64_t d;
    {
        nt_checkpoint *k;
        nt_error err = {0};
        path_join(pb, f.b, "checkpoint.bin");
        cr_assert_eq(nt_checkpoint_read(pb, &k, &err), NT_OK, "%s", err.msg);
        cr_assert_eq(nt_checkpoint_get_i64(k, "model.d", 1, &d, &err), NT_OK, "%s", err.msg);
        nt_checkpoint_free(k);
    }
    tampered_copy(f.b, e, "train.optimizer", 2 * d, 0);   /* Adam's second moment, first entry */
    /* refused: another spec (nothing written), a truncated file, no checkpoint, --params */
    path_join(pb, f.b, "ledger.csv");
    char *before = read_file(pb, NULL);
    snprintf(args, sizeof args, "train %s -o %s --resume --quiet", spec2, f.b);
    expect_refused(args, "checkpoint.bin", "spec.hash");
    char *after = read_file(pb, NULL);
    cr_assert_str_eq(before, after, "a refused resume rewrote %s", pb);
    free(before);
    free(after);
    {
        size_t n;
        path_join(pb, f.b, "checkpoint.bin");
        char *bytes = read_file(pb, &n);
        cr_assert_eq(mkdir(t, 0777), 0);
        path_join(pa, t, "checkpoint.bin");
        FILE *fp = fopen(pa, "wb");
        fwrite(bytes, 1, n / 2, fp);
        fclose(fp);
        free(bytes);
    }
    snprintf(args, sizeof args, "train %s -o %s --resume --quiet", f.spec, t);
    expect_refused(args, "truncated/checkpoint.bin", "byte");
    snprintf(args, sizeof args, "train %s -o %s/none --resume --quiet", f.spec, f.dir);
    expect_refused(args, "none/checkpoint.bin", "cannot open");
    snprintf(args, sizeof args, "train %s -o %s --resume --params x.npy", f.spec, f.b);
    expect_refused(args, "--resume", "--params");
    /* the untouched checkpoint resumes into the uninterrupted outputs ... */
    run_ok("train %s -o %s --resume --quiet", f.spec, f.b);
    path_join(pa, f.a, "params_final.npy");
    path_join(pb, f.b, "params_final.npy");
    cr_assert(same_file(pa, pb), "params_final.npy differs after resuming");
    path_join(pa, f.a, "ledger.csv");
    path_join(pb, f.b, "ledger.csv");
    cr_assert(same_ledger(pa, pb), "ledger.csv differs after resuming");
    /* ... and each tampered one into outputs that differ */
    const char *dirs[3] = {c, dl, e};
    const int params_differ[3] = {1, 0, 1}, ledger_differs[3] = {1, 1, 1};
    for (int i = 0; i < 3; i++) {
        run_ok("train %s -o %s --resume --quiet", f.spec, dirs[i]);
        path_join(pa, f.a, "params_final.npy");
        path_join(pb, dirs[i], "params_final.npy");
        cr_assert_eq(!same_file(pa, pb), params_differ[i], "%s: params_final.npy %s", dirs[i],
                     params_differ[i] ? "does not differ" : "differs");
        path_join(pa, f.a, "ledger.csv");
        path_join(pb, dirs[i], "ledger.csv");
        cr_assert_eq(!same_ledger(pa, pb), ledger_differs[i], "%s: ledger.csv does not differ", dirs[i]);
    }
}

/* Divergence: a non-finite loss stops the run naming the step K, with theta the parameters
 * of step K, the last finite ones: bit for bit those of the same run asked for K steps,
 * and the binary's params_final.npy holds them too. */
Test(resume, divergence_keeps_the_last_finite_parameters, .timeout = 120)
{
    static const char json[] =
        "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 8}, {\"act\": \"square\"}, {\"dense\": 3}], \"loss\": \"mse\"},"
        " \"data\": {\"source\": \"builtin\", \"name\": \"iris\"},"
        " \"train\": {\"optimizer\": \"gd\", \"lr\": 50, \"steps\": 300}}";
    char dir[256], spec_path[NT_PATH_MAX], out_dir[NT_PATH_MAX], p[NT_PATH_MAX], args[3 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec_path, dir, "spec.json");
    path_join(out_dir, dir, "out");
    write_text(spec_path, json);
    nt_spec spec;
    nt_data data;
    nt_error err = {0};
    cr_assert_eq(nt_spec_load(spec_path, &spec, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&spec, &data, &err), NT_OK, "%s", err.msg);
    const int64_t d = spec.model.d;
    double *theta = malloc(sizeof(double) * (size_t)d), *again = malloc(sizeof(double) * (size_t)d);
    nt_init_params(&spec.model, &spec.init, theta);
    memcpy(again, theta, sizeof(double) * (size_t)d);
    int rc = nt_train(&spec, &data, NULL, 0, theta, NULL, 0, NULL, NULL, &err);
    cr_assert_eq(rc, NT_EFAIL, "lr 50 did not diverge");
    long long k = -1;
    cr_assert_eq(sscanf(err.msg, "step %lld:", &k), 1, "the message does not start with the step: %s", err.msg);
    cr_assert(k > 0 && k < 300, "diverged at step %lld", k);
    cr_assert_not_null(strstr(err.msg, "not finite"), "%s", err.msg);
    for (int64_t i = 0; i < d; i++) cr_assert(isfinite(theta[i]), "theta[%lld] is not finite", (long long)i);
    spec.train.steps = k;   /* the same run, asked for exactly k steps */
    cr_assert_eq(nt_train(&spec, &data, NULL, 0, again, NULL, 0, NULL, NULL, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(memcmp(theta, again, sizeof(double) * (size_t)d), 0, "theta is not that of step %lld", k);
    again[0] = nextafter(again[0], INFINITY);   /* control: one ulp is seen */
    cr_assert_neq(memcmp(theta, again, sizeof(double) * (size_t)d), 0);
    /* the binary: exit 1, the step named, params_final.npy = theta */
    char *err_text;
    snprintf(args, sizeof args, "train %s -o %s --quiet", spec_path, out_dir);
    cr_assert_eq(run_noether(args, NULL, &err_text), 1, "%s", err_text);
    char want[64];
    snprintf(want, sizeof want, "step %lld:", k);
    cr_assert_not_null(strstr(err_text, want), "'%s' does not name %s", err_text, want);
    free(err_text);
    nt_array a;
    path_join(p, out_dir, "params_final.npy");
    cr_assert_eq(nt_npy_read(p, &a, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(a.size, d);
    cr_assert_eq(memcmp(a.data, theta, sizeof(double) * (size_t)d), 0, "params_final.npy is not theta of step %lld", k);
    nt_array_free(&a);
    free(theta);
    free(again);
    nt_data_free(&data);
    nt_spec_free(&spec);
}
