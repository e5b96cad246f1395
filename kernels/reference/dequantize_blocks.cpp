// Scalar reference dequantizers, bit-exact with ggml for every block. They do ggml's float operations in
// ggml's order: a product of the fp16 scale(s) and the integer code, then (where there is a min) one addition
// or subtraction. The products are exact in float (an fp16 significand has 11 bits and the codes and 6/8-bit
// group scales at most 8 more, staying within float's 24), except Q6_K's final product and Q8_K's product,
// which round once with nothing fused after them. So FMA contraction or a SIMD reordering of the products
// cannot change a single bit; the subtraction must stay last, and kernels must keep it so.
#include <cstring>

#include "kernels/blocks.hpp"
#include "kernels/fp16.hpp"
#include "kernels/reference/quant_rows.hpp"

namespace kinfer::ref {

void dequantize_row_q4_0(const void* blocks, float* out, int64_t n) {
    const auto* b = static_cast<const BlockQ4_0*>(blocks);
    for (int64_t i = 0; i < n / QK4_0; ++i, out += QK4_0) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            out[j] = static_cast<float>((b[i].qs[j] & 0xF) - 8) * d;
            out[j + QK4_0 / 2] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequantize_row_q4_1(const void* blocks, float* out, int64_t n) {
    const auto* b = static_cast<const BlockQ4_1*>(blocks);
    for (int64_t i = 0; i < n / QK4_1; ++i, out += QK4_1) {
        const float d = fp16_to_fp32(b[i].d);
        const float m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            const float lo = static_cast<float>(b[i].qs[j] & 0xF) * d;
            const float hi = static_cast<float>(b[i].qs[j] >> 4) * d;
            out[j] = lo + m;
            out[j + QK4_1 / 2] = hi + m;
        }
    }
}

namespace {
// The 5th bits of a Q5_0/Q5_1 block as one little-endian word.
uint32_t load_qh(const uint8_t* qh) {
    return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
           static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}
}  // namespace

void dequantize_row_q5_0(const void* blocks, float* out, int64_t n) {
    const auto* b = static_cast<const BlockQ5_0*>(blocks);
    for (int64_t i = 0; i < n / QK5_0; ++i, out += QK5_0) {
        const float d = fp16_to_fp32(b[i].d);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const int lo = (b[i].qs[j] & 0xF) | static_cast<int>((qh >> j) & 1) << 4;
            const int hi = (b[i].qs[j] >> 4) | static_cast<int>((qh >> (j + QK5_0 / 2)) & 1) << 4;
            out[j] = static_cast<float>(lo - 16) * d;
            out[j + QK5_0 / 2] = static_cast<float>(hi - 16) * d;
        }
    }
}

void dequantize_row_q5_1(const void* blocks, float* out, int64_t n) {
    const auto* b = static_cast<const BlockQ5_1*>(blocks);
    for (int64_t i = 0; i < n / QK5_1; ++i, out += QK5_1) {
        const float d = fp16_to_fp32(b[i].d);
        const float m = fp16_to_fp32(b[i].m);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < QK5_1 / 2; ++j) {
            const int lo = (b[i].qs[j] & 0xF) | static_cast<int>((qh >> j) & 1) << 4;
            const int hi = (b[i].qs[j] >> 4) | static_cast<int>((qh >> (j + QK5_1 / 2)) & 1) << 4;
            const float lo_scaled = static_cast<float>(lo) * d;
            const float hi_scaled = static_cast<float>(hi) * d;
            out[j] = lo_scaled + m;
            out[j + QK5_1 / 2] = hi_scaled + m;
        }
    }
}

void dequantize_row_q8_0(const void* blocks, float* out, int64_t n) {
    const auto* b = static_cast<const BlockQ8_0*>(blocks);
    for (int64_t i = 0; i < n / QK8_0; ++i, out += QK8_0) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_0; ++j) out[j] = static_cast<float>(b[i].qs[j]) * d;
    }
}

void dequantize_row_q2_k(const void* blocks, float* out, int64_t n) {
    const auto* b = static_cast<const BlockQ2_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, out += QK_K) {
        const float d = fp16_to_fp32(b[i].d);
        const float dmin = fp16_to_fp32(b[i].dmin);
        for (int g = 0; g < QK_K / 16;
             ++g) {  // element 16g + l: byte 32*(g/8) + 16*(g%2) + l, bits 2*((g/2)%4)
            const uint8_t sc = b[i].scales[g];
            const float dl = d * static_cast<float>(sc & 0xF);
            const float ml = dmin * static_cast<float>(sc >> 4);
            const uint8_t* qs = b[i].qs + 32 * (g / 8) + 16 * (g % 2);
            const int shift = 2 * ((g / 2) % 4);
            for (int l = 0; l < 16; ++l) {
                const float scaled = dl * static_cast<float>((qs[l] >> shift) & 3);
                out[16 * g + l] = scaled - ml;
            }
        }
    }
}

void dequantize_row_q3_k(const void* blocks, float* out, int64_t n) {
    const auto* b = static_cast<const BlockQ3_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, out += QK_K) {
        const float d = fp16_to_fp32(b[i].d);
        for (int g = 0; g < QK_K / 16;
             ++g) {  // low bits as in Q2_K; high bit: bit g/2 of hmask[16*(g%2) + l]
            const float dl = d * static_cast<float>(unpack_scale_q3_k(g, b[i].scales));
            const uint8_t* qs = b[i].qs + 32 * (g / 8) + 16 * (g % 2);
            const uint8_t* hm = b[i].hmask + 16 * (g % 2);
            const int shift = 2 * ((g / 2) % 4);
            for (int l = 0; l < 16; ++l) {
                const int low = (qs[l] >> shift) & 3;
                const int q = ((hm[l] >> (g / 2)) & 1) ? low : low - 4;
                out[16 * g + l] = dl * static_cast<float>(q);
            }
        }
    }
}

void dequantize_row_q4_k(const void* blocks, float* out, int64_t n) {
    const auto* b = static_cast<const BlockQ4_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, out += QK_K) {
        const float d = fp16_to_fp32(b[i].d);
        const float dmin = fp16_to_fp32(b[i].dmin);
        for (int g = 0; g < QK_K / 32; ++g) {
            uint8_t sc = 0, mn = 0;
            unpack_scale_min_k4(g, b[i].scales, sc, mn);
            const float dl = d * static_cast<float>(sc);
            const float ml = dmin * static_cast<float>(mn);
            const uint8_t* qs = b[i].qs + 32 * (g / 2);
            const int shift = 4 * (g % 2);
            for (int l = 0; l < 32; ++l) {
                const float scaled = dl * static_cast<float>((qs[l] >> shift) & 0xF);
                out[32 * g + l] = scaled - ml;
            }
        }
    }
}

void dequantize_row_q5_k(const void* blocks, float* out, int64_t n) {
    const auto* b = static_cast<const BlockQ5_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, out += QK_K) {
        const float d = fp16_to_fp32(b[i].d);
        const float dmin = fp16_to_fp32(b[i].dmin);
        for (int g = 0; g < QK_K / 32; ++g) {
            uint8_t sc = 0, mn = 0;
            unpack_scale_min_k4(g, b[i].scales, sc, mn);
            const float dl = d * static_cast<float>(sc);
            const float ml = dmin * static_cast<float>(mn);
            const uint8_t* qs = b[i].qs + 32 * (g / 2);
            const int shift = 4 * (g % 2);
            for (int l = 0; l < 32; ++l) {
                const int q = ((qs[l] >> shift) & 0xF) | ((b[i].qh[l] >> g) & 1) << 4;
                const float scaled = dl * static_cast<float>(q);
                out[32 * g + l] = scaled - ml;
            }
        }
    }
}

void dequantize_row_q6_k(const void* blocks, float* out, int64_t n) {
    const auto* b = static_cast<const BlockQ6_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, out += QK_K) {
        const float d = fp16_to_fp32(b[i].d);
        for (int g = 0; g < QK_K / 16; ++g) {
            // Element 16g + l is element 32s + 16*(g%2) + l of half g/8, with s = (g/2) % 4.
            const int half = g / 8, s = (g / 2) % 4, l0 = 16 * (g % 2);
            const uint8_t* ql = b[i].ql + 64 * half + 32 * (s & 1) + l0;
            const uint8_t* qh = b[i].qh + 32 * half + l0;
            const float dl = d * static_cast<float>(b[i].scales[g]);
            for (int l = 0; l < 16; ++l) {
                const int low = (ql[l] >> (4 * (s >> 1))) & 0xF;
                const int high = (qh[l] >> (2 * s)) & 3;
                out[16 * g + l] = dl * static_cast<float>((low | high << 4) - 32);
            }
        }
    }
}

void dequantize_row_q8_k(const void* blocks, float* out, int64_t n) {
    const auto* b = static_cast<const BlockQ8_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, out += QK_K) {
        for (int j = 0; j < QK_K; ++j) out[j] = b[i].d * static_cast<float>(b[i].qs[j]);
    }
}

}  // namespace kinfer::ref
