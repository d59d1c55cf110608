/* memory.c: how much memory this machine has, and the one refusal message for a job that
 * will not fit (the model, a teacher network, the dense Hessian): it names the bytes
 * needed and the bytes available, so that nothing is allocated that cannot be used. */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include "noether.h"

double nt_memory_bytes(void)
{
    return (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
}

int nt_memory_fits(nt_error *err, double need, double limit, const char *limit_name, const char *fmt, ...)
{
    if (limit <= 0) limit = nt_memory_bytes();
    if (need <= limit) return NT_OK;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return nt_fail(err, NT_EINPUT, "%s needs %.0f bytes (%.3g GiB), more than the %.0f bytes (%.3g GiB) %s", what, need,
                   need / 1073741824.0, limit, limit / 1073741824.0, limit_name ? limit_name : "of memory available");
}
