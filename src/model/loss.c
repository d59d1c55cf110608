/* loss.c: the per-sample losses of docs/interface.md, with u = dl/df and U w = (d2l/df2) w.
 * The engine's loss head and the identities of docs/theory.md (R, grad R, (S2)) share these. */
#include <math.h>
#include <string.h>
#include "noether.h"

static const char *loss_names[NT_LOSS_COUNT] = {
    "mse", "cross_entropy", "logistic", "exponential"
};

const char *nt_loss_name(nt_loss l)
{
    return (l >= 0 && l < NT_LOSS_COUNT) ? loss_names[l] : "?";
}

/* the shift m = max f and s = sum_i e^{f_i - m}: p_i = e^{f_i - m} / s, logsumexp(f) = m + log s
 * (no buffer of K: K is the user's output width) */
static void softmax_shift(int K, const double *f, double *m, double *s)
{
    *m = f[0];
    for (int i = 1; i < K; i++) if (f[i] > *m) *m = f[i];
    *s = 0;
    for (int i = 0; i < K; i++) *s += exp(f[i] - *m);
}

/* softmax p of f (p may be NULL) and logsumexp(f), shifted by max f for stability */
static double softmax(int K, const double *f, double *p)
{
    double m, s;
    softmax_shift(K, f, &m, &s);
    for (int i = 0; p && i < K; i++) p[i] = exp(f[i] - m) / s;
    return m + log(s);
}

/* sigma(t) = 1/(1+e^-t), stable */
static double sigm(double t)
{
    if (t >= 0) return 1.0 / (1.0 + exp(-t));
    double e = exp(t);
    return e / (1.0 + e);
}

double nt_loss_eval(nt_loss l, int K, const double *f, const double *y, double *u)
{
    switch (l) {
    case NT_LOSS_CROSS_ENTROPY: {   /* logsumexp(f) - f_y;  u = p - e_y */
        int c = (int)y[0];
        double lse = softmax(K, f, u);
        if (u) u[c] -= 1;
        return lse - f[c];
    }
    case NT_LOSS_LOGISTIC: {        /* log(1 + e^{-yf});  u = -y sigma(-yf) */
        double m = y[0] * f[0];
        if (u) u[0] = -y[0] * sigm(-m);
        return m > 0 ? log1p(exp(-m)) : -m + log1p(exp(m));
    }
    case NT_LOSS_EXPONENTIAL: {     /* e^{-yf};  u = -y e^{-yf} */
        double e = exp(-y[0] * f[0]);
        if (u) u[0] = -y[0] * e;
        return e;
    }
    case NT_LOSS_MSE:
    default: {                      /* |f - y|^2 / 2;  u = f - y */
        double s = 0;
        for (int i = 0; i < K; i++) {
            double r = f[i] - y[i];
            if (u) u[i] = r;
            s += r * r;
        }
        return 0.5 * s;
    }
    }
}

void nt_loss_hess_apply(nt_loss l, int K, const double *f, const double *y,
                        const double *w, double *Uw)
{
    switch (l) {
    case NT_LOSS_CROSS_ENTROPY: {   /* U = diag(p) - p p^T */
        double m, s, pw = 0;
        softmax_shift(K, f, &m, &s);
        for (int i = 0; i < K; i++) pw += exp(f[i] - m) / s * w[i];
        for (int i = 0; i < K; i++) Uw[i] = exp(f[i] - m) / s * (w[i] - pw);
        break;
    }
    case NT_LOSS_LOGISTIC: {        /* U = y^2 sigma(yf) sigma(-yf) */
        double m = y[0] * f[0];
        Uw[0] = y[0] * y[0] * sigm(m) * sigm(-m) * w[0];
        break;
    }
    case NT_LOSS_EXPONENTIAL:       /* U = y^2 e^{-yf} */
        Uw[0] = y[0] * y[0] * exp(-y[0] * f[0]) * w[0];
        break;
    case NT_LOSS_MSE:
    default:                        /* U = I */
        for (int i = 0; i < K; i++) Uw[i] = w[i];
        break;
    }
}
