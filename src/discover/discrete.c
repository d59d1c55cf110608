/* discrete.c: which permutations and sign flips of hidden units are symmetries, found from
 * the outputs (docs/theory.md §7): a map T of the parameters is a symmetry when
 * f(T theta; x) = f(theta; x) for every x and theta, tested on random inputs at theta and at
 * three random points theta + rms(theta) z, z ~ N(0, I) (theta alone can be special: a
 * normalization's gains are all 1 at initialization, which makes its units exchangeable).  Searched: the units of every hidden dense layer (its row of W_l and
 * bias, its column of the reader), exchanged in pairs (the transpositions found generate a
 * product of symmetric groups, one per orbit of units: order prod_orbits |orbit|!) and
 * negated, all three parts (odd activations) or the inputs only (even ones).  What the
 * catalogue's discrete entries do not generate is reported missing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "noether.h"
#include "../transform/units.h"

enum { POINTS = 4 };   /* theta and three random points near it */

typedef struct {
    nt_engine *e;
    const nt_model *m;
    nt_dataset ds;
    int64_t d, NK;
    double *pts;       /* POINTS x d */
    double *F0;        /* POINTS x NK: the outputs at the points */
    double *th, *F;    /* a mapped point and its outputs */
    double scale;      /* max |f| over the points */
} probe;

/* the map on one vector: units a and b of hidden layer l exchanged (b >= 0), or unit a
 * negated (b = -1: all three parts; b = -2: its inputs only, row and bias) */
static void unit_map(const nt_dense *D, int l, int a, int b, double *x)
{
    nt_range ra[3], rb[3];
    nt_unit_ranges(D, l, a, ra);
    if (b >= 0) nt_unit_ranges(D, l, b, rb);
    for (int role = 0; role < 3; role++) {
        if (b == -2 && role == 2) break;
        for (int64_t i = 0; i < ra[role].count; i++) {
            const int64_t p = nt_at(&ra[role], i);
            if (b < 0) { x[p] = -x[p]; continue; }
            const int64_t q = nt_at(&rb[role], i);
            const double t = x[p];
            x[p] = x[q];
            x[q] = t;
        }
    }
}

/* 1 when the map leaves the outputs unchanged at every point */
static int symmetric(probe *P, const nt_dense *D, int l, int a, int b, nt_error *err, int *rc)
{
    for (int s = 0; s < POINTS; s++) {
        memcpy(P->th, P->pts + s * P->d, sizeof(double) * (size_t)P->d);
        unit_map(D, l, a, b, P->th);
        if ((*rc = nt_outputs(P->e, P->th, &P->ds, P->F, err))) return 0;
        const double *F0 = P->F0 + s * P->NK;
        for (int64_t i = 0; i < P->NK; i++)
            if (fabs(P->F[i] - F0[i]) > 1e-10 * P->scale) return 0;
    }
    return 1;
}

static int find(int *parent, int i)
{
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
}

static void add_missing(nt_discrete *o, const char *fmt, int layer, int a, int b)
{
    if (o->n_missing >= NT_DISCOVER_MAX_MISSING) { o->missing_more++; return; }
    snprintf(o->missing[o->n_missing++], sizeof o->missing[0], fmt, layer, a, b);
}

/* what the catalogue's discrete symmetries do on hidden layer l: which transpositions and
 * flips of its units they are (each entry compared with the maps on a random vector) */
static void catalogue_maps(const nt_model *m, const nt_transform *list, int n, const nt_dense *D, int l, int units,
                           int *parent, unsigned char *flips, double *v, double *w, double *u)
{
    const int64_t d = m->d;
    for (int64_t i = 0; i < d; i++) v[i] = nt_rand_normal(NT_DISCOVER_SEED, 99, (uint64_t)i);
    for (int t = 0; t < n; t++) {
        if (!list[t].discrete || list[t].equivariance) continue;
        nt_tr_apply_T(m, &list[t], v, w);
        int moved[2], n_moved = 0;
        for (int j = 0; j < units && n_moved <= 2; j++) {
            nt_range r[3];
            nt_unit_ranges(D, l, j, r);
            int changed = 0;
            for (int64_t i = 0; i < r[0].count && !changed; i++) changed = w[nt_at(&r[0], i)] != v[nt_at(&r[0], i)];
            if (changed && n_moved < 2) moved[n_moved] = j;
            n_moved += changed;
        }
        if (n_moved < 1 || n_moved > 2) continue;
        for (int kind = 0; kind < (n_moved == 2 ? 1 : 2); kind++) {
            memcpy(u, v, sizeof(double) * (size_t)d);
            unit_map(D, l, moved[0], n_moved == 2 ? moved[1] : -1 - kind, u);
            if (nt_rel_diff(d, u, w) != 0) continue;
            if (n_moved == 2) parent[find(parent, moved[0])] = find(parent, moved[1]);
            else flips[moved[0]] |= (unsigned char)(1 << kind);
        }
    }
}

static int search_layer(probe *P, const nt_transform *list, int n, const nt_dense *D, int l, nt_discrete_layer *L,
                        nt_discrete *o, nt_error *err)
{
    const int units = D[l - 1].n_out;
    int rc = NT_OK;
    int *parent = malloc(sizeof(int) * 2 * (size_t)units), *cat = parent + units;
    unsigned char *flips = calloc((size_t)units, 2), *cat_flips = flips + units;
    double *v = malloc(sizeof(double) * 3 * (size_t)P->d);
    if (!parent || !flips || !v) {
        free(parent); free(flips); free(v);
        return nt_fail(err, NT_EFAIL, "discover: out of memory for layer %d's units", D[l - 1].layer);
    }
    for (int j = 0; j < units; j++) parent[j] = cat[j] = j;
    L->layer = D[l - 1].layer;
    L->units = units;
    /* unit j joins the first orbit one of whose members it can be exchanged with */
    for (int j = 1; j < units && !rc; j++)
        for (int a = 0; a < j && !rc; a++) {
            if (find(parent, a) != a) continue;   /* one test per orbit: its root */
            if (symmetric(P, D, l, a, j, err, &rc)) { parent[j] = a; break; }
        }
    for (int j = 0; j < units && !rc; j++) {
        flips[j] |= (unsigned char)symmetric(P, D, l, j, -1, err, &rc);
        if (!rc) flips[j] |= (unsigned char)(symmetric(P, D, l, j, -2, err, &rc) << 1);
    }
    if (!rc) {
        catalogue_maps(P->m, list, n, D, l, units, cat, cat_flips, v, v + P->d, v + 2 * P->d);
        for (int j = 0; j < units; j++) {
            L->odd_flips += flips[j] & 1;
            L->even_flips += (flips[j] >> 1) & 1;
            if (find(parent, j) == j) {
                int size = 0;
                for (int i = 0; i < units; i++) size += find(parent, i) == j;
                L->orbits++;
                L->log10_order += lgamma(size + 1.0) / log(10.0);
            } else if (find(cat, j) != find(cat, find(parent, j)))
                add_missing(o, "swap[layer=%d,units=%d,%d]", L->layer, find(parent, j), j);
            for (int kind = 0; kind < 2; kind++)
                if (((flips[j] >> kind) & 1) && !((cat_flips[j] >> kind) & 1))
                    add_missing(o, kind ? "even_flip[layer=%d,unit=%d]%.0d" : "sign_flip[layer=%d,unit=%d]%.0d",
                                L->layer, j, 0);
        }
        for (int j = 0; j < units; j++)
            if (find(cat, j) == j) {
                int size = 0;
                for (int i = 0; i < units; i++) size += find(cat, i) == j;
                L->catalogue_log10_order += lgamma(size + 1.0) / log(10.0);
            }
    }
    free(parent); free(flips); free(v);
    return rc;
}

int nt_discover_discrete(nt_engine *e, const nt_model *m, const double *theta, const nt_transform *list, int n,
                         int samples, nt_discrete *o, nt_error *err)
{
    memset(o, 0, sizeof *o);
    nt_dense D[NT_MAX_LAYERS];
    const int nd = nt_dense_layers(m, D);
    const int64_t d = m->d, N = samples > 0 ? samples : 64, NK = N * m->output;
    probe P = { .e = e, .m = m, .ds = { .n = N, .dim = m->input }, .d = d, .NK = NK };
    P.ds.x = malloc(sizeof(double) * (size_t)(N * m->input));
    P.pts = malloc(sizeof(double) * POINTS * (size_t)d);
    P.F0 = malloc(sizeof(double) * POINTS * (size_t)NK);
    P.th = malloc(sizeof(double) * (size_t)d);
    P.F = malloc(sizeof(double) * (size_t)NK);
    o->layers = calloc((size_t)nd + 1, sizeof(nt_discrete_layer));
    int rc = P.ds.x && P.pts && P.F0 && P.th && P.F && o->layers
                 ? NT_OK : nt_fail(err, NT_EFAIL, "discover: out of memory for the discrete search");
    if (!rc) {
        for (int64_t i = 0; i < N * m->input; i++) P.ds.x[i] = nt_rand_normal(NT_DISCOVER_SEED, 1, (uint64_t)i);
        const double rms = nt_norm2(d, theta) / sqrt((double)d);
        memcpy(P.pts, theta, sizeof(double) * (size_t)d);
        for (int s = 1; s < POINTS; s++)
            for (int64_t i = 0; i < d; i++)
                P.pts[s * d + i] = theta[i] + rms * nt_rand_normal(NT_DISCOVER_SEED, 1 + (uint64_t)s, (uint64_t)i);
        for (int s = 0; s < POINTS && !rc; s++) rc = nt_outputs(e, P.pts + s * d, &P.ds, P.F0 + s * NK, err);
        for (int64_t i = 0; i < POINTS * NK; i++) P.scale = fmax(P.scale, fabs(P.F0[i]));
    }
    for (int l = 1; l < nd && !rc; l++) {
        if (D[l - 1].rd_rows == 0) continue;   /* no reader: not a hidden layer */
        rc = search_layer(&P, list, n, D, l, &o->layers[o->n_layers], o, err);
        o->n_layers++;
    }
    free(P.ds.x); free(P.pts); free(P.F0); free(P.th); free(P.F);
    if (rc) nt_discrete_free(o);
    return rc;
}

void nt_discrete_free(nt_discrete *o)
{
    free(o->layers);
    memset(o, 0, sizeof *o);
}
