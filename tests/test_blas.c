/* test_blas.c: the BLAS kernel (src/util/blas.c).  A CPU that OpenBLAS does not know is
 * played by a preloaded openblas_get_corename that reports "Prescott" (tests/blas_shim.c):
 * noether must execute itself once more with OPENBLAS_CORETYPE set to the CPU's kernel, only
 * once, never over the user's OPENBLAS_CORETYPE; and the kernel it selects must compute what
 * the generic one computes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include <cjson/cJSON.h>
#include "helpers.h"

Test(blas, better_kernel_by_instruction_set)
{
    cr_expect_str_eq(nt_blas_better_kernel("Prescott", 3), "SkylakeX");
    cr_expect_str_eq(nt_blas_better_kernel("Prescott", 2), "Haswell");
    cr_expect_str_eq(nt_blas_better_kernel("Sandybridge", 2), "Haswell");
    cr_expect_str_eq(nt_blas_better_kernel("Haswell", 3), "SkylakeX");
    cr_expect_str_eq(nt_blas_better_kernel("Zen", 3), "SkylakeX");
    cr_expect_null(nt_blas_better_kernel("Prescott", 1), "an SSE CPU has nothing better");
    cr_expect_null(nt_blas_better_kernel("Haswell", 2));
    cr_expect_null(nt_blas_better_kernel("SkylakeX", 3));
    cr_expect_null(nt_blas_better_kernel("Cooperlake", 3));
}

/* `noether info` under the shim, with env_prefix before it; the shim's log lines into
 * *calls, the info text into out */
static int info_under_shim(const char *env_prefix, char **out, int *calls, char *last_kernel)
{
    char dir[256], log[NT_PATH_MAX], o[NT_PATH_MAX], cmd[4 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(log, dir, "shim.log");
    path_join(o, dir, "out");
    snprintf(cmd, sizeof cmd,
             "env -u OPENBLAS_CORETYPE -u NOETHER_BLAS_FALLBACK %s NOETHER_SHIM_LOG=%s LD_PRELOAD=%s "
             "ASAN_OPTIONS=\"$ASAN_OPTIONS:verify_asan_link_order=0\" timeout 20 %s info > %s 2>&1",
             env_prefix, log, NOETHER_SHIM, NOETHER_BIN, o);
    int st = system(cmd);
    size_t n;
    *out = read_file(o, &n);
    char *l = read_file(log, &n), *p = l;
    *calls = 0;
    last_kernel[0] = 0;
    while (p && *p) {
        int pid;
        if (sscanf(p, "%d %63s", &pid, last_kernel) == 2) (*calls)++;
        p = strchr(p, '\n');
        if (p) p++;
    }
    free(l);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(blas, generic_fallback_reexecutes_once_with_the_cpu_kernel)
{
    int tier = nt_cpu_tier();
    if (tier < 2) cr_skip_test("this CPU has no AVX2: nothing better than the generic kernel");
    const char *want = tier == 3 ? "SkylakeX" : "Haswell";
    char *out, kernel[64];
    int calls;
    cr_assert_eq(info_under_shim("", &out, &calls, kernel), 0, "%s", out);
    /* the first process saw Prescott and re-executed; the second saw the kernel it set and
     * did not (without the guard it would execute itself until the timeout) */
    cr_expect_eq(calls, 2, "openblas_get_corename called by %d processes, want 2", calls);
    cr_expect_str_eq(kernel, want);
    char line[128];
    snprintf(line, sizeof line, "kernel %s (selected by noether for this CPU; OpenBLAS had chosen Prescott)", want);
    cr_expect(strstr(out, line) != NULL, "info says %s", out);
    /* the re-executed process inherits the idle threads' timeout, and knows it is noether's */
    cr_expect(strstr(out, "(idle ones spin 2^20 cycles, set by noether)") != NULL, "info says %s", out);
    free(out);
}

Test(blas, the_users_coretype_is_never_overridden)
{
    char *out, kernel[64];
    int calls;
    cr_assert_eq(info_under_shim("OPENBLAS_CORETYPE=Prescott", &out, &calls, kernel), 0, "%s", out);
    cr_expect_eq(calls, 1, "no re-execution over the user's choice (%d processes)", calls);
    cr_expect(strstr(out, "kernel Prescott (set by OPENBLAS_CORETYPE)") != NULL, "%s", out);
    free(out);
    /* a process that already re-executed does not again, whatever it sees */
    cr_assert_eq(info_under_shim("NOETHER_BLAS_FALLBACK=Prescott", &out, &calls, kernel), 0, "%s", out);
    cr_expect_eq(calls, 1);
    free(out);
}

/* the selected kernel computes what the generic one computes: the gradient and H v of the
 * wine MLP under OPENBLAS_CORETYPE=Prescott and under the CPU's kernel, to 1e-13 */
Test(blas, selected_kernel_agrees_with_the_generic_one)
{
    int tier = nt_cpu_tier();
    if (tier < 2) cr_skip_test("this CPU has no AVX2");
    char dir[256], v[NT_PATH_MAX], cmd[4 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(v, dir, "v.npy");
    double vec[547];
    fill_normal(vec, 547, 1.0, 7);
    int64_t shape[1] = {547};
    nt_error err;
    cr_assert_eq(nt_npy_write(v, vec, 1, shape, &err), 0, "%s", err.msg);
    const char *kernels[2] = {"Prescott", tier == 3 ? "SkylakeX" : "Haswell"};
    double *res[2][2];
    for (int k = 0; k < 2; k++)
        for (int what = 0; what < 2; what++) {
            char out[NT_PATH_MAX], name[32];
            snprintf(name, sizeof name, "%s%d.npy", kernels[k], what);
            path_join(out, dir, name);
            snprintf(cmd, sizeof cmd, "OPENBLAS_CORETYPE=%s OPENBLAS_NUM_THREADS=1 %s %s --out %s %s%s >/dev/null",
                     kernels[k], NOETHER_BIN, what ? "hvp" : "grad", out, what ? "--vectors " : "", what ? v : "");
            cr_assert_eq(system(cmd), 0, "%s", cmd);
            nt_array a;
            cr_assert_eq(nt_npy_read(out, &a, &err), 0, "%s", err.msg);
            cr_assert_eq(a.size, 547);
            res[k][what] = a.data;
        }
    for (int what = 0; what < 2; what++) {
        double diff = nt_rel_diff(547, res[0][what], res[1][what]);
        cr_expect_leq(diff, 1e-13, "%s: %s against Prescott differ by %.2e", what ? "H v" : "gradient", kernels[1], diff);
        cr_expect_gt(nt_norm2(547, res[0][what]), 0);
        free(res[0][what]);
        free(res[1][what]);
    }
}

/* OpenBLAS's own (exported, not in its headers): the environment read again, the pool ended */
void openblas_read_env(void);
int blas_thread_shutdown_(void);

/* CPU time (ms) this process spends over a 40 ms sleep that follows a two-threaded dgemm:
 * what OpenBLAS's idle worker burns spinning while the caller does no BLAS */
static double cpu_ms_idle_after_threaded_dgemm(void)
{
    const int n = 400;
    double *A = calloc((size_t)n * n, sizeof *A), *C = calloc((size_t)n * n, sizeof *C);
    fill_normal(A, n * n, 1.0, 3);
    openblas_set_num_threads(2);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, A, n, 0.0, C, n);
    struct timespec c0, c1, nap = { 0, 40000000 };
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    free(A);
    free(C);
    return (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) * 1e-6;
}

/* nt_blas_quiet: the idle worker sleeps within ~0.3 ms of a threaded call rather than
 * spinning ~80 ms on a core the lanes need.  Control: OpenBLAS's own timeout (2^28 cycles),
 * set the same way, spins through the whole sleep.  A user's OPENBLAS_THREAD_TIMEOUT stays. */
Test(blas, idle_threads_sleep_soon_after_a_threaded_call)
{
    setenv("OPENBLAS_THREAD_TIMEOUT", "28", 1);   /* the control: OpenBLAS's default */
    openblas_read_env();
    blas_thread_shutdown_();
    const double spinning = cpu_ms_idle_after_threaded_dgemm();

    setenv("OPENBLAS_THREAD_TIMEOUT", "7", 1);    /* a user's value is kept */
    nt_blas_quiet();
    cr_expect_str_eq(getenv("OPENBLAS_THREAD_TIMEOUT"), "7");

    unsetenv("OPENBLAS_THREAD_TIMEOUT");
    nt_blas_quiet();
    cr_expect_str_eq(getenv("OPENBLAS_THREAD_TIMEOUT"), "20");
    const double quiet = cpu_ms_idle_after_threaded_dgemm();
    cr_log_info("CPU time over a 40 ms sleep after a threaded dgemm: %.2f ms quiet, %.2f ms spinning", quiet, spinning);
    cr_expect_lt(quiet, 4.0, "the idle worker burned %.2f ms of CPU in 40 ms", quiet);
    cr_expect_gt(spinning, 10.0, "the control burned only %.2f ms: it would not show spinning", spinning);
}

/* `noether info --json` says how long OpenBLAS's idle threads spin and who set it: noether's
 * 2^20 cycles without the variable, the user's value (clamped as OpenBLAS clamps it) with it */
Test(blas, info_says_how_long_idle_threads_spin)
{
    static const struct { const char *env; double log2; const char *by; } cases[3] = {
        { "", 20, "noether" }, { "OPENBLAS_THREAD_TIMEOUT=7", 7, "OPENBLAS_THREAD_TIMEOUT" },
        { "OPENBLAS_THREAD_TIMEOUT=2", 4, "OPENBLAS_THREAD_TIMEOUT" } };
    char dir[256], cmd[4 * NT_PATH_MAX];
    tmpdir_new(dir);
    for (int c = 0; c < 3; c++) {
        snprintf(cmd, sizeof cmd, "env -u OPENBLAS_THREAD_TIMEOUT -u GOTO_THREAD_TIMEOUT -u NOETHER_BLAS_QUIET %s %s info --json > %s/info%d.json",
                 cases[c].env, NOETHER_BIN, dir, c);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
        char name[32];
        snprintf(name, sizeof name, "info%d.json", c);
        cJSON *doc = json_file(dir, name), *blas = cJSON_GetObjectItem(doc, "blas");
        cr_assert_not_null(blas, "%s: no blas object", cmd);
        cr_expect_eq(json_num(blas, "idle_spin_log2_cycles"), cases[c].log2, "%s", cmd);
        const cJSON *by = cJSON_GetObjectItem(blas, "idle_spin_set_by");
        cr_expect(cJSON_IsString(by) && !strcmp(by->valuestring, cases[c].by), "%s: set by %s", cmd,
                  cJSON_IsString(by) ? by->valuestring : "(none)");
        cJSON_Delete(doc);
    }
}
