/* cli.h: what the subcommands share: option parsing, loading a job (spec, data,
 * parameters), writing files whole, and the uniform error exit. */
#ifndef NT_CLI_H
#define NT_CLI_H
#include <signal.h>
#include <cJSON.h>
#include "noether.h"
#include "../util/buf.h"
#include "../spectrum/doc.h"

/* One option of a command: "--name" takes a value unless flag is set. */
typedef struct {
    const char *name;
    int flag;            /* 1: a switch, no value */
    const char **value;  /* where the value (or "1" for a switch) goes */
} cli_opt;

/* Parses argv[1..]: options from opts, at most one positional (the spec) into *spec;
 * after "--" every argument is positional.  --help prints usage and exits 0; anything
 * unknown, and a value or spec path longer than CLI_ARG_MAX bytes, exits 2 naming it. */
#define CLI_ARG_MAX (NT_PATH_MAX - 65)   /* room for "/" and a file name in a folder of it */
void cli_parse(const char *cmd, const char *usage, int argc, char **argv, const cli_opt *opts,
               const char **spec);
/* Prints "noether CMD: message" on stderr and exits with the error's code. */
void cli_die(const char *cmd, const nt_error *err) __attribute__((noreturn));
/* Under mpirun (src/parallel/): the ranks first agree on the error, within this many seconds
 * (an error one rank met alone, away from an agreement point, ends every rank by MPI_Abort);
 * rank 0 prints the lowest failing rank's message, every rank exits with its code. */
#define CLI_AGREE_SECONDS 5.0
/* MPI_Init when started by mpirun; ranks > 0 silenced (stdout, stderr); MPI_Finalize at exit. */
void cli_parallel_start(int *argc, char ***argv);
/* The engines' reduction hook under mpirun (nt_parallel_reduce: an allreduce per product),
 * NULL in one process. */
nt_reduce_fn cli_reduce_hook(void);
/* 1 on the rank that writes files and prints (rank 0; the only one without mpirun). */
int cli_writer(void);
/* "ranks": the MPI ranks of the run (1 without mpirun), into a --json document. */
void cli_add_ranks(cJSON *doc);
/* Same, for a usage problem (exit 2). */
void cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

/* A loaded job: spec (or the built-in default when spec_path is NULL), data, theta.  Under
 * mpirun data.train is this rank's shard (nt_data_shard). */
typedef struct {
    nt_spec spec;
    nt_data data;
    double *theta;
    const char *cmd;   /* the subcommand that loaded it (for messages) */
    const char *params;   /* the --params file theta came from; NULL: the spec's initialization */
} cli_job;

/* Loads everything; theta from params_path or the spec's seeded initialization.
 * Exits through cli_die on error. */
void cli_job_load(cli_job *job, const char *cmd, const char *spec_path, const char *params_path);
void cli_job_free(cli_job *job);
/* The training samples of the whole job (every rank's shard). */
int64_t cli_samples(const cli_job *job);
/* An engine for the job's training set with room for k tangents. */
nt_engine *cli_engine(const cli_job *job, int k);

/* Writes text to path whole or not at all (nt_text_write: temporary file, then rename). */
int cli_write_file(const char *path, const char *text, nt_error *err);
/* A growing text buffer (CSV, HTML, gnuplot scripts): src/util/buf.h's, shared with src/report. */
typedef nt_buf cli_buf;
void cli_printf(cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes text to dir/name whole or not at all; exits on failure. */
void cli_write_in(const char *cmd, const char *dir, const char *name, const char *text);
/* Writes dir/name as NPY, whole or not at all; exits on failure. */
void cli_write_npy(const char *cmd, const char *dir, const char *name, const double *x, int ndim,
                   const int64_t *shape);
/* Prints a cJSON document on stdout (and frees it). */
void cli_print_json(cJSON *doc);
/* Creates a directory (and its parents); exits on failure. */
void cli_mkdir(const char *cmd, const char *dir);

/* The signal (SIGINT or SIGTERM) that asked the command to stop, 0 while none did. */
extern volatile sig_atomic_t cli_stop;
/* The folder of a train, run or demo, claimed for the whole command: created (with !resume),
 * locked (DIR/.lock; a second command into it exits 2, "DIR: folder in use by pid N"), a
 * fresh run refused (exit 2) over another run's checkpoint unless force (which deletes
 * it), resume refused when there is no checkpoint; and SIGINT/SIGTERM from then on only
 * set cli_stop (once: a second one kills). */
void cli_claim_dir(const char *cmd, const char *dir, int resume, int force);
/* The checkpoint's files in dir (checkpoint.bin, then the rows it refers to), removed once
 * every output of the command is written. */
void cli_checkpoint_done(const char *dir);
/* Exits 1 naming what is not finite: the loss, or entries of x (n of them, `what`: "gradient",
 * "Hessian-vector products"; x may be NULL).  Nothing non-finite is written or handed on. */
void cli_require_finite(const char *cmd, double loss, const double *x, int64_t n, const char *what);
/* Bytes of physical memory. */
double cli_physical_bytes(void);
/* Seconds on a monotonic clock. */
double cli_now(void);

/* The model, layout and data of a job: as text, and as the JSON of noether info. */
void cli_describe(FILE *f, const cli_job *job);
cJSON *cli_info_json(const cli_job *job);
/* The gradient's norm per parameter tensor, as a JSON array of {name, grad_norm}. */
cJSON *cli_tensor_norms(const nt_model *m, const double *g);
/* train_output.c: summary.json's fields of a run stopped (stopped: the reason) or not after
 * the last logged row, and the fixed-point report of a spec starting on fixed points. */
/* One ledger.csv row (the header first when csv is empty): the logged numbers, each
 * quantity's measured, predicted and gradient-flow values, the distance to each tracked
 * fixed-point set (distance[t] for list[t]). */
void cli_train_csv_row(cli_buf *csv, const nt_train_log *L, const nt_quantity *q, int nq, const nt_transform *list,
                       int n_list, const double *distance);
cJSON *cli_train_summary(const cli_job *job, const nt_quantity *q, int nq, const char *stopped,
                         const nt_train_log *last);
cJSON *cli_train_fixed_points(cli_job *job, const nt_transform *list, int n_list, const double *theta0,
                              const nt_fixed_track *track);

/* Called at every logged step of cli_train_run, after the ledger row is written
 * (noether run analyses theta there). */
typedef struct {
    void (*fn)(void *ctx, const nt_train_log *log, const double *theta);
    void *ctx;
    /* optional (may be NULL): the hook's own state into a checkpoint (records named by the
     * hook, e.g. "run.*") and back from it when the run resumes (an error exits 2) */
    void (*save)(void *ctx, nt_checkpoint *c);
    int (*load)(void *ctx, const nt_checkpoint *c, nt_error *err);
} cli_train_hook;
/* Trains the job (theta in place) with the ledger, writing params_init.npy,
 * params_final.npy and ledger.csv into dir; returns the summary document (rc: nt_train's).
 * hook may be NULL.  Checkpoints into dir/checkpoint.bin every train.checkpoint_every
 * steps and on SIGINT/SIGTERM, which stop the run at the next step boundary with rc 130 or
 * 143 and err the one line saying how to resume; resume: continue from dir/checkpoint.bin
 * (exits 2 when it is missing, damaged or of another spec or files).  A completed training
 * checkpoints once more (step = steps) and keeps it: the caller removes it with
 * cli_checkpoint_done once its outputs are written, and a resume of it goes straight to
 * the outputs.  The ledger rows go to dir/checkpoint.rows, appended at each checkpoint
 * (the checkpoint records their length and hash).  The hook is not called for the steps
 * before a resumed run's start.  Expects cli_claim_dir(dir) done. */
cJSON *cli_train_run(cli_job *job, const char *dir, int quiet, int resume, const cli_train_hook *hook, int *rc,
                     nt_error *err);
/* "interrupted by SIG... <where>; checkpoint DIR/checkpoint.bin; resume with: noether ..."
 * into err; returns its code, 128 + cli_stop. */
int cli_interrupted(nt_error *err, const cli_job *job, const char *dir, const char *where);
/* Writes a JSON document to dir/name, whole or not at all. */
void cli_write_json(const char *cmd, const char *dir, const char *name, const cJSON *doc);

/* What noether spectrum computes (cmd_spectrum.c), for it and for noether run. */
typedef struct {
    int top, bottom;          /* eigenvalues at each end */
    const char *method;       /* "auto" (dense up to 3000), "dense" or "lanczos" */
    int density, trace, deflate, sectors;
    int all_values;           /* dense: every eigenvalue into the document too */
    const char *block;        /* one parameter tensor, or NULL for all of theta */
    const char *vectors;      /* an NPY path for the eigenvectors, or NULL */
    int verbose;              /* phases on stderr when it is a terminal */
    int each_generator;       /* |H xi| of every symmetry generator (one product each) */
    int print_ends;           /* text: print the eigenvalues as soon as they are known, then the predictions */
} cli_spectrum_opts;
/* The spectrum of noether spectrum and noether run: nt_spectrum_analyse at job->theta with the options of o into r (exits
 * through cli_die when it fails; freed with nt_spectrum_free), and r's document
 * (spectrum_doc.c; o's vectors and print_ends aside).  The pieces of the document noether run's summary.json
 * repeats: predictions.flat.at_critical_point, .sharp, .sectors (each sector's eigenvalues
 * or not), .alignment_scale_invariant, and alignment. */
void cli_spectrum_analyse(cli_job *job, nt_engine *e, const nt_transform *list, int n_list, const cli_spectrum_opts *o,
                          nt_spectrum *r);
cJSON *cli_spectrum_doc(const nt_spectrum *r, const cli_spectrum_opts *o);   /* nt_spectrum_doc (src/spectrum/doc.c) */

int cmd_info(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_hvp(int argc, char **argv);
int cmd_hessian(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_symmetries(int argc, char **argv);
int cmd_discover(int argc, char **argv);
/* noether discover's JSON document (docs/interface.md), shared with noether run */
cJSON *cli_discovery_json(int64_t d, const nt_discovery *D);
int cmd_check(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_spectrum(int argc, char **argv);
/* The catalogue plus the spec's own transformations (exits on error); kind and type names. */
void cli_load_transforms(const char *cmd, const cli_job *job, nt_transform **list, int *n);
/* The conserved quantities of list: how many the ledger lists and how many are independent
 * (nt_catalogue_independent at a generic theta), as "conserved" and "conserved_independent"
 * into the JSON object o. */
void cli_add_independent(cJSON *o, const nt_model *m, const nt_transform *list, int n);
const char *cli_kind(const nt_transform *t);
const char *cli_type(const nt_transform *t);
#endif
