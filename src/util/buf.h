/* buf.h: text helpers internal to libnoether and its program (not part of noether.h, not
 * exported from the shared library): a growing text buffer, a text file written whole or
 * not at all, a folder created with its parents.  The command line (src/cli) and the
 * report (src/report) both build on them, so that neither includes the other. */
#ifndef NT_UTIL_BUF_H
#define NT_UTIL_BUF_H
#include <stdarg.h>
#include <stddef.h>
#include "noether.h"

/* A growing NUL-terminated text (CSV, HTML, gnuplot scripts); {0} is an empty buffer, s is
 * malloc'd (the owner frees it) and NULL until the first write. */
typedef struct { char *s; size_t len, cap; } nt_buf;

/* Appends printf-style text. */
void nt_buf_printf(nt_buf *b, const char *fmt, ...) NT_PRINTF(2, 3);
void nt_buf_vprintf(nt_buf *b, const char *fmt, va_list ap);

/* Writes text to path whole or not at all (nt_file_write: a temporary file, then rename). */
int nt_text_write(const char *path, const char *text, nt_error *err);
/* Creates the folder dir and its parents (those that exist are kept); NT_EINPUT naming the
 * first one that cannot be created. */
int nt_mkdir_p(const char *dir, nt_error *err);
/* doc as JSON text (indented when formatted), every number with the fewest significant
 * digits (15, 16 or 17) that read back as the same double: cJSON 1.7 prints 15 when they read
 * back within a relative DBL_EPSILON, which can be an ulp off.  malloc'd, NULL out of memory. */
struct cJSON;
char *nt_json_print(const struct cJSON *doc, int formatted);
#endif
