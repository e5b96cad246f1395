#pragma once
// Small rounding helpers shared by the reference quantizers. They are total: NaN, infinities and huge values
// give some in-range code instead of undefined float->int conversions.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace kinfer::ref {

// Round to nearest, ties to even (what ggml's quantizers use), for |v| < 2^22. Adding 1.5 * 2^23 puts the
// integer part in the low mantissa bits and lets the FPU round. Out-of-range values are clamped first and NaN
// yields some int (never undefined behaviour); callers clamp the result to their code range. Branch-free so
// that the scale searches vectorize.
inline int round_nearest(float v) {
    constexpr float kLimit = 4194303.0f;  // 2^22 - 1
    v = v < -kLimit ? -kLimit : v;
    v = v > kLimit ? kLimit : v;
    const float shifted = v + 12582912.0f;  // 1.5 * 2^23
    int32_t bits;
    std::memcpy(&bits, &shifted, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

inline int clamp_int(int v, int lo, int hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

// Round to nearest and clamp to [lo, hi].
inline int round_clamped(float v, int lo, int hi) {
    return clamp_int(round_nearest(v), lo, hi);
}

// Truncate toward zero and clamp to [lo, hi] (lo >= 0), NaN -> lo; the legacy 32-element formats round by
// adding 0.5 (or 8.5, 16.5) and truncating.
inline int trunc_clamped(float v, int lo, int hi) {
    if (!(v >= static_cast<float>(lo))) return lo;
    if (v >= static_cast<float>(hi)) return hi;
    return static_cast<int>(v);
}

// Round half away from zero (C's roundf) and clamp to [lo, hi], NaN -> 0.
inline int round_away_clamped(float v, int lo, int hi) {
    if (std::isnan(v)) return 0;
    const float r = std::round(v);
    if (r <= static_cast<float>(lo)) return lo;
    if (r >= static_cast<float>(hi)) return hi;
    return static_cast<int>(r);
}

// Value of largest magnitude (keeping its sign; the first one on ties), 0 for an all-zero or all-NaN span.
inline float signed_absmax(const float* x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float a = std::fabs(x[i]);
        if (a > amax) {
            amax = a;
            max = x[i];
        }
    }
    return max;
}

}  // namespace kinfer::ref
