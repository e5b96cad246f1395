// The attention kernels (attention_kernels.inl) for AVX2; this file alone is built with -mavx2 -mfma
// -mf16c (CMakeLists.txt) and only runs where detected_isa() allows it.
#include "kernels/cpu/attention_kernel.hpp"

#if defined(__x86_64__)
#include <immintrin.h>

namespace kinfer::cpu {
namespace {

struct V {
    using R = __m256;
    static constexpr int W = 8;
    static R zero() { return _mm256_setzero_ps(); }
    static R set1(float x) { return _mm256_set1_ps(x); }
    static R load(const float* p) { return _mm256_loadu_ps(p); }
    static R load(const uint16_t* p) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    static void store(float* p, R x) { _mm256_storeu_ps(p, x); }
    static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
    static R add(R a, R b) { return _mm256_add_ps(a, b); }
    static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
    static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
    static R max(R a, R b) { return _mm256_max_ps(a, b); }
    static float hsum(R x) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    static float hmax(R x) {
        __m128 s = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
        s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        s = _mm_max_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    static float to_f32(uint16_t h) { return _cvtsh_ss(h); }
    static float to_f32(float x) { return x; }
    // exp(x) for x <= 0, as in attention_avx512.cpp.
    static R exp(R x) {
        x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
        const R n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        R f = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
        f = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), f);
        R p = _mm256_set1_ps(1.0f / 5040);
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 720));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 120));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 24));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 6));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.5f));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
        const __m256i e =
            _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
        return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    }
    static float exp1(float x) { return _mm256_cvtss_f32(exp(_mm256_set1_ps(x))); }
};

}  // namespace
}  // namespace kinfer::cpu

#include "kernels/cpu/attention_kernels.inl"

namespace kinfer::cpu {

const AttendFns& attend_avx2() {
    static const AttendFns fns{attend<float>, attend<uint16_t>};
    return fns;
}

}  // namespace kinfer::cpu
#endif
