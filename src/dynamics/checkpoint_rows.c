/* checkpoint_rows.c: a text side file beside a checkpoint (noether train's
 * DIR/checkpoint.rows), appended at each checkpoint, whose length and hash the checkpoint
 * records; a resume verifies those bytes and cuts whatever follows them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "noether.h"

void nt_checkpoint_rows_init(nt_checkpoint_rows *r, const char *path, int fresh)
{
    snprintf(r->path, sizeof r->path, "%s", path);
    r->saved = 0;
    r->hash = NT_HASH_INIT;
    if (fresh) remove(r->path);
}

int nt_checkpoint_rows_append(nt_checkpoint_rows *r, const char *text, size_t len, nt_error *err)
{
    const size_t n = len - r->saved;
    if (n == 0) return NT_OK;
    static double last = -1e300;   /* fsync at most once a second, as nt_checkpoint_write */
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    const double now = (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
    const int sync = now - last >= 1.0;
    FILE *f = fopen(r->path, "ab");
    int ok = f && fwrite(text + r->saved, 1, n, f) == n && fflush(f) == 0 && (!sync || fsync(fileno(f)) == 0);
    if (ok && sync) last = now;
    int e = errno;
    if (f && fclose(f) != 0 && ok) ok = 0, e = errno;
    if (!ok) {
        if (truncate(r->path, (off_t)r->saved) != 0) { /* the checkpoint's length still bounds what is read */ }
        return nt_fail(err, NT_EFAIL, "%s: cannot write: %s", r->path, strerror(e ? e : EIO));
    }
    r->hash = nt_hash64(text + r->saved, n, r->hash);
    r->saved = len;
    return NT_OK;
}

void nt_checkpoint_rows_put(nt_checkpoint *c, const nt_checkpoint_rows *r, const char *name)
{
    const int64_t rec[2] = {(int64_t)r->saved, (int64_t)r->hash};
    nt_checkpoint_put_i64(c, name, 2, rec);
}

int nt_checkpoint_rows_load(nt_checkpoint_rows *r, const nt_checkpoint *c, const char *name, char **text,
                            size_t *out_len, nt_error *err)
{
    int64_t rec[2];
    *text = NULL;
    *out_len = 0;
    int rc = nt_checkpoint_get_i64(c, name, 2, rec, err);
    if (rc) return rc;
    const char *ck = nt_checkpoint_path(c);
    const int64_t len = rec[0];
    FILE *f = fopen(r->path, "rb");
    if (!f && len > 0) return nt_fail(err, NT_EINPUT, "%s: cannot open: %s (the ledger rows of %s)", r->path,
                                      strerror(errno), ck);
    char *buf = malloc((size_t)(len > 0 ? len : 0) + 1);
    size_t got = f && len > 0 && buf ? fread(buf, 1, (size_t)len, f) : 0;
    if (f) fclose(f);
    if (!buf) return nt_fail(err, NT_EFAIL, "out of memory for %lld bytes of %s", (long long)len, r->path);
    if (len < 0 || (int64_t)got != len) {
        free(buf);
        return nt_fail(err, NT_EINPUT, "%s: %zu bytes, %s needs its first %lld: truncated", r->path, got, ck,
                       (long long)len);
    }
    if (nt_hash64(buf, (size_t)len, NT_HASH_INIT) != (uint64_t)rec[1]) {
        free(buf);
        return nt_fail(err, NT_EINPUT, "%s: damaged: its first %lld bytes are not the ledger rows %s recorded (their "
                       "hash differs)", r->path, (long long)len, ck);
    }
    if (len > 0 && truncate(r->path, (off_t)len) != 0) {
        free(buf);
        return nt_fail(err, NT_EFAIL, "%s: cannot write: %s", r->path, strerror(errno));
    }
    buf[len] = '\0';
    r->saved = (size_t)len;
    r->hash = (uint64_t)rec[1];
    *text = buf;
    *out_len = (size_t)len;
    return NT_OK;
}
