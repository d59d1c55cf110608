/* spec_internal.h: helpers shared by spec.c and data.c. */
#ifndef NT_SPEC_INTERNAL_H
#define NT_SPEC_INTERNAL_H
#include <cJSON.h>
#include "noether.h"

/* Resolves path against dir unless it is absolute; into out (NT_PATH_MAX).  Returns 1 when
 * the result does not fit (out is then unusable), else 0. */
int nt_resolve_path(const char *dir, const char *path, char *out);

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
