/* buf.c: see buf.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>
#include <cJSON.h>
#include "buf.h"

void nt_buf_vprintf(nt_buf *b, const char *fmt, va_list ap)
{
    for (;;) {
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, aq);
        va_end(aq);
        if ((size_t)n < b->cap - b->len) { b->len += (size_t)n; return; }
        b->cap = 2 * b->cap + (size_t)n + 1024;
        b->s = realloc(b->s, b->cap);
    }
}

void nt_buf_printf(nt_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nt_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

static int write_text(FILE *f, const void *text)
{
    return fputs(text, f) >= 0;
}

int nt_text_write(const char *path, const char *text, nt_error *err)
{
    return nt_file_write(path, write_text, text, err);
}

int nt_mkdir_p(const char *dir, nt_error *err)
{
    char buf[NT_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; ; p++) {
        int end = *p == 0;
        if (*p == '/' || end) {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return nt_fail(err, NT_EINPUT, "%s: cannot create directory: %s", buf, strerror(errno));
            if (end) break;
            *p = '/';
        }
    }
    return NT_OK;
}

/* every finite number of the tree n (and its siblings) as raw text that reads back exactly */
static int exact_numbers(cJSON *n)
{
    for (; n; n = n->next) {
        if (cJSON_IsNumber(n) && isfinite(n->valuedouble)) {
            char text[32];
            for (int digits = 15; digits <= 17; digits++) {
                snprintf(text, sizeof text, "%.*g", digits, n->valuedouble);
                if (strtod(text, NULL) == n->valuedouble) break;
            }
            char *raw = cJSON_malloc(strlen(text) + 1);
            if (!raw) return -1;
            strcpy(raw, text);
            n->type = cJSON_Raw | (n->type & cJSON_StringIsConst);
            n->valuestring = raw;
        }
        if (n->child && exact_numbers(n->child)) return -1;
    }
    return 0;
}

char *nt_json_print(const cJSON *doc, int formatted)
{
    cJSON *copy = cJSON_Duplicate(doc, 1);
    char *text = copy && exact_numbers(copy) == 0 ? (formatted ? cJSON_Print(copy) : cJSON_PrintUnformatted(copy)) : NULL;
    cJSON_Delete(copy);
    return text;
}
