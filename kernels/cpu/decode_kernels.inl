// The fused dequantize x vector kernels of the decode path, written once against a 16-lane vector
// vocabulary (F16v, I16v, W32, ffma, wdot, load_u8, ...; see decode_simd_avx2.hpp / decode_simd_avx512.hpp)
// and compiled once per instruction set by the file that includes this one after its vocabulary. The choice
// of activation format per type and its error are described in decode_table.hpp.
//
// A kernel walks a tile of rows block by block. A block's weights are decoded straight into registers, a
// few vectors at a time (float kernels: to exactly the reference dequantizer's floats; int16 kernels: to
// integer codes times integer group scales) and multiplied into every token's accumulators before the
// next vectors are decoded. Up to kMaxTokensPerPass tokens share one decode; more take another pass over
// the tile, which by then is in cache, so memory is read once per call.
//
// Nothing here has external linkage (see the vocabulary headers).
#include <cstring>

#include "kernels/blocks.hpp"

namespace {

using kinfer::BlockQ2_K;
using kinfer::BlockQ3_K;
using kinfer::BlockQ4_0;
using kinfer::BlockQ4_1;
using kinfer::BlockQ4_K;
using kinfer::BlockQ5_0;
using kinfer::BlockQ5_1;
using kinfer::BlockQ5_K;
using kinfer::BlockQ6_K;
using kinfer::BlockQ8_0;

template <class B>
inline const B* as(const uint8_t* p) {
    return reinterpret_cast<const B*>(p);
}

inline uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// ---- per-type decoders --------------------------------------------------------------------------------
// kElems elements per block of kBytes; begin() reads a block's scales into a Ctx, sub(s) decodes elements
// [s * kVecs * 16, (s + 1) * kVecs * 16) into kVecs vectors. Float types (kAnyLength) take any n_in: the
// kernel finishes the last n_in % kElems elements with elem().

struct DecQ4_0 {
    static constexpr int kElems = 32, kSubs = 1, kVecs = 2;
    static constexpr size_t kBytes = sizeof(BlockQ4_0);
    static constexpr bool kAnyLength = false;
    struct Ctx {
        F16v d, d8;
    };
    static void begin(const uint8_t* p, Ctx& c) {
        const float d = half_to_float(as<BlockQ4_0>(p)->d);
        c.d = fset1(d);
        c.d8 = fset1(8 * d);
    }
    static void sub(const uint8_t* p, const Ctx& c, int, F16v* w) {
        const I16v q = load_u8(as<BlockQ4_0>(p)->qs);
        // (q - 8) * d as q * d - 8 * d: both exact, one rounding of the same value
        w[0] = ffmsub(to_float(iand(q, 0xF)), c.d, c.d8);
        w[1] = ffmsub(to_float(isrl(q, 4)), c.d, c.d8);
    }
};

struct DecQ4_1 {
    static constexpr int kElems = 32, kSubs = 1, kVecs = 2;
    static constexpr size_t kBytes = sizeof(BlockQ4_1);
    static constexpr bool kAnyLength = false;
    struct Ctx {
        F16v d, m;
    };
    static void begin(const uint8_t* p, Ctx& c) {
        c.d = fset1(half_to_float(as<BlockQ4_1>(p)->d));
        c.m = fset1(half_to_float(as<BlockQ4_1>(p)->m));
    }
    static void sub(const uint8_t* p, const Ctx& c, int, F16v* w) {
        const I16v q = load_u8(as<BlockQ4_1>(p)->qs);
        w[0] = ffma(to_float(iand(q, 0xF)), c.d, c.m);  // q * d is exact: one rounding, as the reference
        w[1] = ffma(to_float(isrl(q, 4)), c.d, c.m);
    }
};

// The 5th bits of elements [j0, j0 + 16) of a Q5_0/Q5_1 block, at bit 4.
inline I16v q5_high(uint32_t qh, int j0) {
    return isll(iand(isrlv(iset1(int32_t(qh)), iota(j0)), 1), 4);
}

struct DecQ5_0 {
    static constexpr int kElems = 32, kSubs = 1, kVecs = 2;
    static constexpr size_t kBytes = sizeof(BlockQ5_0);
    static constexpr bool kAnyLength = false;
    struct Ctx {
        F16v d, d16;
    };
    static void begin(const uint8_t* p, Ctx& c) {
        const float d = half_to_float(as<BlockQ5_0>(p)->d);
        c.d = fset1(d);
        c.d16 = fset1(16 * d);
    }
    static void sub(const uint8_t* p, const Ctx& c, int, F16v* w) {
        const auto* b = as<BlockQ5_0>(p);
        const uint32_t qh = load_u32(b->qh);
        const I16v q = load_u8(b->qs);
        w[0] = ffmsub(to_float(ior(iand(q, 0xF), q5_high(qh, 0))), c.d, c.d16);
        w[1] = ffmsub(to_float(ior(isrl(q, 4), q5_high(qh, 16))), c.d, c.d16);
    }
};

struct DecQ5_1 {
    static constexpr int kElems = 32, kSubs = 1, kVecs = 2;
    static constexpr size_t kBytes = sizeof(BlockQ5_1);
    static constexpr bool kAnyLength = false;
    struct Ctx {
        F16v d, m;
    };
    static void begin(const uint8_t* p, Ctx& c) {
        c.d = fset1(half_to_float(as<BlockQ5_1>(p)->d));
        c.m = fset1(half_to_float(as<BlockQ5_1>(p)->m));
    }
    static void sub(const uint8_t* p, const Ctx& c, int, F16v* w) {
        const auto* b = as<BlockQ5_1>(p);
        const uint32_t qh = load_u32(b->qh);
        const I16v q = load_u8(b->qs);
        w[0] = ffma(to_float(ior(iand(q, 0xF), q5_high(qh, 0))), c.d, c.m);
        w[1] = ffma(to_float(ior(isrl(q, 4), q5_high(qh, 16))), c.d, c.m);
    }
};

struct DecQ8_0 {
    static constexpr int kElems = 32, kSubs = 1, kVecs = 2;
    static constexpr size_t kBytes = sizeof(BlockQ8_0);
    static constexpr bool kAnyLength = false;
    struct Ctx {
        F16v d;
    };
    static void begin(const uint8_t* p, Ctx& c) { c.d = fset1(half_to_float(as<BlockQ8_0>(p)->d)); }
    static void sub(const uint8_t* p, const Ctx& c, int, F16v* w) {
        const auto* b = as<BlockQ8_0>(p);
        w[0] = fmul(to_float(load_i8(b->qs)), c.d);
        w[1] = fmul(to_float(load_i8(b->qs + 16)), c.d);
    }
};

// 16 groups of 16 (Q2_K, Q3_K, Q6_K): one vector per group, four groups per sub-block.
struct DecQ2_K {
    static constexpr int kElems = 256, kSubs = 4, kVecs = 4;
    static constexpr size_t kBytes = sizeof(BlockQ2_K);
    static constexpr bool kAnyLength = false;
    struct Ctx {
        float dl[16], ml[16];
    };
    static void begin(const uint8_t* p, Ctx& c) {
        const auto* b = as<BlockQ2_K>(p);
        const I16v sc = load_u8(b->scales);
        fstore(c.dl, fmul(fset1(half_to_float(b->d)), to_float(iand(sc, 0xF))));
        fstore(c.ml, fmul(fset1(half_to_float(b->dmin)), to_float(isrl(sc, 4))));
    }
    static void sub(const uint8_t* p, const Ctx& c, int s, F16v* w) {
        const auto* b = as<BlockQ2_K>(p);
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
            const int g = 4 * s + v;
            const I16v q = iand(isrl(load_u8(b->qs + 32 * (g / 8) + 16 * (g % 2)), 2 * ((g / 2) % 4)), 3);
            w[v] = ffmsub(fset1(c.dl[g]), to_float(q), fset1(c.ml[g]));
        }
    }
};

struct DecQ3_K {
    static constexpr int kElems = 256, kSubs = 4, kVecs = 4;
    static constexpr size_t kBytes = sizeof(BlockQ3_K);
    static constexpr bool kAnyLength = false;
    struct Ctx {
        float dl[16];
    };
    static void begin(const uint8_t* p, Ctx& c) {
        const auto* b = as<BlockQ3_K>(p);
        // sixteen 6-bit codes: low nibbles from bytes 0..7 (codes 8..15 in the high nibbles), top two bits of
        // code g at bits 2*(g/4) of byte 8 + g%4
        alignas(16) uint8_t lo[16];
        for (int g = 0; g < 8; ++g) {
            lo[g] = b->scales[g] & 0xF;
            lo[g + 8] = b->scales[g] >> 4;
        }
        const I16v low = load_u8(lo);
        const I16v high = isrlv(iset1(int32_t(load_u32(b->scales + 8))),
                                ior(isll(isrl(iota(0), 2), 1), isll(iand(iota(0), 3), 3)));
        const I16v code = ior(low, isll(iand(high, 3), 4));
        fstore(c.dl, fmul(fset1(half_to_float(b->d)), to_float(isub(code, 32))));
    }
    static void sub(const uint8_t* p, const Ctx& c, int s, F16v* w) {
        const auto* b = as<BlockQ3_K>(p);
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
            const int g = 4 * s + v;
            const I16v low = iand(isrl(load_u8(b->qs + 32 * (g / 8) + 16 * (g % 2)), 2 * ((g / 2) % 4)), 3);
            const I16v hbit = iand(isrl(load_u8(b->hmask + 16 * (g % 2)), g / 2), 1);
            const I16v q = isub(ior(low, isll(hbit, 2)), 4);  // low - 4 where the high bit is clear
            w[v] = fmul(fset1(c.dl[g]), to_float(q));
        }
    }
};

// The scale and min codes of the 8 groups of a Q4_K / Q5_K block (see kinfer::unpack_scale_min_k4).
inline void unpack_k4(const uint8_t* s, float d, float dmin, float* dl, float* ml) {
    for (int j = 0; j < 8; ++j) {
        int sc, mn;
        if (j < 4) {
            sc = s[j] & 63;
            mn = s[j + 4] & 63;
        } else {
            sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
            mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
        }
        dl[j] = d * float(sc);
        ml[j] = dmin * float(mn);
    }
}

// 8 groups of 32: two vectors per group, two groups (one 32-byte chunk of nibbles) per sub-block.
struct DecQ4_K {
    static constexpr int kElems = 256, kSubs = 4, kVecs = 4;
    static constexpr size_t kBytes = sizeof(BlockQ4_K);
    static constexpr bool kAnyLength = false;
    struct Ctx {
        float dl[8], ml[8];
    };
    static void begin(const uint8_t* p, Ctx& c) {
        const auto* b = as<BlockQ4_K>(p);
        unpack_k4(b->scales, half_to_float(b->d), half_to_float(b->dmin), c.dl, c.ml);
    }
    static void sub(const uint8_t* p, const Ctx& c, int s, F16v* w) {
        const uint8_t* qs = as<BlockQ4_K>(p)->qs + 32 * s;
        const I16v q0 = load_u8(qs), q1 = load_u8(qs + 16);
        const F16v d0 = fset1(c.dl[2 * s]), m0 = fset1(c.ml[2 * s]);
        const F16v d1 = fset1(c.dl[2 * s + 1]), m1 = fset1(c.ml[2 * s + 1]);
        w[0] = ffmsub(d0, to_float(iand(q0, 0xF)), m0);
        w[1] = ffmsub(d0, to_float(iand(q1, 0xF)), m0);
        w[2] = ffmsub(d1, to_float(isrl(q0, 4)), m1);
        w[3] = ffmsub(d1, to_float(isrl(q1, 4)), m1);
    }
};

struct DecQ5_K {
    static constexpr int kElems = 256, kSubs = 4, kVecs = 4;
    static constexpr size_t kBytes = sizeof(BlockQ5_K);
    static constexpr bool kAnyLength = false;
    struct Ctx {
        float dl[8], ml[8];
    };
    static void begin(const uint8_t* p, Ctx& c) {
        const auto* b = as<BlockQ5_K>(p);
        unpack_k4(b->scales, half_to_float(b->d), half_to_float(b->dmin), c.dl, c.ml);
    }
    static void sub(const uint8_t* p, const Ctx& c, int s, F16v* w) {
        const auto* b = as<BlockQ5_K>(p);
        const uint8_t* qs = b->qs + 32 * s;
        const I16v q0 = load_u8(qs), q1 = load_u8(qs + 16);
        const I16v h0 = isrl(load_u8(b->qh), 2 * s), h1 = isrl(load_u8(b->qh + 16), 2 * s);
        const F16v d0 = fset1(c.dl[2 * s]), m0 = fset1(c.ml[2 * s]);
        const F16v d1 = fset1(c.dl[2 * s + 1]), m1 = fset1(c.ml[2 * s + 1]);
        w[0] = ffmsub(d0, to_float(ior(iand(q0, 0xF), isll(iand(h0, 1), 4))), m0);
        w[1] = ffmsub(d0, to_float(ior(iand(q1, 0xF), isll(iand(h1, 1), 4))), m0);
        w[2] = ffmsub(d1, to_float(ior(isrl(q0, 4), isll(iand(h0, 2), 3))), m1);
        w[3] = ffmsub(d1, to_float(ior(isrl(q1, 4), isll(iand(h1, 2), 3))), m1);
    }
};

struct DecQ6_K {
    static constexpr int kElems = 256, kSubs = 4, kVecs = 4;
    static constexpr size_t kBytes = sizeof(BlockQ6_K);
    static constexpr bool kAnyLength = false;
    struct Ctx {
        float dl[16];
    };
    static void begin(const uint8_t* p, Ctx& c) {
        const auto* b = as<BlockQ6_K>(p);
        fstore(c.dl, fmul(fset1(half_to_float(b->d)), to_float(load_i8(b->scales))));
    }
    static void sub(const uint8_t* p, const Ctx& c, int s, F16v* w) {
        const auto* b = as<BlockQ6_K>(p);
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
            // group g = element 32*k + 16*(g%2) + l of half g/8, with k = (g/2) % 4
            const int g = 4 * s + v, half = g / 8, k = (g / 2) % 4, l0 = 16 * (g % 2);
            const I16v low = iand(isrl(load_u8(b->ql + 64 * half + 32 * (k & 1) + l0), 4 * (k >> 1)), 0xF);
            const I16v high = iand(isrl(load_u8(b->qh + 32 * half + l0), 2 * k), 3);
            w[v] = fmul(fset1(c.dl[g]), to_float(isub(ior(low, isll(high, 4)), 32)));
        }
    }
};

struct DecF32 {
    static constexpr int kElems = 64, kSubs = 1, kVecs = 4;
    static constexpr size_t kBytes = kElems * sizeof(float);
    static constexpr bool kAnyLength = true;
    struct Ctx {};
    static void begin(const uint8_t*, Ctx&) {}
    static void sub(const uint8_t* p, const Ctx&, int, F16v* w) {
        for (int v = 0; v < 4; ++v) w[v] = fload(reinterpret_cast<const float*>(p) + 16 * v);
    }
    static float elem(const uint8_t* row, int64_t i) {
        float f;
        std::memcpy(&f, row + 4 * i, 4);
        return f;
    }
};

struct DecF16 {
    static constexpr int kElems = 64, kSubs = 1, kVecs = 4;
    static constexpr size_t kBytes = kElems * sizeof(uint16_t);
    static constexpr bool kAnyLength = true;
    struct Ctx {};
    static void begin(const uint8_t*, Ctx&) {}
    static void sub(const uint8_t* p, const Ctx&, int, F16v* w) {
        for (int v = 0; v < 4; ++v) w[v] = load_f16(reinterpret_cast<const uint16_t*>(p) + 16 * v);
    }
    static float elem(const uint8_t* row, int64_t i) {
        uint16_t h;
        std::memcpy(&h, row + 2 * i, 2);
        return half_to_float(h);
    }
};

struct DecBF16 {
    static constexpr int kElems = 64, kSubs = 1, kVecs = 4;
    static constexpr size_t kBytes = kElems * sizeof(uint16_t);
    static constexpr bool kAnyLength = true;
    struct Ctx {};
    static void begin(const uint8_t*, Ctx&) {}
    static void sub(const uint8_t* p, const Ctx&, int, F16v* w) {
        for (int v = 0; v < 4; ++v) w[v] = load_bf16(reinterpret_cast<const uint16_t*>(p) + 16 * v);
    }
    static float elem(const uint8_t* row, int64_t i) {
        uint16_t h;
        std::memcpy(&h, row + 2 * i, 2);
        const uint32_t bits = uint32_t(h) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }
};

// ---- the kernels ----------------------------------------------------------------------------------------
// Rows go in tiles of kTileRows and, within a tile, block by block: the activation of one block (for all the
// pass's tokens) is loaded from L1 for each row of the tile, instead of streaming every token's whole row
// of activations once per weight row (8 tokens of 4096 floats do not fit in L1).

constexpr int kTileRows = 4;

// Float activations: x is n_tokens rows of n_in floats.
template <class D>
struct FloatKernel {
    // blocks per chunk: partial sums stay in registers over ~256 elements before joining the row's sum
    static constexpr int kChunk = D::kElems >= 256 ? 1 : 256 / D::kElems;

    template <int TT>
    static void tile(const uint8_t* w, size_t row_bytes, int64_t r0, int nr, int64_t n_in, const void* act,
                     int64_t t0, float* out, int64_t out_stride) {
        // Independent FMA chains per token. Fixed, not chosen by TT: a token's sums must be added in the same
        // order whichever tokens share the call, so a sequence decoded in a batch gets the bits it gets
        // alone.
        constexpr int NA = kFloatChainsPerToken;
        const float* x = static_cast<const float*>(act) + t0 * n_in;
        F16v acc[kTileRows][TT];
        for (int i = 0; i < kTileRows; ++i)
            for (int t = 0; t < TT; ++t) acc[i][t] = fzero();
        const int64_t nb = n_in / D::kElems;
        for (int64_t c0 = 0; c0 < nb; c0 += kChunk) {
            const int64_t c1 = c0 + kChunk < nb ? c0 + kChunk : nb;
            for (int i = 0; i < nr; ++i) {
                const uint8_t* row = w + size_t(r0 + i) * row_bytes;
                F16v part[TT][NA];
                for (int t = 0; t < TT; ++t)
                    for (int a = 0; a < NA; ++a) part[t][a] = fzero();
                for (int64_t b = c0; b < c1; ++b) {
                    const uint8_t* blk = row + size_t(b) * D::kBytes;
                    typename D::Ctx c;
                    D::begin(blk, c);
                    const float* xb = x + b * D::kElems;
#pragma GCC unroll 4
                    for (int s = 0; s < D::kSubs; ++s) {
                        F16v wv[D::kVecs];
                        D::sub(blk, c, s, wv);
#pragma GCC unroll 4
                        for (int v = 0; v < D::kVecs; ++v)
#pragma GCC unroll 8
                            for (int t = 0; t < TT; ++t)
                                part[t][v % NA] = ffma(wv[v], fload(xb + t * n_in + (s * D::kVecs + v) * 16),
                                                       part[t][v % NA]);
                    }
                }
                for (int t = 0; t < TT; ++t) {
                    F16v sum = part[t][0];
                    for (int a = 1; a < NA; ++a) sum = fadd(sum, part[t][a]);
                    acc[i][t] = fadd(acc[i][t], sum);
                }
            }
        }
        for (int i = 0; i < nr; ++i) {
            const uint8_t* row = w + size_t(r0 + i) * row_bytes;
            for (int t = 0; t < TT; ++t) {
                float r = fhsum(acc[i][t]);
                if constexpr (D::kAnyLength)
                    for (int64_t e = nb * D::kElems; e < n_in; ++e) r += D::elem(row, e) * x[t * n_in + e];
                out[(t0 + t) * out_stride + r0 + i] = r;
            }
        }
    }
};

// Rows [r0, r1) for every token: tiles of rows; tokens in passes of kMaxTokensPerPass, then of the largest
// power of two left (only 4 widths to instantiate per kernel; a token's result does not depend on its pass).
template <class K>
void decode_rows(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens,
                 int64_t r0, int64_t r1, float* out, int64_t out_stride) {
    for (int64_t r = r0; r < r1; r += kTileRows) {
        const int nr = int(r1 - r < kTileRows ? r1 - r : kTileRows);
        for (int64_t t0 = 0; t0 < n_tokens;) {
            const int64_t left = n_tokens - t0;
            if (kMaxTokensPerPass >= 8 && left >= 8) {
                K::template tile<kMaxTokensPerPass >= 8 ? 8 : 1>(w, row_bytes, r, nr, n_in, act, t0, out,
                                                                 out_stride);
                t0 += 8;
            } else if (left >= 4) {
                K::template tile<4>(w, row_bytes, r, nr, n_in, act, t0, out, out_stride);
                t0 += 4;
            } else if (left >= 2) {
                K::template tile<2>(w, row_bytes, r, nr, n_in, act, t0, out, out_stride);
                t0 += 2;
            } else {
                K::template tile<1>(w, row_bytes, r, nr, n_in, act, t0, out, out_stride);
                t0 += 1;
            }
        }
    }
}

// ---- k-quants: int16 activations ------------------------------------------------------------------------
// The k-quants' group scales are small integers, so they can be multiplied into the integer weight codes
// (|code * scale| <= 4096, int16) and the products summed over a whole 256-element super-block in int32
// (vpdpwssd / pmaddwd), with the activation rounded to int16 per super-block (scale = max|x| / 32767):
// one instruction per 32 weights per token, and the float work is a few operations per super-block. The
// rounding of x to 16 bits costs ~1e-6 of sum|w*x| (the float path: ~1e-7; llama.cpp's 8 bits: ~3e-4).
// Overflow: per int32 lane a super-block adds 16 products of |code * scale| <= 4096 (Q6_K; 1953 for Q5_K)
// and |a| <= 32767: < 2^31.
//
// Prepared activation, per token (n_in a multiple of 256, nb = n_in / 256):
//   int16 q[n_in] | float dx[nb] | float s32[nb][16] | float s16[nb][16]
// where x ~ dx[b] * q over block b, s32[b][g] = dx[b] * sum of q over group g of 32 (lanes 8..15 zero) and
// s16[b][g] the same over groups of 16: the sums that multiply the groups' mins.

size_t i16_token_bytes(int64_t n_in) {
    return size_t(n_in) * 2 + size_t(n_in / 256) * (4 + 64 + 64);
}

struct I16Token {
    const int16_t* q;
    const float *dx, *s32, *s16;
};

inline I16Token i16_token(const void* act, int64_t n_in, int64_t t) {
    const auto* base = static_cast<const uint8_t*>(act) + size_t(t) * i16_token_bytes(n_in);
    const int64_t nb = n_in / 256;
    const auto* q = reinterpret_cast<const int16_t*>(base);
    const auto* dx = reinterpret_cast<const float*>(base + 2 * size_t(n_in));
    return I16Token{q, dx, dx + nb, dx + nb + 16 * nb};
}

size_t i16_act_bytes(int64_t n_in, int64_t n_tokens) {
    return i16_token_bytes(n_in) * size_t(n_tokens);
}

void i16_prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    const int64_t nb = n_in / 256;
    for (int64_t t = 0; t < n_tokens; ++t) {
        auto* base = static_cast<uint8_t*>(act) + size_t(t) * i16_token_bytes(n_in);
        auto* q = reinterpret_cast<int16_t*>(base);
        auto* dx = reinterpret_cast<float*>(base + 2 * size_t(n_in));
        float* s32 = dx + nb;
        float* s16 = s32 + 16 * nb;
        for (int64_t b = 0; b < nb; ++b) {
            const float* xb = x + t * n_in + b * 256;
            float amax = 0;
            for (int i = 0; i < 256; ++i) {
                const float a = xb[i] < 0 ? -xb[i] : xb[i];
                amax = a > amax ? a : amax;  // NaN is skipped
            }
            const float d = amax / 32767.0f;
            const float id = d > 0 ? 1.0f / d : 0.0f;
            int16_t* qb = q + b * 256;
            int32_t sum16[16] = {};
            for (int i = 0; i < 256; ++i) {
                const float v = xb[i] * id;
                // round to nearest; clamp (v may exceed 32767 by a rounding) and send NaN to 0
                const int r =
                    v >= 32767.0f
                        ? 32767
                        : (v <= -32767.0f ? -32767 : (v == v ? int(v + (v >= 0 ? 0.5f : -0.5f)) : 0));
                qb[i] = int16_t(r);
                sum16[i / 16] += r;
            }
            dx[b] = d;
            for (int g = 0; g < 16; ++g) {
                s16[b * 16 + g] = d * float(sum16[g]);
                s32[b * 16 + g] = g < 8 ? d * float(sum16[2 * g] + sum16[2 * g + 1]) : 0.0f;
            }
        }
    }
}

// Int16 decoders: begin() reads the block's scales; sub(s) gives elements [128 s, 128 s + 128) as four W32,
// each code already multiplied by its group's integer scale. The block's value is then
// d * (sum of those times q) * dx - (mins . sums) with mins[g] = dmin * min code of group g.
struct I16Q4_K {
    static constexpr size_t kBytes = sizeof(BlockQ4_K);
    static constexpr int kMinGroup = 32;
    struct Ctx {
        alignas(16) uint8_t sc[16];  // scale codes of groups 0..7, then min codes
        float d;
        F16v mins;
    };
    // Unpacks the eight 6-bit scale and min codes four at a time in 32-bit words (kinfer::unpack_scale_min_k4
    // per byte): groups 0..3 are the low 6 bits of bytes 0..3 (scales) and 4..7 (mins); groups 4..7 take
    // their low 4 bits from the nibbles of bytes 8..11 and their top 2 bits from the spare top bits.
    static void unpack(const uint8_t* scales, uint16_t d, uint16_t dmin, Ctx& c) {
        const uint32_t w0 = load_u32(scales), w1 = load_u32(scales + 4), w2 = load_u32(scales + 8);
        const uint32_t words[4] = {w0 & 0x3f3f3f3fu, (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u),
                                   w1 & 0x3f3f3f3fu, ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u)};
        std::memcpy(c.sc, words, 16);
        alignas(16) uint8_t mn[16] = {};
        std::memcpy(mn, c.sc + 8, 8);
        c.d = half_to_float(d);
        c.mins = fmul(fset1(half_to_float(dmin)), to_float(load_u8(mn)));
    }
    static void begin(const uint8_t* p, Ctx& c) {
        const auto* b = as<BlockQ4_K>(p);
        unpack(b->scales, b->d, b->dmin, c);
    }
    static void sub(const uint8_t* p, const Ctx& c, int s, W32* w) {
        const uint8_t* qs = as<BlockQ4_K>(p)->qs + 64 * s;
        const W32 q0 = widen_u8(qs), q1 = widen_u8(qs + 32);
        w[0] = wmul(wand(q0, 0xF), wset1(c.sc[4 * s]));
        w[1] = wmul(wsrl(q0, 4), wset1(c.sc[4 * s + 1]));
        w[2] = wmul(wand(q1, 0xF), wset1(c.sc[4 * s + 2]));
        w[3] = wmul(wsrl(q1, 4), wset1(c.sc[4 * s + 3]));
    }
};

struct I16Q5_K {
    static constexpr size_t kBytes = sizeof(BlockQ5_K);
    static constexpr int kMinGroup = 32;
    using Ctx = I16Q4_K::Ctx;
    static void begin(const uint8_t* p, Ctx& c) {
        const auto* b = as<BlockQ5_K>(p);
        I16Q4_K::unpack(b->scales, b->d, b->dmin, c);
    }
    static void sub(const uint8_t* p, const Ctx& c, int s, W32* w) {
        const auto* b = as<BlockQ5_K>(p);
        const uint8_t* qs = b->qs + 64 * s;
        const W32 q0 = widen_u8(qs), q1 = widen_u8(qs + 32), h = widen_u8(b->qh);
        const int g = 4 * s;
        w[0] = wmul(wor(wand(q0, 0xF), wsll(wand(wsrl(h, g), 1), 4)), wset1(c.sc[g]));
        w[1] = wmul(wor(wsrl(q0, 4), wsll(wand(wsrl(h, g + 1), 1), 4)), wset1(c.sc[g + 1]));
        w[2] = wmul(wor(wand(q1, 0xF), wsll(wand(wsrl(h, g + 2), 1), 4)), wset1(c.sc[g + 2]));
        w[3] = wmul(wor(wsrl(q1, 4), wsll(wand(wsrl(h, g + 3), 1), 4)), wset1(c.sc[g + 3]));
    }
};

struct I16Q6_K {
    static constexpr size_t kBytes = sizeof(BlockQ6_K);
    static constexpr int kMinGroup = 0;
    struct Ctx {
        int16_t sc[16];
        float d;
    };
    static void begin(const uint8_t* p, Ctx& c) {
        const auto* b = as<BlockQ6_K>(p);
        for (int g = 0; g < 16; ++g) c.sc[g] = b->scales[g];
        c.d = half_to_float(b->d);
    }
    static void sub(const uint8_t* p, const Ctx& c, int s, W32* w) {
        // run k of half s: elements 128 s + 32 k + l, l < 32, groups 8 s + 2 k (l < 16) and 8 s + 2 k + 1
        const auto* b = as<BlockQ6_K>(p);
        const W32 l0 = widen_u8(b->ql + 64 * s), l1 = widen_u8(b->ql + 64 * s + 32),
                  h = widen_u8(b->qh + 32 * s);
        const W32 low[4] = {wand(l0, 0xF), wand(l1, 0xF), wsrl(l0, 4), wsrl(l1, 4)};
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            const W32 q = wsub(wor(low[k], wsll(wand(wsrl(h, 2 * k), 3), 4)), 32);
            w[k] = wmul(q, wset2(c.sc[8 * s + 2 * k], c.sc[8 * s + 2 * k + 1]));
        }
    }
};

struct I16Q2_K {
    static constexpr size_t kBytes = sizeof(BlockQ2_K);
    static constexpr int kMinGroup = 16;
    struct Ctx {
        int16_t sc[16];
        float d;
        F16v mins;
    };
    static void begin(const uint8_t* p, Ctx& c) {
        const auto* b = as<BlockQ2_K>(p);
        for (int g = 0; g < 16; ++g) c.sc[g] = int16_t(b->scales[g] & 0xF);
        c.d = half_to_float(b->d);
        c.mins = fmul(fset1(half_to_float(b->dmin)), to_float(isrl(load_u8(b->scales), 4)));
    }
    static void sub(const uint8_t* p, const Ctx& c, int s, W32* w) {
        // run j = 4 s + v: elements 32 j + l = bits 2 v of byte 32 s + l, groups 2 j and 2 j + 1
        const W32 q = widen_u8(as<BlockQ2_K>(p)->qs + 32 * s);
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
            const int j = 4 * s + v;
            w[v] = wmul(wand(wsrl(q, 2 * v), 3), wset2(c.sc[2 * j], c.sc[2 * j + 1]));
        }
    }
};

struct I16Q3_K {
    static constexpr size_t kBytes = sizeof(BlockQ3_K);
    static constexpr int kMinGroup = 0;
    struct Ctx {
        int16_t sc[16];
        float d;
    };
    static void begin(const uint8_t* p, Ctx& c) {
        const auto* b = as<BlockQ3_K>(p);
        const uint8_t* s = b->scales;
        for (int g = 0; g < 16; ++g) {
            const int low = g < 8 ? (s[g] & 0xF) : (s[g - 8] >> 4);
            const int high = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
            c.sc[g] = int16_t((low | (high << 4)) - 32);
        }
        c.d = half_to_float(b->d);
    }
    static void sub(const uint8_t* p, const Ctx& c, int s, W32* w) {
        // as Q2_K; the high bit of run j is bit j of hmask[l]
        const auto* b = as<BlockQ3_K>(p);
        const W32 q = widen_u8(b->qs + 32 * s), h = widen_u8(b->hmask);
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
            const int j = 4 * s + v;
            const W32 code = wsub(wor(wand(wsrl(q, 2 * v), 3), wsll(wand(wsrl(h, j), 1), 2)), 4);
            w[v] = wmul(code, wset2(c.sc[2 * j], c.sc[2 * j + 1]));
        }
    }
};

template <class D>
struct Int16Kernel {
    template <int TT>
    static void tile(const uint8_t* w, size_t row_bytes, int64_t r0, int nr, int64_t n_in, const void* act,
                     int64_t t0, float* out, int64_t out_stride) {
        constexpr int NA = TT == 1 ? 4 : (TT == 2 ? 2 : 1);  // independent int32 sums per token
        const int64_t nb = n_in / 256;
        I16Token tok[TT];
        for (int t = 0; t < TT; ++t) tok[t] = i16_token(act, n_in, t0 + t);
        F16v acc[kTileRows][TT];
        for (int i = 0; i < kTileRows; ++i)
            for (int t = 0; t < TT; ++t) acc[i][t] = fzero();
        for (int64_t b = 0; b < nb; ++b) {
            for (int i = 0; i < nr; ++i) {
                const uint8_t* blk = w + size_t(r0 + i) * row_bytes + size_t(b) * D::kBytes;
                typename D::Ctx c;
                D::begin(blk, c);
                I16v ai[TT][NA];
                for (int t = 0; t < TT; ++t)
                    for (int a = 0; a < NA; ++a) ai[t][a] = izero();
#pragma GCC unroll 2
                for (int s = 0; s < 2; ++s) {
                    W32 wv[4];
                    D::sub(blk, c, s, wv);
#pragma GCC unroll 4
                    for (int v = 0; v < 4; ++v)
#pragma GCC unroll 8
                        for (int t = 0; t < TT; ++t)
                            ai[t][v % NA] =
                                wdot(ai[t][v % NA], wv[v], wload(tok[t].q + b * 256 + (4 * s + v) * 32));
                }
                for (int t = 0; t < TT; ++t) {
                    I16v sum = ai[t][0];
                    for (int a = 1; a < NA; ++a) sum = iadd(sum, ai[t][a]);
                    F16v r = ffma(to_float(sum), fset1(c.d * tok[t].dx[b]), acc[i][t]);
                    if constexpr (D::kMinGroup == 32) r = ffnma(c.mins, fload(tok[t].s32 + 16 * b), r);
                    if constexpr (D::kMinGroup == 16) r = ffnma(c.mins, fload(tok[t].s16 + 16 * b), r);
                    acc[i][t] = r;
                }
            }
        }
        for (int i = 0; i < nr; ++i)
            for (int t = 0; t < TT; ++t) out[(t0 + t) * out_stride + r0 + i] = fhsum(acc[i][t]);
    }
};

template <class D>
constexpr kinfer::cpu::MatmulPath i16_path() {
    return kinfer::cpu::MatmulPath{kinfer::cpu::kActI16K, i16_act_bytes, i16_prepare,
                                   decode_rows<Int16Kernel<D>>, 1};
}

size_t float_act_bytes(int64_t n_in, int64_t n_tokens) {
    return sizeof(float) * size_t(n_in) * size_t(n_tokens);
}

void float_prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    std::memcpy(act, x, float_act_bytes(n_in, n_tokens));
}

template <class D>
constexpr kinfer::cpu::MatmulPath float_path() {
    return kinfer::cpu::MatmulPath{kinfer::cpu::kActFloat, float_act_bytes, float_prepare,
                                   decode_rows<FloatKernel<D>>, 1};
}

// The decode path of `type` at this file's level, or nullptr: float activations for every type.
const kinfer::cpu::MatmulPath* path_for(kinfer::GgmlType type) {
    using kinfer::GgmlType;
    static constexpr kinfer::cpu::MatmulPath kQ4_0 = float_path<DecQ4_0>(), kQ4_1 = float_path<DecQ4_1>(),
                                             kQ5_0 = float_path<DecQ5_0>(), kQ5_1 = float_path<DecQ5_1>(),
                                             kQ8_0 = float_path<DecQ8_0>(), kQ2_K = float_path<DecQ2_K>(),
                                             kQ3_K = float_path<DecQ3_K>(), kQ4_K = float_path<DecQ4_K>(),
                                             kQ5_K = float_path<DecQ5_K>(), kQ6_K = float_path<DecQ6_K>(),
                                             kF32 = float_path<DecF32>(), kF16 = float_path<DecF16>(),
                                             kBF16 = float_path<DecBF16>();
    switch (type) {
        case GgmlType::Q4_0:
            return &kQ4_0;
        case GgmlType::Q4_1:
            return &kQ4_1;
        case GgmlType::Q5_0:
            return &kQ5_0;
        case GgmlType::Q5_1:
            return &kQ5_1;
        case GgmlType::Q8_0:
            return &kQ8_0;
        case GgmlType::Q2_K:
            return &kQ2_K;
        case GgmlType::Q3_K:
            return &kQ3_K;
        case GgmlType::Q4_K:
            return &kQ4_K;
        case GgmlType::Q5_K:
            return &kQ5_K;
        case GgmlType::Q6_K:
            return &kQ6_K;
        case GgmlType::F32:
            return &kF32;
        case GgmlType::F16:
            return &kF16;
        case GgmlType::BF16:
            return &kBF16;
        default:
            return nullptr;
    }
}

// The int16-activation path of a k-quant at this file's level, or nullptr.
const kinfer::cpu::MatmulPath* int16_path_for(kinfer::GgmlType type) {
    using kinfer::GgmlType;
    static constexpr kinfer::cpu::MatmulPath kQ2_K = i16_path<I16Q2_K>(), kQ3_K = i16_path<I16Q3_K>(),
                                             kQ4_K = i16_path<I16Q4_K>(), kQ5_K = i16_path<I16Q5_K>(),
                                             kQ6_K = i16_path<I16Q6_K>();
    switch (type) {
        case GgmlType::Q2_K:
            return &kQ2_K;
        case GgmlType::Q3_K:
            return &kQ3_K;
        case GgmlType::Q4_K:
            return &kQ4_K;
        case GgmlType::Q5_K:
            return &kQ5_K;
        case GgmlType::Q6_K:
            return &kQ6_K;
        default:
            return nullptr;
    }
}

}  // namespace
