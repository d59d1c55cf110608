/* test_checkpoint.c: the checkpoint's integrity (suite durable, with test_durable.c), the
 * built binary as a process:
 *   - single-byte corruptions of the checkpoint are refused or harmless (a seeded sample of
 *     256 bytes over checkpoint.bin and checkpoint.rows);
 *   - a changed transformation file (A.npy) is refused though the spec's text is the same;
 *   - checkpoint_every 1 does not rewrite the ledger rows (checkpoint.bin keeps its size). */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <criterion/criterion.h>
#include "helpers.h"

/* copies every checkpoint* file of from into a new folder to; with flip >= 0, byte `flip`
 * of the concatenation is xor-ed with x; returns (into hit) the name of the file hit */
static void copy_checkpoint(const char *from, const char *to, long flip, int x, char *hit)
{
    cr_assert_eq(mkdir(to, 0777), 0, "cannot create %s", to);
    DIR *d = opendir(from);
    struct dirent *e;
    char names[8][256];
    int n = 0;
    while ((e = readdir(d)) && n < 8)
        if (!strncmp(e->d_name, "checkpoint", 10)) snprintf(names[n++], 256, "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
    long at = 0;
    for (int i = 0; i < n; i++) {
        char p[NT_PATH_MAX];
        size_t len;
        path_join(p, from, names[i]);
        char *s = read_file(p, &len);
        if (flip >= at && flip < at + (long)len) {
            s[flip - at] ^= (char)x;
            if (hit) snprintf(hit, 256, "%.200s", names[i]);
        }
        at += (long)len;
        path_join(p, to, names[i]);
        FILE *f = fopen(p, "wb");
        cr_assert_not_null(f);
        fwrite(s, 1, len, f);
        fclose(f);
        free(s);
    }
}

static long checkpoint_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    long total = 0;
    char p[NT_PATH_MAX];
    struct stat sb;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "checkpoint", 10)) {
            path_join(p, dir, e->d_name);
            if (stat(p, &sb) == 0) total += (long)sb.st_size;
        }
    closedir(d);
    return total;
}

/* A seeded sample of 256 single-byte corruptions over the checkpoint's files: each resume
 * is refused (exit 2, one line naming the damaged file) or ends exactly where the intact
 * checkpoint's resume ends. */
Test(durable, checkpoint_byte_flips_are_refused_or_harmless, .timeout = 900)
{
    char dir[256], spec[NT_PATH_MAX], src[NT_PATH_MAX], ref[NT_PATH_MAX], to[NT_PATH_MAX], errp[NT_PATH_MAX];
    char args[3 * NT_PATH_MAX], pa[NT_PATH_MAX], pb[NT_PATH_MAX], hit[256], ck[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    path_join(src, dir, "src");
    path_join(ref, dir, "ref");
    path_join(errp, dir, "src.stderr");
    path_join(ck, src, "checkpoint.bin");
    tiny_spec(spec, 20000, 500, 100, "");
    const char *argv[] = {"train", spec, "-o", src, "--quiet", NULL};
    cr_assert_eq(kill_at_file(argv, ck, SIGTERM, errp), 143, "the kill did not land mid-run");
    copy_checkpoint(src, ref, -1, 0, NULL);
    snprintf(args, sizeof args, "train %s -o %s --resume --quiet", spec, ref);
    expect_rc(args, 0, NULL);
    const long total = checkpoint_bytes(src);
    const int samples = total < 256 ? (int)total : 256;
    int refused = 0, same = 0;
    for (int k = 0; k < samples; k++) {
        long at = samples == total ? k : (long)(nt_rand_u64(14, 1, (uint64_t)k) % (uint64_t)total);
        int x = 1 + (int)(nt_rand_u64(14, 2, (uint64_t)k) % 255);
        char name[32];
        snprintf(name, sizeof name, "flip%d", k);
        path_join(to, dir, name);
        copy_checkpoint(src, to, at, x, hit);
        snprintf(args, sizeof args, "train %s -o %s --resume --quiet", spec, to);
        char *err;
        int rc = run_noether(args, NULL, &err);
        if (rc == 2) {
            cr_assert(strchr(err, '\n') == err + strlen(err) - 1, "byte %ld of %s: stderr not one line: %s", at, hit, err);
            cr_assert_not_null(strstr(err, to), "byte %ld of %s: '%s' does not name the folder", at, hit, err);
            refused++;
        } else {
            cr_assert_eq(rc, 0, "byte %ld of %s (xor %d): exit %d: %s", at, hit, x, rc, err);
            path_join(pa, ref, "params_final.npy");
            path_join(pb, to, "params_final.npy");
            cr_assert(same_file(pa, pb), "byte %ld of %s (xor %d) resumed (exit 0) into another params_final.npy", at,
                      hit, x);
            path_join(pa, ref, "ledger.csv");
            path_join(pb, to, "ledger.csv");
            cr_assert(same_ledger(pa, pb), "byte %ld of %s (xor %d) resumed (exit 0) into another ledger.csv", at, hit, x);
            same++;
        }
        free(err);
    }
    cr_log_info("checkpoint of %ld bytes: %d corruptions, %d refused, %d resumed identically", total, samples, refused,
                same);
}

/* A transformation file (A.npy) changed under an interrupted run: --resume is refused
 * naming it, though the spec's text is the same; with the file restored it resumes. */
Test(durable, resume_refuses_a_changed_transformation_file, .timeout = 120)
{
    char dir[256], spec[NT_PATH_MAX], out[NT_PATH_MAX], A[NT_PATH_MAX], ck[NT_PATH_MAX], errp[NT_PATH_MAX];
    char args[3 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    path_join(out, dir, "out");
    path_join(A, dir, "A.npy");
    path_join(ck, out, "checkpoint.bin");
    path_join(errp, dir, "first.stderr");
    tiny_spec(spec, 20000, 500, 100,
              " \"transformations\": [{\"name\": \"scale\", \"kind\": \"continuous\", \"generator\": \"A.npy\"}],");
    nt_spec s;
    nt_error err = {0};
    cr_assert_eq(nt_spec_load(spec, &s, &err), NT_OK, "%s", err.msg);
    const int64_t d = s.model.d, shape[2] = {d, d};
    nt_spec_free(&s);
    double *I = calloc((size_t)(d * d), sizeof(double));
    for (int64_t i = 0; i < d; i++) I[i * d + i] = 1;
    cr_assert_eq(nt_npy_write(A, I, 2, shape, &err), NT_OK, "%s", err.msg);
    const char *argv[] = {"train", spec, "-o", out, "--quiet", NULL};
    cr_assert_eq(kill_at_file(argv, ck, SIGTERM, errp), 143, "the kill did not land mid-run");
    for (int64_t i = 0; i < d; i++) I[i * d + i] = 2;   /* still symmetric: the same quantity names */
    cr_assert_eq(nt_npy_write(A, I, 2, shape, &err), NT_OK, "%s", err.msg);
    snprintf(args, sizeof args, "train %s -o %s --resume --quiet", spec, out);
    expect_refused(args, "A.npy", ck);
    for (int64_t i = 0; i < d; i++) I[i * d + i] = 1;   /* control: restored, it resumes */
    cr_assert_eq(nt_npy_write(A, I, 2, shape, &err), NT_OK, "%s", err.msg);
    expect_rc(args, 0, NULL);
    free(I);
}

/* size of dir/checkpoint.bin and its step, read from one consistent copy */
static long checkpoint_at(const char *dir, int64_t *step)
{
    char p[NT_PATH_MAX], scratch[NT_PATH_MAX];
    size_t n;
    path_join(p, dir, "checkpoint.bin");
    snprintf(scratch, sizeof scratch, "%s.copy", dir);
    char *s = read_file(p, &n);
    if (!s) return -1;
    FILE *f = fopen(scratch, "wb");
    fwrite(s, 1, n, f);
    fclose(f);
    free(s);
    nt_checkpoint *c;
    nt_error err = {0};
    if (nt_checkpoint_read(scratch, &c, &err)) return -1;
    int rc = nt_checkpoint_get_i64(c, "train.step", 1, step, &err);
    nt_checkpoint_free(c);
    return rc ? -1 : (long)n;
}

/* checkpoint_every 1 with a row logged every step: checkpoint.bin keeps one size while
 * the rows grow (they are appended elsewhere, not rewritten into every checkpoint) */
Test(durable, checkpoint_every_step_does_not_rewrite_the_rows, .timeout = 300)
{
    char dir[256], spec[NT_PATH_MAX], out[NT_PATH_MAX], errp[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    path_join(out, dir, "out");
    path_join(errp, dir, "run.stderr");
    tiny_spec(spec, 100000000, 1, 1, "");
    const char *argv[] = {"train", spec, "-o", out, "--quiet", NULL};
    int pid = spawn_noether(argv, NULL, errp);
    struct timespec nap = {0, 2000000}, t0, t1;
    int64_t s1 = 0, s2 = 0;
    long b1 = -1, b2 = -1;
    for (int i = 0; (b1 = checkpoint_at(out, &s1)) < 0 || s1 < 50; i++) {
        cr_assert_lt(i, 30000, "no checkpoint past step 50 after 60 s");
        nanosleep(&nap, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; (b2 = checkpoint_at(out, &s2)) < 0 || s2 < 4 * s1 + 400; i++) {
        cr_assert_lt(i, 60000, "checkpoints stopped before step %lld", (long long)(4 * s1 + 400));
        nanosleep(&nap, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kill(pid, SIGTERM);
    cr_assert_eq(wait_noether(pid), 143);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cr_log_info("checkpoint every step: step %lld: %ld bytes, step %lld: %ld bytes; %.0f steps/s between", (long long)s1,
                b1, (long long)s2, b2, (double)(s2 - s1) / secs);
    cr_assert_eq(b2, b1, "checkpoint.bin grew from %ld bytes (step %lld) to %ld (step %lld): the rows are rewritten", b1,
                 (long long)s1, b2, (long long)s2);
    char rows[NT_PATH_MAX], ledger[NT_PATH_MAX];   /* control: the rows are kept, all of them */
    path_join(rows, out, "checkpoint.rows");
    path_join(ledger, out, "ledger.csv");
    cr_assert(same_file(rows, ledger), "checkpoint.rows is not the interrupted run's ledger.csv");
}
