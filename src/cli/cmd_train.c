/* cmd_train.c: noether train: training with the ledger of every conserved or broken
 * quantity; writes params_init.npy, params_final.npy, ledger.csv and summary.json.
 * Interruption and resume: SIGINT/SIGTERM stop the run at the next step boundary with a
 * checkpoint (DIR/checkpoint.bin, also every train.checkpoint_every steps), and --resume
 * continues it bit for bit.  The run's state is the dynamics layer's (resume.c), and so is
 * every number this file writes: the distances to Fix(T) and the stability report of the
 * starting fixed points come from src/dynamics/fixed_track.c.  This file keeps them and
 * adds its own records (the fixed-point track, theta0, the last logged row); the ledger
 * rows go to DIR/checkpoint.rows through nt_checkpoint_rows (src/dynamics/checkpoint_rows.c),
 * appended at each checkpoint, so a checkpoint costs O(new rows); the ledger.csv rows,
 * summary.json and the fixed-point report are formatted by train_output.c.  The
 * checkpoint outlives the training: it goes only when every output is written
 * (cli_checkpoint_done), so no signal or kill loses a run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

static const char usage[] =
    "usage: noether train [SPEC] [-o DIR] [--params P.npy] [--resume | --force] [--quiet]\n\n"
    "Trains the spec's model with its optimizer (train.optimizer: gd, sgd, momentum, adam)\n"
    "and keeps the ledger (docs/theory.md (F3)) of every quantity Q = theta^T A theta/2 + c^T theta\n"
    "of a continuous transformation with a symmetric generator: measured, predicted by\n"
    "accumulating the step actually taken, and the gradient-flow law (F2) at t = lr * steps\n"
    "(Q(0) e^(-2 gamma t) for a symmetry with c = 0, Q(0) e^(-gamma t) for a shift; with\n"
    "R != 0 the decay exact and the R integral along the run).  Discrete symmetries are\n"
    "tracked by the distance of theta to their fixed-point set.\n"
    "Writes into DIR (default noether-train): params_init.npy, params_final.npy,\n"
    "ledger.csv (a row per logged step: loss = L(theta) and loss_gamma = L + (gamma/2)|theta|^2\n"
    "on the whole training set at that step's theta) and summary.json.\n\n"
    "Interruption: on SIGINT (Ctrl-C) or SIGTERM the run stops at the next step boundary,\n"
    "writes DIR/checkpoint.bin and the outputs so far, prints how to resume and exits 130\n"
    "(SIGINT) or 143 (SIGTERM); a second Ctrl-C kills at once.  train.checkpoint_every N\n"
    "also checkpoints every N steps (default 0: only when interrupted).  A completed run\n"
    "removes its checkpoint once its outputs are written.  With one BLAS thread (OPENBLAS_NUM_THREADS=1) a resumed run's\n"
    "params_final.npy and ledger.csv equal an uninterrupted run's, but for the seconds column.\n\n"
    "  -o DIR      output folder (created)\n"
    "  --params P  start from P.npy instead of the seeded initialization\n"
    "  --resume    continue the run in DIR from DIR/checkpoint.bin (same SPEC; refused,\n"
    "              exit 2, when the checkpoint is damaged or of another spec, data, file\n"
    "              or model)\n"
    "  --force     start afresh in a DIR that holds an unfinished run's checkpoint\n"
    "              (deleting it; without --force or --resume that is refused, exit 2)\n"
    "  --quiet     no progress on stderr\n";

typedef struct {
    const cli_job *job;
    const nt_transform *list;
    int n_list;
    cli_buf csv;
    int quiet, tty;
    double last_print;
    nt_fixed_track track;   /* the distances to Fix(T) at the logged steps (fixed_track.c) */
    double *theta0;         /* the start */
} run_ctx;

static void on_log(void *ctx, const nt_train_log *L, const double *theta, const nt_quantity *q, int nq)
{
    run_ctx *c = ctx;
    const nt_model *m = &c->job->spec.model;
    nt_fixed_track_log(&c->track, m, c->list, L->step, theta);   /* dist_T = |theta - T theta| / 2 */
    cli_train_csv_row(&c->csv, L, q, nq, c->list, c->n_list, c->track.latest);
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

/* the last row logged, kept for the summary */
typedef struct { run_ctx run; nt_train_log last; const cli_train_hook *hook; } train_ctx;

static void on_log_keep(void *ctx, const nt_train_log *L, const double *theta, const nt_quantity *q, int nq)
{
    train_ctx *t = ctx;
    t->last = *L;
    on_log(&t->run, L, theta, q, nq);
    if (t->hook) t->hook->fn(t->hook->ctx, L, theta);
}


/* ------------------------------------------------------------------ checkpoint and resume */

typedef struct {
    cli_job *job;
    train_ctx *t;
    const char *path;
    nt_checkpoint_rows rows;   /* DIR/checkpoint.rows: the ledger rows, appended (checkpoint_rows.c) */
} ckpt_ctx;

/* the run's records (resume.c) and this file's: the ledger rows so far, theta0, the
 * distances to fixed points and the log bookkeeping, the last logged row */
static int save_checkpoint(void *ctx, const nt_train_state *st, const double *theta, const nt_quantity *q,
                           int nq, nt_error *err)
{
    ckpt_ctx *k = ctx;
    if (!cli_writer()) return NT_OK;   /* under mpirun rank 0 saves for all: the state is the same on every rank */
    const run_ctx *r = &k->t->run;
    int rc = nt_checkpoint_rows_append(&k->rows, r->csv.s, r->csv.len, err);
    if (rc) return rc;
    nt_checkpoint *c = nt_checkpoint_new();
    nt_train_state_save(c, &k->job->spec, &k->job->data, st, theta, q, nq);
    nt_checkpoint_rows_put(c, &k->rows, "cli.rows");
    nt_checkpoint_put_f64(c, "cli.theta0", st->d, r->theta0);
    nt_fixed_track_save(c, &r->track, "cli.distances", "cli.logs");
    nt_train_log_save(c, "cli.last_log", &k->t->last);
    if (k->t->hook && k->t->hook->save) k->t->hook->save(k->t->hook->ctx, c);
    rc = nt_checkpoint_write(c, k->path, err);
    nt_checkpoint_free(c);
    return rc;
}

/* the inverse of save_checkpoint; exits 2 naming the file and record on a mismatch */
static void load_checkpoint(ckpt_ctx *k, nt_train_state *st, nt_quantity *q, int nq)
{
    run_ctx *r = &k->t->run;
    char *rows = NULL;
    size_t n_rows = 0;
    nt_checkpoint *c = NULL;
    nt_error err = {0};
    int rc = nt_checkpoint_read(k->path, &c, &err);
    if (!rc) rc = nt_train_state_load(c, &k->job->spec, &k->job->data, st, k->job->theta, q, nq, &err);
    if (!rc) rc = nt_checkpoint_get_f64(c, "cli.theta0", k->job->spec.model.d, r->theta0, &err);
    if (!rc) rc = nt_fixed_track_load(c, &r->track, "cli.distances", "cli.logs", &err);
    if (!rc) rc = nt_train_log_load(c, "cli.last_log", &k->t->last, &err);
    if (!rc) rc = nt_checkpoint_rows_load(&k->rows, c, "cli.rows", &rows, &n_rows, &err);
    if (!rc && k->t->hook && k->t->hook->load) rc = k->t->hook->load(k->t->hook->ctx, c, &err);
    nt_checkpoint_free(c);
    if (rc) cli_die(k->job->cmd, &err);
    r->csv.len = 0;
    if (n_rows) cli_printf(&r->csv, "%.*s", (int)n_rows, rows);
    free(rows);
}

cJSON *cli_train_run(cli_job *job, const char *dir, int quiet, int resume, const cli_train_hook *hook, int *rc,
                     nt_error *err)
{
    const nt_model *m = &job->spec.model;
    nt_transform *list = NULL;
    nt_quantity *q = NULL;
    int n_list = 0, nq = 0;
    cli_load_transforms(job->cmd, job, &list, &n_list);
    nt_ledger_quantities(m, list, n_list, &q, &nq);
    train_ctx t = { { job, list, n_list, { NULL, 0, 0 }, quiet, isatty(2), 0, { 0 }, malloc(sizeof(double) * (size_t)m->d) },
                    { 0 }, hook };
    if (nt_fixed_track_init(&t.run.track, m, n_list, err) || !t.run.theta0) {
        if (!t.run.theta0) nt_fail(err, NT_EFAIL, "out of memory for the start (d = %lld)", (long long)m->d);
        cli_die(job->cmd, err);
    }
    memcpy(t.run.theta0, job->theta, sizeof(double) * (size_t)m->d);
    char path[NT_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    ckpt_ctx k = { job, &t, path, { "", 0, 0 } };
    char rows[NT_PATH_MAX + 64];
    snprintf(rows, sizeof rows, "%s/checkpoint.rows", dir);
    nt_checkpoint_rows_init(&k.rows, rows, !resume);   /* a fresh run: its rows start empty */
    nt_train_state st;
    if (nt_train_state_init(&st, m->d)) {
        nt_fail(err, NT_EFAIL, "out of memory for the optimizer's state (d = %lld)", (long long)m->d);
        cli_die(job->cmd, err);
    }
    nt_train_state_files(&st, &job->spec, &job->data);
    if (resume) load_checkpoint(&k, &st, q, nq);
    const int64_t from = st.step;
    cli_write_npy(job->cmd, dir, "params_init.npy", t.run.theta0, 1, &m->d);
    /* SIGINT/SIGTERM set cli_stop (cli_claim_dir): the run stops at the next step boundary */
    nt_train_control ctl = { .state = &st, .stop = &cli_stop, .checkpoint_every = job->spec.train.checkpoint_every,
                             .checkpoint = save_checkpoint, .ctx = &k, .reduce = cli_reduce_hook() };
    *rc = nt_train_run(&job->spec, &job->data, list, n_list, job->theta, q, nq, on_log_keep, &t, &ctl, err);
    if (!*rc && st.stopped) {   /* the one line saying how to resume; exit 128 + the signal */
        char where[96];
        snprintf(where, sizeof where, "at step %lld of %lld", (long long)st.step, (long long)job->spec.train.steps);
        *rc = cli_interrupted(err, job, dir, where);
    } else if (!*rc) {   /* completed: checkpointed at the end, kept until the outputs are written */
        *rc = save_checkpoint(&k, &st, job->theta, q, nq, err);
    }
    cli_write_npy(job->cmd, dir, "params_final.npy", job->theta, 1, &m->d);
    cli_write_in(job->cmd, dir, "ledger.csv", t.run.csv.s ? t.run.csv.s : "");
    cJSON *doc = cli_train_summary(job, q, nq, *rc ? err->msg : NULL, &t.last);
    cli_add_independent(cJSON_GetObjectItem(doc, "ledger"), m, list, n_list);
    cJSON_AddNumberToObject(doc, "steps_taken", (double)st.step);
    if (resume) cJSON_AddNumberToObject(doc, "resumed_from", (double)from);
    nt_train_state_free(&st);
    if (job->spec.init.n_fixed) cJSON_AddItemToObject(doc, "fixed_points", cli_train_fixed_points(job, list, n_list, t.run.theta0, &t.run.track));
    free(t.run.csv.s);
    nt_fixed_track_free(&t.run.track);
    free(t.run.theta0);
    free(q);
    nt_transforms_free(list, n_list);
    return doc;
}


int cmd_train(int argc, char **argv)
{
    const char *spec = NULL, *dir = "noether-train", *params = NULL, *quiet = NULL, *resume = NULL, *force = NULL;
    cli_opt opts[] = {{"-o", 0, &dir}, {"--params", 0, &params}, {"--resume", 1, &resume}, {"--force", 1, &force},
                      {"--quiet", 1, &quiet}, {NULL, 0, NULL}};
    cli_parse("train", usage, argc, argv, opts, &spec);
    if (resume && params)
        cli_usage_error("train", "--resume takes theta from the checkpoint: it excludes --params");
    if (resume && force) cli_usage_error("train", "--force starts afresh: it excludes --resume");
    cli_job job;
    cli_job_load(&job, "train", spec, params);
    cli_claim_dir("train", dir, resume != NULL, force != NULL);   /* resuming: DIR must hold the checkpoint */
    nt_error err = {0};
    int rc;
    cJSON *doc = cli_train_run(&job, dir, quiet != NULL, resume != NULL, NULL, &rc, &err);
    cli_write_json("train", dir, "summary.json", doc);
    if (!quiet && !rc) {
        const cJSON *led = cJSON_GetObjectItem(doc, "ledger");
        const cJSON *ind = cJSON_GetObjectItem(led, "conserved_independent");
        printf("trained %d steps: loss L %.6g (L_gamma %.6g); ledger of %d quantities (%d conserved, %d independent) "
               "closes to %.2e; results in %s/\n",
               cJSON_GetObjectItem(doc, "steps")->valueint, cJSON_GetObjectItem(doc, "final_loss")->valuedouble,
               cJSON_GetObjectItem(doc, "final_loss_gamma")->valuedouble,
               cJSON_GetObjectItem(led, "quantities")->valueint, cJSON_GetObjectItem(led, "conserved")->valueint,
               cJSON_IsNumber(ind) ? ind->valueint : -1, cJSON_GetObjectItem(led, "max_gap")->valuedouble, dir);
    }
    cJSON_Delete(doc);
    cli_job_free(&job);
    if (rc) cli_die("train", &err);
    cli_checkpoint_done(dir);   /* every output written: nothing left to resume */
    return 0;
}
