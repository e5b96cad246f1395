// Reference quantizers for the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): one scale (and min) per
// block from the block's extremes, as ggml's quantize_row_*_ref do. The scale is computed in float and only
// the stored copy is rounded to fp16, so codes are chosen against the unrounded scale (as ggml does).
#include <cmath>
#include <cstring>

#include "kernels/blocks.hpp"
#include "kernels/fp16.hpp"
#include "kernels/reference/quant_math.hpp"
#include "kernels/reference/quant_rows.hpp"

namespace kinfer::ref {
namespace {

void min_max(const float* x, int n, float& lo, float& hi) {
    lo = x[0];
    hi = x[0];
    for (int i = 1; i < n; ++i) {
        lo = std::fmin(lo, x[i]);
        hi = std::fmax(hi, x[i]);
    }
}

inline float inverse_or_zero(float d) {
    return d != 0 ? 1.0f / d : 0.0f;
}

void store_qh(uint8_t* qh, uint32_t bits) {
    for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(bits >> (8 * k));
}

}  // namespace

// Symmetric with the extreme value mapped to code 0: d = max / -8, so the largest-magnitude value is exact
// and the grid reaches one step further on the opposite side.
void quantize_row_q4_0(const float* in, void* blocks, int64_t n) {
    auto* b = static_cast<BlockQ4_0*>(blocks);
    for (int64_t i = 0; i < n / QK4_0; ++i, in += QK4_0) {
        const float d = signed_absmax(in, QK4_0) / -8;
        const float id = inverse_or_zero(d);
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            const int lo = trunc_clamped(in[j] * id + 8.5f, 0, 15);
            const int hi = trunc_clamped(in[j + QK4_0 / 2] * id + 8.5f, 0, 15);
            b[i].qs[j] = static_cast<uint8_t>(lo | hi << 4);
        }
    }
}

void quantize_row_q4_1(const float* in, void* blocks, int64_t n) {
    auto* b = static_cast<BlockQ4_1*>(blocks);
    for (int64_t i = 0; i < n / QK4_1; ++i, in += QK4_1) {
        float lo, hi;
        min_max(in, QK4_1, lo, hi);
        const float d = (hi - lo) / 15;
        const float id = inverse_or_zero(d);
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(lo);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            const int q0 = trunc_clamped((in[j] - lo) * id + 0.5f, 0, 15);
            const int q1 = trunc_clamped((in[j + QK4_1 / 2] - lo) * id + 0.5f, 0, 15);
            b[i].qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
        }
    }
}

void quantize_row_q5_0(const float* in, void* blocks, int64_t n) {
    auto* b = static_cast<BlockQ5_0*>(blocks);
    for (int64_t i = 0; i < n / QK5_0; ++i, in += QK5_0) {
        const float d = signed_absmax(in, QK5_0) / -16;
        const float id = inverse_or_zero(d);
        b[i].d = fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const int q0 = trunc_clamped(in[j] * id + 16.5f, 0, 31);
            const int q1 = trunc_clamped(in[j + QK5_0 / 2] * id + 16.5f, 0, 31);
            b[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | (q1 & 0xF) << 4);
            qh |= static_cast<uint32_t>(q0 >> 4) << j;
            qh |= static_cast<uint32_t>(q1 >> 4) << (j + QK5_0 / 2);
        }
        store_qh(b[i].qh, qh);
    }
}

void quantize_row_q5_1(const float* in, void* blocks, int64_t n) {
    auto* b = static_cast<BlockQ5_1*>(blocks);
    for (int64_t i = 0; i < n / QK5_1; ++i, in += QK5_1) {
        float lo, hi;
        min_max(in, QK5_1, lo, hi);
        const float d = (hi - lo) / 31;
        const float id = inverse_or_zero(d);
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(lo);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; ++j) {
            const int q0 = trunc_clamped((in[j] - lo) * id + 0.5f, 0, 31);
            const int q1 = trunc_clamped((in[j + QK5_1 / 2] - lo) * id + 0.5f, 0, 31);
            b[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | (q1 & 0xF) << 4);
            qh |= static_cast<uint32_t>(q0 >> 4) << j;
            qh |= static_cast<uint32_t>(q1 >> 4) << (j + QK5_1 / 2);
        }
        store_qh(b[i].qh, qh);
    }
}

void quantize_row_q8_0(const float* in, void* blocks, int64_t n) {
    auto* b = static_cast<BlockQ8_0*>(blocks);
    for (int64_t i = 0; i < n / QK8_0; ++i, in += QK8_0) {
        float amax = 0;
        for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(in[j]));
        const float d = amax / 127;
        const float id = inverse_or_zero(d);
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; ++j)
            b[i].qs[j] = static_cast<int8_t>(round_away_clamped(in[j] * id, -127, 127));
    }
}

}  // namespace kinfer::ref
