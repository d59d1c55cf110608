/* registry_shaped.c: the registry entries of the layers that need an image or a sequence:
 * conv, pool (avg, max), attention, the mean over tokens (registry.h). */
#include <stdio.h>
#include <string.h>
#include "registry.h"

#define TRY(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

/* ---- conv and pool: k x k windows at stride s over each channel (nn.Conv2d, nn.*Pool2d) -- */

static int window_parse(nt_spec_ctx *c, const cJSON *o, const char *where, nt_layer *L, int is_pool)
{
    int64_t kernel = 0, stride = 1;
    if (!cJSON_HasObjectItem(o, "kernel")) return nt_fail(c->err, NT_EINPUT, "%s: %s.kernel: missing", c->path, where);
    TRY(nt_spec_int(c, o, where, "kernel", 1, 1 << 12, &kernel));
    stride = is_pool ? kernel : 1;
    TRY(nt_spec_int(c, o, where, "stride", 1, 1 << 12, &stride));
    L->kernel = (int)kernel;
    L->stride = (int)stride;
    return NT_OK;
}

static int conv_parse(nt_spec_ctx *c, const cJSON *o, const char *where, nt_layer *L)
{
    int64_t units = 0, padding = 0;
    *L = (nt_layer){ .kind = NT_LAYER_CONV, .bias = 1 };
    TRY(window_parse(c, o, where, L, 0));
    TRY(nt_spec_int(c, o, where, "conv", 1, 1 << 16, &units));
    TRY(nt_spec_int(c, o, where, "padding", 0, 1 << 12, &padding));
    L->units = (int)units;
    L->padding = (int)padding;
    return nt_spec_bool(c, o, where, "bias", &L->bias);
}

static int pool_parse(nt_spec_ctx *c, const cJSON *o, const char *where, nt_layer *L)
{
    static const char *const pools[] = {"avg", "max"};
    int kind = 0;
    *L = (nt_layer){ .kind = NT_LAYER_POOL };
    TRY(window_parse(c, o, where, L, 1));
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "pool")))
        return nt_fail(c->err, NT_EINPUT, "%s: %s.pool: must be \"avg\", \"max\" or \"tokens\"", c->path, where);
    TRY(nt_spec_enum(c, o, where, "pool", pools, 2, &kind));
    L->pool_max = kind;
    return NT_OK;
}

/* out = (in + 2 pad - k) / s + 1 per side; a conv sets the channels */
static int window_shape(const nt_layer *L, int i, const int in[3], int *tokens, int out[3], nt_error *err)
{
    const char *what = L->kind == NT_LAYER_CONV ? "conv" : "pool";
    const int pad = L->kind == NT_LAYER_CONV ? L->padding : 0;
    if (in[1] == 0)
        return nt_fail(err, NT_EINPUT, "model.layers[%d].%s: needs an image input (model.input: [C, H, W])", i, what);
    if (L->kernel < 1 || L->stride < 1 || pad < 0)
        return nt_fail(err, NT_EINPUT, "model.layers[%d].%s: kernel and stride must be positive, padding not negative", i, what);
    out[1] = (in[1] + 2 * pad - L->kernel) / L->stride + 1;
    out[2] = (in[2] + 2 * pad - L->kernel) / L->stride + 1;
    if (in[1] + 2 * pad < L->kernel || in[2] + 2 * pad < L->kernel)
        return nt_fail(err, NT_EINPUT, "model.layers[%d].%s: kernel %d is larger than the %d x %d image (padding %d)", i,
                       what, L->kernel, in[1], in[2], pad);
    if (L->kind == NT_LAYER_CONV) {
        if (L->units <= 0)
            return nt_fail(err, NT_EINPUT, "model.layers[%d].conv: must be a positive integer, got %d", i, L->units);
        out[0] = L->units;
    }
    return NT_OK;
}

/* weight (C_out x C_in x k x k), bias (C_out) */
static void conv_tensors(nt_model *m, int i)
{
    const nt_layer *L = &m->layers[i];
    const int64_t w[4] = { L->units, L->shape_in[0], L->kernel, L->kernel }, b = L->units;
    nt_model_add_tensor(m, i, "weight", 4, w);
    if (L->bias) nt_model_add_tensor(m, i, "bias", 1, &b);
}

static void conv_describe(const nt_layer *L, char *buf, size_t cap)
{
    snprintf(buf, cap, " -> conv %d (%dx%d, stride %d, padding %d%s)", L->units, L->kernel, L->kernel, L->stride,
             L->padding, L->bias ? "" : ", no bias");
}

static void conv_json(const nt_layer *L, cJSON *o)
{
    cJSON_AddNumberToObject(o, "conv", L->units);
    cJSON_AddNumberToObject(o, "kernel", L->kernel);
    cJSON_AddNumberToObject(o, "stride", L->stride);
    cJSON_AddNumberToObject(o, "padding", L->padding);
    cJSON_AddBoolToObject(o, "bias", L->bias);
}

const nt_layer_info nt_reg_conv = {
    .kind = NT_LAYER_CONV, .name = "conv", .key = "conv", .form = "{\"conv\": C, \"kernel\": K}",
    .keys = (const char *const[]){ "conv", "kernel", "stride", "padding", "bias", NULL },
    .aliases = (const char *const[]){ "conv2d", "Conv2d", "convolution", NULL },
    .example = "{\"input\": [1, 4, 4], \"layers\": [{\"conv\": 2, \"kernel\": 3, \"padding\": 1}, {\"flatten\": true}, "
               "{\"dense\": 1}], \"loss\": \"mse\"}",
    .parse = conv_parse, .shape = window_shape, .tensors = conv_tensors, .tape = nt_tape_conv,
    .describe = conv_describe, .to_json = conv_json,
};

static void pool_describe(const nt_layer *L, char *buf, size_t cap)
{
    snprintf(buf, cap, " -> %s pool %dx%d (stride %d)", L->pool_max ? "max" : "avg", L->kernel, L->kernel, L->stride);
}

static void pool_json(const nt_layer *L, cJSON *o)
{
    cJSON_AddStringToObject(o, "pool", L->pool_max ? "max" : "avg");
    cJSON_AddNumberToObject(o, "kernel", L->kernel);
    cJSON_AddNumberToObject(o, "stride", L->stride);
}

/* average pooling is linear (degree 1, odd); max pooling is of degree 1 but not odd */
static nt_traits pool_traits(const nt_layer *L)
{
    return (nt_traits){ .degree = 1, .odd = !L->pool_max, .linear = !L->pool_max };
}

const nt_layer_info nt_reg_pool = {
    .kind = NT_LAYER_POOL, .name = "pool", .key = "pool", .form = "{\"pool\": \"avg\"|\"max\", \"kernel\": K}",
    .keys = (const char *const[]){ "pool", "kernel", "stride", NULL },
    .aliases = (const char *const[]){ "maxpool", "avgpool", "MaxPool2d", "AvgPool2d", "pooling", NULL },
    .example = "{\"input\": [1, 4, 4], \"layers\": [{\"conv\": 2, \"kernel\": 1}, {\"pool\": \"max\", \"kernel\": 2}, "
               "{\"flatten\": true}, {\"dense\": 1}], \"loss\": \"mse\"}",
    .parse = pool_parse, .shape = window_shape, .tape = nt_tape_pool,
    .describe = pool_describe, .to_json = pool_json, .traits = pool_traits,
};

/* ---- attention: nn.MultiheadAttention as self-attention, H heads ------------------------ */

static int attention_parse(nt_spec_ctx *c, const cJSON *o, const char *where, nt_layer *L)
{
    int64_t heads = 0;
    TRY(nt_spec_int(c, o, where, "attention", 1, 1 << 12, &heads));
    *L = (nt_layer){ .kind = NT_LAYER_ATTENTION, .heads = (int)heads, .bias = 1 };
    TRY(nt_spec_bool(c, o, where, "causal", &L->causal));
    return nt_spec_bool(c, o, where, "bias", &L->bias);
}

/* the sequence-only kinds: attention keeps (T, D), the mean over tokens gives (D) */
static int tokens_shape(const nt_layer *L, int i, const int in[3], int *tokens, int out[3], nt_error *err)
{
    const char *what = L->kind == NT_LAYER_ATTENTION ? "attention" : "pool";
    if (!*tokens) return nt_fail(err, NT_EINPUT, "model.layers[%d].%s: needs a sequence input (model.input: [T, D])", i, what);
    if (L->kind == NT_LAYER_MEAN_TOKENS) { *tokens = 0; return NT_OK; }
    if (L->heads < 1 || in[0] % L->heads)
        return nt_fail(err, NT_EINPUT, "model.layers[%d].attention: %d heads do not divide the %d features of a token",
                       i, L->heads, in[0]);
    return NT_OK;
}

/* in_proj_weight (3D x D) = [W_Q; W_K; W_V], in_proj_bias (3D), out_proj.weight (D x D), out_proj.bias (D) */
static void attention_tensors(nt_model *m, int i)
{
    const nt_layer *L = &m->layers[i];
    const int64_t D = L->shape_in[0], in_w[2] = { 3 * D, D }, in_b = 3 * D, out_w[2] = { D, D };
    nt_model_add_tensor(m, i, "in_proj_weight", 2, in_w);
    if (L->bias) nt_model_add_tensor(m, i, "in_proj_bias", 1, &in_b);
    nt_model_add_tensor(m, i, "out_proj.weight", 2, out_w);
    if (L->bias) nt_model_add_tensor(m, i, "out_proj.bias", 1, &D);
}

static void attention_describe(const nt_layer *L, char *buf, size_t cap)
{
    snprintf(buf, cap, " -> attention (%d heads%s%s)", L->heads, L->causal ? ", causal" : "", L->bias ? "" : ", no bias");
}

static void attention_json(const nt_layer *L, cJSON *o)
{
    cJSON_AddNumberToObject(o, "attention", L->heads);
    cJSON_AddBoolToObject(o, "causal", L->causal);
    cJSON_AddBoolToObject(o, "bias", L->bias);
}

const nt_layer_info nt_reg_attention = {
    .kind = NT_LAYER_ATTENTION, .name = "attention", .key = "attention", .form = "{\"attention\": HEADS}",
    .keys = (const char *const[]){ "attention", "causal", "bias", NULL },
    .aliases = (const char *const[]){ "MultiheadAttention", "multihead_attention", "self_attention", "attn", NULL },
    .example = "{\"input\": [3, 4], \"layers\": [{\"attention\": 2, \"causal\": true}, {\"pool\": \"tokens\"}, "
               "{\"dense\": 1}], \"loss\": \"mse\"}",
    .parse = attention_parse, .shape = tokens_shape, .tensors = attention_tensors, .tape = nt_tape_attention,
    .describe = attention_describe, .to_json = attention_json,
};

/* ---- the mean over tokens: a sequence (T, D) to a vector (D) ----------------------------- */

static int mean_tokens_parse(nt_spec_ctx *c, const cJSON *o, const char *where, nt_layer *L)
{
    *L = (nt_layer){ .kind = NT_LAYER_MEAN_TOKENS };
    return NT_OK;
}

static void mean_tokens_describe(const nt_layer *L, char *buf, size_t cap)
{
    snprintf(buf, cap, " -> mean over tokens");
}

static void mean_tokens_json(const nt_layer *L, cJSON *o)
{
    cJSON_AddStringToObject(o, "pool", "tokens");
}

const nt_layer_info nt_reg_mean_tokens = {
    .kind = NT_LAYER_MEAN_TOKENS, .name = "mean over tokens", .key = "pool", .value = "tokens",
    .form = "{\"pool\": \"tokens\"}",
    .keys = (const char *const[]){ "pool", NULL }, .aliases = (const char *const[]){ "mean", NULL },
    .example = "{\"input\": [3, 4], \"layers\": [{\"dense\": 2}, {\"pool\": \"tokens\"}, {\"dense\": 1}], \"loss\": \"mse\"}",
    .parse = mean_tokens_parse, .shape = tokens_shape, .tape = nt_tape_pool,
    .describe = mean_tokens_describe, .to_json = mean_tokens_json,
};
