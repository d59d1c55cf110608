/* parallel.c: data parallelism over MPI (Open MPI), every MPI call of the project in one
 * file.  Started by mpirun, the process joins MPI_COMM_WORLD; started any other way (or
 * built without MPI) it is one rank of one and every call below is the identity, so the
 * library stays usable without MPI_Init (the Python module, the tests).
 *
 * The seam (docs/theory.md §8): every loss, gradient and product is a sum over samples
 * divided once by N, L = (1/N) sum_r sum_{n in shard r} l_n, so a shard's sums and its
 * count, summed over the ranks by one allreduce per product, are the whole set's; the
 * engine divides by the global N once (nt_engine_set_reduce).  Errors travel on a
 * communicator of their own (a duplicate of the world), so an agreement on an error can
 * never be mistaken for a reduction of the engine's. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "noether.h"
#ifdef NT_HAVE_MPI
#include <mpi.h>
#endif

static int the_rank = 0, the_size = 1;
static int err_fd = 2;   /* rank > 0: its own stderr, kept for a message only it has */
#ifdef NT_HAVE_MPI
static int active = 0;   /* MPI initialized by nt_parallel_init */
static MPI_Comm errcomm = MPI_COMM_NULL;
static double *sumbuf;   /* [sums | n]: grown once to the largest product */
static int64_t sumcap;
#endif

#ifdef NT_HAVE_MPI
/* Started by a process manager (Open MPI's mpirun, or another PMI one)? */
static int launched_by_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}
#endif

int nt_parallel_init(int *argc, char ***argv, nt_error *err)
{
#ifdef NT_HAVE_MPI
    if (active || !launched_by_mpirun()) return NT_OK;
    int done = 0;
    MPI_Initialized(&done);
    if (!done && MPI_Init(argc, argv) != MPI_SUCCESS)
        return nt_fail(err, NT_EFAIL, "MPI_Init failed (started by mpirun?)");
    MPI_Comm_rank(MPI_COMM_WORLD, &the_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &the_size);
    MPI_Comm_dup(MPI_COMM_WORLD, &errcomm);
    active = 1;
#else
    (void)argc; (void)argv; (void)err;
#endif
    return NT_OK;
}

void nt_parallel_finalize(void)
{
#ifdef NT_HAVE_MPI
    if (!active) return;
    active = 0;
    MPI_Comm_free(&errcomm);
    free(sumbuf);
    sumbuf = NULL;
    sumcap = 0;
    MPI_Finalize();
#endif
}

int nt_parallel_rank(void) { return the_rank; }
int nt_parallel_size(void) { return the_size; }

/* Balanced contiguous shares: part p of P holds rows [floor(p N / P), floor((p + 1) N / P)),
 * so shard sizes differ by at most one and N need not be a multiple of P. */
void nt_parallel_shard(int64_t n, int part, int parts, int64_t *start, int64_t *count)
{
    if (parts < 1) parts = 1;
    const __int128 N = n;
    int64_t a = (int64_t)(N * part / parts), b = (int64_t)(N * (part + 1) / parts);
    *start = a;
    *count = b - a;
}

int nt_parallel_reduce(void *ctx, double *sums, int64_t len, int64_t *n, nt_error *err)
{
    (void)ctx;
#ifdef NT_HAVE_MPI
    if (!active || the_size == 1) return NT_OK;
    if (len + 1 > sumcap) {   /* n rides along as a double (exact below 2^53 samples) */
        double *b = realloc(sumbuf, sizeof(double) * (size_t)(len + 1));
        if (!b) return nt_fail(err, NT_EFAIL, "out of memory for the reduction buffer (%lld doubles)", (long long)len + 1);
        sumbuf = b;
        sumcap = len + 1;
    }
    memcpy(sumbuf, sums, sizeof(double) * (size_t)len);
    sumbuf[len] = (double)*n;
    /* one allreduce per product: the sums of every shard and their sample counts */
    if (MPI_Allreduce(MPI_IN_PLACE, sumbuf, (int)(len + 1), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
        return nt_fail(err, NT_EFAIL, "MPI_Allreduce of %lld doubles failed", (long long)len + 1);
    memcpy(sums, sumbuf, sizeof(double) * (size_t)len);
    *n = (int64_t)sumbuf[len];
#else
    (void)sums; (void)len; (void)n; (void)err;
#endif
    return NT_OK;
}

double nt_parallel_min(double x)
{
#ifdef NT_HAVE_MPI
    if (active && the_size > 1) MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
#endif
    return x;
}

#ifdef NT_HAVE_MPI
/* Waits for a nonblocking collective, at most `timeout` seconds (< 0: for ever); 1 when done. */
static int wait_for(MPI_Request *req, double timeout)
{
    if (timeout < 0) { MPI_Wait(req, MPI_STATUS_IGNORE); return 1; }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int done = 0;
        MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (done) return 1;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec) > timeout) return 0;
        usleep(1000);
    }
}

/* The agreement: the lowest failing rank, then its code and message to every rank.
 * Nonblocking collectives on errcomm on every side, so a rank that fails (agree with its
 * error) and ranks that reached the same point healthy (agree with NT_OK) match. */
static int agree(int rc, nt_error *err, double timeout)
{
    int mine = rc ? the_rank : the_size, first = the_size;
    MPI_Request req;
    MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, errcomm, &req);
    if (!wait_for(&req, timeout)) return -1;
    if (first == the_size) return NT_OK;
    struct { int code; char msg[sizeof err->msg]; } m = { rc, "" };
    if (first == the_rank && err) memcpy(m.msg, err->msg, sizeof m.msg);
    MPI_Ibcast(&m, (int)sizeof m, MPI_BYTE, first, errcomm, &req);
    if (!wait_for(&req, timeout)) return -1;
    if (err) { err->code = m.code; memcpy(err->msg, m.msg, sizeof m.msg); err->msg[sizeof m.msg - 1] = 0; }
    return m.code ? m.code : NT_EFAIL;
}
#endif

int nt_parallel_agree(int rc, nt_error *err)
{
#ifdef NT_HAVE_MPI
    if (active && the_size > 1) return agree(rc, err, -1);
#else
    (void)err;
#endif
    return rc;
}

int nt_parallel_fail(nt_error *err, double timeout)
{
    int code = err && err->code ? err->code : NT_EFAIL;
#ifdef NT_HAVE_MPI
    if (!active || the_size == 1) return code;
    int got = agree(code, err, timeout);
    if (got >= 0) return got;
    /* the other ranks are elsewhere (an error only this rank met, away from an agreement
     * point): say it here, then end every rank rather than leave them waiting */
    if (err) {
        char line[sizeof err->msg + 64];
        int len = snprintf(line, sizeof line, "noether (rank %d of %d): %s\n", the_rank, the_size, err->msg);
        if (len > 0 && write(err_fd, line, (size_t)len) < 0) { /* nothing more to say it with */ }
    }
    MPI_Abort(MPI_COMM_WORLD, code);
#else
    (void)timeout;
#endif
    return code;
}

void nt_parallel_set_stderr(int fd) { err_fd = fd; }

uint64_t nt_parallel_chain(uint64_t h, const void *bytes, size_t n)
{
#ifdef NT_HAVE_MPI
    if (active && the_size > 1) {   /* rank r continues the hash rank r - 1 handed on, in row order */
        if (the_rank > 0) MPI_Recv(&h, 1, MPI_UINT64_T, the_rank - 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        h = nt_hash64(bytes, n, h);
        if (the_rank + 1 < the_size) MPI_Send(&h, 1, MPI_UINT64_T, the_rank + 1, 0, MPI_COMM_WORLD);
        MPI_Bcast(&h, 1, MPI_UINT64_T, the_size - 1, MPI_COMM_WORLD);
        return h;
    }
#endif
    return nt_hash64(bytes, n, h);
}
