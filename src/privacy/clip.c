/* L2 clipping with fixed-point quantization (privacy.h, fr_dp_clip_quantize).
 *
 * Invariant: the bound the privacy analysis relies on, ||q|| <= floor(clip * scale)
 * units, holds for the integers actually sent, checked exactly: q is rounded toward
 * zero (no value grows in magnitude), and the squared norm is summed in 128-bit
 * integers; a scale factor that a double product pushed past the bound is shrunk until
 * the exact check passes. The check, not the floating-point clipping, is the guarantee. */
#include <math.h>

#include "core/core.h"
#include "fedrec/privacy.h"

__extension__ typedef unsigned __int128 u128; /* gcc and clang; -Wpedantic knows it as an extension */

/* q = trunc(f * x), |f * x| < 2^63 by the caller's bounds. */
static void quantize(const fr_dp_part *parts, size_t n_parts, double f) {
    for (size_t p = 0; p < n_parts; p++) {
        const float *x = parts[p].x;
        int64_t *q = parts[p].q;
        for (size_t i = 0; i < parts[p].n; i++) q[i] = (int64_t)(f * (double)x[i]); /* C: toward zero */
    }
}

/* sum q^2, saturating at 2^128 - 1. */
static u128 norm2(const fr_dp_part *parts, size_t n_parts) {
    u128 s = 0, cap = ~(u128)0;
    for (size_t p = 0; p < n_parts; p++)
        for (size_t i = 0; i < parts[p].n; i++) {
            int64_t v = parts[p].q[i];
            uint64_t a = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
            u128 sq = (u128)a * a;
            s = s > cap - sq ? cap : s + sq;
        }
    return s;
}

fr_err fr_dp_clip_quantize(const fr_dp_part *parts, size_t n_parts, double clip, double scale, double *norm) {
    if (norm) *norm = 0;
    if (!(clip > 0) || !(clip <= FR_DP_MAX_CLIP))
        return fri_fail(FR_ERR_INVALID, "clipping: clip %g, expected (0, %g]", clip, FR_DP_MAX_CLIP);
    if (!(scale >= 1) || !(scale <= 4294967296.0) || !(clip * scale < 4611686018427387904.0))
        return fri_fail(FR_ERR_INVALID, "clipping: scale %g, expected [1, 2^32] with clip * scale < 2^62", scale);
    if (n_parts && !parts) return fri_fail(FR_ERR_INVALID, "clipping: NULL parts");
    double ss = 0;
    for (size_t p = 0; p < n_parts; p++) {
        if (parts[p].n && (!parts[p].x || !parts[p].q)) return fri_fail(FR_ERR_INVALID, "clipping: part %zu is NULL", p);
        for (size_t i = 0; i < parts[p].n; i++) {
            double x = parts[p].x[i];
            if (!isfinite(x))
                return fri_fail(FR_ERR_RANGE, "clipping: value %zu of part %zu is %g, expected a finite value", i, p, x);
            ss += x * x;
        }
    }
    double nrm = sqrt(ss);
    if (norm) *norm = nrm;
    uint64_t lim = (uint64_t)floor(clip * scale); /* < 2^62 */
    u128 lim2 = (u128)lim * lim;
    double f = (nrm > clip ? clip / nrm : 1.0) * scale;
    for (int tries = 0;; tries++) {
        quantize(parts, n_parts, f);
        if (norm2(parts, n_parts) <= lim2) return FR_OK;
        /* a double product rounded up past the bound: shrink by a part in 2^40 (the
         * first retry nearly always passes; 2^12 retries halve f, a last resort) */
        f *= tries < 64 ? 1.0 - 0x1p-40 : 0.5;
        if (tries > 4096) f = 0; /* all zeros: norm 0 */
    }
}
