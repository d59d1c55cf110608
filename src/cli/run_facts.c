/* run_facts.c: two facts of noether run for summary.json and the report, read from the run
 * directory and the job: Lyu & Li's margin growth along ledger.csv's rows (computed by
 * nt_margin_analyse, src/analysis/margin.c) and where theta came from. */
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "../report/report.h"

/* Lyu & Li along the run (nt_margin_analyse) from ledger.csv's margin and norm2, for
 * summary.json's analysis.margin_growth and the verdict; NULL (r->has_margin 0) for a model
 * without a margin (every row nan) */
cJSON *run_margin(run_state *r, const char *dir)
{
    report_table L;
    r->has_margin = 0;
    if (!report_table_read(dir, "ledger.csv", &L)) return NULL;
    const int st = report_col(&L, "step"), mg = report_col(&L, "margin"), n2 = report_col(&L, "norm2");
    double *col = malloc(sizeof(double) * 3 * (size_t)(L.rows + 1));
    for (int i = 0; i < L.rows && st >= 0 && mg >= 0 && n2 >= 0; i++) {
        col[i] = report_at(&L, i, st);
        col[L.rows + i] = report_at(&L, i, mg);
        col[2 * L.rows + i] = report_at(&L, i, n2);
    }
    nt_margin_growth *g = &r->margin;
    cJSON *o = NULL;
    if (st >= 0 && mg >= 0 && n2 >= 0 && !nt_margin_analyse(L.rows, col, col + L.rows, col + 2 * L.rows, g, NULL) &&
        g->rows > 0) {
        r->has_margin = 1;
        o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "separated", g->separated);
        cJSON_AddNumberToObject(o, "rows_separated", g->rows_separated);
        if (g->separated) {
            cJSON_AddNumberToObject(o, "separated_step", g->separated_step);
            cJSON_AddNumberToObject(o, "margin_at_separation", g->margin_at_separation);
            cJSON_AddNumberToObject(o, "norm2_at_separation", g->norm2_at_separation);
        }
        cJSON_AddNumberToObject(o, "margin_final", g->margin_final);
        cJSON_AddNumberToObject(o, "norm2_final", g->norm2_final);
        cJSON_AddNumberToObject(o, "margin_falls", g->margin_falls);
        cJSON_AddNumberToObject(o, "norm2_falls", g->norm2_falls);
        cJSON_AddNumberToObject(o, "largest_fall", g->largest_fall);
    }
    free(col);
    report_table_free(&L);
    return o;
}

/* where the run's theta came from: the --params file (its path, size and FNV-1a 64 hash of
 * its bytes, nt_hash64) or the spec's seeded initialization */
cJSON *run_theta_origin(const cli_job *job)
{
    cJSON *o = cJSON_CreateObject();
    if (!job->params) {
        cJSON_AddStringToObject(o, "from", "init");
        cJSON_AddNumberToObject(o, "seed", (double)job->spec.init.seed);
        return o;
    }
    cJSON_AddStringToObject(o, "from", "params");
    cJSON_AddStringToObject(o, "file", job->params);
    FILE *f = fopen(job->params, "rb");
    if (!f) return o;
    unsigned char buf[1 << 16];
    uint64_t h = NT_HASH_INIT;
    size_t got, bytes = 0;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) { h = nt_hash64(buf, got, h); bytes += got; }
    int bad = ferror(f);
    fclose(f);
    if (bad) return o;
    char hex[24];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    cJSON_AddNumberToObject(o, "bytes", (double)bytes);
    cJSON_AddStringToObject(o, "fnv1a64", hex);
    return o;
}
