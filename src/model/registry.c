/* registry.c: the table of layer kinds (registry.h; the entries are in registry_flat.c and
 * registry_shaped.c) and what every site reads from it. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "registry.h"

static const nt_layer_info *const table[NT_LAYER_COUNT] = {
    [NT_LAYER_DENSE] = &nt_reg_dense,
    [NT_LAYER_ACT] = &nt_reg_act,
    [NT_LAYER_LAYERNORM] = &nt_reg_layernorm,
    [NT_LAYER_BATCHNORM] = &nt_reg_batchnorm,
    [NT_LAYER_BRANCH] = &nt_reg_branch,
    [NT_LAYER_ADD] = &nt_reg_add,
    [NT_LAYER_CONV] = &nt_reg_conv,
    [NT_LAYER_POOL] = &nt_reg_pool,
    [NT_LAYER_FLATTEN] = &nt_reg_flatten,
    [NT_LAYER_ATTENTION] = &nt_reg_attention,
    [NT_LAYER_MEAN_TOKENS] = &nt_reg_mean_tokens,
};

const nt_layer_info *nt_layer_registry(nt_layer_kind kind)
{
    return (int)kind >= 0 && kind < NT_LAYER_COUNT ? table[kind] : NULL;
}

int nt_layer_all_keys(const char **names, int cap)
{
    int k = 0;
    for (int i = 0; i < NT_LAYER_COUNT; i++) {
        const nt_layer_info *R = table[i];
        for (int pass = 0; R && pass < 2; pass++)
            for (const char *const *s = pass ? R->aliases : R->keys; s && *s && k < cap; s++) {
                int seen = 0;
                for (int j = 0; j < k; j++) seen |= !strcmp(names[j], *s);
                if (!seen) names[k++] = *s;
            }
    }
    return k;
}

void nt_model_add_tensor(nt_model *m, int i, const char *what, int ndim, const int64_t *s)
{
    nt_tensor *t = &m->tensors[m->n_tensors];
    const nt_tensor *prev = m->n_tensors ? t - 1 : NULL;
    snprintf(t->name, sizeof t->name, "%d.%s", i, what);
    t->layer = i;
    t->offset = prev ? prev->offset + prev->size : 0;
    t->ndim = ndim;
    t->size = 1;
    for (int a = 0; a < ndim; a++) t->size *= t->shape[a] = s[a];
    m->n_tensors++;
}

const nt_tensor *nt_layer_tensors(const nt_model *m, int i, int *n)
{
    int first = -1;
    *n = 0;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].layer == i) {
            if (first < 0) first = t;
            (*n)++;
        }
    return first < 0 ? NULL : &m->tensors[first];
}

int nt_layer_key_known(const char *s)
{
    for (int i = 0; i < NT_LAYER_COUNT; i++)
        for (const char *const *k = table[i] ? table[i]->keys : NULL; k && *k; k++)
            if (!strcmp(*k, s)) return 1;
    return 0;
}

const char *nt_layer_key_meant(const char *s)
{
    const char *names[NT_LAYER_NAMES_MAX];
    const char *near = nt_suggest(s, names, nt_layer_all_keys(names, NT_LAYER_NAMES_MAX));
    for (int i = 0; near && i < NT_LAYER_COUNT; i++)
        for (const char *const *a = table[i] ? table[i]->aliases : NULL; a && *a; a++)
            if (!strcmp(*a, near) && table[i]->key) return table[i]->key;
    return near;
}

/* Layers PyTorch has and noether refuses on principle, with the reason. */
static const struct { const char *key, *why; } refused[] = {
    { "dropout", "dropout is not supported: it makes the loss random, and the Hessian of a random loss is not "
                 "defined (noether differentiates a deterministic loss exactly); leave it out, as PyTorch's eval() "
                 "mode does" },
};

const char *nt_layer_refused(const char *key)
{
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (!strcasecmp(refused[i].key, key)) return refused[i].why;
    return NULL;
}
