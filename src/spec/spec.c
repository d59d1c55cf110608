/* spec.c: the spec (one JSON document, docs/interface.md) into an nt_spec.  Strict: an unknown
 * key, a value of the wrong type or an impossible size is an error naming the key as a
 * path ("model.layers[2].dense"), never silently ignored. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <cJSON.h>
#include "spec_internal.h"
#include "../model/registry.h"

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

typedef nt_spec_ctx ctx;

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
        return FAIL(c, "%s: %s: must be an object", c->path, where);
    int n = 0;
    while (allowed[n]) n++;
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++) ok |= strcmp(it->string, *a) == 0;
        char cut[NT_CUT_BUF], hint[96];
        if (!ok) return FAIL(c, "%s: %s%s%s: unknown key%s", c->path, where, *where ? "." : "", nt_json_cut(it->string, cut),
                             nt_did_you_mean(it->string, (const char *const *)allowed, n, hint, sizeof hint));
    }
    return NT_OK;
}

int nt_spec_num(ctx *c, const cJSON *obj, const char *where, const char *key, double lo,
                   double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return NT_OK;   /* keep the default */
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return FAIL(c, "%s: %s: must be a number", c->path, keypath(where, key));
    if (v->valuedouble < lo || v->valuedouble > hi)
        return FAIL(c, "%s: %s: %g is out of range [%g, %g]", c->path, keypath(where, key),
                    v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return NT_OK;
}

int nt_spec_int(ctx *c, const cJSON *obj, const char *where, const char *key, int64_t lo,
                   int64_t hi, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return NT_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return FAIL(c, "%s: %s: must be an integer", c->path, keypath(where, key));
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return FAIL(c, "%s: %s: %.0f is out of range [%lld, %lld]", c->path, keypath(where, key),
                    v->valuedouble, (long long)lo, (long long)hi);
    *out = (int64_t)v->valuedouble;
    return NT_OK;
}

int nt_spec_bool(ctx *c, const cJSON *obj, const char *where, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return NT_OK;
    if (!cJSON_IsBool(v)) return FAIL(c, "%s: %s: must be true or false", c->path, keypath(where, key));
    *out = cJSON_IsTrue(v);
    return NT_OK;
}

/* a string; with `path` set it is a file name resolved against the spec's folder */
static int get_str(ctx *c, const cJSON *obj, const char *where, const char *key, int required,
                   int is_path, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return required ? FAIL(c, "%s: %s: missing", c->path, keypath(where, key)) : NT_OK;
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return FAIL(c, "%s: %s: must be a non-empty string", c->path, keypath(where, key));
    size_t len = strlen(v->valuestring);
    if (len >= cap - 1)
        return FAIL(c, "%s: %s: too long (%zu bytes, at most %zu)", c->path, keypath(where, key), len, cap - 2);
    if (is_path && nt_resolve_path(c->dir, v->valuestring, out))
        return FAIL(c, "%s: %s: the path with the spec's folder is longer than %d bytes", c->path,
                    keypath(where, key), NT_PATH_MAX - 1);
    if (!is_path) snprintf(out, cap, "%s", v->valuestring);
    return NT_OK;
}

/* a string that must be one of names[0..n) */
int nt_spec_enum(ctx *c, const cJSON *obj, const char *where, const char *key,
                    const char *const *names, int n, int *out)
{
    char s[64] = "";
    int rc = get_str(c, obj, where, key, 0, 0, s, sizeof s);
    if (rc || !s[0]) return rc;
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) { *out = i; return NT_OK; }
    char list[256] = "", hint[96];
    for (int i = 0; i < n; i++) { strcat(list, i ? ", " : ""); strcat(list, names[i]); }
    return FAIL(c, "%s: %s: '%s' is not one of %s%s", c->path, keypath(where, key), s, list,
                nt_did_you_mean(s, names, n, hint, sizeof hint));
}

#define TRY(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

/* ---- sections ------------------------------------------------------------------------ */

/* the activation names, in nt_act order (model/act.c owns them) */
static void act_names(const char **names)
{
    for (int i = 0; i < NT_ACT_COUNT; i++) names[i] = nt_act_name((nt_act)i);
}

/* A layer object: its one kind key picks the registry entry (model/registry.h), whose keys
 * are the only ones it may hold and whose parse reads them. */
static int parse_layer(ctx *c, const cJSON *o, const char *where, nt_layer *L)
{
    if (!cJSON_IsObject(o)) return FAIL(c, "%s: %s: must be an object", c->path, where);
    const char *kind_key = NULL;
    int n_kind_keys = 0;
    for (const cJSON *it = o->child; it; it = it->next) {
        char cut[NT_CUT_BUF];
        const char *why = nt_layer_refused(it->string), *meant = NULL;
        if (why) return FAIL(c, "%s: %s.%s: %s", c->path, where, nt_json_cut(it->string, cut), why);
        if (!nt_layer_key_known(it->string)) {
            meant = nt_layer_key_meant(it->string);
            return FAIL(c, "%s: %s.%s: unknown key%s%s%s", c->path, where, nt_json_cut(it->string, cut),
                        meant ? " (did you mean '" : "", meant ? meant : "", meant ? "'?)" : "");
        }
        for (int k = 0; k < NT_LAYER_COUNT; k++) {
            const nt_layer_info *R = nt_layer_registry((nt_layer_kind)k);
            if (R && R->key && !strcmp(R->key, it->string)) { kind_key = R->key; n_kind_keys++; break; }
        }
    }
    if (n_kind_keys != 1) {
        char forms[512] = "";
        for (int k = 0; k < NT_LAYER_COUNT; k++) {
            const nt_layer_info *R = nt_layer_registry((nt_layer_kind)k);
            if (!R || !R->key) continue;
            snprintf(forms + strlen(forms), sizeof forms - strlen(forms), "%s%s", forms[0] ? ", " : "", R->form);
        }
        return FAIL(c, "%s: %s: a layer is one of %s", c->path, where, forms);
    }
    /* the entry: by its value where kinds share the key ("norm": "layer" | "batch"), else the one without */
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, kind_key);
    const nt_layer_info *R = NULL, *fallback = NULL;
    for (int k = 0; k < NT_LAYER_COUNT && !R; k++) {
        const nt_layer_info *E = nt_layer_registry((nt_layer_kind)k);
        if (!E || !E->key || strcmp(E->key, kind_key)) continue;
        if (E->value && cJSON_IsString(v) && !strcmp(E->value, v->valuestring)) R = E;
        else if (!fallback || (fallback->value && !E->value)) fallback = E;
    }
    if (!R) R = fallback;
    for (const cJSON *it = o->child; it; it = it->next) {
        int ok = 0;
        for (const char *const *k = R->keys; *k; k++) ok |= !strcmp(*k, it->string);
        if (ok) continue;
        char list[256] = "";
        for (const char *const *k = R->keys; *k; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k == R->keys ? "" : ", ", *k);
        return FAIL(c, "%s: %s.%s: not a key of %s (its keys: %s)", c->path, where, it->string, R->form, list);
    }
    if (!R->parse) return FAIL(c, "%s: %s: %s cannot be written as a layer", c->path, where, R->form);
    return R->parse(c, o, where, L);
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
            if (!cJSON_IsObject(it)) return FAIL(c, "%s: %s: a layer must be an object", c->path, where);
            TRY(parse_layer(c, it, where, &out->v[out->n++]));
            continue;
        }
        if (cJSON_GetArraySize(it) != 1)
            return FAIL(c, "%s: %s: a residual block is {\"residual\": [layers]} and nothing else", c->path, where);
        if (!cJSON_IsArray(res) || cJSON_GetArraySize(res) == 0)
            return FAIL(c, "%s: %s.residual: must be a non-empty array of layers", c->path, where);
        if (depth >= NT_MAX_RESIDUAL_DEPTH)
            return FAIL(c, "%s: %s: residual blocks nest at most %d deep", c->path, where, NT_MAX_RESIDUAL_DEPTH);
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

/* PyTorch's names of the losses noether has under another name, refused with the one meant:
 * binary cross-entropy on a logit f with labels y in {-1, +1} is log(1 + e^{-yf}), the
 * logistic loss (docs/interface.md) */
static int loss_alias(ctx *c, const cJSON *v, const char *const *losses)
{
    static const char bce[] = " binary cross-entropy on a logit f is the logistic loss log(1 + e^(-y f)), labels "
                              "-1/+1 or 0/1";
    static const struct { const char *alias, *meant, *note; } aliases[] = {
        { "bce", "'logistic' with one output", bce },
        { "binary_cross_entropy", "'logistic' with one output", bce },
        { "BCEWithLogitsLoss", "'logistic' with one output", bce },
        { "CrossEntropyLoss", "'cross_entropy'", "" },
        { "MSELoss", "'mse'", "" },
    };
    if (!cJSON_IsString(v)) return NT_OK;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcasecmp(v->valuestring, aliases[i].alias)) continue;
        char list[256] = "";
        for (int k = 0; k < NT_LOSS_COUNT; k++) { strcat(list, k ? ", " : ""); strcat(list, losses[k]); }
        return FAIL(c, "%s: model.loss: '%s' is not one of %s (did you mean %s?%s)", c->path, v->valuestring, list,
                    aliases[i].meant, aliases[i].note);
    }
    return NT_OK;
}

static int parse_model(ctx *c, const cJSON *o, double wd, nt_model *m)
{
    static const char *const keys[] = {"input", "layers", "loss", NULL};
    if (!o) return FAIL(c, "%s: model: missing", c->path);
    TRY(check_keys(c, o, "model", keys));
    int64_t input = 0;
    int image[3] = {0, 0, 0};
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "input");
    if (!in) return FAIL(c, "%s: model.input: missing", c->path);
    if (cJSON_IsArray(in)) {   /* a sequence [T, D] or an image [C, H, W] */
        int k = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, in) {
            if (k == 3 || !cJSON_IsNumber(it) || !(it->valuedouble >= 1 && it->valuedouble <= (1 << 16)) ||
                it->valuedouble != floor(it->valuedouble))   /* the range first: (int) of 4e9 is undefined */
                return FAIL(c, "%s: model.input: a sequence is [T, D] and an image [C, H, W], of positive integers",
                            c->path);
            image[k++] = (int)it->valuedouble;
        }
        if (k < 2) return FAIL(c, "%s: model.input: a sequence is [T, D] and an image [C, H, W], of positive integers",
                               c->path);
    } else {
        TRY(nt_spec_int(c, o, "model", "input", 1, 1 << 24, &input));
        image[0] = (int)input;
    }
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(o, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0)
        return FAIL(c, "%s: model.layers: must be a non-empty array", c->path);
    const char *losses[NT_LOSS_COUNT];
    for (int i = 0; i < NT_LOSS_COUNT; i++) losses[i] = nt_loss_name((nt_loss)i);
    int loss = -1;
    TRY(loss_alias(c, cJSON_GetObjectItemCaseSensitive(o, "loss"), losses));
    TRY(nt_spec_enum(c, o, "model", "loss", losses, NT_LOSS_COUNT, &loss));
    if (loss < 0) return FAIL(c, "%s: model.loss: missing", c->path);
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
            FAIL(c, "%s: %s", c->path, msg);
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
    if (!o) return FAIL(c, "%s: data: missing", c->path);
    TRY(check_keys(c, o, "data", keys));
    int src = -1;
    TRY(nt_spec_enum(c, o, "data", "source", sources, 6, &src));
    if (src < 0) return FAIL(c, "%s: data.source: missing", c->path);
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
        return FAIL(c, "%s: data.test_images: test_images and test_labels go together", c->path);
    v = d->label_column;
    TRY(nt_spec_int(c, o, "data", "label", -1, 1 << 20, &v));
    d->label_column = (int)v;
    TRY(nt_spec_int(c, o, "data", "limit", 0, INT64_MAX / 2, &d->limit));
    TRY(nt_spec_bool(c, o, "data", "standardize", &d->standardize));
    TRY(nt_spec_num(c, o, "data", "test_fraction", 0, 0.95, &d->test_fraction));
    v = 0;
    TRY(nt_spec_int(c, o, "data", "split_seed", 0, INT64_MAX / 2, &v));
    d->split_seed = (uint64_t)v;
    TRY(nt_spec_int(c, o, "data", "n", 1, 1 << 30, &d->n));
    v = 0;
    TRY(nt_spec_int(c, o, "data", "seed", 0, INT64_MAX / 2, &v));
    d->seed = (uint64_t)v;
    TRY(nt_spec_num(c, o, "data", "noise", 0, 1e6, &d->noise));
    const cJSON *hid = cJSON_GetObjectItemCaseSensitive(o, "hidden");
    if (hid) {
        if (!cJSON_IsArray(hid) || cJSON_GetArraySize(hid) > NT_MAX_HIDDEN)
            return FAIL(c, "%s: data.hidden: must be an array of at most %d widths", c->path, NT_MAX_HIDDEN);
        d->n_hidden = 0;
        for (const cJSON *it = hid->child; it; it = it->next) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > 1 << 20 ||
                it->valuedouble != floor(it->valuedouble))
                return FAIL(c, "%s: data.hidden[%d]: must be a positive integer", c->path, d->n_hidden);
            d->hidden[d->n_hidden++] = (int)it->valuedouble;
        }
    }
    const char *acts[NT_ACT_COUNT];
    act_names(acts);
    int a = (int)d->teacher_act;
    TRY(nt_spec_enum(c, o, "data", "activation", acts, NT_ACT_COUNT, &a));
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
    TRY(nt_spec_int(c, o, "init", "seed", 0, INT64_MAX / 2, &seed));
    in->seed = (uint64_t)seed;
    int s = 0;
    TRY(nt_spec_enum(c, o, "init", "scheme", schemes, 3, &s));
    in->scheme = (nt_init_scheme)s;
    TRY(nt_spec_num(c, o, "init", "std", 0, 1e6, &in->std));
    TRY(nt_spec_num(c, o, "init", "perturb", 0, 1e6, &in->perturb));
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(o, "fixed_point");
    if (fp) {
        if (!cJSON_IsArray(fp) || cJSON_GetArraySize(fp) > NT_MAX_FIXED)
            return FAIL(c, "%s: init.fixed_point: must be an array of at most %d transformation names", c->path, NT_MAX_FIXED);
        for (const cJSON *it = fp->child; it; it = it->next) {
            if (!cJSON_IsString(it) || strlen(it->valuestring) >= sizeof in->fixed_point[0])
                return FAIL(c, "%s: init.fixed_point[%d]: must be a transformation name", c->path, in->n_fixed);
            strcpy(in->fixed_point[in->n_fixed++], it->valuestring);
        }
    }
    return nt_spec_num(c, o, "init", "bias_std", 0, 1e6, &in->bias_std);
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
    TRY(nt_spec_enum(c, o, "train", "optimizer", opts, 4, &opt));
    t->optimizer = (nt_optimizer)opt;
    TRY(nt_spec_num(c, o, "train", "lr", 1e-300, 1e6, &t->lr));
    TRY(nt_spec_int(c, o, "train", "steps", 0, INT64_MAX / 2, &t->steps));
    TRY(nt_spec_int(c, o, "train", "batch", 0, INT64_MAX / 2, &t->batch));
    int64_t seed = 0;
    TRY(nt_spec_int(c, o, "train", "seed", 0, INT64_MAX / 2, &seed));
    t->seed = (uint64_t)seed;
    TRY(nt_spec_num(c, o, "train", "momentum", 0, 1, &t->momentum));
    TRY(nt_spec_num(c, o, "train", "beta1", 0, 1, &t->beta1));
    TRY(nt_spec_num(c, o, "train", "beta2", 0, 1, &t->beta2));
    /* Adam divides by 1 - beta^t: beta = 1 is a division by zero at the first step */
    if (t->beta1 >= 1 || t->beta2 >= 1)
        return FAIL(c, "%s: train.%s: %g is out of range [0, 1) (Adam divides by 1 - beta^t)", c->path,
                    t->beta1 >= 1 ? "beta1" : "beta2", t->beta1 >= 1 ? t->beta1 : t->beta2);
    TRY(nt_spec_num(c, o, "train", "eps", 0, 1, &t->eps));
    TRY(nt_spec_int(c, o, "train", "log_every", 1, INT64_MAX / 2, &t->log_every));
    return nt_spec_int(c, o, "train", "checkpoint_every", 0, INT64_MAX / 2, &t->checkpoint_every);
}

static int parse_analysis(ctx *c, const cJSON *o, nt_analysis_spec *a)
{
    static const char *const keys[] = {"every", "spectrum", NULL};
    static const char *const skeys[] = {"top", "bottom", NULL};
    a->top = a->bottom = 10;
    if (!o) return NT_OK;
    TRY(check_keys(c, o, "analysis", keys));
    TRY(nt_spec_int(c, o, "analysis", "every", 0, INT64_MAX / 2, &a->every));
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "spectrum");
    if (!s) return NT_OK;
    TRY(check_keys(c, s, "analysis.spectrum", skeys));
    int64_t top = a->top, bottom = a->bottom;
    TRY(nt_spec_int(c, s, "analysis.spectrum", "top", 0, 1 << 20, &top));
    TRY(nt_spec_int(c, s, "analysis.spectrum", "bottom", 0, 1 << 20, &bottom));
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
        TRY(nt_spec_enum(c, it, where, "kind", kinds, 2, &kind));
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
    ctx c = { s->path, s->dir, err };
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
    if (!rc) rc = nt_spec_num(&c, root, "", "weight_decay", 0, 1e6, &wd);
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
