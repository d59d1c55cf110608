/* test_docs.c: the repository carries its own theory.  No source, header or markdown file
 * cites the mathematics or the interface outside the repository (the old shared sheets, whose
 * names are spelled below in two pieces so that this file does not cite them), and every
 * equation label that src/ and include/ cite, like (F3) or (S1gamma), is defined in
 * docs/theory.md: it ends a line there, as an equation's label does. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <criterion/criterion.h>

#define MAX_FILES 4096

typedef struct {
    char *path[MAX_FILES];
    int n;
} file_list;

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* every .c, .h and .md file under dir, skipping hidden folders and build folders */
static void collect(const char *dir, file_list *fl)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        const char *name = ent->d_name;
        if (name[0] == '.' || strncmp(name, "build", 5) == 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        struct stat st;
        if (lstat(path, &st)) continue;
        if (S_ISDIR(st.st_mode)) collect(path, fl);
        else if (S_ISREG(st.st_mode) && (has_suffix(name, ".c") || has_suffix(name, ".h") || has_suffix(name, ".md")))
            if (fl->n < MAX_FILES) fl->path[fl->n++] = strdup(path);
    }
    closedir(d);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
    size_t got = n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    buf[got] = 0;
    fclose(f);
    return buf;
}

/* the 1-based line of offset off in text */
static int line_of(const char *text, const char *at)
{
    int line = 1;
    for (const char *p = text; p < at; p++) line += *p == '\n';
    return line;
}

Test(docs, no_citation_of_sheets_outside_the_repository)
{
    static const char *const outside[] = {"THEORY" ".md", "INTERFACE" ".md"};
    file_list fl = {0};
    collect(NOETHER_SOURCE_DIR, &fl);
    cr_assert_gt(fl.n, 50, "only %d source, header and markdown files under %s", fl.n, NOETHER_SOURCE_DIR);
    int found = 0;
    for (int i = 0; i < fl.n; i++) {
        char *text = slurp(fl.path[i]);
        cr_assert(text, "%s: cannot read", fl.path[i]);
        for (int k = 0; k < 2; k++)
            for (const char *at = strstr(text, outside[k]); at; at = strstr(at + 1, outside[k])) {
                cr_log_error("%s:%d cites %s, which is not in the repository (docs/theory.md, docs/interface.md)",
                             fl.path[i] + strlen(NOETHER_SOURCE_DIR) + 1, line_of(text, at), outside[k]);
                found++;
            }
        free(text);
        free(fl.path[i]);
    }
    cr_expect_eq(found, 0, "%d citations of sheets outside the repository", found);
}

/* An equation label at p: '(' then F, S or D, a digit, optionally gamma spelled "gamma", "γ" or
 * "&gamma;", then ')'.  Writes the label with γ into out (size >= 16); returns its length in
 * the text, 0 when p holds none. */
static int label_at(const char *p, char *out)
{
    if (p[0] != '(' || !strchr("FSD", p[1]) || p[1] == 0 || p[2] < '0' || p[2] > '9') return 0;
    static const char *const gammas[] = {"gamma", "\xce\xb3", "&gamma;"};
    int len = 3, gamma = 0;
    for (int g = 0; g < 3 && !gamma; g++)
        if (strncmp(p + 3, gammas[g], strlen(gammas[g])) == 0) { len += (int)strlen(gammas[g]); gamma = 1; }
    if (p[len] != ')') return 0;
    snprintf(out, 16, "(%c%c%s)", p[1], p[2], gamma ? "\xce\xb3" : "");
    return len + 1;
}

/* label (with γ) ends a line of theory, trailing blanks aside */
static int defined(const char *theory, const char *label)
{
    size_t n = strlen(label);
    for (const char *at = strstr(theory, label); at; at = strstr(at + 1, label)) {
        const char *q = at + n;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q == '\n' || *q == 0) return 1;
    }
    return 0;
}

Test(docs, every_equation_label_cited_in_the_code_is_defined_in_theory)
{
    char *theory = slurp(NOETHER_SOURCE_DIR "/docs/theory.md");
    cr_assert(theory, "docs/theory.md: missing");
    file_list fl = {0};
    collect(NOETHER_SOURCE_DIR "/src", &fl);
    collect(NOETHER_SOURCE_DIR "/include", &fl);
    cr_assert_gt(fl.n, 40, "only %d files under src/ and include/", fl.n);
    char seen[64][16];
    int n_seen = 0, missing = 0;
    for (int i = 0; i < fl.n; i++) {
        char *text = slurp(fl.path[i]);
        cr_assert(text, "%s: cannot read", fl.path[i]);
        for (const char *p = text; *p; p++) {
            char label[16];
            int len = label_at(p, label);
            if (!len) continue;
            int known = 0;
            for (int s = 0; s < n_seen && !known; s++) known = strcmp(seen[s], label) == 0;
            if (!known && n_seen < 64) strcpy(seen[n_seen++], label);
            if (!known && !defined(theory, label)) {
                cr_log_error("%s:%d cites %s, which docs/theory.md does not define (no line ends with it)",
                             fl.path[i] + strlen(NOETHER_SOURCE_DIR) + 1, line_of(text, p), label);
                missing++;
            }
            p += len - 1;
        }
        free(text);
        free(fl.path[i]);
    }
    free(theory);
    /* the code cites at least (F1) (F2) (F3) (S1) (S2) (D1) and gamma forms: a scan that finds
     * fewer is broken, not clean */
    cr_assert_geq(n_seen, 8, "only %d distinct equation labels found in src/ and include/", n_seen);
    cr_expect_eq(missing, 0, "%d equation labels cited in the code are not defined in docs/theory.md", missing);
}
