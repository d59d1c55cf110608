/* csv.c: CSV files of numbers (plain or gzipped) -> an n x cols nt_array, and the text
 * parser it shares with the built-in data sets (builtin.c, via io_internal.h). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "io_internal.h"

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Parses the fields of one line into out (which holds nf values), nf = commas + 1.
 * Returns 0, or the 1-based number of the first field that is not a number, with
 * start and len spanning its text. */
static int parse_fields(const char *line, int64_t nf, double *out, const char **start,
                        int *len)
{
    const char *p = line;
    for (int64_t j = 0; j < nf; j++) {
        while (*p == ' ' || *p == '\t') p++;
        const char *s = p, *end;
        out[j] = strtod(s, (char **)&end);
        p = end;
        while (is_blank(*p)) p++;
        if (end == s || (*p != ',' && *p != '\0')) {
            const char *e = s;
            while (*e && *e != ',') e++;
            while (e > s && is_blank(e[-1])) e--;
            *start = s;
            *len = e - s > 60 ? 60 : (int)(e - s);
            return (int)(j + 1);
        }
        if (*p == ',') p++;
    }
    return 0;
}

int nt_csv_parse_lines(const char *name, nt_line_fn next, void *ctx, nt_array *a,
                       nt_error *err)
{
    memset(a, 0, sizeof *a);
    double *data = NULL, *row = NULL;
    int64_t n = 0, cap = 0, cols = 0, first = 0, line_no = 0;
    int rc = NT_OK, seen_first = 0;
    const char *line;
    for (;;) {
        int got = next(ctx, &line, err);
        if (got < 0) { rc = -got; goto fail; }
        if (got == 0) break;
        line_no++;
        const char *p = line;
        while (is_blank(*p)) p++;
        if (*p == '\0') continue;                       /* blank line */
        int64_t nf = 1;
        for (const char *q = line; *q; q++) nf += (*q == ',');
        if (cols == 0) {
            cols = nf;
            first = line_no;
            row = malloc((size_t)nf * sizeof *row);
            if (!row) { rc = nt_fail(err, NT_EFAIL, "%s: out of memory", name); goto fail; }
        } else if (nf != cols) {
            rc = nt_fail(err, NT_EINPUT, "%s: line %lld has %lld fields, line %lld has %lld",
                         name, (long long)line_no, (long long)nf, (long long)first,
                         (long long)cols);
            goto fail;
        }
        const char *fs;
        int fl, bad = parse_fields(line, nf, row, &fs, &fl);
        if (bad && !seen_first) {                     /* the header: skip it */
            seen_first = 1;
            cols = 0;
            free(row);
            row = NULL;
            continue;
        }
        seen_first = 1;
        if (bad) {
            rc = nt_fail(err, NT_EINPUT, "%s: line %lld field %d '%.*s' is not a number",
                         name, (long long)line_no, bad, fl, fs);
            goto fail;
        }
        for (int64_t j = 0; j < nf; j++)
            if (!isfinite(row[j])) {
                rc = nt_fail(err, NT_EINPUT, "%s: line %lld field %lld is %s", name,
                             (long long)line_no, (long long)(j + 1),
                             isnan(row[j]) ? "nan" : "infinite");
                goto fail;
            }
        if ((n + 1) * cols > cap) {
            int64_t nc = cap ? 2 * cap : 64 * cols;
            if (nc < (n + 1) * cols) nc = (n + 1) * cols;
            double *nd = (size_t)nc <= SIZE_MAX / sizeof *nd
                             ? realloc(data, (size_t)nc * sizeof *nd) : NULL;
            if (!nd) { rc = nt_fail(err, NT_EFAIL, "%s: out of memory", name); goto fail; }
            data = nd;
            cap = nc;
        }
        memcpy(data + n * cols, row, (size_t)cols * sizeof *row);
        n++;
    }
    if (n == 0) {
        rc = nt_fail(err, NT_EINPUT, "%s: no data rows", name);
        goto fail;
    }
    free(row);
    a->ndim = 2;
    a->shape[0] = n;
    a->shape[1] = cols;
    a->size = n * cols;
    a->data = data;
    return NT_OK;
fail:
    free(row);
    free(data);
    return rc;
}

/* ------------------------------------------------------------------ lines of a file */

typedef struct {
    const char *path;
    gzFile f;
    char *buf;
    size_t cap;
    long long line_no;
} gz_lines;

static int gz_next(void *ctx, const char **line, nt_error *err)
{
    gz_lines *g = ctx;
    size_t len = 0;
    g->line_no++;
    for (;;) {
        if (g->cap - len < 2) {
            size_t nc = g->cap ? 2 * g->cap : 4096;
            char *nb = realloc(g->buf, nc);
            if (!nb) return -nt_fail(err, NT_EFAIL, "%s: out of memory", g->path);
            g->buf = nb;
            g->cap = nc;
        }
        size_t room = g->cap - len > INT_MAX ? INT_MAX : g->cap - len;
        if (!gzgets(g->f, g->buf + len, (int)room)) {
            int zerr;
            const char *msg = nt_gz_error(g->f, g->path, &zerr);
            if (zerr == Z_ERRNO)
                return -nt_fail(err, NT_EINPUT, "%s: cannot read: %s", g->path, strerror(errno));
            if (zerr != Z_OK && zerr != Z_STREAM_END)
                return -nt_fail(err, NT_EINPUT, "%s: cannot read line %lld: %s", g->path,
                               g->line_no, msg);
            if (len == 0) return 0;
            break;                                  /* last line without a newline */
        }
        size_t got = strlen(g->buf + len);
        len += got;
        if (len > 0 && g->buf[len - 1] == '\n') break;
        if (got + 1 < room && !gzeof(g->f))         /* gzgets stopped early: a NUL byte */
            return -nt_fail(err, NT_EINPUT, "%s: line %lld contains a NUL byte (not a text file?)",
                           g->path, g->line_no);
    }
    *line = g->buf;
    return 1;
}

int nt_csv_read(const char *path, nt_array *a, nt_error *err)
{
    memset(a, 0, sizeof *a);
    gz_lines g = { .path = path };
    g.f = gzopen(path, "rb");
    if (!g.f)
        return nt_fail(err, NT_EINPUT, "%s: cannot open: %s", path,
                       errno ? strerror(errno) : "out of memory");
    gzbuffer(g.f, 1 << 16);
    int rc = nt_csv_parse_lines(path, gz_next, &g, a, err);
    gzclose(g.f);
    free(g.buf);
    return rc;
}
