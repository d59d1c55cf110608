/* fuzz_readers.c: libFuzzer targets for every reader (make fuzz).  One binary per target,
 * chosen at compile time with -DTARGET_SPEC, -DTARGET_NPY, -DTARGET_CSV, -DTARGET_IDX or
 * -DTARGET_CHECKPOINT (the checkpoint reader: checksum first, then the records).
 * The spec parser reads memory; the file readers read the input from a file of this
 * process's own (they take paths, as the commands do).  A reader may refuse an input (it
 * must then return NT_EINPUT with a message and leave nothing allocated); it must never
 * crash, read out of bounds, leak or hit undefined behaviour. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "noether.h"

static const char *scratch(void)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/noether-fuzz-%d", (int)getpid());
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nt_error err = {0};
#ifdef TARGET_SPEC
    char *text = malloc(size + 1);   /* NUL-terminated for cJSON; NULs inside are the parser's to refuse */
    memcpy(text, data, size);
    text[size] = 0;
    nt_spec spec;
    if (nt_spec_parse_n(text, size, "/tmp/fuzz/spec.json", &spec, &err) == NT_OK) nt_spec_free(&spec);
    free(text);
#else
    FILE *f = fopen(scratch(), "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
#if defined(TARGET_CHECKPOINT)
    /* The checksum refuses nearly every mutation before the records are parsed; so the
     * input is read twice, as it is and with its last 8 bytes made the right checksum,
     * which lets the fuzzer reach the record parser behind it. */
    nt_checkpoint *c = NULL;
    int rc0 = nt_checkpoint_read(scratch(), &c, &err);
    if (rc0 != NT_OK && (c || !err.msg[0])) abort();
    nt_checkpoint_free(c);
    c = NULL;
    if (size >= 16) {
        uint64_t h = nt_hash64(data, size - 8, NT_HASH_INIT);
        f = fopen(scratch(), "wb");
        if (!f) return 0;
        fwrite(data, 1, size - 8, f);
        fwrite(&h, 8, 1, f);
        fclose(f);
    }
    if (nt_checkpoint_read(scratch(), &c, &err) != NT_OK) {
        if (c || !err.msg[0]) abort();   /* refused: a message, nothing held */
        return 0;
    }
    int64_t step;   /* a checkpoint that verifies: its records read without harm */
    const char *text;
    int64_t len;
    nt_checkpoint_get_i64(c, "train.step", 1, &step, &err);
    nt_checkpoint_get_bytes(c, "spec.path", &text, &len, &err);
    nt_checkpoint_free(c);
#else
    nt_array a = {0};
    int rc;
#if defined(TARGET_NPY)
    rc = nt_npy_read(scratch(), &a, &err);
#elif defined(TARGET_CSV)
    rc = nt_csv_read(scratch(), &a, &err);
#else
    rc = nt_idx_read(scratch(), &a, &err);
#endif
    if (rc != NT_OK && (a.data || !err.msg[0])) abort();   /* refused: a message, nothing held */
    nt_array_free(&a);
#endif
#endif
    return 0;
}
