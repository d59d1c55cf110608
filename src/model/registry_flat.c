/* registry_flat.c: the registry entries of the layers that act on a vector (or on each
 * token, or on an image as a whole): dense, act, the two normalizations, the two ends of a
 * residual block, flatten.  Each entry is everything noether knows of its kind but the
 * engine's rules (src/engine/ops.c) and the catalogue's symmetries (src/transform/). */
#include <stdio.h>
#include <string.h>
#include "registry.h"

#define TRY(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

static const int64_t *dims(int64_t a, int64_t b, int64_t *s)
{
    s[0] = a; s[1] = b;
    return s;
}

/* ---- dense: z = h W^T + b (nn.Linear) --------------------------------------------- */

static int dense_parse(nt_spec_ctx *c, const cJSON *o, const char *where, nt_layer *L)
{
    int64_t units = 0;
    TRY(nt_spec_int(c, o, where, "dense", 1, 1 << 24, &units));
    *L = (nt_layer){ .kind = NT_LAYER_DENSE, .units = (int)units, .bias = 1 };
    return nt_spec_bool(c, o, where, "bias", &L->bias);
}

static int dense_shape(const nt_layer *L, int i, const int in[3], int *tokens, int out[3], nt_error *err)
{
    if (in[1] != 0)
        return nt_fail(err, NT_EINPUT, "model.layers[%d].dense: its input is an image %d x %d x %d: flatten it first "
                       "({\"flatten\": true})", i, in[0], in[1], in[2]);
    if (L->units <= 0)
        return nt_fail(err, NT_EINPUT, "model.layers[%d].dense: must be a positive integer, got %d", i, L->units);
    out[0] = L->units;
    return NT_OK;
}

/* weight (units x width of one token), bias (units) */
static void dense_tensors(nt_model *m, int i)
{
    const nt_layer *L = &m->layers[i];
    int64_t s[2];
    nt_model_add_tensor(m, i, "weight", 2, dims(L->units, L->shape_in[0], s));
    if (L->bias) nt_model_add_tensor(m, i, "bias", 1, dims(L->units, 0, s));
}

static void dense_describe(const nt_layer *L, char *buf, size_t cap)
{
    snprintf(buf, cap, " -> dense %d%s", L->units, L->bias ? "" : " (no bias)");
}

static void dense_json(const nt_layer *L, cJSON *o)
{
    cJSON_AddNumberToObject(o, "dense", L->units);
    cJSON_AddBoolToObject(o, "bias", L->bias);
}

const nt_layer_info nt_reg_dense = {
    .kind = NT_LAYER_DENSE, .name = "dense", .key = "dense", .form = "{\"dense\": N}",
    .keys = (const char *const[]){ "dense", "bias", NULL },
    .aliases = (const char *const[]){ "linear", "Linear", "fc", NULL },
    .example = "{\"input\": 3, \"layers\": [{\"dense\": 4}, {\"dense\": 2, \"bias\": false}], \"loss\": \"mse\"}",
    .parse = dense_parse, .shape = dense_shape, .tensors = dense_tensors, .tape = nt_tape_dense,
    .describe = dense_describe, .to_json = dense_json,
};

/* ---- act: sigma elementwise ----------------------------------------------------------- */

static int act_parse(nt_spec_ctx *c, const cJSON *o, const char *where, nt_layer *L)
{
    const char *acts[NT_ACT_COUNT];
    for (int i = 0; i < NT_ACT_COUNT; i++) acts[i] = nt_act_name((nt_act)i);
    int a = 0;
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "act")))
        return nt_fail(c->err, NT_EINPUT, "%s: %s.act: must be a string", c->path, where);
    TRY(nt_spec_enum(c, o, where, "act", acts, NT_ACT_COUNT, &a));
    *L = (nt_layer){ .kind = NT_LAYER_ACT, .act = (nt_act)a, .alpha = 0.01 };
    if (cJSON_HasObjectItem(o, "alpha") && a != NT_ACT_LEAKY_RELU)
        return nt_fail(c->err, NT_EINPUT, "%s: %s.alpha: only leaky_relu takes alpha", c->path, where);
    return nt_spec_num(c, o, where, "alpha", -1e6, 1e6, &L->alpha);
}

/* the same shape (also for flatten's and the residual ends' callers below) */
static int same_shape(const nt_layer *L, int i, const int in[3], int *tokens, int out[3], nt_error *err)
{
    return NT_OK;
}

static void act_describe(const nt_layer *L, char *buf, size_t cap)
{
    snprintf(buf, cap, " -> %s", nt_act_name(L->act));
}

static void act_json(const nt_layer *L, cJSON *o)
{
    cJSON_AddStringToObject(o, "act", nt_act_name(L->act));
    if (L->act == NT_ACT_LEAKY_RELU) cJSON_AddNumberToObject(o, "alpha", L->alpha);
}

static nt_traits act_traits(const nt_layer *L)
{
    return nt_act_traits(L->act);
}

const nt_layer_info nt_reg_act = {
    .kind = NT_LAYER_ACT, .name = "act", .key = "act", .form = "{\"act\": NAME}",
    .keys = (const char *const[]){ "act", "alpha", NULL },
    .aliases = (const char *const[]){ "activation", NULL },
    .example = "{\"input\": 3, \"layers\": [{\"dense\": 4}, {\"act\": \"leaky_relu\", \"alpha\": 0.1}, {\"dense\": 1}], "
               "\"loss\": \"mse\"}",
    .parse = act_parse, .shape = same_shape, .tape = nt_tape_elementwise,
    .describe = act_describe, .to_json = act_json, .traits = act_traits,
};

/* ---- layernorm and batchnorm: y = weight (z - mean) / sqrt(var + eps) + bias ------------ */

static int norm_parse(nt_spec_ctx *c, const cJSON *o, const char *where, nt_layer *L)
{
    static const char *const norms[] = {"layer", "batch"};
    int kind = 0;
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "norm")))
        return nt_fail(c->err, NT_EINPUT, "%s: %s.norm: must be a string (\"layer\" or \"batch\")", c->path, where);
    TRY(nt_spec_enum(c, o, where, "norm", norms, 2, &kind));
    *L = (nt_layer){ .kind = kind ? NT_LAYER_BATCHNORM : NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5 };
    TRY(nt_spec_bool(c, o, where, "affine", &L->affine));
    return nt_spec_num(c, o, where, "eps", 0.0, 1.0, &L->eps);
}

static int batchnorm_shape(const nt_layer *L, int i, const int in[3], int *tokens, int out[3], nt_error *err)
{
    if (*tokens)
        return nt_fail(err, NT_EINPUT, "model.layers[%d].norm: batch normalization of a sequence is not supported "
                       "(use \"layer\")", i);
    return NT_OK;
}

/* weight and bias of nt_layer_norm_params(L) each, when affine */
static void norm_tensors(nt_model *m, int i)
{
    const nt_layer *L = &m->layers[i];
    const int64_t wn = nt_layer_norm_params(L);   /* per channel for BatchNorm2d, per token on a sequence */
    if (!L->affine) return;
    nt_model_add_tensor(m, i, "weight", 1, &wn);
    nt_model_add_tensor(m, i, "bias", 1, &wn);
}

static void norm_describe(const nt_layer *L, char *buf, size_t cap)
{
    snprintf(buf, cap, " -> %s%s (eps %g)", L->kind == NT_LAYER_LAYERNORM ? "layernorm" : "batchnorm (batch statistics)",
             L->affine ? "" : " (no affine)", L->eps);
}

static void norm_json(const nt_layer *L, cJSON *o)
{
    cJSON_AddStringToObject(o, "norm", L->kind == NT_LAYER_LAYERNORM ? "layer" : "batch");
    cJSON_AddBoolToObject(o, "affine", L->affine);
    cJSON_AddNumberToObject(o, "eps", L->eps);
}

static const char *const norm_keys[] = { "norm", "affine", "eps", NULL };
static const char *const norm_aliases[] = { "layernorm", "layer_norm", "LayerNorm", "batchnorm", "batch_norm",
                                            "BatchNorm1d", "normalization", NULL };

const nt_layer_info nt_reg_layernorm = {
    .kind = NT_LAYER_LAYERNORM, .name = "layernorm", .key = "norm", .value = "layer", .form = "{\"norm\": \"layer\"}",
    .keys = norm_keys, .aliases = norm_aliases,
    .example = "{\"input\": 3, \"layers\": [{\"dense\": 4}, {\"norm\": \"layer\"}, {\"dense\": 1}], \"loss\": \"mse\"}",
    .parse = norm_parse, .shape = same_shape, .tensors = norm_tensors, .tape = nt_tape_norm,
    .describe = norm_describe, .to_json = norm_json, .unit_gain = 1,
};

const nt_layer_info nt_reg_batchnorm = {
    .kind = NT_LAYER_BATCHNORM, .name = "batchnorm", .key = "norm", .value = "batch", .form = "{\"norm\": \"batch\"}",
    .keys = norm_keys, .aliases = norm_aliases,
    .example = "{\"input\": 3, \"layers\": [{\"dense\": 4}, {\"norm\": \"batch\", \"eps\": 0.001}, {\"dense\": 1}], "
               "\"loss\": \"mse\"}",
    .parse = norm_parse, .shape = batchnorm_shape, .tensors = norm_tensors, .tape = nt_tape_norm,
    .describe = norm_describe, .to_json = norm_json, .unit_gain = 1, .couples_samples = 1,
};

/* ---- residual: {"residual": [layers]} is BRANCH, its layers, ADD (spec.c flattens it) -- */

static void branch_describe(const nt_layer *L, char *buf, size_t cap)
{
    snprintf(buf, cap, " -> residual [");
}

static void add_describe(const nt_layer *L, char *buf, size_t cap)
{
    snprintf(buf, cap, " ] + skip");
}

static void branch_json(const nt_layer *L, cJSON *o)
{
    cJSON_AddStringToObject(o, "residual", L->kind == NT_LAYER_BRANCH ? "begin" : "end");
}

static const char *const residual_example =
    "{\"input\": 3, \"layers\": [{\"dense\": 4}, {\"residual\": [{\"act\": \"tanh\"}, {\"dense\": 4}]}, {\"dense\": 1}], "
    "\"loss\": \"mse\"}";

const nt_layer_info nt_reg_branch = {
    .kind = NT_LAYER_BRANCH, .name = "residual", .key = "residual", .form = "{\"residual\": [layers]}",
    .keys = (const char *const[]){ "residual", NULL }, .aliases = (const char *const[]){ "skip", NULL },
    .example = residual_example,
    .shape = same_shape, .tape = nt_tape_residual, .describe = branch_describe, .to_json = branch_json,
};

const nt_layer_info nt_reg_add = {
    .kind = NT_LAYER_ADD, .name = "residual end",
    .keys = (const char *const[]){ NULL }, .aliases = (const char *const[]){ NULL },
    .example = residual_example,
    .shape = same_shape, .tape = nt_tape_residual, .describe = add_describe, .to_json = branch_json,
};

/* ---- flatten: an image (C, H, W) or a sequence (T, D) to one vector, C-order ------------ */

static int flatten_parse(nt_spec_ctx *c, const cJSON *o, const char *where, nt_layer *L)
{
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "flatten")))
        return nt_fail(c->err, NT_EINPUT, "%s: %s.flatten: must be true", c->path, where);
    *L = (nt_layer){ .kind = NT_LAYER_FLATTEN };
    return NT_OK;
}

static int flatten_shape(const nt_layer *L, int i, const int in[3], int *tokens, int out[3], nt_error *err)
{
    const int width = in[1] ? in[0] * in[1] * in[2] : in[0];
    out[0] = *tokens ? *tokens * width : width;
    out[1] = out[2] = 0;
    *tokens = 0;
    return NT_OK;
}

static void flatten_describe(const nt_layer *L, char *buf, size_t cap)
{
    snprintf(buf, cap, " -> flatten");
}

static void flatten_json(const nt_layer *L, cJSON *o)
{
    cJSON_AddBoolToObject(o, "flatten", 1);
}

const nt_layer_info nt_reg_flatten = {
    .kind = NT_LAYER_FLATTEN, .name = "flatten", .key = "flatten", .form = "{\"flatten\": true}",
    .keys = (const char *const[]){ "flatten", NULL }, .aliases = (const char *const[]){ "Flatten", "reshape", NULL },
    .example = "{\"input\": [2, 3, 3], \"layers\": [{\"conv\": 2, \"kernel\": 2}, {\"flatten\": true}, {\"dense\": 1}], "
               "\"loss\": \"mse\"}",
    .parse = flatten_parse, .shape = flatten_shape, .tape = nt_tape_elementwise,
    .describe = flatten_describe, .to_json = flatten_json,
};
