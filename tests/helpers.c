/* helpers.c: see helpers.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <criterion/criterion.h>
#include "helpers.h"

void tmpdir_new(char *buf)
{
    strcpy(buf, "/tmp/noether-test-XXXXXX");
    cr_assert_not_null(mkdtemp(buf), "mkdtemp failed");
}

void path_join(char *buf, const char *dir, const char *name)
{
    snprintf(buf, NT_PATH_MAX, "%s/%s", dir, name);
}

void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

int run_noether(const char *args, char **out, char **err)
{
    char dir[256], o[NT_PATH_MAX], e[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(o, dir, "stdout");
    path_join(e, dir, "stderr");
    size_t len = strlen(args) + 3 * NT_PATH_MAX;
    char *cmd = malloc(len);
    snprintf(cmd, len, "%s %s >%s 2>%s </dev/null", NOETHER_BIN, args, o, e);
    int st = system(cmd);
    free(cmd);
    if (out) *out = slurp(o);
    if (err) *err = slurp(e);
    remove(o);
    remove(e);
    remove(dir);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void fill_normal(double *x, int64_t n, double scale, uint64_t stream)
{
    for (int64_t i = 0; i < n; i++) x[i] = scale * nt_rand_normal(12345, stream, (uint64_t)i);
}
