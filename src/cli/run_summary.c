/* run_summary.c: summary.json's views of noether run's final checkpoint (cmd_run.c), the
 * facts its verdicts are decided from, and the analyses kept in a checkpoint for a resume. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"

/* the headline numbers of the final checkpoint, for summary.json */
cJSON *run_final_view(const run_state *r)
{
    const nt_spectrum *sp = &r->fin;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", sp->dense ? "dense" : "lanczos");
    cJSON *top = cJSON_AddArrayToObject(o, "top"), *bottom = cJSON_AddArrayToObject(o, "bottom");
    for (int i = 0; i < sp->top; i++) cJSON_AddItemToArray(top, cJSON_CreateNumber(sp->top_values[i]));
    for (int i = 0; i < sp->bottom; i++) cJSON_AddItemToArray(bottom, cJSON_CreateNumber(sp->bottom_values[i]));
    cJSON *flat = cJSON_AddObjectToObject(o, "flat");
    cJSON_AddNumberToObject(flat, "predicted_everywhere", sp->flat.orbit.shift_rank);
    if (sp->has_flat && sp->flat.orbit.rank >= 0)   /* eigenvalues with multiplicities (S1gamma) */
        cJSON_AddItemToObject(flat, "at_critical_point", nt_critical_json(&sp->flat));
    if (sp->at_gamma >= 0) {
        cJSON_AddNumberToObject(flat, "found", sp->at_gamma);
        cJSON_AddNumberToObject(flat, "tolerance", sp->at_gamma_tol);
    }
    cJSON_AddNumberToObject(flat, "gamma", r->job->spec.model.weight_decay);
    nt_dead dead;   /* more eigenvalues at gamma than the symmetries force: dead ReLU units' (dead.c) */
    if (!nt_dead_units(&r->job->spec.model, &r->job->data.train, r->job->theta, &dead, NULL) && dead.units >= 0) {
        cJSON_AddNumberToObject(flat, "dead_units", dead.units);
        cJSON_AddNumberToObject(flat, "dead_unit_directions", (double)dead.directions);
    }
    cJSON_AddItemToObject(o, "alignment", nt_alignment_json(sp));
    if (sp->has_flat && sp->sharp.applies) cJSON_AddItemToObject(o, "sharp", nt_sharp_json(&sp->sharp));
    if (sp->has_flat && sp->n_scale) cJSON_AddItemToObject(o, "alignment_scale_invariant", nt_scale_json(sp));
    if (sp->nodes) {
        cJSON *dd = cJSON_AddObjectToObject(o, "density");
        cJSON_AddNumberToObject(dd, "moment1", sp->moment[0]);
        cJSON_AddNumberToObject(dd, "moment2", sp->moment[1]);
        cJSON_AddNumberToObject(dd, "sigma", r->sigma);
    }
    cJSON_AddItemToObject(o, "sectors", nt_sectors_json(sp, 0));
    return o;
}

/* an integer of o, `absent` when it is not there */
static int int_of(const cJSON *o, const char *key, int absent)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valueint : absent;
}

/* Every verdict of the run, decided once (nt_verdicts_decide, src/analysis/verdict.c): from
 * doc's ledger and stopped, the checkpoints' identities (r->checkpoints, restored on a
 * resume), and the final spectrum r->fin.  summary.json's all_identities_hold, the exit
 * code, the report's "At a glance" marks and the closing lines all read v.  The sectors are
 * those of summary.json's final.sectors: the S_n sectors (a skipped one counts -1 found, 0
 * predicted), then the mirrors (-1, 0). */
int run_decide(const cJSON *doc, const run_state *r, nt_verdicts *v, nt_error *err)
{
    const nt_spectrum *sp = &r->fin;
    const cJSON *led = cJSON_GetObjectItem(doc, "ledger"), *it;
    const int n_cp = cJSON_GetArraySize(r->checkpoints), n_bl = sp->has_flat ? sp->n_scale : 0,
              n_sec = sp->n_sectors + sp->n_mirrors;
    int *holding = malloc(sizeof(int) * (size_t)(n_cp + 1)), *found = malloc(sizeof(int) * (size_t)(n_sec + 1)),
        *predicted = malloc(sizeof(int) * (size_t)(n_sec + 1)), k = 0;
    double *measured = malloc(sizeof(double) * (size_t)(n_bl + 1)), *fraction = malloc(sizeof(double) * (size_t)(n_bl + 1));
    cJSON_ArrayForEach(it, r->checkpoints) holding[k++] = int_of(it, "identities_holding", 0);
    for (int i = 0; i < n_bl; i++) {
        measured[i] = sp->scale[i].measured;
        fraction[i] = sp->scale[i].predicted;
    }
    for (int i = 0; i < n_sec; i++) {
        const nt_sector *S = i < sp->n_sectors && !sp->sectors[i].skipped ? &sp->sectors[i] : NULL;
        found[i] = S ? S->found : -1;
        predicted[i] = S ? S->predicted : 0;
    }
    const int sharp = sp->has_flat && sp->sharp.applies;
    const nt_run_facts f = {
        .identities = r->n_checks, .checkpoints = n_cp, .identities_holding = holding,
        .quantities = int_of(led, "quantities", 0), .ledger_max_gap = run_num(led, "max_gap"),
        .stopped = !cJSON_IsNull(cJSON_GetObjectItem(doc, "stopped")),
        .flat_found = sp->at_gamma, .flat_predicted = sp->flat.orbit.shift_rank,
        .sharp = sharp, .radial_curvature = sharp ? sp->sharp.radial_curvature : NAN,
        .radial_closed_form = sharp ? sp->sharp.closed_form : NAN,
        .blocks = n_bl, .block_measured = measured, .block_predicted = fraction,
        .sectors = n_sec, .sector_found = found, .sector_predicted = predicted,
        .margin = r->has_margin ? &r->margin : NULL, .discovery = r->has_laws ? &r->laws : NULL };
    int rc = nt_verdicts_decide(&f, v, err);
    free(holding);
    free(found);
    free(predicted);
    free(measured);
    free(fraction);
    return rc;
}

/* summary.json's identities_final: each identity at the final checkpoint */
cJSON *run_identities_json(const run_state *r)
{
    cJSON *ids = cJSON_CreateArray();
    for (int i = 0; i < r->n_checks; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->res[i].name);
        cJSON_AddStringToObject(o, "kind", r->res[i].discrete ? "discrete" : "continuous");
        cJSON_AddStringToObject(o, "type", r->res[i].equivariance ? "equivariance" : "symmetry");
        cJSON_AddNumberToObject(o, "first_order_residual", r->res[i].first_order);
        cJSON_AddNumberToObject(o, "second_order_residual", r->res[i].second_order);
        cJSON_AddBoolToObject(o, "holds", r->res[i].holds);
        cJSON_AddItemToArray(ids, o);
    }
    return ids;
}

/* the analyses so far into a checkpoint, and back when the run resumes: the rows of
 * analysis.csv and the checkpoint entries of summary.json, so that a resumed run's
 * outputs are those of an uninterrupted one */
void run_save_state(void *ctx, nt_checkpoint *c)
{
    run_state *r = ctx;
    char *cp = nt_json_print(r->checkpoints, 0);
    nt_checkpoint_put_bytes(c, "run.analysis_csv", (int64_t)r->csv.len, r->csv.s ? r->csv.s : "");
    nt_checkpoint_put_bytes(c, "run.checkpoints", (int64_t)strlen(cp), cp);
    nt_checkpoint_put_f64(c, "run.seconds", 1, &r->seconds);
    free(cp);
}

int run_load_state(void *ctx, const nt_checkpoint *c, nt_error *err)
{
    run_state *r = ctx;
    const char *csv, *cp;
    int64_t n_csv, n_cp;
    if (nt_checkpoint_get_bytes(c, "run.analysis_csv", &csv, &n_csv, err) ||
        nt_checkpoint_get_bytes(c, "run.checkpoints", &cp, &n_cp, err) ||
        nt_checkpoint_get_f64(c, "run.seconds", 1, &r->seconds, err))
        return err->code;
    cJSON *arr = cJSON_Parse(cp);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return nt_fail(err, NT_EINPUT, "%s: record run.checkpoints is not a JSON array", nt_checkpoint_path(c));
    }
    cJSON_Delete(r->checkpoints);
    r->checkpoints = arr;
    r->csv.len = 0;
    cli_printf(&r->csv, "%s", csv);
    return NT_OK;
}
