/* helpers.c: see helpers.h. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include "helpers.h"

/* The tests run on the BLAS kernel the noether binary runs (src/util/blas.c), so that what
 * they compute in this process and what the binary computes agree to the bit on any CPU:
 * where OpenBLAS falls back to a generic kernel both move to the CPU's (glibc passes main's
 * arguments to constructors). */
__attribute__((constructor)) static void same_kernel_as_noether(int argc, char **argv)
{
    (void)argc;
    nt_blas_select(argv);
}

void tmpdir_new(char *buf)
{
    strcpy(buf, "/tmp/noether-test-XXXXXX");
    cr_assert_not_null(mkdtemp(buf), "mkdtemp failed");
}

void path_join(char *buf, const char *dir, const char *name)
{
    snprintf(buf, NT_PATH_MAX, "%s/%s", dir, name);
}

void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

int run_noether(const char *args, char **out, char **err)
{
    char dir[256], o[NT_PATH_MAX], e[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(o, dir, "stdout");
    path_join(e, dir, "stderr");
    size_t len = strlen(args) + 3 * NT_PATH_MAX;
    char *cmd = malloc(len);
    snprintf(cmd, len, "%s %s >%s 2>%s </dev/null", NOETHER_BIN, args, o, e);
    int st = system(cmd);
    free(cmd);
    if (out) *out = slurp(o);
    if (err) *err = slurp(e);
    remove(o);
    remove(e);
    remove(dir);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int run_mpi(int np, const char *args, char **out, char **err)
{
    /* as root Open MPI wants the two variables; more ranks than cores need --oversubscribe;
     * -q: no notice of mpirun's own after a non-zero exit (stderr is noether's); Open MPI's
     * own allocations are not noether's leaks (a sanitized build) */
    char dir[256], o[NT_PATH_MAX], e[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(o, dir, "stdout");
    path_join(e, dir, "stderr");
    size_t clen = strlen(args) + 3 * NT_PATH_MAX + 512;
    char *cmd = malloc(clen);
    snprintf(cmd, clen, "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 "
             "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" "
             "mpirun -q --oversubscribe -np %d %s %s >%s 2>%s </dev/null", np, NOETHER_BIN, args, o, e);
    int st = system(cmd);
    free(cmd);
    if (out) *out = slurp(o);
    if (err) *err = slurp(e);
    remove(o);
    remove(e);
    remove(dir);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void fill_normal(double *x, int64_t n, double scale, uint64_t stream)
{
    for (int64_t i = 0; i < n; i++) x[i] = scale * nt_rand_normal(12345, stream, (uint64_t)i);
}

void make_mlp(nt_model *m, int input, int n_hidden, const int *widths, nt_act act, int K,
              nt_loss loss, int bias, double wd)
{
    nt_layer L[2 * 8 + 1];
    int n = 0;
    for (int i = 0; i < n_hidden; i++) {
        L[n++] = (nt_layer){ .kind = NT_LAYER_DENSE, .units = widths[i], .bias = bias };
        L[n++] = (nt_layer){ .kind = NT_LAYER_ACT, .act = act, .alpha = 0.1 };
    }
    L[n++] = (nt_layer){ .kind = NT_LAYER_DENSE, .units = K, .bias = bias };
    nt_error err = {0};
    int rc = nt_model_init(m, input, L, n, loss, wd, &err);
    cr_assert_eq(rc, NT_OK, "model: %s", err.msg);
}

void make_data(nt_dataset *ds, const nt_model *m, int64_t n, uint64_t stream)
{
    const int K = m->output;
    ds->n = n;
    ds->dim = m->input;
    ds->ydim = m->loss == NT_LOSS_MSE ? K : 1;
    ds->x = malloc(sizeof(double) * (size_t)(n * ds->dim));
    ds->y = malloc(sizeof(double) * (size_t)(n * ds->ydim));
    fill_normal(ds->x, n * ds->dim, 1.0, stream);
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = nt_rand_u64(7, stream, (uint64_t)i);
        switch (m->loss) {
        case NT_LOSS_CROSS_ENTROPY: ds->y[i] = (double)(r % (uint64_t)K); break;
        case NT_LOSS_LOGISTIC:
        case NT_LOSS_EXPONENTIAL: ds->y[i] = (r & 1) ? 1.0 : -1.0; break;
        default:
            for (int k = 0; k < K; k++) ds->y[i * K + k] = nt_rand_normal(8, stream, (uint64_t)(i * K + k));
        }
    }
}

/* theta + t v into buf */
static void shift(int64_t d, const double *theta, const double *v, double t, double *buf)
{
    for (int64_t i = 0; i < d; i++) buf[i] = theta[i] + t * v[i];
}

double fd_loss_dir(nt_engine *e, int64_t d, const double *theta, const nt_dataset *ds,
                   const double *v, double h)
{
    double *buf = malloc(sizeof(double) * (size_t)d), f[4];
    const double t[4] = {2 * h, h, -h, -2 * h};
    for (int s = 0; s < 4; s++) { shift(d, theta, v, t[s], buf); f[s] = t_loss_value(e, buf, ds); }
    free(buf);
    return (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h);
}

void fd_grad_dir(nt_engine *e, int64_t d, const double *theta, const nt_dataset *ds,
                 const double *v, double h, double *out)
{
    double *buf = malloc(sizeof(double) * (size_t)d), *g = malloc(sizeof(double) * (size_t)d);
    const double t[4] = {2 * h, h, -h, -2 * h}, c[4] = {-1, 8, -8, 1};
    for (int64_t i = 0; i < d; i++) out[i] = 0;
    for (int s = 0; s < 4; s++) {
        shift(d, theta, v, t[s], buf);
        t_grad(e, buf, ds, g);
        for (int64_t i = 0; i < d; i++) out[i] += c[s] * g[i] / (12 * h);
    }
    free(buf);
    free(g);
}

void mf_new(model_fixture *f, int input, int n_hidden, const int *widths, nt_act act, int K, nt_loss loss,
                 int bias, double wd, int64_t n_samples, int64_t chunk, int k, uint64_t seed)
{
    make_mlp(&f->m, input, n_hidden, widths, act, K, loss, bias, wd);
    make_data(&f->ds, &f->m, n_samples, seed);
    f->e = nt_engine_new(&f->m, chunk, k);
    f->theta = malloc(sizeof(double) * (size_t)f->m.d);
    fill_normal(f->theta, f->m.d, 0.6, seed + 1);
    nt_catalogue(&f->m, &f->list, &f->n);
}

void mf_free(model_fixture *f)
{
    nt_transforms_free(f->list, f->n);
    free(f->theta);
    nt_engine_free(f->e);
    nt_dataset_free(&f->ds);
    nt_model_free(&f->m);
}

int spawn_noether(const char *const *argv, const char *out_path, const char *err_path)
{
    const char *args[64] = {NOETHER_BIN};
    int n = 1;
    while (argv[n - 1] && n < 63) { args[n] = argv[n - 1]; n++; }
    args[n] = NULL;
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed");
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        int in = open("/dev/null", O_RDONLY);
        int o = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || e < 0) _exit(127);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(NOETHER_BIN, (char *const *)args);
        _exit(127);
    }
    return (int)pid;
}

int wait_noether(int pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, got;
    char *s = malloc(cap + 1);
    while ((got = fread(s + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) s = realloc(s, (cap *= 2) + 1);
    }
    fclose(f);
    s[len] = 0;
    if (n) *n = len;
    return s;
}

/* The gradient coordinate by coordinate and H v on three directions against differences,
 * for a model of these layers on 13 samples of 5 features (chunks of 5), theta ~ N(0, scale^2). */
void fd_check_layers(const nt_layer *layers, int n_layers, nt_loss loss, double wd, uint64_t seed, double scale,
                     const char *label)
{
    fd_check_image((const int[3]){5, 0, 0}, layers, n_layers, loss, wd, seed, scale, label);
}

static void fd_check_model(nt_model m, uint64_t seed, double scale, const char *label);

void fd_check_image(const int image[3], const nt_layer *layers, int n_layers, nt_loss loss, double wd, uint64_t seed,
                    double scale, const char *label)
{
    nt_model m;
    nt_error err = {0};
    cr_assert_eq(nt_model_init_image(&m, image, layers, n_layers, loss, wd, &err), NT_OK, "%s", err.msg);
    fd_check_model(m, seed, scale, label);
}

void fd_check_sequence(int tokens, int features, const nt_layer *layers, int n_layers, nt_loss loss, double wd,
                       uint64_t seed, double scale, const char *label)
{
    nt_model m;
    nt_error err = {0};
    cr_assert_eq(nt_model_init_sequence(&m, tokens, features, layers, n_layers, loss, wd, &err), NT_OK, "%s", err.msg);
    fd_check_model(m, seed, scale, label);
}

/* gradient and 3 H v of m (13 samples, chunks of 5) against central differences */
static void fd_check_model(nt_model m, uint64_t seed, double scale, const char *label)
{
    nt_dataset ds;
    make_data(&ds, &m, 13, seed);
    const int64_t d = m.d;
    nt_engine *e = nt_engine_new(&m, 5, 3);
    double *theta = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * d), *fd = malloc(sizeof(double) * d);
    double *V = malloc(sizeof(double) * 3 * d), *HV = malloc(sizeof(double) * 3 * d), *unit = calloc((size_t)d, sizeof(double));
    fill_normal(theta, d, scale, seed + 1);
    fill_normal(V, 3 * d, 1.0, seed + 2);
    t_grad(e, theta, &ds, g);
    for (int64_t i = 0; i < d; i++) {
        unit[i] = 1;
        fd[i] = fd_loss_dir(e, d, theta, &ds, unit, 1e-5);
        unit[i] = 0;
    }
    double eg = nt_rel_diff(d, g, fd), eh = 0;
    t_hvp(e, theta, &ds, 3, V, HV, NULL);
    for (int j = 0; j < 3; j++) {
        fd_grad_dir(e, d, theta, &ds, V + j * d, 1e-5, fd);
        eh = fmax(eh, nt_rel_diff(d, HV + j * d, fd));
    }
    cr_expect_leq(eg, 1e-7, "gradient vs differences: %.2e", eg);
    cr_expect_leq(eh, 1e-7, "H v vs differences: %.2e", eh);
    cr_log_info("%s (seed %llu): gradient %.1e, H v %.1e relative to differences", label, (unsigned long long)seed, eg, eh);
    free(theta); free(g); free(fd); free(V); free(HV); free(unit);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}

int torch_available(void)
{
    return system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0;
}

void torch_diffs(const nt_model *m, const char *prelude, const char *net, const char *torch_loss, int64_t n, uint64_t seed,
                 double out[3])
{
    nt_dataset ds;
    make_data(&ds, m, n, seed);
    const int64_t d = m->d;
    double *theta = malloc(sizeof(double) * d), *v = malloc(sizeof(double) * d);
    double *g = malloc(sizeof(double) * d), *hv = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.5, seed + 1);
    fill_normal(v, d, 1.0, seed + 2);
    nt_engine *e = nt_engine_new(m, n, 1);
    double L = t_hvp(e, theta, &ds, 1, v, hv, g);
    char dir[256], p[6][NT_PATH_MAX];
    tmpdir_new(dir);
    const char *names[6] = {"theta.npy", "v.npy", "x.npy", "y.npy", "out.npy", "script.py"};
    for (int i = 0; i < 6; i++) path_join(p[i], dir, names[i]);
    nt_error err;
    int64_t sd[1] = {d}, sx[2] = {ds.n, ds.dim}, sy[2] = {ds.n, ds.ydim};
    cr_assert_eq(nt_npy_write(p[0], theta, 1, sd, &err), NT_OK);
    cr_assert_eq(nt_npy_write(p[1], v, 1, sd, &err), NT_OK);
    cr_assert_eq(nt_npy_write(p[2], ds.x, 2, sx, &err), NT_OK);
    cr_assert_eq(nt_npy_write(p[3], ds.y, 2, sy, &err), NT_OK);
    char script[8192];
    snprintf(script, sizeof script,
        "import numpy as np, torch\n"
        "torch.set_default_dtype(torch.float64)\n"
        "th, v = torch.tensor(np.load('%s')), torch.tensor(np.load('%s'))\n"
        "x, y = torch.tensor(np.load('%s')), torch.tensor(np.load('%s'))\n"
        "%s\n"
        "net = %s\n"
        "params = list(net.parameters())\n"
        "torch.nn.utils.vector_to_parameters(th, params)\n"
        "f = net(x)\n"
        "lossname = '%s'\n"
        "if lossname == 'mse': l = 0.5 * ((f - y) ** 2).sum(1).mean()\n"
        "elif lossname == 'ce': l = torch.nn.functional.cross_entropy(f, y[:, 0].long())\n"
        "elif lossname == 'logistic': l = torch.nn.functional.softplus(-y * f).mean()\n"
        "else: l = torch.exp(-y * f).mean()\n"
        "l = l + 0.5 * %.17g * sum((q ** 2).sum() for q in params)\n"
        "g = torch.autograd.grad(l, params, create_graph=True)\n"
        "gv = torch.cat([t.reshape(-1) for t in g])\n"
        "hv = torch.autograd.grad(gv @ v, params)\n"
        "np.save('%s', np.concatenate([[l.item()], gv.detach().numpy(), torch.cat([t.reshape(-1) for t in hv]).numpy()]))\n",
        p[0], p[1], p[2], p[3], prelude, net, torch_loss, m->weight_decay, p[4]);
    write_text(p[5], script);
    char cmd[NT_PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 /usr/bin/python3 %s", p[5]);
    cr_assert_eq(system(cmd), 0, "the PyTorch script failed");
    nt_array o = {0};
    cr_assert_eq(nt_npy_read(p[4], &o, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(o.size, 1 + 2 * d);
    out[0] = fabs(L - o.data[0]) / fabs(L);
    out[1] = nt_rel_diff(d, g, o.data + 1);
    out[2] = nt_rel_diff(d, hv, o.data + 1 + d);
    nt_array_free(&o);
    for (int i = 0; i < 6; i++) remove(p[i]);
    remove(dir);
    free(theta); free(v); free(g); free(hv);
    nt_engine_free(e);
    nt_dataset_free(&ds);
}

int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *x = read_file(a, &na), *y = read_file(b, &nb);
    cr_assert(x && y, "cannot read %s or %s", a, b);
    int same = na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

/* ledger.csv without its `seconds` column (the 9th field: before any quoted name) */
static char *without_seconds(const char *path)
{
    char *s = read_file(path, NULL), *out;
    cr_assert_not_null(s, "cannot read %s", path);
    cr_assert(!strncmp(s, "step,loss,loss_gamma,accuracy,test_loss,test_accuracy,norm2,margin,seconds,", 75),
              "%s: seconds is not the 9th column", path);
    out = malloc(strlen(s) + 1);
    size_t n = 0;
    for (char *line = s; *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line + 1) : strlen(line);
        char *p = line;
        for (int f = 0; f < 8; f++) p = strchr(p, ',') + 1;   /* start of field 9 */
        char *q = strchr(p, ',');
        memcpy(out + n, line, (size_t)(p - line));
        n += (size_t)(p - line);
        memcpy(out + n, q + 1, (size_t)(line + len - q - 1));
        n += (size_t)(line + len - q - 1);
        line += len;
    }
    out[n] = 0;
    free(s);
    return out;
}

int same_ledger(const char *a, const char *b)
{
    char *x = without_seconds(a), *y = without_seconds(b);
    int same = !strcmp(x, y);
    free(x);
    free(y);
    return same;
}

int kill_at_file(const char *const *argv, const char *file, int sig, const char *err_path)
{
    int pid = spawn_noether(argv, NULL, err_path);
    struct timespec nap = {0, 200000};
    for (int i = 0; access(file, F_OK) != 0; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)   /* it ended before the file appeared */
            return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
        cr_assert_lt(i, 300000, "no %s after 60 s", file);
        nanosleep(&nap, NULL);
    }
    kill(pid, sig);
    return wait_noether(pid);
}

void tiny_spec(const char *path, long steps, long every, long log_every, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 5}, {\"act\": \"tanh\"}, {\"dense\": 3}],"
             " \"loss\": \"cross_entropy\"},\n \"data\": {\"source\": \"builtin\", \"name\": \"iris\"},\n"
             " \"weight_decay\": 0.001,%s\n \"train\": {\"optimizer\": \"adam\", \"lr\": 0.01, \"steps\": %ld,"
             " \"batch\": 16, \"seed\": 2, \"log_every\": %ld, \"checkpoint_every\": %ld}}\n",
             extra, steps, log_every, every);
    write_text(path, text);
}

void expect_rc(const char *args, int want, char **err_out)
{
    char *out, *err;
    int rc = run_noether(args, &out, &err);
    cr_assert_eq(rc, want, "noether %s: exit %d, want %d: %s", args, rc, want, err);
    free(out);
    if (err_out) *err_out = err;
    else free(err);
}

void expect_refused(const char *args, const char *a, const char *b)
{
    char *out, *err;
    int rc = run_noether(args, &out, &err);
    cr_assert_eq(rc, 2, "noether %s: exit %d, want 2: %s", args, rc, err);
    cr_assert_str_empty(out, "stdout: %s", out);
    free(out);
    cr_assert(strlen(err) > 1 && strchr(err, '\n') == err + strlen(err) - 1, "stderr is not one line: '%s'", err);
    cr_assert_not_null(strstr(err, a), "'%s' does not name '%s'", err, a);
    cr_assert_not_null(strstr(err, b), "'%s' does not name '%s'", err, b);
    free(err);
}

cJSON *json_file(const char *dir, const char *name)
{
    char p[NT_PATH_MAX];
    path_join(p, dir, name);
    char *text = read_file(p, NULL);
    cr_assert_not_null(text, "%s not written", p);
    cJSON *doc = cJSON_Parse(text);
    cr_assert_not_null(doc, "%s is not JSON", p);
    free(text);
    return doc;
}

double json_num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    cr_assert(cJSON_IsNumber(v), "no number '%s' in %s", key, o && o->string ? o->string : "document");
    return v->valuedouble;
}

/* ---- the status-returning calls, asserted ------------------------------------------ */

#define T_OK(call)                                                                    \
    do {                                                                              \
        nt_error err_ = {0};                                                          \
        int rc_ = (call);                                                             \
        cr_assert_eq(rc_, NT_OK, "%s: %s", #call, err_.msg);                          \
    } while (0)

double t_loss_value(nt_engine *e, const double *theta, const nt_dataset *ds)
{
    double L;
    T_OK(nt_loss_value(e, theta, ds, &L, &err_));
    return L;
}

double t_grad(nt_engine *e, const double *theta, const nt_dataset *ds, double *g)
{
    double L;
    T_OK(nt_grad(e, theta, ds, &L, g, &err_));
    return L;
}

double t_hvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *HV, double *g)
{
    double L;
    T_OK(nt_hvp(e, theta, ds, k, V, HV, g, &L, &err_));
    return L;
}

void t_hessian(nt_engine *e, const double *theta, const nt_dataset *ds, double *H)
{
    T_OK(nt_hessian(e, theta, ds, H, &err_));
}

void t_outputs(nt_engine *e, const double *theta, const nt_dataset *ds, double *F)
{
    T_OK(nt_outputs(e, theta, ds, F, &err_));
}

void t_jvp(nt_engine *e, const double *theta, const nt_dataset *ds, int k, const double *V, double *Fdot)
{
    T_OK(nt_jvp(e, theta, ds, k, V, Fdot, &err_));
}

void t_vjp(nt_engine *e, const double *theta, const nt_dataset *ds, const double *Fbar, double *out)
{
    T_OK(nt_vjp(e, theta, ds, Fbar, out, &err_));
}

void t_check(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, const nt_transform *list,
             int n, double tol, nt_check_result *results)
{
    T_OK(nt_check(e, m, ds, theta, list, n, tol, results, &err_));
}

nt_operator t_hessian_operator(nt_hessian_ctx *h, nt_engine *e, const nt_model *m, const nt_dataset *ds,
                               const double *theta, int64_t off, int64_t n, const double *Q, int r)
{
    nt_operator op;
    T_OK(nt_hessian_operator(h, &op, e, m, ds, theta, off, n, Q, r, &err_));
    return op;
}

double t_hutchinson(const nt_operator *op, int n_probes, uint64_t seed, double *std_error)
{
    double trace;
    T_OK(nt_hutchinson(op, n_probes, seed, &trace, std_error, &err_));
    return trace;
}

void t_breaking_spectrum(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta,
                         const nt_transform *t, double *lam, double *coef)
{
    T_OK(nt_breaking_spectrum(e, m, ds, theta, t, lam, coef, &err_));
}

void t_sn_sector(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, int layer, int project,
                 double *theta_sym, double *lam)
{
    T_OK(nt_sn_sector(e, m, ds, theta, layer, project, theta_sym, lam, &err_));
}

double t_orbit_s1_check(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                        const double *theta, const double *g, int q, uint64_t seed, double *curvature_scale)
{
    double worst;
    T_OK(nt_orbit_s1_check(e, m, ds, list, n, theta, g, q, seed, &worst, curvature_scale, &err_));
    return worst;
}
