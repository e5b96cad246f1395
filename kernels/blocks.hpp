#pragma once
// Byte layouts of ggml's quantized blocks, exactly as they lie in a GGUF file (little-endian, no padding).
// Shared by the scalar reference, the CPU SIMD kernels and the CUDA kernels, so it sticks to C++17 and
// marks its helpers host+device under nvcc.
//
// Half-precision fields are kept as raw uint16_t bits (decode with kinfer::fp16_to_fp32); the memory image
// is what matters here, not arithmetic.
#include <cstdint>

#if defined(__CUDACC__)
#define KINFER_HOST_DEVICE __host__ __device__
#else
#define KINFER_HOST_DEVICE
#endif

namespace kinfer {

// Elements per block.
constexpr int QK4_0 = 32;
constexpr int QK4_1 = 32;
constexpr int QK5_0 = 32;
constexpr int QK5_1 = 32;
constexpr int QK8_0 = 32;
constexpr int QK_K = 256;         // super-block of the k-quants
constexpr int K_SCALE_SIZE = 12;  // bytes of packed 6-bit scales+mins in Q4_K / Q5_K

// ---- 32-element "legacy" blocks -------------------------------------------------------------------------

// x = d * (q - 8), q in 0..15. Element j is the low nibble of qs[j], element j+16 the high nibble.
struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "BlockQ4_0 layout");

// x = d * q + m, q in 0..15; nibbles as in Q4_0.
struct BlockQ4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[QK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20, "BlockQ4_1 layout");

// x = d * (q - 16), q in 0..31: low 4 bits as in Q4_0, bit 4 of element j is bit j of the
// little-endian 32-bit word qh.
struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22, "BlockQ5_0 layout");

// x = d * q + m, q in 0..31; bits as in Q5_0.
struct BlockQ5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24, "BlockQ5_1 layout");

// x = d * q, q a signed byte.
struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[QK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34, "BlockQ8_0 layout");

// ---- 256-element k-quant super-blocks -------------------------------------------------------------------

// 16 groups of 16: x = d * (scales[g] & 15) * q - dmin * (scales[g] >> 4), q in 0..3.
// qs: within each half (128 elements, 32 bytes), element 32*s + l sits at bits 2s..2s+1 of byte l.
struct BlockQ2_K {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    uint16_t d;
    uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84, "BlockQ2_K layout");

// 16 groups of 16: x = d * (s[g] - 32) * (q - 4 * !hbit), s a 6-bit code, q the low 2 bits in qs as in Q2_K.
// The high bit of element e is bit (e / 32) of hmask[e % 32]. scales packs sixteen 6-bit codes: low nibbles
// of codes 0..7 in the low nibbles of bytes 0..7, of codes 8..15 in their high nibbles, and the top 2 bits of
// code g at bits 2*(g/4) of byte 8 + g%4.
struct BlockQ3_K {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110, "BlockQ3_K layout");

// 8 groups of 32: x = d * sc[g] * q - dmin * mn[g], q in 0..15, sc/mn 6-bit codes (see unpack_scale_min_k4).
// qs: 64-element chunks of 32 bytes; element c*64 + l is the low nibble of byte c*32 + l, element
// c*64 + 32 + l its high nibble.
struct BlockQ4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144, "BlockQ4_K layout");

// As Q4_K with q in 0..31; bit 4 of element c*64 + h*32 + l is bit 2c+h of qh[l].
struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176, "BlockQ5_K layout");

// 16 groups of 16: x = d * scales[g] * (q - 32), q in 0..63. Per 128-element half (64 ql bytes, 32 qh bytes):
// element 32*s + l has low nibble in ql[l + 32*(s&1)] (low nibble for s<2, high for s>=2) and its top
// two bits at bits 2s..2s+1 of qh[l].
struct BlockQ6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210, "BlockQ6_K layout");

// Activations for k-quant dot products: x = d * q with a float d; bsums[g] = sum of the 16 q of group g.
struct BlockQ8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 292, "BlockQ8_K layout");

// The 6-bit scale and min codes of group j (0..7) of a Q4_K / Q5_K block. Groups 0..3 use the low 6 bits of
// bytes j and j+4; groups 4..7 take their low 4 bits from byte j+4 and their top 2 bits from the spare top
// bits of bytes j-4 (scale) and j (min).
KINFER_HOST_DEVICE constexpr void unpack_scale_min_k4(int j, const uint8_t* s, uint8_t& sc, uint8_t& mn) {
    if (j < 4) {
        sc = static_cast<uint8_t>(s[j] & 63);
        mn = static_cast<uint8_t>(s[j + 4] & 63);
    } else {
        sc = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        mn = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// The signed scale (code - 32, in -32..31) of group g (0..15) of a Q3_K block.
KINFER_HOST_DEVICE constexpr int unpack_scale_q3_k(int g, const uint8_t* s) {
    const int low = g < 8 ? (s[g] & 0xF) : (s[g - 8] >> 4);
    const int high = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
    return (low | (high << 4)) - 32;
}

}  // namespace kinfer
