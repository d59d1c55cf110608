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
 * engine without lanes.  Batch normalization couples every row of a data set: its in-pass
 * sums are added over the lanes (lane_allreduce below), as over MPI's shards.
 * A lane costs a wake-up of a parked thread (the crew below; none while it still polls) and
 * sums of its own (g, or k d products, zeroed and added): at fewer than 64 rows a lane they
 * cost more than they save (measured, MLP 784-256-256-10, a training step of batch 64:
 * 0.64 ms on one lane with two-threaded BLAS, 0.72-0.81 ms on two lanes of 32); at 256 rows a
 * lane the gradient is 3.65 ms on two lanes, 3.78-4.02 on one, and a CNN with batch
 * normalization or an attention block on 512 samples, whose work between the GEMMs is large,
 * runs 1.6-2.1 x faster on two (bench_layers: CNN gradient 15.3 -> 7.8 ms, attention 11.3 ->
 * 7.2 ms). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cblas.h>
#include "tape.h"

#define LANE_MIN_ROWS 64   /* fewer rows a lane: fewer lanes (see below) */

/* Waits inside a call spin: the lanes are busy threads on cores of their own, and a futex's
 * wake-up costs ~40 us on this VM, against a few for a spin (measured: a gradient's lane 1
 * started 40 us after the call, and each lane waited ~50 us at a sleeping barrier; spinning
 * there and at the call's end took the MLP's gradient from 3.84 to 3.73 ms, medians of 301).
 * After SPINS polls a waiter yields its core at each poll, so a lane that is not running (more
 * lanes than cores, a loaded machine) is let run.  A crew thread polls PARK_US for the next
 * call before it sleeps (a loop of gradients: 3.73 -> 3.65 ms); a call that comes later finds
 * it asleep and pays the wake-up. */
#define SPINS 20000
#define PARK_US 100.0

static void relax_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void relax(long *polls)
{
    if (++*polls >= SPINS) sched_yield();
    else relax_pause();
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

/* A barrier of n threads: the last to arrive starts the next generation */
typedef struct { atomic_int count, gen; int n; } spin_barrier;

static void spin_barrier_wait(spin_barrier *b)
{
    const int gen = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) == b->n - 1) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->gen, 1, memory_order_release);
        return;
    }
    long polls = 0;
    while (atomic_load_explicit(&b->gen, memory_order_acquire) == gen) relax(&polls);
}

/* The crew: threads kept for the engine's life and parked between calls, so that a call pays
 * a wake-up rather than a thread's start and join (twice a gradient: its median went 3.85 ->
 * 3.72 ms).
 * Made all together or not at all; a forked child, which has none of its parent's threads,
 * makes its own.  Job i of a call runs on thread i, job 0 on the caller. */
typedef struct nt_crew nt_crew;
typedef struct { nt_crew *c; int i; } crew_seat;

struct nt_crew {
    int size;                          /* threads + 1 */
    pid_t pid;                         /* the process that made the threads */
    crew_seat seat[NT_MAX_LANES];
    pthread_t th[NT_MAX_LANES];
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    atomic_ulong call;                 /* calls so far: a thread runs once per new value */
    int jobs, quit;
    atomic_int pending;                /* jobs of this call still running on the crew */
    void *(*fn)(void *);
    char *job;
    size_t stride;
};

static void *crew_main(void *p)
{
    nt_crew *c = ((crew_seat *)p)->c;
    const int i = ((crew_seat *)p)->i;
    unsigned long seen = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        /* a call soon after the last (a loop of gradients) finds the thread awake: it polls
         * for PARK_US before it sleeps */
        pthread_mutex_unlock(&c->mu);
        const double until = now_us() + PARK_US;
        for (int k = 1; atomic_load(&c->call) == seen && !(k % 64 == 0 && now_us() > until); k++) relax_pause();
        pthread_mutex_lock(&c->mu);
        while (atomic_load(&c->call) == seen && !c->quit) pthread_cond_wait(&c->go, &c->mu);
        if (c->quit) break;
        seen = atomic_load(&c->call);
        if (i >= c->jobs) continue;
        pthread_mutex_unlock(&c->mu);
        c->fn(c->job + (size_t)i * c->stride);
        pthread_mutex_lock(&c->mu);
        if (atomic_fetch_sub(&c->pending, 1) == 1) pthread_cond_signal(&c->done);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void crew_free(nt_crew *c, int made)
{
    pthread_mutex_lock(&c->mu);
    c->quit = 1;
    pthread_cond_broadcast(&c->go);
    pthread_mutex_unlock(&c->mu);
    for (int i = 1; i <= made; i++) pthread_join(c->th[i], NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->go);
    pthread_cond_destroy(&c->done);
    free(c);
}

/* the crew's threads ended and its memory freed; in a fork's child, which has none of the
 * threads (they stayed in the parent), the memory alone */
static void crew_release(nt_crew *c)
{
    if (c && c->pid != getpid()) free(c);
    else if (c) crew_free(c, c->size - 1);
}

/* e's crew of at least n - 1 threads (made, or remade larger, here); NULL when they cannot
 * all start */
static nt_crew *crew_of(nt_engine *e, int n)
{
    if (e->crew && e->crew->pid == getpid() && e->crew->size >= n) return e->crew;
    crew_release(e->crew);
    e->crew = NULL;
    nt_crew *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->size = n;
    c->pid = getpid();
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->go, NULL);
    pthread_cond_init(&c->done, NULL);
    for (int i = 1; i < n; i++) {
        c->seat[i].c = c;
        c->seat[i].i = i;
        if (pthread_create(&c->th[i], NULL, crew_main, &c->seat[i]) != 0) { crew_free(c, i - 1); return NULL; }
    }
    return e->crew = c;
}

/* fn(job i) for every i < n, job 0 on this thread, the others on e's crew; without a crew
 * they run here one after another when `alone` allows it, otherwise none runs.  Returns 1
 * when all ran. */
static int crew_run(nt_engine *e, int n, void *(*fn)(void *), void *jobs, size_t size, int alone)
{
    nt_crew *c = n > 1 ? crew_of(e, n) : NULL;
    if (!c) {
        if (n > 1 && !alone) return 0;
        for (int i = 0; i < n; i++) fn((char *)jobs + (size_t)i * size);
        return 1;
    }
    pthread_mutex_lock(&c->mu);
    c->fn = fn;
    c->job = jobs;
    c->stride = size;
    c->jobs = n;
    atomic_store(&c->pending, n - 1);
    atomic_fetch_add(&c->call, 1);
    pthread_cond_broadcast(&c->go);
    pthread_mutex_unlock(&c->mu);
    fn(jobs);
    long polls = 0;   /* the others are about done when ours is: spin first, then sleep */
    while (atomic_load(&c->pending) > 0 && polls < SPINS) relax(&polls);
    pthread_mutex_lock(&c->mu);
    while (atomic_load(&c->pending) > 0) pthread_cond_wait(&c->done, &c->mu);
    pthread_mutex_unlock(&c->mu);
    return 1;
}

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
    int T = e->lanes;
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
    crew_release(e->crew);
    e->crew = NULL;
    for (int t = 0; t < NT_MAX_LANES - 1; t++) {
        nt_engine *p = e->peer[t];
        if (!p) continue;
        p->rho = NULL;
        free(p->sums);
        nt_engine_free(p);
        e->peer[t] = NULL;
    }
}

/* Batch normalization's statistics are over every row: each of its in-pass sums (ops_bnorm.c,
 * bn_sync through the engine's hook) is added over the lanes, in lane order, by lane 0, which
 * hands the lanes' total to the caller's own hook (MPI) when there is one; every lane then
 * reads that total.  Three barriers a sum: all lanes' sums posted, the total formed, the
 * total read (lane 0's buffer is its own again after the last). */
typedef struct {
    spin_barrier bar;
    int T, rc;
    double *sums[NT_MAX_LANES];
    int64_t n[NT_MAX_LANES];
    nt_reduce_fn outer;   /* the caller's hook, or NULL */
    void *outer_ctx;
    nt_error err;
} lane_sync;

typedef struct { lane_sync *s; int t; } lane_port;

static int lane_allreduce(void *ctx, double *sums, int64_t len, int64_t *n, nt_error *err)
{
    const lane_port *p = ctx;
    lane_sync *s = p->s;
    s->sums[p->t] = sums;
    s->n[p->t] = *n;
    spin_barrier_wait(&s->bar);
    if (p->t == 0) {
        for (int t = 1; t < s->T; t++) {
            for (int64_t i = 0; i < len; i++) sums[i] += s->sums[t][i];
            *n += s->n[t];
        }
        s->rc = s->outer ? s->outer(s->outer_ctx, sums, len, n, &s->err) : NT_OK;
        s->n[0] = *n;
    }
    spin_barrier_wait(&s->bar);
    if (p->t != 0) {
        memcpy(sums, s->sums[0], sizeof(double) * (size_t)len);
        *n = s->n[0];
    }
    const int rc = s->rc;
    if (rc != NT_OK && err) *err = s->err;
    spin_barrier_wait(&s->bar);
    return rc;
}

/* The lanes' sums added into the caller's g and HV once every lane is done: element i is
 * out[i] + lane 1's + lane 2's ..., in lane order, so bitwise the same however the range is
 * split.  The range is split over the lanes themselves when it is long (a gradient's d, or a
 * block's k d doubles: memory traffic worth both cores), after a barrier, so the threads
 * already awake do it rather than a second wake-up (a gradient's add took 0.13 ms that way). */
typedef struct {
    double *g, *HV;      /* the caller's outputs (lane 0's sums), or NULL */
    double scale;        /* the sums times this once added (engine.c's 1/N, or 1) */
    int64_t d, n_hv;     /* g's length; HV's (k d) */
    spin_barrier bar;
    int T, split;        /* lanes; split: each lane adds a part (after the barrier) */
} lane_add;

static void add_part(const nt_engine *e, const lane_add *a, int part, int parts)
{
    struct { double *out; int64_t n, at; } seg[2] = { { a->g, a->g ? a->d : 0, 0 }, { a->HV, a->HV ? a->n_hv : 0, a->d } };
    const double c = a->scale;
    for (int s = 0; s < 2; s++) {
        const int64_t lo = seg[s].n * part / parts, hi = seg[s].n * (part + 1) / parts;
        double *restrict out = seg[s].out;
        for (int t = 1; t < a->T; t++) {
            const double *restrict in = e->peer[t - 1]->sums + seg[s].at;
            if (t < a->T - 1 || c == 1)
                for (int64_t i = lo; i < hi; i++) out[i] += in[i];
            else   /* the last lane's add and the scale in one pass, rounded as the two apart */
                for (int64_t i = lo; i < hi; i++) out[i] = (out[i] + in[i]) * c;
        }
    }
}

typedef struct {
    nt_lane_fn fn;
    nt_engine *e, *caller;
    nt_dataset ds;
    int t;
    void *arg;
    lane_add *add;
} lane_job;

static void *lane_main(void *p)
{
    lane_job *j = p;
    j->fn(j->e, &j->ds, j->t, j->arg);
    if (j->add->split) {
        spin_barrier_wait(&j->add->bar);
        add_part(j->caller, j->add, j->t, j->add->T);
    }
    return NULL;
}

/* fn(lane engine, lane rows, lane, arg) for every lane at once, lane 0 on this thread, BLAS
 * single-threaded meanwhile; then g += the peers' gradient sums and HV += their n_hv product
 * sums (g or HV NULL: none), both then times scale.  Independent lanes whose thread cannot
 * start run here, after; coupled ones (batch normalization) wait for each other, so none
 * runs: NT_EFAIL, as when a peer cannot be allocated. */
int nt_lanes_run(nt_engine *e, const nt_dataset *ds, int T, nt_lane_fn fn, void *arg, double *g, double *HV,
                 int64_t n_hv, double scale)
{
    lane_job job[NT_MAX_LANES];
    lane_sync sync = { .bar.n = T, .T = T, .outer = e->reduce, .outer_ctx = e->reduce_ctx };
    lane_port port[NT_MAX_LANES];
    lane_add add = { .g = g, .HV = HV, .scale = scale, .d = e->d, .n_hv = n_hv, .bar.n = T, .T = T };
    for (int t = 0; t < T; t++) {
        job[t] = (lane_job){ fn, nt_lane_engine(e, t, T), e, nt_lane_rows(ds, t, T), t, arg, &add };
        if (!job[t].e) return NT_EFAIL;
    }
    const int coupled = e->coupled && T > 1;
    /* the lanes run together only on a crew; split the add there when it is long */
    add.split = (g || HV) && (g ? e->d : 0) + (HV ? n_hv : 0) >= (1 << 16) && crew_of(e, T);
    for (int t = 0; coupled && t < T; t++) {   /* every lane's hook is the lanes' sum */
        port[t] = (lane_port){ &sync, t };
        job[t].e->reduce = lane_allreduce;
        job[t].e->reduce_ctx = &port[t];
        job[t].e->sync_rc = NT_OK;
    }
    const int blas = openblas_get_num_threads();
    if (T > 1) openblas_set_num_threads(1);
    const int ran = crew_run(e, T, lane_main, job, sizeof *job, !coupled);
    if (T > 1) openblas_set_num_threads(blas);
    if (!add.split && ran && (g || HV)) add_part(e, &add, 0, 1);
    if (coupled) {
        for (int t = 0; t < T; t++) {   /* the hooks back; a lane's error is the call's */
            nt_engine *le = job[t].e;
            if (le->sync_rc != NT_OK && e->sync_rc == NT_OK) { e->sync_rc = le->sync_rc; e->sync_err = le->sync_err; }
            le->reduce = t ? NULL : sync.outer;
            le->reduce_ctx = t ? NULL : sync.outer_ctx;
        }
    }
    return ran ? NT_OK : NT_EFAIL;
}
