/* Eight float lanes as one compiler vector (GNU vector extensions), for the fused
 * training loops (model_mf.c, model_hybrid.c): two SSE registers on a plain x86-64 build,
 * one AVX register in a copy of a loop compiled for AVX2. Every lane sees the same IEEE
 * operations (a multiply, then an add: the ISO C mode never contracts them into a fused
 * multiply-add), so a loop gives the same bits in either copy and as scalar code doing
 * the same operations per lane; sums of the lanes pair them as lanes8 does
 * (((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)), the order of fri_dot and of one fri_sumsq chunk).
 * (Except where a copy turns contraction on: model_hybrid.c's kernel compiles its AVX2 copy
 * with FMA, one rounding fewer a multiply-add, so its copies differ in the last bits.)
 * FRI_V8 is 0 where the extensions are missing: the callers keep scalar code then. */
#ifndef FEDREC_SRC_MODEL_V8_H
#define FEDREC_SRC_MODEL_V8_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define FRI_V8 1
typedef float v8f __attribute__((vector_size(32)));
/* the helpers below are static and inlined: no call passes a vector, so no ABI to keep
 * (GCC and clang both read this pragma) */
#pragma GCC diagnostic ignored "-Wpsabi"
static inline v8f v8_load(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
static inline void v8_store(float *p, v8f v) { memcpy(p, &v, sizeof v); }
typedef int32_t v8i __attribute__((vector_size(32)));
#if defined(__clang__)
#define V8_SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define V8_SHUF(a, b, ...) __builtin_shuffle(a, b, (v8i){__VA_ARGS__})
#endif
/* x in every lane (a shuffle: one broadcast, where building the vector lane by lane is
 * what GCC 12 makes of {x, x, ...}) */
static inline v8f v8_splat(float x) {
    const v8f t = {x};
    return V8_SHUF(t, t, 0, 0, 0, 0, 0, 0, 0, 0);
}
/* Adjacent lanes of a and b added: [a0+a1, a2+a3, b0+b1, b2+b3, a4+a5, a6+a7, b4+b5, b6+b7]
 * (AVX's hadd). */
static inline v8f v8_hadd(v8f a, v8f b) {
    const v8f even = V8_SHUF(a, b, 0, 2, 8, 10, 4, 6, 12, 14), odd = V8_SHUF(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
    return even + odd;
}
/* lanes8 of x, y and z at once: ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)) of each, the same
 * additions in the same order, with three vector adds in place of 21 scalar ones. */
static inline void v8_sum3(v8f x, v8f y, v8f z, float *sx, float *sy, float *sz) {
    const v8f h = v8_hadd(v8_hadd(x, y), v8_hadd(z, z)); /* [x0123 y0123 z0123 . x4567 y4567 z4567 .] */
    const v8f hi = V8_SHUF(h, h, 4, 5, 6, 7, 4, 5, 6, 7);
    const v8f r = h + hi;
    *sx = r[0];
    *sy = r[1];
    *sz = r[2];
}
/* lanes8 of x alone (v8_sum3's adds) */
static inline __attribute__((always_inline)) float v8_sum1(v8f x) {
    const v8f h = v8_hadd(v8_hadd(x, x), v8_hadd(x, x));
    const v8f hi = V8_SHUF(h, h, 4, 5, 6, 7, 4, 5, 6, 7);
    const v8f r = h + hi;
    return r[0];
}
#else
#define FRI_V8 0
#endif

#endif
