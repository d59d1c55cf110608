/* test_registry.c: every layer kind has a complete registry entry (src/model/registry.h),
 * and what the sites derive from it agrees: for each kind, its entry's example spec parses
 * into a model holding a layer of that kind; the tensors tile [0, d) with no gap or overlap;
 * every layer has a description and an `info --json` object; the tape's parameter offsets
 * are the model's tensors', each tensor read by exactly one node.  Each checker has a
 * negative control: an incomplete entry, a shifted tensor, a tape offset off by one. */
#define _GNU_SOURCE   /* strcasestr */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <criterion/criterion.h>
#include "helpers.h"
#include "../src/model/registry.h"
#include "../src/engine/tape.h"

/* why the entry is incomplete into why ("" when complete); 1 when complete */
static int entry_complete(const nt_layer_info *R, nt_layer_kind k, char *why, size_t cap)
{
    why[0] = 0;
    if (!R) snprintf(why, cap, "no entry");
    else if (R->kind != k) snprintf(why, cap, "entry of kind %d filed under %d", (int)R->kind, (int)k);
    else if (!R->name || !R->name[0]) snprintf(why, cap, "no name");
    else if (!R->keys || !R->aliases) snprintf(why, cap, "no key list or alias list");
    else if (R->key && (!R->keys[0] || strcmp(R->keys[0], R->key))) snprintf(why, cap, "its key is not first in its keys");
    else if (R->key && (!R->form || !R->form[0])) snprintf(why, cap, "no form for messages");
    else if (!R->example || !R->example[0]) snprintf(why, cap, "no example");
    else if (!R->shape || !R->tape || !R->describe || !R->to_json) snprintf(why, cap, "a function missing");
    else if (R->key && !R->parse && k != NT_LAYER_BRANCH) snprintf(why, cap, "a key but no parse");
    return why[0] == 0;
}

/* 1 when m's tensors tile [0, d) in order, each of the size its shape says */
static int tensors_tile(const nt_model *m, char *why, size_t cap)
{
    int64_t end = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const nt_tensor *T = &m->tensors[t];
        int64_t size = 1;
        for (int a = 0; a < T->ndim; a++) size *= T->shape[a];
        if (T->offset != end || size != T->size || size <= 0) {
            snprintf(why, cap, "tensor %s at %lld of size %lld (shape gives %lld), expected at %lld", T->name,
                     (long long)T->offset, (long long)T->size, (long long)size, (long long)end);
            return 0;
        }
        end += T->size;
    }
    if (end != m->d) { snprintf(why, cap, "the tensors end at %lld, d = %lld", (long long)end, (long long)m->d); return 0; }
    return 1;
}

/* 1 when every parameter offset of the tape is the start of a tensor of the node's layer and
 * every tensor is read by exactly one offset */
static int tape_reads_tensors(const nt_model *m, const nt_engine *e, char *why, size_t cap)
{
    int *reads = calloc((size_t)m->n_tensors + 1, sizeof *reads);
    int ok = 1;
    for (int i = 0; i < e->n_nodes && ok; i++) {
        const nt_node *p = &e->nodes[i];
        if (p->op == NT_OP_INPUT || p->op == NT_OP_LOSS || (p->off_w < 0 && p->off_b < 0)) continue;
        if (p->op != NT_OP_DENSE && p->op != NT_OP_CONV && p->op != NT_OP_NORM && p->op != NT_OP_BNORM) continue;
        const int64_t off[2] = { p->off_w, p->off_b };
        for (int r = 0; r < 2 && ok; r++) {
            if (off[r] < 0) continue;
            int found = -1;
            for (int t = 0; t < m->n_tensors; t++)
                if (m->tensors[t].offset == off[r] && &m->layers[m->tensors[t].layer] == p->layer) found = t;
            if (found < 0) {
                snprintf(why, cap, "node %d reads offset %lld, no tensor of its layer starts there", i, (long long)off[r]);
                ok = 0;
            } else {
                reads[found]++;
            }
        }
    }
    for (int t = 0; t < m->n_tensors && ok; t++)
        if (reads[t] != 1) {
            snprintf(why, cap, "tensor %s read by %d nodes", m->tensors[t].name, reads[t]);
            ok = 0;
        }
    free(reads);
    return ok;
}

/* the example of kind k's entry as a whole spec, parsed */
static void parse_example(const nt_layer_info *R, nt_spec *s)
{
    char json[2048];
    nt_error err = {0};
    snprintf(json, sizeof json, "{\"model\": %s, \"data\": {\"source\": \"teacher\"}}", R->example);
    cr_assert_eq(nt_spec_parse(json, "example.json", s, &err), NT_OK, "%s: example does not parse: %s", R->name, err.msg);
}

Test(registry, every_kind_has_a_complete_entry)
{
    char why[256];
    for (int k = 0; k < NT_LAYER_COUNT; k++) {
        const nt_layer_info *R = nt_layer_registry((nt_layer_kind)k);
        cr_expect(entry_complete(R, (nt_layer_kind)k, why, sizeof why), "layer kind %d: %s", k, why);
    }
    /* negative control: the same entry with its description removed, or filed under another kind */
    nt_layer_info broken = *nt_layer_registry(NT_LAYER_DENSE);
    broken.describe = NULL;
    cr_expect_not(entry_complete(&broken, NT_LAYER_DENSE, why, sizeof why), "an entry without describe passed");
    cr_expect_not(entry_complete(nt_layer_registry(NT_LAYER_DENSE), NT_LAYER_ACT, why, sizeof why),
                  "an entry filed under another kind passed");
    cr_expect_null(nt_layer_registry(NT_LAYER_COUNT), "an entry past the last kind");
}

/* every kind, through its example: the kind is there, the layout tiles, every layer is
 * described, the tape reads the model's tensors */
Test(registry, every_kind_parses_shapes_lays_out_and_tapes)
{
    char why[256];
    for (int k = 0; k < NT_LAYER_COUNT; k++) {
        const nt_layer_info *R = nt_layer_registry((nt_layer_kind)k);
        cr_assert_not_null(R, "layer kind %d has no entry", k);
        nt_spec s;
        parse_example(R, &s);
        const nt_model *m = &s.model;
        int has = 0;
        for (int i = 0; i < m->n_layers; i++) {
            const nt_layer *L = &m->layers[i];
            const nt_layer_info *E = nt_layer_registry(L->kind);
            char phrase[160] = "";
            E->describe(L, phrase, sizeof phrase);
            cJSON *o = cJSON_CreateObject();
            E->to_json(L, o);
            cr_expect(strlen(phrase) > 3, "%s: layer %d has an empty description", R->name, i);
            cr_expect_not_null(o->child, "%s: layer %d has an empty info --json object", R->name, i);
            cJSON_Delete(o);
            int n_t;
            nt_layer_tensors(m, i, &n_t);
            cr_expect(E->tensors || n_t == 0, "%s: layer %d has tensors but no tensors function", R->name, i);
            cr_expect_leq(n_t, NT_LAYER_MAX_TENSORS, "%s: layer %d", R->name, i);
            has |= L->kind == (nt_layer_kind)k;
        }
        cr_expect(has, "%s: its example holds no layer of its kind", R->name);
        cr_expect(m->d > 0, "%s: its example has no parameters", R->name);
        cr_expect(tensors_tile(m, why, sizeof why), "%s: %s", R->name, why);
        nt_engine *e = nt_engine_new(m, 4, 2);
        cr_assert_not_null(e, "%s: no engine", R->name);
        cr_expect(tape_reads_tensors(m, e, why, sizeof why), "%s: %s", R->name, why);
        nt_engine_free(e);
        nt_spec_free(&s);
    }
}

/* negative controls of the two layout checks on the attention example (four tensors) */
Test(registry, the_layout_checks_fail_on_a_broken_layout)
{
    char why[256];
    nt_spec s;
    parse_example(nt_layer_registry(NT_LAYER_ATTENTION), &s);
    nt_model *m = &s.model;
    nt_engine *e = nt_engine_new(m, 4, 1);
    cr_assert(tensors_tile(m, why, sizeof why) && tape_reads_tensors(m, e, why, sizeof why), "%s", why);
    m->tensors[1].offset += 1;   /* a gap after the first tensor */
    cr_expect_not(tensors_tile(m, why, sizeof why), "a gap in the layout passed");
    cr_expect_not(tape_reads_tensors(m, e, why, sizeof why), "a tape reading a shifted tensor passed");
    m->tensors[1].offset -= 1;
    for (int i = 1; i < e->n_nodes; i++)
        if (e->nodes[i].op == NT_OP_DENSE && e->nodes[i].off_b >= 0) { e->nodes[i].off_b = -1; break; }   /* a bias no node reads */
    cr_expect_not(tape_reads_tensors(m, e, why, sizeof why), "a tensor read by no node passed");
    nt_engine_free(e);
    nt_spec_free(&s);
}

/* the activations' traits, stated once (nt_act_traits), against their definitions:
 * sigma(c z) = c^p sigma(z) for c > 0, sigma(-z) = -sigma(z), sigma(-z) = sigma(z), exactly
 * at a few points; a trait not claimed must fail at one of them (tanh is not homogeneous,
 * relu neither odd nor even: the controls) */
Test(registry, activation_traits_match_the_functions)
{
    const double z[] = { -1.7, -0.3, 0.4, 2.2 }, c = 1.5;
    for (int a = 0; a < NT_ACT_COUNT; a++) {
        const nt_traits t = nt_act_traits((nt_act)a);
        int hom1 = 1, hom2 = 1, odd = 1, even = 1, lin = 1;   /* degree 1, degree 2, ... hold at every z */
        for (size_t i = 0; i < sizeof z / sizeof z[0]; i++) {
            double s, sc, sm;
            nt_act_eval((nt_act)a, 0.1, z[i], &s, NULL, NULL);
            nt_act_eval((nt_act)a, 0.1, c * z[i], &sc, NULL, NULL);
            nt_act_eval((nt_act)a, 0.1, -z[i], &sm, NULL, NULL);
            const double scale = 1e-14 * (1 + fabs(s) + fabs(sc));
            hom1 &= fabs(sc - c * s) <= scale;
            hom2 &= fabs(sc - c * c * s) <= scale;
            odd &= fabs(sm + s) <= scale;
            even &= fabs(sm - s) <= scale;
            lin &= fabs(s - z[i]) <= scale;
        }
        cr_expect_eq(hom1, t.degree == 1, "%s: degree %g claimed, degree 1 holds: %d", nt_act_name((nt_act)a), t.degree, hom1);
        cr_expect_eq(hom2, t.degree == 2, "%s: degree %g claimed, degree 2 holds: %d", nt_act_name((nt_act)a), t.degree, hom2);
        cr_expect_eq(odd, t.odd, "%s: odd claimed %d, holds %d", nt_act_name((nt_act)a), t.odd, odd);
        cr_expect_eq(even, t.even, "%s: even claimed %d, holds %d", nt_act_name((nt_act)a), t.even, even);
        cr_expect_eq(lin, t.linear, "%s: linear claimed %d, holds %d", nt_act_name((nt_act)a), t.linear, lin);
    }
}

/* docs/adding-a-layer.md walks through what a new kind touches: every file it names in
 * backticks exists, and every nt_/NT_ name it cites is declared or defined in the files a
 * new kind touches (the running example's own names, *rmsnorm*, excepted); the control: a
 * name that is nowhere is reported */
static char *slurp(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", NOETHER_SOURCE_DIR, rel);
    size_t n;
    char *s = read_file(path, &n);
    cr_assert_not_null(s, "cannot read %s", path);
    return s;
}

static int cited_somewhere(const char *name, char *const *texts, int n)
{
    for (int i = 0; i < n; i++)
        if (strstr(texts[i], name)) return 1;
    return 0;
}

Test(registry, the_walkthrough_names_real_files_and_tables)
{
    const char *touched[] = { "include/noether.h", "src/model/registry.h", "src/model/registry.c", "src/model/act.c",
                              "src/engine/tape.h", "src/engine/op_table.c", "src/engine/tape_layers.c",
                              "src/spec/spec_internal.h", "tests/helpers.h" };
    enum { N_TOUCHED = sizeof touched / sizeof touched[0] };
    char *texts[N_TOUCHED];
    for (int i = 0; i < N_TOUCHED; i++) texts[i] = slurp(touched[i]);
    char *doc = slurp("docs/adding-a-layer.md");
    int files = 0, names = 0;
    for (char *p = strchr(doc, '`'); p; p = strchr(p + 1, '`')) {
        char *end = strchr(p + 1, '`');
        if (!end) break;
        char tok[256];
        snprintf(tok, sizeof tok, "%.*s", (int)(end - p - 1) < 255 ? (int)(end - p - 1) : 255, p + 1);
        p = end;
        if (!strncmp(tok, "src/", 4) || !strncmp(tok, "tests/", 6) || !strncmp(tok, "include/", 8) ||
            !strncmp(tok, "docs/", 5)) {
            if (strchr(tok, '<')) continue;   /* a pattern: ops_<kind>.c */
            char path[1024];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", NOETHER_SOURCE_DIR, tok);
            cr_expect_eq(stat(path, &st), 0, "docs/adding-a-layer.md names %s, which does not exist", tok);
            files++;
        } else if ((!strncmp(tok, "nt_", 3) || !strncmp(tok, "NT_", 3)) && !strcasestr(tok, "rmsnorm")) {
            tok[strcspn(tok, " (")] = 0;
            cr_expect(cited_somewhere(tok, texts, N_TOUCHED), "docs/adding-a-layer.md cites %s, defined nowhere", tok);
            names++;
        }
    }
    cr_expect_geq(files, 10, "only %d files named", files);
    cr_expect_geq(names, 15, "only %d names cited", names);
    cr_expect_not(cited_somewhere("nt_tape_groupnorm", texts, N_TOUCHED), "control: a name that is nowhere was found");
    for (int i = 0; i < N_TOUCHED; i++) free(texts[i]);
    free(doc);
}
