/* doc.h: the spectrum's JSON document as cJSON (doc.c), for the library's own writers and
 * noether's commands (src/cli: spectrum, run); the public face is nt_spectrum_json. */
#ifndef NT_SPECTRUM_DOC_H
#define NT_SPECTRUM_DOC_H
#include <cJSON.h>
#include "noether.h"

/* the whole document of noether spectrum --json */
cJSON *nt_spectrum_doc(const nt_spectrum *r, const nt_spectrum_doc_opts *o);
/* the pieces noether run's summary.json repeats: predictions.flat.at_critical_point, .sharp,
 * .sectors (each sector's eigenvalues or not), .alignment_scale_invariant, and alignment */
cJSON *nt_critical_json(const nt_flat_view *f);
cJSON *nt_sharp_json(const nt_sharp_view *s);
cJSON *nt_sectors_json(const nt_spectrum *r, int eigenvalues);
cJSON *nt_scale_json(const nt_spectrum *r);
cJSON *nt_alignment_json(const nt_spectrum *r);
#endif
