/* cmd_info.c: noether info: the parameter count d, the layout (name, offset, shape of each
 * tensor) and the data summary. */
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "cli.h"
#include "../model/registry.h"

static const char usage[] =
    "usage: noether info [SPEC] [--params P.npy] [--json]\n\n"
    "Prints the model (layers, loss, weight decay), its parameter count d, the parameter\n"
    "layout (name, offset and shape of each tensor: W (n_out x n_in) then b, layer by\n"
    "layer, PyTorch's order) and a summary of the data.  Without SPEC: the built-in default.\n\n"
    "  --json         one JSON document on stdout\n"
    "  --params P     also check that P.npy fits the model (d values)\n";

cJSON *cli_info_json(const cli_job *job)
{
    const nt_model *m = &job->spec.model;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "spec", job->spec.path);
    cJSON_AddNumberToObject(doc, "d", (double)m->d);
    cJSON_AddNumberToObject(doc, "input", m->input);
    if (m->image[1]) cJSON_AddItemToObject(doc, "image", cJSON_CreateIntArray(m->image, 3));
    if (m->sequence[0]) cJSON_AddItemToObject(doc, "sequence", cJSON_CreateIntArray(m->sequence, 2));
    cJSON_AddNumberToObject(doc, "output", m->output);
    cJSON_AddStringToObject(doc, "loss", nt_loss_name(m->loss));
    cJSON_AddNumberToObject(doc, "weight_decay", m->weight_decay);
    cJSON *layers = cJSON_AddArrayToObject(doc, "layers");
    for (int i = 0; i < m->n_layers; i++) {
        const nt_layer *L = &m->layers[i];
        cJSON *o = cJSON_CreateObject();
        nt_layer_registry(L->kind)->to_json(L, o);
        cJSON_AddItemToArray(layers, o);
    }
    cJSON *layout = cJSON_AddArrayToObject(doc, "layout");
    for (int t = 0; t < m->n_tensors; t++) {
        const nt_tensor *T = &m->tensors[t];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", T->name);
        cJSON_AddNumberToObject(o, "offset", (double)T->offset);
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (int a = 0; a < T->ndim; a++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)T->shape[a]));
        cJSON_AddItemToArray(layout, o);
    }
    cJSON *data = cJSON_AddObjectToObject(doc, "data");
    cJSON_AddStringToObject(data, "description", job->data.desc);
    cJSON_AddNumberToObject(data, "train", (double)cli_samples(job));
    cli_add_ranks(data);
    cJSON *shards = cJSON_AddArrayToObject(data, "shards");
    for (int r = 0; r < nt_parallel_size(); r++) {
        int64_t start, count;
        nt_parallel_shard(cli_samples(job), r, nt_parallel_size(), &start, &count);
        cJSON_AddItemToArray(shards, cJSON_CreateNumber((double)count));
    }
    cJSON_AddNumberToObject(data, "test", (double)job->data.test.n);
    cJSON_AddNumberToObject(data, "features", job->data.train.dim);
    nt_blas_info b;
    nt_blas_info_get(&b);
    cJSON *blas = cJSON_AddObjectToObject(doc, "blas");
    cJSON_AddStringToObject(blas, "kernel", b.kernel);
    cJSON_AddStringToObject(blas, "chosen_by", b.selected ? "noether" : b.user_set ? "OPENBLAS_CORETYPE" : "OpenBLAS");
    if (b.selected) cJSON_AddStringToObject(blas, "openblas_fallback", b.fallback);
    if (b.better[0]) cJSON_AddStringToObject(blas, "better_for_this_cpu", b.better);
    cJSON_AddNumberToObject(blas, "threads", openblas_get_num_threads());
    const char *by;
    cJSON_AddNumberToObject(blas, "idle_spin_log2_cycles", nt_blas_idle_spin(&by));
    cJSON_AddStringToObject(blas, "idle_spin_set_by", by);
    return doc;
}

/* one line: the BLAS kernel in use and who chose it */
static void describe_blas(FILE *f)
{
    nt_blas_info b;
    nt_blas_info_get(&b);
    fprintf(f, "blas:    OpenBLAS, kernel %s (", b.kernel);
    if (b.selected) fprintf(f, "selected by noether for this CPU; OpenBLAS had chosen %s", b.fallback);
    else if (b.user_set) fprintf(f, "set by OPENBLAS_CORETYPE");
    else fprintf(f, "chosen by OpenBLAS");
    const char *by;
    const int spin = nt_blas_idle_spin(&by);
    fprintf(f, "), %d threads (idle ones spin 2^%d cycles, set by %s)", openblas_get_num_threads(), spin, by);
    if (b.better[0]) fprintf(f, "; this CPU supports the faster %s kernel", b.better);
    fputc('\n', f);
}

void cli_describe(FILE *f, const cli_job *job)
{
    const nt_model *m = &job->spec.model;
    fprintf(f, "spec:    %s\nmodel:   ", job->spec.path);
    if (m->image[1]) fprintf(f, "%d x %d x %d", m->image[0], m->image[1], m->image[2]);
    else if (m->sequence[0]) fprintf(f, "%d tokens x %d", m->sequence[0], m->sequence[1]);
    else fprintf(f, "%d", m->input);
    for (int i = 0; i < m->n_layers; i++) {
        const nt_layer *L = &m->layers[i];
        char phrase[160];
        nt_layer_registry(L->kind)->describe(L, phrase, sizeof phrase);
        fputs(phrase, f);
    }
    fprintf(f, "\nloss:    %s, weight decay %g\n", nt_loss_name(m->loss), m->weight_decay);
    fprintf(f, "data:    %s\nranks:   %d (training samples per rank:", job->data.desc, nt_parallel_size());
    for (int r = 0; r < nt_parallel_size(); r++) {
        int64_t start, count;
        nt_parallel_shard(cli_samples(job), r, nt_parallel_size(), &start, &count);
        fprintf(f, "%s %lld", r ? "," : "", (long long)count);
    }
    fprintf(f, ")\nparameters: d = %lld\n", (long long)m->d);
    fprintf(f, "  %-18s %10s  %s\n", "tensor", "offset", "shape");
    for (int t = 0; t < m->n_tensors; t++) {
        const nt_tensor *T = &m->tensors[t];
        fprintf(f, "  %-18s %10lld  %lld", T->name, (long long)T->offset, (long long)T->shape[0]);
        for (int a = 1; a < T->ndim; a++) fprintf(f, " x %lld", (long long)T->shape[a]);
        fputc('\n', f);
    }
}

int cmd_info(int argc, char **argv)
{
    const char *spec = NULL, *json = NULL, *params = NULL;
    cli_opt opts[] = {{"--json", 1, &json}, {"--params", 0, &params}, {NULL, 0, NULL}};
    cli_parse("info", usage, argc, argv, opts, &spec);
    cli_job job;
    cli_job_load(&job, "info", spec, params);
    if (json) cli_print_json(cli_info_json(&job));
    else {
        cli_describe(stdout, &job);
        describe_blas(stdout);
    }
    cli_job_free(&job);
    return 0;
}
