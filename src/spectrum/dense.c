/* dense.c: all eigenpairs of a symmetric operator, the oracle and the small-model path.
 *
 * The matrix is assembled column by column from products with unit vectors,
 * A e_j = column j (blocks of op->block unit vectors per call), symmetrized as (A + A^T)/2,
 * the orthogonal projection onto symmetric matrices in the Frobenius norm (it removes the
 * round-off asymmetry of a matrix-free product, and for an exactly symmetric operator it is
 * the identity).  Eigenpairs by LAPACK's dsyevr (MRRR: Dhillon & Parlett 2004), ascending.
 * Cost: n products and O(n^3) flops, n^2 doubles of memory. */
#include <stdlib.h>
#include <string.h>
#include <lapacke.h>
#include "noether.h"

int nt_eigen_dense(const nt_operator *op, double *values, double *vectors, nt_error *err)
{
    const int64_t n = op->n;
    if (n < 1 || n > 46340)   /* n^2 must fit LAPACK's 32-bit indices */
        return nt_fail(err, NT_EINPUT, "dense eigensolver: dimension %lld out of range 1..46340", (long long)n);
    const int kb = op->block < 1 ? 1 : (op->block > n ? (int)n : op->block);
    double *A = malloc(sizeof(double) * (size_t)(n * n));
    double *E = calloc((size_t)kb * (size_t)n, sizeof(double));
    lapack_int *support = malloc(sizeof(lapack_int) * 2 * (size_t)n);
    if (!A || !E || !support) {
        free(A); free(E); free(support);
        return nt_fail(err, NT_EFAIL, "dense eigensolver: out of memory for a %lld x %lld matrix",
                       (long long)n, (long long)n);
    }
    /* row j of A := (A e_j)^T, i.e. A^T; the symmetrization below makes the difference moot */
    int rc = NT_OK;
    for (int64_t j0 = 0; j0 < n && rc == NT_OK; j0 += kb) {
        const int k = n - j0 < kb ? (int)(n - j0) : kb;
        for (int j = 0; j < k; j++) E[(int64_t)j * n + j0 + j] = 1;
        rc = op->apply(op->ctx, k, E, A + j0 * n, err);
        for (int j = 0; j < k; j++) E[(int64_t)j * n + j0 + j] = 0;
    }
    if (rc != NT_OK) {
        free(A); free(E); free(support);
        return rc;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++)
            A[i * n + j] = A[j * n + i] = 0.5 * (A[i * n + j] + A[j * n + i]);
    /* A is symmetric, so row- and column-major are the same matrix.  Column-major Z holds
     * eigenvector i in its column i, i.e. at Z + i n: exactly row i of `vectors`. */
    lapack_int found = 0;
    lapack_int info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, vectors ? 'V' : 'N', 'A', 'U', (lapack_int)n, A,
                                     (lapack_int)n, 0.0, 0.0, 0, 0, 0.0, &found, values, vectors,
                                     (lapack_int)n, support);
    free(A); free(E); free(support);
    if (info != 0 || found != n)
        return nt_fail(err, NT_EFAIL, "LAPACK dsyevr failed (info %d, %d of %lld eigenvalues)", (int)info,
                       (int)found, (long long)n);
    return NT_OK;
}
