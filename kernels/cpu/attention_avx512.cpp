// The attention kernels (attention_kernels.inl) for AVX-512; this file alone is built with -mavx512f
// -mavx512bw -mavx512vl -mfma -mf16c (CMakeLists.txt) and only runs where detected_isa() allows it.
#include "kernels/cpu/attention_kernel.hpp"

#if defined(__x86_64__)
// GCC 12 warns about the _mm512_undefined_* temporaries inside its own intrinsics headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

namespace kinfer::cpu {
namespace {

struct V {
    using R = __m512;
    static constexpr int W = 16;
    static R zero() { return _mm512_setzero_ps(); }
    static R set1(float x) { return _mm512_set1_ps(x); }
    static R load(const float* p) { return _mm512_loadu_ps(p); }
    static R load(const uint16_t* p) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    static void store(float* p, R x) { _mm512_storeu_ps(p, x); }
    static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
    static R add(R a, R b) { return _mm512_add_ps(a, b); }
    static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
    static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
    static R max(R a, R b) { return _mm512_max_ps(a, b); }
    static float hsum(R x) { return _mm512_reduce_add_ps(x); }
    static float hmax(R x) { return _mm512_reduce_max_ps(x); }
    static float to_f32(uint16_t h) { return _cvtsh_ss(h); }
    static float to_f32(float x) { return x; }
    // exp(x) for x <= 0: x = n ln2 + f with |f| <= ln2/2, exp(f) by its Taylor series to degree 7 (error
    // below 1e-8 relative, under float rounding), times 2^n. Below -87 (exp < 2^-125) it returns ~2^-126
    // instead of smaller: against the maximum's term 1 that is far below rounding.
    static R exp(R x) {
        x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
        const R n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        R f = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln2 in two parts: n * hi is exact
        f = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), f);
        R p = _mm512_set1_ps(1.0f / 5040);
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 720));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 120));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 24));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
        const __m512i e =
            _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
        return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
    }
    static float exp1(float x) { return _mm512_cvtss_f32(exp(_mm512_set1_ps(x))); }
};

}  // namespace
}  // namespace kinfer::cpu

#include "kernels/cpu/attention_kernels.inl"

namespace kinfer::cpu {

const AttendFns& attend_avx512() {
    static const AttendFns fns{attend<float>, attend<uint16_t>};
    return fns;
}

}  // namespace kinfer::cpu
#endif
