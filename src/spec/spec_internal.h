/* spec_internal.h: helpers shared by spec.c and data.c. */
#ifndef NT_SPEC_INTERNAL_H
#define NT_SPEC_INTERNAL_H
#include <cJSON.h>
#include "noether.h"

/* Resolves path against dir unless it is absolute; into out (NT_PATH_MAX).  Returns 1 when
 * the result does not fit (out is then unusable), else 0. */
int nt_resolve_path(const char *dir, const char *path, char *out);

/* The spec being read: its file and folder (messages name the file), and the error to fill. */
typedef struct {
    const char *path, *dir;
    nt_error *err;
} nt_spec_ctx;
/* Strict readers of obj's member `key` (absent: *out kept, NT_OK); a wrong type or a value
 * outside [lo, hi] is NT_EINPUT naming the file and the key path "where.key".  A string
 * that is none of names[0..n) is refused with the list and the nearest name (suggest.c). */
int nt_spec_num(nt_spec_ctx *c, const cJSON *obj, const char *where, const char *key, double lo, double hi, double *out);
int nt_spec_int(nt_spec_ctx *c, const cJSON *obj, const char *where, const char *key, int64_t lo, int64_t hi,
                int64_t *out);
int nt_spec_bool(nt_spec_ctx *c, const cJSON *obj, const char *where, const char *key, int *out);
int nt_spec_enum(nt_spec_ctx *c, const cJSON *obj, const char *where, const char *key, const char *const *names, int n,
                 int *out);

/* suggest.c: the name of names[0..n) nearest to s by edit distance when it is near enough
 * to be a misspelling (at most max(1, |s| / 3) edits, case ignored), else NULL. */
const char *nt_suggest(const char *s, const char *const *names, int n);
/* " (did you mean 'x'?)" when nt_suggest finds x, else "" (into buf, also returned) */
const char *nt_did_you_mean(const char *s, const char *const *names, int n, char *buf, size_t cap);

/* strict.c: the checks of a spec's text that cJSON does not make. */
#define NT_JSON_DEPTH 512   /* arrays and objects nested deeper are refused */
#define NT_CUT_BUF 64       /* a key or value echoed in a message: at most 60 characters and "..." */
/* s, or its first 60 characters and "..." in buf */
const char *nt_json_cut(const char *s, char buf[NT_CUT_BUF]);
/* NUL bytes, \u0000 in strings, numbers that are not JSON's (a leading zero), nesting
 * deeper than NT_JSON_DEPTH: NT_EINPUT naming path and the line. */
int nt_json_scan(const char *json, size_t len, const char *path, nt_error *err);
/* Anything but white space from end on (where cJSON stopped): NT_EINPUT naming the line. */
int nt_json_trailing(const char *json, const char *end, const char *path, nt_error *err);
/* A key twice in one object anywhere in the document: NT_EINPUT naming its key path. */
int nt_json_unique_keys(const cJSON *root, const char *path, nt_error *err);

#endif
