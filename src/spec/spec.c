/* spec.c: the spec (one JSON document, docs/interface.md) into an nt_spec.  Strict: an unknown
 * key, a value of the wrong type or an impossible size is an error naming the key as a
 * path ("model.layers[2].dense"), never silently ignored. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cJSON.h>
#include "spec_internal.h"

/* The built-in default: a ReLU MLP with a softmax head on the wine data (178 x 13). */
static const char default_spec[] =
    "{\n"
    "  \"model\": {\"input\": 13, \"layers\": [{\"dense\": 16}, {\"act\": \"relu\"},\n"
    "             {\"dense\": 16}, {\"act\": \"relu\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"},\n"
    "  \"data\": {\"source\": \"builtin\", \"name\": \"wine\", \"standardize\": true,\n"
    "            \"test_fraction\": 0.25, \"split_seed\": 0},\n"
    "  \"init\": {\"seed\": 0, \"scheme\": \"he\"},\n"
    "  \"weight_decay\": 0.0001,\n"
    "  \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"steps\": 2000, \"batch\": 32, \"seed\": 0},\n"
    "  \"analysis\": {\"every\": 100, \"spectrum\": {\"top\": 10, \"bottom\": 10}}\n"
    "}\n";

const char *nt_default_spec_json(void)
{
    return default_spec;
}

int nt_resolve_path(const char *dir, const char *path, char *out)
{
    int n = (path[0] == '/' || dir[0] == 0) ? snprintf(out, NT_PATH_MAX, "%s", path)
                                            : snprintf(out, NT_PATH_MAX, "%s/%s", dir, path);
    return n < 0 || n >= NT_PATH_MAX;
}

/* ---- strict accessors: each names the key path in its error ------------------------ */

typedef struct {
    const nt_spec *spec;
    nt_error *err;
} ctx;

/* "where.key", or "key" at the top level */
static const char *keypath(const char *where, const char *key)
{
    static __thread char buf[400];
    snprintf(buf, sizeof buf, "%s%s%s", where, *where ? "." : "", key);
    return buf;
}

#define FAIL(c, ...) nt_fail((c)->err, NT_EINPUT, __VA_ARGS__)

/* every key of obj must be in the NULL-terminated list `allowed` */
static int check_keys(ctx *c, const cJSON *obj, const char *where, const char *const *allowed)
{
    if (!cJSON_IsObject(obj))
        return FAIL(c, "%s: %s: must be an object", c->spec->path, where);
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++) ok |= strcmp(it->string, *a) == 0;
        char cut[NT_CUT_BUF];
        if (!ok) return FAIL(c, "%s: %s%s%s: unknown key", c->spec->path, where, *where ? "." : "", nt_json_cut(it->string, cut));
    }
    return NT_OK;
}

static int get_num(ctx *c, const cJSON *obj, const char *where, const char *key, double lo,
                   double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return NT_OK;   /* keep the default */
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return FAIL(c, "%s: %s: must be a number", c->spec->path, keypath(where, key));
    if (v->valuedouble < lo || v->valuedouble > hi)
        return FAIL(c, "%s: %s: %g is out of range [%g, %g]", c->spec->path, keypath(where, key),
                    v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return NT_OK;
}

static int get_int(ctx *c, const cJSON *obj, const char *where, const char *key, int64_t lo,
                   int64_t hi, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return NT_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return FAIL(c, "%s: %s: must be an integer", c->spec->path, keypath(where, key));
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return FAIL(c, "%s: %s: %.0f is out of range [%lld, %lld]", c->spec->path, keypath(where, key),
                    v->valuedouble, (long long)lo, (long long)hi);
    *out = (int64_t)v->valuedouble;
    return NT_OK;
}

static int get_bool(ctx *c, const cJSON *obj, const char *where, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return NT_OK;
    if (!cJSON_IsBool(v)) return FAIL(c, "%s: %s: must be true or false", c->spec->path, keypath(where, key));
    *out = cJSON_IsTrue(v);
    return NT_OK;
}

/* a string; with `path` set it is a file name resolved against the spec's folder */
static int get_str(ctx *c, const cJSON *obj, const char *where, const char *key, int required,
                   int is_path, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return required ? FAIL(c, "%s: %s: missing", c->spec->path, keypath(where, key)) : NT_OK;
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return FAIL(c, "%s: %s: must be a non-empty string", c->spec->path, keypath(where, key));
    size_t len = strlen(v->valuestring);
    if (len >= cap - 1)
        return FAIL(c, "%s: %s: too long (%zu bytes, at most %zu)", c->spec->path, keypath(where, key), len, cap - 2);
    if (is_path && nt_resolve_path(c->spec->dir, v->valuestring, out))
        return FAIL(c, "%s: %s: the path with the spec's folder is longer than %d bytes", c->spec->path,
                    keypath(where, key), NT_PATH_MAX - 1);
    if (!is_path) snprintf(out, cap, "%s", v->valuestring);
    return NT_OK;
}

/* a string that must be one of names[0..n) */
static int get_enum(ctx *c, const cJSON *obj, const char *where, const char *key,
                    const char *const *names, int n, int *out)
{
    char s[64] = "";
    int rc = get_str(c, obj, where, key, 0, 0, s, sizeof s);
    if (rc || !s[0]) return rc;
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) { *out = i; return NT_OK; }
    char list[256] = "";
    for (int i = 0; i < n; i++) { strcat(list, i ? ", " : ""); strcat(list, names[i]); }
    return FAIL(c, "%s: %s: '%s' is not one of %s", c->spec->path, keypath(where, key), s, list);
}

#define TRY(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

/* ---- sections ------------------------------------------------------------------------ */

/* the activation names, in nt_act order (model/act.c owns them) */
static void act_names(const char **names)
{
    for (int i = 0; i < NT_ACT_COUNT; i++) names[i] = nt_act_name((nt_act)i);
}

static int parse_layer(ctx *c, const cJSON *o, const char *where, nt_layer *L)
{
    static const char *const keys[] = {"dense", "bias", "act", "alpha", "norm", "affine", "eps", "conv", "kernel",
                                       "stride", "padding", "pool", "flatten", "attention", "causal", NULL};
    TRY(check_keys(c, o, where, keys));
    int has_dense = cJSON_HasObjectItem(o, "dense"), has_act = cJSON_HasObjectItem(o, "act"),
        has_norm = cJSON_HasObjectItem(o, "norm"), has_conv = cJSON_HasObjectItem(o, "conv"),
        has_pool = cJSON_HasObjectItem(o, "pool"), has_flat = cJSON_HasObjectItem(o, "flatten"),
        has_attn = cJSON_HasObjectItem(o, "attention");
    if (has_dense + has_act + has_norm + has_conv + has_pool + has_flat + has_attn != 1)
        return FAIL(c, "%s: %s: a layer is one of {\"dense\": N}, {\"act\": NAME}, {\"norm\": \"layer\"|\"batch\"}, "
                    "{\"conv\": C, \"kernel\": K}, {\"pool\": \"avg\"|\"max\"|\"tokens\", \"kernel\": K}, "
                    "{\"flatten\": true}, {\"attention\": HEADS}", c->spec->path, where);
    memset(L, 0, sizeof *L);
    if (!has_attn && cJSON_HasObjectItem(o, "causal"))
        return FAIL(c, "%s: %s.causal: only attention takes causal", c->spec->path, where);
    if (has_attn) {
        int64_t heads = 0;
        if (cJSON_HasObjectItem(o, "alpha") || cJSON_HasObjectItem(o, "kernel") || cJSON_HasObjectItem(o, "stride") ||
            cJSON_HasObjectItem(o, "padding") || cJSON_HasObjectItem(o, "affine") || cJSON_HasObjectItem(o, "eps"))
            return FAIL(c, "%s: %s: attention takes causal and bias only", c->spec->path, where);
        TRY(get_int(c, o, where, "attention", 1, 1 << 12, &heads));
        L->kind = NT_LAYER_ATTENTION;
        L->heads = (int)heads;
        L->bias = 1;
        TRY(get_bool(c, o, where, "causal", &L->causal));
        return get_bool(c, o, where, "bias", &L->bias);
    }
    if (has_pool && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "pool")) &&
        strcmp(cJSON_GetObjectItemCaseSensitive(o, "pool")->valuestring, "tokens") == 0) {
        if (cJSON_GetArraySize(o) != 1)
            return FAIL(c, "%s: %s: {\"pool\": \"tokens\"} (the mean over tokens) takes no other key", c->spec->path, where);
        L->kind = NT_LAYER_MEAN_TOKENS;
        return NT_OK;
    }
    if (!has_conv && !has_pool && (cJSON_HasObjectItem(o, "kernel") || cJSON_HasObjectItem(o, "stride")))
        return FAIL(c, "%s: %s: only conv and pool take kernel and stride", c->spec->path, where);
    if (!has_conv && cJSON_HasObjectItem(o, "padding"))
        return FAIL(c, "%s: %s.padding: only conv takes padding", c->spec->path, where);
    if (has_flat) {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "flatten")))
            return FAIL(c, "%s: %s.flatten: must be true", c->spec->path, where);
        L->kind = NT_LAYER_FLATTEN;
        return NT_OK;
    }
    if (has_conv || has_pool) {
        int64_t units = 0, kernel = 0, stride = 1, padding = 0;
        if (!cJSON_HasObjectItem(o, "kernel")) return FAIL(c, "%s: %s.kernel: missing", c->spec->path, where);
        TRY(get_int(c, o, where, "kernel", 1, 1 << 12, &kernel));
        stride = has_pool ? kernel : 1;
        TRY(get_int(c, o, where, "stride", 1, 1 << 12, &stride));
        L->kernel = (int)kernel;
        L->stride = (int)stride;
        if (has_pool) {
            static const char *const pools[] = {"avg", "max"};
            int kind = 0;
            if (cJSON_HasObjectItem(o, "bias") || cJSON_HasObjectItem(o, "alpha"))
                return FAIL(c, "%s: %s: a pool takes kernel and stride only", c->spec->path, where);
            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "pool")))
                return FAIL(c, "%s: %s.pool: must be \"avg\", \"max\" or \"tokens\"", c->spec->path, where);
            TRY(get_enum(c, o, where, "pool", pools, 2, &kind));
            L->kind = NT_LAYER_POOL;
            L->pool_max = kind;
            return NT_OK;
        }
        TRY(get_int(c, o, where, "conv", 1, 1 << 16, &units));
        TRY(get_int(c, o, where, "padding", 0, 1 << 12, &padding));
        if (cJSON_HasObjectItem(o, "alpha")) return FAIL(c, "%s: %s.alpha: only an activation takes alpha", c->spec->path, where);
        L->kind = NT_LAYER_CONV;
        L->units = (int)units;
        L->padding = (int)padding;
        L->bias = 1;
        return get_bool(c, o, where, "bias", &L->bias);
    }
    if (!has_norm && (cJSON_HasObjectItem(o, "affine") || cJSON_HasObjectItem(o, "eps")))
        return FAIL(c, "%s: %s: only a normalization takes affine and eps", c->spec->path, where);
    if (has_norm) {
        static const char *const norms[] = {"layer", "batch"};
        int kind = 0;
        if (cJSON_HasObjectItem(o, "bias") || cJSON_HasObjectItem(o, "alpha"))
            return FAIL(c, "%s: %s: a normalization takes affine and eps, not bias or alpha", c->spec->path, where);
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "norm")))
            return FAIL(c, "%s: %s.norm: must be a string (\"layer\" or \"batch\")", c->spec->path, where);
        TRY(get_enum(c, o, where, "norm", norms, 2, &kind));
        L->kind = kind ? NT_LAYER_BATCHNORM : NT_LAYER_LAYERNORM;
        L->affine = 1;
        L->eps = 1e-5;
        TRY(get_bool(c, o, where, "affine", &L->affine));
        return get_num(c, o, where, "eps", 0.0, 1.0, &L->eps);
    }
    if (has_dense) {
        int64_t units = 0;
        TRY(get_int(c, o, where, "dense", 1, 1 << 24, &units));
        if (cJSON_HasObjectItem(o, "alpha"))
            return FAIL(c, "%s: %s.alpha: only an activation takes alpha", c->spec->path, where);
        L->kind = NT_LAYER_DENSE;
        L->units = (int)units;
        L->bias = 1;
        return get_bool(c, o, where, "bias", &L->bias);
    }
    const char *acts[NT_ACT_COUNT];
    act_names(acts);
    int a = 0;
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "act")))
        return FAIL(c, "%s: %s.act: must be a string", c->spec->path, where);
    TRY(get_enum(c, o, where, "act", acts, NT_ACT_COUNT, &a));
    if (cJSON_HasObjectItem(o, "bias"))
        return FAIL(c, "%s: %s.bias: only a dense layer takes bias", c->spec->path, where);
    L->kind = NT_LAYER_ACT;
    L->act = (nt_act)a;
    L->alpha = 0.01;
    if (cJSON_HasObjectItem(o, "alpha") && a != NT_ACT_LEAKY_RELU)
        return FAIL(c, "%s: %s.alpha: only leaky_relu takes alpha", c->spec->path, where);
    return get_num(c, o, where, "alpha", -1e6, 1e6, &L->alpha);
}

typedef struct { nt_layer *v; int n, cap; } layer_list;

/* the layers of an array, a residual block {"residual": [...]} flattened into BRANCH, its
 * layers, ADD (blocks may nest, up to NT_MAX_RESIDUAL_DEPTH deep) */
static int parse_layers(ctx *c, const cJSON *arr, const char *path, layer_list *out, int depth)
{
    int i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        char where[256];
        snprintf(where, sizeof where, "%s[%d]", path, i);
        if (out->n + 2 >= out->cap) {
            out->cap = 2 * out->cap + 16;
            out->v = realloc(out->v, sizeof *out->v * (size_t)out->cap);
        }
        const cJSON *res = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "residual") : NULL;
        if (!res) {
            if (!cJSON_IsObject(it)) return FAIL(c, "%s: %s: a layer must be an object", c->spec->path, where);
            TRY(parse_layer(c, it, where, &out->v[out->n++]));
            continue;
        }
        if (cJSON_GetArraySize(it) != 1)
            return FAIL(c, "%s: %s: a residual block is {\"residual\": [layers]} and nothing else", c->spec->path, where);
        if (!cJSON_IsArray(res) || cJSON_GetArraySize(res) == 0)
            return FAIL(c, "%s: %s.residual: must be a non-empty array of layers", c->spec->path, where);
        if (depth >= NT_MAX_RESIDUAL_DEPTH)
            return FAIL(c, "%s: %s: residual blocks nest at most %d deep", c->spec->path, where, NT_MAX_RESIDUAL_DEPTH);
        out->v[out->n++] = (nt_layer){ .kind = NT_LAYER_BRANCH };
        char inner[300];
        snprintf(inner, sizeof inner, "%s.residual", where);
        TRY(parse_layers(c, res, inner, out, depth + 1));
        if (out->n + 1 >= out->cap) {
            out->cap = 2 * out->cap + 16;
            out->v = realloc(out->v, sizeof *out->v * (size_t)out->cap);
        }
        out->v[out->n++] = (nt_layer){ .kind = NT_LAYER_ADD };
    }
    return NT_OK;
}

static int parse_model(ctx *c, const cJSON *o, double wd, nt_model *m)
{
    static const char *const keys[] = {"input", "layers", "loss", NULL};
    if (!o) return FAIL(c, "%s: model: missing", c->spec->path);
    TRY(check_keys(c, o, "model", keys));
    int64_t input = 0;
    int image[3] = {0, 0, 0};
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "input");
    if (!in) return FAIL(c, "%s: model.input: missing", c->spec->path);
    if (cJSON_IsArray(in)) {   /* a sequence [T, D] or an image [C, H, W] */
        int k = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, in) {
            if (k == 3 || !cJSON_IsNumber(it) || !(it->valuedouble >= 1 && it->valuedouble <= (1 << 16)) ||
                it->valuedouble != floor(it->valuedouble))   /* the range first: (int) of 4e9 is undefined */
                return FAIL(c, "%s: model.input: a sequence is [T, D] and an image [C, H, W], of positive integers",
                            c->spec->path);
            image[k++] = (int)it->valuedouble;
        }
        if (k < 2) return FAIL(c, "%s: model.input: a sequence is [T, D] and an image [C, H, W], of positive integers",
                               c->spec->path);
    } else {
        TRY(get_int(c, o, "model", "input", 1, 1 << 24, &input));
        image[0] = (int)input;
    }
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(o, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0)
        return FAIL(c, "%s: model.layers: must be a non-empty array", c->spec->path);
    const char *losses[NT_LOSS_COUNT];
    for (int i = 0; i < NT_LOSS_COUNT; i++) losses[i] = nt_loss_name((nt_loss)i);
    int loss = -1;
    TRY(get_enum(c, o, "model", "loss", losses, NT_LOSS_COUNT, &loss));
    if (loss < 0) return FAIL(c, "%s: model.loss: missing", c->spec->path);
    layer_list list = {0};
    int rc = parse_layers(c, layers, "model.layers", &list, 0);
    nt_layer *L = list.v;
    const int n = list.n;
    if (!rc) {
        rc = image[2] || !image[1] ? nt_model_init_image(m, image, L, n, (nt_loss)loss, wd, c->err)
                                   : nt_model_init_sequence(m, image[0], image[1], L, n, (nt_loss)loss, wd, c->err);
        if (rc) {  /* prefix the model's own message with the file */
            char msg[sizeof c->err->msg];
            snprintf(msg, sizeof msg, "%s", c->err->msg);
            FAIL(c, "%s: %s", c->spec->path, msg);
        }
    }
    free(L);
    return rc;
}

static int parse_data(ctx *c, const cJSON *o, nt_data_spec *d)
{
    static const char *const keys[] = {"source", "x", "y", "path", "name", "label", "images",
        "labels", "test_images", "test_labels", "limit", "standardize", "test_fraction",
        "split_seed", "n", "seed", "hidden", "activation", "noise", NULL};
    static const char *const sources[] = {"npy", "csv", "idx", "teacher", "builtin", "sequence"};
    if (!o) return FAIL(c, "%s: data: missing", c->spec->path);
    TRY(check_keys(c, o, "data", keys));
    int src = -1;
    TRY(get_enum(c, o, "data", "source", sources, 6, &src));
    if (src < 0) return FAIL(c, "%s: data.source: missing", c->spec->path);
    d->source = (nt_data_source)src;
    d->label_column = -1;
    d->n = 512;
    d->n_hidden = 1;
    d->hidden[0] = 16;
    d->teacher_act = NT_ACT_TANH;
    int64_t v;
    TRY(get_str(c, o, "data", "x", src == NT_DATA_NPY, 1, d->x, sizeof d->x));
    TRY(get_str(c, o, "data", "y", src == NT_DATA_NPY, 1, d->y, sizeof d->y));
    TRY(get_str(c, o, "data", "path", src == NT_DATA_CSV, 1, d->path, sizeof d->path));
    TRY(get_str(c, o, "data", "name", src == NT_DATA_BUILTIN, 0, d->name, sizeof d->name));
    TRY(get_str(c, o, "data", "images", src == NT_DATA_IDX, 1, d->images, sizeof d->images));
    TRY(get_str(c, o, "data", "labels", src == NT_DATA_IDX, 1, d->labels, sizeof d->labels));
    TRY(get_str(c, o, "data", "test_images", 0, 1, d->test_images, sizeof d->test_images));
    TRY(get_str(c, o, "data", "test_labels", 0, 1, d->test_labels, sizeof d->test_labels));
    if (!d->test_images[0] != !d->test_labels[0])
        return FAIL(c, "%s: data.test_images: test_images and test_labels go together", c->spec->path);
    v = d->label_column;
    TRY(get_int(c, o, "data", "label", -1, 1 << 20, &v));
    d->label_column = (int)v;
    TRY(get_int(c, o, "data", "limit", 0, INT64_MAX / 2, &d->limit));
    TRY(get_bool(c, o, "data", "standardize", &d->standardize));
    TRY(get_num(c, o, "data", "test_fraction", 0, 0.95, &d->test_fraction));
    v = 0;
    TRY(get_int(c, o, "data", "split_seed", 0, INT64_MAX / 2, &v));
    d->split_seed = (uint64_t)v;
    TRY(get_int(c, o, "data", "n", 1, 1 << 30, &d->n));
    v = 0;
    TRY(get_int(c, o, "data", "seed", 0, INT64_MAX / 2, &v));
    d->seed = (uint64_t)v;
    TRY(get_num(c, o, "data", "noise", 0, 1e6, &d->noise));
    const cJSON *hid = cJSON_GetObjectItemCaseSensitive(o, "hidden");
    if (hid) {
        if (!cJSON_IsArray(hid) || cJSON_GetArraySize(hid) > NT_MAX_HIDDEN)
            return FAIL(c, "%s: data.hidden: must be an array of at most %d widths", c->spec->path, NT_MAX_HIDDEN);
        d->n_hidden = 0;
        for (const cJSON *it = hid->child; it; it = it->next) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > 1 << 20 ||
                it->valuedouble != floor(it->valuedouble))
                return FAIL(c, "%s: data.hidden[%d]: must be a positive integer", c->spec->path, d->n_hidden);
            d->hidden[d->n_hidden++] = (int)it->valuedouble;
        }
    }
    const char *acts[NT_ACT_COUNT];
    act_names(acts);
    int a = (int)d->teacher_act;
    TRY(get_enum(c, o, "data", "activation", acts, NT_ACT_COUNT, &a));
    d->teacher_act = (nt_act)a;
    return NT_OK;
}

static int parse_init(ctx *c, const cJSON *o, nt_init *in)
{
    static const char *const keys[] = {"seed", "scheme", "std", "bias_std", "fixed_point", "perturb", NULL};
    static const char *const schemes[] = {"he", "xavier", "normal"};
    in->scheme = NT_INIT_HE;
    in->std = 0.1;
    if (!o) return NT_OK;
    TRY(check_keys(c, o, "init", keys));
    int64_t seed = 0;
    TRY(get_int(c, o, "init", "seed", 0, INT64_MAX / 2, &seed));
    in->seed = (uint64_t)seed;
    int s = 0;
    TRY(get_enum(c, o, "init", "scheme", schemes, 3, &s));
    in->scheme = (nt_init_scheme)s;
    TRY(get_num(c, o, "init", "std", 0, 1e6, &in->std));
    TRY(get_num(c, o, "init", "perturb", 0, 1e6, &in->perturb));
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(o, "fixed_point");
    if (fp) {
        if (!cJSON_IsArray(fp) || cJSON_GetArraySize(fp) > NT_MAX_FIXED)
            return FAIL(c, "%s: init.fixed_point: must be an array of at most %d transformation names", c->spec->path, NT_MAX_FIXED);
        for (const cJSON *it = fp->child; it; it = it->next) {
            if (!cJSON_IsString(it) || strlen(it->valuestring) >= sizeof in->fixed_point[0])
                return FAIL(c, "%s: init.fixed_point[%d]: must be a transformation name", c->spec->path, in->n_fixed);
            strcpy(in->fixed_point[in->n_fixed++], it->valuestring);
        }
    }
    return get_num(c, o, "init", "bias_std", 0, 1e6, &in->bias_std);
}

static int parse_train(ctx *c, const cJSON *o, nt_train_spec *t)
{
    static const char *const keys[] = {"optimizer", "lr", "steps", "batch", "seed", "momentum",
        "beta1", "beta2", "eps", "log_every", "checkpoint_every", NULL};
    static const char *const opts[] = {"gd", "sgd", "momentum", "adam"};
    *t = (nt_train_spec){ .optimizer = NT_OPT_SGD, .lr = 0.01, .steps = 1000, .batch = 32,
                          .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                          .log_every = 10 };
    if (!o) return NT_OK;
    TRY(check_keys(c, o, "train", keys));
    int opt = NT_OPT_SGD;
    TRY(get_enum(c, o, "train", "optimizer", opts, 4, &opt));
    t->optimizer = (nt_optimizer)opt;
    TRY(get_num(c, o, "train", "lr", 1e-300, 1e6, &t->lr));
    TRY(get_int(c, o, "train", "steps", 0, INT64_MAX / 2, &t->steps));
    TRY(get_int(c, o, "train", "batch", 0, INT64_MAX / 2, &t->batch));
    int64_t seed = 0;
    TRY(get_int(c, o, "train", "seed", 0, INT64_MAX / 2, &seed));
    t->seed = (uint64_t)seed;
    TRY(get_num(c, o, "train", "momentum", 0, 1, &t->momentum));
    TRY(get_num(c, o, "train", "beta1", 0, 1, &t->beta1));
    TRY(get_num(c, o, "train", "beta2", 0, 1, &t->beta2));
    /* Adam divides by 1 - beta^t: beta = 1 is a division by zero at the first step */
    if (t->beta1 >= 1 || t->beta2 >= 1)
        return FAIL(c, "%s: train.%s: %g is out of range [0, 1) (Adam divides by 1 - beta^t)", c->spec->path,
                    t->beta1 >= 1 ? "beta1" : "beta2", t->beta1 >= 1 ? t->beta1 : t->beta2);
    TRY(get_num(c, o, "train", "eps", 0, 1, &t->eps));
    TRY(get_int(c, o, "train", "log_every", 1, INT64_MAX / 2, &t->log_every));
    return get_int(c, o, "train", "checkpoint_every", 0, INT64_MAX / 2, &t->checkpoint_every);
}

static int parse_analysis(ctx *c, const cJSON *o, nt_analysis_spec *a)
{
    static const char *const keys[] = {"every", "spectrum", NULL};
    static const char *const skeys[] = {"top", "bottom", NULL};
    a->top = a->bottom = 10;
    if (!o) return NT_OK;
    TRY(check_keys(c, o, "analysis", keys));
    TRY(get_int(c, o, "analysis", "every", 0, INT64_MAX / 2, &a->every));
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "spectrum");
    if (!s) return NT_OK;
    TRY(check_keys(c, s, "analysis.spectrum", skeys));
    int64_t top = a->top, bottom = a->bottom;
    TRY(get_int(c, s, "analysis.spectrum", "top", 0, 1 << 20, &top));
    TRY(get_int(c, s, "analysis.spectrum", "bottom", 0, 1 << 20, &bottom));
    a->top = (int)top;
    a->bottom = (int)bottom;
    return NT_OK;
}

static int parse_transforms(ctx *c, const cJSON *o, nt_spec *s)
{
    static const char *const keys[] = {"name", "kind", "generator", "shift", "output_generator",
                                       "matrix", "output_matrix", NULL};
    static const char *const kinds[] = {"continuous", "discrete"};
    if (!o) return NT_OK;
    if (!cJSON_IsArray(o)) return FAIL(c, "%s: transformations: must be an array", s->path);
    s->n_transforms = cJSON_GetArraySize(o);
    s->transforms = calloc((size_t)s->n_transforms + 1, sizeof *s->transforms);
    int i = 0;
    for (const cJSON *it = o->child; it; it = it->next, i++) {
        nt_transform_spec *t = &s->transforms[i];
        char where[64];
        snprintf(where, sizeof where, "transformations[%d]", i);
        TRY(check_keys(c, it, where, keys));
        TRY(get_str(c, it, where, "name", 1, 0, t->name, sizeof t->name));
        int kind = -1;
        TRY(get_enum(c, it, where, "kind", kinds, 2, &kind));
        if (kind < 0) return FAIL(c, "%s: %s.kind: missing", s->path, where);
        t->discrete = kind;
        const char *mat = kind ? "matrix" : "generator", *outk = kind ? "output_matrix" : "output_generator";
        const char *wrong[] = {kind ? "generator" : "matrix", kind ? "shift" : NULL,
                               kind ? "output_generator" : "output_matrix"};
        for (int w = 0; w < 3; w++)
            if (wrong[w] && cJSON_HasObjectItem(it, wrong[w]))
                return FAIL(c, "%s: %s: a %s transformation does not take it", s->path,
                            keypath(where, wrong[w]), kinds[kind]);
        TRY(get_str(c, it, where, mat, 1, 1, t->matrix, sizeof t->matrix));
        TRY(get_str(c, it, where, "shift", 0, 1, t->shift, sizeof t->shift));
        TRY(get_str(c, it, where, outk, 0, 1, t->output, sizeof t->output));
    }
    return NT_OK;
}

int nt_spec_parse(const char *json, const char *path, nt_spec *s, nt_error *err)
{
    return nt_spec_parse_n(json, strlen(json), path, s, err);
}

int nt_spec_parse_n(const char *json, size_t len, const char *path, nt_spec *s, nt_error *err)
{
    memset(s, 0, sizeof *s);
    const size_t plen = strlen(path);
    if (plen >= sizeof s->path)
        return nt_fail(err, NT_EINPUT, "%.60s...: the spec's path is longer than %d bytes", path, (int)sizeof s->path - 1);
    s->hash = nt_hash64(json, len, NT_HASH_INIT);
    memcpy(s->path, path, plen + 1);
    const char *slash = strrchr(path, '/');
    if (slash) { memcpy(s->dir, path, (size_t)(slash - path)); s->dir[slash - path] = 0; }
    if (slash == path) strcpy(s->dir, "/");
    ctx c = { s, err };
    int rc = nt_json_scan(json, len, path, err);
    if (rc) return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        int line = 1;
        for (const char *p = json; at && p < at; p++) line += *p == '\n';
        return FAIL(&c, "%s: not valid JSON (line %d)", path, line);
    }
    rc = nt_json_trailing(json, end, path, err);
    if (!rc) rc = nt_json_unique_keys(root, path, err);
    if (rc) { cJSON_Delete(root); return rc; }
    static const char *const keys[] = {"model", "data", "init", "weight_decay", "train",
                                       "analysis", "transformations", NULL};
    double wd = 0;
    rc = check_keys(&c, root, "", keys);
    if (!rc) rc = get_num(&c, root, "", "weight_decay", 0, 1e6, &wd);
    if (!rc) rc = parse_model(&c, cJSON_GetObjectItemCaseSensitive(root, "model"), wd, &s->model);
    if (!rc) rc = parse_data(&c, cJSON_GetObjectItemCaseSensitive(root, "data"), &s->data);
    if (!rc) rc = parse_init(&c, cJSON_GetObjectItemCaseSensitive(root, "init"), &s->init);
    if (!rc) rc = parse_train(&c, cJSON_GetObjectItemCaseSensitive(root, "train"), &s->train);
    if (!rc) rc = parse_analysis(&c, cJSON_GetObjectItemCaseSensitive(root, "analysis"), &s->analysis);
    if (!rc) rc = parse_transforms(&c, cJSON_GetObjectItemCaseSensitive(root, "transformations"), s);
    cJSON_Delete(root);
    if (rc) nt_spec_free(s);
    return rc;
}

int nt_spec_load(const char *path, nt_spec *s, nt_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return nt_fail(err, NT_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return nt_fail(err, NT_EINPUT, "%s: cannot read: %s", path, strerror(EISDIR));
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n > (64 << 20)) {
        fclose(f);
        return nt_fail(err, NT_EINPUT, "%s: %ld bytes: not a spec (larger than 64 MiB)", path, n);
    }
    char *buf = malloc(n > 0 ? (size_t)n + 1 : 1);
    size_t got = n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    if (n < 0 || ferror(f)) {   /* a directory, a device */
        int e = n < 0 ? errno : EIO;
        char probe;
        if (fread(&probe, 1, 1, f) == 0 && ferror(f)) e = errno;
        fclose(f);
        free(buf);
        return nt_fail(err, NT_EINPUT, "%s: cannot read: %s", path, strerror(e));
    }
    fclose(f);
    buf[got] = 0;
    int rc = nt_spec_parse_n(buf, got, path, s, err);
    free(buf);
    return rc;
}

void nt_spec_free(nt_spec *s)
{
    nt_model_free(&s->model);
    free(s->transforms);
    s->transforms = NULL;
    s->n_transforms = 0;
}
