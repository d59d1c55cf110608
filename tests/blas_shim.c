/* blas_shim.c: preloaded by tests/test_blas.c in place of OpenBLAS's openblas_get_corename,
 * to play a CPU that OpenBLAS does not know: it reports the generic "Prescott" unless
 * OPENBLAS_CORETYPE names a kernel (as OpenBLAS honours it), and appends one line per call
 * (the pid and the kernel reported) to the file NOETHER_SHIM_LOG names. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

char *openblas_get_corename(void)
{
    static char name[64];
    const char *set = getenv("OPENBLAS_CORETYPE");
    snprintf(name, sizeof name, "%s", set ? set : "Prescott");
    const char *log = getenv("NOETHER_SHIM_LOG");
    FILE *f = log ? fopen(log, "a") : NULL;
    if (f) {
        fprintf(f, "%d %s\n", (int)getpid(), name);
        fclose(f);
    }
    return name;
}
