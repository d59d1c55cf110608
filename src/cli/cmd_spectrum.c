/* cmd_spectrum.c: noether spectrum: both ends of the Hessian spectrum (dense LAPACK or
 * ARPACK's Lanczos), its density (stochastic Lanczos quadrature), its trace (Hutchinson),
 * and the symmetry-aware views with their predictions (docs/theory.md §3-§4): flat directions
 * from the orbit span, the sharp radial direction of a homogeneous model, S_n sectors and
 * mirror stability at fixed points, gradient alignment, deflation of the orbit span. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cblas.h>
#include "cli.h"

static const char usage[] =
    "usage: noether spectrum [SPEC] [--params P.npy] [--top K] [--bottom K] [--method M]\n"
    "                        [--density] [--trace] [--block NAME] [--deflate] [--sectors]\n"
    "                        [--each-generator] [--vectors OUT.npy] [--json]\n\n"
    "The spectrum of the Hessian H_gamma at theta, matrix-free, and what the model's\n"
    "symmetries predict about it (under \"predictions\" in the JSON):\n"
    "  flat      the orbit span of the continuous symmetries: its rank, from the generators'\n"
    "            structure; the eigenvalues of H_gamma it forces at a critical point of L_gamma\n"
    "            (S1gamma): 2 gamma (symmetric generators), gamma (shifts), 0 (antisymmetric),\n"
    "            each with its multiplicity (all 0 without weight decay), beside the count\n"
    "            found when every eigenvalue is known; and (S1gamma) H xi = -A^T g + gamma (xi +\n"
    "            A^T theta) checked on random combinations of all generators (one block product)\n"
    "  sharp     for a homogeneous model, the radial curvature theta^T H theta / |theta|^2 beside\n"
    "            its closed form from the outputs and lambda_max\n"
    "  sectors   (--sectors) per hidden layer, H on the breaking subspace of S_n at the point\n"
    "            where its units are equal: multiplicity n-1 predicted against found, and the\n"
    "            stability margin lambda_min; per odd unit, the mirror's margin\n"
    "  alignment the fraction of |g|^2 in the top-K eigenspace; for each block feeding a\n"
    "            normalization (a scale symmetry) its gradient's fraction beside the one\n"
    "            (S1) predicts: theta's weight on each eigenvector times (lambda - 2 gamma)^2\n\n"
    "  --top K, --bottom K  how many eigenvalues at each end (default 10 each; with only one of\n"
    "                       them, that end alone)\n"
    "  --method M           dense (LAPACK dsyevr), lanczos (ARPACK) or auto (dense up to d = 3000)\n"
    "  --density            spectral density by stochastic Lanczos quadrature (10 probes, 80 steps);\n"
    "                       its moments with their standard errors over the probes\n"
    "  --trace              Hutchinson trace estimate (100 probes) with its standard error; with\n"
    "                       the dense method the exact trace beside it\n"
    "  --block NAME         restrict H to one parameter tensor (a name from noether info)\n"
    "  --deflate            project the orbit span out of H and report what that removed\n"
    "  --each-generator     also |H xi| of every generator beside its (S1gamma) value (a product each)\n"
    "  --vectors OUT        write the eigenvectors (top then bottom, rows) to OUT.npy\n"
    "  --json               one JSON document on stdout\n";

/* a phase of long work, on stderr when it is a terminal */
static void progress(const cli_spectrum_opts *o, const char *what)
{
    if (o->verbose && isatty(2)) fprintf(stderr, "spectrum: %s\n", what);
}

static cJSON *numbers(const double *x, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(x[i]));
    return a;
}

typedef struct {
    int top, bottom, dense;
    double *top_v, *bottom_v;     /* values: descending / ascending */
    double *top_u, *bottom_u;     /* vectors, rows of length n (NULL unless wanted) */
    double *all;                  /* dense: every eigenvalue, ascending (else NULL) */
    int products;
} ends;

/* both ends of op's spectrum; vectors when want_vectors */
static void spectrum_ends(const nt_operator *op, ends *E, int want_vectors)
{
    const int64_t n = op->n;
    nt_error err = {0};
    E->top = E->top < n ? E->top : (int)n;
    E->bottom = E->bottom < n ? E->bottom : (int)n;
    E->top_v = malloc(sizeof(double) * (E->top + 1));
    E->bottom_v = malloc(sizeof(double) * (E->bottom + 1));
    E->top_u = want_vectors ? malloc(sizeof(double) * (size_t)((E->top + 1) * n)) : NULL;
    E->bottom_u = want_vectors ? malloc(sizeof(double) * (size_t)((E->bottom + 1) * n)) : NULL;
    if (E->dense) {
        double *all = malloc(sizeof(double) * n), *U = want_vectors ? malloc(sizeof(double) * n * n) : NULL;
        if (nt_eigen_dense(op, all, U, &err)) cli_die("spectrum", &err);
        for (int i = 0; i < E->top; i++) {
            E->top_v[i] = all[n - 1 - i];
            if (U) memcpy(E->top_u + i * n, U + (n - 1 - i) * n, sizeof(double) * n);
        }
        for (int i = 0; i < E->bottom; i++) {
            E->bottom_v[i] = all[i];
            if (U) memcpy(E->bottom_u + i * n, U + i * n, sizeof(double) * n);
        }
        E->products = (int)n;
        E->all = all;
        free(U);
        return;
    }
    int p1 = 0, p2 = 0;
    if (E->top && nt_eigen_lanczos(op, E->top, 1, 0, E->top_v, E->top_u, &p1, &err)) cli_die("spectrum", &err);
    if (E->bottom && nt_eigen_lanczos(op, E->bottom, 0, 0, E->bottom_v, E->bottom_u, &p2, &err)) cli_die("spectrum", &err);
    E->products = p1 + p2;
}

static void ends_free(ends *E)
{
    free(E->top_v); free(E->bottom_v); free(E->top_u); free(E->bottom_u); free(E->all);
}

/* H xi for the nb generators waiting in X; their norms against the predictions, each
 * difference relative to the two sides plus s |xi| (s the curvature scale): as in noether
 * check, an identity whose two sides vanish (H c = 0 for a pure shift without weight decay)
 * is measured against the scale of H, not round-off */
static void flat_block(cli_job *job, nt_engine *e, const double *X, double *HX, int *nb, const double *pred,
                       double scale, int *done, cJSON *hx, double *worst)
{
    const int64_t d = job->spec.model.d;
    if (*nb == 0) return;
    nt_hvp(e, job->theta, &job->data.train, *nb, X, HX, NULL);
    for (int j = 0; j < *nb; j++, (*done)++) {
        double h = nt_norm2(d, HX + (int64_t)j * d);
        cJSON_AddItemToArray(hx, cJSON_CreateNumber(h));
        const double size = h + pred[*done] + scale * nt_norm2(d, X + (int64_t)j * d);
        *worst = fmax(*worst, fabs(h - pred[*done]) / fmax(size, 1e-300));
    }
    *nb = 0;
}

/* --each-generator: per symmetry generator |H xi| (block products) beside its value by
 * (S1gamma) with B = 0, |-A^T g + gamma (xi + A^T theta)| */
static void each_generator(cli_job *job, nt_engine *e, const nt_transform *list, int n, const double *g, int n_gen,
                           double scale, cJSON *o)
{
    const nt_model *m = &job->spec.model;
    const int64_t d = m->d;
    const double gam = m->weight_decay;
    const int kb = nt_engine_k(e);
    double *X = malloc(sizeof(double) * kb * d), *HX = malloc(sizeof(double) * kb * d);
    double *pred = malloc(sizeof(double) * (n_gen + 1)), *a = malloc(sizeof(double) * d), *b = malloc(sizeof(double) * d);
    cJSON *hx = cJSON_AddArrayToObject(o, "H_xi_norm");
    double worst = 0;
    int nb = 0, done = 0;
    for (int t = 0; t <= n; t++) {
        int gens = t < n && !list[t].discrete && !list[t].equivariance ? list[t].generators : 0;
        for (int i = 0; i < gens; i++) {
            double *xi = X + (int64_t)nb * d;
            nt_tr_xi(m, &list[t], i, job->theta, xi);
            nt_tr_apply_At(m, &list[t], i, g, a);
            nt_tr_apply_At(m, &list[t], i, job->theta, b);
            for (int64_t j = 0; j < d; j++) a[j] = -a[j] + gam * (xi[j] + b[j]);
            pred[done + nb++] = nt_norm2(d, a);
            if (nb == kb) flat_block(job, e, X, HX, &nb, pred, scale, &done, hx, &worst);
        }
    }
    flat_block(job, e, X, HX, &nb, pred, scale, &done, hx, &worst);
    cJSON_AddItemToObject(o, "predicted_H_xi_norm", numbers(pred, n_gen));
    cJSON_AddNumberToObject(o, "each_generator_worst_relative_difference", worst);
    free(X); free(HX); free(pred); free(a); free(b);
}

/* flat directions (docs/theory.md §3): the orbit rank and the eigenvalues a critical point of
 * L_gamma must have (nt_orbit_analyse), each beside how many sit there when every eigenvalue
 * is known (all, ascending, or NULL); (S1gamma) on random combinations of the generators */
static cJSON *flat_view(cli_job *job, nt_engine *e, const nt_transform *list, int n, const double *g,
                        const double *all, int64_t n_all, double tol, int each)
{
    const nt_model *m = &job->spec.model;
    nt_orbit orb;
    nt_orbit_analyse(m, list, n, job->theta, tol, &orb);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "generators", orb.generators);
    if (orb.rank < 0) {
        cJSON_AddNullToObject(o, "orbit_rank");
        cJSON_AddStringToObject(o, "skipped", "more than 4000 symmetry generators: the orbit rank is not computed");
    } else {
        cJSON_AddNumberToObject(o, "orbit_rank", orb.rank);
        cJSON_AddNumberToObject(o, "rank_tolerance", tol);
        cJSON_AddStringToObject(o, "rank_method", "Gram matrix of the sparse generators (LAPACK dsyevd), small "
                                "singular values recomputed by dgesvd");
        cJSON_AddItemToObject(o, "singular_values", numbers(orb.sv, orb.generators));
        cJSON_AddNumberToObject(o, "singular_values_refined", orb.refined);
        double scale = all && n_all ? fmax(fabs(all[0]), fabs(all[n_all - 1])) : 0, ftol = 1e-9 * scale;
        cJSON *cp = cJSON_AddArrayToObject(o, "at_critical_point");
        for (int v = 0; v < orb.n_values; v++) {
            cJSON *it = cJSON_CreateObject();
            cJSON_AddNumberToObject(it, "value", orb.value[v]);
            cJSON_AddNumberToObject(it, "multiplicity", orb.multiplicity[v]);
            cJSON_AddStringToObject(it, "from", orb.what[v]);
            if (all) {
                int found = 0;
                for (int64_t i = 0; i < n_all; i++) found += fabs(all[i] - orb.value[v]) <= ftol;
                cJSON_AddNumberToObject(it, "found", found);
                cJSON_AddNumberToObject(it, "found_tolerance", ftol);
            }
            cJSON_AddItemToArray(cp, it);
        }
        cJSON_AddNumberToObject(o, "unpredicted_generators", orb.unpredicted);
        cJSON_AddNumberToObject(o, "shifts_at_gamma_everywhere", orb.shift_rank);   /* H_gamma c = gamma c (A = 0) */
    }
    double sH = 0;
    const int q = 2;   /* each random combination alone tests every generator (with probability 1) */
    double worst = nt_orbit_s1_check(e, m, &job->data.train, list, n, job->theta, g, q, 0x51, &sH);
    cJSON_AddNumberToObject(o, "s1_random_combinations", orb.generators ? q : 0);
    cJSON_AddNumberToObject(o, "worst_relative_difference", worst);
    cJSON_AddNumberToObject(o, "curvature_scale", sH);
    if (each) each_generator(job, e, list, n, g, orb.generators, sH, o);
    nt_orbit_free(&orb);
    return o;
}

/* sharp direction of a homogeneous model: theta^T H theta / |theta|^2 against
 * k(k-1) E[u^T f] + k^2 E[f^T U f] + gamma |theta|^2 (bias-free: A = I) */
static cJSON *sharp_view(cli_job *job, nt_engine *e, const nt_transform *list, int n, double lambda_max)
{
    const nt_model *m = &job->spec.model;
    const int64_t d = m->d, N = job->data.train.n;
    const int K = m->output;
    double k = 0;
    int biases = 0;
    for (int t = 0; t < n; t++) if (list[t].kind == NT_TR_HOMOGENEOUS) k = list[t].p;
    for (int t = 0; t < m->n_tensors; t++) biases |= m->tensors[t].ndim == 1;
    if (k == 0 || biases) return NULL;
    double *Ht = malloc(sizeof(double) * d), *F = malloc(sizeof(double) * (N * K + 2 * K)), *u = F + N * K, *Uf = u + K;
    if (!Ht || !F) { free(Ht); free(F); return NULL; }
    nt_hvp(e, job->theta, &job->data.train, 1, job->theta, Ht, NULL);
    nt_outputs(e, job->theta, &job->data.train, F);
    double uf = 0, fUf = 0, tt = cblas_ddot((int)d, job->theta, 1, job->theta, 1);
    for (int64_t s = 0; s < N; s++) {
        const double *f = F + s * K, *y = job->data.train.y + s * job->data.train.ydim;
        nt_loss_eval(m->loss, K, f, y, u);
        nt_loss_hess_apply(m->loss, K, f, y, f, Uf);
        for (int j = 0; j < K; j++) { uf += u[j] * f[j]; fUf += f[j] * Uf[j]; }
    }
    uf /= N; fUf /= N;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "degree", k);
    cJSON_AddNumberToObject(o, "radial_curvature", cblas_ddot((int)d, job->theta, 1, Ht, 1) / tt);
    cJSON_AddNumberToObject(o, "closed_form", (k * (k - 1) * uf + k * k * fUf + m->weight_decay * tt) / tt);
    cJSON_AddNumberToObject(o, "lambda_max", lambda_max);
    free(Ht); free(F);
    return o;
}

static int greatest_common_divisor(int a, int b)
{
    while (b) { int t = a % b; a = b; b = t; }
    return a;
}

/* S_n sectors of the hidden layers and the mirror margins of odd units: by S_n's standard
 * representation every eigenvalue on the breaking subspace comes n-1 times (a zero
 * eigenvalue may come several times n-1), so the multiplicity found is the greatest common
 * divisor of the group sizes */
static cJSON *sectors_view(cli_job *job, nt_engine *e, const nt_transform *list, int n)
{
    const nt_model *m = &job->spec.model;
    cJSON *arr = cJSON_CreateArray();
    double *sym = malloc(sizeof(double) * (size_t)m->d);
    for (int layer = 1; nt_sn_sector_dim(m, layer) > 0 || layer == 1; layer++) {
        int dim = nt_sn_sector_dim(m, layer), units = 0;
        if (dim == 0) break;
        for (int t = 0; t < n; t++)
            if (list[t].kind == NT_TR_SWAP && list[t].layer == layer) units = list[t].b + 1;
        if (units == 0) continue;   /* no permutation symmetry here (a normalization mixes the units) */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", layer);
        cJSON_AddNumberToObject(o, "dimension", dim);
        if (dim > 4000) {
            cJSON_AddStringToObject(o, "skipped", "breaking subspace larger than 4000");
            cJSON_AddItemToArray(arr, o);
            continue;
        }
        double *lam = malloc(sizeof(double) * dim);
        int *mult = malloc(sizeof(int) * dim);
        nt_sn_sector(e, m, &job->data.train, job->theta, layer, 1, sym, lam);
        double scale = fmax(fabs(lam[0]), fabs(lam[dim - 1]));
        int groups = nt_multiplicities(lam, dim, 1e-9 * scale, mult), lo = dim, hi = 0, gcd = 0;
        for (int i = 0; i < groups; i++) {
            lo = mult[i] < lo ? mult[i] : lo;
            hi = mult[i] > hi ? mult[i] : hi;
            gcd = greatest_common_divisor(gcd, mult[i]);
        }

        cJSON_AddNumberToObject(o, "units", units);
        cJSON_AddNumberToObject(o, "predicted_multiplicity", units - 1);
        cJSON_AddNumberToObject(o, "multiplicity_found", gcd);
        cJSON_AddNumberToObject(o, "multiplicity_min", lo);
        cJSON_AddNumberToObject(o, "multiplicity_max", hi);
        cJSON_AddNumberToObject(o, "groups", groups);
        cJSON_AddNumberToObject(o, "lambda_min", lam[0]);
        cJSON_AddNumberToObject(o, "lambda_max", lam[dim - 1]);
        cJSON_AddNumberToObject(o, "stability_margin", lam[0]);   /* H_gamma: gamma included */
        cJSON_AddItemToObject(o, "eigenvalues", numbers(lam, dim));
        cJSON_AddItemToArray(arr, o);
        free(lam);
        free(mult);
    }
    /* mirrors: each odd unit at the point where it is dead */
    for (int t = 0; t < n; t++) {
        if (list[t].kind != NT_TR_SIGN_FLIP) continue;
        int dim = nt_breaking_dim(m, &list[t]);
        double *lam = malloc(sizeof(double) * dim);
        nt_tr_apply_T(m, &list[t], job->theta, sym);
        for (int64_t i = 0; i < m->d; i++) sym[i] = 0.5 * (sym[i] + job->theta[i]);
        nt_breaking_spectrum(e, m, &job->data.train, sym, &list[t], lam, NULL);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "mirror", list[t].name);
        cJSON_AddNumberToObject(o, "dimension", dim);
        cJSON_AddNumberToObject(o, "stability_margin", lam[0]);
        cJSON_AddItemToArray(arr, o);
        free(lam);
    }
    free(sym);
    return arr;
}

/* Gradient-Hessian alignment of each scale-invariant block S (the weights feeding a
 * normalization, xi = P_S theta, docs/theory.md §3): by (S1gamma) P_S g = -(H - 2 gamma) P_S theta,
 * so on an eigenvector v_i of H the block's gradient weighs (lambda_i - 2 gamma)^2 (v_i^T
 * P_S theta)^2: theta's weight times the squared shifted eigenvalue, tilted to the large
 * |lambda|.  The fraction of |P_S g|^2 in the top-k eigenspace measured from g, beside the
 * one predicted from theta, the eigenpairs and one product H P_S theta. */
static cJSON *scale_alignment(cli_job *job, nt_engine *e, const nt_transform *list, int n, const double *g,
                              const double *U, const double *lam, int k)
{
    const nt_model *m = &job->spec.model;
    const int64_t d = m->d;
    const double gam = m->weight_decay;
    cJSON *arr = cJSON_CreateArray();
    double *xi = malloc(sizeof(double) * d), *Hxi = malloc(sizeof(double) * d), *Pg = malloc(sizeof(double) * d);
    for (int t = 0; t < n; t++) {
        if (list[t].kind != NT_TR_SCALE) continue;
        nt_tr_xi(m, &list[t], 0, job->theta, xi);        /* P_S theta */
        nt_tr_apply_A(m, &list[t], 0, g, Pg);             /* P_S g (A = P_S) */
        nt_hvp(e, job->theta, &job->data.train, 1, xi, Hxi, NULL);
        double total = 0, gg = cblas_ddot((int)d, Pg, 1, Pg, 1), in_meas = 0, in_pred = 0;
        for (int64_t j = 0; j < d; j++) total += (Hxi[j] - 2 * gam * xi[j]) * (Hxi[j] - 2 * gam * xi[j]);
        for (int i = 0; i < k; i++) {
            double c = cblas_ddot((int)d, U + i * d, 1, xi, 1), cg = cblas_ddot((int)d, U + i * d, 1, Pg, 1);
            in_pred += (lam[i] - 2 * gam) * (lam[i] - 2 * gam) * c * c;
            in_meas += cg * cg;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", list[t].name);
        cJSON_AddNumberToObject(o, "k", k);
        cJSON_AddNumberToObject(o, "block_gradient_norm", sqrt(gg));
        cJSON_AddNumberToObject(o, "fraction_in_top_measured", gg > 0 ? in_meas / gg : 0);
        cJSON_AddNumberToObject(o, "fraction_in_top_predicted", total > 0 ? in_pred / total : 0);
        cJSON_AddItemToArray(arr, o);
    }
    free(xi); free(Hxi); free(Pg);
    return arr;
}

/* the fraction of |g|^2 in the span of the top eigenvectors (rows of U, n long) */
static double alignment(const double *U, int k, int64_t n, const double *g)
{
    double in = 0, gg = cblas_ddot((int)n, g, 1, g, 1);
    for (int i = 0; i < k; i++) {
        double c = cblas_ddot((int)n, U + i * n, 1, g, 1);
        in += c * c;
    }
    return gg > 0 ? in / gg : 0;
}

/* the two ends as soon as they are known (text output) */
static void print_ends(FILE *f, int64_t d, const char *block, const char *method, int products, double seconds,
                       const double *top, int nt, const double *bottom, int nb)
{
    fprintf(f, "d = %lld%s%s, %s, %d products, %.2f s\n", (long long)d, block ? ", block " : "", block ? block : "",
            method, products, seconds);
    if (nt) fprintf(f, "top:   ");
    for (int i = 0; i < nt; i++) fprintf(f, " %.6g%s", top[i], i == nt - 1 ? "\n" : "");
    if (nb) fprintf(f, "bottom:");
    for (int i = 0; i < nb; i++) fprintf(f, " %.6g%s", bottom[i], i == nb - 1 ? "\n" : "");
    fflush(f);
}

static void print_flat(FILE *f, const cJSON *fl, double gamma)
{
    const cJSON *rank = cJSON_GetObjectItem(fl, "orbit_rank"), *it;
    if (cJSON_IsNumber(rank))
        fprintf(f, "flat:   %d continuous symmetry generators span %d dimensions (tolerance %g)",
                cJSON_GetObjectItem(fl, "generators")->valueint, rank->valueint,
                cJSON_GetObjectItem(fl, "rank_tolerance")->valuedouble);
    else
        fprintf(f, "flat:   %d continuous symmetry generators (too many for the orbit rank)",
                cJSON_GetObjectItem(fl, "generators")->valueint);
    fprintf(f, "; (S1) on %d random combinations: worst relative difference %.1e\n",
            cJSON_GetObjectItem(fl, "s1_random_combinations")->valueint,
            cJSON_GetObjectItem(fl, "worst_relative_difference")->valuedouble);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(fl, "at_critical_point")) {
        double v = cJSON_GetObjectItem(it, "value")->valuedouble;
        fprintf(f, "        at a critical point of L_gamma: eigenvalue %g (%s) %d times",
                v, v == 0 ? "0" : v == gamma ? "gamma" : "2 gamma", cJSON_GetObjectItem(it, "multiplicity")->valueint);
        if (cJSON_GetObjectItem(it, "found")) fprintf(f, "; %d there now", cJSON_GetObjectItem(it, "found")->valueint);
        fprintf(f, "\n");
    }
}

/* SLQ's moments and their standard errors over the probes: probe p alone estimates
 * tr(A^k)/n by P sum_s w_ps x_ps^k (its weights sum to 1/P); with the exact moments beside
 * them when every eigenvalue is known, and the probes that would bring each standard error
 * under 1 % of its moment (it falls as 1/sqrt(P)) */
static void density_moments(cJSON *de, const double *nodes, const double *w, int P, int S, const double *all, int64_t n)
{
    for (int k = 1; k <= 2; k++) {
        double mean = 0, sq = 0;
        for (int p = 0; p < P; p++) {
            double mp = 0;
            for (int s = 0; s < S; s++) mp += P * w[p * S + s] * (k == 1 ? nodes[p * S + s] : nodes[p * S + s] * nodes[p * S + s]);
            mean += mp / P;
            sq += mp * mp;
        }
        double var = P > 1 ? fmax(sq - P * mean * mean, 0) / (P - 1) : 0, se = sqrt(var / P);
        char key[32];
        snprintf(key, sizeof key, "moment%d", k);
        cJSON_AddNumberToObject(de, key, mean);
        snprintf(key, sizeof key, "moment%d_std_error", k);
        cJSON_AddNumberToObject(de, key, se);
        snprintf(key, sizeof key, "moment%d_probes_for_1_percent", k);
        cJSON_AddNumberToObject(de, key, mean != 0 ? ceil(P * (se / (0.01 * fabs(mean))) * (se / (0.01 * fabs(mean)))) : 0);
        if (all) {
            double exact = 0;
            for (int64_t i = 0; i < n; i++) exact += k == 1 ? all[i] : all[i] * all[i];
            snprintf(key, sizeof key, "moment%d_exact", k);
            cJSON_AddNumberToObject(de, key, exact / n);
        }
    }
}

cJSON *cli_spectrum(cli_job *job, nt_engine *e, const nt_transform *list, int n_list, const cli_spectrum_opts *o)
{
    const nt_model *m = &job->spec.model;
    const int64_t d = m->d;
    int64_t off = 0, n = d;
    if (o->block) {
        int t = 0;
        while (t < m->n_tensors && strcmp(m->tensors[t].name, o->block)) t++;
        if (t == m->n_tensors) cli_usage_error("spectrum", "--block: no parameter tensor '%s' (see noether info)", o->block);
        off = m->tensors[t].offset;
        n = m->tensors[t].size;
    }
    ends E = { .top = o->top, .bottom = o->bottom };
    E.dense = !strcmp(o->method, "dense") || (!strcmp(o->method, "auto") && n <= 3000);
    if (!E.dense && (E.top >= n - 1 || E.bottom >= n - 1)) E.dense = 1;   /* ARPACK needs nev < n - 1 */
    const double need = 16.0 * (double)n * (double)n, have = cli_physical_bytes();   /* the matrix and its vectors */
    if (E.dense && need > 0.5 * have) {
        nt_error err;
        nt_fail(&err, NT_EINPUT, "the dense spectrum of n = %lld needs %.0f bytes (%.3g GiB), more than half of this "
                "machine's %.3g GiB; use --method lanczos (or fewer --top/--bottom than n - 1)", (long long)n, need,
                need / 1073741824.0, have / 1073741824.0);
        cli_die("spectrum", &err);
    }
    double *g = malloc(sizeof(double) * d), t_start = cli_now();
    double loss = nt_grad(e, job->theta, &job->data.train, g), t_grad = cli_now() - t_start;
    cli_require_finite("spectrum", loss, g, d, "gradient");   /* before LAPACK or ARPACK sees a NaN */

    /* the orbit span's orthonormal basis, only to deflate it (a dense SVD of rank x d) */
    double *Q = NULL, *sv = NULL, tol = 1e-10;
    int n_gen = 0, rank = 0;
    if (o->deflate) {
        progress(o, "the orbit span of the continuous symmetries (SVD, for --deflate)");
        rank = nt_orbit_basis(m, list, n_list, job->theta, tol, &Q, &sv, &n_gen);
    }
    nt_hessian_ctx hc;
    nt_operator op = nt_hessian_operator(&hc, e, m, &job->data.train, job->theta, off, n, o->deflate ? Q : NULL,
                                         o->deflate ? rank : 0);
    double t0 = cli_now(), t_operator = t0 - t_start - t_grad;
    progress(o, E.dense ? "dense eigendecomposition" : "Lanczos (ARPACK), both ends");
    spectrum_ends(&op, &E, 1);
    double seconds = cli_now() - t0;
    if (o->print_ends) print_ends(stdout, d, o->block, E.dense ? "dense" : "lanczos", E.products, seconds, E.top_v, E.top,
                                  E.bottom_v, E.bottom);

    cJSON *doc = cJSON_CreateObject(), *pred;
    cJSON_AddNumberToObject(doc, "d", (double)d);
    cJSON_AddNumberToObject(doc, "n", (double)n);
    if (o->block) cJSON_AddStringToObject(doc, "block", o->block);
    cJSON_AddStringToObject(doc, "method", E.dense ? "dense" : "lanczos");
    cJSON_AddNumberToObject(doc, "loss", loss);
    cJSON_AddNumberToObject(doc, "grad_norm", nt_norm2(d, g));
    cJSON_AddItemToObject(doc, "top", numbers(E.top_v, E.top));
    cJSON_AddItemToObject(doc, "bottom", numbers(E.bottom_v, E.bottom));
    cJSON_AddNumberToObject(doc, "hessian_vector_products", E.products);
    cJSON_AddNumberToObject(doc, "seconds", seconds);
    if (E.all) {   /* the whole spectrum: how many eigenvalues sit at gamma (flat up to weight decay) */
        double scale = fmax(fabs(E.all[0]), fabs(E.all[n - 1])), ftol = 1e-9 * scale;
        int flat = 0;
        for (int64_t i = 0; i < n; i++) flat += fabs(E.all[i] - m->weight_decay) <= ftol;
        cJSON_AddNumberToObject(doc, "eigenvalues_at_gamma", flat);
        cJSON_AddNumberToObject(doc, "eigenvalues_at_gamma_tolerance", ftol);
        if (o->all_values) cJSON_AddItemToObject(doc, "eigenvalues", numbers(E.all, (int)n));
    }
    if (o->deflate) {
        cJSON *df = cJSON_AddObjectToObject(doc, "deflated");
        cJSON_AddNumberToObject(df, "removed_dimensions", rank);
        cJSON_AddStringToObject(df, "note", "top and bottom are of P H P, P the projector off the orbit span");
    }
    if (o->trace) {
        cJSON *tr = cJSON_AddObjectToObject(doc, "trace");
        progress(o, "trace (Hutchinson, 100 probes)");
        double se, est = nt_hutchinson(&op, 100, 17, &se);
        cJSON_AddNumberToObject(tr, "hutchinson", est);
        cJSON_AddNumberToObject(tr, "std_error", se);
        cJSON_AddNumberToObject(tr, "probes", 100);
        if (E.all) {   /* the sum of every eigenvalue */
            double exact = 0;
            for (int64_t i = 0; i < n; i++) exact += E.all[i];
            cJSON_AddNumberToObject(tr, "exact", exact);
        }
    }
    if (o->density) {
        const int P = 10, S = (int)(n < 80 ? n : 80);
        double *nodes = malloc(sizeof(double) * P * S), *w = malloc(sizeof(double) * P * S);
        nt_error err = {0};
        progress(o, "spectral density (stochastic Lanczos quadrature)");
        if (nt_slq(&op, P, S, 23, nodes, w, &err)) cli_die("spectrum", &err);
        cJSON *de = cJSON_AddObjectToObject(doc, "density");
        cJSON_AddNumberToObject(de, "probes", P);
        cJSON_AddNumberToObject(de, "steps", S);
        cJSON_AddItemToObject(de, "nodes", numbers(nodes, P * S));
        cJSON_AddItemToObject(de, "weights", numbers(w, P * S));
        density_moments(de, nodes, w, P, S, E.all, n);
        free(nodes);
        free(w);
    }
    if (!o->block) {
        cJSON *al = cJSON_AddObjectToObject(doc, "alignment");
        cJSON_AddNumberToObject(al, "k", E.top);
        cJSON_AddNumberToObject(al, "gradient_fraction_in_top", alignment(E.top_u, E.top, n, g));
    }
    pred = cJSON_AddObjectToObject(doc, "predictions");
    progress(o, "the symmetry predictions");
    double t_pred = cli_now();
    if (!o->block) {
        cJSON_AddItemToObject(pred, "flat", flat_view(job, e, list, n_list, g, E.all, n, tol, o->each_generator));
        cJSON *sh = o->deflate ? NULL : sharp_view(job, e, list, n_list, E.top ? E.top_v[0] : NAN);
        if (sh) cJSON_AddItemToObject(pred, "sharp", sh);
        if (o->sectors) cJSON_AddItemToObject(pred, "sectors", sectors_view(job, e, list, n_list));
        cJSON *sa = scale_alignment(job, e, list, n_list, g, E.top_u, E.top_v, E.top);
        if (cJSON_GetArraySize(sa)) cJSON_AddItemToObject(pred, "alignment_scale_invariant", sa);
        else cJSON_Delete(sa);
    }
    cJSON *tm = cJSON_AddObjectToObject(doc, "timings");   /* seconds of each phase */
    cJSON_AddNumberToObject(tm, "gradient", t_grad);
    cJSON_AddNumberToObject(tm, "operator", t_operator);   /* deflation basis, frozen engine */
    cJSON_AddNumberToObject(tm, "eigenvalues", seconds);
    cJSON_AddNumberToObject(tm, "predictions", cli_now() - t_pred);
    cJSON_AddNumberToObject(tm, "total", cli_now() - t_start);
    if (o->vectors) {   /* top then bottom, rows */
        int64_t shape[2] = {E.top + E.bottom, n};
        double *V = malloc(sizeof(double) * (size_t)(shape[0] * n));
        memcpy(V, E.top_u, sizeof(double) * (size_t)(E.top * n));
        memcpy(V + E.top * n, E.bottom_u, sizeof(double) * (size_t)(E.bottom * n));
        nt_error err = {0};
        if (nt_npy_write(o->vectors, V, 2, shape, &err)) cli_die("spectrum", &err);
        free(V);
    }
    nt_hessian_operator_free(&hc);
    ends_free(&E);
    free(g); free(Q); free(sv);
    return doc;
}

int cmd_spectrum(int argc, char **argv)
{
    const char *spec = NULL, *params = NULL, *top_s = NULL, *bottom_s = NULL, *method = "auto", *density = NULL,
               *trace = NULL, *block = NULL, *deflate = NULL, *sectors = NULL, *vectors = NULL, *json = NULL, *each = NULL;
    cli_opt opts[] = {{"--params", 0, &params}, {"--top", 0, &top_s}, {"--bottom", 0, &bottom_s},
                      {"--method", 0, &method}, {"--density", 1, &density}, {"--trace", 1, &trace},
                      {"--block", 0, &block}, {"--deflate", 1, &deflate}, {"--sectors", 1, &sectors},
                      {"--vectors", 0, &vectors}, {"--json", 1, &json}, {"--each-generator", 1, &each}, {NULL, 0, NULL}};
    cli_parse("spectrum", usage, argc, argv, opts, &spec);
    /* both ends, 10 each, unless one end is asked for: then that end alone */
    cli_spectrum_opts o = { .top = top_s ? atoi(top_s) : bottom_s ? 0 : 10, .bottom = bottom_s ? atoi(bottom_s) : top_s ? 0 : 10,
                            .method = method, .density = density != NULL, .trace = trace != NULL,
                            .deflate = deflate != NULL, .sectors = sectors != NULL, .block = block,
                            .vectors = vectors, .verbose = 1, .each_generator = each != NULL, .print_ends = !json };
    if (o.top < 0 || o.bottom < 0 || (top_s && strspn(top_s, "0123456789") != strlen(top_s)) ||
        (bottom_s && strspn(bottom_s, "0123456789") != strlen(bottom_s)))
        cli_usage_error("spectrum", "--top and --bottom take a whole number");
    if (strcmp(method, "auto") && strcmp(method, "dense") && strcmp(method, "lanczos"))
        cli_usage_error("spectrum", "--method: '%s' is not one of auto, dense, lanczos", method);
    cli_job job;
    cli_job_load(&job, "spectrum", spec, params);
    nt_engine *e = cli_engine(&job, 16);
    nt_transform *list = NULL;
    int n_list = 0;
    cli_load_transforms("spectrum", &job, &list, &n_list);
    cJSON *doc = cli_spectrum(&job, e, list, n_list, &o);
    cJSON *pred = cJSON_GetObjectItem(doc, "predictions");
    const int top = cJSON_GetArraySize(cJSON_GetObjectItem(doc, "top"));
    if (json) {
        cli_print_json(doc);
    } else {
        const cJSON *fl = cJSON_GetObjectItem(pred, "flat"), *it;
        if (fl) print_flat(stdout, fl, job.spec.model.weight_decay);
        const cJSON *sh = cJSON_GetObjectItem(pred, "sharp");
        if (sh)
            printf("sharp:  radial curvature %.6g, closed form %.6g, lambda_max %.6g\n",
                   cJSON_GetObjectItem(sh, "radial_curvature")->valuedouble,
                   cJSON_GetObjectItem(sh, "closed_form")->valuedouble, cJSON_GetObjectItem(sh, "lambda_max")->valuedouble);
        const cJSON *al = cJSON_GetObjectItem(doc, "alignment");
        if (al) printf("align:  %.4f of |g|^2 in the top-%d eigenspace\n",
                       cJSON_GetObjectItem(al, "gradient_fraction_in_top")->valuedouble, top);
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(pred, "sectors")) {
            if (cJSON_GetObjectItem(it, "layer") && cJSON_GetObjectItem(it, "multiplicity_min"))
                printf("sector: layer %d, %d units: multiplicity %d (groups of %d to %d; predicted %d), margin %.4g\n",
                       cJSON_GetObjectItem(it, "layer")->valueint, cJSON_GetObjectItem(it, "units")->valueint,
                       cJSON_GetObjectItem(it, "multiplicity_found")->valueint,
                       cJSON_GetObjectItem(it, "multiplicity_min")->valueint,
                       cJSON_GetObjectItem(it, "multiplicity_max")->valueint,
                       cJSON_GetObjectItem(it, "predicted_multiplicity")->valueint,
                       cJSON_GetObjectItem(it, "stability_margin")->valuedouble);
        }
        cJSON_Delete(doc);
    }
    nt_transforms_free(list, n_list);
    nt_engine_free(e);
    cli_job_free(&job);
    return 0;
}
