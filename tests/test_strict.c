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

/* ------------------------------------------------------------------ strict */

#define TEACHER_SPEC(extra) \
    "{\"model\": {\"input\": 3, \"layers\": [{\"dense\": 2}], \"loss\": \"cross_entropy\"}," \
    " \"data\": {\"source\": \"teacher\", \"n\": 6}" extra "}"

/* noether info on a spec of this text: exit 2, one line naming the spec and every word */
static void expect_spec_refused(const char *text, const char *const *words)
{
    char dir[256], spec[NT_PATH_MAX], *out, *err;
    spec_in_dir(dir, spec, text);
    int rc = run_fmt(&out, &err, "info %s", spec);
    expect_input_error(rc, err, words);
    cr_assert(strstr(err, spec), "stderr does not name %s: %s", spec, err);
    cr_assert_str_empty(out);
    free(out); free(err);
}

Test(strict, spec_control_is_accepted)
{
    char dir[256], spec[NT_PATH_MAX], *out, *err;
    spec_in_dir(dir, spec, TEACHER_SPEC(", \"train\": {\"optimizer\": \"adam\", \"beta1\": 0.99, \"lr\": 1e-3}") "\n\n");
    int rc = run_fmt(&out, &err, "info %s", spec);
    cr_assert_eq(rc, 0, "the control spec is refused: %s", err);
    free(out); free(err);
}

Test(strict, trailing_text_refused)
{
    expect_spec_refused(TEACHER_SPEC("") "\n\n xyz", (const char *[]){ "after the JSON document", "line 3", NULL });
    expect_spec_refused(TEACHER_SPEC("") " {}", (const char *[]){ "after the JSON document", NULL });
}

Test(strict, leading_zero_refused)
{
    expect_spec_refused("{\"model\": {\"input\": 003,\n \"layers\": [{\"dense\": 2}], \"loss\": \"cross_entropy\"},"
                        " \"data\": {\"source\": \"teacher\", \"n\": 6}}",
                        (const char *[]){ "'003'", "leading zero", "line 1", NULL });
    expect_spec_refused(TEACHER_SPEC(",\n \"weight_decay\": -00.5"), (const char *[]){ "'-00.5'", "line 2", NULL });
}

/* "x.npy\u0000.evil" used to read x.npy */
Test(strict, nul_in_string_refused)
{
    char dir[256], spec[NT_PATH_MAX], p[NT_PATH_MAX], *out, *err;
    tmpdir_new(dir);
    double x[12], y[4] = {0, 1, 0, 1};
    fill_normal(x, 12, 1, 3);
    nt_error e = {0};
    path_join(p, dir, "x.npy");
    cr_assert_eq(nt_npy_write(p, x, 2, (int64_t[]){4, 3}, &e), NT_OK, "%s", e.msg);
    path_join(p, dir, "y.npy");
    cr_assert_eq(nt_npy_write(p, y, 1, (int64_t[]){4}, &e), NT_OK, "%s", e.msg);
    path_join(spec, dir, "spec.json");
    const char *model = "{\"model\": {\"input\": 3, \"layers\": [{\"dense\": 2}], \"loss\": \"cross_entropy\"},\n";
    char text[1024];
    snprintf(text, sizeof text, "%s \"data\": {\"source\": \"npy\", \"x\": \"x.npy\", \"y\": \"y.npy\"}}", model);
    write_text(spec, text);
    cr_assert_eq(run_fmt(&out, &err, "info %s", spec), 0, "control: %s", err);   /* the files are good */
    free(out); free(err);
    snprintf(text, sizeof text, "%s \"data\": {\"source\": \"npy\", \"x\": \"x.npy\\u0000.evil\", \"y\": \"y.npy\"}}", model);
    write_text(spec, text);
    int rc = run_fmt(&out, &err, "info %s", spec);
    expect_input_error(rc, err, (const char *[]){ spec, "NUL", "line 2", NULL });
    free(out); free(err);
    /* and a raw NUL byte */
    FILE *f = fopen(spec, "wb");
    fputs(TEACHER_SPEC(""), f);
    fputc(0, f);
    fputs("\n", f);
    fclose(f);
    rc = run_fmt(&out, &err, "info %s", spec);
    expect_input_error(rc, err, (const char *[]){ spec, "NUL byte", NULL });
    free(out); free(err);
}

/* cJSON took the first of two keys */
Test(strict, duplicate_key_refused)
{
    expect_spec_refused(TEACHER_SPEC(", \"weight_decay\": 0, \"weight_decay\": 0.5"),
                        (const char *[]){ "weight_decay", "twice", NULL });
    expect_spec_refused("{\"model\": {\"input\": 3, \"layers\": [{\"dense\": 2, \"dense\": 3}], \"loss\": \"mse\"},"
                        " \"data\": {\"source\": \"teacher\", \"n\": 6}}",
                        (const char *[]){ "model.layers[0].dense", "twice", NULL });
}

/* deeper than cJSON's limit was "not valid JSON" */
Test(strict, nesting_too_deep_named)
{
    size_t depth = 3000;
    char *text = malloc(2 * depth + 64);
    size_t n = (size_t)sprintf(text, "{\"transformations\": ");
    for (size_t i = 0; i < depth; i++) text[n++] = '[';
    for (size_t i = 0; i < depth; i++) text[n++] = ']';
    strcpy(text + n, "}");
    expect_spec_refused(text, (const char *[]){ "nested too deeply", NULL });
    free(text);
}

/* a 1 MB key is cut in the message */
Test(strict, long_key_cut_in_message)
{
    size_t len = 1 << 20;
    char *text = malloc(len + 64);
    strcpy(text, "{\"");
    memset(text + 2, 'k', len);
    strcpy(text + 2 + len, "\": 1}");
    char dir[256], spec[NT_PATH_MAX], *out, *err;
    spec_in_dir(dir, spec, text);
    free(text);
    int rc = run_fmt(&out, &err, "info %s", spec);
    expect_input_error(rc, err, (const char *[]){ "kkkk...: unknown key", NULL });
    cr_assert_lt(strlen(err), strlen(spec) + 120, "the message is %zu bytes", strlen(err));
    free(out); free(err);
}

/* a path that, joined to the spec's folder, is longer than the buffer used to be cut short:
 * cut right after ".../x.npy" it read x.npy instead of x.npy.evil */
Test(strict, path_too_long_refused)
{
    char dir[256], spec[NT_PATH_MAX], p[NT_PATH_MAX], *out, *err;
    tmpdir_new(dir);
    double x[12], y[4] = {0, 1, 0, 1};
    fill_normal(x, 12, 1, 3);
    nt_error e = {0};
    path_join(p, dir, "x.npy");
    cr_assert_eq(nt_npy_write(p, x, 2, (int64_t[]){4, 3}, &e), NT_OK, "%s", e.msg);
    path_join(p, dir, "y.npy");
    cr_assert_eq(nt_npy_write(p, y, 1, (int64_t[]){4}, &e), NT_OK, "%s", e.msg);
    /* dir + "/" + value: its first NT_PATH_MAX - 1 bytes end in "/x.npy" */
    char value[NT_PATH_MAX];
    size_t fill = NT_PATH_MAX - 1 - strlen(dir) - 1 - strlen("x.npy"), n = 0;
    if (fill % 2) { strcpy(value, ".//"); n = 3; fill -= 3; }
    for (; fill; fill -= 2) { value[n++] = '.'; value[n++] = '/'; }
    strcpy(value + n, "x.npy.evil");
    char text[2 * NT_PATH_MAX];
    snprintf(text, sizeof text, "{\"model\": {\"input\": 3, \"layers\": [{\"dense\": 2}], \"loss\": \"cross_entropy\"},"
             " \"data\": {\"source\": \"npy\", \"x\": \"%s\", \"y\": \"y.npy\"}}", value);
    path_join(spec, dir, "spec.json");
    write_text(spec, text);
    int rc = run_fmt(&out, &err, "info %s", spec);
    expect_input_error(rc, err, (const char *[]){ spec, "data.x", "longer than", NULL });
    free(out); free(err);
}

/* -o with a folder longer than the buffers: refused, and nothing created */
Test(strict, option_value_too_long_refused)
{
    char dir[256], spec[NT_PATH_MAX], *out, *err;
    spec_in_dir(dir, spec, TEACHER_SPEC(", \"train\": {\"steps\": 2}"));
    char longdir[2 * NT_PATH_MAX];
    size_t n = (size_t)snprintf(longdir, sizeof longdir, "%s/new", dir);
    while (n < NT_PATH_MAX + 100) n += (size_t)snprintf(longdir + n, sizeof longdir - n, "/%0200d", 0);
    int rc = run_fmt(&out, &err, "train %s -o %s", spec, longdir);
    expect_input_error(rc, err, (const char *[]){ "-o", "longer than", NULL });
    char created[NT_PATH_MAX];
    path_join(created, dir, "new");
    struct stat sb;
    cr_assert_neq(stat(created, &sb), 0, "%s was created", created);
    free(out); free(err);
}

Test(strict, adam_beta_one_refused)
{
    expect_spec_refused(TEACHER_SPEC(", \"train\": {\"optimizer\": \"adam\", \"beta1\": 1}"),
                        (const char *[]){ "train.beta1", "[0, 1)", NULL });
    expect_spec_refused(TEACHER_SPEC(", \"train\": {\"optimizer\": \"adam\", \"beta2\": 1}"),
                        (const char *[]){ "train.beta2", "[0, 1)", NULL });
}

/* "--" ends the options: what follows is the spec, even if it looks like an option */
Test(strict, double_dash_ends_options)
{
    char dir[256], spec[NT_PATH_MAX], *out, *err;
    spec_in_dir(dir, spec, TEACHER_SPEC(""));
    int rc = run_fmt(&out, &err, "info --json -- %s", spec);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    cr_assert(strstr(out, "\"d\""), "%s", out);
    free(out); free(err);
    rc = run_fmt(&out, &err, "info -- --help");
    expect_input_error(rc, err, (const char *[]){ "--help", "cannot open", NULL });
    free(out); free(err);
}

/* An IDX file of n images (rows x cols) or, rows = 0, n labels; plain (gzopen reads it too). */
static void write_idx(const char *path, int n, int rows, int cols)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    unsigned char head[16] = {0, 0, 8, rows ? 3 : 1, n >> 24, n >> 16 & 255, n >> 8 & 255, n & 255,
                              0, 0, rows >> 8, rows & 255, 0, 0, cols >> 8, cols & 255};
    fwrite(head, 1, rows ? 16 : 8, f);
    size_t size = (size_t)n * (rows ? (size_t)rows * cols : 1);
    for (size_t i = 0; i < size; i++) fputc(rows ? (int)(i * 7 % 256) : (int)(i % 10), f);
    cr_assert_eq(fclose(f), 0);
}

static void idx_spec(char *dir, char *spec, const char *images, const char *labels, int input, int limit)
{
    char text[4096];
    snprintf(text, sizeof text, "{\"model\": {\"input\": %d, \"layers\": [{\"dense\": 10}], \"loss\": \"cross_entropy\"},"
             " \"data\": {\"source\": \"idx\", \"images\": \"%s\", \"labels\": \"%s\", \"limit\": %d}}", input, images,
             labels, limit);
    path_join(spec, dir, "spec.json");
    write_text(spec, text);
}

Test(strict, idx_images_as_labels_named)
{
    char dir[256], spec[NT_PATH_MAX], im[NT_PATH_MAX], lb[NT_PATH_MAX], *out, *err;
    tmpdir_new(dir);
    path_join(im, dir, "images.idx");
    path_join(lb, dir, "labels.idx");
    write_idx(im, 6, 4, 4);
    write_idx(lb, 6, 0, 0);
    idx_spec(dir, spec, "images.idx", "labels.idx", 16, 0);
    cr_assert_eq(run_fmt(&out, &err, "info %s", spec), 0, "control: %s", err);
    free(out); free(err);
    idx_spec(dir, spec, "images.idx", "images.idx", 16, 0);
    int rc = run_fmt(&out, &err, "info %s", spec);
    expect_input_error(rc, err, (const char *[]){ im, "holds images", "not labels", "data.labels", NULL });
    free(out); free(err);
}

/* limit keeps the first rows: only they are held (the peak RSS far below the whole file as
 * doubles), and the result is the same as the first rows of the whole file */
Test(strict, idx_limit_streams, .timeout = 120)
{
    char dir[256], spec[NT_PATH_MAX], im[NT_PATH_MAX], lb[NT_PATH_MAX], o[NT_PATH_MAX], *out, *err;
    tmpdir_new(dir);
    path_join(im, dir, "images.idx");
    path_join(lb, dir, "labels.idx");
    const int n = 20000;
    write_idx(im, n, 28, 28);
    write_idx(lb, n, 0, 0);
    idx_spec(dir, spec, "images.idx", "labels.idx", 784, 64);
    path_join(o, dir, "stdout");
    int pid = spawn_noether((const char *[]){ "grad", spec, "--json", NULL }, o, NULL), st;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &st, 0, &ru), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    const double whole = 8.0 * n * 784 / 1024;   /* KiB: the file as doubles */
    cr_log_info("idx limit 64 of %d: peak RSS %ld KiB, the whole file as doubles %.0f KiB", n, ru.ru_maxrss, whole);
    cr_assert_lt((double)ru.ru_maxrss, whole / 3, "peak RSS %ld KiB", ru.ru_maxrss);
    /* the same gradient as a file of only those 64 rows */
    char *a = read_file(o, &(size_t){0});
    write_idx(im, 64, 28, 28);
    write_idx(lb, 64, 0, 0);
    idx_spec(dir, spec, "images.idx", "labels.idx", 784, 0);
    cr_assert_eq(run_fmt(&out, &err, "grad %s --json", spec), 0, "%s", err);
    cr_assert_str_eq(a, out);
    free(a); free(out); free(err);
}

/* ------------------------------------------------------------------ output */

/* stdout on a full disk: exit 1 with a message, not 0 */
Test(output, stdout_full_fails)
{
    char dir[256], spec[NT_PATH_MAX], e[NT_PATH_MAX];
    spec_in_dir(dir, spec, TEACHER_SPEC(""));
    path_join(e, dir, "stderr");
    const char *cmds[][4] = {{"info", "--json", spec, NULL}, {"symmetries", spec, NULL, NULL}, {"info", "--help", NULL, NULL}};
    for (int i = 0; i < 3; i++) {
        int rc = wait_noether(spawn_noether(cmds[i], "/dev/full", e));
        char *err = read_file(e, &(size_t){0});
        cr_assert_eq(rc, 1, "noether %s > /dev/full: exit %d, stderr: %s", cmds[i][0], rc, err);
        cr_assert(strstr(err, "cannot write to standard output"), "%s", err);
        free(err);
    }
    /* control: a writable stdout */
    cr_assert_eq(wait_noether(spawn_noether(cmds[0], "/dev/null", e)), 0);
}

/* stdout a pipe nobody reads (SIGPIPE at its default, as a shell leaves it): exit 1 with a
 * message, not death by the signal */
Test(output, stdout_closed_pipe_fails)
{
    char dir[256], spec[NT_PATH_MAX], e[NT_PATH_MAX];
    spec_in_dir(dir, spec, TEACHER_SPEC(""));
    path_join(e, dir, "stderr");
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        close(fd[0]);
        dup2(fd[1], 1);
        FILE *ef = freopen(e, "w", stderr);
        (void)ef;
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execl(NOETHER_BIN, NOETHER_BIN, "info", "--json", spec, (char *)NULL);
        _exit(127);
    }
    close(fd[0]);
    close(fd[1]);
    int rc = wait_noether(pid);
    char *err = read_file(e, &(size_t){0});
    cr_assert_eq(rc, 1, "exit %d (141: killed by SIGPIPE), stderr: %s", rc, err);
    cr_assert(strstr(err, "cannot write to standard output"), "%s", err);
    free(err);
}

/* ------------------------------------------------------------------ finite */

/* finite parameters whose loss is NaN: f = 1e300 * 1e10 - 1e300 * 1e10 = inf - inf */
static void nan_fixture(char *dir, char *spec, char *params, char *vec)
{
    tmpdir_new(dir);
    double x[8] = {1e10, -1e10, 1e10, -1e10, 1e10, -1e10, 1e10, -1e10}, y[4] = {0, 1, 2, 3};
    double P[2] = {1e300, 1e300}, V[2] = {1, 0}, Pc[2] = {0.5, -0.25};
    nt_error e = {0};
    char p[NT_PATH_MAX];
    path_join(p, dir, "x.npy");
    cr_assert_eq(nt_npy_write(p, x, 2, (int64_t[]){4, 2}, &e), NT_OK, "%s", e.msg);
    path_join(p, dir, "y.npy");
    cr_assert_eq(nt_npy_write(p, y, 1, (int64_t[]){4}, &e), NT_OK, "%s", e.msg);
    path_join(params, dir, "p.npy");
    cr_assert_eq(nt_npy_write(params, P, 1, (int64_t[]){2}, &e), NT_OK, "%s", e.msg);
    path_join(p, dir, "control.npy");
    cr_assert_eq(nt_npy_write(p, Pc, 1, (int64_t[]){2}, &e), NT_OK, "%s", e.msg);
    path_join(vec, dir, "v.npy");
    cr_assert_eq(nt_npy_write(vec, V, 1, (int64_t[]){2}, &e), NT_OK, "%s", e.msg);
    path_join(spec, dir, "spec.json");
    write_text(spec, "{\"model\": {\"input\": 2, \"layers\": [{\"dense\": 1, \"bias\": false}], \"loss\": \"mse\"},"
                     " \"data\": {\"source\": \"npy\", \"x\": \"x.npy\", \"y\": \"y.npy\"}}");
}

Test(finite, grad_hvp_nan_loss_fail)
{
    char dir[256], spec[NT_PATH_MAX], params[NT_PATH_MAX], vec[NT_PATH_MAX], o[NT_PATH_MAX], *out, *err;
    nan_fixture(dir, spec, params, vec);
    path_join(o, dir, "out.npy");
    /* control: finite parameters give exit 0 */
    cr_assert_eq(run_fmt(&out, &err, "grad %s --params %s/control.npy", spec, dir), 0, "%s", err);
    free(out); free(err);
    const char *cmds[2][2] = {{"grad", ""}, {"hvp", "--vectors"}};
    for (int i = 0; i < 2; i++) {
        int rc = run_fmt(&out, &err, "%s %s --params %s %s %s --out %s --json", cmds[i][0], spec, params, cmds[i][1],
                         i ? vec : "", o);
        cr_assert_eq(rc, 1, "%s: exit %d, stdout %s, stderr %s", cmds[i][0], rc, out, err);
        cr_assert(strstr(err, "loss is not finite"), "%s", err);
        cr_assert_str_empty(out);
        struct stat sb;
        cr_assert_neq(stat(o, &sb), 0, "%s wrote %s", cmds[i][0], o);
        free(out); free(err);
    }
}

Test(finite, spectrum_nan_loss_fails_before_lapack)
{
    char dir[256], spec[NT_PATH_MAX], params[NT_PATH_MAX], vec[NT_PATH_MAX], *out, *err;
    nan_fixture(dir, spec, params, vec);
    int rc = run_fmt(&out, &err, "spectrum %s --params %s --top 1 --bottom 0", spec, params);
    cr_assert_eq(rc, 1, "exit %d, stderr %s", rc, err);
    cr_assert(strstr(err, "loss is not finite"), "%s", err);
    cr_assert_null(strstr(err, "DLASCL"), "%s", err);
    free(out); free(err);
}

/* model.input [4444444444, 2] was cast to int before its range was checked (undefined
 * behaviour: the sanitizer build of noether stopped on it; found by make fuzz) */
Test(strict, input_shape_out_of_int_range_refused)
{
    expect_spec_refused("{\"model\": {\"input\": [4444444444, 2], \"layers\": [{\"dense\": 2}], \"loss\": \"mse\"},"
                        " \"data\": {\"source\": \"teacher\", \"n\": 6}}",
                        (const char *[]){ "model.input", "positive integers", NULL });
}

/* a layer normalization of width 10^6: its four rows of one token (32 MB) no longer on the stack */
Test(crash, wide_layer_norm_grad, .timeout = 120)
{
    char dir[256], spec[NT_PATH_MAX], *out, *err;
    spec_in_dir(dir, spec,
                "{\"model\": {\"input\": 1, \"layers\": [{\"dense\": 1000000}, {\"norm\": \"layer\"}, {\"dense\": 2}],"
                " \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"teacher\", \"n\": 2}}");
    int rc = run_fmt(&out, &err, "grad %s --json", spec);
    cr_assert_eq(rc, 0, "exit %d; stderr: %s", rc, err);
    free(out); free(err);
}

/* the identities of 1,100 outputs: B and rho (K x K, 9.7 MB each) no longer on the stack of
 * nt_check.  In process, on two entries of the catalogue (all 1,100 output swaps take a minute). */
Test(crash, wide_outputs_identities, .timeout = 120)
{
    model_fixture f;
    mf_new(&f, 4, 0, NULL, NT_ACT_RELU, 1100, NT_LOSS_CROSS_ENTROPY, 1, 0.0, 8, 8, 2, 7);
    nt_transform two[2];
    int n = 0, kinds[2] = {NT_TR_HOMOGENEOUS, NT_TR_OUTPUT_SWAP};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < f.n; i++)
            if ((int)f.list[i].kind == kinds[k]) { two[n++] = f.list[i]; break; }
    cr_assert_eq(n, 2, "the catalogue lacks the homogeneity or an output swap");
    nt_check_result res[2];
    cr_assert_eq(nt_check_count(two, 2), 2);
    t_check(f.e, &f.m, &f.ds, f.theta, two, 2, NT_IDENTITY_TOL, res);
    for (int i = 0; i < 2; i++)
        cr_assert(res[i].holds, "%s: first order %g, second order %g", res[i].name, res[i].first_order, res[i].second_order);
    mf_free(&f);
}

/* a model whose theta fits but whose blocks of 16 vectors do not (d = memory / 200 bytes:
 * 24 d fits, 8 d (3 + 2 16) does not): check and spectrum refuse it naming the bytes (they
 * stopped with "out of memory for the engine's workspace", exit 1, or died at a block's
 * unchecked malloc), while grad (one vector) runs */
Test(crash, blocks_beyond_memory, .timeout = 300)
{
    const int w = (int)sqrt(nt_memory_bytes() / 200);
    char dir[256], spec[NT_PATH_MAX], text[512], *out, *err;
    snprintf(text, sizeof text, "{\"model\": {\"input\": %d, \"layers\": [{\"dense\": %d, \"bias\": false}], \"loss\": \"mse\"},"
             " \"data\": {\"source\": \"teacher\", \"n\": 2}}", w, w);
    spec_in_dir(dir, spec, text);
    const char *cmds[] = {"check", "spectrum --top 1"};
    for (int i = 0; i < 2; i++) {
        int rc = run_fmt(&out, &err, "%s %s", cmds[i], spec);
        expect_input_error(rc, err, (const char *[]){ spec, "blocks of 16 vectors", "needs", "available", NULL });
        free(out); free(err);
    }
    cr_assert_eq(run_fmt(&out, &err, "grad %s", spec), 0, "grad fits: %s", err);
    free(out); free(err);
}
