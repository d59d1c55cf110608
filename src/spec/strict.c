/* strict.c: what cJSON lets through and a spec must not: a number with a leading zero
 * (`007`), a NUL character inside a string (`"x.npy\u0000.evil"` would read x.npy), text
 * after the document, the same key twice in one object (cJSON keeps the first), nesting
 * deeper than cJSON's limit (reported by it as plain invalid JSON).  Each is refused
 * naming the line or the key; a long key is cut in the message. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "spec_internal.h"

const char *nt_json_cut(const char *s, char buf[NT_CUT_BUF])
{
    if (strlen(s) < NT_CUT_BUF - 4) return s;
    snprintf(buf, NT_CUT_BUF, "%.*s...", NT_CUT_BUF - 4, s);
    return buf;
}

static int line_of(const char *json, const char *at)
{
    int line = 1;
    for (const char *p = json; p < at; p++) line += *p == '\n';
    return line;
}

/* a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, n characters from s */
static int number_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i >= n || !isdigit((unsigned char)s[i])) return 0;
    if (s[i] == '0') i++;
    else while (i < n && isdigit((unsigned char)s[i])) i++;
    if (i < n && s[i] == '.') {
        if (++i >= n || !isdigit((unsigned char)s[i])) return 0;
        while (i < n && isdigit((unsigned char)s[i])) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || !isdigit((unsigned char)s[i])) return 0;
        while (i < n && isdigit((unsigned char)s[i])) i++;
    }
    return i == n;
}

int nt_json_scan(const char *json, size_t len, const char *path, nt_error *err)
{
    const char *nul = memchr(json, 0, len);
    if (nul) return nt_fail(err, NT_EINPUT, "%s: a NUL byte at line %d (byte %zu): not a spec", path, line_of(json, nul),
                            (size_t)(nul - json));
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        const char c = json[i];
        if (c == '"') {   /* a string: only \u0000 matters here */
            for (i++; i < len && json[i] != '"'; i++) {
                if (json[i] != '\\') continue;
                if (i + 5 < len && json[i + 1] == 'u' && !strncmp(json + i + 2, "0000", 4))
                    return nt_fail(err, NT_EINPUT, "%s: a NUL character (\\u0000) inside a string at line %d", path,
                                   line_of(json, json + i));
                i++;
            }
        } else if (c == '[' || c == '{') {
            if (++depth > NT_JSON_DEPTH)
                return nt_fail(err, NT_EINPUT, "%s: nested too deeply (more than %d levels) at line %d", path,
                               NT_JSON_DEPTH, line_of(json, json + i));
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == '-' || isdigit((unsigned char)c)) {
            size_t n = 0;
            while (i + n < len && strchr("0123456789+-.eE", json[i + n])) n++;
            if (!number_ok(json + i, n))
                return nt_fail(err, NT_EINPUT, "%s: '%.*s' at line %d is not a JSON number%s", path, n > 40 ? 40 : (int)n,
                               json + i, line_of(json, json + i),
                               n > 1 && json[i + (c == '-')] == '0' && isdigit((unsigned char)json[i + 1 + (c == '-')])
                                   ? " (a leading zero)" : "");
            i += n - 1;
        }
    }
    return NT_OK;
}

int nt_json_trailing(const char *json, const char *end, const char *path, nt_error *err)
{
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
    if (!*end) return NT_OK;
    return nt_fail(err, NT_EINPUT, "%s: text after the JSON document at line %d", path, line_of(json, end));
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* the key path of child `key` below `where` into out */
static void key_path(char *out, size_t cap, const char *where, const char *key)
{
    char cut[NT_CUT_BUF];
    snprintf(out, cap, "%.400s%s%s", where, *where ? "." : "", nt_json_cut(key, cut));   /* cap 512 */
}

static int unique(const cJSON *node, const char *where, const char *path, nt_error *err, int depth)
{
    int n = 0;
    for (const cJSON *it = node->child; it; it = it->next) n++;
    if (cJSON_IsObject(node) && n > 1) {
        const cJSON **kids = malloc(sizeof *kids * (size_t)n);
        if (!kids) return nt_fail(err, NT_EFAIL, "%s: out of memory", path);
        int k = 0;
        for (const cJSON *it = node->child; it; it = it->next) kids[k++] = it;
        qsort(kids, (size_t)n, sizeof *kids, by_name);
        for (k = 1; k < n && strcmp(kids[k - 1]->string, kids[k]->string); k++) {}
        if (k < n) {
            char kp[512];
            key_path(kp, sizeof kp, where, kids[k]->string);
            free(kids);
            return nt_fail(err, NT_EINPUT, "%s: %s: the key appears twice", path, kp);
        }
        free(kids);
    }
    int i = 0;
    for (const cJSON *it = node->child; it; it = it->next, i++) {
        if (!it->child) continue;
        char kp[512];
        if (cJSON_IsObject(node)) key_path(kp, sizeof kp, where, it->string);
        else snprintf(kp, sizeof kp, "%.400s[%d]", where, i);
        int rc = unique(it, kp, path, err, depth + 1);
        if (rc) return rc;
    }
    return NT_OK;
}

int nt_json_unique_keys(const cJSON *root, const char *path, nt_error *err)
{
    return unique(root, "", path, err, 0);
}
