/* init.c: seeded initialization.  Weights of a dense layer n_in -> n_out are drawn
 * N(0, s^2) with s^2 = 2/n_in (he), 2/(n_in + n_out) (xavier, Glorot normal) or the
 * given std (normal), with n_in and n_out times k^2 for a k x k convolution (PyTorch's fans);
 * biases N(0, bias_std^2).  Tensor t uses random stream t.  A layer
 * normalization starts as PyTorch's does: weight 1, bias 0. */
#include <math.h>
#include <string.h>
#include "registry.h"

void nt_init_params(const nt_model *m, const nt_init *init, double *theta)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const nt_tensor *T = &m->tensors[t];
        double s;
        if (nt_layer_registry(m->layers[T->layer].kind)->unit_gain) {   /* a normalization: weight 1, bias 0 */
            for (int64_t i = 0; i < T->size; i++) theta[T->offset + i] = strstr(T->name, "weight") ? 1.0 : 0.0;
            continue;
        }
        if (T->ndim == 1) {
            s = init->bias_std;
        } else {
            double field = T->ndim == 4 ? (double)(T->shape[2] * T->shape[3]) : 1;   /* conv: k x k */
            double n_out = (double)T->shape[0] * field, n_in = (double)T->shape[1] * field;
            switch (init->scheme) {
            case NT_INIT_XAVIER: s = sqrt(2.0 / (n_in + n_out)); break;
            case NT_INIT_NORMAL: s = init->std; break;
            case NT_INIT_HE:
            default: s = sqrt(2.0 / n_in); break;
            }
        }
        for (int64_t i = 0; i < T->size; i++)
            theta[T->offset + i] = s == 0 ? 0 : s * nt_rand_normal(init->seed, (uint64_t)t, (uint64_t)i);
    }
}
