/* run_laws.c: noether run's closing question to the catalogue: the conservation laws and
 * symmetries the model really has (nt_discover, docs/theory.md §7), at the final theta, for
 * models small enough that it costs seconds. */
#include <stdio.h>
#include "run.h"

cJSON *run_laws(run_state *r)
{
    const nt_model *m = &r->job->spec.model;
    if (m->d > NT_RUN_DISCOVER_MAX) {
        cJSON *o = cJSON_CreateObject();
        char note[160];
        snprintf(note, sizeof note, "not computed: d = %lld is above %d (noether discover SPEC computes it)",
                 (long long)m->d, NT_RUN_DISCOVER_MAX);
        cJSON_AddStringToObject(o, "note", note);
        return o;
    }
    if (!r->quiet) fprintf(stderr, "run: the conservation laws and symmetries the model has (noether discover)\n");
    nt_error err = {0};
    if (nt_discover(r->e, m, r->job->theta, r->list, r->n_list, NULL, &r->laws, &err)) {
        cJSON *o = cJSON_CreateObject();
        char note[sizeof err.msg + 32];
        snprintf(note, sizeof note, "not computed: %s", err.msg);
        cJSON_AddStringToObject(o, "note", note);
        return o;
    }
    r->has_laws = 1;
    return cli_discovery_json(m->d, &r->laws);
}
