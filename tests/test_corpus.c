/* test_corpus.c: the fuzz corpus as regression inputs.  fuzz/corpus/ holds no crash-*
 * input (make fuzz has found none; a crash it finds goes into fuzz/corpus/<reader>/ and is
 * then picked up here): every file under fuzz/corpus/, whole, cut at many lengths (every
 * length through the first 160 bytes, where the headers are) and with single bytes
 * overwritten, goes through every reader (spec, NPY, CSV, IDX, checkpoint) of the library, and the
 * whole files through the noether binary as a spec and as --params.  Each must succeed or
 * refuse cleanly: an error code, one message naming the file, nothing held; never a crash
 * (under make sanitize also no out-of-bounds read, leak or undefined behaviour). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include "helpers.h"

#define CORPUS NOETHER_SOURCE_DIR "/fuzz/corpus"

typedef struct { char path[NT_PATH_MAX]; } entry;

/* every regular file under CORPUS/<reader>/ */
static int corpus(entry *out, int cap)
{
    int n = 0;
    DIR *top = opendir(CORPUS);
    cr_assert_not_null(top, "cannot list %s", CORPUS);
    struct dirent *a, *b;
    while ((a = readdir(top)))
        if (a->d_name[0] != '.') {
            char sub[NT_PATH_MAX];
            snprintf(sub, sizeof sub, "%s/%s", CORPUS, a->d_name);
            DIR *d = opendir(sub);
            if (!d) continue;
            while ((b = readdir(d)) && n < cap)
                if (b->d_name[0] != '.') snprintf(out[n++].path, NT_PATH_MAX, "%.800s/%.200s", sub, b->d_name);
            closedir(d);
        }
    closedir(top);
    return n;
}

/* outcomes per reader (npy, csv, idx, spec, checkpoint): accepted, refused; the test is
 * not vacuous when every reader has seen both */
static int outcomes[5][2];

/* Every reader on the bytes in `path` (a scratch file); asserts a clean outcome. */
static void all_readers(const char *path, const char *what)
{
    int (*const read[3])(const char *, nt_array *, nt_error *) = {nt_npy_read, nt_csv_read, nt_idx_read};
    static const char *const names[3] = {"npy", "csv", "idx"};
    for (int r = 0; r < 3; r++) {
        nt_array a = {0};
        nt_error err = {0};
        int rc = read[r](path, &a, &err);
        outcomes[r][rc != NT_OK]++;
        if (rc == NT_OK) {
            int64_t size = 1;
            for (int k = 0; k < a.ndim; k++) size *= a.shape[k];
            cr_assert_eq(a.size, size, "%s reader on %s: size %lld, shape says %lld", names[r], what,
                         (long long)a.size, (long long)size);
            nt_array_free(&a);
        } else {
            cr_assert(rc == NT_EINPUT || rc == NT_EFAIL, "%s reader on %s: code %d", names[r], what, rc);
            cr_assert_null(a.data, "%s reader on %s: refused but holds data", names[r], what);
            cr_assert_not_null(strstr(err.msg, path), "%s reader on %s: '%s' does not name the file", names[r],
                               what, err.msg);
            cr_assert_null(strchr(err.msg, '\n'), "%s reader on %s: message of several lines", names[r], what);
        }
    }
    size_t n;
    char *text = read_file(path, &n);
    nt_spec spec;
    nt_error err = {0};
    int rc = nt_spec_parse(text, path, &spec, &err);
    outcomes[3][rc != NT_OK]++;
    if (rc == NT_OK) nt_spec_free(&spec);
    else cr_assert_not_null(strstr(err.msg, path), "spec reader on %s: '%s' does not name the file", what, err.msg);
    free(text);
    nt_checkpoint *c = NULL;
    nt_error cerr = {0};
    rc = nt_checkpoint_read(path, &c, &cerr);
    outcomes[4][rc != NT_OK]++;
    if (rc == NT_OK) {   /* a checkpoint that verifies: its records read without harm */
        int64_t v;
        nt_checkpoint_get_i64(c, "train.step", 1, &v, &cerr);
        nt_checkpoint_free(c);
    } else {
        cr_assert_null(c, "checkpoint reader on %s: refused but holds a checkpoint", what);
        cr_assert_not_null(strstr(cerr.msg, path), "checkpoint reader on %s: '%s' does not name the file", what,
                           cerr.msg);
        cr_assert_null(strchr(cerr.msg, '\n'), "checkpoint reader on %s: message of several lines", what);
    }
}

static void write_bytes(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

Test(corpus, every_reader_on_every_input_cut_and_damaged, .timeout = 600)
{
    entry files[64];
    int n = corpus(files, 64), runs = 0;
    cr_assert_geq(n, 7, "the corpus has %d files", n);
    char dir[256], scratch[NT_PATH_MAX], what[NT_PATH_MAX + 64];
    tmpdir_new(dir);
    path_join(scratch, dir, "input");
    for (int i = 0; i < n; i++) {
        size_t len;
        unsigned char *b = (unsigned char *)read_file(files[i].path, &len);
        cr_assert_not_null(b, "cannot read %s", files[i].path);
        const size_t stride = len > 640 ? len / 160 : 1;
        for (size_t cut = 0; cut <= len; cut += cut < 160 ? 1 : stride) {   /* prefixes, the whole file last */
            write_bytes(scratch, b, cut);
            snprintf(what, sizeof what, "%s cut at %zu", files[i].path, cut);
            all_readers(scratch, what);
            runs++;
        }
        write_bytes(scratch, b, len);
        all_readers(scratch, files[i].path);
        unsigned char *m = malloc(len + 1);
        for (size_t k = 0; k < 48 && len; k++) {   /* one byte overwritten, 48 places */
            const size_t at = k < 24 ? k * 7 % len : (size_t)nt_rand_u64(9, i, k) % len;
            memcpy(m, b, len);
            m[at] = k % 2 ? 0xff : (unsigned char)(m[at] ^ 0x5a);
            write_bytes(scratch, m, len);
            snprintf(what, sizeof what, "%s with byte %zu changed", files[i].path, at);
            all_readers(scratch, what);
            runs++;
        }
        free(m);
        free(b);
    }
    remove(scratch);
    remove(dir);
    cr_log_info("corpus: %d files, %d inputs through 5 readers", n, runs);
    static const char *const names[5] = {"npy", "csv", "idx", "spec", "checkpoint"};
    for (int r = 0; r < 5; r++)
        cr_assert(outcomes[r][0] > 0 && outcomes[r][1] > 0, "%s reader: %d accepted, %d refused (want both)",
                  names[r], outcomes[r][0], outcomes[r][1]);
}

/* the whole corpus files through the binary: as a spec and as --params of the default */
Test(corpus, binary_refuses_or_accepts_cleanly, .timeout = 300)
{
    entry files[64];
    int n = corpus(files, 64);
    for (int i = 0; i < n; i++)
        for (int as_params = 0; as_params < 2; as_params++) {
            char args[2 * NT_PATH_MAX], *out, *err;
            if (as_params) snprintf(args, sizeof args, "grad --params %.1000s --json", files[i].path);
            else snprintf(args, sizeof args, "info %.1000s --json", files[i].path);
            int rc = run_noether(args, &out, &err);
            cr_assert(rc == 0 || rc == 2, "noether %s: exit %d (%s)", args, rc, err);
            if (rc == 2) {
                size_t len = strlen(err);
                cr_assert(len > 1 && strchr(err, '\n') == err + len - 1, "noether %s: stderr not one line: %s", args, err);
                cr_assert_str_empty(out, "noether %s: stdout on failure: %s", args, out);
            }
            free(out);
            free(err);
        }
}
