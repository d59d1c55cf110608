/* catalogue.c: which transformations a model has (docs/theory.md §5), derived from its layers'
 * properties, never from a numerical test.  Between dense layers q and q+1 (hidden layer
 * l = q + 1) sit zero or more activations; their composite is
 *   positively homogeneous of degree p (relu, leaky_relu, identity: 1; square: 2; products)
 *     -> rescaling of each unit (A = +1 on its row and bias, -p on its column);
 *   linear (identity only, or none) -> gl(n), n^2 generators, and, when both layers have
 *     biases, the bias shifts b_l += s e_i, b_{l+1} -= s W_{l+1} e_i (the next bias absorbs a
 *     constant added before a linear map; affine generators, n of them);
 *   odd (tanh, identity only)       -> a sign flip of each unit;
 *   anything elementwise            -> swaps of adjacent units (S_n by its n-1 generators).
 * A skip connection (the start or end of a residual block) between dense q and q+1 carries
 * the units' values past the next layer: none of the unit-level entries holds across it,
 * nor a normalization's entries beyond it, nor homogeneity (x + g(x) is homogeneous only if
 * g has degree 1); within a block, between two of its dense layers, they all hold as usual.
 * A normalization between q and q+1 divides out each unit's (batch norm) or the vector's
 * (layer norm) scale: none of the plain unit-level entries above holds across it; its units'
 * rescalings against the next layer, swaps and flips move its own weight and bias too and
 * are listed by norms.c; the model is no longer homogeneous; and, when only positively homogeneous activations lie between
 * dense q and the normalization, W_q and b_q scaled together leave the loss unchanged
 * (the normalization divides the scale out): the scale symmetry, A = +1 on both; exact
 * only when the normalization's eps is 0 (with eps > 0 it is broken at O(eps / var)).  A
 * batch normalization normalizes each unit on its own: each unit's row and bias scale
 * alone (unit_scale).  A normalization right after dense q subtracts a mean, so a shift of
 * b_q that it removes is a symmetry for any eps: per unit for a batch normalization (the
 * batch mean), the same shift of every unit for a layer normalization (the feature mean),
 * there through the bias or through any column k of W_q (W_q + s 1 e_k^T adds the sample's
 * x_k to every unit).  Where a unit reaches a square through odd maps only, before any
 * normalization or skip, its value is even in (w_j, b_j): even_flip negates them alone.
 * On a sequence, dense layers, activations and layer norms act on each token alike, so all
 * of the above holds per token; the mean over tokens is linear, odd and of degree 1 (an
 * identity for these rules).  An attention layer mixes the tokens through its own
 * projections: nothing unit-level is listed across it (nor across a flatten of a sequence),
 * and the model is not homogeneous; but when it is the first thing (through activations)
 * to read dense q's units, it reads unit j through column j of its in-projection
 * [W_Q; W_K; W_V], which plays W_{q+1}'s part in every unit-level entry (nt_dense's reader); it brings its own per-head symmetries (heads.c):
 * gl_qk and gl_vo of each head and swaps of adjacent heads, whatever surrounds it.
 * The head: cross_entropy straight on the last dense layer -> logit translations; every
 * activation homogeneous -> homogeneity f(e^s theta_A) = e^{ks} f, an equivariance; K >= 2
 * -> swaps of adjacent outputs, a discrete equivariance (rho = the swap); neither with a
 * normalization after the last dense layer. */
#include <stdlib.h>
#include <string.h>
#include "units.h"

nt_transform *nt_tr_push(nt_tr_list *L, nt_transform_kind kind, int discrete, int equiv, int gens)
{
    if (L->n == L->cap) {
        L->cap = L->cap ? 2 * L->cap : 16;
        L->v = realloc(L->v, sizeof *L->v * (size_t)L->cap);
    }
    nt_transform *t = &L->v[L->n++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->discrete = discrete;
    t->equivariance = equiv;
    t->generators = gens;
    return t;
}

int nt_catalogue(const nt_model *m, nt_transform **out, int *n_out)
{
    nt_dense D[NT_MAX_LAYERS];
    int nd = nt_dense_layers(m, D);
    nt_tr_list L = {0};
    double total_degree = 0;   /* degree of the current value in theta (homogeneity) */
    int all_homogeneous = 1, trailing_acts = 0;
    /* the convolutions' channels (channels.c), and whether the layers before the first
     * dense one keep the value homogeneous (no normalization or skip there) */
    nt_channel_catalogue(m, &L);
    all_homogeneous = nt_channel_prefix_homogeneous(m, D[0].layer, &total_degree);
    for (int q = 0, li = 0; q < nd; q++) {
        /* the activations (and normalizations) after dense q */
        double p = 1;
        int linear = 1, odd = 1, normed = 0, scale = 0, direct = 0, crossed = 0, even = 0;
        int attn_reads = 0;   /* an attention layer reads the units first (its in-projection) */
        const nt_layer *first = NULL;   /* the first normalization after dense q */
        total_degree += 1;
        for (li = D[q].layer + 1; li < m->n_layers && m->layers[li].kind != NT_LAYER_DENSE; li++) {
            const nt_layer *Ln = &m->layers[li];
            if (Ln->kind == NT_LAYER_BRANCH || Ln->kind == NT_LAYER_ADD || Ln->kind == NT_LAYER_ATTENTION ||
                (Ln->kind == NT_LAYER_FLATTEN && Ln->tokens)) {   /* a skip connection, tokens mixed */
                attn_reads |= Ln->kind == NT_LAYER_ATTENTION && !crossed && !normed;
                crossed = 1;
                continue;
            }
            if (attn_reads) continue;   /* beyond the reader: not this layer's units' business */
            if (Ln->kind == NT_LAYER_MEAN_TOKENS || Ln->kind == NT_LAYER_FLATTEN) continue;   /* an identity here */
            if (Ln->kind == NT_LAYER_LAYERNORM || Ln->kind == NT_LAYER_BATCHNORM) {
                if (!normed && !crossed) {
                    /* reached through positively homogeneous acts; exact only without eps:
                     * (cz - c mean z) / sqrt(c^2 var z + eps) depends on c when eps > 0 */
                    first = Ln;
                    scale = p > 0 && Ln->eps == 0;
                    direct = li == D[q].layer + 1;
                }
                normed = 1;
                continue;
            }
            if (Ln->kind != NT_LAYER_ACT) { crossed = 1; continue; }   /* a kind these rules do not know: a barrier */
            nt_act a = m->layers[li].act;
            /* an even map after odd ones only, before any mixing: the composite is even */
            even |= nt_act_traits(a).even && odd && !normed && !crossed;
            p *= nt_act_traits(a).degree;
            linear &= nt_act_traits(a).linear;
            odd &= nt_act_traits(a).odd;
        }
        total_degree *= p;
        all_homogeneous &= p > 0 && !normed && !crossed;
        if (scale && first->kind == NT_LAYER_LAYERNORM) {
            nt_transform *t = nt_tr_push(&L, NT_TR_SCALE, 0, 0, 1);
            t->layer = q + 1;
            snprintf(t->name, sizeof t->name, "scale[layer=%d]", q + 1);
        }
        for (int j = 0; scale && first->kind == NT_LAYER_BATCHNORM && j < D[q].n_out; j++) {
            nt_transform *t = nt_tr_push(&L, NT_TR_UNIT_SCALE, 0, 0, 1);
            t->layer = q + 1; t->a = j;
            snprintf(t->name, sizeof t->name, "unit_scale[layer=%d,unit=%d]", q + 1, j);
        }
        /* the normalization subtracts the mean (any eps): a batch norm each unit's, so b_q[j] + s;
         * a layer norm the units' mean of each sample, so z + s 1: b_q + s 1 and W_q + s 1 e_k^T
         * (the constant x_k of each sample added to every unit) */
        const int has_b = D[q].off_b >= 0, per_unit = direct && first->kind == NT_LAYER_BATCHNORM;
        const int shifts = !direct ? 0 : per_unit ? (has_b ? D[q].n_out : 0) : has_b + D[q].n_in;
        if (shifts) {
            nt_transform *t = nt_tr_push(&L, NT_TR_NORM_SHIFT, 0, 0, shifts);
            t->layer = q + 1;
            t->p = !per_unit;
            snprintf(t->name, sizeof t->name, "norm_shift[layer=%d]", q + 1);
        }
        for (int j = 0; even && j < D[q].n_out; j++) {   /* sigma(-z) = sigma(z): unit j's inputs negated */
            nt_transform *t = nt_tr_push(&L, NT_TR_EVEN_FLIP, 1, 0, 1);
            t->layer = q + 1; t->a = j;
            snprintf(t->name, sizeof t->name, "even_flip[layer=%d,unit=%d]", q + 1, j);
        }
        if (q == nd - 1) { trailing_acts = li - D[q].layer - 1; break; }
        if (!attn_reads && (normed || crossed)) continue;
        const int l = q + 1, n = D[q].n_out;
        for (int j = 0; p > 0 && j < n; j++) {
            nt_transform *t = nt_tr_push(&L, NT_TR_RESCALE, 0, 0, 1);
            t->layer = l; t->a = j; t->p = p;
            snprintf(t->name, sizeof t->name, "rescale[layer=%d,unit=%d]", l, j);
        }
        if (linear) {
            nt_transform *t = nt_tr_push(&L, NT_TR_GL, 0, 0, n * n);
            t->layer = l;
            snprintf(t->name, sizeof t->name, "gl[layer=%d]", l);
        }
        if (linear && D[q].off_b >= 0 && D[q].rd_b >= 0) {
            nt_transform *t = nt_tr_push(&L, NT_TR_BIAS_SHIFT, 0, 0, n);
            t->layer = l;
            snprintf(t->name, sizeof t->name, "bias_shift[layer=%d]", l);
        }
        for (int j = 0; j + 1 < n; j++) {
            nt_transform *t = nt_tr_push(&L, NT_TR_SWAP, 1, 0, 1);
            t->layer = l; t->a = j; t->b = j + 1;
            snprintf(t->name, sizeof t->name, "swap[layer=%d,units=%d,%d]", l, j, j + 1);
        }
        for (int j = 0; odd && j < n; j++) {
            nt_transform *t = nt_tr_push(&L, NT_TR_SIGN_FLIP, 1, 0, 1);
            t->layer = l; t->a = j;
            snprintf(t->name, sizeof t->name, "sign_flip[layer=%d,unit=%d]", l, j);
        }
    }
    nt_norm_catalogue(m, &L);   /* the normalizations' units (norms.c) */
    for (int i = 0; i < m->n_layers; i++) {   /* the heads of every attention layer */
        const nt_layer *A = &m->layers[i];
        if (A->kind != NT_LAYER_ATTENTION) continue;
        const int dh = A->shape_in[0] / A->heads;
        for (int h = 0; h < A->heads; h++)
            for (int vo = 0; vo < 2; vo++) {
                nt_transform *t = nt_tr_push(&L, vo ? NT_TR_GL_VO : NT_TR_GL_QK, 0, 0, dh * dh);
                t->layer = i; t->a = h;
                snprintf(t->name, sizeof t->name, "%s[layer=%d,head=%d]", vo ? "gl_vo" : "gl_qk", i, h);
            }
        for (int v = 0; A->bias && v < 2; v++) {   /* key_shift and value_shift (heads.c) */
            nt_transform *t = nt_tr_push(&L, v ? NT_TR_VALUE_SHIFT : NT_TR_KEY_SHIFT, 0, 0, A->shape_in[0]);
            t->layer = i;
            snprintf(t->name, sizeof t->name, "%s[layer=%d]", v ? "value_shift" : "key_shift", i);
        }
        for (int h = 0; h + 1 < A->heads; h++) {
            nt_transform *t = nt_tr_push(&L, NT_TR_HEAD_SWAP, 1, 0, 1);
            t->layer = i; t->a = h; t->b = h + 1;
            snprintf(t->name, sizeof t->name, "head_swap[layer=%d,heads=%d,%d]", i, h, h + 1);
        }
    }
    const nt_dense *last = &D[nd - 1];
    int trailing_norm = 0;
    for (int i = last->layer + 1; i < m->n_layers; i++) trailing_norm |= m->layers[i].kind == NT_LAYER_LAYERNORM;
    if (m->loss == NT_LOSS_CROSS_ENTROPY && trailing_acts == 0) {
        nt_transform *t = nt_tr_push(&L, NT_TR_TRANSLATION, 0, 0, last->n_in + (last->off_b >= 0));
        t->layer = nd;
        snprintf(t->name, sizeof t->name, "translation[layer=%d]", nd);
    }
    if (all_homogeneous) {
        nt_transform *t = nt_tr_push(&L, NT_TR_HOMOGENEOUS, 0, 1, 1);
        t->p = total_degree;
        snprintf(t->name, sizeof t->name, "homogeneous[degree=%g]", total_degree);
    }
    for (int i = 0; !trailing_norm && i + 1 < m->output; i++) {
        nt_transform *t = nt_tr_push(&L, NT_TR_OUTPUT_SWAP, 1, 1, 1);
        t->layer = nd; t->a = i; t->b = i + 1;
        snprintf(t->name, sizeof t->name, "output_swap[outputs=%d,%d]", i, i + 1);
    }
    *out = L.v;
    *n_out = L.n;
    return NT_OK;
}

void nt_generator_name(const nt_model *m, const nt_transform *t, int i, char *buf, size_t cap)
{
    nt_dense D[NT_MAX_LAYERS];
    nt_dense_layers(m, D);
    if (t->kind == NT_TR_GL) {
        int n = D[t->layer - 1].n_out;
        snprintf(buf, cap, "gl[layer=%d,i=%d,j=%d]", t->layer, i / n, i % n);
    } else if (t->kind == NT_TR_GL_QK || t->kind == NT_TR_GL_VO) {
        int n = m->layers[t->layer].shape_in[0] / m->layers[t->layer].heads;
        snprintf(buf, cap, "%s[layer=%d,head=%d,i=%d,j=%d]", t->kind == NT_TR_GL_QK ? "gl_qk" : "gl_vo", t->layer, t->a,
                 i / n, i % n);
    } else if (t->kind == NT_TR_BIAS_SHIFT) {
        snprintf(buf, cap, "bias_shift[layer=%d,unit=%d]", t->layer, i);
    } else if (t->kind == NT_TR_KEY_SHIFT || t->kind == NT_TR_VALUE_SHIFT) {
        snprintf(buf, cap, "%s[layer=%d,i=%d]", t->kind == NT_TR_KEY_SHIFT ? "key_shift" : "value_shift", t->layer, i);
    } else if (t->kind == NT_TR_CHANNEL_SHIFT && t->p != 1) {
        snprintf(buf, cap, "channel_shift[layer=%d,channel=%d]", t->layer, i);
    } else if (t->kind == NT_TR_NORM_SHIFT && t->p != 1) {
        snprintf(buf, cap, "norm_shift[layer=%d,unit=%d]", t->layer, i);
    } else if (t->kind == NT_TR_TRANSLATION || t->kind == NT_TR_NORM_SHIFT) {
        const char *what = t->kind == NT_TR_TRANSLATION ? "translation" : "norm_shift";
        int has_bias = D[t->layer - 1].off_b >= 0;
        if (has_bias && i == 0) snprintf(buf, cap, "%s[layer=%d,bias]", what, t->layer);
        else snprintf(buf, cap, "%s[layer=%d,column=%d]", what, t->layer, i - has_bias);
    } else if (t->generators > 1) {
        snprintf(buf, cap, "%s[%d]", t->name, i);
    } else {
        snprintf(buf, cap, "%s", t->name);
    }
}

void nt_transforms_free(nt_transform *list, int n)
{
    for (int i = 0; i < n; i++) {
        free(list[i].A);
        free(list[i].c);
        free(list[i].B);
    }
    free(list);
}
