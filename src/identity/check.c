/* check.c: the coupled identities of docs/theory.md, evaluated at theta with each side computed
 * independently from engine primitives (gradient, Hessian-vector products, outputs, the
 * loss derivatives u and U, and the output VJP).  Weight decay gamma is part of the
 * engine's loss, so the left sides use g_gamma and H_gamma and the right sides carry the
 * gamma terms explicitly:
 *   continuous generator xi = A theta + c with output generator B:
 *     (F1gamma)  g_gamma^T xi                 = R + gamma theta^T xi,     R = E[u^T B f]
 *     (S1gamma)  H_gamma xi + A^T g_gamma     = grad R + gamma (xi + A^T theta),
 *                grad R = E[J^T (U B f + B^T u)]
 *     (S2gamma)  xi^T H_gamma xi + g_gamma^T A xi = E[(Bf)^T U (Bf) + u^T B^2 f]
 *                                                 + gamma (|xi|^2 + theta^T A xi)
 *   discrete map T with output map rho (the engine's output map gives L^rho):
 *     (D1gamma)  T^T g_gamma(T theta) = grad L^rho(theta) + gamma T^T T theta,
 *                T^T H_gamma(T theta) T v = grad^2 L^rho(theta) v + gamma T^T T v  (probes v)
 *     at the fixed point theta* = (theta + T theta)/2 of a symmetry: T g = g, T H v = H T v.
 * Sizes: a residual is |lhs - rhs| / (size(lhs) + size(rhs)), the size of a side being the
 * magnitude of what it was computed from: sum |a_i b_i| for a dot product a^T b, the norm
 * for a vector, and s_H |xi| for H xi, where s_H = |H v_r| / |v_r| is the typical curvature
 * along a random direction (so H xi = 0 is measured against the scale of H, not round-off).
 * The gradient is itself a mean of per-sample terms J_n^T u_n, and u_n (f - y for mse) a
 * difference: its magnitude is the vector gabs = (1/N) sum_n |J_n^T m_n| + gamma |theta|,
 * m_n the magnitude of u_n's terms, which stays of the order of the terms where they cancel
 * (near a minimum |g| -> 0 while its round-off does not), so that g^T xi and |g| are sized
 * by gabs^T |xi| and |gabs|. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "noether.h"

#define N_PROBES 2
/* the seed of the probe vectors P (N(0, 1) entries, stream 1): s_H and (D1gamma)'s probes */
#define PROBE_SEED 2024

typedef struct {
    nt_engine *e;
    const nt_model *m;
    const nt_dataset *ds;
    const double *theta;
    int64_t d, N;
    int K;
    double gam, s_H;
    double *g;      /* g_gamma(theta) */
    double *gabs;   /* its magnitude: (1/N) sum_n |J_n^T m_n| + gamma |theta| */
    double gabs_norm;
    double *F, *u;  /* outputs and dl/df per sample (N x K) */
    double *P, *HP; /* probe vectors and H_gamma(theta) times them (N_PROBES x d) */
    double *w[8];   /* scratch vectors of length d, allocated once */
    double *wp[4];  /* scratch blocks of N_PROBES x d */
    double *seed;   /* N x K */
    double *kw;     /* 3 K + 2 K^2: Bf, BBf, UBf of one sample, B and rho (K x K) */
    double *red;    /* d + 4: a vector's and four scalars' sums on their way through the engine's hook */
    int rc;         /* the first engine error (the check stops there) */
    nt_error *err;
} ctx;

/* An engine call's status: the first error is kept, with its message (later calls, if any,
 * do not overwrite it). */
static void keep(ctx *c, int rc)
{
    if (c->rc == NT_OK) c->rc = rc;
}
#define ERR(c) ((c)->rc == NT_OK ? (c)->err : NULL)

/* A sharded engine (nt_engine_set_reduce): v (d) and s (ns <= 4) summed over every shard's
 * samples, *N their count; the sums this check forms itself from the outputs are then the
 * whole set's, as the engine's products are (docs/theory.md §8).  Unsharded: nothing. */
static void reduce_sums(ctx *c, double *v, double *s, int ns, int64_t *N)
{
    if (!nt_engine_sharded(c->e) || c->rc != NT_OK) return;   /* no exchange after an error */
    const int64_t d = c->d;
    memcpy(c->red, v, sizeof(double) * (size_t)d);
    memcpy(c->red + d, s, sizeof(double) * (size_t)ns);
    keep(c, nt_engine_reduce(c->e, c->red, d + ns, N, ERR(c)));
    memcpy(v, c->red, sizeof(double) * (size_t)d);
    memcpy(s, c->red + d, sizeof(double) * (size_t)ns);
}

static double dot(int64_t n, const double *a, const double *b) { return cblas_ddot((int)n, a, 1, b, 1); }

static double absdot(int64_t n, const double *a, const double *b)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs(a[i] * b[i]);
    return s;
}

static double resid(double diff, double size)
{
    return fabs(diff) / (size > 1e-300 ? size : 1e-300);
}

/* |a - b| for vectors */
static double diffnorm(int64_t n, const double *a, const double *b)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s);
}

static void matvec(int K, const double *M, const double *x, double *y)
{
    for (int i = 0; i < K; i++) {
        y[i] = 0;
        for (int j = 0; j < K; j++) y[i] += M[i * K + j] * x[j];
    }
}

/* The equivariance terms of generator i with output generator B (all zero when B = 0):
 * R and its size, grad R (d), the (S2) sample term and its size. */
static void output_terms(ctx *c, const double *B, double *R, double *R_size, double *gradR,
                         double *s2, double *s2_size)
{
    const int K = c->K;
    double *seed = c->seed;
    double *Bf = c->kw, *BBf = Bf + K, *UBf = BBf + K;
    *R = *R_size = *s2 = *s2_size = 0;
    for (int64_t n = 0; n < c->N; n++) {
        const double *f = c->F + n * K, *u = c->u + n * K;
        const double *y = c->ds->y + n * c->ds->ydim;
        matvec(K, B, f, Bf);
        matvec(K, B, Bf, BBf);
        nt_loss_hess_apply(c->m->loss, K, f, y, Bf, UBf);
        double bub = 0;
        for (int k = 0; k < K; k++) {
            *R += u[k] * Bf[k];
            *R_size += fabs(u[k] * Bf[k]);
            bub += Bf[k] * UBf[k];
            *s2 += u[k] * BBf[k];
            *s2_size += fabs(u[k] * BBf[k]);
            /* seed_n = U B f + B^T u */
            double btu = 0;
            for (int j = 0; j < K; j++) btu += B[j * K + k] * u[j];
            seed[n * K + k] = UBf[k] + btu;
        }
        *s2 += bub;
        *s2_size += fabs(bub);
    }
    keep(c, nt_vjp(c->e, c->theta, c->ds, seed, gradR, ERR(c)));
    double sums[4] = {*R, *R_size, *s2, *s2_size};
    int64_t N = c->N;
    reduce_sums(c, gradR, sums, 4, &N);
    *R = sums[0]; *R_size = sums[1]; *s2 = sums[2]; *s2_size = sums[3];
    const double inv = 1.0 / (double)N;
    cblas_dscal((int)c->d, inv, gradR, 1);
    *R *= inv; *R_size *= inv; *s2 *= inv; *s2_size *= inv;
}

/* (F1gamma), (S1gamma), (S2gamma) for generator i of t, given xi and H_gamma xi */
static void check_generator(ctx *c, const nt_transform *t, int i, const double *xi,
                            const double *Hxi, nt_check_result *r)
{
    const int64_t d = c->d;
    const int K = c->K;
    const double gam = c->gam;
    double *Atg = c->w[0], *Axi = c->w[1], *Att = c->w[2], *gradR = c->w[3], *lhs = c->w[4], *rhs = c->w[5];
    double *B = c->kw + 3 * K, R = 0, R_size = 0, s2 = 0, s2_size = 0;
    nt_tr_apply_At(c->m, t, i, c->g, Atg);
    nt_tr_apply_A(c->m, t, i, xi, Axi);
    nt_tr_apply_At(c->m, t, i, c->theta, Att);
    nt_tr_output_B(c->m, t, i, B);
    int has_B = 0;
    for (int j = 0; j < K * K; j++) has_B |= B[j] != 0;
    memset(gradR, 0, sizeof(double) * (size_t)d);
    if (has_B) output_terms(c, B, &R, &R_size, gradR, &s2, &s2_size);
    const double xx = dot(d, xi, xi), nxi = sqrt(xx);

    /* (F1gamma) */
    double l1 = dot(d, c->g, xi), r1 = R + gam * dot(d, c->theta, xi);
    r->first_order = resid(l1 - r1, absdot(d, c->gabs, xi) + R_size + gam * absdot(d, c->theta, xi));

    /* (S1gamma) */
    for (int64_t j = 0; j < d; j++) {
        lhs[j] = Hxi[j] + Atg[j];
        rhs[j] = gradR[j] + gam * (xi[j] + Att[j]);
    }
    double size1 = nt_norm2(d, Hxi) + c->s_H * nxi + nt_norm2(d, Atg) + nt_norm2(d, gradR) +
                   gam * (nxi + nt_norm2(d, Att));
    r->s1 = resid(diffnorm(d, lhs, rhs), size1);

    /* (S2gamma) */
    double xHx = dot(d, xi, Hxi), l2 = xHx + dot(d, c->g, Axi);
    double r2 = s2 + gam * (xx + dot(d, c->theta, Axi));
    double size2 = fabs(xHx) + c->s_H * xx + absdot(d, c->gabs, Axi) + s2_size +
                   gam * (xx + absdot(d, c->theta, Axi));
    r->s2 = resid(l2 - r2, size2);
    r->second_order = fmax(r->s1, r->s2);
}

/* (D1gamma) for a discrete map, and the fixed-point identities of a built-in symmetry */
static void check_map(ctx *c, const nt_transform *t, nt_check_result *r)
{
    const int64_t d = c->d;
    const int K = c->K;
    const double gam = c->gam;
    double *Tth = c->w[0], *gT = c->w[1], *lhs = c->w[2], *rhs = c->w[3], *tmp = c->w[4], *grho = c->w[5];
    double *TP = c->wp[0], *HTP = c->wp[1], *HPrho = c->wp[2];
    nt_tr_apply_T(c->m, t, c->theta, Tth);
    for (int p = 0; p < N_PROBES; p++) nt_tr_apply_T(c->m, t, c->P + p * d, TP + p * d);
    /* left: T^T g_gamma(T theta), T^T H_gamma(T theta) T v */
    keep(c, nt_hvp(c->e, Tth, c->ds, N_PROBES, TP, HTP, gT, NULL, ERR(c)));
    if (c->rc != NT_OK) return;   /* no product after an error (a sharded engine's ranks stop together) */
    /* right: grad L^rho(theta) and its Hessian products, from the engine with the output map */
    if (t->equivariance) {
        double *rho = c->kw + 3 * K + K * K;
        nt_tr_output_rho(c->m, t, rho);
        nt_engine_set_output_map(c->e, rho);
        keep(c, nt_hvp(c->e, c->theta, c->ds, N_PROBES, c->P, HPrho, grho, NULL, ERR(c)));
        nt_engine_set_output_map(c->e, NULL);
    } else {
        memcpy(grho, c->g, sizeof(double) * d);
        memcpy(HPrho, c->HP, sizeof(double) * N_PROBES * d);
    }
    /* grad L^rho + gamma T^T T theta = (engine's g_gamma^rho - gamma theta) + gamma T^T T theta */
    nt_tr_apply_Tt(c->m, t, gT, lhs);
    nt_tr_apply_Tt(c->m, t, Tth, tmp);
    for (int64_t j = 0; j < d; j++) rhs[j] = grho[j] - gam * c->theta[j] + gam * tmp[j];
    r->first_order = resid(diffnorm(d, lhs, rhs), fmax(nt_norm2(d, lhs), c->gabs_norm) + fmax(nt_norm2(d, rhs), c->gabs_norm));
    r->second_order = 0;
    for (int p = 0; p < N_PROBES; p++) {
        nt_tr_apply_Tt(c->m, t, HTP + p * d, lhs);
        nt_tr_apply_Tt(c->m, t, TP + p * d, tmp);
        for (int64_t j = 0; j < d; j++) rhs[j] = HPrho[p * d + j] - gam * c->P[p * d + j] + gam * tmp[j];
        r->second_order = fmax(r->second_order, resid(diffnorm(d, lhs, rhs), nt_norm2(d, lhs) + nt_norm2(d, rhs)));
    }
    /* fixed point of a built-in symmetry (each is an orthogonal involution, so
     * (theta + T theta)/2 is the projection onto Fix(T)): T g = g and T H v = H T v */
    r->fixed_gradient = r->fixed_hessian = NAN;
    if (!t->equivariance && t->kind != NT_TR_DENSE && c->rc == NT_OK) {
        double *V2 = c->wp[0], *HV2 = c->wp[1];   /* N_PROBES >= 2 */
        for (int64_t j = 0; j < d; j++) Tth[j] = 0.5 * (c->theta[j] + Tth[j]);
        memcpy(V2, c->P, sizeof(double) * d);
        nt_tr_apply_T(c->m, t, c->P, V2 + d);
        keep(c, nt_hvp(c->e, Tth, c->ds, 2, V2, HV2, gT, NULL, ERR(c)));
        nt_tr_apply_T(c->m, t, gT, lhs);
        r->fixed_gradient = resid(diffnorm(d, lhs, gT), 2 * fmax(nt_norm2(d, gT), c->gabs_norm));
        nt_tr_apply_T(c->m, t, HV2, lhs);
        r->fixed_hessian = resid(diffnorm(d, lhs, HV2 + d), nt_norm2(d, lhs) + nt_norm2(d, HV2 + d));
    }
}

/* generators waiting for their block product */
typedef struct {
    double *Xi, *HXi;   /* kb x d: the generators xi and H_gamma xi */
    int *gen, *slot;    /* generator index within its entry, result slot */
    int n;
} block;

static void flush(ctx *c, const nt_transform *list, block *b, nt_check_result *results)
{
    if (b->n == 0 || c->rc != NT_OK) { b->n = 0; return; }   /* nothing more after an error */
    keep(c, nt_hvp(c->e, c->theta, c->ds, b->n, b->Xi, b->HXi, NULL, NULL, ERR(c)));
    for (int j = 0; j < b->n && c->rc == NT_OK; j++) {
        nt_check_result *r = &results[b->slot[j]];
        check_generator(c, &list[r->entry], b->gen[j], b->Xi + (int64_t)j * c->d, b->HXi + (int64_t)j * c->d, r);
    }
    b->n = 0;
}

int nt_check_count(const nt_transform *list, int n)
{
    int total = 0;
    for (int i = 0; i < n; i++) total += list[i].discrete ? 1 : list[i].generators;
    return total;
}

/* The magnitude of the terms of u = dl/df for one sample: |f| + |y| for mse (u = f - y),
 * p + onehot(y) for cross-entropy (u = p - onehot(y)), |u| for the margin losses (a
 * product, no cancellation). */
static void u_magnitude(nt_loss loss, int K, const double *f, const double *y, const double *u, double *mag)
{
    for (int k = 0; k < K; k++) {
        if (loss == NT_LOSS_MSE) mag[k] = fabs(f[k]) + fabs(y[k]);
        else if (loss == NT_LOSS_CROSS_ENTROPY) mag[k] = u[k] + 2.0 * (k == (int)y[0]);   /* p + onehot */
        else mag[k] = fabs(u[k]);
    }
}

/* gabs = (1/N) sum_n |J_n^T m_n| + gamma |theta|, m_n the magnitude of u_n's terms: the size
 * of the gradient's terms even where they cancel (per sample up to 2048 samples; beyond,
 * in groups of ceil(N / 2048), whose own cancellation is then not counted).  Where there
 * are no per-sample terms (batch normalization couples the samples) or a group's result is
 * not finite: |g| plus the gradient's RMS entry, a floor for entries that vanish
 * identically (the bias right before a batch normalization: its gradient is a sum over the
 * batch of adjoints whose mean the normalization removed). */
static void gradient_magnitude(ctx *c)
{
    const int64_t d = c->d, N = c->N, G = (N + 2047) / 2048;
    const int K = c->K;
    double *gn = c->w[0];
    int finite = !nt_model_batch_coupled(c->m);   /* per sample, a batch norm is not the model */
    memset(c->gabs, 0, sizeof(double) * (size_t)d);
    for (int64_t s = 0; s < N; s++)
        u_magnitude(c->m->loss, K, c->F + s * K, c->ds->y + s * c->ds->ydim, c->u + s * K, c->seed + s * K);
    for (int64_t s = 0; s < N && finite; s += G) {
        nt_dataset part = *c->ds;
        part.n = N - s < G ? N - s : G;
        part.x = c->ds->x + s * c->ds->dim;
        part.y = c->ds->y ? c->ds->y + s * c->ds->ydim : NULL;
        keep(c, nt_vjp(c->e, c->theta, &part, c->seed + s * K, gn, ERR(c)));
        for (int64_t i = 0; i < d; i++) {
            finite &= isfinite(gn[i]);
            c->gabs[i] += fabs(gn[i]);
        }
    }
    double broken = !finite;   /* over the shards: finite only where every one is */
    int64_t Nall = N;
    reduce_sums(c, c->gabs, &broken, 1, &Nall);
    finite = broken == 0;
    const double rms = nt_norm2(d, c->g) / sqrt((double)d);
    for (int64_t i = 0; i < d; i++)
        c->gabs[i] = finite ? c->gabs[i] / (double)Nall + c->gam * fabs(c->theta[i]) : fabs(c->g[i]) + rms;
    /* Per-sample terms can vanish too: each sample's loss is invariant to an attention
     * layer's key bias, its gradient cancels inside the softmax's adjoint (a sum over keys),
     * so |J_n^T m_n| there is that sum's round-off, not a scale.  No entry is sized below the
     * RMS entry of gabs: the scale of the round-off of such an entry. */
    const double floor = nt_norm2(d, c->gabs) / sqrt((double)d);
    for (int64_t i = 0; finite && i < d; i++) c->gabs[i] = fmax(c->gabs[i], floor);
    c->gabs_norm = nt_norm2(d, c->gabs);
}

int nt_check(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta,
             const nt_transform *list, int n, double tol, nt_check_result *results, nt_error *err)
{
    const int64_t d = m->d, N = ds->n;
    const int K = m->output, kb = nt_engine_k(e);
    ctx c = { .e = e, .m = m, .ds = ds, .theta = theta, .d = d, .N = N, .K = K, .gam = m->weight_decay, .err = err };
    c.g = malloc(sizeof(double) * d);
    c.gabs = malloc(sizeof(double) * d);
    c.F = malloc(sizeof(double) * (size_t)(N * K));
    c.u = malloc(sizeof(double) * (size_t)(N * K));
    c.P = malloc(sizeof(double) * N_PROBES * d);
    c.HP = malloc(sizeof(double) * N_PROBES * d);
    c.seed = malloc(sizeof(double) * (size_t)(N * K));
    for (int i = 0; i < 8; i++) c.w[i] = malloc(sizeof(double) * d);
    for (int i = 0; i < 4; i++) c.wp[i] = malloc(sizeof(double) * N_PROBES * d);
    c.kw = malloc(sizeof(double) * (size_t)(3 * K + 2 * K * K));
    c.red = malloc(sizeof(double) * (size_t)(d + 4));
    block b = { malloc(sizeof(double) * kb * d), malloc(sizeof(double) * kb * d),
                malloc(sizeof(int) * kb), malloc(sizeof(int) * kb), 0 };
    int *counter = calloc((size_t)(n > 0 ? n : 1), sizeof(int));
    int ok = c.g && c.gabs && c.F && c.u && c.P && c.HP && c.seed && c.kw && c.red && b.Xi && b.HXi && b.gen && b.slot && counter;
    for (int i = 0; i < 8; i++) ok &= c.w[i] != NULL;
    for (int i = 0; i < 4; i++) ok &= c.wp[i] != NULL;
    if (!ok) {
        c.rc = nt_fail(err, NT_EFAIL, "check: out of memory for the workspace (%lld samples, %lld parameters)",
                       (long long)N, (long long)d);
        goto done;
    }
    /* shared at theta: g, outputs, u, probes and H times them, the curvature scale */
    for (int64_t j = 0; j < N_PROBES * d; j++) c.P[j] = nt_rand_normal(PROBE_SEED, 1, (uint64_t)j);
    keep(&c, nt_hvp(e, theta, ds, N_PROBES, c.P, c.HP, c.g, NULL, ERR(&c)));
    keep(&c, nt_outputs(e, theta, ds, c.F, ERR(&c)));
    if (c.rc != NT_OK) goto done;
    c.s_H = nt_norm2(d, c.HP) / nt_norm2(d, c.P);
    for (int64_t s = 0; s < N; s++) nt_loss_eval(m->loss, K, c.F + s * K, ds->y + s * ds->ydim, c.u + s * K);
    gradient_magnitude(&c);

    /* continuous generators in blocks of kb (one block HVP each); discrete maps one by one */
    memset(results, 0, sizeof *results * (size_t)nt_check_count(list, n));
    int out = 0;
    for (int t = 0; t < n && c.rc == NT_OK; t++) {
        if (list[t].discrete) {
            results[out].entry = t;
            check_map(&c, &list[t], &results[out++]);
            continue;
        }
        for (int i = 0; i < list[t].generators; i++) {
            nt_tr_xi(m, &list[t], i, theta, b.Xi + (int64_t)b.n * d);
            results[out].entry = t;
            b.gen[b.n] = i;
            b.slot[b.n++] = out++;
            if (b.n == kb) flush(&c, list, &b, results);
        }
    }
    flush(&c, list, &b, results);
    if (c.rc != NT_OK) goto done;
    /* names, kinds, verdicts */
    for (int r = 0; r < out; r++) {
        nt_check_result *x = &results[r];
        const nt_transform *t = &list[x->entry];
        nt_generator_name(m, t, counter[x->entry]++, x->name, sizeof x->name);
        x->discrete = t->discrete;
        x->equivariance = t->equivariance;
        if (!t->discrete) x->fixed_gradient = x->fixed_hessian = NAN;
        else x->s1 = x->s2 = NAN;
        x->holds = x->first_order <= tol && x->second_order <= tol &&
                   !(x->fixed_gradient > tol) && !(x->fixed_hessian > tol);
    }
done:
    free(b.Xi); free(b.HXi); free(b.gen); free(b.slot); free(counter); free(c.kw); free(c.red);
    free(c.g); free(c.gabs); free(c.F); free(c.u); free(c.P); free(c.HP); free(c.seed);
    for (int i = 0; i < 8; i++) free(c.w[i]);
    for (int i = 0; i < 4; i++) free(c.wp[i]);
    return c.rc;
}
