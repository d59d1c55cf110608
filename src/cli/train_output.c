/* train_output.c: what noether train (and run, through cli_train_run) writes: the
 * ledger.csv rows, summary.json's fields, the fixed-point report (the numbers are the library's,
 * nt_fixed_points_analyse), the interruption message and the JSON writer. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

void cli_train_csv_row(cli_buf *csv, const nt_train_log *L, const nt_quantity *q, int nq, const nt_transform *list,
                       int n_list, const double *distance)
{
    if (csv->len == 0) {   /* the header */
        cli_printf(csv, "step,loss,loss_gamma,accuracy,test_loss,test_accuracy,norm2,margin,seconds");
        for (int j = 0; j < nq; j++)
            cli_printf(csv, ",\"%s:measured\",\"%s:predicted\",\"%s:gradient_flow\"", q[j].name, q[j].name, q[j].name);
        for (int t = 0; t < n_list; t++)
            if (nt_fixed_tracked(&list[t])) cli_printf(csv, ",\"%s:distance\"", list[t].name);
        cli_printf(csv, "\n");
    }
    cli_printf(csv, "%lld,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.3f", (long long)L->step, L->loss, L->loss_gamma,
               L->accuracy, L->test_loss, L->test_accuracy, L->norm2, L->margin, L->seconds);
    for (int j = 0; j < nq; j++)
        cli_printf(csv, ",%.17g,%.17g,%.17g", q[j].measured, q[j].predicted, q[j].gradient_flow);
    for (int t = 0; t < n_list; t++)
        if (nt_fixed_tracked(&list[t])) cli_printf(csv, ",%.17g", distance[t]);
    cli_printf(csv, "\n");
}

cJSON *cli_train_summary(const cli_job *job, const nt_quantity *q, int nq, const char *stopped,
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
    cJSON_AddNumberToObject(doc, "final_loss", last->loss);               /* L(theta_final), training set */
    cJSON_AddNumberToObject(doc, "final_loss_gamma", last->loss_gamma);   /* L_gamma(theta_final) */
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
        cJSON_AddNumberToObject(o, "initial", q[j].initial);
        cJSON_AddNumberToObject(o, "measured", q[j].measured);
        cJSON_AddNumberToObject(o, "predicted", q[j].predicted);
        cJSON_AddNumberToObject(o, "gradient_flow", q[j].gradient_flow);
        cJSON_AddNumberToObject(o, "max_gap", q[j].max_gap);
        cJSON_AddNumberToObject(o, "size", q[j].size);   /* max_gap's scale at the last step */
        cJSON_AddNumberToObject(o, "first_order", q[j].first);
        cJSON_AddNumberToObject(o, "weight_decay", q[j].decay);
        cJSON_AddNumberToObject(o, "second_order", q[j].second);
        cJSON_AddItemToArray(arr, o);
    }
    return doc;
}

/* docs/theory.md §4: the stability of each fixed point the spec starts on, computed by the
 * library (nt_fixed_points_analyse, src/dynamics/fixed_track.c); the predictions of GD/SGD
 * (the factor max |1 - lr lambda| and the linearized distance at the first log) only for them */
cJSON *cli_train_fixed_points(cli_job *job, const nt_transform *list, int n_list, const double *theta0,
                              const nt_fixed_track *track)
{
    nt_fixed_points fp;
    nt_error err = {0};
    nt_engine *e = cli_engine(job, 16);
    int rc = nt_fixed_points_analyse(e, &job->spec, &job->data.train, list, n_list, theta0, track, &fp, &err);
    nt_engine_free(e);
    if (rc) cli_die(job->cmd, &err);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < fp.n; i++) {
        const nt_fixed_point *p = &fp.points[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddNumberToObject(o, "breaking_dimension", p->breaking_dimension);
        cJSON_AddNumberToObject(o, "lambda_min", p->lambda_min);
        cJSON_AddNumberToObject(o, "lambda_max", p->lambda_max);
        cJSON_AddNumberToObject(o, "distance_initial", p->distance_initial);
        cJSON_AddNumberToObject(o, "distance_final", p->distance_final);
        if (p->predicted) {
            cJSON_AddBoolToObject(o, "stable_predicted", p->stable_predicted);
            cJSON_AddNumberToObject(o, "predicted_factor", p->predicted_factor);
            if (p->first_log_step >= 0) {
                cJSON_AddNumberToObject(o, "first_log_step", (double)p->first_log_step);
                cJSON_AddNumberToObject(o, "predicted_distance_first_log", p->predicted_distance_first_log);
                cJSON_AddNumberToObject(o, "measured_distance_first_log", p->measured_distance_first_log);
            }
        }
        if (!isnan(p->measured_factor)) cJSON_AddNumberToObject(o, "measured_factor", p->measured_factor);
        cJSON_AddItemToArray(arr, o);
    }
    nt_fixed_points_free(&fp);
    return arr;
}

int cli_interrupted(nt_error *err, const cli_job *job, const char *dir, const char *where)
{
    const int sig = cli_stop;
    const int builtin = !strcmp(job->spec.path, "<built-in default>");
    return nt_fail(err, 128 + sig, "interrupted by %s %s; checkpoint %s/checkpoint.bin; resume with: noether %s %s%s-o %s "
                   "--resume", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal", where, dir, job->cmd,
                   builtin ? "" : job->spec.path, builtin ? "" : " ", dir);
}

void cli_write_json(const char *cmd, const char *dir, const char *name, const cJSON *doc)
{
    char *text = nt_json_print(doc, 1), path[NT_PATH_MAX + 64];
    size_t len = strlen(text);
    nt_error err;
    text = realloc(text, len + 2);
    strcpy(text + len, "\n");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (cli_write_file(path, text, &err)) cli_die(cmd, &err);
    free(text);
}
