/* test_io.c: the readers and writers of src/io/: NPY, CSV (plain, gzipped, built in) and
 * IDX, on good files and on every kind of broken one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <criterion/criterion.h>
#include <cJSON.h>
#include "helpers.h"
#include "../src/util/buf.h"

#define SRC(rel) NOETHER_SOURCE_DIR "/" rel

static void assert_err(int rc, int code, const nt_error *err, const nt_array *a,
                       const char *name, const char *what)
{
    cr_assert_eq(rc, code, "rc %d, want %d (%s)", rc, code, err->msg);
    cr_assert_eq(err->code, code);
    cr_assert_not_null(strstr(err->msg, name), "message '%s' does not name '%s'", err->msg, name);
    cr_assert_not_null(strstr(err->msg, what), "message '%s' does not say '%s'", err->msg, what);
    cr_assert_null(strchr(err->msg, '\n'), "message is not one line: '%s'", err->msg);
    cr_assert(a->data == NULL && a->size == 0 && a->ndim == 0, "array not left zeroed");
}

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* An NPY file of the given version with the dict padded to 64 bytes, then raw data. */
static void write_npy_raw(const char *path, int major, const char *dict, const void *data,
                          size_t n)
{
    int pre = major == 1 ? 10 : 12;
    size_t len = strlen(dict), total = (pre + len + 1 + 63) / 64 * 64, hlen = total - pre;
    unsigned char *b = calloc(1, total + n);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    for (int i = 0; i < pre - 8; i++) b[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + pre, dict, len);
    memset(b + pre + len, ' ', hlen - len - 1);
    b[total - 1] = '\n';
    if (n) memcpy(b + total, data, n);
    write_bytes(path, b, total + n);
    free(b);
}

/* ------------------------------------------------------------------ NPY */

Test(npy, round_trip_1d_2d_and_header)
{
    char dir[256], p1[NT_PATH_MAX], p2[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(p1, dir, "v.npy");
    path_join(p2, dir, "m.npy");
    double v[3] = { 1.5, -2.25, 1e-300 }, m[6];
    for (int i = 0; i < 6; i++) m[i] = sin(i + 1.0) * 1e5;
    nt_error err = {0};
    cr_assert_eq(nt_npy_write(p1, v, 1, (int64_t[]){ 3 }, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_npy_write(p2, m, 2, (int64_t[]){ 2, 3 }, &err), NT_OK, "%s", err.msg);

    nt_array a;
    cr_assert_eq(nt_npy_read(p1, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.ndim == 1 && a.shape[0] == 3 && a.size == 3 && !a.is_int);
    cr_assert(memcmp(a.data, v, sizeof v) == 0, "1-D values differ");
    nt_array_free(&a);
    cr_assert(a.data == NULL && a.size == 0);
    nt_array_free(&a);                          /* safe twice */
    cr_assert_eq(nt_npy_read(p2, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.size == 6);
    cr_assert(memcmp(a.data, m, sizeof m) == 0, "2-D values differ");
    nt_array_free(&a);

    const char *paths[2] = { p1, p2 }, *shapes[2] = { "'shape': (3,)", "'shape': (2, 3)" };
    for (int k = 0; k < 2; k++) {
        size_t n;
        unsigned char *b = slurp(paths[k], &n);
        cr_assert(memcmp(b, "\x93NUMPY\x01\x00", 8) == 0, "bad preamble");
        size_t total = 10 + (b[8] | (size_t)b[9] << 8);
        cr_assert_eq(total % 64, 0, "preamble length %zu", total);
        cr_assert_eq(b[total - 1], '\n');
        cr_assert_eq(n, total + (k ? sizeof m : sizeof v));
        b[total - 1] = 0;
        cr_assert_not_null(strstr((char *)b + 10, "'descr': '<f8'"));
        cr_assert_not_null(strstr((char *)b + 10, "'fortran_order': False"));
        cr_assert_not_null(strstr((char *)b + 10, shapes[k]), "header %s", (char *)b + 10);
        free(b);
    }
    /* no temporary file left behind */
    char cmd[NT_PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 2", dir);
    cr_assert_eq(system(cmd), 0, "stray files in %s", dir);
}

Test(npy, round_trip_scalar_and_4d)
{
    char dir[256], p[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(p, dir, "s.npy");
    nt_error err = {0};
    nt_array a;
    double s = 42.5;
    cr_assert_eq(nt_npy_write(p, &s, 0, NULL, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_npy_read(p, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.ndim == 0 && a.size == 1 && a.data[0] == 42.5);
    nt_array_free(&a);
    double x[24];
    for (int i = 0; i < 24; i++) x[i] = i - 7.0;
    cr_assert_eq(nt_npy_write(p, x, 4, (int64_t[]){ 1, 2, 3, 4 }, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_npy_read(p, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.ndim == 4 && a.shape[3] == 4 && a.size == 24);
    cr_assert(memcmp(a.data, x, sizeof x) == 0);
    nt_array_free(&a);
}

Test(npy, write_failure_names_path)
{
    nt_error err = {0};
    double v = 1;
    int rc = nt_npy_write("/nonexistent-dir/x.npy", &v, 1, (int64_t[]){ 1 }, &err);
    cr_assert_eq(rc, NT_EFAIL);
    cr_assert_not_null(strstr(err.msg, "/nonexistent-dir/x.npy"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "No such file"), "%s", err.msg);
}

Test(npy, read_int_dtypes_and_v2)
{
    char dir[256], p[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(p, dir, "i.npy");
    nt_error err = {0};
    nt_array a;

    int64_t i8[4] = { 0, -1, 3, 1LL << 40 };
    write_npy_raw(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", i8, sizeof i8);
    cr_assert_eq(nt_npy_read(p, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.is_int && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 2);
    for (int i = 0; i < 4; i++) cr_assert_eq(a.data[i], (double)i8[i]);
    nt_array_free(&a);

    int32_t i4[5] = { 7, -2147483647 - 1, 2147483647, 0, 9 };
    /* keys reordered, no spaces, double quotes, no trailing comma */
    write_npy_raw(p, 1, "{\"shape\":(5,),\"fortran_order\":False,\"descr\":\"<i4\"}", i4, sizeof i4);
    cr_assert_eq(nt_npy_read(p, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.is_int && a.ndim == 1 && a.size == 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(a.data[i], (double)i4[i], "i4[%d]", i);
    nt_array_free(&a);

    double f8[3] = { 0.25, -8, 3e10 };
    write_npy_raw(p, 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f8, sizeof f8);
    cr_assert_eq(nt_npy_read(p, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(!a.is_int && a.ndim == 1 && a.size == 3);
    cr_assert(memcmp(a.data, f8, sizeof f8) == 0);
    nt_array_free(&a);

    unsigned char u1[3] = { 0, 128, 255 };
    write_npy_raw(p, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", u1, 3);
    cr_assert_eq(nt_npy_read(p, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.is_int && a.data[1] == 128 && a.data[2] == 255);
    nt_array_free(&a);
}

static void npy_reject(const char *name, int major, const char *dict, const void *data,
                       size_t n, const char *what)
{
    char dir[256], p[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(p, dir, name);
    write_npy_raw(p, major, dict, data, n);
    nt_error err = {0};
    nt_array a;
    int rc = nt_npy_read(p, &a, &err);
    assert_err(rc, NT_EINPUT, &err, &a, name, what);
}

Test(npy, rejects)
{
    double d[4] = { 1, 2, 3, 4 };
    const char *f8_4 = "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }";
    npy_reject("c8.npy", 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (4,), }", d, 32,
               "dtype '<c8' holds complex, not real numbers");
    npy_reject("str.npy", 1, "{'descr': '<U2', 'fortran_order': False, 'shape': (4,), }", d, 32,
               "dtype '<U2' holds a string");
    npy_reject("obj.npy", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (4,), }", d, 32,
               "dtype '|O' holds Python objects");
    npy_reject("f16.npy", 1, "{'descr': '<f16', 'fortran_order': False, 'shape': (2,), }", d, 32,
               "dtype '<f16' is not supported");
    npy_reject("rec.npy", 1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (4,), }", d, 32,
               "expected a quoted string");
    npy_reject("trunc.npy", 1, f8_4, d, 31, "truncated: expected 32 bytes of data, got 31");
    npy_reject("trail.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", d,
               32, "8 bytes after the data");
    npy_reject("huge.npy", 1,
               "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999, 99999999999999), }",
               d, 32, "too large");
    npy_reject("big.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }",
               d, 32, "truncated");
    npy_reject("5d.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1), }",
               d, 8, "more than 4 dimensions");
    npy_reject("noshape.npy", 1, "{'descr': '<f8', 'fortran_order': False}", d, 8, "no 'shape'");
    npy_reject("junk.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), 'x': 1}",
               d, 32, "unknown key 'x'");
    npy_reject("open.npy", 1, "{'descr': '<f8, 'fortran_order", d, 32, "bad header");
    npy_reject("v9.npy", 9, f8_4, d, 32, "version 9.0");

    double nan17[20] = {0};
    nan17[17] = NAN;
    npy_reject("nan.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 5), }",
               nan17, sizeof nan17, "element 17 is nan");
    nan17[17] = 0;
    nan17[3] = -INFINITY;
    npy_reject("inf.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (20,), }",
               nan17, sizeof nan17, "element 3 is infinite");

    char dir[256], p[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(p, dir, "magic.npy");
    write_text(p, "\x93NUMPZ\x01\x00\x10\x00{}              \n");
    nt_error err = {0};
    nt_array a;
    assert_err(nt_npy_read(p, &a, &err), NT_EINPUT, &err, &a, "magic.npy", "bad magic");
    path_join(p, dir, "short.npy");
    write_text(p, "\x93NU");
    assert_err(nt_npy_read(p, &a, &err), NT_EINPUT, &err, &a, "short.npy", "bad magic");
    path_join(p, dir, "missing.npy");
    assert_err(nt_npy_read(p, &a, &err), NT_EINPUT, &err, &a, "missing.npy",
               "cannot open: No such file or directory");
    assert_err(nt_npy_read(dir, &a, &err), NT_EINPUT, &err, &a, dir, "cannot read");
}

static int have_numpy(void)
{
    return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

/* Every real and integer dtype numpy writes, in either byte order and in Fortran order, reads
 * as the float64 values numpy itself converts them to (exactly: a.astype(float64) bit for bit),
 * in C order; the negative control: the same Fortran file read as if it were C order differs. */
Test(npy, every_real_dtype_and_fortran_order)
{
    if (!have_numpy()) cr_skip_test("/usr/bin/python3 cannot import numpy");
    static const char *dtypes[] = { "<f8", ">f8", "<f4", ">f4", "<f2", "|i1", "<i2", ">i2", "<i4", ">i4", "<i8",
                                    "|u1", "<u2", ">u4", "<u8", "|b1" };
    char dir[256], p[NT_PATH_MAX], ref[NT_PATH_MAX], cmd[4 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(ref, dir, "ref.npy");
    for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++)
        for (int fortran = 0; fortran < 2; fortran++) {
            path_join(p, dir, "a.npy");
            /* a (3, 4, 2) array of values that fit every dtype, and its float64 twin in C order */
            snprintf(cmd, sizeof cmd,
                     "/usr/bin/python3 -c \"import numpy as np; r = np.random.default_rng(%zu); "
                     "x = (r.normal(size=(3, 4, 2)) * 40).astype('%s'); x = np.asfortranarray(x) if %d else x; "
                     "np.save('%s', x); np.save('%s', np.ascontiguousarray(x.astype(np.float64)))\"",
                     k, dtypes[k], fortran, p, ref);
            cr_assert_eq(system(cmd), 0, "%s", cmd);
            nt_error err = {0};
            nt_array a, b;
            cr_assert_eq(nt_npy_read(p, &a, &err), NT_OK, "%s: %s", dtypes[k], err.msg);
            cr_assert_eq(nt_npy_read(ref, &b, &err), NT_OK, "%s", err.msg);
            cr_assert(a.ndim == 3 && a.shape[0] == 3 && a.shape[1] == 4 && a.shape[2] == 2, "%s", dtypes[k]);
            cr_assert_eq(a.is_int, dtypes[k][1] != 'f', "%s", dtypes[k]);
            int same = 0, differ_as_c = 0;
            for (int64_t i = 0; i < 24; i++) same += a.data[i] == b.data[i];
            cr_assert_eq(same, 24, "%s%s: %d of 24 equal", dtypes[k], fortran ? " (Fortran)" : "", same);
            nt_npy_header h;
            cr_assert_eq(nt_npy_header_read(p, &h, &err), NT_OK, "%s", err.msg);
            cr_assert_eq(h.fortran, fortran);
            cr_assert_eq(nt_npy_is_narrow_float(&h), dtypes[k][1] == 'f' && dtypes[k][2] != '8', "%s", dtypes[k]);
            if (fortran && dtypes[k][1] != 'b') {
                /* negative control: the file's items taken in the order they are stored (what a
                 * reader ignoring fortran_order would return) are not the array: storage index
                 * i holds x[i % 3, i / 3 % 4, i / 12], C index (i % 3) * 8 + (i / 3 % 4) * 2 + i / 12 */
                for (int64_t i = 0; i < 24; i++) differ_as_c += b.data[(i % 3) * 8 + (i / 3 % 4) * 2 + i / 12] != b.data[i];
                cr_assert_gt(differ_as_c, 0, "%s: the storage order reads the same as C order", dtypes[k]);
            }
            nt_array_free(&a);
            nt_array_free(&b);
        }
}

Test(npy, numpy_interop)
{
    if (!have_numpy()) cr_skip_test("/usr/bin/python3 cannot import numpy");
    char dir[256], p1[NT_PATH_MAX], p2[NT_PATH_MAX], cmd[4 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(p1, dir, "np.npy");
    path_join(p2, dir, "ours.npy");
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np; "
             "np.save('%s', np.arange(12, dtype=np.float64).reshape(3, 4) / 7)\"", p1);
    cr_assert_eq(system(cmd), 0);
    nt_error err = {0};
    nt_array a;
    cr_assert_eq(nt_npy_read(p1, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.ndim == 2 && a.shape[0] == 3 && a.shape[1] == 4);
    for (int i = 0; i < 12; i++) cr_assert_eq(a.data[i], i / 7.0);
    nt_array_free(&a);

    double x[6] = { 1.0 / 3, -2, 1e-310, 5e300, 0, 7 };
    cr_assert_eq(nt_npy_write(p2, x, 2, (int64_t[]){ 3, 2 }, &err), NT_OK, "%s", err.msg);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np, sys; a = np.load('%s'); "
             "sys.exit(0 if a.shape == (3, 2) and a.dtype == np.float64 and "
             "(a.ravel() == [1/3, -2, 1e-310, 5e300, 0, 7]).all() else 1)\"", p2);
    cr_assert_eq(system(cmd), 0, "numpy disagrees with %s", p2);
}

/* ------------------------------------------------------------------ CSV */

Test(csv, iris)
{
    nt_error err = {0};
    nt_array a;
    cr_assert_eq(nt_csv_read(SRC("data/iris.csv"), &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.ndim == 2 && a.shape[0] == 150 && a.shape[1] == 5 && a.size == 750);
    double first[5] = { 5.1, 3.5, 1.4, 0.2, 0 };
    for (int j = 0; j < 5; j++) cr_assert_eq(a.data[j], first[j], "field %d", j);
    cr_assert_eq(a.data[749], 2);
    nt_array_free(&a);
}

Test(csv, shipped_shapes)
{
    struct { const char *path; int64_t n, c; } f[] = {
        { SRC("data/digits.csv.gz"), 1797, 65 },
        { SRC("data/wine_data.csv"), 178, 14 },
        { SRC("data/breast_cancer.csv"), 569, 31 },
    };
    for (int k = 0; k < 3; k++) {
        nt_error err = {0};
        nt_array a;
        cr_assert_eq(nt_csv_read(f[k].path, &a, &err), NT_OK, "%s", err.msg);
        cr_assert(a.shape[0] == f[k].n && a.shape[1] == f[k].c, "%s: %lld x %lld", f[k].path,
                  (long long)a.shape[0], (long long)a.shape[1]);
        nt_array_free(&a);
    }
    nt_error err = {0};
    nt_array a;
    cr_assert_eq(nt_csv_read(SRC("data/digits.csv.gz"), &a, &err), NT_OK);
    cr_assert_eq(a.data[2], 5);       /* first row: 0,0,5,13,9,... label 0 */
    cr_assert_eq(a.data[64], 0);
    cr_assert_eq(a.data[65 + 64], 1);
    nt_array_free(&a);
}

static void csv_reject(const char *text, const char *what)
{
    char dir[256], p[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(p, dir, "data.csv");
    write_text(p, text);
    nt_error err = {0};
    nt_array a;
    assert_err(nt_csv_read(p, &a, &err), NT_EINPUT, &err, &a, "data.csv", what);
}

Test(csv, rejects)
{
    csv_reject("a,b,c\n1,2,3\n4,5,6\n7,8\n", "line 4 has 2 fields, line 2 has 3");
    csv_reject("1,2\n3,abc\n", "line 2 field 2 'abc' is not a number");
    csv_reject("1,2\n3,\n", "line 2 field 2 '' is not a number");
    csv_reject("1,2\n3,4 5\n", "line 2 field 2 '4 5' is not a number");
    csv_reject("x,y\nu,v\n1,2\n", "line 2 field 1 'u' is not a number");   /* one header only */
    csv_reject("", "no data rows");
    csv_reject("\n\n  \n", "no data rows");
    csv_reject("150,4,setosa\n", "no data rows");
    csv_reject("1,2\n3,nan\n", "line 2 field 2 is nan");
    csv_reject("1,2\n3,-inf\n", "line 2 field 2 is infinite");

    char dir[256], p[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(p, dir, "nul.csv");
    write_bytes(p, "1,2\n3,4\0,5\n6,7\n", 15);
    nt_error err = {0};
    nt_array a;
    assert_err(nt_csv_read(p, &a, &err), NT_EINPUT, &err, &a, "nul.csv", "line 2 contains a NUL");
    path_join(p, dir, "missing.csv");
    assert_err(nt_csv_read(p, &a, &err), NT_EINPUT, &err, &a, "missing.csv",
               "cannot open: No such file or directory");
    path_join(p, dir, "bad.csv.gz");
    write_bytes(p, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-not-deflate", 29);
    assert_err(nt_csv_read(p, &a, &err), NT_EINPUT, &err, &a, "bad.csv.gz",
               "cannot read line 1: invalid block type");
    path_join(p, dir, "cut.csv.gz");                /* digits.csv.gz cut in half */
    size_t n;
    unsigned char *b = slurp(SRC("data/digits.csv.gz"), &n);
    write_bytes(p, b, n / 2);
    free(b);
    assert_err(nt_csv_read(p, &a, &err), NT_EINPUT, &err, &a, "cut.csv.gz", "cannot read line");
}

Test(csv, crlf_spaces_blank_lines)
{
    char dir[256], p[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(p, dir, "crlf.csv");
    write_text(p, "a, b\r\n\r\n 1, 2.5 \r\n-3 ,\t4e2\r\n\r\n");
    nt_error err = {0};
    nt_array a;
    cr_assert_eq(nt_csv_read(p, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.shape[0] == 2 && a.shape[1] == 2);
    double want[4] = { 1, 2.5, -3, 400 };
    for (int i = 0; i < 4; i++) cr_assert_eq(a.data[i], want[i]);
    nt_array_free(&a);

    write_text(p, "1,2\n3,4");       /* no header, no final newline */
    cr_assert_eq(nt_csv_read(p, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.shape[0] == 2 && a.data[3] == 4);
    nt_array_free(&a);
}

Test(csv, long_lines_and_gzip)
{
    char dir[256], p[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(p, dir, "wide.csv.gz");
    gzFile g = gzopen(p, "wb");
    cr_assert_not_null(g);
    int cols = 20000, rows = 3;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            gzprintf(g, "%d.125%s", r * cols + c, c + 1 < cols ? ", " : "\n");
    gzclose(g);
    nt_error err = {0};
    nt_array a;
    cr_assert_eq(nt_csv_read(p, &a, &err), NT_OK, "%s", err.msg);
    cr_assert(a.shape[0] == rows && a.shape[1] == cols);
    for (int64_t i = 0; i < a.size; i++) cr_assert_eq(a.data[i], i + 0.125, "element %lld", (long long)i);
    nt_array_free(&a);
}

/* ------------------------------------------------------------------ built-in */

Test(builtin, equals_files)
{
    const char *names[3] = { "iris", "wine", "breast_cancer" };
    const char *files[3] = { SRC("data/iris.csv"), SRC("data/wine_data.csv"),
                             SRC("data/breast_cancer.csv") };
    for (int k = 0; k < 3; k++) {
        nt_error err = {0};
        nt_array a, b;
        cr_assert_eq(nt_builtin_csv(names[k], &a, &err), NT_OK, "%s", err.msg);
        cr_assert_eq(nt_csv_read(files[k], &b, &err), NT_OK, "%s", err.msg);
        cr_assert(a.ndim == 2 && a.shape[0] == b.shape[0] && a.shape[1] == b.shape[1]);
        cr_assert(memcmp(a.data, b.data, (size_t)a.size * sizeof *a.data) == 0, "%s", names[k]);
        nt_array_free(&a);
        nt_array_free(&b);
    }
}

Test(builtin, unknown_name)
{
    nt_error err = {0};
    nt_array a;
    assert_err(nt_builtin_csv("mnist", &a, &err), NT_EINPUT, &err, &a, "'mnist'",
               "does not exist (iris, wine, breast_cancer)");
}

/* ------------------------------------------------------------------ IDX */

static void write_idx(const char *path, int gz, uint32_t magic, const uint32_t *dims, int nd,
                      const unsigned char *data, size_t n)
{
    unsigned char h[20];
    int len = 0;
    for (int i = -1; i < nd; i++) {
        uint32_t v = i < 0 ? magic : dims[i];
        for (int k = 3; k >= 0; k--) h[len++] = (unsigned char)(v >> (8 * k));
    }
    gzFile g = gzopen(path, gz ? "wb" : "wbT");     /* 'T': plain, no compression */
    cr_assert_not_null(g);
    cr_assert_eq(gzwrite(g, h, (unsigned)len), len);
    if (n) cr_assert_eq(gzwrite(g, data, (unsigned)n), (int)n);
    gzclose(g);
}

Test(idx, images_and_labels)
{
    char dir[256], p[NT_PATH_MAX];
    tmpdir_new(dir);
    unsigned char px[2 * 3 * 4], lab[5] = { 9, 0, 3, 255, 1 };
    for (int i = 0; i < 24; i++) px[i] = (unsigned char)(i * 11);
    for (int gz = 0; gz < 2; gz++) {
        path_join(p, dir, gz ? "img.gz" : "img");
        write_idx(p, gz, 0x803, (uint32_t[]){ 2, 3, 4 }, 3, px, sizeof px);
        if (!gz) {                                  /* really plain */
            size_t n;
            unsigned char *b = slurp(p, &n);
            cr_assert(n == 16 + 24 && b[2] == 8 && b[3] == 3);
            free(b);
        }
        nt_error err = {0};
        nt_array a;
        cr_assert_eq(nt_idx_read(p, &a, &err), NT_OK, "%s", err.msg);
        cr_assert(a.ndim == 3 && a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 4);
        cr_assert(a.size == 24 && a.is_int);
        for (int i = 0; i < 24; i++) cr_assert_eq(a.data[i], i * 11);
        nt_array_free(&a);

        path_join(p, dir, gz ? "lab.gz" : "lab");
        write_idx(p, gz, 0x801, (uint32_t[]){ 5 }, 1, lab, sizeof lab);
        cr_assert_eq(nt_idx_read(p, &a, &err), NT_OK, "%s", err.msg);
        cr_assert(a.ndim == 1 && a.shape[0] == 5 && a.is_int);
        for (int i = 0; i < 5; i++) cr_assert_eq(a.data[i], lab[i]);
        nt_array_free(&a);
    }
}

Test(idx, rejects)
{
    char dir[256], p[NT_PATH_MAX];
    tmpdir_new(dir);
    unsigned char px[1000] = {0};
    nt_error err = {0};
    nt_array a;
    for (int gz = 0; gz < 2; gz++) {
        path_join(p, dir, gz ? "img.gz" : "img");
        write_idx(p, gz, 0x803, (uint32_t[]){ 1000, 28, 28 }, 3, px, 1000);
        assert_err(nt_idx_read(p, &a, &err), NT_EINPUT, &err, &a, p,
                   "truncated: expected 784000 bytes of pixels, got 1000");
        write_idx(p, gz, 0x80D, (uint32_t[]){ 1 }, 1, px, 4);
        assert_err(nt_idx_read(p, &a, &err), NT_EINPUT, &err, &a, p, "bad magic 0x0000080d");
        write_idx(p, gz, 0x801, (uint32_t[]){ 3 }, 1, px, 4);
        assert_err(nt_idx_read(p, &a, &err), NT_EINPUT, &err, &a, p, "bytes after");
        write_idx(p, gz, 0x803, (uint32_t[]){ 0xffffffff, 0xffffffff, 0xffffffff }, 3, px, 10);
        assert_err(nt_idx_read(p, &a, &err), NT_EINPUT, &err, &a, p, "too large");
        write_idx(p, gz, 0x803, (uint32_t[]){ 0x7fffffff, 0x7fffffff }, 2, px, 0);
        assert_err(nt_idx_read(p, &a, &err), NT_EINPUT, &err, &a, p, "truncated header");
        write_idx(p, gz, 0x801, (uint32_t[]){ 0 }, 1, px, 0);
        assert_err(nt_idx_read(p, &a, &err), NT_EINPUT, &err, &a, p, "empty");
    }
    path_join(p, dir, "missing.gz");
    assert_err(nt_idx_read(p, &a, &err), NT_EINPUT, &err, &a, "missing.gz", "cannot open");

    /* a gzip stream cut in the middle */
    path_join(p, dir, "cut.gz");
    unsigned char big[4096];
    for (int i = 0; i < 4096; i++) big[i] = (unsigned char)nt_rand_u64(1, 2, (uint64_t)i);
    write_idx(p, 1, 0x801, (uint32_t[]){ 4096 }, 1, big, sizeof big);
    size_t n;
    unsigned char *b = slurp(p, &n);
    write_bytes(p, b, n / 2);
    free(b);
    assert_err(nt_idx_read(p, &a, &err), NT_EINPUT, &err, &a, "cut.gz",
               "truncated: expected 4096 bytes of labels");
}

#define FMNIST "/usr/share/datasets/fashion-mnist/"

Test(idx, fashion_mnist_t10k)
{
    FILE *f = fopen(FMNIST "t10k-images-idx3-ubyte.gz", "rb");
    if (!f) cr_skip_test("Fashion-MNIST is not installed in " FMNIST);
    fclose(f);
    nt_error err = {0};
    nt_array x, y;
    cr_assert_eq(nt_idx_read(FMNIST "t10k-images-idx3-ubyte.gz", &x, &err), NT_OK, "%s", err.msg);
    cr_assert(x.ndim == 3 && x.shape[0] == 10000 && x.shape[1] == 28 && x.shape[2] == 28);
    double mx = 0;
    for (int64_t i = 0; i < x.size; i++) mx = x.data[i] > mx ? x.data[i] : mx;
    cr_assert(mx > 0 && mx <= 255);
    cr_assert_eq(nt_idx_read(FMNIST "t10k-labels-idx1-ubyte.gz", &y, &err), NT_OK, "%s", err.msg);
    cr_assert(y.ndim == 1 && y.shape[0] == 10000);
    int count[10] = {0};
    for (int64_t i = 0; i < y.size; i++) {
        cr_assert(y.data[i] >= 0 && y.data[i] <= 9 && y.data[i] == (int)y.data[i]);
        count[(int)y.data[i]]++;
    }
    for (int c = 0; c < 10; c++) cr_assert_eq(count[c], 1000, "class %d", c);
    nt_array_free(&x);
    nt_array_free(&y);
}

/* JSON numbers read back as the same doubles (nt_json_print); cJSON's own printing loses an
 * ulp of some (the negative control: 99.368857720419513, a ledger's |theta|^2, printed as
 * 99.3688577204195); integers stay integers, NaN is null. */
Test(io, json_numbers_read_back_exactly)
{
    const double lossy = 99.368857720419513;
    cJSON *one = cJSON_CreateNumber(lossy);
    char *theirs = cJSON_PrintUnformatted(one), *ours = nt_json_print(one, 0);
    cr_expect_neq(strtod(theirs, NULL), lossy, "cJSON printed %s exactly: the control does not bite", theirs);
    cr_expect_eq(strtod(ours, NULL), lossy, "%s", ours);
    free(theirs); free(ours);
    cJSON_Delete(one);

    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "x");
    enum { M = 2000 };
    double x[M];
    for (int i = 0; i < M; i++) {
        x[i] = nt_rand_normal(21, 0, (uint64_t)i) * pow(10, (i % 41) - 20);
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(x[i]));
    }
    cJSON_AddNumberToObject(doc, "d", 269322);
    cJSON_AddNumberToObject(doc, "nan", NAN);
    char *text = nt_json_print(doc, 1);
    cJSON *back = cJSON_Parse(text);
    cr_assert(back, "not JSON: %.200s", text);
    int wrong = 0;
    for (int i = 0; i < M; i++) wrong += cJSON_GetArrayItem(cJSON_GetObjectItem(back, "x"), i)->valuedouble != x[i];
    cr_expect_eq(wrong, 0, "%d of %d numbers came back other doubles", wrong, M);
    cr_expect(strstr(text, "\"d\":\t269322,"), "an integer: %s", strstr(text, "\"d\""));
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(back, "nan")));
    cr_expect_eq(cJSON_GetObjectItem(doc, "d")->valuedouble, 269322, "the caller's document changed");
    free(text);
    cJSON_Delete(back);
    cJSON_Delete(doc);
}
