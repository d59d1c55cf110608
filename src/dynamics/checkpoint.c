/* checkpoint.c: the checkpoint file, a list of named records (float64 arrays, int64 arrays,
 * bytes) written whole or not at all, and the training run's records in it (resume.c).
 * Layout, little-endian (the hosts this builds on):
 *     "NTCKPT2\n"
 *     per record: uint32 name length, name, type byte 'f' | 'i' | 'b', uint64 count, payload
 *     a last record named "end" (type 'i', count 1): the FNV-1a hash (nt_hash64) of every
 *     byte before its payload; a file without it is truncated
 * The reader verifies the hash before it parses a record (FNV-1a changes with any single
 * byte changed, so one damaged byte is always seen), then checks every length against the
 * bytes that remain, so a damaged file is an error naming the byte offset, never a crash,
 * a huge allocation or a run resumed from wrong numbers.  Version 1 (no hash) is refused. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "noether.h"

static const char magic[8] = {'N', 'T', 'C', 'K', 'P', 'T', '2', '\n'};
enum { END_BYTES = 4 + 3 + 1 + 8 + 8 };   /* the end record: length, "end", 'i', count 1, hash */

typedef struct {
    char *name;
    char type;          /* 'f', 'i' or 'b' */
    int64_t count;      /* values ('f', 'i') or bytes ('b') */
    unsigned char *data;
} record;

struct nt_checkpoint {
    char path[NT_PATH_MAX];   /* where it was read from (for messages) */
    int n, cap;
    record *r;
};

static size_t width(char type) { return type == 'b' ? 1 : 8; }

nt_checkpoint *nt_checkpoint_new(void)
{
    nt_checkpoint *c = calloc(1, sizeof *c);
    if (c) strcpy(c->path, "<checkpoint>");
    return c;
}

void nt_checkpoint_free(nt_checkpoint *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) { free(c->r[i].name); free(c->r[i].data); }
    free(c->r);
    free(c);
}

static const record *find(const nt_checkpoint *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->r[i].name, name)) return &c->r[i];
    return NULL;
}

static void put(nt_checkpoint *c, const char *name, char type, int64_t count, const void *x)
{
    record *r = (record *)find(c, name);
    if (r) {
        free(r->data);
    } else {
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 16;
            c->r = realloc(c->r, sizeof *c->r * (size_t)c->cap);
        }
        r = &c->r[c->n++];
        r->name = strdup(name);
    }
    size_t bytes = (size_t)count * width(type);
    r->type = type;
    r->count = count;
    r->data = malloc(bytes + 1);   /* bytes records end in a NUL (text reads as a string) */
    if (bytes) memcpy(r->data, x, bytes);
    r->data[bytes] = 0;
}

void nt_checkpoint_put_f64(nt_checkpoint *c, const char *name, int64_t n, const double *x) { put(c, name, 'f', n, x); }
void nt_checkpoint_put_i64(nt_checkpoint *c, const char *name, int64_t n, const int64_t *x) { put(c, name, 'i', n, x); }
void nt_checkpoint_put_bytes(nt_checkpoint *c, const char *name, int64_t n, const void *x) { put(c, name, 'b', n, x); }

/* fwrite that hashes what it writes */
static int out(FILE *f, const void *x, size_t n, uint64_t *h)
{
    *h = nt_hash64(x, n, *h);
    return n == 0 || fwrite(x, 1, n, f) == n;
}

static int write_record(FILE *f, const char *name, char type, uint64_t count, const void *data, uint64_t *h)
{
    uint32_t len = (uint32_t)strlen(name);
    size_t bytes = (size_t)count * width(type);
    return out(f, &len, 4, h) && out(f, name, len, h) && out(f, &type, 1, h) && out(f, &count, 8, h) &&
           out(f, data, bytes, h);
}

/* the magic, every record, then the end record with the hash of all that */
static int write_checkpoint_body(FILE *f, const void *ctx)
{
    const nt_checkpoint *c = ctx;
    uint64_t h = NT_HASH_INIT, one = 1;
    uint32_t len = 3;
    char type = 'i';
    int ok = out(f, magic, sizeof magic, &h);
    for (int i = 0; i < c->n && ok; i++)
        ok = write_record(f, c->r[i].name, c->r[i].type, (uint64_t)c->r[i].count, c->r[i].data, &h);
    ok = ok && out(f, &len, 4, &h) && out(f, "end", 3, &h) && out(f, &type, 1, &h) && out(f, &one, 8, &h);
    return ok && fwrite(&h, 8, 1, f) == 1;
}

/* Flushed to the disk (fsync) at most once a second: checkpoint_every 1 would otherwise
 * wait for the disk at every step (~5 ms here).  A killed process loses nothing either way
 * (the file is renamed into place whole); a power cut, at most the last second. */
int nt_checkpoint_write(const nt_checkpoint *c, const char *path, nt_error *err)
{
    static double last = -1e300;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    const double now = (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
    const int sync = now - last >= 1.0;
    int rc = nt_file_write_sync(path, write_checkpoint_body, c, sync, err);
    if (!rc && sync) last = now;
    return rc;
}

int nt_checkpoint_read(const char *path, nt_checkpoint **out, nt_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return nt_fail(err, NT_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {   /* the whole file: its size bounds every length in it */
        if (n == cap) buf = realloc(buf, cap = cap ? 2 * cap : 1 << 16);
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return nt_fail(err, NT_EINPUT, "%s: cannot read: %s", path, strerror(errno)); }
    if (n >= sizeof magic && !memcmp(buf, "NTCKPT1\n", sizeof magic)) {
        free(buf);
        return nt_fail(err, NT_EINPUT, "%s: a checkpoint of an older noether (version 1, no checksum): it cannot "
                       "be verified; start the run afresh (--force)", path);
    }
    if (n < sizeof magic || memcmp(buf, magic, sizeof magic)) {
        free(buf);
        return nt_fail(err, NT_EINPUT, "%s: not a noether checkpoint (bad magic)", path);
    }
    {   /* the end record and the hash of everything before its payload, before any use */
        static const unsigned char end_head[16] = {3, 0, 0, 0, 'e', 'n', 'd', 'i', 1, 0, 0, 0, 0, 0, 0, 0};
        uint64_t want, got;
        if (n < sizeof magic + END_BYTES || memcmp(buf + n - END_BYTES, end_head, sizeof end_head)) {
            free(buf);
            return nt_fail(err, NT_EINPUT, "%s: truncated or damaged: no end record with its checksum at byte %zu",
                           path, n < END_BYTES ? 0 : n - END_BYTES);
        }
        memcpy(&want, buf + n - 8, 8);
        got = nt_hash64(buf, n - 8, NT_HASH_INIT);
        if (got != want) {
            free(buf);
            return nt_fail(err, NT_EINPUT, "%s: checksum mismatch over bytes 0..%zu: the file is damaged; resume "
                           "refused", path, n - 8);
        }
    }
    nt_checkpoint *c = nt_checkpoint_new();
    snprintf(c->path, sizeof c->path, "%s", path);
    size_t at = sizeof magic;
    int rc = NT_OK, ended = 0;
    while (!ended && !rc) {
        uint32_t len;
        uint64_t count;
        char type, name[256];
        if (n - at < 4) { rc = nt_fail(err, NT_EINPUT, "%s: truncated at byte %zu (no end record)", path, at); break; }
        memcpy(&len, buf + at, 4);
        if (len == 0 || len >= sizeof name || n - at - 4 < (size_t)len + 9) {
            rc = nt_fail(err, NT_EINPUT, "%s: truncated or damaged record header at byte %zu", path, at);
            break;
        }
        memcpy(name, buf + at + 4, len);
        name[len] = 0;
        type = (char)buf[at + 4 + len];
        memcpy(&count, buf + at + 5 + len, 8);
        const size_t start = at + 13 + len;
        if (type != 'f' && type != 'i' && type != 'b') {
            rc = nt_fail(err, NT_EINPUT, "%s: record '%s' at byte %zu: unknown type", path, name, at);
            break;
        }
        if (count > (n - start) / width(type)) {
            rc = nt_fail(err, NT_EINPUT, "%s: record '%s' at byte %zu: %llu %s, but the file ends at byte %zu",
                         path, name, at, (unsigned long long)count, type == 'b' ? "bytes" : "values", n);
            break;
        }
        ended = !strcmp(name, "end");
        if (!ended) put(c, name, type, (int64_t)count, buf + start);
        at = start + (size_t)count * width(type);
    }
    if (!rc && at != n) rc = nt_fail(err, NT_EINPUT, "%s: %zu bytes after the end record", path, n - at);
    free(buf);
    if (rc) { nt_checkpoint_free(c); return rc; }
    *out = c;
    return NT_OK;
}

static const record *get(const nt_checkpoint *c, const char *name, char type, int64_t n, nt_error *err)
{
    const record *r = find(c, name);
    static const char *const what[] = {"float64 values", "int64 values", "bytes"};
    const char *w = what[type == 'f' ? 0 : type == 'i' ? 1 : 2];
    if (!r) { nt_fail(err, NT_EINPUT, "%s: record '%s' is missing", c->path, name); return NULL; }
    if (r->type != type) { nt_fail(err, NT_EINPUT, "%s: record '%s' does not hold %s", c->path, name, w); return NULL; }
    if (n >= 0 && r->count != n) {
        nt_fail(err, NT_EINPUT, "%s: record '%s' has %lld %s, want %lld", c->path, name, (long long)r->count, w,
                (long long)n);
        return NULL;
    }
    return r;
}

int nt_checkpoint_get_f64(const nt_checkpoint *c, const char *name, int64_t n, double *x, nt_error *err)
{
    const record *r = get(c, name, 'f', n, err);
    if (!r) return NT_EINPUT;
    memcpy(x, r->data, sizeof(double) * (size_t)n);
    return NT_OK;
}

int nt_checkpoint_get_i64(const nt_checkpoint *c, const char *name, int64_t n, int64_t *x, nt_error *err)
{
    const record *r = get(c, name, 'i', n, err);
    if (!r) return NT_EINPUT;
    memcpy(x, r->data, sizeof(int64_t) * (size_t)n);
    return NT_OK;
}

int nt_checkpoint_get_bytes(const nt_checkpoint *c, const char *name, const char **x, int64_t *n, nt_error *err)
{
    const record *r = get(c, name, 'b', -1, err);
    if (!r) return NT_EINPUT;
    *x = (const char *)r->data;
    *n = r->count;
    return NT_OK;
}

const char *nt_checkpoint_path(const nt_checkpoint *c) { return c->path; }

int64_t nt_checkpoint_count(const nt_checkpoint *c, const char *name)
{
    const record *r = find(c, name);
    return r ? r->count : -1;
}
