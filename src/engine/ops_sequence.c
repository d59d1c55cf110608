/* ops_sequence.c: the ops on sequences (T tokens of D features per sample, token-major):
 * the core of multi-head self-attention and the mean over tokens, each with the four rules
 * of ops.c (batch rows, k tangents).
 *
 * Attention core.  Its input is each sample's T x 3D rows [Q | K | V] (the in-projection, a
 * per-token dense node), its output the T x D rows [O_1 | ... | O_H] (then the out-projection,
 * another per-token dense node).  Per sample and head, with c = 1/sqrt(d_head), rs(M) the row
 * sums of M, * the elementwise product and the causal mask S_ij = -inf for j > i (P_ij = 0):
 *   FWD     S = c Q K^T,  P = softmax_rows(S),  O = P V
 *   TAN     S. = c (Q. K^T + Q K.^T),  P. = P * (S. - rs(P * S.)),  O. = P. V + P V.
 *   ADJ     P_bar = O_bar V^T,  V_bar = P^T O_bar,  S_bar = P * (P_bar - rs(P * P_bar)),
 *           Q_bar = c S_bar K,  K_bar = c S_bar^T Q
 *   ADJTAN  P_bar. = O_bar. V^T + O_bar V.^T,  V_bar. = P.^T O_bar + P^T O_bar.,
 *           S_bar. = P. * (P_bar - rs(P * P_bar)) + P * (P_bar. - rs(P. * P_bar + P * P_bar.)),
 *           Q_bar. = c (S_bar. K + S_bar K.),  K_bar. = c (S_bar.^T Q + S_bar^T Q.)
 * The weights P of every sample and head are kept (d1). */
#include <math.h>
#include <string.h>
#include "tape.h"

/* C (M x N, ldc) = beta C + alpha op(A) op(B) */
static void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K, double alpha,
                 const double *A, int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc)
{
    cblas_dgemm(ROW, ta, tb, (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* P = softmax of each row of S (T x T) in place, entries j > i masked when causal */
static void softmax_rows(double *S, int64_t T, int causal)
{
    for (int64_t i = 0; i < T; i++) {
        double *s = S + i * T, mx = -INFINITY, sum = 0;
        const int64_t end = causal ? i + 1 : T;
        for (int64_t j = 0; j < end; j++) mx = fmax(mx, s[j]);
        for (int64_t j = 0; j < end; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
        for (int64_t j = 0; j < T; j++) s[j] = j < end ? s[j] / sum : 0.0;
    }
}

/* out = P * (M - rs(P * M)) (T x T): the softmax's Jacobian on M (it is symmetric); out may be M */
static void softmax_jac(const double *P, const double *M, int64_t T, double *out)
{
    for (int64_t i = 0; i < T; i++) {
        double r = 0;
        for (int64_t j = 0; j < T; j++) r += P[i * T + j] * M[i * T + j];
        for (int64_t j = 0; j < T; j++) out[i * T + j] = P[i * T + j] * (M[i * T + j] - r);
    }
}

void nt_op_attn(nt_engine *e, nt_node *p, int action)
{
    nt_node *q = &e->nodes[p->in];
    const nt_layer *L = p->layer;
    const int64_t n = e->n, k = e->kk, T = p->tokens, D = p->width / T, H = L->heads, dh = D / H;
    const int64_t D3 = 3 * D, wi = T * D3, wo = T * D;
    const double c = 1.0 / sqrt((double)dh);
    double *A = p->work, *Pb = A + T * T, *Sb = Pb + T * T, *Pbt = Sb + T * T, *Sbt = Pbt + T * T;
    for (int64_t r = 0; r < n; r++)
        for (int64_t h = 0; h < H; h++) {
            const double *X = q->val + r * wi + h * dh, *Q = X, *K = X + D, *V = X + 2 * D;
            double *P = p->d1 + (r * H + h) * T * T;
            const double *Ob = p->adj + r * wo + h * dh;
            switch (action) {
            case NT_FWD:
                gemm(NT, TR, T, T, dh, c, Q, D3, K, D3, 0.0, P, T);
                softmax_rows(P, T, L->causal);
                gemm(NT, NT, T, dh, T, 1.0, P, T, V, D3, 0.0, p->val + r * wo + h * dh, D);
                break;
            case NT_TAN:
                for (int64_t j = 0; j < k; j++) {
                    const double *Xt = q->tan + (r * k + j) * wi + h * dh;
                    double *Ot = p->tan + (r * k + j) * wo + h * dh;
                    gemm(NT, TR, T, T, dh, c, Xt, D3, K, D3, 0.0, A, T);
                    gemm(NT, TR, T, T, dh, c, Q, D3, Xt + D, D3, 1.0, A, T);
                    softmax_jac(P, A, T, A);
                    gemm(NT, NT, T, dh, T, 1.0, A, T, V, D3, 0.0, Ot, D);
                    gemm(NT, NT, T, dh, T, 1.0, P, T, Xt + 2 * D, D3, 1.0, Ot, D);
                }
                break;
            case NT_ADJ: {   /* assigns this head's columns of [Q_bar | K_bar | V_bar] */
                double *Xb = q->adj + r * wi + h * dh;
                gemm(NT, TR, T, T, dh, 1.0, Ob, D, V, D3, 0.0, Pb, T);
                gemm(TR, NT, T, dh, T, 1.0, P, T, Ob, D, 0.0, Xb + 2 * D, D3);
                softmax_jac(P, Pb, T, Sb);
                gemm(NT, NT, T, dh, T, c, Sb, T, K, D3, 0.0, Xb, D3);
                gemm(TR, NT, T, dh, T, c, Sb, T, Q, D3, 0.0, Xb + D, D3);
                break;
            }
            case NT_ADJTAN:
                gemm(NT, TR, T, T, dh, 1.0, Ob, D, V, D3, 0.0, Pb, T);
                softmax_jac(P, Pb, T, Sb);
                for (int64_t j = 0; j < k; j++) {
                    const double *Xt = q->tan + (r * k + j) * wi + h * dh, *Obt = p->adjtan + (r * k + j) * wo + h * dh;
                    double *Xbt = q->adjtan + (r * k + j) * wi + h * dh;
                    /* P. as in TAN */
                    gemm(NT, TR, T, T, dh, c, Xt, D3, K, D3, 0.0, A, T);
                    gemm(NT, TR, T, T, dh, c, Q, D3, Xt + D, D3, 1.0, A, T);
                    softmax_jac(P, A, T, A);
                    /* P_bar. = O_bar. V^T + O_bar V.^T */
                    gemm(NT, TR, T, T, dh, 1.0, Obt, D, V, D3, 0.0, Pbt, T);
                    gemm(NT, TR, T, T, dh, 1.0, Ob, D, Xt + 2 * D, D3, 1.0, Pbt, T);
                    /* V_bar. = P.^T O_bar + P^T O_bar. */
                    gemm(TR, NT, T, dh, T, 1.0, A, T, Ob, D, 0.0, Xbt + 2 * D, D3);
                    gemm(TR, NT, T, dh, T, 1.0, P, T, Obt, D, 1.0, Xbt + 2 * D, D3);
                    /* S_bar. = P. * (P_bar - rs(P * P_bar)) + P * (P_bar. - rs(P. * P_bar + P * P_bar.)) */
                    for (int64_t i = 0; i < T; i++) {
                        double r0 = 0, r1 = 0;
                        for (int64_t m = 0; m < T; m++) {
                            r0 += P[i * T + m] * Pb[i * T + m];
                            r1 += A[i * T + m] * Pb[i * T + m] + P[i * T + m] * Pbt[i * T + m];
                        }
                        for (int64_t m = 0; m < T; m++)
                            Sbt[i * T + m] = A[i * T + m] * (Pb[i * T + m] - r0) + P[i * T + m] * (Pbt[i * T + m] - r1);
                    }
                    /* Q_bar. = c (S_bar. K + S_bar K.),  K_bar. = c (S_bar.^T Q + S_bar^T Q.) */
                    gemm(NT, NT, T, dh, T, c, Sbt, T, K, D3, 0.0, Xbt, D3);
                    gemm(NT, NT, T, dh, T, c, Sb, T, Xt + D, D3, 1.0, Xbt, D3);
                    gemm(TR, NT, T, dh, T, c, Sbt, T, Q, D3, 0.0, Xbt + D, D3);
                    gemm(TR, NT, T, dh, T, c, Sb, T, Xt, D3, 1.0, Xbt + D, D3);
                }
                break;
            }
        }
}

/* ---- mean over tokens:  y = (1/T) sum_t x_t, linear: the same map on tangents, its
 * transpose on adjoints (every token gets y_bar / T) */
void nt_op_mean_tokens(nt_engine *e, nt_node *p, int action)
{
    nt_node *q = &e->nodes[p->in];
    const int64_t T = q->tokens, D = p->width, rows = action == NT_FWD || action == NT_ADJ ? e->n : e->n * e->kk;
    const double inv = 1.0 / (double)T;
    for (int64_t r = 0; r < rows; r++) {
        switch (action) {
        case NT_FWD: case NT_TAN: {
            const double *x = (action == NT_FWD ? q->val : q->tan) + r * T * D;
            double *y = (action == NT_FWD ? p->val : p->tan) + r * D;
            for (int64_t i = 0; i < D; i++) y[i] = x[i];
            for (int64_t t = 1; t < T; t++)
                for (int64_t i = 0; i < D; i++) y[i] += x[t * D + i];
            for (int64_t i = 0; i < D; i++) y[i] *= inv;
            break;
        }
        default: {
            const double *yb = (action == NT_ADJ ? p->adj : p->adjtan) + r * D;
            double *xb = (action == NT_ADJ ? q->adj : q->adjtan) + r * T * D;
            for (int64_t t = 0; t < T; t++)
                for (int64_t i = 0; i < D; i++) xb[t * D + i] = yb[i] * inv;
        }
        }
    }
}
