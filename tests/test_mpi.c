/* test_mpi.c: the noether binary under `mpirun --oversubscribe -np 2` and `-np 3` (issue #17,
 * docs/theory.md §8) against one process on the same job, 101 samples so that no rank count
 * divides them (shards 50/51 and 33/34/34): gradient, Hessian-vector products, both ends of
 * the spectrum and the identity residuals equal to 1e-12 relative (the order of the sums
 * aside), a 300-step momentum run and noether run to 1e-10, a checkpoint of a 2-rank run
 * resumed on 3 ranks and on one process, info's ranks and shards, synchronized batch
 * normalization, and a NaN in the rows of one rank ending every rank with exit 2 and one
 * line.  Negative controls: one shard's gradient is not the whole set's, nor batch norm's
 * with each shard's own statistics; the same spec without the fault runs. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cJSON.h>
#include <criterion/criterion.h>
#include "helpers.h"

#define N_SAMPLES 101

/* Meson builds with Open MPI when it finds it (scripts/setup.sh installs it); without it
 * there is no mpirun to test under */
#ifdef NT_HAVE_MPI
#define NEED_MPI() ((void)0)
#else
#define NEED_MPI() cr_skip_test("built without MPI (scripts/setup.sh installs Open MPI)")
#endif

/* x (N x 5) ~ N(0, 1), labels in 0..2; `nan_row` >= 0 puts a NaN in that row (rows < keep only) */
static void write_data(const char *dir, const char *xname, int64_t keep, int64_t nan_row)
{
    double x[N_SAMPLES * 5], y[N_SAMPLES];
    fill_normal(x, N_SAMPLES * 5, 1.0, 41);
    for (int i = 0; i < N_SAMPLES; i++) y[i] = (double)(nt_rand_u64(7, 0, (uint64_t)i) % 3);
    if (nan_row >= 0) x[nan_row * 5 + 2] = NAN;
    char p[NT_PATH_MAX];
    nt_error err;
    int64_t sx[2] = {keep, 5}, sy[1] = {keep};
    path_join(p, dir, xname);
    cr_assert_eq(nt_npy_write(p, x, 2, sx, &err), NT_OK, "%s", err.msg);
    path_join(p, dir, keep == N_SAMPLES ? "y.npy" : "y_part.npy");
    cr_assert_eq(nt_npy_write(p, y, 1, sy, &err), NT_OK, "%s", err.msg);
}

/* a tanh MLP 5-7-3 with weight decay on the NPY data, momentum SGD in batches of 16 */
static void write_spec(const char *dir, const char *name, const char *x, const char *y, const char *extra)
{
    char p[NT_PATH_MAX], text[2048];
    snprintf(text, sizeof text,
             "{\"model\": {\"input\": 5, \"layers\": [{\"dense\": 7}, {\"act\": \"tanh\"}, {\"dense\": 3}],"
             " \"loss\": \"cross_entropy\"},\n"
             " \"data\": {\"source\": \"npy\", \"x\": \"%s\", \"y\": \"%s\"},\n"
             " \"init\": {\"seed\": 1, \"scheme\": \"he\"}, \"weight_decay\": 0.001,\n"
             " %s\n"
             " \"train\": {\"optimizer\": \"momentum\", \"momentum\": 0.9, \"lr\": 0.05, \"steps\": 300, \"batch\": 16,"
             " \"seed\": 3, \"log_every\": 50}}\n", x, y, extra);
    path_join(p, dir, name);
    write_text(p, text);
}

static void setup(char *dir)
{
    tmpdir_new(dir);
    write_data(dir, "x.npy", N_SAMPLES, -1);
    write_spec(dir, "spec.json", "x.npy", "y.npy", "");
}

/* noether ARGS on np ranks (np 1: no mpirun) expecting exit 0; stdout (malloc'd) */
static char *ok(int np, const char *args)
{
    char *out, *err;
    int rc = np == 1 ? run_noether(args, &out, &err) : run_mpi(np, args, &out, &err);
    cr_assert_eq(rc, 0, "-np %d noether %s: exit %d: %s", np, args, rc, err);
    free(err);
    return out;
}

static cJSON *ok_json(int np, const char *args)
{
    char *out = ok(np, args);
    cJSON *doc = cJSON_Parse(out);
    cr_assert_not_null(doc, "not JSON: %s", out);
    free(out);
    return doc;
}

static nt_array npy(const char *dir, const char *name)
{
    char p[NT_PATH_MAX];
    nt_array a;
    nt_error err;
    path_join(p, dir, name);
    cr_assert_eq(nt_npy_read(p, &a, &err), NT_OK, "%s", err.msg);
    return a;
}

/* |a - b| / |a| over two arrays of one shape */
static double reldiff(const nt_array *a, const nt_array *b)
{
    cr_assert_eq(a->size, b->size);
    double num = 0, den = 0;
    for (int64_t i = 0; i < a->size; i++) {
        num += (a->data[i] - b->data[i]) * (a->data[i] - b->data[i]);
        den += a->data[i] * a->data[i];
    }
    return sqrt(num / den);
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(a), 1e-300); }

Test(mpi, grad_and_hvp_equal_one_process_on_uneven_shards, .timeout = 300)
{
    NEED_MPI();
    char dir[256], args[4 * NT_PATH_MAX];
    setup(dir);
    double V[3 * 66];
    fill_normal(V, 3 * 66, 1.0, 5);
    char vp[NT_PATH_MAX];
    path_join(vp, dir, "V.npy");
    int64_t sv[2] = {3, 66};
    nt_error err;
    cr_assert_eq(nt_npy_write(vp, V, 2, sv, &err), NT_OK, "%s", err.msg);
    cJSON *g[4], *h[4];
    for (int np = 1; np <= 3; np++) {
        snprintf(args, sizeof args, "grad %s/spec.json --json --out %s/g%d.npy", dir, dir, np);
        g[np] = ok_json(np, args);
        snprintf(args, sizeof args, "hvp %s/spec.json --vectors %s --json --out %s/hv%d.npy", dir, vp, dir, np);
        h[np] = ok_json(np, args);
        cr_assert_eq(json_num(g[np], "ranks"), np);
        cr_assert_eq(json_num(h[np], "ranks"), np);
        cr_assert_eq(json_num(g[np], "n"), N_SAMPLES, "n is the whole set's under -np %d", np);
    }
    nt_array g1 = npy(dir, "g1.npy"), hv1 = npy(dir, "hv1.npy");
    for (int np = 2; np <= 3; np++) {
        char name[32];
        snprintf(name, sizeof name, "g%d.npy", np);
        nt_array gn = npy(dir, name);
        snprintf(name, sizeof name, "hv%d.npy", np);
        nt_array hvn = npy(dir, name);
        double dl = rel(json_num(g[1], "loss"), json_num(g[np], "loss")), dg = reldiff(&g1, &gn), dh = reldiff(&hv1, &hvn);
        cr_log_info("-np %d: loss %.1e, gradient %.1e, H V %.1e relative to one process", np, dl, dg, dh);
        cr_assert_lt(dl, 1e-12);
        cr_assert_lt(dg, 1e-12);
        cr_assert_lt(dh, 1e-12);
        nt_array_free(&gn);
        nt_array_free(&hvn);
    }
    /* negative control: rank 0's shard of 2 (rows 0..49) alone is not the whole set */
    write_data(dir, "x_part.npy", 50, -1);
    write_spec(dir, "part.json", "x_part.npy", "y_part.npy", "");
    snprintf(args, sizeof args, "grad %s/part.json --out %s/gp.npy", dir, dir);
    free(ok(1, args));
    nt_array gp = npy(dir, "gp.npy");
    cr_assert_gt(reldiff(&g1, &gp), 1e-3, "one shard's gradient equals the whole set's: the comparison proves nothing");
    nt_array_free(&gp);
    nt_array_free(&g1);
    nt_array_free(&hv1);
    for (int np = 1; np <= 3; np++) { cJSON_Delete(g[np]); cJSON_Delete(h[np]); }
}

static void numbers(const cJSON *doc, const char *key, double *x, int n)
{
    const cJSON *a = cJSON_GetObjectItem(doc, key);
    cr_assert(cJSON_IsArray(a) && cJSON_GetArraySize(a) == n, "%s: want %d numbers", key, n);
    for (int i = 0; i < n; i++) x[i] = cJSON_GetArrayItem(a, i)->valuedouble;
}

Test(mpi, spectrum_ends_equal_one_process, .timeout = 300)
{
    NEED_MPI();
    char dir[256], args[2 * NT_PATH_MAX];
    setup(dir);
    const char *methods[2] = {"dense", "lanczos"};
    for (int m = 0; m < 2; m++) {
        double ends[4][6];
        for (int np = 1; np <= 3; np++) {
            snprintf(args, sizeof args, "spectrum %s/spec.json --top 3 --bottom 3 --method %s --json", dir, methods[m]);
            cJSON *doc = ok_json(np, args);
            cr_assert_eq(json_num(doc, "ranks"), np);
            numbers(doc, "top", ends[np], 3);
            numbers(doc, "bottom", ends[np] + 3, 3);
            cJSON_Delete(doc);
        }
        /* relative to the largest |eigenvalue|: the bottom end sits near 0 */
        double scale = fabs(ends[1][0]), worst = 0;
        for (int np = 2; np <= 3; np++)
            for (int i = 0; i < 6; i++) worst = fmax(worst, fabs(ends[np][i] - ends[1][i]) / scale);
        cr_log_info("spectrum (%s): both ends on 2 and 3 ranks within %.1e of one process (relative to lambda_max %.4g)",
                    methods[m], worst, ends[1][0]);
        cr_assert_lt(worst, 1e-12);
    }
}

/* user-declared transformations that are no symmetry (a random generator, a random
 * permutation of theta) beside the catalogue: residuals of order 1 to compare, not round-off */
static void write_fakes(const char *dir)
{
    const int64_t d = 66;
    double *A = malloc(sizeof(double) * (size_t)(d * d)), *T = calloc((size_t)(d * d), sizeof(double));
    fill_normal(A, d * d, 0.1, 9);
    int64_t perm[66];
    for (int64_t i = 0; i < d; i++) perm[i] = i;
    for (int64_t i = d - 1; i > 0; i--) {
        int64_t j = (int64_t)(nt_rand_u64(11, 0, (uint64_t)i) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int64_t i = 0; i < d; i++) T[i * d + perm[i]] = 1;
    char p[NT_PATH_MAX];
    nt_error err;
    int64_t s[2] = {d, d};
    path_join(p, dir, "A.npy");
    cr_assert_eq(nt_npy_write(p, A, 2, s, &err), NT_OK, "%s", err.msg);
    path_join(p, dir, "T.npy");
    cr_assert_eq(nt_npy_write(p, T, 2, s, &err), NT_OK, "%s", err.msg);
    free(A);
    free(T);
    write_spec(dir, "fakes.json", "x.npy", "y.npy",
               "\"transformations\": [{\"name\": \"fake_flow\", \"kind\": \"continuous\", \"generator\": \"A.npy\"},"
               " {\"name\": \"fake_map\", \"kind\": \"discrete\", \"matrix\": \"T.npy\"}],");
}

Test(mpi, check_residuals_equal_one_process, .timeout = 300)
{
    NEED_MPI();
    char dir[256], args[2 * NT_PATH_MAX];
    setup(dir);
    write_fakes(dir);
    snprintf(args, sizeof args, "check %s/fakes.json --json", dir);
    char *out, *err;
    cJSON *doc[4];
    for (int np = 1; np <= 3; np++) {   /* exit 3: the fakes do not hold (the negative control) */
        int rc = np == 1 ? run_noether(args, &out, &err) : run_mpi(np, args, &out, &err);
        cr_assert_eq(rc, 3, "-np %d: exit %d, want 3 (the fakes fail): %s", np, rc, err);
        doc[np] = cJSON_Parse(out);
        cr_assert_not_null(doc[np]);
        cr_assert_eq(json_num(doc[np], "ranks"), np);
        free(out);
        free(err);
    }
    const char *keys[4] = {"first_order_residual", "second_order_residual", "fixed_point_gradient_residual",
                           "s1_residual"};
    const cJSON *t1 = cJSON_GetObjectItem(doc[1], "transformations");
    int n = cJSON_GetArraySize(t1), large = 0;
    double worst_large = 0, worst_small = 0;
    for (int np = 2; np <= 3; np++) {
        const cJSON *tn = cJSON_GetObjectItem(doc[np], "transformations");
        cr_assert_eq(cJSON_GetArraySize(tn), n);
        for (int i = 0; i < n; i++) {
            const cJSON *a = cJSON_GetArrayItem(t1, i), *b = cJSON_GetArrayItem(tn, i);
            cr_assert_str_eq(cJSON_GetObjectItem(a, "name")->valuestring, cJSON_GetObjectItem(b, "name")->valuestring);
            cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(a, "holds")), cJSON_IsTrue(cJSON_GetObjectItem(b, "holds")),
                         "%s: holds differs on %d ranks", cJSON_GetObjectItem(a, "name")->valuestring, np);
            for (int k = 0; k < 4; k++) {
                const cJSON *x = cJSON_GetObjectItem(a, keys[k]), *y = cJSON_GetObjectItem(b, keys[k]);
                if (!cJSON_IsNumber(x)) continue;
                cr_assert(cJSON_IsNumber(y));
                /* a residual of order 1 is a number to reproduce; one at round-off (an identity
                 * that holds) is reproduced as round-off, below the tolerance on both sides */
                if (x->valuedouble > 1e-8) {
                    large++;
                    worst_large = fmax(worst_large, rel(x->valuedouble, y->valuedouble));
                } else {
                    worst_small = fmax(worst_small, y->valuedouble);
                }
            }
        }
    }
    cr_log_info("check: %d residuals above 1e-8 equal to %.1e relative on 2 and 3 ranks; the holding ones below %.1e",
                large, worst_large, worst_small);
    cr_assert_geq(large, 4, "the fakes give residuals of order 1");
    cr_assert_lt(worst_large, 1e-12);
    cr_assert_lt(worst_small, 1e-8);
    for (int np = 1; np <= 3; np++) cJSON_Delete(doc[np]);
}

/* the rows of ledger.csv as numbers (the header skipped; "nan" where a column has no value) */
static double *ledger(const char *dir, int *rows, int *cols, int *seconds)
{
    char p[NT_PATH_MAX];
    path_join(p, dir, "ledger.csv");
    char *text = read_file(p, &(size_t){0});
    cr_assert_not_null(text, "%s", p);
    double *x = NULL;
    int r = 0, c = 0, cap = 0;
    char *line = strchr(text, '\n');   /* past the header */
    const char *sec = strstr(text, ",seconds,");   /* the wall time's column, among the unquoted first ones */
    cr_assert(sec && sec < line);
    *seconds = 1;
    for (const char *q = text; q < sec; q++) *seconds += *q == ',';
    while (line && line[1]) {
        line++;
        int k = 0;
        for (char *f = line; f && *f != '\n'; k++) {
            if (r * 4096 + k >= cap) x = realloc(x, sizeof(double) * (size_t)(cap = 2 * cap + 8192));
            x[r * 4096 + k] = strtod(f, NULL);
            f = strpbrk(f, ",\n");
            if (f && *f == ',') f++;
            else break;
        }
        cr_assert(r == 0 || k == c, "row %d has %d fields, want %d", r, k, c);
        c = k;
        r++;
        line = strchr(line, '\n');
    }
    free(text);
    cr_assert(r > 0 && c <= 4096);
    *rows = r;
    *cols = c;
    return x;
}

static double params_diff(const char *a, const char *b)
{
    nt_array x = npy(a, "params_final.npy"), y = npy(b, "params_final.npy");
    double r = reldiff(&x, &y);
    nt_array_free(&x);
    nt_array_free(&y);
    return r;
}

Test(mpi, momentum_run_equals_one_process, .timeout = 300)
{
    NEED_MPI();
    char dir[256], args[2 * NT_PATH_MAX], o[4][NT_PATH_MAX];
    setup(dir);
    for (int np = 1; np <= 3; np++) {
        char name[16];
        snprintf(name, sizeof name, "o%d", np);
        path_join(o[np], dir, name);
        snprintf(args, sizeof args, "train %s/spec.json -o %s --quiet", dir, o[np]);
        free(ok(np, args));
    }
    int r1, c1, sec;
    double *L1 = ledger(o[1], &r1, &c1, &sec);
    for (int np = 2; np <= 3; np++) {
        int rn, cn;
        double *Ln = ledger(o[np], &rn, &cn, &sec), worst = 0;
        cr_assert(rn == r1 && cn == c1);
        /* every column of every logged row (step, losses, accuracy, the ledger's quantities) but
         * the wall time, relative to the column's scale, or absolute below 1 (columns at
         * round-off, such as the ledger's gaps of 1e-16, carry the order of their sums) */
        for (int j = 0; j < c1; j++) {
            if (j == sec) continue;
            double scale = 1;
            for (int i = 0; i < r1; i++) if (!isnan(L1[i * 4096 + j])) scale = fmax(scale, fabs(L1[i * 4096 + j]));
            for (int i = 0; i < r1 && scale > 0; i++) {
                double a = L1[i * 4096 + j], b = Ln[i * 4096 + j];
                if (j == 0) cr_assert_eq(a, b);
                cr_assert_eq(isnan(a), isnan(b), "ledger row %d column %d: %g and %g", i, j, a, b);
                if (!isnan(a)) worst = fmax(worst, fabs(a - b) / scale);
            }
        }
        double dp = params_diff(o[1], o[np]);
        cr_log_info("300 momentum steps on %d ranks: parameters %.1e, ledger columns %.1e relative to one process", np,
                    dp, worst);
        cr_assert_lt(dp, 1e-10);
        cr_assert_lt(worst, 1e-10);
        free(Ln);
    }
    free(L1);
}

/* SIGTERM to every process whose parent is `parent` (mpirun's ranks are its children); the count */
static int signal_children(pid_t parent)
{
    DIR *d = opendir("/proc");
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[300], comm[64];
        int pid, ppid;
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fscanf(f, "%d (%63[^)]) %*c %d", &pid, comm, &ppid) == 3 && ppid == parent && kill(pid, SIGTERM) == 0) n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* mpirun -np np noether ARGV..., SIGTERM to the ranks once `file` exists; the exit status.
 * The ranks are signalled themselves: mpirun forwards a signal late (up to a second seen),
 * by which time a short run may have ended. */
static int mpirun_stopped_at(int np, const char *spec, const char *dir, const char *file)
{
    char nps[8];
    snprintf(nps, sizeof nps, "%d", np);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[512];
        snprintf(opts, sizeof opts, "%s%sdetect_leaks=0", asan ? asan : "", asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
        execlp("mpirun", "mpirun", "--oversubscribe", "-np", nps, NOETHER_BIN, "train", spec, "-o", dir, "--quiet",
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 60000 && access(file, F_OK) != 0; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        usleep(1000);
    }
    cr_assert_gt(signal_children(pid), 0, "no rank of mpirun to signal");
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(mpi, checkpoint_of_two_ranks_resumes_on_three_and_on_one, .timeout = 600)
{
    NEED_MPI();
    char dir[256], args[3 * NT_PATH_MAX], spec[NT_PATH_MAX], whole[NT_PATH_MAX], ck[NT_PATH_MAX];
    tmpdir_new(dir);
    write_data(dir, "x.npy", N_SAMPLES, -1);
    /* long enough that SIGTERM lands mid-run: 400000 steps (~2.8 s here; the signal reaches
     * the ranks within milliseconds of the first checkpoint, at step 4000, unless this process
     * is not scheduled for seconds, as a loaded CI machine once did: then the run is tried
     * again, in a folder of its own) */
    write_spec(dir, "spec.json", "x.npy", "y.npy", "");
    path_join(spec, dir, "spec.json");
    char *text = read_file(spec, &(size_t){0});
    char *at = strstr(text, "\"steps\": 300");
    cr_assert_not_null(at);
    char fixed[2048];
    snprintf(fixed, sizeof fixed, "%.*s\"steps\": 400000, \"checkpoint_every\": 4000%s", (int)(at - text), text,
             at + strlen("\"steps\": 300"));
    write_text(spec, fixed);
    free(text);
    path_join(whole, dir, "whole");
    snprintf(args, sizeof args, "train %s -o %s --quiet", spec, whole);
    free(ok(1, args));
    for (int to = 3; to >= 1; to -= 2) {
        char out[NT_PATH_MAX], name[16];
        int rc = 0;
        for (int attempt = 0; attempt < 5 && rc == 0; attempt++) {
            snprintf(name, sizeof name, "r%d_%d", to, attempt);
            path_join(out, dir, name);
            path_join(ck, out, "checkpoint.bin");
            rc = mpirun_stopped_at(2, spec, out, ck);
            if (rc == 0) cr_log_warn("attempt %d: the 2-rank run ended before the signal; again", attempt + 1);
        }
        cr_assert_neq(rc, 0, "the 2-rank run ended before the signal, 5 times");
        cr_assert_eq(access(ck, F_OK), 0, "no checkpoint left by the 2-rank run");
        snprintf(args, sizeof args, "train %s -o %s --resume --quiet", spec, out);
        free(ok(to, args));
        cJSON *s = json_file(out, "summary.json");
        double from = json_num(s, "resumed_from");
        cJSON_Delete(s);
        double dp = params_diff(whole, out);
        cr_log_info("stopped on 2 ranks at step %.0f, resumed on %d: parameters %.1e relative to one uninterrupted process",
                    from, to, dp);
        cr_assert(from > 0 && from < 400000);
        cr_assert_lt(dp, 1e-10);
    }
}

/* synchronized batch normalization: the statistics of every shard's rows (examples/
 * batchnorm_wine.json, two batch norms, 134 samples); training in batches of 8 over 3 ranks
 * (batches of which a rank holds no row among them) */
Test(mpi, batch_norm_synchronized_equals_one_process, .timeout = 300)
{
    NEED_MPI();
    char dir[256], args[3 * NT_PATH_MAX], spec[NT_PATH_MAX], vp[NT_PATH_MAX];
    tmpdir_new(dir);
    snprintf(spec, sizeof spec, "%s/examples/batchnorm_wine.json", NOETHER_SOURCE_DIR);
    cJSON *g1 = NULL;
    {
        snprintf(args, sizeof args, "grad %s --json", spec);
        g1 = ok_json(1, args);
    }
    const int64_t d = (int64_t)json_num(g1, "d");
    double *V = malloc(sizeof(double) * (size_t)(2 * d));
    fill_normal(V, 2 * d, 1.0, 13);
    path_join(vp, dir, "V.npy");
    nt_error err;
    cr_assert_eq(nt_npy_write(vp, V, 2, (int64_t[]){2, d}, &err), NT_OK, "%s", err.msg);
    free(V);
    for (int np = 1; np <= 3; np++) {
        snprintf(args, sizeof args, "grad %s --out %s/g%d.npy", spec, dir, np);
        free(ok(np, args));
        snprintf(args, sizeof args, "hvp %s --vectors %s --out %s/hv%d.npy", spec, vp, dir, np);
        free(ok(np, args));
    }
    nt_array ga = npy(dir, "g1.npy"), ha = npy(dir, "hv1.npy");
    for (int np = 2; np <= 3; np++) {
        char name[32];
        snprintf(name, sizeof name, "g%d.npy", np);
        nt_array gb = npy(dir, name);
        snprintf(name, sizeof name, "hv%d.npy", np);
        nt_array hb = npy(dir, name);
        double dg = reldiff(&ga, &gb), dh = reldiff(&ha, &hb);
        cr_log_info("batch norm on %d ranks: gradient %.1e, H V %.1e relative to one process", np, dg, dh);
        cr_assert_lt(dg, 1e-12);
        cr_assert_lt(dh, 1e-12);
        nt_array_free(&gb);
        nt_array_free(&hb);
    }
    /* negative control: without synchronization each shard normalizes with its own statistics;
     * the count-weighted mean of the two shards' gradients (a plain reduction) is not the set's */
    nt_spec sp;
    cr_assert_eq(nt_spec_load(spec, &sp, &err), NT_OK, "%s", err.msg);
    double *theta = malloc(sizeof(double) * (size_t)d), *gs = calloc((size_t)d, sizeof(double));
    double *gr = malloc(sizeof(double) * (size_t)d);
    cr_assert_eq(nt_spec_theta(&sp, NULL, 0, theta, &err), NT_OK, "%s", err.msg);
    int64_t total = 0;
    for (int part = 0; part < 2; part++) {
        nt_data data;
        cr_assert_eq(nt_data_load(&sp, &data, &err), NT_OK, "%s", err.msg);
        cr_assert_eq(nt_data_shard(&data, part, 2, &err), NT_OK, "%s", err.msg);
        nt_engine *e = nt_engine_new(&sp.model, data.train.n, 1);
        double loss;
        cr_assert_eq(nt_grad(e, theta, &data.train, &loss, gr, &err), NT_OK, "%s", err.msg);
        for (int64_t i = 0; i < d; i++) gs[i] += (double)data.train.n * gr[i];
        total += data.train.n;
        nt_engine_free(e);
        nt_data_free(&data);
    }
    for (int64_t i = 0; i < d; i++) gs[i] /= (double)total;
    nt_array plain = { .ndim = 1, .shape = {d}, .size = d, .data = gs };
    const double unsynced = reldiff(&ga, &plain);
    cr_log_info("batch norm with each shard's own statistics: gradient %.1e from the whole set's", unsynced);
    cr_assert_gt(unsynced, 1e-3);
    free(theta); free(gs); free(gr);
    nt_spec_free(&sp);
    cJSON_Delete(g1);
    nt_array_free(&ga);
    nt_array_free(&ha);
    /* minibatches of 8 over 3 ranks: momentum, 300 steps */
    char tspec[NT_PATH_MAX];
    path_join(tspec, dir, "bn_sgd.json");
    char *text = read_file(spec, &(size_t){0});
    char *at = strstr(text, "\"train\":");
    cr_assert_not_null(at);
    char *end = strstr(at, "},");
    cr_assert_not_null(end);
    char buf[4096];
    snprintf(buf, sizeof buf, "%.*s\"train\": {\"optimizer\": \"momentum\", \"momentum\": 0.9, \"lr\": 0.05, \"steps\": 300, "
             "\"batch\": 8, \"seed\": 2, \"log_every\": 50%s", (int)(at - text), text, end);
    write_text(tspec, buf);
    free(text);
    char o1[NT_PATH_MAX], o3[NT_PATH_MAX];
    path_join(o1, dir, "t1");
    path_join(o3, dir, "t3");
    snprintf(args, sizeof args, "train %s -o %s --quiet", tspec, o1);
    free(ok(1, args));
    snprintf(args, sizeof args, "train %s -o %s --quiet", tspec, o3);
    free(ok(3, args));
    double dp = params_diff(o1, o3);
    cr_log_info("batch norm, 300 momentum steps in batches of 8 on 3 ranks: parameters %.1e relative to one process", dp);
    cr_assert_lt(dp, 1e-10);
}

Test(mpi, nan_in_one_ranks_shard_ends_every_rank, .timeout = 120)
{
    NEED_MPI();
    char dir[256], args[2 * NT_PATH_MAX];
    setup(dir);
    write_data(dir, "xbad.npy", N_SAMPLES, 90);   /* row 90: rank 2's of 3 (rows 67..100) */
    write_spec(dir, "bad.json", "xbad.npy", "y.npy", "");
    snprintf(args, sizeof args, "grad %s/bad.json", dir);
    char *out, *err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = run_mpi(3, args, &out, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cr_log_info("a NaN in rank 2's rows: every rank ended with exit %d after %.1f s", rc, secs);
    cr_assert_eq(rc, 2, "exit %d: %s", rc, err);
    cr_assert_lt(secs, 10);
    cr_assert_str_empty(out);
    const char *line = err;   /* one line: rank 0's, naming rank 2's fault */
    cr_assert(strncmp(err, "noether grad: ", 14) == 0 && strchr(err, '\n') == err + strlen(err) - 1,
              "stderr is not noether's one line: '%s'", err);
    cr_assert_not_null(strstr(line, "xbad.npy"), "%s", line);
    cr_assert_not_null(strstr(line, "row 90"), "%s", line);
    free(out);
    free(err);
    snprintf(args, sizeof args, "grad %s/spec.json", dir);
    free(ok(3, args));   /* control: the same job without the NaN */
}

Test(mpi, info_names_the_ranks_and_their_shards, .timeout = 120)
{
    NEED_MPI();
    char dir[256], args[2 * NT_PATH_MAX];
    setup(dir);
    snprintf(args, sizeof args, "info %s/spec.json --json", dir);
    for (int np = 1; np <= 3; np += 2) {
        cJSON *doc = ok_json(np, args);
        const cJSON *data = cJSON_GetObjectItem(doc, "data"), *shards = cJSON_GetObjectItem(data, "shards");
        cr_assert_eq(json_num(data, "ranks"), np);
        cr_assert_eq(json_num(data, "train"), N_SAMPLES);
        cr_assert_eq(cJSON_GetArraySize(shards), np);
        int64_t sum = 0;
        for (int r = 0; r < np; r++) {   /* balanced: within one of N / np, adding up to N */
            double c = cJSON_GetArrayItem(shards, r)->valuedouble;
            cr_assert(fabs(c - (double)N_SAMPLES / np) < 1, "rank %d of %d holds %g rows", r, np, c);
            sum += (int64_t)c;
        }
        cr_assert_eq(sum, N_SAMPLES);
        cJSON_Delete(doc);
    }
    snprintf(args, sizeof args, "info %s/spec.json", dir);
    char *out = ok(3, args);
    cr_assert_not_null(strstr(out, "ranks:   3 (training samples per rank: 33, 34, 34)"), "%s", out);
    free(out);
}

/* noether run on 2 ranks: one set of outputs (rank 0's), the same numbers as one process */
Test(mpi, run_on_two_ranks_equals_one_process, .timeout = 600)
{
    NEED_MPI();
    char dir[256], args[3 * NT_PATH_MAX], o1[NT_PATH_MAX], o2[NT_PATH_MAX];
    tmpdir_new(dir);
    write_data(dir, "x.npy", N_SAMPLES, -1);
    write_spec(dir, "spec.json", "x.npy", "y.npy", "\"analysis\": {\"every\": 150, \"spectrum\": {\"top\": 3, \"bottom\": 3}},");
    path_join(o1, dir, "one");
    path_join(o2, dir, "two");
    snprintf(args, sizeof args, "run %s/spec.json -o %s --quiet", dir, o1);
    free(ok(1, args));
    snprintf(args, sizeof args, "run %s/spec.json -o %s --quiet", dir, o2);
    char *out = ok(2, args);
    free(out);
    cJSON *a = json_file(o1, "summary.json"), *b = json_file(o2, "summary.json");
    const cJSON *aa = cJSON_GetObjectItem(a, "analysis"), *ab = cJSON_GetObjectItem(b, "analysis");
    cr_assert(aa && ab);
    double dl = rel(json_num(a, "final_loss"), json_num(b, "final_loss"));
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(aa, "all_identities_hold")),
                 cJSON_IsTrue(cJSON_GetObjectItem(ab, "all_identities_hold")));
    cJSON *sa = json_file(o1, "spectrum.json"), *sb = json_file(o2, "spectrum.json");
    double ea[6], eb[6], worst = 0;
    numbers(sa, "top", ea, 3);
    numbers(sa, "bottom", ea + 3, 3);
    numbers(sb, "top", eb, 3);
    numbers(sb, "bottom", eb + 3, 3);
    for (int i = 0; i < 6; i++) worst = fmax(worst, fabs(ea[i] - eb[i]) / fabs(ea[0]));
    cr_assert_eq(json_num(sb, "ranks"), 2);
    cr_log_info("run on 2 ranks: final loss %.1e, final spectrum ends %.1e relative to one process", dl, worst);
    cr_assert_lt(dl, 1e-10);
    cr_assert_lt(worst, 1e-10);
    char p[NT_PATH_MAX];
    path_join(p, o2, "report.html");
    cr_assert_eq(access(p, F_OK), 0, "rank 0 wrote the report");
    path_join(p, o2, "checkpoint.bin");
    cr_assert_neq(access(p, F_OK), 0, "the finished run's checkpoint is removed");
    cJSON_Delete(a); cJSON_Delete(b); cJSON_Delete(sa); cJSON_Delete(sb);
}

/* Fashion-MNIST's gzipped IDX read as shards (each rank holds its rows only): the gradient of
 * one process, and the description of the whole set */
Test(mpi, idx_shards_equal_one_process, .timeout = 300)
{
    NEED_MPI();
    char dir[256], spec[NT_PATH_MAX], args[3 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "fashion.json");
    write_text(spec,
               "{\"model\": {\"input\": 784, \"layers\": [{\"dense\": 16}, {\"act\": \"relu\"}, {\"dense\": 10}],"
               " \"loss\": \"cross_entropy\"},\n"
               " \"data\": {\"source\": \"idx\", \"images\": \"/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz\","
               " \"labels\": \"/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz\", \"limit\": 101},\n"
               " \"init\": {\"seed\": 0, \"scheme\": \"he\"}, \"weight_decay\": 0.0001}\n");
    for (int np = 1; np <= 3; np += 2) {
        snprintf(args, sizeof args, "grad %s --out %s/g%d.npy", spec, dir, np);
        free(ok(np, args));
    }
    nt_array a = npy(dir, "g1.npy"), b = npy(dir, "g3.npy");
    const double dg = reldiff(&a, &b);
    cr_log_info("Fashion-MNIST IDX in shards of 33, 34, 34: gradient %.1e relative to one process", dg);
    cr_assert_lt(dg, 1e-12);
    nt_array_free(&a);
    nt_array_free(&b);
    snprintf(args, sizeof args, "info %s", spec);
    char *out = ok(3, args);
    cr_assert_not_null(strstr(out, "idx: 101 train"), "%s", out);
    cr_assert_not_null(strstr(out, "ranks:   3 (training samples per rank: 33, 34, 34)"), "%s", out);
    free(out);
}
