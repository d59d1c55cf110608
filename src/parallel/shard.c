/* shard.c: a rank's share of the training set (docs/theory.md §8): contiguous rows, balanced
 * to within one (nt_parallel_shard), so that the shards' sums add up to the whole set's. */
#include <stdlib.h>
#include <string.h>
#include "noether.h"

int nt_data_shard(nt_data *data, int part, int parts, nt_error *err)
{
    nt_dataset *tr = &data->train;
    const int64_t total = tr->n;
    if (parts <= 1) return NT_OK;
    if (total < parts)
        return nt_fail(err, NT_EINPUT, "data: %lld training samples cannot be shared among %d ranks (at least one each)",
                       (long long)total, parts);
    int64_t start, count;
    const uint64_t whole = nt_dataset_hash(tr, NT_HASH_INIT);
    nt_parallel_shard(total, part, parts, &start, &count);
    double *x = malloc(sizeof(double) * (size_t)(count * tr->dim));
    double *y = malloc(sizeof(double) * (size_t)(count * tr->ydim));
    if (!x || !y) {
        free(x); free(y);
        return nt_fail(err, NT_EFAIL, "data: out of memory for a shard of %lld samples", (long long)count);
    }
    memcpy(x, tr->x + start * tr->dim, sizeof(double) * (size_t)(count * tr->dim));
    memcpy(y, tr->y + start * tr->ydim, sizeof(double) * (size_t)(count * tr->ydim));
    free(tr->x);
    free(tr->y);
    tr->x = x;
    tr->y = y;
    tr->n = count;
    data->shard_start = start;
    data->shard_total = total;
    data->train_hash = whole;
    return NT_OK;
}
