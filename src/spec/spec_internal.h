/* spec_internal.h: helpers shared by spec.c and data.c. */
#ifndef NT_SPEC_INTERNAL_H
#define NT_SPEC_INTERNAL_H
#include "noether.h"

/* Resolves path against dir unless it is absolute; into out (NT_PATH_MAX). */
void nt_resolve_path(const char *dir, const char *path, char *out);

#endif
