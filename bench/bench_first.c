/* bench_first.c: `make bench`, the first command a curvature user runs: "the top eigenvalues
 * of my trained network", as a user runs it (the built binary, no environment set: OpenBLAS
 * picks its kernel and noether corrects a generic fallback, src/util/blas.c), against the
 * peer most users meet first (PyHessian's power iteration with deflation over PyTorch,
 * bench/bench_pyhessian.py), on the same trained theta of the MLP 784-256-256-10 and 1024
 * Fashion-MNIST images.  Also: the BLAS kernel and the dgemm peak it reaches (the generic
 * fallback, as the user's environment gives it, as this process runs), and the peak
 * resident memory of each command (GNU time) beside its floor: the data, theta and the
 * vectors the command must hold, the layers' per-sample values it keeps (forward values and
 * adjoints; their tangents for products) and, for the spectrum, the Lanczos basis. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cjson/cJSON.h>
#include "noether.h"

#define N_FIRST 1024
#define TOP 5

typedef struct { double seconds, mb; int status; } proc;

/* CMD under GNU time (which forks it from its own small process, so the peak resident
 * memory is the command's alone, not a copy of this one's): wall time, peak memory, status */
static proc run_proc(const char *cmd)
{
    char tf[] = "/tmp/noether-bench-time-XXXXXX", *full;
    int fd = mkstemp(tf);
    if (fd < 0) return (proc){ 0, 0, -1 };
    close(fd);
    if (asprintf(&full, "/usr/bin/time -q -o %s -f '%%e %%M' sh -c \"exec %s\"", tf, cmd) < 0) return (proc){ 0, 0, -1 };
    fflush(stdout);
    int st = system(full);
    free(full);
    proc p = { 0, 0, WIFEXITED(st) ? WEXITSTATUS(st) : -1 };
    FILE *f = fopen(tf, "r");
    double kb = 0;
    if (!f || fscanf(f, "%lf %lf", &p.seconds, &kb) != 2) p.status = -1;
    if (f) fclose(f);
    unlink(tf);
    p.mb = kb / 1024;
    return p;
}

/* the "key value" lines of a file */
static const char *kv_get(const char *text, const char *key, char *buf, size_t cap)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, key, n) && p[n] == ' ') {
            size_t len = strcspn(p + n + 1, "\n");
            snprintf(buf, cap, "%.*s", (int)(len < cap - 1 ? len : cap - 1), p + n + 1);
            return buf;
        }
    return NULL;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    s[fread(s, 1, (size_t)n, f)] = 0;
    fclose(f);
    return s;
}

/* the dgemm peak (and kernel) of noether-bench run as a child under env */
static void dgemm_row(const char *self, const char *env, const char *label, FILE *csv, const char *key)
{
    char cmd[2 * NT_PATH_MAX], out[64] = "/tmp/noether-bench-dgemm-XXXXXX", k[64] = "", g[64] = "";
    int fd = mkstemp(out);
    if (fd < 0) return;
    close(fd);
    snprintf(cmd, sizeof cmd, "env %s '%s' --dgemm > %s", env, self, out);
    run_proc(cmd);
    char *text = slurp(out);
    unlink(out);
    if (text && kv_get(text, "kernel", k, sizeof k) && kv_get(text, "dgemm_gflops", g, sizeof g)) {
        printf("   dgemm peak %-34s kernel %-12s %7.1f GFLOP/s\n", label, k, atof(g));
        if (csv) fprintf(csv, "%s,%s,GFLOP/s\n", key, g);
    }
    free(text);
}

void bench_first(const char *src, const char *self, const char *bin, FILE *csv)
{
    nt_blas_info b;
    nt_blas_info_get(&b);
    printf("\n   The first command: noether spectrum --top %d of a trained MLP 784-256-256-10, %d Fashion-MNIST images,\n"
           "   as a user runs it (no environment set), against PyHessian's method over PyTorch\n", TOP, N_FIRST);
    printf("   BLAS kernel of this process: %s (%s)\n", b.kernel,
           b.selected ? "selected by noether" : b.user_set ? "set by OPENBLAS_CORETYPE" : "chosen by OpenBLAS");
    dgemm_row(self, "OPENBLAS_CORETYPE=Prescott", "(OpenBLAS's generic fallback)", csv, "dgemm_gflops_generic");
    dgemm_row(self, "-u OPENBLAS_CORETYPE -u NOETHER_BLAS_FALLBACK", "(no environment: what a user gets)", csv,
              "dgemm_gflops_user");
    dgemm_row(self, "", "(this environment)", csv, "dgemm_gflops_here");

    char dir[] = "/tmp/noether-first-XXXXXX", spec[NT_PATH_MAX], params[NT_PATH_MAX + 32], cmd[8 * NT_PATH_MAX];
    if (!mkdtemp(dir)) return;
    snprintf(spec, sizeof spec, "%s/spec.json", dir);
    FILE *f = fopen(spec, "w");
    if (!f) return;
    fprintf(f, "{\"model\": {\"input\": 784, \"layers\": [{\"dense\": 256}, {\"act\": \"relu\"}, {\"dense\": 256}, {\"act\": \"relu\"},"
               " {\"dense\": 10}], \"loss\": \"cross_entropy\"},\n"
               " \"data\": {\"source\": \"idx\", \"images\": \"/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz\","
               " \"labels\": \"/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz\", \"limit\": %d},\n"
               " \"init\": {\"seed\": 0, \"scheme\": \"he\", \"bias_std\": 0.1},\n"
               " \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"steps\": 600, \"batch\": 64, \"seed\": 0}}\n", N_FIRST);
    fclose(f);
    /* a trained theta */
    snprintf(cmd, sizeof cmd, "'%s' train '%s' -o '%s/train' --quiet > /dev/null", bin, spec, dir);
    proc tr = run_proc(cmd);
    snprintf(params, sizeof params, "%s/train/params_final.npy", dir);
    if (tr.status != 0) { printf("   (training failed: exit %d)\n", tr.status); return; }

    /* the floors, from the library: the data, theta, the engines the commands build */
    nt_spec s;
    nt_data data;
    nt_error err = {0};
    nt_array th = {0};
    if (nt_spec_load(spec, &s, &err) || nt_data_load(&s, &data, &err) || nt_npy_read(params, &th, &err)) {
        printf("   (%s)\n", err.msg);
        return;
    }
    const int64_t d = s.model.d;
    /* one set of per-sample values of every layer (forward values, adjoints, tangents or
     * adjoint-tangents: the engine keeps up to four) over the data set */
    int64_t widths = 0;
    for (int l = 0, w = s.model.input; l < s.model.n_layers; l++) {
        if (s.model.layers[l].kind == NT_LAYER_DENSE) w = s.model.layers[l].units;
        widths += w;
    }
    const double MB = 1048576.0, vec = 8.0 * d / MB, set = 8.0 * N_FIRST * widths / MB,
                 data_mb = 8.0 * data.train.n * (data.train.dim + data.train.ydim) / MB;
    /* the basis nt_eigen_lanczos keeps for the top end: its thick-restart Lanczos at this n
     * (blocks of 1; src/spectrum/lanczos.c, block_lanczos.c) */
    nt_block_lanczos_opts bo;
    nt_block_lanczos_default(&(nt_operator){ .n = 269322, .block = 1 }, TOP, 1, &bo);
    const int ncv = bo.basis;
    char vpath[NT_PATH_MAX + 32];
    snprintf(vpath, sizeof vpath, "%s/v.npy", dir);
    double *v = malloc(sizeof(double) * d);
    for (int64_t i = 0; i < d; i++) v[i] = nt_rand_normal(11, 0, (uint64_t)i);
    int64_t shape[1] = {d};
    nt_npy_write(vpath, v, 1, shape, &err);
    free(v);

    struct { const char *name, *key, *args; double floor; const char *what; } cmds[] = {
        {"--version", "version", "--version", 0, "the process alone (libraries, OpenBLAS's buffers)"},
        {"info", "info", "info '%s'", data_mb, "the data"},
        {"grad", "grad", "grad '%s' --params '%s' --out '%s/g.npy'", data_mb + 2 * vec + 2 * set,
         "data, theta, g, the layers' values and adjoints"},
        {"hvp", "hvp", "hvp '%s' --params '%s' --vectors '%s/v.npy' --out '%s/hv.npy'", data_mb + 4 * vec + 4 * set,
         "data, theta, g, v, Hv, the layers' values, adjoints and their tangents"},
        {"spectrum --top 5", "spectrum", "spectrum '%s' --params '%s' --top 5 --json > '%s/spectrum.json'",
         data_mb + (4 + TOP + ncv) * vec + 4 * set,
         "data, theta, g, x, Hx, 5 Ritz vectors, the Lanczos basis, values and adjoints kept, their tangents"},
    };
    printf("\n   %-18s %9s %10s %10s   floor = %s\n", "command (as a user)", "seconds", "peak MB", "floor MB", "what must be held");
    proc first = {0};
    for (size_t c = 0; c < sizeof cmds / sizeof *cmds; c++) {
        char args[3 * NT_PATH_MAX];
        snprintf(args, sizeof args, cmds[c].args, spec, params, dir, dir);
        snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE -u NOETHER_BLAS_FALLBACK -u OPENBLAS_NUM_THREADS '%s' %s%s",
                 bin, args, strstr(args, ">") ? "" : " > /dev/null");
        proc p = run_proc(cmd);
        printf("   %-18s %9.2f %10.0f %10.0f   %s%s\n", cmds[c].name, p.seconds, p.mb, cmds[c].floor, cmds[c].what,
               p.status ? " (FAILED)" : "");
        if (csv) fprintf(csv, "first_%s_seconds,%.4g,s\nfirst_%s_peak_mb,%.1f,MB\nfirst_%s_floor_mb,%.1f,MB\n",
                         cmds[c].key, p.seconds, cmds[c].key, p.mb, cmds[c].key, cmds[c].floor);
        if (c == sizeof cmds / sizeof *cmds - 1) first = p;
    }
    /* noether's values and Lanczos time, from its JSON */
    char path[NT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/spectrum.json", dir);
    char *text = slurp(path);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    double mine[TOP] = {0}, lanczos = doc ? cJSON_GetObjectItem(doc, "seconds")->valuedouble : NAN;
    for (int i = 0; doc && i < TOP; i++) mine[i] = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "top"), i)->valuedouble;
    printf("   noether: top-%d %.6g .. %.6g, converged by ARPACK's test at machine epsilon; Lanczos %.2f s of the %.2f s\n",
           TOP, mine[0], mine[TOP - 1], lanczos, first.seconds);
    cJSON_Delete(doc);
    free(text);

    /* the peer, as a user runs it */
    snprintf(path, sizeof path, "%s/peer.txt", dir);
    snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE -u OPENBLAS_NUM_THREADS /usr/bin/python3 '%s/bench/bench_pyhessian.py' "
             "--images '%s' --labels '%s' --n %d --theta '%s' --k %d > '%s'", src, s.data.images, s.data.labels, N_FIRST,
             params, TOP, path);
    proc peer = run_proc(cmd);
    text = slurp(path);
    char buf[1024];
    if (!text || kv_get(text, "pyhessian_skip", buf, sizeof buf) || !kv_get(text, "pyhessian_values", buf, sizeof buf)) {
        printf("   PyHessian comparison skipped: %s\n", text && kv_get(text, "pyhessian_skip", buf, sizeof buf) ? buf : "no output");
    } else {
        double worst = 0, theirs[TOP];
        const char *at = buf;
        for (int i = 0; i < TOP && at; i++) {
            theirs[i] = atof(at);
            worst = fmax(worst, fabs(theirs[i] - mine[i]) / fabs(mine[0]));
            at = strchr(at, ',');
            at = at ? at + 1 : NULL;
        }
        char t[64], pr[64];
        kv_get(text, "pyhessian_seconds", t, sizeof t);
        kv_get(text, "pyhessian_products", pr, sizeof pr);
        printf("   PyHessian's method (power iteration, tol 1e-3): %.2f s as a process (%.2f s of eigenvalues, %d HVPs, "
               "%.0f MB); top-%d %.6g .. %.6g, off by up to %.1e of lambda_max\n",
               peer.seconds, atof(t), atoi(pr), peer.mb, TOP, theirs[0], theirs[TOP - 1], worst);
        printf("   the whole first command: noether %.2f s, peer %.2f s: noether takes %.2f of the peer's time (target <= 0.5)\n",
               first.seconds, peer.seconds, first.seconds / peer.seconds);
        if (csv) fprintf(csv, "peer_pyhessian_seconds,%.4g,s\npeer_pyhessian_eigen_seconds,%s,s\nfirst_over_peer,%.4g,ratio\n"
                         "peer_pyhessian_max_rel_error,%.3g,rel\n", peer.seconds, t, first.seconds / peer.seconds, worst);
    }
    free(text);
    nt_array_free(&th);
    nt_data_free(&data);
    nt_spec_free(&s);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
}
