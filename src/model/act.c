/* act.c: the activations and their first two derivatives, sigma, sigma', sigma''.
 * These three numbers are all the engine needs: the tangent uses sigma', the adjoint
 * sigma', the adjoint-tangent sigma'' (DESIGN.md's worked example). */
#include <math.h>
#include "registry.h"

static const char *act_names[NT_ACT_COUNT] = {
    "identity", "relu", "leaky_relu", "tanh", "sigmoid", "softplus", "gelu", "square"
};

const char *nt_act_name(nt_act a)
{
    return (a >= 0 && a < NT_ACT_COUNT) ? act_names[a] : "?";
}

/* logistic sigmoid, stable for large |z| */
static double sigmoid(double z)
{
    if (z >= 0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

void nt_act_eval(nt_act a, double alpha, double z, double *s, double *ds, double *d2s)
{
    double v, d1, d2;
    switch (a) {
    case NT_ACT_RELU:        /* max(z, 0) */
        v = z > 0 ? z : 0; d1 = z > 0 ? 1 : 0; d2 = 0; break;
    case NT_ACT_LEAKY_RELU:  /* z for z > 0, alpha z otherwise */
        v = z > 0 ? z : alpha * z; d1 = z > 0 ? 1 : alpha; d2 = 0; break;
    case NT_ACT_TANH: {      /* t' = 1 - t^2, t'' = -2 t (1 - t^2) */
        double t = tanh(z);
        v = t; d1 = 1 - t * t; d2 = -2 * t * d1; break;
    }
    case NT_ACT_SIGMOID: {   /* s' = s(1-s), s'' = s(1-s)(1-2s) */
        double p = sigmoid(z);
        v = p; d1 = p * (1 - p); d2 = d1 * (1 - 2 * p); break;
    }
    case NT_ACT_SOFTPLUS: {  /* log(1+e^z), ' = sigmoid(z), '' = s(1-s) */
        double p = sigmoid(z);
        v = z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); d1 = p; d2 = p * (1 - p); break;
    }
    case NT_ACT_GELU: {      /* z Phi(z); ' = Phi + z phi; '' = phi (2 - z^2) */
        double Phi = 0.5 * erfc(-z / M_SQRT2);
        double phi = exp(-0.5 * z * z) / sqrt(2 * M_PI);
        v = z * Phi; d1 = Phi + z * phi; d2 = phi * (2 - z * z); break;
    }
    case NT_ACT_SQUARE:      /* z^2 */
        v = z * z; d1 = 2 * z; d2 = 2; break;
    case NT_ACT_IDENTITY:
    default:
        v = z; d1 = 1; d2 = 0; break;
    }
    if (s) *s = v;
    if (ds) *ds = d1;
    if (d2s) *d2s = d2;
}

int nt_act_piecewise_linear(nt_act a)
{
    return a == NT_ACT_IDENTITY || a == NT_ACT_RELU || a == NT_ACT_LEAKY_RELU;
}

/* The same on n values; the piecewise-linear ones without a call or a branch per element,
 * and without sigma'' (zero) when d2s is NULL.  GCC turns the select into vector blends only
 * when it may assume that comparisons do not trap (they do not here: no FP exceptions are
 * enabled); otherwise it branches on the signs of z, random, and mispredicts half of them:
 * 12 % of a gradient was this loop. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-trapping-math")))
#endif
void nt_act_eval_n(nt_act a, double alpha, int64_t n, const double *restrict z, double *restrict s,
                   double *restrict ds, double *restrict d2s)
{
    switch (a) {
    case NT_ACT_RELU:
    case NT_ACT_LEAKY_RELU: {
        const double lo = a == NT_ACT_RELU ? 0.0 : alpha;
        for (int64_t i = 0; i < n; i++) {
            const double slope = z[i] > 0 ? 1.0 : lo;
            s[i] = slope * z[i];
            ds[i] = slope;
        }
        break;
    }
    case NT_ACT_IDENTITY:
        for (int64_t i = 0; i < n; i++) { s[i] = z[i]; ds[i] = 1; }
        break;
    default:
        for (int64_t i = 0; i < n; i++) nt_act_eval(a, alpha, z[i], &s[i], &ds[i], d2s ? &d2s[i] : NULL);
        return;
    }
    for (int64_t i = 0; d2s && i < n; i++) d2s[i] = 0;
}

/* The symmetry traits of each activation (registry.h; docs/theory.md §5), the one place they
 * are stated: positive homogeneity sigma(c z) = c^p sigma(z) for c > 0 (relu, leaky_relu,
 * identity: p = 1; square: p = 2), oddness sigma(-z) = -sigma(z) (identity, tanh),
 * evenness sigma(-z) = sigma(z) (square), linearity (identity). */
nt_traits nt_act_traits(nt_act a)
{
    switch (a) {
    case NT_ACT_IDENTITY: return (nt_traits){ .degree = 1, .odd = 1, .linear = 1 };
    case NT_ACT_RELU: case NT_ACT_LEAKY_RELU: return (nt_traits){ .degree = 1 };
    case NT_ACT_SQUARE: return (nt_traits){ .degree = 2, .even = 1 };
    case NT_ACT_TANH: return (nt_traits){ .odd = 1 };
    default: return (nt_traits){ 0 };   /* sigmoid, softplus, gelu: none */
    }
}
