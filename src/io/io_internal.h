/* io_internal.h: what the readers of src/io/ share and nothing outside them needs:
 * the CSV text parser (csv.c), fed line by line by a file (csv.c) or by the text built
 * into the library (builtin.c), and zlib's error message for a file (csv.c, idx.c). */
#ifndef NT_IO_INTERNAL_H
#define NT_IO_INTERNAL_H
#include <string.h>
#include <zlib.h>
#include "noether.h"

/* A source of text lines.  Sets *line to the next line (NUL-terminated, any length, the
 * newline may still be on it; valid until the next call) and returns 1, returns 0 at the
 * end, or fills err and returns minus its code (-NT_EINPUT or -NT_EFAIL). */
typedef int (*nt_line_fn)(void *ctx, const char **line, nt_error *err);

/* Parses comma-separated numbers, one row per line, into an n x cols array.  Blank lines
 * are skipped; the first line is a header, and skipped, iff one of its fields is not a
 * number; every data row must have as many fields as the first; numbers must be finite.
 * `name` starts every error message ("data.csv: line 7 has 4 fields, line 2 has 5").
 * On error *a is left zeroed. */
int nt_csv_parse_lines(const char *name, nt_line_fn next, void *ctx, nt_array *a,
                       nt_error *err);

/* zlib's last error on f, without the "path: " that zlib puts in front. */
static inline const char *nt_gz_error(gzFile f, const char *path, int *zerr)
{
    const char *msg = gzerror(f, zerr);
    size_t n = strlen(path);
    return strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ' ? msg + n + 2 : msg;
}

/* The CSV text of a built-in data set (generated builtin_data.c), NULL if unknown. */
const char *nt_builtin_data(const char *name);

#endif
