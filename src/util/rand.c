/* rand.c: counter-based random numbers.  Draw i of stream (seed, stream) is
 * splitmix64(hash(seed, stream) + i): a pure function, so any shard, step or resumed run
 * can regenerate exactly the numbers of a single-process run. */
#include <math.h>
#include "noether.h"

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t nt_rand_u64(uint64_t seed, uint64_t stream, uint64_t i)
{
    uint64_t base = mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ (stream * 0xd1b54a32d192ed03ULL));
    return mix64(base + (i + 1) * 0x9e3779b97f4a7c15ULL);
}

double nt_rand_uniform(uint64_t seed, uint64_t stream, uint64_t i)
{
    /* 53 random bits, shifted by half an ulp so that 0 and 1 never occur */
    return ((double)(nt_rand_u64(seed, stream, i) >> 11) + 0.5) * 0x1.0p-53;
}

double nt_rand_normal(uint64_t seed, uint64_t stream, uint64_t i)
{
    /* Box-Muller on two uniforms of the same counter (draws 2i and 2i+1) */
    double u1 = nt_rand_uniform(seed, stream, 2 * i);
    double u2 = nt_rand_uniform(seed, stream, 2 * i + 1);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}
