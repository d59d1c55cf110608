/* common.c: see cli.h (the folder of a run: folder.c). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"

void cli_parse(const char *cmd, const char *usage, int argc, char **argv, const cli_opt *opts,
               const char **spec)
{
    int options = 1;   /* until "--": after it every argument is positional */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) { options = 0; continue; }
        if (options && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            fputs(usage, stdout);
            exit(0);
        }
        if (options && a[0] == '-' && a[1]) {
            const cli_opt *o = opts;
            while (o->name && strcmp(o->name, a) != 0) o++;
            if (!o->name) cli_usage_error(cmd, "unknown option '%.60s' (see noether %s --help)", a, cmd);
            if (o->flag) { *o->value = "1"; continue; }
            if (i + 1 >= argc) cli_usage_error(cmd, "option '%s' needs a value", a);
            *o->value = argv[++i];
            /* a path (or anything) longer than this would be cut short by the buffers that
             * hold it, naming another file: refused before anything is read or created */
            if (strlen(*o->value) > CLI_ARG_MAX)
                cli_usage_error(cmd, "%s: the value is %zu bytes, longer than the %d noether accepts", a,
                                strlen(*o->value), CLI_ARG_MAX);
            continue;
        }
        if (!spec || *spec) cli_usage_error(cmd, "unexpected argument '%.60s' (see noether %s --help)", a, cmd);
        if (strlen(a) > CLI_ARG_MAX)
            cli_usage_error(cmd, "SPEC: the path is %zu bytes, longer than the %d noether accepts", strlen(a), CLI_ARG_MAX);
        *spec = a;
    }
}

/* Under mpirun the ranks first agree on the error (the lowest failing rank's, src/parallel/),
 * so that rank 0 prints one line and every rank exits with the same code. */
void cli_die(const char *cmd, const nt_error *err)
{
    nt_error e = *err;
    if (!e.code) e.code = NT_EFAIL;
    int code = nt_parallel_fail(&e, CLI_AGREE_SECONDS);
    fprintf(stderr, "noether %s: %s\n", cmd, e.msg);
    exit(code);
}

void cli_usage_error(const char *cmd, const char *fmt, ...)
{
    nt_error err = { NT_EINPUT, "" };
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    cli_die(cmd, &err);
}

int64_t cli_samples(const cli_job *job)
{
    return job->data.shard_total ? job->data.shard_total : job->data.train.n;
}

void cli_add_ranks(cJSON *doc)
{
    cJSON_AddNumberToObject(doc, "ranks", nt_parallel_size());
}

int cli_writer(void)
{
    return nt_parallel_rank() == 0;
}

void cli_parallel_start(int *argc, char ***argv)
{
    nt_error err = {0};
    if (nt_parallel_init(argc, argv, &err)) {
        fprintf(stderr, "noether: %s\n", err.msg);
        exit(NT_EFAIL);
    }
    atexit(nt_parallel_finalize);
    if (cli_writer()) return;
    /* rank > 0: nothing on stdout or stderr (rank 0 speaks for all); its own stderr kept
     * for an error only it meets (nt_parallel_fail) */
    int keep = dup(2), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (keep >= 0) nt_parallel_set_stderr(keep);
    if (null >= 0) {
        fflush(stdout);
        dup2(null, 1);
        dup2(null, 2);
        close(null);
    }
}

nt_reduce_fn cli_reduce_hook(void)
{
    return nt_parallel_size() > 1 ? nt_parallel_reduce : NULL;
}

/* One line on stderr when any NPY input holds float32 or float16: exactness is relative to
 * the values as given (each converted exactly to float64), not to what they were rounded from. */
void cli_note_narrow_inputs(const char *cmd, const char *const *paths, int n)
{
    char names[512] = "";
    for (int i = 0; i < n; i++) {
        nt_npy_header h;
        nt_error ignored;
        if (!paths[i] || nt_npy_header_read(paths[i], &h, &ignored) || !nt_npy_is_narrow_float(&h)) continue;
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%s%s (%s)", len ? ", " : "", paths[i], h.descr);
    }
    if (names[0])
        fprintf(stderr, "noether %s: note: %s converted to float64; results are exact for these values as given, "
                "not for the data before it was rounded to float32\n", cmd, names);
}

void cli_job_load(cli_job *job, const char *cmd, const char *spec_path, const char *params_path)
{
    nt_error err = {0};
    memset(job, 0, sizeof *job);
    job->cmd = cmd;
    job->params = params_path;
    int rc = spec_path ? nt_spec_load(spec_path, &job->spec, &err)
                       : nt_spec_parse(nt_default_spec_json(), "<built-in default>", &job->spec, &err);
    /* theta, its gradient and one tangent: the least any command holds (the engine's
     * workspace comes on top); refused before anything of that size is allocated */
    const int64_t d = rc ? 0 : job->spec.model.d;
    if (!rc) rc = nt_memory_fits(&err, 24.0 * (double)d, 0, NULL, "%s: model: d = %lld parameters (theta, its gradient and a tangent)",
                                 job->spec.path, (long long)d);
    if (!rc) rc = nt_data_load_shard(&job->spec, nt_parallel_rank(), nt_parallel_size(), &job->data, &err);
    if (rc) cli_die(cmd, &err);
    job->theta = malloc(sizeof(double) * (size_t)d);
    if (!job->theta) {
        nt_fail(&err, NT_EFAIL, "%s: out of memory for the %lld parameters", job->spec.path, (long long)d);
        cli_die(cmd, &err);
    }
    if (params_path) {
        rc = nt_params_read(params_path, &job->spec.model, job->theta, &err);
    } else {   /* the spec's seeded start, on the fixed points it names (the library's call) */
        rc = nt_spec_theta(&job->spec, NULL, 0, job->theta, &err);
    }
    if (rc) cli_die(cmd, &err);
    if (nt_parallel_agree(NT_OK, &err)) cli_die(cmd, &err);   /* a rank that failed above: its message, every rank's exit */
    if (cli_writer()) {   /* the note once, from rank 0 */
        const nt_data_spec *ds = &job->spec.data;
        const char *inputs[3] = { params_path, ds->source == NT_DATA_NPY ? ds->x : NULL,
                                  ds->source == NT_DATA_NPY ? ds->y : NULL };
        cli_note_narrow_inputs(cmd, inputs, 3);
    }
}

void cli_job_free(cli_job *job)
{
    free(job->theta);
    nt_data_free(&job->data);
    nt_spec_free(&job->spec);
}

nt_engine *cli_engine(const cli_job *job, int k)
{
    int64_t chunk = job->data.train.n < NT_ENGINE_CHUNK ? job->data.train.n : NT_ENGINE_CHUNK;
    /* the vectors of d that come with blocks of k: the engine's k tangents and a block of
     * products beside theta, the gradient and a tangent (the largest allocations) */
    const double d = (double)job->spec.model.d;
    nt_error mem;
    if (nt_memory_fits(&mem, 8.0 * d * (3.0 + 2.0 * k), 0, NULL, "%s: d = %.0f parameters in blocks of %d vectors "
                       "(theta, the gradient, a tangent, %d tangents and %d products)", job->spec.path, d, k, k, k))
        cli_die("engine", &mem);
    nt_engine *e = nt_engine_new(&job->spec.model, chunk, k);
    nt_error err;
    if (!e) {
        nt_fail(&err, NT_EFAIL, "out of memory for the engine's workspace (%lld samples x %d vectors)",
                (long long)chunk, k);
        cli_die("engine", &err);
    }
    if (cli_reduce_hook() && nt_engine_set_reduce(e, cli_reduce_hook(), NULL, &err)) cli_die("engine", &err);
    return e;
}

int cli_write_file(const char *path, const char *text, nt_error *err)
{
    return cli_writer() ? nt_text_write(path, text, err) : NT_OK;
}

void cli_require_finite(const char *cmd, double loss, const double *x, int64_t n, const char *what)
{
    nt_error err;
    if (nt_require_finite(loss, x, n, what, &err)) cli_die(cmd, &err);
}

double cli_physical_bytes(void)
{
    return nt_memory_bytes();
}

void cli_printf(cli_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nt_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void cli_write_in(const char *cmd, const char *dir, const char *name, const char *text)
{
    char path[NT_PATH_MAX + 64];
    nt_error err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (cli_write_file(path, text, &err)) cli_die(cmd, &err);
}

void cli_write_npy(const char *cmd, const char *dir, const char *name, const double *x, int ndim,
                   const int64_t *shape)
{
    char path[NT_PATH_MAX + 64];
    nt_error err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (cli_writer() && nt_npy_write(path, x, ndim, shape, &err)) cli_die(cmd, &err);
}

void cli_print_json(cJSON *doc)
{
    char *s = nt_json_print(doc, 1);
    puts(s);
    free(s);
    cJSON_Delete(doc);
}

void cli_mkdir(const char *cmd, const char *dir)
{
    nt_error err;
    if (cli_writer() && nt_mkdir_p(dir, &err)) cli_die(cmd, &err);
}

double cli_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
