/* registry.h: one entry per layer kind, the only place a fact about a kind lives
 * (docs/adding-a-layer.md).  The spec reader finds a layer's kind by its key, checks its
 * keys and parses it; nt_model_init derives its shape and its parameter tensors; the tape
 * builds its nodes from those tensors' offsets; nt_init_params, `noether info` and the
 * catalogue read its initialization, its description and its symmetry traits here.
 * Internal to the library (the CLI and the tests link the static library). */
#ifndef NT_REGISTRY_H
#define NT_REGISTRY_H
#include <stddef.h>
#include <cJSON.h>
#include "noether.h"
#include "../spec/spec_internal.h"

struct nt_tape_build;   /* engine/tape.h */

/* Symmetry traits of a layer that maps each unit (channel, token) alone: docs/theory.md §5.
 * degree: sigma(c z) = c^degree sigma(z) for c > 0 (positive homogeneity; 0: none);
 * odd: sigma(-z) = -sigma(z); even: sigma(-z) = sigma(z); linear: sigma(z) = z. */
typedef struct {
    double degree;
    int odd, even, linear;
} nt_traits;

/* The traits of an activation (the one place they are stated). */
nt_traits nt_act_traits(nt_act a);

typedef struct {
    nt_layer_kind kind;
    const char *name;             /* in messages and docs: "dense", "layernorm" */
    const char *key;              /* the spec key that names the kind; NULL: none of its own */
    const char *value;            /* when kinds share a key, the string value naming this one, else NULL */
    const char *const *keys;      /* every key its object may hold, its own key first; NULL-terminated */
    const char *const *aliases;   /* other names a user may write for the key (PyTorch's), for "did you mean" */
    const char *form;             /* how a spec writes it, for messages: {"dense": N} */
    const char *example;          /* a whole model (spec "model" object) using the kind (tests/test_registry.c) */
    /* the layer from its object o at key path `where` (its keys already checked) */
    int (*parse)(nt_spec_ctx *c, const cJSON *o, const char *where, nt_layer *L);
    /* the output shape (C, H, W; H = 0: flat) from the input shape in; on a sequence *tokens
     * is T (in one token's shape) and is set to the output's T; NT_EINPUT naming
     * model.layers[i] on an impossible size */
    int (*shape)(const nt_layer *L, int i, const int in[3], int *tokens, int out[3], nt_error *err);
    /* the layer's parameter tensors, in PyTorch's parameters() order (nt_model_add_tensor);
     * NULL: none */
    void (*tensors)(nt_model *m, int i);
    /* the tape nodes of the layer (engine/tape_layers.c) */
    void (*tape)(struct nt_tape_build *b, const nt_layer *L);
    /* one phrase for `noether info` (" -> dense 16") and the layer as `info --json` shows it */
    void (*describe)(const nt_layer *L, char *buf, size_t cap);
    void (*to_json)(const nt_layer *L, cJSON *o);
    int unit_gain;                /* initialized weight 1, bias 0 (a normalization) instead of drawn */
    int couples_samples;          /* its value depends on the whole batch (batch statistics) */
    /* elementwise per unit (channel, token): its traits; NULL: not elementwise */
    nt_traits (*traits)(const nt_layer *L);
} nt_layer_info;

/* The entry of a kind (NULL for a kind with none: tests/test_registry.c fails then). */
const nt_layer_info *nt_layer_registry(nt_layer_kind kind);
/* Every key any layer object may hold, then every alias, for "did you mean": into names
 * (at most cap, each once); returns how many. */
#define NT_LAYER_NAMES_MAX 128
int nt_layer_all_keys(const char **names, int cap);
/* 1 when s is a key of some kind's object */
int nt_layer_key_known(const char *s);
/* The layer key a user most likely meant by s (an alias, such as "linear", as its kind's
 * key, "dense"), or NULL when no key or alias is near (nt_suggest). */
const char *nt_layer_key_meant(const char *s);
/* Why a layer PyTorch has is refused ("dropout"), or NULL. */
const char *nt_layer_refused(const char *key);
/* The most tensors a layer has (attention: 4). */
#define NT_LAYER_MAX_TENSORS 4
/* Adds tensor "i.what" of layer i, shape s (ndim entries), at the end of the layout. */
void nt_model_add_tensor(nt_model *m, int i, const char *what, int ndim, const int64_t *s);
/* The first tensor of layer i and how many it has (*n = 0: none). */
const nt_tensor *nt_layer_tensors(const nt_model *m, int i, int *n);

/* engine/tape_layers.c: the tape builders the entries name */
void nt_tape_dense(struct nt_tape_build *b, const nt_layer *L);
void nt_tape_elementwise(struct nt_tape_build *b, const nt_layer *L);
void nt_tape_norm(struct nt_tape_build *b, const nt_layer *L);
void nt_tape_residual(struct nt_tape_build *b, const nt_layer *L);
void nt_tape_conv(struct nt_tape_build *b, const nt_layer *L);
void nt_tape_pool(struct nt_tape_build *b, const nt_layer *L);
void nt_tape_attention(struct nt_tape_build *b, const nt_layer *L);

/* registry_flat.c and registry_shaped.c: the entries (registry.c puts them in a table). */
extern const nt_layer_info nt_reg_dense, nt_reg_act, nt_reg_layernorm, nt_reg_batchnorm, nt_reg_branch, nt_reg_add,
    nt_reg_conv, nt_reg_pool, nt_reg_flatten, nt_reg_attention, nt_reg_mean_tokens;

#endif
