/* test_install.c: noether as a user or a distribution gets it.  Each test installs the
 * build (meson install --destdir into a temporary folder) and then uses only the installed
 * files: the layout, and make uninstall's script removing exactly that; the manual page
 * (man -l) and the bash completion covering every command and flag of --help; a C program
 * compiled with pkg-config computing the gradient the installed binary computes; the
 * installed noether demo and examples, run away from the source tree. */
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include "helpers.h"

#define CMD_MAX (4 * NT_PATH_MAX)
#define DIR_MAX 400   /* the install's folders (under /tmp): room for a file name below them in NT_PATH_MAX */

/* Runs a shell command (printf-style); its stdout into *out (malloc'd) when out is not NULL.
 * Returns the exit code, -1 when it did not exit normally. */
static int sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(char **out, const char *fmt, ...)
{
    char cmd[CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen: %s", cmd);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t got; (got = fread(buf + len, 1, cap - len - 1, p)) > 0;)
        if ((len += got) + 1 == cap) buf = realloc(buf, cap *= 2);
    buf[len] = 0;
    int st = pclose(p);
    if (out) *out = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* An installation: the staging folder, the prefix inside it, and where things went. */
typedef struct {
    char stage[256];               /* DESTDIR */
    char prefix[DIR_MAX];          /* stage + the configured prefix */
    char bin[NT_PATH_MAX];         /* the installed noether */
    char pcdir[DIR_MAX];           /* the folder of noether.pc */
    char manifest[NT_PATH_MAX];    /* meson's install log of this installation */
} install;

/* meson install --destdir into a fresh folder.  Installs of parallel tests share the build
 * folder's install log: a lock keeps each install and the copy of its log together. */
static void install_new(install *in)
{
    tmpdir_new(in->stage);
    char lock[NT_PATH_MAX];
    path_join(lock, NOETHER_BUILD_DIR, "install-test.lock");
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    cr_assert(fd >= 0 && flock(fd, LOCK_EX) == 0, "cannot lock %s", lock);
    int rc = sh(NULL, "meson install -C '%s' --no-rebuild --quiet --destdir '%s' >&2", NOETHER_BUILD_DIR, in->stage);
    cr_assert_eq(rc, 0, "meson install --destdir %s failed (%d)", in->stage, rc);
    path_join(in->manifest, in->stage, "manifest.txt");
    cr_assert_eq(sh(NULL, "cp '%s/meson-logs/install-log.txt' '%s'", NOETHER_BUILD_DIR, in->manifest), 0);
    close(fd);
    /* the prefix as noether.pc says, inside the stage */
    char *pc = NULL;
    cr_assert_eq(sh(&pc, "find '%s' -name noether.pc", in->stage), 0);
    cr_assert(strstr(pc, "/pkgconfig/noether.pc\n"), "no noether.pc installed under %s", in->stage);
    *strstr(pc, "/noether.pc\n") = 0;
    cr_assert_lt(strlen(pc), DIR_MAX, "%s: too long a path for this test", pc);
    snprintf(in->pcdir, sizeof in->pcdir, "%s", pc);
    free(pc);
    char *text = NULL;
    cr_assert_eq(sh(&text, "sed -n 's/^prefix=//p' '%s/noether.pc'", in->pcdir), 0);
    text[strcspn(text, "\n")] = 0;
    cr_assert_lt(strlen(in->stage) + strlen(text), DIR_MAX, "%s%s: too long a path for this test", in->stage, text);
    snprintf(in->prefix, sizeof in->prefix, "%s%s", in->stage, text);
    free(text);
    snprintf(in->bin, sizeof in->bin, "%s/bin/noether", in->prefix);
    cr_assert_eq(access(in->bin, X_OK), 0, "%s: not installed", in->bin);
}

static void install_free(install *in)
{
    sh(NULL, "rm -rf '%s'", in->stage);
}

/* how many lines of the manifest name a file that exists (folders aside) */
static int manifest_files_present(const char *manifest)
{
    char *n = NULL;
    sh(&n, "grep -v '^#' '%s' | while IFS= read -r f; do [ -d \"$f\" ] || [ ! -e \"$f\" ] || echo x; done | wc -l",
       manifest);
    int count = atoi(n);
    free(n);
    return count;
}

Test(install, layout_then_uninstall_removes_exactly_it, .timeout = 300)
{
    install in;
    install_new(&in);
    char *version = NULL;
    cr_assert_eq(sh(&version, "'%s' --version", in.bin), 0);
    char v[64] = {0}, major[16] = {0}, minor[16] = {0};
    cr_assert_eq(sscanf(version, "noether %63s", v), 1, "--version prints '%s'", version);
    cr_assert_eq(sscanf(v, "%15[0-9].%15[0-9]", major, minor), 2, "version '%s'", v);
    /* the soname follows the API: 0.y while the major version is 0, the major after */
    char soname[64];
    snprintf(soname, sizeof soname, "libnoether.so.%s%s%s", major, strcmp(major, "0") ? "" : ".", strcmp(major, "0") ? "" : minor);
    const char *wanted[] = {"bin/noether", "include/noether.h", "share/man/man1/noether.1",
                            "share/bash-completion/completions/noether", "share/noether/examples/README.md",
                            "share/noether/examples/deep_linear.json", "share/doc/noether/README.md",
                            "share/doc/noether/LICENSE", "share/doc/noether/CHANGELOG.md",
                            "share/doc/noether/CITATION.cff", "share/doc/noether/docs/theory.md",
                            "share/doc/noether/docs/interface.md"};
    for (size_t i = 0; i < sizeof wanted / sizeof *wanted; i++) {
        char p[NT_PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", in.prefix, wanted[i]);
        cr_expect_eq(access(p, R_OK), 0, "%s: not installed", wanted[i]);
    }
    const char *libs[] = {"libnoether.a", "libnoether.so", soname};
    for (size_t i = 0; i < 3; i++) {
        char p[NT_PATH_MAX];
        snprintf(p, sizeof p, "%s/../%s", in.pcdir, libs[i]);
        cr_expect_eq(access(p, R_OK), 0, "%s: not installed beside pkgconfig/", libs[i]);
    }
    char *so = NULL;
    cr_assert_eq(sh(&so, "readelf -d '%s/../libnoether.so' | sed -n 's/.*Library soname: \\[\\(.*\\)\\]/\\1/p'", in.pcdir), 0);
    so[strcspn(so, "\n")] = 0;
    cr_expect_str_eq(so, soname, "soname '%s', expected %s for version %s", so, soname, v);
    /* the installed header carries the version written in; the source one takes it from the build */
    char *hdr = NULL, want[96];
    snprintf(want, sizeof want, "#define NT_VERSION \"%s\"\n", v);
    cr_assert_eq(sh(&hdr, "grep '^#define NT_VERSION' '%s/include/noether.h'", in.prefix), 0);
    cr_expect_str_eq(hdr, want);
    free(hdr);
    cr_assert_eq(sh(&hdr, "grep '^#define NT_VERSION' '%s/include/noether.h'", NOETHER_SOURCE_DIR), 0);
    cr_expect_str_neq(hdr, want, "control: the source header does not carry the version");
    free(hdr);
    /* the version's other homes agree with meson.build's: the installed CHANGELOG.md's latest
     * entry and CITATION.cff */
    char *latest = NULL, *cited = NULL;
    cr_assert_eq(sh(&latest, "sed -n 's/^## \\[\\([^]]*\\)\\].*/\\1/p' '%s/share/doc/noether/CHANGELOG.md' | head -1", in.prefix), 0);
    cr_assert_eq(sh(&cited, "sed -n 's/^version: *//p' '%s/share/doc/noether/CITATION.cff'", in.prefix), 0);
    latest[strcspn(latest, "\n")] = 0;
    cited[strcspn(cited, "\n")] = 0;
    cr_expect_str_eq(latest, v, "CHANGELOG.md's latest entry is %s, noether --version %s", latest, v);
    cr_expect_str_eq(cited, v, "CITATION.cff's version is %s, noether --version %s", cited, v);
    free(latest); free(cited);
    /* make uninstall's script: every file of the manifest goes, a file it did not install stays */
    char other[NT_PATH_MAX];
    snprintf(other, sizeof other, "%s/share/doc/noether/notes-of-the-user.txt", in.prefix);
    write_text(other, "mine\n");
    int before = manifest_files_present(in.manifest);
    cr_assert_gt(before, 20, "control: %d installed files present before uninstall", before);
    char copy[NT_PATH_MAX + 8];
    snprintf(copy, sizeof copy, "%s.kept", in.manifest);
    cr_assert_eq(sh(NULL, "cp '%s' '%s'", in.manifest, copy), 0);
    cr_assert_eq(sh(NULL, "'%s/scripts/uninstall.sh' '%s' > /dev/null 2>&1", NOETHER_SOURCE_DIR, in.manifest), 0,
                 "scripts/uninstall.sh %s failed", in.manifest);
    cr_expect_eq(manifest_files_present(copy), 0, "uninstall left installed files behind");
    cr_expect_eq(access(other, R_OK), 0, "uninstall removed a file it did not install");
    char *left = NULL;
    cr_assert_eq(sh(&left, "cd '%s' && find . -type f -o -type l | sort", in.stage), 0);
    char expect[2 * NT_PATH_MAX];
    snprintf(expect, sizeof expect, "./manifest.txt.kept\n.%s/share/doc/noether/notes-of-the-user.txt\n",
             in.prefix + strlen(in.stage));
    cr_expect_str_eq(left, expect, "left after uninstall:\n%s", left);
    free(left); free(so); free(version);
    install_free(&in);
}

/* ------------------------------------------------------------------ manual and completion */

/* 0 while a negative control runs: the gaps it must find are not errors of the installation */
static int log_gaps = 1;
#define GAP(...) do { if (log_gaps) cr_log_error(__VA_ARGS__); } while (0)

#define MAX_CMDS 32
#define MAX_FLAGS 32
typedef struct {
    char name[32];
    char flag[MAX_FLAGS][40];   /* as the usage lines list them: -o, --params, ... */
    int n;
} command_help;

/* the flags of a help text's usage lines (up to the first blank line) */
static void usage_flags(const char *help, command_help *c)
{
    const char *end = strstr(help, "\n\n");
    if (!end) end = help + strlen(help);
    c->n = 0;
    for (const char *p = help; p < end; p++) {
        if (*p != '-' || (p > help && !strchr(" [|", p[-1])) || !(p[1] == '-' || (p[1] >= 'a' && p[1] <= 'z'))) continue;
        size_t len = strspn(p, "-abcdefghijklmnopqrstuvwxyz0123456789");
        int seen = 0;
        for (int i = 0; i < c->n; i++) seen |= strlen(c->flag[i]) == len && !strncmp(c->flag[i], p, len);
        if (!seen && c->n < MAX_FLAGS && len < sizeof c->flag[0]) snprintf(c->flag[c->n++], sizeof c->flag[0], "%.*s", (int)len, p);
        p += len - 1;
    }
}

/* every command of `noether --help` (its "commands:" block) with its flags from its --help */
static int read_help(const char *bin, command_help *cmds)
{
    char *top = NULL;
    cr_assert_eq(sh(&top, "'%s' --help", bin), 0);
    const char *p = strstr(top, "\ncommands:\n");
    cr_assert_not_null(p, "noether --help has no commands: block");
    int n = 0;
    for (p += 11; *p == ' ' && n < MAX_CMDS; p = strchr(p, '\n') + 1) {
        cr_assert_eq(sscanf(p, " %31s", cmds[n].name), 1);
        char *help = NULL;
        cr_assert_eq(sh(&help, "'%s' %s --help", bin, cmds[n].name), 0);
        usage_flags(help, &cmds[n]);
        free(help);
        n++;
    }
    free(top);
    cr_assert_geq(n, 10, "noether --help lists %d commands", n);
    return n;
}

/* 1 when word occurs in [text, end) with no letter, digit or '-' on either side */
static int has_word(const char *text, const char *end, const char *word)
{
    size_t m = strlen(word);
    for (const char *p = strstr(text, word); p && p + m <= end; p = strstr(p + 1, word)) {
        int before = p > text && (strchr("-_", p[-1]) || (p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= '0' && p[-1] <= '9'));
        int after = p[m] && (strchr("-_", p[m]) || (p[m] >= 'a' && p[m] <= 'z') || (p[m] >= '0' && p[m] <= '9'));
        if (!before && !after) return 1;
    }
    return 0;
}

/* What the rendered manual page misses or gets wrong: a command without its section
 * ("   noether CMD" heading), a flag of a command's usage missing from its section, a flag
 * in an EXAMPLES line that its command does not have.  Returns the count, logs each. */
static int manual_gaps(const char *page, const command_help *cmds, int n)
{
    int gaps = 0;
    const char *exit_status = strstr(page, "\nEXIT STATUS\n");
    if (!exit_status || !strstr(page, "\nNAME\n") || !strstr(page, "\nFILES\n")) {
        GAP("manual: no NAME, EXIT STATUS or FILES section");
        return 1 + n;
    }
    for (int i = 0; i < n; i++) {
        char head[64];
        snprintf(head, sizeof head, "\n   noether %s\n", cmds[i].name);
        const char *at = strstr(page, head);
        if (!at) { GAP("manual: no section for 'noether %s'", cmds[i].name); gaps++; continue; }
        const char *end = strstr(at + 1, "\n   noether ");
        if (!end || end > exit_status) end = exit_status;
        for (int f = 0; f < cmds[i].n; f++)
            if (!has_word(at, end, cmds[i].flag[f])) { GAP("manual: noether %s %s missing", cmds[i].name, cmds[i].flag[f]); gaps++; }
    }
    const char *ex = strstr(page, "\nEXAMPLES\n"), *ex_end = ex ? strstr(ex, "\nSEE ALSO\n") : NULL;
    if (!ex || !ex_end) { GAP("manual: no EXAMPLES section"); return gaps + 1; }
    for (const char *line = ex + 10; line < ex_end; line = strchr(line, '\n') + 1) {
        char cmd[32], tok[256];
        int used = 0;
        if (sscanf(line, " noether %31s%n", cmd, &used) != 1) continue;
        const command_help *c = NULL;
        for (int i = 0; i < n; i++) if (!strcmp(cmds[i].name, cmd)) c = &cmds[i];
        if (!c) { GAP("manual: example of an unknown command '%s'", cmd); gaps++; continue; }
        const char *eol = strchr(line, '\n');
        for (const char *p = line + used; p < eol && sscanf(p, " %255s%n", tok, &used) == 1 && tok[0] != '#'; p += used) {
            int known = tok[0] != '-';
            for (int f = 0; f < c->n; f++) known |= !strcmp(tok, c->flag[f]);
            if (!known) { GAP("manual: example 'noether %s %s': no such flag", cmd, tok); gaps++; }
        }
    }
    return gaps;
}

/* What the bash completion misses or invents: the words it offers after "noether " must be
 * every command (and --help, --version), after "noether CMD -" exactly CMD's flags and
 * --help.  Returns the count, logs each. */
static int completion_gaps(const char *script, const command_help *cmds, int n)
{
    static const char call[] = "bash -c 'source \"$0\"; COMP_WORDS=(noether %s); COMP_CWORD=%d; _noether; "
                               "printf \" %%s\" \"${COMPREPLY[@]}\"; echo \" \"' '%s'";
    int gaps = 0;
    char *words = NULL, probe[64];
    if (sh(&words, call, "\"\"", 1, script) != 0) return 1;
    for (int i = 0; i < n; i++) {
        snprintf(probe, sizeof probe, " %s ", cmds[i].name);
        if (!strstr(words, probe)) { GAP("completion: command %s not offered", cmds[i].name); gaps++; }
    }
    if (!strstr(words, " --help ") || !strstr(words, " --version ")) { GAP("completion: --help, --version"); gaps++; }
    free(words);
    for (int i = 0; i < n; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s -", cmds[i].name);
        if (sh(&words, call, args, 2, script) != 0) return gaps + 1;
        int offered = 0, used = 0;
        char word[256];
        for (const char *p = words; sscanf(p, " %255s%n", word, &used) == 1; p += used) offered++;
        for (int f = 0; f < cmds[i].n; f++) {
            snprintf(probe, sizeof probe, " %s ", cmds[i].flag[f]);
            if (!strstr(words, probe)) { GAP("completion: noether %s %s not offered", cmds[i].name, cmds[i].flag[f]); gaps++; }
        }
        if (offered != cmds[i].n + 1)   /* its flags and --help, nothing else */
            { GAP("completion: noether %s - offers %d words, --help has %d:%s", cmds[i].name, offered, cmds[i].n + 1, words); gaps++; }
        free(words);
    }
    return gaps;
}

Test(install, manual_and_completion_cover_every_command_and_flag_of_help, .timeout = 300)
{
    install in;
    install_new(&in);
    command_help cmds[MAX_CMDS];
    int n = read_help(in.bin, cmds);
    char page_path[NT_PATH_MAX], script[NT_PATH_MAX];
    snprintf(page_path, sizeof page_path, "%s/share/man/man1/noether.1", in.prefix);
    snprintf(script, sizeof script, "%s/share/bash-completion/completions/noether", in.prefix);
    char *page = NULL;
    cr_assert_eq(sh(&page, "LC_ALL=C MANWIDTH=200 man -l '%s' 2>&1", page_path), 0, "man -l %s fails", page_path);
    cr_assert_gt(strlen(page), 5000, "man -l renders %zu bytes", strlen(page));
    cr_expect_eq(manual_gaps(page, cmds, n), 0);
    cr_expect_eq(completion_gaps(script, cmds, n), 0);
    /* controls: a page without one flag, with an example of a flag that does not exist, and a
     * completion without one flag are each caught */
    log_gaps = 0;
    char *doctored = strdup(page);
    for (char *p = strstr(doctored, "--each-generator"); p; p = strstr(p, "--each-generator")) memcpy(p, "--each-GENERATOR", 16);   /* the flag renamed away */
    cr_expect_geq(manual_gaps(doctored, cmds, n), 1, "control: a flag missing from the page");
    free(doctored);
    const char *ex = strstr(page, "   noether info --json");
    cr_assert_not_null(ex, "the example 'noether info --json' is gone: choose another control");
    doctored = strdup(page);
    memcpy(doctored + (ex - page), "   noether info --jsan", 22);
    cr_expect_geq(manual_gaps(doctored, cmds, n), 1, "control: an example with a flag that does not exist");
    free(doctored);
    char bad[NT_PATH_MAX + 8];
    snprintf(bad, sizeof bad, "%s.bad", script);
    cr_assert_eq(sh(NULL, "sed 's/ --deflate / /' '%s' > '%s'", script, bad), 0);
    cr_expect_geq(completion_gaps(bad, cmds, n), 1, "control: a flag missing from the completion");
    log_gaps = 1;
    free(page);
    install_free(&in);
}

/* ------------------------------------------------------------------ using the installed files */

/* A user's program: the gradient of the built-in default at its seeded theta (theta[0]
 * moved by argv[2] when given), written to argv[1]; NT_VERSION on stdout. */
static const char user_program[] =
    "#include <stdio.h>\n#include <stdlib.h>\n#include <noether.h>\n"
    "static nt_spec spec;\n"
    "int main(int argc, char **argv)\n{\n"
    "    nt_error err = {0};\n    nt_data data;\n"
    "    if (nt_spec_parse(nt_default_spec_json(), \"<built-in default>\", &spec, &err) || nt_data_load(&spec, &data, &err))\n"
    "        { fprintf(stderr, \"%s\\n\", err.msg); return 1; }\n"
    "    const int64_t d = spec.model.d, n = data.train.n;\n"
    "    double *theta = malloc(sizeof(double) * (size_t)d), *g = malloc(sizeof(double) * (size_t)d);\n"
    "    if (nt_spec_theta(&spec, NULL, 0, theta, &err)) { fprintf(stderr, \"%s\\n\", err.msg); return 1; }\n"
    "    if (argc > 2) theta[0] += atof(argv[2]);\n"
    "    nt_engine *e = nt_engine_new(&spec.model, n < NT_ENGINE_CHUNK ? n : NT_ENGINE_CHUNK, 1);\n"
    "    double loss;\n"
    "    if (nt_grad(e, theta, &data.train, &loss, g, &err)) { fprintf(stderr, \"%s\\n\", err.msg); return 1; }\n"
    "    if (nt_npy_write(argv[1], g, 1, &d, &err)) { fprintf(stderr, \"%s\\n\", err.msg); return 1; }\n"
    "    printf(\"%s\\n\", NT_VERSION);\n"
    "    nt_engine_free(e); free(theta); free(g); nt_data_free(&data); nt_spec_free(&spec);\n"
    "    return 0;\n}\n";

/* the largest |a - b| over two (d,) NPY files, relative to the largest |b| */
static double npy_rel_diff(const char *a_path, const char *b_path)
{
    nt_array a, b;
    nt_error err;
    cr_assert_eq(nt_npy_read(a_path, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(nt_npy_read(b_path, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(a.size, b.size, "%s and %s differ in size", a_path, b_path);
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < a.size; i++) {
        diff = fmax(diff, fabs(a.data[i] - b.data[i]));
        scale = fmax(scale, fabs(b.data[i]));
    }
    nt_array_free(&a);
    nt_array_free(&b);
    return diff / scale;
}

Test(install, c_program_with_pkg_config_computes_the_binarys_gradient, .timeout = 300)
{
    install in;
    install_new(&in);
    char src[NT_PATH_MAX], prog[NT_PATH_MAX], mine[NT_PATH_MAX], moved[NT_PATH_MAX], theirs[NT_PATH_MAX];
    path_join(src, in.stage, "user.c");
    path_join(prog, in.stage, "user");
    path_join(mine, in.stage, "g_user.npy");
    path_join(moved, in.stage, "g_moved.npy");
    path_join(theirs, in.stage, "g_noether.npy");
    write_text(src, user_program);
    /* the installed prefix is relocated (it was configured for the real one): pkg-config's
     * --define-variable points noether.pc at it */
    char pkg[2 * NT_PATH_MAX];
    snprintf(pkg, sizeof pkg, "PKG_CONFIG_PATH='%s' pkg-config --define-variable=prefix='%s'", in.pcdir, in.prefix);
    char *libdir = NULL;
    cr_assert_eq(sh(&libdir, "%s --variable=libdir noether", pkg), 0);
    libdir[strcspn(libdir, "\n")] = 0;
#ifdef __SANITIZE_ADDRESS__
    const char *san = "-fsanitize=address,undefined";   /* the library of a sanitized build needs the runtime first */
#else
    const char *san = "";
#endif
    int rc = sh(NULL, "cc -std=gnu11 -Wall -Werror %s '%s' -o '%s' $(%s --cflags --libs noether) -Wl,-rpath,'%s' >&2", san, src,
                prog, pkg, libdir);
    cr_assert_eq(rc, 0, "cc with pkg-config --cflags --libs noether failed");
    char *needed = NULL;
    cr_assert_eq(sh(&needed, "readelf -d '%s' | grep -o 'libnoether[^]]*'", prog), 0);
    char *version = NULL, *printed = NULL;
    cr_assert_eq(sh(&version, "'%s' --version", in.bin), 0);
    cr_assert_eq(sh(&printed, "cd '%s' && OPENBLAS_NUM_THREADS=1 '%s' '%s'", in.stage, prog, mine), 0, "the user's program failed");
    char want[96];
    snprintf(want, sizeof want, "noether %s", printed);
    cr_expect_str_eq(version, want, "NT_VERSION of the installed header against noether --version");
    cr_expect(strncmp(needed, "libnoether.so.", 14) == 0, "the program links %s, not the soname", needed);
    cr_assert_eq(sh(NULL, "cd '%s' && OPENBLAS_NUM_THREADS=1 '%s' grad --out '%s' > /dev/null", in.stage, in.bin, theirs), 0);
    double same = npy_rel_diff(mine, theirs);
    cr_log_info("the user's program's gradient against the installed noether grad's: %.3g relative", same);
    cr_expect_leq(same, 1e-12, "the gradients differ by %g", same);
    /* control: the gradient at a theta moved by 1e-3 in one coordinate is not the binary's */
    cr_assert_eq(sh(NULL, "cd '%s' && OPENBLAS_NUM_THREADS=1 '%s' '%s' 1e-3 > /dev/null", in.stage, prog, moved), 0);
    double other = npy_rel_diff(moved, theirs);
    cr_expect_gt(other, 1e-6, "control: the moved theta's gradient differs by only %g", other);
    free(libdir); free(needed); free(version); free(printed);
    install_free(&in);
}

Test(install, demo_and_examples_run_from_the_prefix_alone, .timeout = 600)
{
    install in;
    install_new(&in);
    char out[NT_PATH_MAX], report[NT_PATH_MAX];
    path_join(out, in.stage, "demo");
    path_join(report, out, "report.html");
    /* from a folder outside the source tree, with nothing of it on any path */
    int rc = sh(NULL, "cd '%s' && env -u NOETHER_SOURCE_DIR OPENBLAS_NUM_THREADS=1 '%s' demo -o '%s' --quiet >&2", in.stage, in.bin, out);
    cr_assert_eq(rc, 0, "the installed noether demo failed (%d)", rc);
    cr_expect_eq(access(report, R_OK), 0, "%s: not written", report);
    char *examples = NULL;
    cr_assert_eq(sh(&examples, "ls '%s/share/noether/examples/'*.json", in.prefix), 0);
    int checked = 0;
    const char *names[] = {"deep_linear.json", "lyu_li_margin.json", "collapsed_units.json"};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_not_null(strstr(examples, names[i]), "%s: not installed", names[i]);
        rc = sh(NULL, "cd '%s' && '%s' check '%s/share/noether/examples/%s' > /dev/null", in.stage, in.bin, in.prefix, names[i]);
        cr_expect_eq(rc, 0, "noether check of the installed %s: exit %d", names[i], rc);
        checked++;
    }
    cr_expect_eq(checked, 3);
#ifndef __SANITIZE_ADDRESS__   /* ASan records the source files of globals; a release build holds no path */
    char *hits = NULL;
    sh(&hits, "grep -l -F '%s' '%s' '%s'/../libnoether.so '%s'/../libnoether.a; true", NOETHER_SOURCE_DIR, in.bin, in.pcdir, in.pcdir);
    cr_expect_str_eq(hits, "", "files that hold the source tree's path %s:\n%s", NOETHER_SOURCE_DIR, hits);
    free(hits);
    /* control: this test binary holds it (NOETHER_SOURCE_DIR is compiled in) */
    cr_expect_eq(sh(NULL, "grep -q -F '%s' /proc/%d/exe", NOETHER_SOURCE_DIR, (int)getpid()), 0,
                 "control: the test binary holds the source path");
#endif
    free(examples);
    install_free(&in);
}

Test(install, python_module_imports_from_the_prefix, .timeout = 300)
{
    install in;
    install_new(&in);
    char *init = NULL;
    cr_assert_eq(sh(&init, "find '%s' -path '*/noether/__init__.py' ! -path '*/share/*'", in.stage), 0);
    cr_assert(strstr(init, "/noether/__init__.py\n"), "the Python module is not installed under %s", in.stage);
    *strstr(init, "/noether/__init__.py\n") = 0;   /* the site-packages folder */
    char example[NT_PATH_MAX], mine[NT_PATH_MAX], moved[NT_PATH_MAX], theirs[NT_PATH_MAX];
    snprintf(example, sizeof example, "%s/share/noether/examples/deep_linear.json", in.prefix);
    path_join(mine, in.stage, "g_python.npy");
    path_join(moved, in.stage, "g_python_moved.npy");
    path_join(theirs, in.stage, "g_noether.npy");
    /* import noether from the prefix alone (not from the build), its version, its gradient of
     * an installed example, and the same at theta moved by 1e-3 in one coordinate (control) */
#ifdef __SANITIZE_ADDRESS__   /* a sanitized extension in the plain interpreter: the runtimes first, Python's own leaks aside */
    const char *python = "LD_PRELOAD=\"$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)\" "
                         "ASAN_OPTIONS=detect_leaks=0 /usr/bin/python3";
#else
    const char *python = "/usr/bin/python3";
#endif
    char *said = NULL;
    int rc = sh(&said, "cd '%s' && OPENBLAS_NUM_THREADS=1 PYTHONPATH='%s' %s -c '"
                "import sys, numpy as np, noether\n"
                "p = noether.load(sys.argv[1]); L, g = p.grad(); np.save(sys.argv[2], g)\n"
                "t = p.theta.copy(); t[0] += 1e-3; L, g = p.grad(t); np.save(sys.argv[3], g)\n"
                "print(noether.__file__); print(noether.__version__)' '%s' '%s' '%s'",
                in.stage, init, python, example, mine, moved);
    cr_assert_eq(rc, 0, "import noether from %s failed", init);
    char file[NT_PATH_MAX], version[64], *bin_version = NULL, want[96];
    cr_assert_eq(sscanf(said, "%1023s %63s", file, version), 2, "python printed '%s'", said);
    cr_expect_eq(strncmp(file, in.stage, strlen(in.stage)), 0, "noether was imported from %s, not the prefix", file);
    cr_assert_eq(sh(&bin_version, "'%s' --version", in.bin), 0);
    snprintf(want, sizeof want, "noether %s\n", version);
    cr_expect_str_eq(bin_version, want, "noether.__version__ against noether --version");
    cr_assert_eq(sh(NULL, "cd '%s' && OPENBLAS_NUM_THREADS=1 '%s' grad '%s' --out '%s' > /dev/null", in.stage, in.bin, example, theirs), 0);
    double same = npy_rel_diff(mine, theirs), other = npy_rel_diff(moved, theirs);
    cr_expect_leq(same, 1e-12, "the installed module's gradient differs from noether grad's by %g", same);
    cr_expect_gt(other, 1e-6, "control: the moved theta's gradient differs by only %g", other);
    free(init); free(said); free(bin_version);
    install_free(&in);
}
