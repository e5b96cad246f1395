// Reference quantizers for the 256-element k-quant super-blocks, imatrix-free (the algorithms of ggml's
// quantize_row_q*_K_ref, which llama-quantize uses without --imatrix):
//  1. fit a float scale (and min) per group with a small search (kquant_fit.hpp);
//  2. quantize those group scales against the largest one, which becomes the fp16 super-block scale;
//  3. re-pick every code against the scales as they will actually be decoded, then pack the bits.
#include <cmath>
#include <cstring>

#include "kernels/blocks.hpp"
#include "kernels/fp16.hpp"
#include "kernels/reference/kquant_fit.hpp"
#include "kernels/reference/quant_math.hpp"
#include "kernels/reference/quant_rows.hpp"

namespace kinfer::ref {
namespace {

// Q2_K / Q3_K share the 2-bit packing: within each 128-element half, element 32*s + l goes to bits 2s of byte
// l.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
    for (int half = 0; half < 2; ++half) {
        const uint8_t* src = L + 128 * half;
        for (int l = 0; l < 32; ++l)
            qs[32 * half + l] =
                static_cast<uint8_t>(src[l] | src[l + 32] << 2 | src[l + 64] << 4 | src[l + 96] << 6);
    }
}

// Q4_K / Q5_K: the inverse of unpack_scale_min_k4.
void pack_scale_min_k4(const uint8_t* sc, const uint8_t* mn, uint8_t* out) {
    std::memset(out, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            out[j] = sc[j];
            out[j + 4] = mn[j];
        } else {
            out[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | (mn[j] & 0xF) << 4);
            out[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
            out[j] |= static_cast<uint8_t>((mn[j] >> 4) << 6);
        }
    }
}

// Steps 1 and 2 for Q4_K / Q5_K: 8 groups of 32 with 6-bit scale and min codes. Leaves the fitted codes in L
// (kept for groups whose decoded scale is zero) and fills the block's d, dmin, scales.
template <typename Block>
void fit_groups_k4(const float* x, int nmax, float rmin, int nstep, uint8_t* L, Block& b) {
    float scales[8], mins[8], weights[32];
    float max_scale = 0, max_min = 0;
    for (int g = 0; g < 8; ++g) {
        const float* xg = x + 32 * g;
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += xg[l] * xg[l];
        // Weight each value by its size plus the group's RMS: large values matter more, none is ignored.
        const float rms = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = rms + std::fabs(xg[l]);
        scales[g] = fit_scale_min(32, nmax, xg, weights, L + 32 * g, &mins[g], rmin, 0.1f, nstep, false);
        max_scale = std::fmax(max_scale, scales[g]);
        max_min = std::fmax(max_min, mins[g]);
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t sc[8], mn[8];
    for (int g = 0; g < 8; ++g) {
        sc[g] = static_cast<uint8_t>(round_clamped(inv_scale * scales[g], 0, 63));
        mn[g] = static_cast<uint8_t>(round_clamped(inv_min * mins[g], 0, 63));
    }
    pack_scale_min_k4(sc, mn, b.scales);
    b.d = fp32_to_fp16(max_scale / 63.f);
    b.dmin = fp32_to_fp16(max_min / 63.f);
}

// Step 3 for Q4_K / Q5_K.
template <typename Block>
void requantize_groups_k4(const float* x, int nmax, uint8_t* L, const Block& b) {
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    for (int g = 0; g < 8; ++g) {
        uint8_t sc, mn;
        unpack_scale_min_k4(g, b.scales, sc, mn);
        const float dl = d * sc;
        if (dl == 0) continue;
        const float ml = dmin * mn;
        for (int l = 0; l < 32; ++l)
            L[32 * g + l] = static_cast<uint8_t>(round_clamped((x[32 * g + l] + ml) / dl, 0, nmax));
    }
}

}  // namespace

void quantize_row_q2_k(const float* in, void* blocks, int64_t n) {
    auto* b = static_cast<BlockQ2_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, in += QK_K) {
        uint8_t L[QK_K];
        float scales[16], mins[16], weights[16];
        float max_scale = 0, max_min = 0;
        for (int g = 0; g < 16; ++g) {
            const float* xg = in + 16 * g;
            for (int l = 0; l < 16; ++l) weights[l] = std::fabs(xg[l]);
            scales[g] = fit_scale_min(16, 3, xg, weights, L + 16 * g, &mins[g], -0.5f, 0.1f, 15, true);
            max_scale = std::fmax(max_scale, scales[g]);
            max_min = std::fmax(max_min, mins[g]);
        }
        // 4-bit scale codes in the low nibbles, 4-bit min codes in the high nibbles.
        for (int g = 0; g < 16; ++g) {
            const int sc = max_scale > 0 ? round_clamped(15.f / max_scale * scales[g], 0, 15) : 0;
            const int mn = max_min > 0 ? round_clamped(15.f / max_min * mins[g], 0, 15) : 0;
            b[i].scales[g] = static_cast<uint8_t>(sc | mn << 4);
        }
        b[i].d = fp32_to_fp16(max_scale > 0 ? max_scale / 15.f : 0.f);
        b[i].dmin = fp32_to_fp16(max_min > 0 ? max_min / 15.f : 0.f);

        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        for (int g = 0; g < 16; ++g) {
            const float dl = d * (b[i].scales[g] & 0xF);
            if (dl == 0) continue;
            const float ml = dmin * (b[i].scales[g] >> 4);
            for (int l = 0; l < 16; ++l)
                L[16 * g + l] = static_cast<uint8_t>(round_clamped((in[16 * g + l] + ml) / dl, 0, 3));
        }
        pack_2bit(L, b[i].qs);
    }
}

void quantize_row_q3_k(const float* in, void* blocks, int64_t n) {
    auto* b = static_cast<BlockQ3_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, in += QK_K) {
        int8_t L[QK_K];
        float scales[16];
        float max_scale = 0;  // the group scale of largest magnitude, with its sign
        for (int g = 0; g < 16; ++g) {
            scales[g] = fit_scale_q3(16, 4, in + 16 * g, L + 16 * g);
            if (std::fabs(scales[g]) > std::fabs(max_scale)) max_scale = scales[g];
        }

        std::memset(b[i].scales, 0, sizeof b[i].scales);
        if (max_scale != 0) {
            // Signed 6-bit codes (stored +32); the extreme scale maps to -32, the end with one more step.
            const float iscale = -32.f / max_scale;
            for (int g = 0; g < 16; ++g) {
                const int code = round_clamped(iscale * scales[g], -32, 31) + 32;
                if (g < 8)
                    b[i].scales[g] = static_cast<uint8_t>(code & 0xF);
                else
                    b[i].scales[g - 8] |= static_cast<uint8_t>((code & 0xF) << 4);
                b[i].scales[8 + g % 4] |= static_cast<uint8_t>((code >> 4) << (2 * (g / 4)));
            }
            b[i].d = fp32_to_fp16(1 / iscale);
        } else {
            b[i].d = fp32_to_fp16(0.f);
        }

        const float d = fp16_to_fp32(b[i].d);
        for (int g = 0; g < 16; ++g) {
            const float dl = d * unpack_scale_q3_k(g, b[i].scales);
            if (dl == 0) continue;
            for (int l = 0; l < 16; ++l)
                L[16 * g + l] = static_cast<int8_t>(round_clamped(in[16 * g + l] / dl, -4, 3) + 4);
        }

        // Codes are 0..7: bit 2 goes to hmask (element e -> bit e/32 of byte e%32), the low 2 bits to qs.
        uint8_t low[QK_K];
        std::memset(b[i].hmask, 0, sizeof b[i].hmask);
        for (int e = 0; e < QK_K; ++e) {
            if (L[e] > 3) b[i].hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
            low[e] = static_cast<uint8_t>(L[e] & 3);
        }
        pack_2bit(low, b[i].qs);
    }
}

void quantize_row_q4_k(const float* in, void* blocks, int64_t n) {
    auto* b = static_cast<BlockQ4_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, in += QK_K) {
        uint8_t L[QK_K];
        fit_groups_k4(in, 15, -1.0f, 20, L, b[i]);
        requantize_groups_k4(in, 15, L, b[i]);
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l)
                b[i].qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

void quantize_row_q5_k(const float* in, void* blocks, int64_t n) {
    auto* b = static_cast<BlockQ5_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, in += QK_K) {
        uint8_t L[QK_K];
        fit_groups_k4(in, 31, -0.5f, 15, L, b[i]);
        requantize_groups_k4(in, 31, L, b[i]);
        std::memset(b[i].qh, 0, sizeof b[i].qh);
        for (int c = 0; c < 4; ++c) {
            for (int l = 0; l < 32; ++l) {
                const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                b[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | (hi & 0xF) << 4);
                b[i].qh[l] |= static_cast<uint8_t>((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
            }
        }
    }
}

void quantize_row_q6_k(const float* in, void* blocks, int64_t n) {
    auto* b = static_cast<BlockQ6_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, in += QK_K) {
        int8_t L[QK_K];
        float scales[16];
        float max_scale = 0;  // with sign
        for (int g = 0; g < 16; ++g) {
            scales[g] = fit_scale_symmetric(16, 32, in + 16 * g, L + 16 * g);
            if (std::fabs(scales[g]) > std::fabs(max_scale)) max_scale = scales[g];
        }
        if (std::fabs(max_scale) < 1e-15f) {  // all (near-)zero: an all-zero block decodes to zeros
            std::memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        // Signed 8-bit group scales; the extreme one maps to -128.
        const float iscale = -128.f / max_scale;
        b[i].d = fp32_to_fp16(1 / iscale);
        for (int g = 0; g < 16; ++g)
            b[i].scales[g] = static_cast<int8_t>(round_clamped(iscale * scales[g], -128, 127));

        const float d = fp16_to_fp32(b[i].d);
        for (int g = 0; g < 16; ++g) {
            const float dl = d * b[i].scales[g];
            if (dl == 0) continue;
            for (int l = 0; l < 16; ++l)
                L[16 * g + l] = static_cast<int8_t>(round_clamped(in[16 * g + l] / dl, -32, 31) + 32);
        }

        // Per 128-element half: low nibbles of elements 32s+l into ql[l + 32*(s&1)] (s>=2 in the high
        // nibble), top 2 bits into bits 2s of qh[l].
        for (int half = 0; half < 2; ++half) {
            const int8_t* src = L + 128 * half;
            uint8_t* ql = b[i].ql + 64 * half;
            uint8_t* qh = b[i].qh + 32 * half;
            for (int l = 0; l < 32; ++l) {
                const int q0 = src[l], q1 = src[l + 32], q2 = src[l + 64], q3 = src[l + 96];
                ql[l] = static_cast<uint8_t>((q0 & 0xF) | (q2 & 0xF) << 4);
                ql[l + 32] = static_cast<uint8_t>((q1 & 0xF) | (q3 & 0xF) << 4);
                qh[l] = static_cast<uint8_t>((q0 >> 4) | (q1 >> 4) << 2 | (q2 >> 4) << 4 | (q3 >> 4) << 6);
            }
        }
    }
}

void quantize_row_q8_k(const float* in, void* blocks, int64_t n) {
    auto* b = static_cast<BlockQ8_K*>(blocks);
    for (int64_t i = 0; i < n / QK_K; ++i, in += QK_K) {
        const float max = signed_absmax(in, QK_K);
        if (max == 0) {
            std::memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        // -127 (not -128) keeps every code's negation representable, which SIMD dot products rely on.
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j)
            b[i].qs[j] = static_cast<int8_t>(round_clamped(iscale * in[j], -128, 127));
        for (int g = 0; g < QK_K / 16; ++g) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += b[i].qs[16 * g + l];
            b[i].bsums[g] = static_cast<int16_t>(sum);
        }
        b[i].d = 1 / iscale;
    }
}

}  // namespace kinfer::ref
