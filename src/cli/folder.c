/* folder.c: the folder of a train, run or demo, claimed for the whole command (cli_claim_dir:
 * the lock, the marker of whose run it is, the refusals) and released (cli_checkpoint_done);
 * SIGINT and SIGTERM from then on only ask the command to stop (cli_stop). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"

volatile sig_atomic_t cli_stop;

static void on_stop(int sig) { cli_stop = sig; }

/* dies with exit 2 and one line: "noether CMD: <message>" */
static void __attribute__((noreturn, format(printf, 2, 3))) refuse(const char *cmd, const char *fmt, ...)
{
    nt_error err;
    char msg[sizeof err.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nt_fail(&err, NT_EINPUT, "%s", msg);
    cli_die(cmd, &err);
}

/* What DIR holds besides noether's own bookkeeping (.lock, .noether): 0 nothing, or an
 * earlier noether run of the spec with this hash (DIR/.noether says "spec HASH"); 1 files of
 * something else (the first into example); 2 an earlier noether run of another spec. */
static int dir_holds_other(const char *dir, uint64_t spec_hash, char *example, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d) return 0;   /* a new folder (or one mkdir will report on) */
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".lock") && strcmp(e->d_name, ".noether"))
            if (!files++) snprintf(example, cap, "%s", e->d_name);
    closedir(d);
    if (!files) return 0;
    char mark[NT_PATH_MAX + 64], text[64] = "", want[64];
    snprintf(mark, sizeof mark, "%s/.noether", dir);
    FILE *f = fopen(mark, "r");
    if (!f) return 1;
    if (!fgets(text, sizeof text, f)) text[0] = 0;
    fclose(f);
    snprintf(want, sizeof want, "spec %016llx\n", (unsigned long long)spec_hash);
    return strncmp(text, "spec ", 5) ? 1 : strcmp(text, want) ? 2 : 0;
}

void cli_claim_dir(const char *cmd, const char *dir, uint64_t spec_hash, int resume, int force)
{
    static int lock_fd = -1;   /* held until the process ends */
    char lock[NT_PATH_MAX + 64], ckpt[NT_PATH_MAX + 64], rows[NT_PATH_MAX + 64];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.bin", dir);
    snprintf(rows, sizeof rows, "%s/checkpoint.rows", dir);
    snprintf(lock, sizeof lock, "%s/.lock", dir);
    if (resume && access(ckpt, F_OK) != 0) refuse(cmd, "%s: cannot open: %s", ckpt, strerror(errno));
    if (!resume) cli_mkdir(cmd, dir);
    if (!cli_writer()) goto signals;   /* rank 0 holds the folder for every rank */
    const int had_lock = access(lock, F_OK) == 0;
    lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (lock_fd < 0) refuse(cmd, "%s: cannot create the lock file: %s", lock, strerror(errno));
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {   /* no locks there (ENOLCK): go on */
        char pid[32] = {0};
        if (pread(lock_fd, pid, sizeof pid - 1, 0) < 0) pid[0] = 0;
        refuse(cmd, "%s: folder in use by pid %ld (another noether writes there); wait for it or choose another -o",
               dir, atol(pid));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(lock_fd, 0) != 0 || pwrite(lock_fd, pid, (size_t)n, 0) != n) { /* the lock holds without it */ }
    /* after the lock (a folder in use says so first); a refused folder keeps no lock file of ours */
    char other[256] = "";
    int holds = resume || force ? 0 : dir_holds_other(dir, spec_hash, other, sizeof other);
    if (holds && !had_lock) unlink(lock);
    if (holds == 1)
        refuse(cmd, "%s: the folder is not empty ('%s', ...) and is not an earlier noether run: choose another -o, "
               "or write into it anyway with --force", dir, other);
    if (holds == 2)
        refuse(cmd, "%s: the folder holds an earlier noether run of another spec: choose another -o, or replace "
               "its files with --force", dir);
    if (!resume && access(ckpt, F_OK) == 0) {
        if (!force)
            refuse(cmd, "%s: the folder holds the checkpoint of an unfinished run: continue it with --resume, or "
                   "start afresh with --force (which deletes it)", ckpt);
        remove(ckpt);
        remove(rows);
    }
    if (!resume) {   /* marks DIR as this spec's run, for the next command into it */
        char mark[NT_PATH_MAX + 64], text[64];
        snprintf(mark, sizeof mark, "%s/.noether", dir);
        snprintf(text, sizeof text, "spec %016llx\n", (unsigned long long)spec_hash);
        nt_error werr;
        if (nt_text_write(mark, text, &werr)) cli_die(cmd, &werr);
    }
signals:;
    nt_error err = {0};
    if (nt_parallel_agree(NT_OK, &err)) cli_die(cmd, &err);   /* rank 0 refused the folder: every rank stops */
    struct sigaction sa = { .sa_handler = on_stop, .sa_flags = SA_RESETHAND };
    sigemptyset(&sa.sa_mask);
    cli_stop = 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_checkpoint_done(const char *dir)
{
    if (!cli_writer()) return;
    char p[NT_PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/checkpoint.bin", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/checkpoint.rows", dir);
    remove(p);
}
