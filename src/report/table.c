/* table.c: the CSV time series of a run directory read back as numbers, for the plots
 * (which columns exist, which hold finite or positive values) and for the report. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "report.h"
#include "../util/buf.h"

static char *slurp(const char *dir, const char *name)
{
    char path[NT_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, got;
    char *s = malloc(cap);
    while ((got = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) s = realloc(s, cap *= 2);
    }
    fclose(f);
    s[len] = 0;
    return s;
}

/* copies the next comma-separated field of *p (quotes removed) into out; *p moves past
 * the comma, or stays on the end of the line */
static char *next_field(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    size_t n = 0;
    int quoted = *s == '"';
    if (quoted) s++;
    for (; *s && (quoted ? *s != '"' : *s != ',' && *s != '\n' && *s != '\r'); s++)
        if (n + 1 < cap) out[n++] = *s;
    out[n] = 0;
    while (*s && *s != ',' && *s != '\n') s++;
    *p = *s == ',' ? s + 1 : s;
    return out;
}

int report_table_read(const char *dir, const char *name, report_table *t)
{
    memset(t, 0, sizeof *t);
    char *s = slurp(dir, name), buf[512];
    const char *p = s;
    if (!s || !*s) { free(s); return 0; }
    int cap = 16;
    t->names = malloc(sizeof(char *) * cap);
    while (*p && *p != '\n') {
        if (t->cols == cap) t->names = realloc(t->names, sizeof(char *) * (cap *= 2));
        t->names[t->cols++] = strdup(next_field(&p, buf, sizeof buf));
    }
    size_t rcap = 64;
    t->x = malloc(sizeof(double) * rcap * t->cols);
    while (*p) {
        if (*p == '\n') { p++; continue; }
        if ((size_t)t->rows == rcap) t->x = realloc(t->x, sizeof(double) * (rcap *= 2) * t->cols);
        for (int c = 0; c < t->cols; c++) {
            const char *f = *p && *p != '\n' ? next_field(&p, buf, sizeof buf) : "";
            char *end;
            double v = strtod(f, &end);
            t->x[(size_t)t->rows * t->cols + c] = end == f ? NAN : v;
        }
        while (*p && *p != '\n') p++;
        t->rows++;
    }
    free(s);
    return t->rows > 0;
}

void report_table_free(report_table *t)
{
    for (int c = 0; c < t->cols; c++) free(t->names[c]);
    free(t->names);
    free(t->x);
    memset(t, 0, sizeof *t);
}

int report_col(const report_table *t, const char *name)
{
    for (int c = 0; c < t->cols; c++)
        if (!strcmp(t->names[c], name)) return c;
    return -1;
}

double report_at(const report_table *t, int r, int c)
{
    return t->x[(size_t)r * t->cols + c];
}

int report_col_has(const report_table *t, int c, int positive)
{
    if (c < 0) return 0;
    for (int r = 0; r < t->rows; r++) {
        double v = report_at(t, r, c);
        if (isfinite(v) && (!positive || v > 0)) return 1;
    }
    return 0;
}

int report_write(const char *dir, const char *name, const char *text, nt_error *err)
{
    char path[NT_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return nt_text_write(path, text, err);
}

void report_critical_point(const cJSON *flat, char *buf, size_t cap)
{
    const cJSON *it;
    const double gam = cJSON_GetObjectItem(flat, "gamma") ? cJSON_GetObjectItem(flat, "gamma")->valuedouble : 0;
    size_t n = 0;
    buf[0] = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(flat, "at_critical_point")) {
        double v = cJSON_GetObjectItem(it, "value")->valuedouble;
        const char *at = v == 0 ? "0" : v == gam ? "gamma" : "2 gamma";
        n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%d at %s", n ? ", " : "",
                              cJSON_GetObjectItem(it, "multiplicity")->valueint, at);
        if (n >= cap) break;
    }
    if (!buf[0]) snprintf(buf, cap, "none");
}
