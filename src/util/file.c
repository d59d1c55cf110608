/* file.c: files written whole or not at all.  The content goes to a temporary file beside
 * the target (created exclusively: never through a symlink or over another file), which
 * replaces it (rename, atomic on one file system) only when every write, the flush to the
 * disk (fsync) and the close succeeded; otherwise the temporary file is removed and the
 * target is as it was (sync 0 skips the fsync: whole against a killed process, not
 * against a power cut; for checkpoints written every step).  Only a regular file or a new path is replaced: a FIFO, a device
 * node, a symlink or a folder at the path is refused (NT_EINPUT), so no output lands on
 * /dev/null or through a link.  Every writer of the project (NPY, checkpoints, the
 * command's text outputs) uses it. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "noether.h"

static const char *kind(mode_t m)
{
    return S_ISDIR(m) ? "a folder" : S_ISLNK(m) ? "a symlink" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

int nt_file_write(const char *path, int (*write)(FILE *f, const void *ctx), const void *ctx, nt_error *err)
{
    return nt_file_write_sync(path, write, ctx, 1, err);
}

int nt_file_write_sync(const char *path, int (*write)(FILE *f, const void *ctx), const void *ctx, int sync,
                       nt_error *err)
{
    char tmp[NT_PATH_MAX + 32];
    struct stat sb;
    if (strlen(path) >= NT_PATH_MAX) return nt_fail(err, NT_EINPUT, "%.100s...: path too long", path);
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return nt_fail(err, NT_EINPUT, "%s: is %s, not a regular file: noether writes only regular files or new paths",
                       path, kind(sb.st_mode));
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)   /* a leftover of a killed process of this pid */
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) {
        int saved = errno;
        if (fd >= 0) { close(fd); remove(tmp); }
        return nt_fail(err, NT_EFAIL, "%s: cannot write: %s", path, strerror(saved));
    }
    int ok = write(f, ctx), saved = errno;
    if (ok && fflush(f) != 0) ok = 0, saved = errno;
    if (ok && sync && fsync(fileno(f)) != 0) ok = 0, saved = errno;
    if (fclose(f) != 0 && ok) ok = 0, saved = errno;
    if (ok && rename(tmp, path) != 0) ok = 0, saved = errno;
    if (!ok) {
        remove(tmp);
        return nt_fail(err, NT_EFAIL, "%s: cannot write: %s", path, strerror(saved ? saved : EIO));
    }
    return NT_OK;
}
