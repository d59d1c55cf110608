/* test_strict.c: the defects of issue #14 that crashed or silently did the wrong thing,
 * each run through the built noether binary as a real process: models wider or larger than
 * the stack or the machine (crash), inputs the spec reader must refuse (strict), outputs
 * that cannot be written (output) and non-finite results (finite). */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include "helpers.h"

/* A fresh folder with spec.json = text; its path into spec (NT_PATH_MAX). */
static void spec_in_dir(char *dir, char *spec, const char *text)
{
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    write_text(spec, text);
}

/* Runs noether with printf-style args; the exit code, stdout and stderr (freed by the caller). */
static int run_fmt(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run_fmt(char **out, char **err, const char *fmt, ...)
{
    char args[4 * NT_PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return run_noether(args, out, err);
}

/* Exit 2 with one line on stderr containing every one of the (NULL-terminated) words. */
static void expect_input_error(int rc, const char *err, const char *const *words)
{
    cr_assert_eq(rc, 2, "exit %d, want 2; stderr: %s", rc, err);
    const char *nl = strchr(err, '\n');
    cr_assert(nl && nl[1] == 0, "want one line on stderr, got: %s", err);
    for (int i = 0; words[i]; i++) cr_assert(strstr(err, words[i]), "stderr lacks '%s': %s", words[i], err);
}

/* Runs noether argv with stdout and stderr into dir/stdout and dir/stderr (read into *out,
 * *err), killed after `seconds`: the exit code, or 128 + the signal (a kill: 137). */
static int run_timed(const char *dir, const char *const *argv, double seconds, char **out, char **err)
{
    char o[NT_PATH_MAX], e[NT_PATH_MAX];
    *out = *err = NULL;
    path_join(o, dir, "stdout");
    path_join(e, dir, "stderr");
    int pid = spawn_noether(argv, o, e), st = 0;
    for (double t = 0; waitpid(pid, &st, WNOHANG) == 0; t += 0.05) {
        if (t > seconds) { kill(pid, SIGKILL); return wait_noether(pid); }
        usleep(50000);
    }
    size_t n;
    *out = read_file(o, &n);
    *err = read_file(e, &n);
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* ------------------------------------------------------------------ crash */

/* 1,100 outputs: the output generator B (K x K doubles, 9.7 MB) no longer on the stack of
 * the trainer (it segfaulted at 1,024 outputs) */
Test(crash, wide_outputs_train, .timeout = 120)
{
    char dir[256], spec[NT_PATH_MAX], *out, *err;
    spec_in_dir(dir, spec,
                "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 1100}], \"loss\": \"cross_entropy\"},"
                " \"data\": {\"source\": \"teacher\", \"n\": 8},"
                " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.01, \"steps\": 3, \"batch\": 4}}");
    int rc = run_fmt(&out, &err, "train %s -o %s/run", spec, dir);
    cr_assert_eq(rc, 0, "exit %d; stderr: %s", rc, err);
    free(out); free(err);
}

/* 300,000 outputs: the loss head's rows of one sample (4 K doubles) no longer on the stack */
Test(crash, wide_outputs_grad, .timeout = 120)
{
    char dir[256], spec[NT_PATH_MAX], g[NT_PATH_MAX], *out, *err;
    spec_in_dir(dir, spec,
                "{\"model\": {\"input\": 1, \"layers\": [{\"dense\": 300000}], \"loss\": \"cross_entropy\"},"
                " \"data\": {\"source\": \"teacher\", \"n\": 2}}");
    path_join(g, dir, "g.npy");
    int rc = run_fmt(&out, &err, "grad %s --out %s", spec, g);
    cr_assert_eq(rc, 0, "exit %d; stderr: %s", rc, err);
    nt_array a = {0};
    nt_error e = {0};
    cr_assert_eq(nt_npy_read(g, &a, &e), NT_OK, "%s", e.msg);
    cr_assert_eq(a.size, 600000);
    for (int64_t i = 0; i < a.size; i++) cr_assert(isfinite(a.data[i]));
    nt_array_free(&a);
    free(out); free(err);
}

/* the per-layer tables of the transformations are bounded: more layers are refused */
Test(crash, too_many_layers)
{
    char dir[256], spec[NT_PATH_MAX], *out, *err;
    size_t cap = 64 + (NT_MAX_LAYERS + 1) * 20;
    char *text = malloc(cap + 256);
    size_t len = (size_t)sprintf(text, "{\"model\": {\"input\": 3, \"layers\": [");
    for (int i = 0; i < NT_MAX_LAYERS; i++) len += (size_t)sprintf(text + len, "{\"act\": \"tanh\"}, ");
    sprintf(text + len, "{\"dense\": 2}], \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"teacher\", \"n\": 4}}");
    spec_in_dir(dir, spec, text);
    free(text);
    int rc = run_fmt(&out, &err, "info %s", spec);
    char n[32];
    snprintf(n, sizeof n, "%d", NT_MAX_LAYERS);
    expect_input_error(rc, err, (const char *[]){ spec, "model.layers", n, NULL });
    free(out); free(err);
}

/* d = 4.9e11 (below the 2^40 cap, far beyond memory): refused before anything is allocated,
 * naming the bytes needed (theta, gradient and a tangent: 24 d) and the bytes available */
Test(crash, model_beyond_memory)
{
    char dir[256], spec[NT_PATH_MAX], *out, *err;
    spec_in_dir(dir, spec,
                "{\"model\": {\"input\": 700000, \"layers\": [{\"dense\": 700000}], \"loss\": \"mse\"},"
                " \"data\": {\"source\": \"teacher\", \"n\": 4}}");
    const double d = 700000.0 * 700000.0 + 700000.0;
    char need[64], avail[64];
    snprintf(need, sizeof need, "needs %.0f bytes", 24 * d);
    snprintf(avail, sizeof avail, "%.0f bytes", nt_memory_bytes());
    const char *cmds[] = {"info", "grad", "check", "train"};
    for (int i = 0; i < 4; i++) {
        int rc = run_fmt(&out, &err, "%s %s%s%s", cmds[i], spec, i == 3 ? " -o " : "", i == 3 ? dir : "");
        expect_input_error(rc, err, (const char *[]){ spec, "d = 490000700000", need, avail, "available", NULL });
        cr_assert_str_empty(out, "%s wrote to stdout: %s", cmds[i], out);
        free(out); free(err);
    }
}

/* a teacher of 10^10 weights: refused at once like a model (it used to run for minutes) */
Test(crash, teacher_beyond_memory, .timeout = 60)
{
    char dir[256], spec[NT_PATH_MAX], *out, *err;
    spec_in_dir(dir, spec,
                "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 3}], \"loss\": \"cross_entropy\"},"
                " \"data\": {\"source\": \"teacher\", \"n\": 4, \"hidden\": [100000, 100000]}}");
    const double w = 4.0 * 100000 + 100000.0 * 100000 + 100000.0 * 3;
    char need[64];
    snprintf(need, sizeof need, "needs %.0f bytes", 8 * (w + 4 * (4 + 3)));
    int rc = run_timed(dir, (const char *[]){ "info", spec, NULL }, 20, &out, &err);
    cr_assert_neq(rc, 137, "still running after 20 s");
    expect_input_error(rc, err, (const char *[]){ spec, "data.hidden", need, "available", NULL });
    free(out); free(err);
}
