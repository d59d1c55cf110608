/* test_rows.c: nt_checkpoint_rows (src/dynamics/checkpoint_rows.c), the ledger rows' side
 * file: appended in pieces, recorded in a checkpoint, read back and cut to what the
 * checkpoint vouches for; a damaged or short file is refused (NT_EINPUT). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

static const char all[] = "step,loss\n1,0.5\n2,0.25\n3,0.125\n";

/* rows of `all` appended in two checkpoints (the second's record returned), then a third,
 * unrecorded append */
static nt_checkpoint *two_checkpoints(const char *dir, char *path)
{
    nt_checkpoint_rows r;
    nt_error err = {0};
    path_join(path, dir, "checkpoint.rows");
    nt_checkpoint_rows_init(&r, path, 1);
    cr_assert_eq(nt_checkpoint_rows_append(&r, all, 16, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_checkpoint_rows_append(&r, all, 23, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(r.saved, 23);
    nt_checkpoint *c = nt_checkpoint_new();
    nt_checkpoint_rows_put(c, &r, "cli.rows");
    cr_assert_eq(nt_checkpoint_rows_append(&r, all, strlen(all), &err), NT_OK, "%s", err.msg);
    return c;
}

Test(rows, appended_verified_and_cut)
{
    char dir[256], path[NT_PATH_MAX];
    tmpdir_new(dir);
    nt_checkpoint *c = two_checkpoints(dir, path);
    nt_checkpoint_rows r;
    nt_checkpoint_rows_init(&r, path, 0);
    char *text = NULL;
    size_t len = 0;
    nt_error err = {0};
    cr_assert_eq(nt_checkpoint_rows_load(&r, c, "cli.rows", &text, &len, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(len, 23);
    cr_assert_str_eq(text, "step,loss\n1,0.5\n2,0.25\n");
    cr_assert_eq(r.saved, 23);
    cr_assert_eq(r.hash, nt_hash64(all, 23, NT_HASH_INIT));
    size_t flen;
    char *file = read_file(path, &flen);
    cr_assert_eq(flen, 23, "the unrecorded row is cut");
    free(file);
    free(text);
    nt_checkpoint_free(c);
}

Test(rows, damaged_or_short_refused)
{
    char dir[256], path[NT_PATH_MAX];
    tmpdir_new(dir);
    nt_checkpoint *c = two_checkpoints(dir, path);
    write_text(path, "step,loss\n1,0.5\n2,0.35\n");   /* one byte changed */
    nt_checkpoint_rows r;
    nt_checkpoint_rows_init(&r, path, 0);
    char *text = NULL;
    size_t len = 0;
    nt_error err = {0};
    cr_assert_eq(nt_checkpoint_rows_load(&r, c, "cli.rows", &text, &len, &err), NT_EINPUT);
    cr_assert(strstr(err.msg, "damaged"), "%s", err.msg);
    cr_assert_null(text);
    write_text(path, "step,loss\n1,0.5\n");   /* short */
    cr_assert_eq(nt_checkpoint_rows_load(&r, c, "cli.rows", &text, &len, &err), NT_EINPUT);
    cr_assert(strstr(err.msg, "truncated"), "%s", err.msg);
    remove(path);   /* missing */
    cr_assert_eq(nt_checkpoint_rows_load(&r, c, "cli.rows", &text, &len, &err), NT_EINPUT);
    cr_assert(strstr(err.msg, "cannot open"), "%s", err.msg);
    nt_checkpoint_free(c);
}
