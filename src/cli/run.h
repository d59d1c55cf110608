/* run.h: the state noether run (cmd_run.c) shares with its output writers (run_output.c). */
#ifndef NOETHER_CLI_RUN_H
#define NOETHER_CLI_RUN_H
#include "cli.h"

typedef struct {
    cli_job *job;
    nt_engine *e;
    const nt_transform *list;
    int n_list, quiet, n_checks;
    int64_t every, last_analysed;
    nt_check_result *res;
    cJSON *checkpoints;      /* per checkpoint: the compact analysis */
    nt_spectrum fin;         /* the last checkpoint's spectrum (has_final) */
    cJSON *final;            /* its document, spectrum.json */
    int has_final;
    double sigma;            /* the broadening of the final density (density.csv) */
    cli_buf csv;
    double seconds;
    nt_margin_growth margin; /* Lyu & Li along the run (has_margin: a model with a margin) */
    int has_margin;
    nt_discovery laws;       /* noether discover at the final theta (has_laws: computed) */
    int has_laws;
} run_state;

/* noether run computes the laws for d up to this (seconds on the examples) */
#define NT_RUN_DISCOVER_MAX 2048

double run_num(const cJSON *o, const char *key);
/* a checkpoint's row of analysis.csv and its entry of summary.json (without "seconds") */
cJSON *run_row(run_state *r, const nt_spectrum *sp, int64_t step, double loss, double loss_gamma, int held,
               double worst, const nt_breaking_factor *bf, int n_bf);
void run_write_final(run_state *r, const char *dir);
cJSON *run_distances(const char *dir);
cJSON *run_growth(const run_state *r, const char *dir);
cJSON *run_margin(run_state *r, const char *dir);
/* analysis.discovery: nt_discover's document, or a note saying why it was not computed */
cJSON *run_laws(run_state *r);
cJSON *run_theta_origin(const cli_job *job);
cJSON *run_final_view(const run_state *r);
int run_decide(const cJSON *doc, const run_state *r, nt_verdicts *v, nt_error *err);
cJSON *run_identities_json(const run_state *r);
void run_save_state(void *ctx, nt_checkpoint *c);
int run_load_state(void *ctx, const nt_checkpoint *c, nt_error *err);

#endif
