/* file.c: files written whole or not at all.  The content goes to a temporary file beside
 * the target, which replaces it (rename, atomic on one file system) only when every write
 * and the close succeeded; otherwise the temporary file is removed and the target is as it
 * was.  Every writer of the project (NPY, checkpoints, the command's text outputs) uses it. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "noether.h"

int nt_file_write(const char *path, int (*write)(FILE *f, const void *ctx), const void *ctx, nt_error *err)
{
    char tmp[NT_PATH_MAX + 32];
    if (strlen(path) >= NT_PATH_MAX) return nt_fail(err, NT_EINPUT, "%.100s...: path too long", path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return nt_fail(err, NT_EFAIL, "%s: cannot write: %s", path, strerror(errno));
    int ok = write(f, ctx), saved = errno;
    if (fclose(f) != 0 && ok) ok = 0, saved = errno;
    if (ok && rename(tmp, path) != 0) ok = 0, saved = errno;
    if (!ok) {
        remove(tmp);
        return nt_fail(err, NT_EFAIL, "%s: cannot write: %s", path, strerror(saved));
    }
    return NT_OK;
}
