/* cmd_train.c: noether train: training with the ledger of every conserved or broken
 * quantity; writes params_init.npy, params_final.npy, ledger.csv and summary.json. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

static const char usage[] =
    "usage: noether train [SPEC] [-o DIR] [--params P.npy] [--quiet]\n\n"
    "Trains the spec's model with its optimizer (train.optimizer: gd, sgd, momentum, adam)\n"
    "and keeps the ledger (THEORY.md (F3)) of every quantity Q = theta^T A theta/2 + c^T theta\n"
    "of a continuous transformation with a symmetric generator: measured, predicted by\n"
    "accumulating the step actually taken, and the gradient-flow law (F2).  Discrete\n"
    "symmetries are tracked by the distance of theta to their fixed-point set.\n"
    "Writes into DIR (default noether-train): params_init.npy, params_final.npy,\n"
    "ledger.csv (a row per logged step) and summary.json.\n\n"
    "  -o DIR      output folder (created)\n"
    "  --params P  start from P.npy instead of the seeded initialization\n"
    "  --quiet     no progress on stderr\n";

typedef struct {
    const cli_job *job;
    const nt_transform *list;
    int n_list;
    cli_buf csv;
    int quiet, tty;
    double last_print;
    double *tmp;
    double *dist0, *dist;   /* distance to Fix(T) per transformation: first and latest logged */
    double *dist1, *dist2;  /* ... at the first and second logged steps after 0 */
    int64_t last_step, step1, step2;
    int n_logs;
    double *theta0;         /* the start */
} run_ctx;

static void header(run_ctx *c, const nt_quantity *q, int nq)
{
    cli_printf(&c->csv, "step,loss,accuracy,test_loss,test_accuracy,norm2,margin,seconds");
    for (int j = 0; j < nq; j++)
        cli_printf(&c->csv, ",\"%s:measured\",\"%s:predicted\",\"%s:gradient_flow\"", q[j].name, q[j].name, q[j].name);
    for (int t = 0; t < c->n_list; t++)
        if (c->list[t].discrete && !c->list[t].equivariance) cli_printf(&c->csv, ",\"%s:distance\"", c->list[t].name);
    cli_printf(&c->csv, "\n");
}

static void on_log(void *ctx, const nt_train_log *L, const double *theta, const nt_quantity *q, int nq)
{
    run_ctx *c = ctx;
    const nt_model *m = &c->job->spec.model;
    if (c->csv.len == 0) header(c, q, nq);
    cli_printf(&c->csv, "%lld,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.3f", (long long)L->step, L->loss, L->accuracy,
           L->test_loss, L->test_accuracy, L->norm2, L->margin, L->seconds);
    for (int j = 0; j < nq; j++)
        cli_printf(&c->csv, ",%.17g,%.17g,%.17g", q[j].measured, q[j].predicted, q[j].gradient_flow);
    for (int t = 0; t < c->n_list; t++) {   /* distance to Fix(T) = |theta - T theta| / 2 */
        if (!c->list[t].discrete || c->list[t].equivariance) continue;
        nt_tr_apply_T(m, &c->list[t], theta, c->tmp);
        for (int64_t i = 0; i < m->d; i++) c->tmp[i] -= theta[i];
        c->dist[t] = 0.5 * nt_norm2(m->d, c->tmp);
        if (c->n_logs == 0) c->dist0[t] = c->dist[t];
        if (c->n_logs == 1) c->dist1[t] = c->dist[t];
        if (c->n_logs == 2) c->dist2[t] = c->dist[t];
        cli_printf(&c->csv, ",%.17g", c->dist[t]);
    }
    cli_printf(&c->csv, "\n");
    c->last_step = L->step;
    if (c->n_logs == 1) c->step1 = L->step;
    if (c->n_logs == 2) c->step2 = L->step;
    c->n_logs++;
    const int64_t steps = c->job->spec.train.steps;
    double t = L->seconds;
    if (!c->quiet && (c->tty || t - c->last_print > 2 || L->step == steps)) {
        double rate = t > 0 ? (double)L->step / t : 0, left = rate > 0 ? (double)(steps - L->step) / rate : 0;
        fprintf(stderr, "%strain: step %lld/%lld  loss %.5g", c->tty ? "\r" : "", (long long)L->step,
                (long long)steps, L->loss);
        if (!isnan(L->test_accuracy)) fprintf(stderr, "  test acc %.4f", L->test_accuracy);
        fprintf(stderr, "  %.0f steps/s  %.0f s left%s", rate, left, c->tty ? "   " : "\n");
        if (c->tty && L->step == steps) fputc('\n', stderr);
        c->last_print = t;
    }
}

static cJSON *summary(const cli_job *job, const nt_quantity *q, int nq, const char *stopped,
                      const nt_train_log *last)
{
    cJSON *doc = cJSON_CreateObject();
    const nt_train_spec *ts = &job->spec.train;
    static const char *opts[] = {"gd", "sgd", "momentum", "adam"};
    cJSON_AddStringToObject(doc, "spec", job->spec.path);
    cJSON_AddNumberToObject(doc, "d", (double)job->spec.model.d);
    cJSON_AddStringToObject(doc, "optimizer", opts[ts->optimizer]);
    cJSON_AddNumberToObject(doc, "lr", ts->lr);
    cJSON_AddNumberToObject(doc, "weight_decay", job->spec.model.weight_decay);
    cJSON_AddNumberToObject(doc, "steps", (double)last->step);
    if (stopped) cJSON_AddStringToObject(doc, "stopped", stopped);
    else cJSON_AddNullToObject(doc, "stopped");
    cJSON_AddNumberToObject(doc, "final_loss", last->loss);
    if (!isnan(last->accuracy)) cJSON_AddNumberToObject(doc, "train_accuracy", last->accuracy);
    if (!isnan(last->test_loss)) cJSON_AddNumberToObject(doc, "test_loss", last->test_loss);
    if (!isnan(last->test_accuracy)) cJSON_AddNumberToObject(doc, "test_accuracy", last->test_accuracy);
    if (!isnan(last->margin)) cJSON_AddNumberToObject(doc, "normalized_margin", last->margin);
    cJSON_AddNumberToObject(doc, "seconds", last->seconds);
    double worst = 0;
    for (int j = 0; j < nq; j++) worst = fmax(worst, q[j].max_gap);
    cJSON *led = cJSON_AddObjectToObject(doc, "ledger");
    cJSON_AddNumberToObject(led, "quantities", nq);
    cJSON_AddNumberToObject(led, "max_gap", worst);
    cJSON *arr = cJSON_AddArrayToObject(led, "per_quantity");
    for (int j = 0; j < nq; j++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", q[j].name);
        cJSON_AddStringToObject(o, "type", q[j].equivariance ? "equivariance" : "symmetry");
        cJSON_AddNumberToObject(o, "initial", q[j].measured - q[j].first - q[j].decay - q[j].second);
        cJSON_AddNumberToObject(o, "measured", q[j].measured);
        cJSON_AddNumberToObject(o, "predicted", q[j].predicted);
        cJSON_AddNumberToObject(o, "gradient_flow", q[j].gradient_flow);
        cJSON_AddNumberToObject(o, "max_gap", q[j].max_gap);
        cJSON_AddNumberToObject(o, "first_order", q[j].first);
        cJSON_AddNumberToObject(o, "weight_decay", q[j].decay);
        cJSON_AddNumberToObject(o, "second_order", q[j].second);
        cJSON_AddItemToArray(arr, o);
    }
    return doc;
}

/* the last row logged, kept for the summary */
typedef struct { run_ctx run; nt_train_log last; const cli_train_hook *hook; } train_ctx;

static void on_log_keep(void *ctx, const nt_train_log *L, const double *theta, const nt_quantity *q, int nq)
{
    train_ctx *t = ctx;
    t->last = *L;
    on_log(&t->run, L, theta, q, nq);
    if (t->hook) t->hook->fn(t->hook->ctx, L, theta);
}

/* THEORY.md §4 at the start: the spectrum of H_gamma on Fix(T)^perp of each fixed point
 * the spec starts on, and the per-step factor of GD/SGD along the breaking directions,
 * max |1 - lr lambda|, against the factor the run shows between its first two logged steps
 * after the start, (d_2 / d_1)^(1/(t_2 - t_1)); and the distance to Fix(T) the linearized
 * dynamics predicts at the first logged step, sqrt(sum_i c_i^2 (1 - lr lambda_i)^(2 t_1)),
 * against the distance measured there. */
static cJSON *fixed_points(cli_job *job, const nt_transform *list, int n_list, const run_ctx *c)
{
    const nt_model *m = &job->spec.model;
    const nt_train_spec *ts = &job->spec.train;
    cJSON *arr = cJSON_CreateArray();
    nt_engine *e = cli_engine(job, 16);
    for (int f = 0; f < job->spec.init.n_fixed; f++)
        for (int t = 0; t < n_list; t++) {
            if (strcmp(list[t].name, job->spec.init.fixed_point[f])) continue;
            int dim = nt_breaking_dim(m, &list[t]);
            double *lam = malloc(sizeof(double) * (size_t)dim), *coef = malloc(sizeof(double) * (size_t)dim);
            double factor = 0, d1 = 0;
            nt_breaking_spectrum(e, m, &job->data.train, c->theta0, &list[t], lam, coef);
            for (int i = 0; i < dim; i++) {
                factor = fmax(factor, fabs(1 - ts->lr * lam[i]));
                d1 += coef[i] * coef[i] * pow(1 - ts->lr * lam[i], 2.0 * (double)c->step1);
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", list[t].name);
            cJSON_AddNumberToObject(o, "breaking_dimension", dim);
            cJSON_AddNumberToObject(o, "lambda_min", lam[0]);
            cJSON_AddNumberToObject(o, "lambda_max", lam[dim - 1]);
            cJSON_AddNumberToObject(o, "distance_initial", c->dist0[t]);
            cJSON_AddNumberToObject(o, "distance_final", c->dist[t]);
            if (ts->optimizer == NT_OPT_GD || ts->optimizer == NT_OPT_SGD) {
                cJSON_AddBoolToObject(o, "stable_predicted", factor < 1);
                cJSON_AddNumberToObject(o, "predicted_factor", factor);
                if (c->n_logs > 1) {
                    cJSON_AddNumberToObject(o, "first_log_step", (double)c->step1);
                    cJSON_AddNumberToObject(o, "predicted_distance_first_log", sqrt(d1));
                    cJSON_AddNumberToObject(o, "measured_distance_first_log", c->dist1[t]);
                }
            }
            if (c->n_logs > 2 && c->dist1[t] > 0 && c->dist2[t] > 0)
                cJSON_AddNumberToObject(o, "measured_factor",
                                        pow(c->dist2[t] / c->dist1[t], 1.0 / (double)(c->step2 - c->step1)));
            cJSON_AddItemToArray(arr, o);
            free(lam);
            free(coef);
        }
    nt_engine_free(e);
    return arr;
}

cJSON *cli_train_run(cli_job *job, const char *dir, int quiet, const cli_train_hook *hook, int *rc,
                     nt_error *err)
{
    const nt_model *m = &job->spec.model;
    nt_transform *list = NULL;
    nt_quantity *q = NULL;
    int n_list = 0, nq = 0;
    cli_load_transforms("train", job, &list, &n_list);
    nt_ledger_quantities(m, list, n_list, &q, &nq);
    cli_write_npy("train", dir, "params_init.npy", job->theta, 1, &m->d);
    train_ctx t = { { job, list, n_list, { NULL, 0, 0 }, quiet, isatty(2), 0, malloc(sizeof(double) * (size_t)m->d),
                      calloc((size_t)n_list + 1, sizeof(double)), calloc((size_t)n_list + 1, sizeof(double)),
                      calloc((size_t)n_list + 1, sizeof(double)), calloc((size_t)n_list + 1, sizeof(double)),
                      0, 0, 0, 0, malloc(sizeof(double) * (size_t)m->d) }, { 0 }, hook };
    memcpy(t.run.theta0, job->theta, sizeof(double) * (size_t)m->d);
    *rc = nt_train(&job->spec, &job->data, list, n_list, job->theta, q, nq, on_log_keep, &t, err);
    cli_write_npy("train", dir, "params_final.npy", job->theta, 1, &m->d);
    cli_write_in("train", dir, "ledger.csv", t.run.csv.s ? t.run.csv.s : "");
    cJSON *doc = summary(job, q, nq, *rc ? err->msg : NULL, &t.last);
    if (job->spec.init.n_fixed) cJSON_AddItemToObject(doc, "fixed_points", fixed_points(job, list, n_list, &t.run));
    free(t.run.csv.s);
    free(t.run.tmp);
    free(t.run.dist0);
    free(t.run.dist);
    free(t.run.dist1);
    free(t.run.dist2);
    free(t.run.theta0);
    free(q);
    nt_transforms_free(list, n_list);
    return doc;
}

void cli_write_json(const char *cmd, const char *dir, const char *name, const cJSON *doc)
{
    char *text = cJSON_Print(doc), path[NT_PATH_MAX + 64];
    size_t len = strlen(text);
    nt_error err;
    text = realloc(text, len + 2);
    strcpy(text + len, "\n");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (cli_write_file(path, text, &err)) cli_die(cmd, &err);
    free(text);
}

int cmd_train(int argc, char **argv)
{
    const char *spec = NULL, *dir = "noether-train", *params = NULL, *quiet = NULL;
    cli_opt opts[] = {{"-o", 0, &dir}, {"--params", 0, &params}, {"--quiet", 1, &quiet}, {NULL, 0, NULL}};
    cli_parse("train", usage, argc, argv, opts, &spec);
    cli_job job;
    cli_job_load(&job, "train", spec, params);
    cli_mkdir("train", dir);
    nt_error err = {0};
    int rc;
    cJSON *doc = cli_train_run(&job, dir, quiet != NULL, NULL, &rc, &err);
    cli_write_json("train", dir, "summary.json", doc);
    if (!quiet) {
        const cJSON *led = cJSON_GetObjectItem(doc, "ledger");
        printf("trained %d steps: loss %.6g; ledger of %d quantities closes to %.2e; results in %s/\n",
               cJSON_GetObjectItem(doc, "steps")->valueint, cJSON_GetObjectItem(doc, "final_loss")->valuedouble,
               cJSON_GetObjectItem(led, "quantities")->valueint, cJSON_GetObjectItem(led, "max_gap")->valuedouble, dir);
    }
    cJSON_Delete(doc);
    cli_job_free(&job);
    if (rc) cli_die("train", &err);
    return 0;
}
