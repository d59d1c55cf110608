/* idx.c: IDX files of unsigned bytes (MNIST, Fashion-MNIST), plain or gzipped: labels
 * (magic 0x00000801, n) and images (magic 0x00000803, n x rows x cols) -> nt_array of the
 * byte values as doubles (no scaling), is_int set. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "io_internal.h"

/* Reads up to n bytes; returns the count, or -1 with err filled (NT_EINPUT) on a read
 * error or a corrupt gzip stream. */
static int64_t gz_read_full(gzFile f, const char *path, unsigned char *buf, int64_t n,
                            nt_error *err)
{
    int64_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1 << 30) ? 1u << 30 : (unsigned)(n - got);
        int r = gzread(f, buf + got, chunk);
        if (r < 0) {
            int zerr;
            const char *msg = nt_gz_error(f, path, &zerr);
            nt_fail(err, NT_EINPUT, "%s: cannot read: %s", path,
                    zerr == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (r == 0) break;
        got += r;
    }
    return got;
}

/* reads and drops n bytes through a small buffer (gzip has no seeking); the bytes read */
static int64_t drop(gzFile f, const char *path, int64_t n, nt_error *err)
{
    unsigned char skip[1 << 16];
    int64_t have = 0;
    while (have < n) {
        int64_t got = gz_read_full(f, path, skip, n - have < (int64_t)sizeof skip ? n - have : (int64_t)sizeof skip, err);
        if (got < 0) return -1;
        if (got == 0) break;
        have += got;
    }
    return have;
}

/* keeps the first `keep` rows (<= 0: all) of the first dimension, or (parts > 1) part `part`
 * of `parts` balanced contiguous shares of them (nt_parallel_shard): only they are held and
 * converted; the rest is read through a small buffer, to check its length */
static int read_idx(gzFile f, const char *path, int64_t keep, int part, int parts, nt_array *a, int64_t *rows,
                    nt_error *err)
{
    unsigned char head[16];
    int64_t got = gz_read_full(f, path, head, 4, err);
    if (got < 0) return NT_EINPUT;
    uint32_t magic = got == 4 ? (uint32_t)head[0] << 24 | head[1] << 16 | head[2] << 8 | head[3] : 0;
    if (magic != 0x801 && magic != 0x803)
        return nt_fail(err, NT_EINPUT,
                       "%s: bad magic 0x%08x (want 0x00000801 labels or 0x00000803 images)",
                       path, (unsigned)magic);
    int ndim = magic & 0xff;
    got = gz_read_full(f, path, head + 4, 4 * ndim, err);
    if (got < 0) return NT_EINPUT;
    if (got < 4 * ndim)
        return nt_fail(err, NT_EINPUT, "%s: truncated header: expected %d bytes of dimensions, got %lld",
                       path, 4 * ndim, (long long)got);
    int64_t size = 1, shape[3];
    for (int i = 0; i < ndim; i++) {
        const unsigned char *b = head + 4 + 4 * i;
        shape[i] = (int64_t)((uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]);
        if (shape[i] && size > INT64_MAX / 8 / shape[i])
            return nt_fail(err, NT_EINPUT, "%s: shape is too large (the size overflows)", path);
        size *= shape[i];
    }
    if (size == 0) return nt_fail(err, NT_EINPUT, "%s: empty (a dimension is 0)", path);

    const int64_t row = size / shape[0], total = keep > 0 && keep < shape[0] ? keep : shape[0];
    int64_t first = 0, n_keep = total;
    if (parts > 1) nt_parallel_shard(total, part, parts, &first, &n_keep);
    const int64_t kept = row * n_keep, before = drop(f, path, row * first, err);   /* the rows before the part */
    if (before < 0) return NT_EINPUT;
    /* Grow the byte buffer as data arrives, so a lying header costs no memory. */
    unsigned char *raw = NULL;
    int64_t have = 0, cap = 0;
    while (before == row * first && have < kept) {
        int64_t nc = cap ? 2 * cap : 1 << 20;
        if (nc > kept) nc = kept;
        unsigned char *nr = realloc(raw, (size_t)nc);
        if (!nr) { free(raw); return nt_fail(err, NT_EFAIL, "%s: out of memory", path); }
        raw = nr;
        cap = nc;
        got = gz_read_full(f, path, raw + have, cap - have, err);
        if (got < 0) { free(raw); return NT_EINPUT; }
        have += got;
        if (have < cap) break;
    }
    const int whole = have == kept;
    have += before;
    if (whole) {   /* the rows after the ones kept: read, counted, dropped */
        got = drop(f, path, size - have, err);
        if (got < 0) { free(raw); return NT_EINPUT; }
        have += got;
    }
    if (have < size) {
        free(raw);
        return nt_fail(err, NT_EINPUT, "%s: truncated: expected %lld bytes of %s, got %lld", path,
                       (long long)size, ndim == 1 ? "labels" : "pixels", (long long)have);
    }
    got = gz_read_full(f, path, head, 1, err);
    if (got != 0) {
        free(raw);
        if (got < 0) return NT_EINPUT;
        return nt_fail(err, NT_EINPUT, "%s: trailing bytes after the %lld bytes of %s the header declares",
                       path, (long long)size, ndim == 1 ? "labels" : "pixels");
    }
    *rows = shape[0];
    shape[0] = n_keep;
    size = kept;
    double *d = malloc((size_t)size * sizeof *d);
    if (!d) { free(raw); return nt_fail(err, NT_EFAIL, "%s: out of memory", path); }
    for (int64_t i = 0; i < size; i++) d[i] = raw[i];
    free(raw);
    a->ndim = ndim;
    for (int i = 0; i < ndim; i++) a->shape[i] = shape[i];
    a->size = size;
    a->is_int = 1;
    a->data = d;
    return NT_OK;
}

int nt_idx_read(const char *path, nt_array *a, nt_error *err)
{
    int64_t rows;
    return nt_idx_read_rows(path, 0, a, &rows, err);
}

int nt_idx_read_rows(const char *path, int64_t keep, nt_array *a, int64_t *rows, nt_error *err)
{
    return nt_idx_read_part(path, keep, 0, 1, a, rows, err);
}

int nt_idx_read_part(const char *path, int64_t keep, int part, int parts, nt_array *a, int64_t *rows, nt_error *err)
{
    memset(a, 0, sizeof *a);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return nt_fail(err, NT_EINPUT, "%s: cannot open: %s", path,
                       errno ? strerror(errno) : "out of memory");
    int rc = read_idx(f, path, keep, part, parts, a, rows, err);
    gzclose(f);
    return rc;
}
