/* npy.c: NumPy .npy files: reading (versions 1.0-3.0; '<f8', '<i8', '<i4', '|u1'; C order;
 * 0 to 4 dimensions) into float64 nt_arrays, writing '<f8' version 1.0 whole or not at all,
 * and nt_array_free. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "noether.h"

#define NPY_MAX_HEADER (1 << 20)

void nt_array_free(nt_array *a)
{
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

static uint64_t le_get(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static int host_is_le(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* ------------------------------------------------------------------ header dict */

typedef struct {
    const char *s, *p;    /* the header text (NUL-terminated) and the cursor */
    const char *path;
    long base;            /* file offset of s, for messages */
    nt_error *err;
} hdr;

static int hdr_fail(hdr *h, const char *what)
{
    return nt_fail(h->err, NT_EINPUT, "%s: bad header at byte %ld: %s", h->path,
                   h->base + (long)(h->p - h->s), what);
}

static void skip_ws(hdr *h)
{
    while (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r') h->p++;
}

/* A quoted string ('...' or "...") of at most cap-1 characters into out. */
static int hdr_string(hdr *h, char *out, size_t cap)
{
    char q = *h->p;
    if (q != '\'' && q != '"') return hdr_fail(h, "expected a quoted string");
    const char *s = ++h->p;
    while (*h->p && *h->p != q) h->p++;
    if (!*h->p) return hdr_fail(h, "unterminated string");
    size_t n = (size_t)(h->p - s);
    if (n >= cap) return hdr_fail(h, "string too long");
    memcpy(out, s, n);
    out[n] = '\0';
    h->p++;
    return NT_OK;
}

static int hdr_shape(hdr *h, int *ndim, int64_t *shape)
{
    if (*h->p != '(') return hdr_fail(h, "expected '(' for the shape");
    h->p++;
    *ndim = 0;
    for (;;) {
        skip_ws(h);
        if (*h->p == ')') break;
        if (*h->p < '0' || *h->p > '9') return hdr_fail(h, "expected a dimension in the shape");
        if (*ndim == 4) return hdr_fail(h, "more than 4 dimensions are not supported");
        int64_t v = 0;
        while (*h->p >= '0' && *h->p <= '9') {
            int d = *h->p++ - '0';
            if (v > (INT64_MAX - d) / 10) return hdr_fail(h, "dimension too large");
            v = 10 * v + d;
        }
        if (*h->p == 'L') h->p++;                 /* written by Python 2 */
        shape[(*ndim)++] = v;
        skip_ws(h);
        if (*h->p == ',') h->p++;
        else if (*h->p != ')') return hdr_fail(h, "expected ',' or ')' in the shape");
    }
    h->p++;
    return NT_OK;
}

/* {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), } with keys in any order. */
static int hdr_parse(hdr *h, char *descr, size_t dcap, int *fortran, int *ndim,
                     int64_t *shape)
{
    int seen = 0, rc;
    skip_ws(h);
    if (*h->p != '{') return hdr_fail(h, "expected '{'");
    h->p++;
    for (;;) {
        skip_ws(h);
        if (*h->p == '}') break;
        char key[32];
        if ((rc = hdr_string(h, key, sizeof key))) return rc;
        skip_ws(h);
        if (*h->p != ':') return hdr_fail(h, "expected ':' after a key");
        h->p++;
        skip_ws(h);
        int bit;
        if (!strcmp(key, "descr")) {
            bit = 1;
            if ((rc = hdr_string(h, descr, dcap))) return rc;
        } else if (!strcmp(key, "fortran_order")) {
            bit = 2;
            if (!strncmp(h->p, "True", 4)) *fortran = 1, h->p += 4;
            else if (!strncmp(h->p, "False", 5)) *fortran = 0, h->p += 5;
            else return hdr_fail(h, "fortran_order is neither True nor False");
        } else if (!strcmp(key, "shape")) {
            bit = 4;
            if ((rc = hdr_shape(h, ndim, shape))) return rc;
        } else {
            char msg[64];
            snprintf(msg, sizeof msg, "unknown key '%s'", key);
            return hdr_fail(h, msg);
        }
        if (seen & bit) return hdr_fail(h, "repeated key");
        seen |= bit;
        skip_ws(h);
        if (*h->p == ',') h->p++;
        else if (*h->p != '}') return hdr_fail(h, "expected ',' or '}'");
    }
    h->p++;
    skip_ws(h);
    if (*h->p) return hdr_fail(h, "unexpected text after '}'");
    if (seen != 7)
        return hdr_fail(h, !(seen & 1) ? "no 'descr'" : !(seen & 2) ? "no 'fortran_order'"
                                                                     : "no 'shape'");
    return NT_OK;
}

/* ------------------------------------------------------------------ reading */

/* The whole array, or (parts > 1) part `part` of `parts` balanced contiguous shares of its
 * rows (nt_parallel_shard): only they are read, seeking past the others; *first and *rows
 * (may be NULL) receive where they start and how many rows the file holds. */
static int read_npy(FILE *f, const char *path, int part, int parts, nt_array *a, int64_t *first, int64_t *rows,
                    nt_error *err)
{
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (ferror(f)) return nt_fail(err, NT_EINPUT, "%s: cannot read: %s", path, strerror(errno));
    if (got < 8 || memcmp(pre, "\x93NUMPY", 6))
        return nt_fail(err, NT_EINPUT, "%s: not an NPY file (bad magic)", path);
    int major = pre[6];
    if (major < 1 || major > 3 || pre[7] != 0)
        return nt_fail(err, NT_EINPUT, "%s: NPY version %d.%d is not supported (want 1.0, 2.0 or 3.0)",
                       path, pre[6], pre[7]);
    long base = major == 1 ? 10 : 12;
    if (major > 1) got += fread(pre + 10, 1, 2, f);
    if (got < (size_t)base) return nt_fail(err, NT_EINPUT, "%s: truncated header", path);
    uint64_t hlen = le_get(pre + 8, major == 1 ? 2 : 4);
    if (hlen > NPY_MAX_HEADER)
        return nt_fail(err, NT_EINPUT, "%s: header length %llu is too large", path,
                       (unsigned long long)hlen);
    char *text = malloc(hlen + 1);
    if (!text) return nt_fail(err, NT_EFAIL, "%s: out of memory", path);
    if (fread(text, 1, hlen, f) != hlen) {
        free(text);
        return nt_fail(err, NT_EINPUT, "%s: truncated header (want %llu bytes)", path,
                       (unsigned long long)hlen);
    }
    text[hlen] = '\0';
    char descr[16];
    int fortran = 0, ndim = 0, rc;
    int64_t shape[4] = {0};
    hdr h = { text, text, path, base, err };
    rc = hdr_parse(&h, descr, sizeof descr, &fortran, &ndim, shape);
    free(text);
    if (rc) return rc;

    int itemsize, is_int = 1;
    if (!strcmp(descr, "<f8")) itemsize = 8, is_int = 0;
    else if (!strcmp(descr, "<i8")) itemsize = 8;
    else if (!strcmp(descr, "<i4")) itemsize = 4;
    else if (!strcmp(descr, "|u1")) itemsize = 1;
    else
        return nt_fail(err, NT_EINPUT,
                       "%s: dtype '%s' is not supported (want '<f8', '<i8', '<i4' or '|u1')",
                       path, descr);
    if (fortran)
        return nt_fail(err, NT_EINPUT, "%s: fortran_order True is not supported (save C order)",
                       path);
    int64_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] && size > INT64_MAX / 8 / shape[i])
            return nt_fail(err, NT_EINPUT, "%s: shape is too large (the size overflows)", path);
        size *= shape[i];
    }
    int64_t want = size * itemsize;
    int64_t start = 0, count = ndim ? shape[0] : 1, row = count ? size / count : 0;   /* row: items per row */
    if (rows) *rows = count;
    if (parts > 1) {
        if (ndim < 1) return nt_fail(err, NT_EINPUT, "%s: a scalar has no rows to share among %d ranks", path, parts);
        nt_parallel_shard(shape[0], part, parts, &start, &count);
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        int64_t have = (int64_t)st.st_size - base - (int64_t)hlen;
        if (have < want)
            return nt_fail(err, NT_EINPUT, "%s: truncated: expected %lld bytes of data, got %lld",
                           path, (long long)want, (long long)have);
        if (have > want)
            return nt_fail(err, NT_EINPUT, "%s: %lld bytes after the data (shape and size disagree)",
                           path, (long long)(have - want));
    }

    if (parts > 1) {   /* this part's rows only */
        if (fseek(f, (long)(start * row * itemsize), SEEK_CUR) != 0)
            return nt_fail(err, NT_EINPUT, "%s: cannot seek to row %lld: %s", path, (long long)start, strerror(errno));
        size = count * row;
        want = size * itemsize;
        shape[0] = count;
    }
    /* Read the raw items into the double buffer, then widen in place from the end. */
    double *d = malloc((size_t)(size ? size : 1) * sizeof *d);
    if (!d) return nt_fail(err, NT_EFAIL, "%s: out of memory (%lld elements)", path,
                           (long long)size);
    unsigned char *raw = (unsigned char *)d;
    size_t n = fread(raw, 1, (size_t)want, f);
    if (n != (size_t)want || (parts <= 1 && fgetc(f) != EOF)) {
        free(d);
        if (n != (size_t)want)
            return nt_fail(err, NT_EINPUT, "%s: truncated: expected %lld bytes of data, got %lld",
                           path, (long long)want, (long long)n);
        return nt_fail(err, NT_EINPUT, "%s: bytes after the data (shape and size disagree)", path);
    }
    for (int64_t i = size - 1; i >= 0; i--) {
        const unsigned char *b = raw + i * itemsize;
        uint64_t u = le_get(b, itemsize);
        double v;
        if (!is_int) {
            if (host_is_le()) continue;               /* already in place */
            memcpy(&v, &u, 8);
        } else if (itemsize == 8) {
            v = (double)(int64_t)u;
        } else if (itemsize == 4) {
            v = (double)(int32_t)(uint32_t)u;
        } else {
            v = (double)u;
        }
        d[i] = v;
    }
    if (!is_int)
        for (int64_t i = 0; i < size; i++)
            if (!isfinite(d[i])) {   /* named by flat index, and by (row, column) for a matrix, in the whole file */
                char at[64] = "";
                if (ndim == 2 && shape[1] > 0)
                    snprintf(at, sizeof at, " (row %lld, column %lld)", (long long)(start + i / shape[1]),
                             (long long)(i % shape[1]));
                int rc = nt_fail(err, NT_EINPUT, "%s: element %lld is %s%s", path, (long long)(start * row + i),
                                 isnan(d[i]) ? "nan" : "infinite", at);
                free(d);
                return rc;
            }
    a->ndim = ndim;
    for (int i = 0; i < ndim; i++) a->shape[i] = shape[i];
    a->size = size;
    a->is_int = is_int;
    a->data = d;
    if (first) *first = start;
    return NT_OK;
}

int nt_npy_read(const char *path, nt_array *a, nt_error *err)
{
    return nt_npy_read_rows(path, 0, 1, a, NULL, NULL, err);
}

int nt_npy_read_rows(const char *path, int part, int parts, nt_array *a, int64_t *first, int64_t *rows, nt_error *err)
{
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f) return nt_fail(err, NT_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    int rc = read_npy(f, path, part, parts, a, first, rows, err);
    fclose(f);
    if (rc) nt_array_free(a);
    return rc;
}

/* ------------------------------------------------------------------ writing */

typedef struct {
    const unsigned char *pre;
    const char *dict;
    int hlen;
    const double *data;
    int64_t size;
} npy_body;

/* magic, header, then the data little-endian */
static int write_npy_body(FILE *f, const void *ctx)
{
    const npy_body *b = ctx;
    int ok = fwrite(b->pre, 1, 10, f) == 10 && fwrite(b->dict, 1, (size_t)b->hlen, f) == (size_t)b->hlen;
    if (host_is_le()) return ok && fwrite(b->data, sizeof *b->data, (size_t)b->size, f) == (size_t)b->size;
    for (int64_t i = 0; ok && i < b->size; i++) {
        uint64_t u;
        unsigned char c[8];
        memcpy(&u, &b->data[i], 8);
        for (int k = 0; k < 8; k++) c[k] = (unsigned char)(u >> (8 * k));
        ok = fwrite(c, 1, 8, f) == 8;
    }
    return ok;
}

int nt_npy_write(const char *path, const double *data, int ndim, const int64_t *shape,
                 nt_error *err)
{
    if (ndim < 0 || ndim > 4)
        return nt_fail(err, NT_EINPUT, "%s: cannot write an array of %d dimensions (0 to 4)",
                       path, ndim);
    char dict[256];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (");
    int64_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && size > INT64_MAX / 8 / shape[i]))
            return nt_fail(err, NT_EINPUT, "%s: cannot write shape with dimension %lld", path,
                           (long long)shape[i]);
        size *= shape[i];
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%s%lld", i ? ", " : "",
                        (long long)shape[i]);
    }
    len += snprintf(dict + len, sizeof dict - (size_t)len, "%s), }", ndim == 1 ? "," : "");
    int total = (10 + len + 1 + 63) / 64 * 64;      /* magic .. header .. '\n' */
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0 };
    int hlen = total - 10;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    memset(dict + len, ' ', (size_t)(hlen - len - 1));
    dict[hlen - 1] = '\n';

    npy_body b = { pre, dict, hlen, data, size };
    return nt_file_write(path, write_npy_body, &b, err);
}
