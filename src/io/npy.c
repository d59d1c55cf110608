/* npy.c: NumPy .npy files: reading (versions 1.0-3.0; every real and integer dtype, either
 * byte order, C or Fortran order; 0 to 4 dimensions) into float64 C-order nt_arrays, writing
 * '<f8' version 1.0 whole or not at all, and nt_array_free. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "noether.h"

#define NPY_MAX_HEADER (1 << 20)
/* what a PyTorch file given for an NPY file is told (the README's one-liner, the Python module) */
#define EXPORT_HINT "export theta as .npy: python3 -m noether export MODEL.pt --data X.npy Y.npy -o DIR (the " \
    "spec and DIR/spec_theta.npy), or numpy.save('theta.npy', " \
    "torch.nn.utils.parameters_to_vector(model.parameters()).detach().double().numpy())"

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

/* A dtype string '<f4', '>i2', '|u1', '=f8', '|b1' as kind, item size and byte order. */
typedef struct {
    char kind;       /* 'f' float, 'i' signed, 'u' unsigned, 'b' bool */
    int itemsize;
    int big;         /* the items are big-endian */
} npy_dtype;

/* Any real or integer dtype is accepted (and converted to float64); what cannot be a number
 * (complex, strings, objects, dates, records) is refused naming it. */
static int parse_dtype(const char *path, const char *descr, npy_dtype *t, nt_error *err)
{
    static const char *what[][2] = { {"c", "complex"}, {"U", "a string"}, {"S", "a byte string"},
                                     {"a", "a byte string"}, {"O", "Python objects"}, {"M", "a date"},
                                     {"m", "a time delta"}, {"V", "raw records"} };
    char order = descr[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return nt_fail(err, NT_EINPUT, "%s: dtype '%s' is not a plain NumPy dtype (structured arrays are not numbers)",
                       path, descr);
    t->kind = descr[1];
    t->itemsize = atoi(descr + 2);
    t->big = order == '>' || (order == '=' && !host_is_le());
    for (size_t i = 0; i < sizeof what / sizeof what[0]; i++)
        if (t->kind == what[i][0][0])
            return nt_fail(err, NT_EINPUT, "%s: dtype '%s' holds %s, not real numbers (save a real or integer array)",
                           path, descr, what[i][1]);
    int ok = (t->kind == 'f' && (t->itemsize == 2 || t->itemsize == 4 || t->itemsize == 8)) ||
             ((t->kind == 'i' || t->kind == 'u') &&
              (t->itemsize == 1 || t->itemsize == 2 || t->itemsize == 4 || t->itemsize == 8)) ||
             (t->kind == 'b' && t->itemsize == 1);
    if (!ok || strspn(descr + 2, "0123456789") != strlen(descr + 2))
        return nt_fail(err, NT_EINPUT, "%s: dtype '%s' is not supported (any float16/32/64, signed or unsigned "
                       "integer, or bool)", path, descr);
    return NT_OK;
}

/* IEEE binary16 to double, exactly (every half is a double). */
static double half_to_double(unsigned h)
{
    int e = (h >> 10) & 0x1f;
    unsigned f = h & 0x3ff;
    double v = e == 0 ? ldexp(f, -24) : e == 31 ? (f ? NAN : INFINITY) : ldexp(f | 0x400, e - 25);
    return h & 0x8000 ? -v : v;
}

/* item i of the raw bytes as a double: exact for every float and for integers below 2^53 */
static double item_value(const unsigned char *raw, int64_t i, const npy_dtype *t)
{
    unsigned char b[8];
    const unsigned char *p = raw + i * t->itemsize;
    for (int k = 0; k < t->itemsize; k++) b[k] = p[t->big ? t->itemsize - 1 - k : k];   /* little-endian */
    uint64_t u = le_get(b, t->itemsize);
    if (t->kind == 'f') {
        if (t->itemsize == 2) return half_to_double((unsigned)u);
        if (t->itemsize == 4) {
            uint32_t w = (uint32_t)u;
            float x;
            memcpy(&x, &w, 4);
            return (double)x;
        }
        double x;
        memcpy(&x, &u, 8);
        return x;
    }
    if (t->kind == 'u' || t->kind == 'b') return (double)u;
    int shift = 64 - 8 * t->itemsize;   /* sign-extend */
    return (double)((int64_t)(u << shift) >> shift);
}

/* The header of an open file, the cursor left on the first data byte; *data_at its offset. */
static int read_header(FILE *f, const char *path, nt_npy_header *out, long *data_at, nt_error *err)
{
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (ferror(f)) return nt_fail(err, NT_EINPUT, "%s: cannot read: %s", path, strerror(errno));
    if (got >= 2 && pre[0] == 'P' && pre[1] == 'K')
        return nt_fail(err, NT_EINPUT, "%s: a zip archive (a PyTorch .pt or NumPy .npz file), not an NPY file; " EXPORT_HINT,
                       path);
    if (got >= 2 && pre[0] == 0x80 && pre[1] >= 2 && pre[1] <= 5)
        return nt_fail(err, NT_EINPUT, "%s: a Python pickle (a PyTorch .pt file?), not an NPY file; " EXPORT_HINT, path);
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
    memset(out, 0, sizeof *out);
    hdr h = { text, text, path, base, err };
    int rc = hdr_parse(&h, out->descr, sizeof out->descr, &out->fortran, &out->ndim, out->shape);
    free(text);
    *data_at = base + (long)hlen;
    return rc;
}

int nt_npy_header_read(const char *path, nt_npy_header *h, nt_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return nt_fail(err, NT_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    long at;
    int rc = read_header(f, path, h, &at, err);
    npy_dtype t;
    if (!rc) rc = parse_dtype(path, h->descr, &t, err);
    fclose(f);
    return rc;
}

/* C-order index c of an array of this shape to its offset in Fortran order */
static int64_t fortran_offset(int64_t c, int ndim, const int64_t *shape)
{
    int64_t off = 0, stride = 1, idx[4];
    for (int k = ndim - 1; k >= 0; k--) idx[k] = c % shape[k], c /= shape[k];
    for (int k = 0; k < ndim; k++) off += idx[k] * stride, stride *= shape[k];
    return off;
}

/* The whole array, or (parts > 1) part `part` of `parts` balanced contiguous shares of its
 * rows (nt_parallel_shard): only they are read, seeking past the others (a Fortran-order
 * file's rows are not contiguous: it is read whole and the part kept); *first and *rows (may
 * be NULL) receive where they start and how many rows the file holds.  Every item is
 * converted to float64, in C order (a Fortran-order file's element (i, j, ...) is read from
 * its column-major offset). */
static int read_npy(FILE *f, const char *path, int part, int parts, nt_array *a, int64_t *first, int64_t *rows,
                    nt_error *err)
{
    nt_npy_header hd;
    long data_at;
    npy_dtype t;
    int rc = read_header(f, path, &hd, &data_at, err);
    if (!rc) rc = parse_dtype(path, hd.descr, &t, err);
    if (rc) return rc;
    const int ndim = hd.ndim;
    int64_t *shape = hd.shape, size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] && size > INT64_MAX / 8 / shape[i])
            return nt_fail(err, NT_EINPUT, "%s: shape is too large (the size overflows)", path);
        size *= shape[i];
    }
    const int64_t want = size * t.itemsize;
    int64_t start = 0, count = ndim ? shape[0] : 1, row = count ? size / count : 0;   /* row: items per row */
    if (rows) *rows = count;
    if (parts > 1) {
        if (ndim < 1) return nt_fail(err, NT_EINPUT, "%s: a scalar has no rows to share among %d ranks", path, parts);
        nt_parallel_shard(shape[0], part, parts, &start, &count);
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        int64_t have = (int64_t)st.st_size - data_at;
        if (have < want)
            return nt_fail(err, NT_EINPUT, "%s: truncated: expected %lld bytes of data, got %lld",
                           path, (long long)want, (long long)have);
        if (have > want)
            return nt_fail(err, NT_EINPUT, "%s: %lld bytes after the data (shape and size disagree)",
                           path, (long long)(have - want));
    }
    const int fortran = hd.fortran && ndim > 1, whole = parts <= 1 || fortran;
    const int64_t out = parts > 1 ? count * row : size, items = whole ? size : out;
    if (!whole && fseek(f, (long)(start * row * t.itemsize), SEEK_CUR) != 0)
        return nt_fail(err, NT_EINPUT, "%s: cannot seek to row %lld: %s", path, (long long)start, strerror(errno));
    double *d = malloc((size_t)(out ? out : 1) * sizeof *d);
    unsigned char *raw = malloc(items > 0 ? (size_t)(items * t.itemsize) : 1);
    if (!d || !raw) {
        free(d);
        free(raw);
        return nt_fail(err, NT_EFAIL, "%s: out of memory (%lld elements)", path, (long long)items);
    }
    const size_t bytes = (size_t)(items * t.itemsize), n = fread(raw, 1, bytes, f);
    if (n != bytes || (whole && fgetc(f) != EOF)) {
        free(d);
        free(raw);
        if (n != bytes)
            return nt_fail(err, NT_EINPUT, "%s: truncated: expected %lld bytes of data, got %lld",
                           path, (long long)bytes, (long long)n);
        return nt_fail(err, NT_EINPUT, "%s: bytes after the data (shape and size disagree)", path);
    }
    for (int64_t i = 0; i < out; i++) {
        const int64_t c = (parts > 1 ? start * row : 0) + i;   /* C-order index in the whole array */
        d[i] = item_value(raw, fortran ? fortran_offset(c, ndim, shape) : whole ? c : i, &t);
    }
    free(raw);
    if (parts > 1) shape[0] = count;
    if (t.kind == 'f')
        for (int64_t i = 0; i < out; i++)
            if (!isfinite(d[i])) {   /* named by flat index, and by (row, column) for a matrix, in the whole file */
                char at[64] = "";
                if (ndim == 2 && shape[1] > 0)
                    snprintf(at, sizeof at, " (row %lld, column %lld)", (long long)(start + i / shape[1]),
                             (long long)(i % shape[1]));
                int rc2 = nt_fail(err, NT_EINPUT, "%s: element %lld is %s%s", path, (long long)(start * row + i),
                                  isnan(d[i]) ? "nan" : "infinite", at);
                free(d);
                return rc2;
            }
    a->ndim = ndim;
    for (int i = 0; i < ndim; i++) a->shape[i] = shape[i];
    a->size = out;
    a->is_int = t.kind != 'f';
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

int nt_npy_is_narrow_float(const nt_npy_header *h)
{
    return h->descr[1] == 'f' && atoi(h->descr + 2) < 8;
}
