/* lanes.c: sample-parallel sweeps inside one process.  A data set's rows split into T
 * contiguous shards ("lanes"); lane 0 is swept by the caller's engine on the calling thread,
 * lane t > 0 by a peer engine of its own on a thread of its own, every lane with
 * single-threaded BLAS.  Their sums are added in lane order before the engine's finish:
 *     sum over samples = sum over lanes of the sums over their rows,
 * the seam of data parallelism (engine.c's reduction hook) inside one process.  Two lanes of
 * single-threaded GEMMs beat one lane of two-threaded GEMMs here because everything between
 * the GEMMs (activations, the loss head, bias sums, batch copies) then runs on both cores too,
 * and no GEMM waits for the other core's share.  The lanes change the order of the sums
 * (their round-off), not their values; with one lane the results are bitwise those of an
 * engine without lanes.  Batch normalization couples every row of a data set: its engines
 * keep one lane. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "tape.h"

#define LANE_MIN_ROWS 16   /* fewer rows per lane: one lane (a thread costs ~20 us) */

void nt_engine_set_threads(nt_engine *e, int threads)
{
    if (threads < 1) threads = 1;
    if (threads > NT_MAX_LANES) threads = NT_MAX_LANES;
    if (threads == e->lanes) return;
    nt_engine_thaw(e);
    e->lanes = threads;
}

int nt_engine_threads(const nt_engine *e)
{
    return e->lanes;
}

int nt_lanes_for(const nt_engine *e, const nt_dataset *ds)
{
    int T = e->coupled ? 1 : e->lanes;
    while (T > 1 && ds->n < (int64_t)T * LANE_MIN_ROWS) T--;
    return T;
}

nt_dataset nt_lane_rows(const nt_dataset *ds, int t, int T)
{
    const int64_t lo = ds->n * t / T, hi = ds->n * (t + 1) / T;
    nt_dataset s = *ds;
    s.n = hi - lo;
    s.x = ds->x + lo * ds->dim;
    s.y = ds->y ? ds->y + lo * ds->ydim : NULL;
    return s;
}

/* lane t's engine (t = 0: e itself), created at first use: chunks of ceil(chunk / T) rows,
 * with sums of its own for g and the products */
nt_engine *nt_lane_engine(nt_engine *e, int t, int T)
{
    if (t == 0) return e;
    nt_engine **pe = &e->peer[t - 1];
    if (*pe && (*pe)->chunk * T < e->chunk) { nt_engine_free(*pe); *pe = NULL; }
    if (!*pe) {
        nt_engine *p = nt_engine_new(e->m, (e->chunk + T - 1) / T, e->k);
        if (!p) return NULL;
        p->lanes = 1;
        p->sums = malloc(sizeof(double) * (size_t)((1 + e->k) * e->d));
        if (!p->sums) { nt_engine_free(p); return NULL; }
        *pe = p;
    }
    (*pe)->rho = e->rho;   /* borrowed: the peers compute the caller's loss */
    return *pe;
}

void nt_lanes_free(nt_engine *e)
{
    for (int t = 0; t < NT_MAX_LANES - 1; t++) {
        nt_engine *p = e->peer[t];
        if (!p) continue;
        p->rho = NULL;
        free(p->sums);
        nt_engine_free(p);
        e->peer[t] = NULL;
    }
}

typedef struct {
    nt_lane_fn fn;
    nt_engine *e;
    nt_dataset ds;
    int t;
    void *arg;
} lane_job;

static void *lane_main(void *p)
{
    lane_job *j = p;
    j->fn(j->e, &j->ds, j->t, j->arg);
    return NULL;
}

/* fn(lane engine, lane rows, arg) for every lane at once, lane 0 on this thread; a thread
 * that cannot be started runs its lane here, after.  BLAS is single-threaded meanwhile. */
int nt_lanes_run(nt_engine *e, const nt_dataset *ds, int T, nt_lane_fn fn, void *arg)
{
    lane_job job[NT_MAX_LANES];
    pthread_t th[NT_MAX_LANES];
    int started[NT_MAX_LANES] = {0};
    for (int t = 0; t < T; t++) {
        job[t] = (lane_job){ fn, nt_lane_engine(e, t, T), nt_lane_rows(ds, t, T), t, arg };
        if (!job[t].e) return NT_EFAIL;
    }
    const int blas = openblas_get_num_threads();
    if (T > 1) openblas_set_num_threads(1);
    for (int t = 1; t < T; t++) started[t] = pthread_create(&th[t], NULL, lane_main, &job[t]) == 0;
    lane_main(&job[0]);
    for (int t = 1; t < T; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else lane_main(&job[t]);
    }
    if (T > 1) openblas_set_num_threads(blas);
    return NT_OK;
}

/* out += the peers' sums, n doubles from offset `at` of each, in lane order; the range split
 * over the T threads when it is long (a block of products' sums is k d doubles: memory
 * traffic worth both cores), each element still added lane by lane, so bitwise the same. */
typedef struct { const nt_engine *e; int T; int64_t lo, hi, at; double *out; } add_job;

static void *add_range(void *p)
{
    const add_job *a = p;
    for (int t = 1; t < a->T; t++) {
        const double *restrict in = a->e->peer[t - 1]->sums + a->at;
        double *restrict out = a->out;
        for (int64_t i = a->lo; i < a->hi; i++) out[i] += in[i];
    }
    return NULL;
}

void nt_lanes_add(const nt_engine *e, int T, int64_t n, int64_t at, double *out)
{
    add_job job[NT_MAX_LANES];
    pthread_t th[NT_MAX_LANES];
    int started[NT_MAX_LANES] = {0};
    const int parts = n >= (1 << 16) ? T : 1;
    for (int i = 0; i < parts; i++) job[i] = (add_job){ e, T, n * i / parts, n * (i + 1) / parts, at, out };
    for (int i = 1; i < parts; i++) started[i] = pthread_create(&th[i], NULL, add_range, &job[i]) == 0;
    add_range(&job[0]);
    for (int i = 1; i < parts; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        else add_range(&job[i]);
    }
}
