/* test_durable.c: no run is lost and no output is left half written (README, Robustness and
 * Interruption and resume).  The built binary as a process throughout:
 *   - train keeps its checkpoint until params_final.npy, ledger.csv and summary.json are
 *     written, so a failure there is resumable;
 *   - run stopped by SIGTERM in its final analysis or while gnuplot draws says how to resume,
 *     leaves no orphan gnuplot and no partial figure, and resumes into the uninterrupted
 *     run's outputs;
 *   - --out writes only regular files or new paths (a FIFO, a device node, a symlink are
 *     refused, exit 2, and left as they were);
 *   - a file size limit (a full disk, as the process sees it) leaves no truncated file;
 *   - a second run into a folder in use, or a fresh run over another run's checkpoint, is
 *     refused (exit 2) unless --force;
 *   - (checkpoint integrity: test_checkpoint.c, the same suite). */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <cJSON.h>
#include <criterion/criterion.h>
#include "helpers.h"

/* The spec of resume::run_sigterm_bit_identical, shorter: its final analysis (dense
 * spectrum of d = 843, density, sectors) and figures take long enough to be interrupted. */
static void run_spec(const char *path)
{
    write_text(path,
               "{\n  \"model\": {\"input\": 6, \"layers\": [{\"dense\": 24}, {\"act\": \"tanh\"}, {\"dense\": 24},"
               " {\"act\": \"relu\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"},\n"
               "  \"data\": {\"source\": \"teacher\", \"n\": 200, \"seed\": 3, \"hidden\": [8], \"activation\": \"tanh\","
               " \"test_fraction\": 0.25},\n"
               "  \"init\": {\"seed\": 1, \"scheme\": \"he\", \"bias_std\": 0.1},\n  \"weight_decay\": 0.001,\n"
               "  \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"steps\": 2000, \"batch\": 16, \"seed\": 2,"
               " \"log_every\": 100},\n"
               "  \"analysis\": {\"every\": 1000, \"spectrum\": {\"top\": 3, \"bottom\": 3}}\n}\n");
}

/* the last line of a text file (static storage) */
static const char *last_line(const char *path)
{
    static char line[4096];
    char *s = read_file(path, NULL);
    cr_assert_not_null(s, "cannot read %s", path);
    size_t n = strlen(s);
    while (n && s[n - 1] == '\n') s[--n] = 0;
    char *p = strrchr(s, '\n');
    snprintf(line, sizeof line, "%s", p ? p + 1 : s);
    free(s);
    return line;
}

/* 1 when the file is whole for its kind: PNG ends in IEND, SVG in </svg>, JSON parses,
 * NPY reads, text ends in a newline (HTML in </html>) */
static int file_whole(const char *path)
{
    size_t n;
    char *s = read_file(path, &n);
    if (!s) return 0;
    const char *ext = strrchr(path, '.');
    int ok = n > 0;
    static const unsigned char iend[8] = {'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    if (ok && ext && !strcmp(ext, ".png")) ok = n > 8 && !memcmp(s + n - 8, iend, 8);
    else if (ok && ext && !strcmp(ext, ".svg")) ok = strstr(s + (n > 64 ? n - 64 : 0), "</svg>") != NULL;
    else if (ok && ext && !strcmp(ext, ".html")) ok = strstr(s + (n > 64 ? n - 64 : 0), "</html>") != NULL;
    else if (ok && ext && !strcmp(ext, ".json")) {
        cJSON *doc = cJSON_Parse(s);
        ok = doc != NULL;
        cJSON_Delete(doc);
    } else if (ok && ext && !strcmp(ext, ".npy")) {
        nt_array a = {0};
        nt_error err = {0};
        ok = nt_npy_read(path, &a, &err) == NT_OK;
        nt_array_free(&a);
    } else if (ok && ext && (!strcmp(ext, ".bin") || !strcmp(ext, ".rows") || !strcmp(ext, ".lock"))) {
        ok = 1;   /* checked by the resume */
    } else if (ok) {
        ok = s[n - 1] == '\n';
    } else if (ext && (!strcmp(ext, ".log") || !strcmp(ext, ".lock"))) {
        ok = 1;   /* gnuplot's log, the lock: may be empty */
    }
    free(s);
    return ok;
}

/* asserts every file of dir (and dir/plots) is whole and no temporary file is left */
static void all_whole(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot list %s", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.')) continue;
        char p[NT_PATH_MAX];
        path_join(p, dir, e->d_name);
        struct stat sb;
        cr_assert_eq(lstat(p, &sb), 0);
        if (S_ISDIR(sb.st_mode) && depth == 0) { all_whole(p, 1); continue; }
        cr_assert(!strstr(e->d_name, ".tmp.") && !strstr(e->d_name, ".part"), "a temporary file is left: %s", p);
        cr_assert(file_whole(p), "%s is not whole (%lld bytes)", p, (long long)sb.st_size);
    }
    closedir(d);
}

/* ------------------------------------------------------------------ train's last window */

/* The finals are written before the checkpoint goes: with params_final.npy unwritable (a
 * folder in its place) the run fails, the checkpoint stays, and --resume once the obstacle
 * is gone ends with the uninterrupted run's outputs. */
Test(durable, train_keeps_checkpoint_until_finals_are_written, .timeout = 120)
{
    char dir[256], spec[NT_PATH_MAX], a[NT_PATH_MAX], b[NT_PATH_MAX], p[NT_PATH_MAX], q[NT_PATH_MAX];
    char args[4 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    path_join(a, dir, "a");
    path_join(b, dir, "b");
    tiny_spec(spec, 3000, 500, 100, "");
    snprintf(args, sizeof args, "train %s -o %s --quiet", spec, a);
    expect_rc(args, 0, NULL);
    cr_assert_eq(mkdir(b, 0777), 0);
    path_join(p, b, "params_final.npy");
    cr_assert_eq(mkdir(p, 0777), 0);
    /* --force: b holds something that is not a noether run (the obstacle) */
    snprintf(args, sizeof args, "train %s -o %s --quiet --force", spec, b);
    char *err;
    int rc = run_noether(args, NULL, &err);
    cr_assert_neq(rc, 0, "writing params_final.npy over a folder succeeded");
    cr_assert_not_null(strstr(err, "params_final.npy"), "'%s' does not name params_final.npy", err);
    free(err);
    path_join(q, b, "checkpoint.bin");
    cr_assert_eq(access(q, F_OK), 0, "the checkpoint is gone though the finals were not written");
    cr_assert_eq(rmdir(p), 0);
    snprintf(args, sizeof args, "train %s -o %s --resume --quiet", spec, b);
    expect_rc(args, 0, NULL);
    path_join(p, a, "params_final.npy");
    path_join(q, b, "params_final.npy");
    cr_assert(same_file(p, q), "params_final.npy differs from the uninterrupted run's");
    path_join(p, a, "ledger.csv");
    path_join(q, b, "ledger.csv");
    cr_assert(same_ledger(p, q), "ledger.csv differs from the uninterrupted run's");
    path_join(q, b, "checkpoint.bin");
    cr_assert_neq(access(q, F_OK), 0, "a completed run left its checkpoint");
}

/* ------------------------------------------------------------------ run's final phase */

/* spawns `run spec -o dir`, waits for `marker` (a file under dir, or with text non-NULL a
 * string in stderr), sends SIGTERM; asserts exit 143 and a resume line naming the checkpoint */
static void term_run_at(const char *spec, const char *dir, const char *marker, const char *text)
{
    char errp[NT_PATH_MAX], ckpt[NT_PATH_MAX], file[NT_PATH_MAX];
    snprintf(errp, sizeof errp, "%s.stderr", dir);
    path_join(ckpt, dir, "checkpoint.bin");
    const char *argv[] = {"run", spec, "-o", dir, NULL};
    int pid = spawn_noether(argv, NULL, errp);
    struct timespec nap = {0, 500000};
    for (int i = 0;; i++) {
        cr_assert_lt(i, 240000, "no %s after 120 s", marker);
        if (text) {
            char *s = read_file(errp, NULL);
            int seen = s && strstr(s, text);
            free(s);
            if (seen) break;
        } else {
            path_join(file, dir, marker);
            if (access(file, F_OK) == 0) break;
        }
        nanosleep(&nap, NULL);
    }
    kill(pid, SIGTERM);
    int rc = wait_noether(pid);
    const char *line = last_line(errp);
    cr_assert_eq(rc, 143, "exit %d, want 143 (stopped by SIGTERM at %s); last line: %s", rc, marker, line);
    cr_assert_not_null(strstr(line, "--resume"), "no resume line: '%s'", line);
    cr_assert_not_null(strstr(line, ckpt), "the resume line does not name %s: '%s'", ckpt, line);
    cr_assert_eq(access(ckpt, F_OK), 0, "%s is gone: the final phase cannot be resumed", ckpt);
}

static void resume_matches(const char *spec, const char *a, const char *b)
{
    char args[3 * NT_PATH_MAX], pa[NT_PATH_MAX], pb[NT_PATH_MAX];
    snprintf(args, sizeof args, "run %s -o %s --resume --quiet", spec, b);
    expect_rc(args, 0, NULL);
    static const char *const files[] = {"params_final.npy", "analysis.csv", "sectors.csv", "density.csv"};
    for (int i = 0; i < 4; i++) {
        path_join(pa, a, files[i]);
        path_join(pb, b, files[i]);
        cr_assert(same_file(pa, pb), "%s differs from the uninterrupted run's", files[i]);
    }
    path_join(pa, a, "ledger.csv");
    path_join(pb, b, "ledger.csv");
    cr_assert(same_ledger(pa, pb), "ledger.csv differs from the uninterrupted run's");
    path_join(pb, b, "report.html");
    cr_assert_eq(access(pb, F_OK), 0, "the resumed run wrote no report");
    all_whole(b, 0);
    path_join(pb, b, "checkpoint.bin");
    cr_assert_neq(access(pb, F_OK), 0, "a completed run left its checkpoint");
}

Test(durable, run_sigterm_in_final_analysis_resumes, .timeout = 600)
{
    char dir[256], spec[NT_PATH_MAX], a[NT_PATH_MAX], b[NT_PATH_MAX], p[NT_PATH_MAX], args[3 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    path_join(a, dir, "a");
    path_join(b, dir, "b");
    run_spec(spec);
    snprintf(args, sizeof args, "run %s -o %s --quiet", spec, a);
    expect_rc(args, 0, NULL);
    term_run_at(spec, b, "the final analysis", "analysis at step 2000:");
    path_join(p, b, "report.html");
    cr_assert_neq(access(p, F_OK), 0, "an interrupted run wrote its report");
    resume_matches(spec, a, b);
    /* the training was done: the resume went straight to the final analysis */
    path_join(p, b, "summary.json");
    char *text = read_file(p, NULL);
    cJSON *doc = cJSON_Parse(text);
    const cJSON *from = cJSON_GetObjectItem(doc, "resumed_from"), *steps = cJSON_GetObjectItem(doc, "steps");
    cr_assert(cJSON_IsNumber(from) && cJSON_IsNumber(steps), "summary.json has no resumed_from or steps");
    cr_assert_eq(from->valueint, steps->valueint, "resumed from step %d, not from the end of training (%d)",
                 from->valueint, steps->valueint);
    cJSON_Delete(doc);
    free(text);
}

/* the plots folder's names and sizes, as one string */
static char *listing(const char *dir)
{
    char *s = calloc(1, 1 << 16), p[NT_PATH_MAX];
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        struct stat sb;
        path_join(p, dir, e->d_name);
        if (stat(p, &sb) == 0 && strlen(s) < (1 << 16) - 512)
            snprintf(s + strlen(s), 512, "%s:%lld\n", e->d_name, (long long)sb.st_size);
    }
    if (d) closedir(d);
    return s;
}

/* SIGTERM while gnuplot draws: exit 143 with the resume line, gnuplot ended with the run
 * (nothing in plots/ changes afterwards), every figure there whole; the resumed run's report
 * complete */
Test(durable, run_sigterm_during_plots_leaves_no_partial_figure, .timeout = 600)
{
    char dir[256], spec[NT_PATH_MAX], a[NT_PATH_MAX], b[NT_PATH_MAX], p[NT_PATH_MAX], args[3 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    path_join(a, dir, "a");
    path_join(b, dir, "b");
    run_spec(spec);
    snprintf(args, sizeof args, "run %s -o %s --quiet", spec, a);
    expect_rc(args, 0, NULL);
    term_run_at(spec, b, "plots/plots.gp", NULL);
    path_join(p, b, "plots");
    struct timespec nap = {0, 300000000};
    nanosleep(&nap, NULL);
    char *before = listing(p);
    nanosleep(&nap, NULL);
    nanosleep(&nap, NULL);
    char *after = listing(p);
    cr_assert_str_eq(before, after, "plots/ still changes after the run exited (an orphaned gnuplot)");
    free(before);
    free(after);
    all_whole(b, 0);
    path_join(p, b, "report.html");
    cr_assert_neq(access(p, F_OK), 0, "an interrupted run wrote its report");
    resume_matches(spec, a, b);
}

/* ------------------------------------------------------------------ where outputs go */

Test(durable, out_writes_only_regular_files, .timeout = 60)
{
    char dir[256], spec[NT_PATH_MAX], fifo[NT_PATH_MAX], link[NT_PATH_MAX], target[NT_PATH_MAX];
    char dev[NT_PATH_MAX], reg[NT_PATH_MAX], fresh[NT_PATH_MAX], args[3 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    path_join(fifo, dir, "fifo.npy");
    path_join(link, dir, "link.npy");
    path_join(target, dir, "target.txt");
    path_join(dev, dir, "null.npy");
    path_join(reg, dir, "regular.npy");
    path_join(fresh, dir, "fresh.npy");
    tiny_spec(spec, 10, 0, 10, "");
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    write_text(target, "keep\n");
    cr_assert_eq(symlink(target, link), 0);
    int have_dev = mknod(dev, S_IFCHR | 0666, makedev(1, 3)) == 0;   /* /dev/null's numbers; root only */
    write_text(reg, "old\n");
    const char *bad[3] = {fifo, link, dev};
    const mode_t kind[3] = {S_IFIFO, S_IFLNK, S_IFCHR};
    for (int i = 0; i < 2 + have_dev; i++) {
        snprintf(args, sizeof args, "grad %s --out %s", spec, bad[i]);
        expect_refused(args, bad[i], "regular file");
        struct stat sb;
        cr_assert_eq(lstat(bad[i], &sb), 0, "%s is gone", bad[i]);
        cr_assert_eq(sb.st_mode & S_IFMT, kind[i], "%s was replaced", bad[i]);
    }
    char *t = read_file(target, NULL);
    cr_assert_str_eq(t, "keep\n", "the symlink's target was written");
    free(t);
    if (!have_dev) cr_log_warn("not root: the device-node case was skipped");
    /* controls: a regular file is replaced, a new path created */
    snprintf(args, sizeof args, "grad %s --out %s", spec, reg);
    expect_rc(args, 0, NULL);
    snprintf(args, sizeof args, "grad %s --out %s", spec, fresh);
    expect_rc(args, 0, NULL);
    cr_assert(file_whole(reg) && file_whole(fresh), "the controls were not written");
}

/* Runs `noether args` (through sh) with files limited to `bytes` (RLIMIT_FSIZE, SIGXFSZ
 * ignored: a write past it fails with EFBIG, as on a full disk); returns the exit code. */
static int run_limited(const char *args, long bytes)
{
    char cmd[4 * NT_PATH_MAX];
    snprintf(cmd, sizeof cmd, "exec %s %s >/dev/null 2>&1 </dev/null", NOETHER_BIN, args);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        struct rlimit rl = {(rlim_t)bytes, (rlim_t)bytes};
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &rl);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return wait_noether(pid);
}

/* largest regular file directly in dir whose name does (want_plot) or does not lie under plots/ */
static long largest(const char *dir)
{
    long big = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[NT_PATH_MAX];
    struct stat sb;
    while (d && (e = readdir(d))) {
        path_join(p, dir, e->d_name);
        if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > big) big = (long)sb.st_size;
    }
    if (d) closedir(d);
    return big;
}

/* With files limited to a size every CSV, JSON and NPY of the run fits in but some figure
 * does not, the run fails and leaves no figure, CSV or JSON truncated or empty. */
Test(durable, file_size_limit_leaves_no_partial_file, .timeout = 300)
{
    char dir[256], spec[NT_PATH_MAX], a[NT_PATH_MAX], b[NT_PATH_MAX], p[NT_PATH_MAX], args[3 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    path_join(a, dir, "a");
    path_join(b, dir, "b");
    tiny_spec(spec, 400, 0, 20, " \"analysis\": {\"every\": 200, \"spectrum\": {\"top\": 3, \"bottom\": 3}},");
    snprintf(args, sizeof args, "run %s -o %s --quiet", spec, a);
    expect_rc(args, 0, NULL);
    path_join(p, a, "plots");
    const long data = largest(a), figures = largest(p), limit = data + 4096;
    cr_assert_gt(figures, limit, "no figure (largest %ld bytes) is above the limit %ld: the test would be vacuous",
                 figures, limit);
    snprintf(args, sizeof args, "run %s -o %s --quiet", spec, b);
    int rc = run_limited(args, limit);
    cr_log_info("file size limit %ld bytes (data files up to %ld, figures up to %ld): exit %d", limit, data, figures, rc);
    cr_assert_neq(rc, 0, "the run succeeded though its figures could not be written");
    all_whole(b, 0);
}

/* ------------------------------------------------------------------ one run per folder */

Test(durable, second_run_into_a_folder_in_use_is_refused, .timeout = 120)
{
    char dir[256], spec[NT_PATH_MAX], spec2[NT_PATH_MAX], out[NT_PATH_MAX], p[NT_PATH_MAX], errp[NT_PATH_MAX];
    char args[3 * NT_PATH_MAX], want[NT_PATH_MAX + 64];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    path_join(spec2, dir, "spec2.json");
    path_join(out, dir, "out");
    path_join(errp, dir, "first.stderr");
    tiny_spec(spec, 100000000, 0, 1000, "");
    tiny_spec(spec2, 100, 0, 10, "");
    const char *argv[] = {"train", spec, "-o", out, "--quiet", NULL};
    int pid = spawn_noether(argv, NULL, errp);
    path_join(p, out, "params_init.npy");
    struct timespec nap = {0, 1000000};
    for (int i = 0; access(p, F_OK) != 0; i++) {
        cr_assert_lt(i, 60000, "the first run wrote no params_init.npy");
        nanosleep(&nap, NULL);
    }
    snprintf(args, sizeof args, "train %s -o %s --quiet", spec2, out);
    snprintf(want, sizeof want, "in use by pid %d", pid);
    char *err;
    int rc = run_noether(args, NULL, &err);
    kill(pid, SIGTERM);
    int rc1 = wait_noether(pid);
    cr_assert_eq(rc, 2, "a second run into %s: exit %d, want 2: %s", out, rc, err);
    cr_assert_not_null(strstr(err, out), "'%s' does not name %s", err, out);
    cr_assert_not_null(strstr(err, want), "'%s' does not say '%s'", err, want);
    free(err);
    cr_assert_eq(rc1, 143, "the first run: exit %d, want 143", rc1);
    /* control: with the first run gone the folder is free */
    snprintf(args, sizeof args, "train %s -o %s --quiet --force", spec2, out);
    expect_rc(args, 0, NULL);
}

Test(durable, fresh_run_over_a_checkpoint_needs_force, .timeout = 120)
{
    char dir[256], spec[NT_PATH_MAX], out[NT_PATH_MAX], ckpt[NT_PATH_MAX], errp[NT_PATH_MAX];
    char args[3 * NT_PATH_MAX], *help;
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    path_join(out, dir, "out");
    path_join(ckpt, out, "checkpoint.bin");
    path_join(errp, dir, "first.stderr");
    tiny_spec(spec, 1000000, 500, 100, "");
    const char *argv[] = {"train", spec, "-o", out, "--quiet", NULL};
    cr_assert_eq(kill_at_file(argv, ckpt, SIGTERM, errp), 143);
    size_t n0, n1;
    char *before = read_file(ckpt, &n0);
    cr_assert_not_null(before);
    snprintf(args, sizeof args, "train %s -o %s --quiet", spec, out);
    expect_refused(args, ckpt, "--force");
    expect_refused(args, ckpt, "--resume");
    char *after = read_file(ckpt, &n1);
    cr_assert(after && n0 == n1 && !memcmp(before, after, n0), "a refused run changed %s", ckpt);
    free(before);
    free(after);
    static const char *const cmds[] = {"train", "run", "demo"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        int rc = run_noether(args, &help, NULL);
        cr_assert_eq(rc, 0);
        cr_assert_not_null(strstr(help, "--force"), "noether %s --help does not mention --force", cmds[i]);
        free(help);
    }
    /* --force starts afresh; the completed run leaves no checkpoint */
    tiny_spec(spec, 200, 50, 10, "");
    snprintf(args, sizeof args, "train %s -o %s --quiet --force", spec, out);
    expect_rc(args, 0, NULL);
    cr_assert_neq(access(ckpt, F_OK), 0, "%s left after a completed run", ckpt);
}
