/* builtin.c: the CSV data sets compiled into the library (iris, wine, breast_cancer),
 * parsed by the same code as CSV files (csv.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io_internal.h"

typedef struct {
    const char *p;      /* the rest of the text */
    const char *name;
    char *buf;          /* the current line, NUL-terminated */
    size_t cap;
} text_lines;

static int text_next(void *ctx, const char **line, nt_error *err)
{
    text_lines *t = ctx;
    if (*t->p == '\0') return 0;
    const char *nl = strchr(t->p, '\n');
    size_t len = nl ? (size_t)(nl - t->p) : strlen(t->p);
    if (len + 1 > t->cap) {
        char *nb = realloc(t->buf, len + 1);
        if (!nb) return -nt_fail(err, NT_EFAIL, "%s: out of memory", t->name);
        t->buf = nb;
        t->cap = len + 1;
    }
    memcpy(t->buf, t->p, len);
    t->buf[len] = '\0';
    t->p += nl ? len + 1 : len;
    *line = t->buf;
    return 1;
}

int nt_builtin_csv(const char *name, nt_array *a, nt_error *err)
{
    memset(a, 0, sizeof *a);
    const char *text = name ? nt_builtin_data(name) : NULL;
    if (!text)
        return nt_fail(err, NT_EINPUT,
                       "builtin data '%s' does not exist (iris, wine, breast_cancer)",
                       name ? name : "(null)");
    char label[96];
    snprintf(label, sizeof label, "builtin data '%s'", name);
    text_lines t = { .p = text, .name = label };
    int rc = nt_csv_parse_lines(label, text_next, &t, a, err);
    free(t.buf);
    return rc;
}
