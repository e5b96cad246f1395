// The "two int8 terms" decode path on AVX-512 VNNI for Q5_K, Q2_K, Q3_K, Q5_0, Q4_1 and Q5_1 (Q4_K, Q6_K,
// Q8_0 and Q4_0 have faster kernels of the same precision in decode_i8x2p/b_avx512.cpp; see
// decode_table.hpp for why and how exact): the
// activation x of each block is rounded to (d / 128) * (128 * q1 + q2) with d = max|x| / 127, q1 = round(x /
// d) and q2 = round((x / d - q1) * 128), both int8 (|q2| <= 64): ~15 bits, 1/128 of llama.cpp's 8-bit step.
// The weights' small unsigned codes go straight into vpdpbusd (u8 x s8 -> int32) against q1 and q2; per
// 4-element int32 lane the two sums combine exactly as 128 * (w . q1) + (w . q2), then are converted to float
// and scaled by the group / block scales. Offsets and mins (Q4_K's -dmin * m, Q6_K's -32, Q4_0's -8, Q8_0's
// +128 from reading signed codes as w ^ 0x80) multiply sums of the rounded activation, computed exactly when
// it is prepared, so the only rounding is the activation's. Weights are read in the GGUF layout as is.
//
// This file alone is built with -mavx512f/bw/vl/vnni (CMakeLists.txt) and only runs where detected_isa()
// allows it. Nothing here has external linkage except decode_path_i8x2_avx512.
#include "kernels/cpu/decode_table.hpp"

#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/blocks.hpp"
#include "kernels/cpu/decode_i8x2_shared.hpp"

namespace kinfer::cpu {
namespace {

using i8x2::prefetch_ahead;

// ---- prepared activations --------------------------------------------------------------------------------
// Per token, contiguous (so a token's bytes do not depend on which tokens share the call), each region
// followed by kSkew spare bytes:
//
// k-quants (kActI8x2K, kActI8x2KPerm), blocks of 256, nb = n_in / 256:
//   int8 q1[n_in] | int8 q2[n_in] | float dx[nb] | float s16[nb][16] | float s32[nb][16]
//   dx = d / 128 of the block; s16[g] = dx * sum of (128 q1 + q2) over group g of 16; s32 the same over
//   groups of 32 (lanes 8..15 zero). The Perm format stores the groups of 32 of each block in the order
//   0 2 1 3 4 6 5 7 (how Q4_K / Q5_K hold their nibbles); s32 stays in group order.
// legacy types (kActI8x2B*), blocks of 32, n_pad = n_in rounded up to 64 (zeros past n_in):
//   int8 q1[n_pad] | int8 q2[n_pad] | float dxv[n_pad / 4] | float off[n_pad / 4]
//   per 64 elements 16 lanes of 4 elements each: dxv = the lane's block's dx, off = kOff * dx * sum of the
//   lane's (128 q1 + q2): what an offset of -kOff per weight costs.

constexpr int kPermK4[8] = {0, 2, 1, 3, 4, 6, 5, 7};

// Rounds 16 floats to q1, q2 (stored as bytes) with v = x * id, and returns 128 * q1 + q2 per lane.
inline __m512i round16(const float* x, __m512 id, int8_t* q1, int8_t* q2) {
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x), id);
    const __m512 r1 = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r2 = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_sub_ps(v, r1), _mm512_set1_ps(128.0f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i i1 = _mm512_cvtps_epi32(r1), i2 = _mm512_cvtps_epi32(r2);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q1), _mm512_cvtsepi32_epi8(i1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q2), _mm512_cvtsepi32_epi8(i2));
    return _mm512_add_epi32(_mm512_slli_epi32(i1, 7), i2);
}

// 127 / max|x| over n elements (0 for an all-zero block).
inline float inv_step(const float* x, int n) {
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    const float amax = _mm512_reduce_max_ps(m);
    return amax > 0 ? 127.0f / amax : 0.0f;
}

// Regions and tokens are kSkew bytes further apart than their sizes: with power-of-two row lengths they
// would otherwise start at multiples of 4 KiB and fight over the same L1 sets (measured: 8 tokens of Q8_0
// ran 60x slower than one).
constexpr size_t kSkew = 64;

size_t k_token_bytes(int64_t n_in) {
    return (size_t(n_in) + kSkew) * 2 + size_t(n_in / 256) * (4 + 64 + 64) + kSkew;
}

size_t k_act_bytes(int64_t n_in, int64_t n_tokens) {
    return k_token_bytes(n_in) * size_t(n_tokens);
}

struct KTok {
    const int8_t *q1, *q2;
    const float *dx, *s16, *s32;
};

inline KTok k_token(const void* act, int64_t n_in, int64_t t) {
    const auto* base = static_cast<const uint8_t*>(act) + size_t(t) * k_token_bytes(n_in);
    const int64_t nb = n_in / 256;
    const auto* q1 = reinterpret_cast<const int8_t*>(base);
    const auto* dx = reinterpret_cast<const float*>(base + 2 * (size_t(n_in) + kSkew));
    return KTok{q1, q1 + n_in + kSkew, dx, dx + nb, dx + nb + 16 * nb};
}

template <bool kPerm>
void k_prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    const int64_t nb = n_in / 256;
    for (int64_t t = 0; t < n_tokens; ++t) {
        auto* base = static_cast<uint8_t*>(act) + size_t(t) * k_token_bytes(n_in);
        auto* q1 = reinterpret_cast<int8_t*>(base);
        int8_t* q2 = q1 + n_in + kSkew;
        auto* dx = reinterpret_cast<float*>(base + 2 * (size_t(n_in) + kSkew));
        float* s16 = dx + nb;
        float* s32 = s16 + 16 * nb;
        for (int64_t b = 0; b < nb; ++b) {
            const float* xb = x + t * n_in + b * 256;
            const float id = inv_step(xb, 256);
            const float step = id > 0 ? 1.0f / id / 128.0f : 0.0f;
            dx[b] = step;
            int32_t sum16[16];
            for (int g = 0; g < 16; ++g) {
                // group g of 16 goes to the place its group of 32 has in the stored order
                const int at = kPerm ? 32 * kPermK4[g / 2] + 16 * (g % 2) : 16 * g;
                sum16[g] = _mm512_reduce_add_epi32(
                    round16(xb + 16 * g, _mm512_set1_ps(id), q1 + b * 256 + at, q2 + b * 256 + at));
            }
            for (int g = 0; g < 16; ++g) {
                s16[16 * b + g] = step * float(sum16[g]);
                s32[16 * b + g] = g < 8 ? step * float(sum16[2 * g] + sum16[2 * g + 1]) : 0.0f;
            }
        }
    }
}

size_t b_token_bytes(int64_t n_in) {
    const size_t n_pad = size_t((n_in + 63) / 64 * 64);
    return 4 * (n_pad + kSkew) + kSkew;  // q1, q2, then n_pad / 4 floats twice
}

size_t b_act_bytes(int64_t n_in, int64_t n_tokens) {
    return b_token_bytes(n_in) * size_t(n_tokens);
}

struct BTok {
    const int8_t *q1, *q2;
    const float *dxv, *off;
};

inline BTok b_token(const void* act, int64_t n_in, int64_t t) {
    const int64_t n_pad = (n_in + 63) / 64 * 64;
    const auto* base = static_cast<const uint8_t*>(act) + size_t(t) * b_token_bytes(n_in);
    const auto* q1 = reinterpret_cast<const int8_t*>(base);
    const auto* dxv = reinterpret_cast<const float*>(base + 2 * (n_pad + kSkew));
    return BTok{q1, q1 + n_pad + kSkew, dxv, dxv + (n_pad + kSkew) / 4};
}

template <int kOff>
void b_prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    const int64_t n_pad = (n_in + 63) / 64 * 64;
    for (int64_t t = 0; t < n_tokens; ++t) {
        auto* base = static_cast<uint8_t*>(act) + size_t(t) * b_token_bytes(n_in);
        auto* q1 = reinterpret_cast<int8_t*>(base);
        int8_t* q2 = q1 + n_pad + kSkew;
        auto* dxv = reinterpret_cast<float*>(base + 2 * (n_pad + kSkew));
        float* off = dxv + (n_pad + kSkew) / 4;
        for (int64_t b = 0; b < n_pad / 32; ++b) {
            float* dl = dxv + 8 * b;
            float* ol = off + 8 * b;
            if (b * 32 >= n_in) {  // the padding block of an odd block count
                std::memset(q1 + 32 * b, 0, 32);
                std::memset(q2 + 32 * b, 0, 32);
                for (int l = 0; l < 8; ++l) dl[l] = ol[l] = 0.0f;
                continue;
            }
            const float* xb = x + t * n_in + b * 32;
            const float id = inv_step(xb, 32);
            const float step = id > 0 ? 1.0f / id / 128.0f : 0.0f;
            alignas(64) int32_t lane[16];
            for (int h = 0; h < 2; ++h) {
                const __m512i c =
                    round16(xb + 16 * h, _mm512_set1_ps(id), q1 + 32 * b + 16 * h, q2 + 32 * b + 16 * h);
                _mm512_store_si512(lane, c);
                for (int l = 0; l < 4; ++l)
                    ol[4 * h + l] = float(kOff) * step *
                                    float(lane[4 * l] + lane[4 * l + 1] + lane[4 * l + 2] + lane[4 * l + 3]);
            }
            for (int l = 0; l < 8; ++l) dl[l] = step;
        }
    }
}

// ---- shared pieces ---------------------------------------------------------------------------------------

// 128 * (w . q1) + (w . q2) per 4-element lane: exact in int32 (|w| <= 255, |q1| <= 127, |q2| <= 64).
inline __m512i dot2(__m512i w, const int8_t* q1, const int8_t* q2) {
    __m512i a = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_loadu_si512(q1));
    a = _mm512_slli_epi32(a, 7);
    return _mm512_dpbusd_epi32(a, w, _mm512_loadu_si512(q2));
}

inline __m512i bytes(int8_t b) {
    return _mm512_set1_epi8(b);
}

inline __m512i lane_index(int a0, int a1, int a2, int a3) {  // four lanes each of a0, a1, a2, a3
    return _mm512_setr_epi32(a0, a0, a0, a0, a1, a1, a1, a1, a2, a2, a2, a2, a3, a3, a3, a3);
}

inline __m512i half_index(int a, int b) {  // eight lanes of a, eight of b
    return _mm512_setr_epi32(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b);
}

inline __m512i shift_halves(int a, int b) {  // 16-bit shift counts: a in the low 256 bits, b in the high
    return _mm512_inserti64x4(_mm512_set1_epi16(int16_t(a)), _mm256_set1_epi16(int16_t(b)), 1);
}

inline float half_to_float(uint16_t h) {
    return _cvtsh_ss(h);
}

// ---- k-quant decoders: four weight vectors of 64 u8 codes per 256-element block, in the prepared order,
// their per-lane float scales, and the vector (16 lanes) the block's s16 or s32 sums are multiplied by and
// subtracted. ----

// Q4_K's scale format, which Q5_K shares (Q4_K itself runs in decode_i8x2p_avx512.cpp).
struct ScalesK4 {
    // Scale and min codes (kinfer::unpack_scale_min_k4), as float: lanes 0..7 d * sc, lanes 8..15 dmin * m.
    // From the block's first 16 bytes (d, dmin, the 12 scale bytes s at 4..15), in one register:
    // scale j < 4 is s[j] & 63, j >= 4 is (s[j + 4] & 15) | (s[j - 4] >> 6) << 4; min j < 4 is s[j + 4] & 63,
    // j >= 4 is (s[j + 4] >> 4) | (s[j] >> 6) << 4.
    static __m512 scales_mins(const uint8_t* p) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        constexpr char z = char(0x80);  // pshufb: a zero byte
        // low bits: bytes s[0..3], s[8..11], s[4..7], s[8..11]; the last four take their high nibble
        const __m128i t =
            _mm_shuffle_epi8(v, _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
        const __m128i low =
            _mm_and_si128(_mm_mask_blend_epi8(0xF000, t, _mm_srli_epi16(t, 4)),
                          _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
        // high bits of codes 4..7: the top two bits of s[0..3] (scales) and s[4..7] (mins), moved to
        // bits 4..5
        const __m128i h =
            _mm_shuffle_epi8(v, _mm_setr_epi8(z, z, z, z, 4, 5, 6, 7, z, z, z, z, 8, 9, 10, 11));
        const __m128i codes = _mm_or_si128(low, _mm_and_si128(_mm_srli_epi16(h, 2), _mm_set1_epi8(0x30)));
        const __m512 dd = _mm512_permutexvar_ps(half_index(0, 1), _mm512_castps128_ps512(_mm_cvtph_ps(v)));
        return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(codes)), dd);
    }
    static void scale_vectors(__m512 f, __m512* sc, __m512& off) {
        // vector j holds groups (4 (j / 2) + j % 2) and (+ 2) in its halves
        sc[0] = _mm512_permutexvar_ps(half_index(0, 2), f);
        sc[1] = _mm512_permutexvar_ps(half_index(1, 3), f);
        sc[2] = _mm512_permutexvar_ps(half_index(4, 6), f);
        sc[3] = _mm512_permutexvar_ps(half_index(5, 7), f);
        off = _mm512_maskz_permutexvar_ps(
            0x00FF, _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0, 0, 0), f);
    }
};

struct UQ5_K {
    static constexpr size_t kBytes = sizeof(BlockQ5_K);
    static constexpr int kSums = 32;
    static constexpr bool kPerm = true;
    static void unpack(const uint8_t* p, __m512i* w, __m512* sc, __m512& off) {
        const auto* b = reinterpret_cast<const BlockQ5_K*>(p);
        const __m512i a = _mm512_loadu_si512(b->qs), c = _mm512_loadu_si512(b->qs + 64);
        const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh)));
        const __m512i m = bytes(0x0F), one = bytes(1);
        // bit g of qh[l] is the 5th bit of element l of group g
        auto high = [&](int ga, int gb) {
            return _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(h, shift_halves(ga, gb)), one), 4);
        };
        w[0] = _mm512_or_si512(_mm512_and_si512(a, m), high(0, 2));
        w[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(a, 4), m), high(1, 3));
        w[2] = _mm512_or_si512(_mm512_and_si512(c, m), high(4, 6));
        w[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(c, 4), m), high(5, 7));
        ScalesK4::scale_vectors(ScalesK4::scales_mins(p), sc, off);
    }
};

// Q2_K / Q3_K: within each half (128 elements, 32 bytes of qs) element 32 s + l sits at bits 2 s of byte
// l; vector j (elements 64 j ..) takes runs s = 2 (j % 2) and + 1 of half j / 2 from one broadcast load.
inline __m512i two_bit_codes(const uint8_t* qs, int j) {
    const __m512i q =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (j / 2))));
    return _mm512_and_si512(_mm512_srlv_epi16(q, shift_halves(4 * (j % 2), 4 * (j % 2) + 2)), bytes(3));
}

// Per-lane float scales of the four vectors when vector j, lane l covers group 4 j + l / 4 (groups of 16).
inline void group16_scales(__m512 dl, __m512* sc) {
    sc[0] = _mm512_permutexvar_ps(lane_index(0, 1, 2, 3), dl);
    sc[1] = _mm512_permutexvar_ps(lane_index(4, 5, 6, 7), dl);
    sc[2] = _mm512_permutexvar_ps(lane_index(8, 9, 10, 11), dl);
    sc[3] = _mm512_permutexvar_ps(lane_index(12, 13, 14, 15), dl);
}

struct UQ2_K {
    static constexpr size_t kBytes = sizeof(BlockQ2_K);
    static constexpr int kSums = 16;
    static constexpr bool kPerm = false;
    static void unpack(const uint8_t* p, __m512i* w, __m512* sc, __m512& off) {
        const auto* b = reinterpret_cast<const BlockQ2_K*>(p);
        for (int j = 0; j < 4; ++j) w[j] = two_bit_codes(b->qs, j);
        const __m512i codes =
            _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales)));
        group16_scales(_mm512_mul_ps(_mm512_set1_ps(half_to_float(b->d)),
                                     _mm512_cvtepi32_ps(_mm512_and_si512(codes, _mm512_set1_epi32(15)))),
                       sc);
        off = _mm512_mul_ps(_mm512_set1_ps(half_to_float(b->dmin)),
                            _mm512_cvtepi32_ps(_mm512_srli_epi32(codes, 4)));
    }
};

struct UQ3_K {
    static constexpr size_t kBytes = sizeof(BlockQ3_K);
    static constexpr int kSums = 16;
    static constexpr bool kPerm = false;
    static void unpack(const uint8_t* p, __m512i* w, __m512* sc, __m512& off) {
        const auto* b = reinterpret_cast<const BlockQ3_K*>(p);
        // the high bit of element e is bit e / 32 of hmask[e % 32]; codes are low | high << 2, minus 4
        const __m512i h =
            _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->hmask)));
        for (int j = 0; j < 4; ++j) {
            const __m512i hb =
                _mm512_and_si512(_mm512_srlv_epi16(h, shift_halves(2 * j, 2 * j + 1)), bytes(1));
            w[j] = _mm512_or_si512(two_bit_codes(b->qs, j), _mm512_slli_epi16(hb, 2));
        }
        const uint8_t* s = b->scales;
        alignas(64) int32_t code[16];
        for (int g = 0; g < 16; ++g) {
            const int low = g < 8 ? (s[g] & 0xF) : (s[g - 8] >> 4);
            code[g] = (low | (((s[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32;
        }
        const __m512 dl =
            _mm512_mul_ps(_mm512_set1_ps(half_to_float(b->d)), _mm512_cvtepi32_ps(_mm512_load_si512(code)));
        group16_scales(dl, sc);
        off = _mm512_mul_ps(dl, _mm512_set1_ps(4.0f));
    }
};

// Rows [r0, r1) in tiles of kTileRows, block by block; tokens go in passes of 8, 4, 2, 1 within a tile, whose
// weights are by then in L1/L2, so memory is read once per call. A token's sums are formed in the same order
// in every pass and tile, so its result does not depend on which tokens or rows share the call. One row per
// tile: tiles of 4 rows (each block's activation loaded once for 4 rows) measured no faster with 8 tokens
// and 1.6-2.6x slower streaming from DRAM with one (4 interleaved row streams; busy machine, rough).
constexpr int kTileRows = 1;

template <class U, int TT>
void k_tile(const uint8_t* w, size_t row_bytes, int nr, int64_t nb, const KTok* tok, float* out,
            int64_t out_stride) {
    __m512 acc[kTileRows][TT];
    for (int i = 0; i < kTileRows; ++i)
        for (int t = 0; t < TT; ++t) acc[i][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const int64_t e = b * 256;
        for (int i = 0; i < nr; ++i) {
            const uint8_t* blk = w + size_t(i) * row_bytes + size_t(b) * U::kBytes;
            prefetch_ahead(blk, U::kBytes);
            __m512i wv[4];
            __m512 sc[4], off;
            U::unpack(blk, wv, sc, off);
#pragma GCC unroll 8
            for (int t = 0; t < TT; ++t) {
                __m512 s =
                    _mm512_mul_ps(_mm512_cvtepi32_ps(dot2(wv[0], tok[t].q1 + e, tok[t].q2 + e)), sc[0]);
#pragma GCC unroll 3
                for (int j = 1; j < 4; ++j)
                    s = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(dot2(wv[j], tok[t].q1 + e + 64 * j, tok[t].q2 + e + 64 * j)),
                        sc[j], s);
                __m512 a = _mm512_fmadd_ps(s, _mm512_set1_ps(tok[t].dx[b]), acc[i][t]);
                const float* sums = U::kSums == 16 ? tok[t].s16 : tok[t].s32;
                acc[i][t] = _mm512_fnmadd_ps(off, _mm512_loadu_ps(sums + 16 * b), a);
            }
        }
    }
    for (int i = 0; i < nr; ++i)
        for (int t = 0; t < TT; ++t) out[t * out_stride + i] = _mm512_reduce_add_ps(acc[i][t]);
}

// Tokens in passes of 8, 4, 2, 1 over one tile of rows.
template <class Tok, void (*token)(const void*, int64_t, int64_t, Tok&), template <int> class Tile>
void passes(const uint8_t* w, size_t row_bytes, int nr, int64_t n_in, const void* act, int64_t n_tokens,
            float* out, int64_t out_stride) {
    for (int64_t t0 = 0; t0 < n_tokens;) {
        const int64_t left = n_tokens - t0;
        const int tt = left >= 8 ? 8 : (left >= 4 ? 4 : (left >= 2 ? 2 : 1));
        Tok tok[8];
        for (int t = 0; t < tt; ++t) token(act, n_in, t0 + t, tok[t]);
        float* o = out + t0 * out_stride;
        switch (tt) {
            case 8:
                Tile<8>::run(w, row_bytes, nr, n_in, tok, o, out_stride);
                break;
            case 4:
                Tile<4>::run(w, row_bytes, nr, n_in, tok, o, out_stride);
                break;
            case 2:
                Tile<2>::run(w, row_bytes, nr, n_in, tok, o, out_stride);
                break;
            default:
                Tile<1>::run(w, row_bytes, nr, n_in, tok, o, out_stride);
        }
        t0 += tt;
    }
}

void k_token_into(const void* act, int64_t n_in, int64_t t, KTok& out) {
    out = k_token(act, n_in, t);
}

template <class U>
struct KTile {
    template <int TT>
    struct T {
        static void run(const uint8_t* w, size_t row_bytes, int nr, int64_t n_in, const KTok* tok, float* out,
                        int64_t out_stride) {
            k_tile<U, TT>(w, row_bytes, nr, n_in / 256, tok, out, out_stride);
        }
    };
};

template <class U>
void k_rows(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens, int64_t r0,
            int64_t r1, float* out, int64_t out_stride) {
    for (int64_t r = r0; r < r1; r += kTileRows) {
        const int nr = int(r1 - r < kTileRows ? r1 - r : kTileRows);
        passes<KTok, k_token_into, KTile<U>::template T>(w + size_t(r) * row_bytes, row_bytes, nr, n_in, act,
                                                         n_tokens, out + r, out_stride);
    }
}

// ---- legacy decoders: one weight vector of 64 u8 codes per two 32-element blocks, and the 16-lane vector
// of the blocks' scales (lanes 0..7 the first block's). A missing second block (odd block count) reads the
// first again with scale 0 (its activation is zero padding). ----

inline __m512 pair_scales(uint16_t da, uint16_t db, bool has_b) {
    return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(half_to_float(da)),
                                _mm512_set1_ps(has_b ? half_to_float(db) : 0.0f));
}

// The 32 nibbles of two Q4_0-style qs arrays in element order: 128-bit quarters a, a, b, b, the second and
// fourth taking the high nibbles.
inline __m512i nibble_pair(const uint8_t* qa, const uint8_t* qb) {
    const __m512i q = _mm512_inserti64x4(
        _mm512_castsi256_si512(
            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qa)))),
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qb))), 1);
    return _mm512_and_si512(_mm512_srlv_epi64(q, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)), bytes(0x0F));
}

// The 5th bits of two Q5_0-style blocks (bit e of qh is element e's), at bit 4 of each byte.
inline __m512i fifth_bits(const uint8_t* qha, const uint8_t* qhb) {
    uint32_t ha, hb;
    std::memcpy(&ha, qha, 4);
    std::memcpy(&hb, qhb, 4);
    return _mm512_maskz_mov_epi8(_cvtu64_mask64(uint64_t(ha) | uint64_t(hb) << 32), bytes(0x10));
}

struct UQ5_0 {
    static constexpr size_t kBytes = sizeof(BlockQ5_0);
    static constexpr int kOff = 16;
    static constexpr bool kMin = false;
    static __m512i unpack(const uint8_t* pa, const uint8_t* pb, bool has_b, __m512& d, __m512&) {
        const auto* a = reinterpret_cast<const BlockQ5_0*>(pa);
        const auto* b = reinterpret_cast<const BlockQ5_0*>(pb);
        d = pair_scales(a->d, b->d, has_b);
        return _mm512_or_si512(nibble_pair(a->qs, b->qs), fifth_bits(a->qh, b->qh));
    }
};

// Q4_1 / Q5_1: x = d * q + m; the prepared sums (kOff = 1) multiply m.
struct UQ4_1 {
    static constexpr size_t kBytes = sizeof(BlockQ4_1);
    static constexpr int kOff = 1;
    static constexpr bool kMin = true;
    static __m512i unpack(const uint8_t* pa, const uint8_t* pb, bool has_b, __m512& d, __m512& m) {
        const auto* a = reinterpret_cast<const BlockQ4_1*>(pa);
        const auto* b = reinterpret_cast<const BlockQ4_1*>(pb);
        d = pair_scales(a->d, b->d, has_b);
        m = pair_scales(a->m, b->m, has_b);
        return nibble_pair(a->qs, b->qs);
    }
};

struct UQ5_1 {
    static constexpr size_t kBytes = sizeof(BlockQ5_1);
    static constexpr int kOff = 1;
    static constexpr bool kMin = true;
    static __m512i unpack(const uint8_t* pa, const uint8_t* pb, bool has_b, __m512& d, __m512& m) {
        const auto* a = reinterpret_cast<const BlockQ5_1*>(pa);
        const auto* b = reinterpret_cast<const BlockQ5_1*>(pb);
        d = pair_scales(a->d, b->d, has_b);
        m = pair_scales(a->m, b->m, has_b);
        return _mm512_or_si512(nibble_pair(a->qs, b->qs), fifth_bits(a->qh, b->qh));
    }
};

template <class U, int TT>
void b_tile(const uint8_t* w, size_t row_bytes, int nr, int64_t nb, const BTok* tok, float* out,
            int64_t out_stride) {
    __m512 acc[kTileRows][TT];
    for (int i = 0; i < kTileRows; ++i)
        for (int t = 0; t < TT; ++t) acc[i][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
        const int64_t e = b * 32;
        const bool has_b = b + 1 < nb;
        for (int i = 0; i < nr; ++i) {
            const uint8_t* pa = w + size_t(i) * row_bytes + size_t(b) * U::kBytes;
            prefetch_ahead(pa, 2 * U::kBytes);
            __m512 d, m = _mm512_setzero_ps();
            const __m512i wv = U::unpack(pa, has_b ? pa + U::kBytes : pa, has_b, d, m);
#pragma GCC unroll 8
            for (int t = 0; t < TT; ++t) {
                const __m512 c = _mm512_cvtepi32_ps(dot2(wv, tok[t].q1 + e, tok[t].q2 + e));
                const __m512 sums = _mm512_loadu_ps(tok[t].off + e / 4);
                if constexpr (U::kMin) {
                    const __m512 a =
                        _mm512_fmadd_ps(_mm512_mul_ps(c, _mm512_loadu_ps(tok[t].dxv + e / 4)), d, acc[i][t]);
                    acc[i][t] = _mm512_fmadd_ps(m, sums, a);
                } else {
                    const __m512 x = _mm512_fmsub_ps(c, _mm512_loadu_ps(tok[t].dxv + e / 4), sums);
                    acc[i][t] = _mm512_fmadd_ps(x, d, acc[i][t]);
                }
            }
        }
    }
    for (int i = 0; i < nr; ++i)
        for (int t = 0; t < TT; ++t) out[t * out_stride + i] = _mm512_reduce_add_ps(acc[i][t]);
}

void b_token_into(const void* act, int64_t n_in, int64_t t, BTok& out) {
    out = b_token(act, n_in, t);
}

template <class U>
struct BTile {
    template <int TT>
    struct T {
        static void run(const uint8_t* w, size_t row_bytes, int nr, int64_t n_in, const BTok* tok, float* out,
                        int64_t out_stride) {
            b_tile<U, TT>(w, row_bytes, nr, n_in / 32, tok, out, out_stride);
        }
    };
};

template <class U>
void b_rows(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens, int64_t r0,
            int64_t r1, float* out, int64_t out_stride) {
    for (int64_t r = r0; r < r1; r += kTileRows) {
        const int nr = int(r1 - r < kTileRows ? r1 - r : kTileRows);
        passes<BTok, b_token_into, BTile<U>::template T>(w + size_t(r) * row_bytes, row_bytes, nr, n_in, act,
                                                         n_tokens, out + r, out_stride);
    }
}

template <class U>
constexpr MatmulPath k_path() {
    return MatmulPath{U::kPerm ? kActI8x2KPerm : kActI8x2K, k_act_bytes, k_prepare<U::kPerm>, k_rows<U>, 1};
}

template <class U>
constexpr MatmulPath b_path() {
    return MatmulPath{kActI8x2B + U::kOff, b_act_bytes, b_prepare<U::kOff>, b_rows<U>, 1};
}

}  // namespace

const MatmulPath* decode_path_i8x2_avx512(GgmlType type) {
    static constexpr MatmulPath kQ5_K = k_path<UQ5_K>(), kQ2_K = k_path<UQ2_K>(), kQ3_K = k_path<UQ3_K>(),
                                kQ5_0 = b_path<UQ5_0>(), kQ4_1 = b_path<UQ4_1>(), kQ5_1 = b_path<UQ5_1>();
    switch (type) {
        case GgmlType::Q5_K:
            return &kQ5_K;
        case GgmlType::Q5_0:
            return &kQ5_0;
        case GgmlType::Q4_1:
            return &kQ4_1;
        case GgmlType::Q5_1:
            return &kQ5_1;
        case GgmlType::Q2_K:
            return &kQ2_K;
        case GgmlType::Q3_K:
            return &kQ3_K;
        default:
            return nullptr;
    }
}

}  // namespace kinfer::cpu
#endif
