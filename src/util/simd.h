/* simd.h: NT_CLONES marks a hot elementwise loop to be compiled for several x86-64 levels
 * (baseline SSE2, AVX2, AVX-512) and the best one picked by the CPU at load time (GCC's
 * target_clones); elsewhere it is nothing.  The build turns off floating-point contraction
 * (-ffp-contract=off in meson.build), so every clone rounds as the baseline does: the
 * results do not depend on the machine, only the speed. */
#ifndef NT_SIMD_H
#define NT_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NT_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define NT_CLONES
#endif

#endif
