/* blas.c: the OpenBLAS kernel in use, and the right one for this CPU.
 *
 * Debian's OpenBLAS (DYNAMIC_ARCH) picks its kernel from the CPU model when it loads; on a
 * CPU it does not know (a newer model, a VM that hides it) it falls back to a generic
 * kernel ("Prescott", SSE3) that runs dgemm 4-5x slower.  It reads OPENBLAS_CORETYPE
 * only while it initializes, before main, so a program that wants another kernel sets the
 * variable and executes itself again.  A value the user set is never overridden; the
 * re-execution is marked in NOETHER_BLAS_FALLBACK (the kernel OpenBLAS chose), so it
 * happens at most once. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <unistd.h>
#include "noether.h"

char *openblas_get_corename(void);
int openblas_get_num_threads(void);
void openblas_read_env(void);        /* OpenBLAS's own, exported: the environment read again */
int blas_thread_shutdown_(void);     /* its thread pool ended; remade at the next threaded call */

/* instruction-set tier of a kernel: 3 AVX-512, 2 AVX2 + FMA, 1 anything older */
static int kernel_tier(const char *name)
{
    static const char *avx512[] = {"skylakex", "cooperlake", "sapphirerapids"};
    static const char *avx2[] = {"haswell", "zen"};
    for (size_t i = 0; i < sizeof avx512 / sizeof *avx512; i++) if (!strcasecmp(name, avx512[i])) return 3;
    for (size_t i = 0; i < sizeof avx2 / sizeof *avx2; i++) if (!strcasecmp(name, avx2[i])) return 2;
    return 1;
}

int nt_cpu_tier(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512cd"))
        return 3;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
#endif
    return 1;
}

const char *nt_blas_better_kernel(const char *kernel, int cpu_tier)
{
    if (!kernel || kernel_tier(kernel) >= cpu_tier) return NULL;
    return cpu_tier >= 3 ? "SkylakeX" : cpu_tier == 2 ? "Haswell" : NULL;
}

void nt_blas_info_get(nt_blas_info *b)
{
    memset(b, 0, sizeof *b);
    snprintf(b->kernel, sizeof b->kernel, "%s", openblas_get_corename());
    const char *fallback = getenv("NOETHER_BLAS_FALLBACK"), *user = getenv("OPENBLAS_CORETYPE");
    b->cpu_tier = nt_cpu_tier();
    b->selected = fallback != NULL && user != NULL;
    b->user_set = user != NULL && !b->selected;
    snprintf(b->fallback, sizeof b->fallback, "%s", b->selected ? fallback : "");
    const char *better = nt_blas_better_kernel(b->kernel, b->cpu_tier);
    snprintf(b->better, sizeof b->better, "%s", better ? better : "");
}

/* OpenBLAS's idle worker threads spin (sched_yield) for 2^28 cycles, ~80 ms here, after each
 * threaded call before they sleep.  The lanes run single-threaded BLAS on threads of their own
 * (src/engine/lanes.c), so a worker still spinning from the call before shares a core with a
 * lane: measured, MLP 784-256-256-10 on 512 samples, the gradients of the first ~50 ms after a
 * two-threaded dgemm took 7.4 ms against 3.7, and a spectrum's products, each after the
 * eigensolver's threaded BLAS, ran the whole way so (top-10: 1.30-1.52 s against 1.23-1.27).
 * 2^20 cycles (~0.3 ms) keeps a run of BLAS calls warm (a training step's GEMMs: 0.64 ms a step
 * either way) and lets the workers sleep before the lanes start.  The timeout is read when the
 * pool starts, so the pool is ended here and remade at the next threaded call; call it where no
 * BLAS call is in flight. */
void nt_blas_quiet(void)
{
    /* the user's, or ours inherited through nt_blas_select's re-execution (read at load) */
    if (getenv("OPENBLAS_THREAD_TIMEOUT") || getenv("GOTO_THREAD_TIMEOUT")) return;
    if (setenv("OPENBLAS_THREAD_TIMEOUT", "20", 1) || setenv("NOETHER_BLAS_QUIET", "20", 1)) return;
    openblas_read_env();
    blas_thread_shutdown_();
}

int nt_blas_idle_spin(const char **set_by)
{
    const char *o = getenv("OPENBLAS_THREAD_TIMEOUT"), *g = getenv("GOTO_THREAD_TIMEOUT"), *v = o ? o : g;
    const char *ours = getenv("NOETHER_BLAS_QUIET");
    *set_by = !v ? "OpenBLAS" : ours && o && !strcmp(o, ours) ? "noether" : o ? "OPENBLAS_THREAD_TIMEOUT"
                                                                          : "GOTO_THREAD_TIMEOUT";
    if (!v) return 28;   /* OpenBLAS's THREAD_TIMEOUT */
    const int t = atoi(v);
    return t < 4 ? 4 : t > 30 ? 30 : t;   /* as OpenBLAS clamps it */
}

int nt_blas_select(char **argv)
{
    nt_blas_quiet();
    if (getenv("OPENBLAS_CORETYPE") || getenv("NOETHER_BLAS_FALLBACK")) return 0;   /* the user's, or done */
    const char *now = openblas_get_corename(), *want = nt_blas_better_kernel(now, nt_cpu_tier());
    if (!want) return 0;
    if (setenv("NOETHER_BLAS_FALLBACK", now, 1) || setenv("OPENBLAS_CORETYPE", want, 1)) return -1;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE");   /* could not execute: go on with the kernel we have */
    return -1;
}

int nt_threads_default(void)
{
    const char *s = getenv("NOETHER_THREADS");
    const int t = s && *s ? atoi(s) : openblas_get_num_threads();
    return t < 1 ? 1 : t;
}
