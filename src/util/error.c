/* error.c: the one way errors are reported (a code and a one-line message). */
#include <stdarg.h>
#include "noether.h"

int nt_fail(nt_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}
