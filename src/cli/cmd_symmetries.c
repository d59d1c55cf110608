/* cmd_symmetries.c: noether symmetries: the catalogue of transformations of a model
 * (built in, from its layers; plus those the spec declares). */
#include <stdlib.h>
#include "cli.h"

static const char usage[] =
    "usage: noether symmetries [SPEC] [--json]\n\n"
    "Lists the transformations of the model's parameters that its structure implies\n"
    "(docs/theory.md §5) and those the spec declares: continuous families (rescalings, gl(n),\n"
    "logit translations, homogeneity) and discrete maps (swaps of units, sign flips, swaps\n"
    "of outputs), each a symmetry (the output stays put) or an equivariance (it transforms\n"
    "by B or rho).  A discrete group is listed by its generators (adjacent swaps).\n"
    "Normalizations bring their own: the scale of what feeds them, the shift of the bias\n"
    "(and, for a layer norm, of each column of the weight) before them, the rescaling of\n"
    "each unit's weight and bias against the next layer, swaps and sign flips of their\n"
    "units; an even activation (square) a flip of each unit's inputs; an attention layer\n"
    "its heads' gl and swaps and, with biases, shifts of the key and value biases; units\n"
    "read by an attention layer move against its in-projection (docs/layers.md).\n"
    "Entries can overlap (a linear network's rescalings are gl(n)'s diagonal): the last line\n"
    "counts the conserved quantities listed and how many are independent (the rank of their\n"
    "gradients at a generic theta; not computed beyond 2048 quantities: null).\n\n"
    "  --json   one JSON document: {d, transformations: [{name, kind, type, generators}],\n"
    "           conserved_quantities, independent_quantities}\n";

void cli_load_transforms(const char *cmd, const cli_job *job, nt_transform **list, int *n)
{
    nt_error err = {0};
    nt_catalogue(&job->spec.model, list, n);
    if (nt_transforms_load(&job->spec, list, n, &err)) cli_die(cmd, &err);
}

void cli_add_independent(cJSON *o, const nt_model *m, const nt_transform *list, int n)
{
    int listed = 0, rank = nt_catalogue_independent(m, list, n, NULL, 1e-10, &listed);
    cJSON_AddNumberToObject(o, "conserved", listed);
    if (rank < 0) cJSON_AddNullToObject(o, "conserved_independent");   /* too many to compute */
    else cJSON_AddNumberToObject(o, "conserved_independent", rank);
}

const char *cli_kind(const nt_transform *t) { return t->discrete ? "discrete" : "continuous"; }
const char *cli_type(const nt_transform *t) { return t->equivariance ? "equivariance" : "symmetry"; }

int cmd_symmetries(int argc, char **argv)
{
    const char *spec = NULL, *json = NULL;
    cli_opt opts[] = {{"--json", 1, &json}, {NULL, 0, NULL}};
    cli_parse("symmetries", usage, argc, argv, opts, &spec);
    cli_job job;
    cli_job_load(&job, "symmetries", spec, NULL);
    nt_transform *list = NULL;
    int n = 0, listed = 0;
    cli_load_transforms("symmetries", &job, &list, &n);
    const int independent = nt_catalogue_independent(&job.spec.model, list, n, NULL, 1e-10, &listed);
    if (json) {
        cJSON *doc = cJSON_CreateObject(), *arr;
        cJSON_AddNumberToObject(doc, "d", (double)job.spec.model.d);
        arr = cJSON_AddArrayToObject(doc, "transformations");
        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", list[i].name);
            cJSON_AddStringToObject(o, "kind", cli_kind(&list[i]));
            cJSON_AddStringToObject(o, "type", cli_type(&list[i]));
            if (!list[i].discrete) cJSON_AddNumberToObject(o, "generators", list[i].generators);
            cJSON_AddItemToArray(arr, o);
        }
        cJSON_AddNumberToObject(doc, "conserved_quantities", listed);
        if (independent < 0) cJSON_AddNullToObject(doc, "independent_quantities");
        else cJSON_AddNumberToObject(doc, "independent_quantities", independent);
        cli_print_json(doc);
    } else {
        printf("d = %lld; %d transformations\n%-36s %-10s %-12s %s\n", (long long)job.spec.model.d, n,
               "name", "kind", "type", "generators");
        for (int i = 0; i < n; i++)
            printf("%-36s %-10s %-12s %d\n", list[i].name, cli_kind(&list[i]), cli_type(&list[i]),
                   list[i].generators);
        if (independent < 0)
            printf("conserved quantities: %d listed (more than %d: their independence is not computed)\n", listed,
                   NT_INDEPENDENT_MAX);
        else
            printf("conserved quantities: %d listed, %d independent (rank of their gradients at a generic theta)\n",
                   listed, independent);
    }
    nt_transforms_free(list, n);
    cli_job_free(&job);
    return 0;
}
