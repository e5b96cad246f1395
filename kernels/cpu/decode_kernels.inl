// The fused dequantize x vector kernels of the decode path, written once against a 16-lane vector
// vocabulary (F16v, I16v, ffma, load_u8, ...; see decode_simd_avx2.hpp / decode_simd_avx512.hpp) and
// compiled once per instruction set by the file that includes this one after its vocabulary.
//
// A kernel walks a weight row block by block. Each block is split into sub-blocks of a few 16-lane vectors;
// a sub-block's weights are decoded straight into registers (integer codes -> float, times the group scale,
// minus the group min: bit-identical to the reference dequantizer) and multiplied into every token's
// accumulators before the next sub-block is touched. Up to kMaxTokensPerPass tokens share one decode; more
// tokens take another pass over the row, which by then is in L1, so memory is read once per call.
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
        F16v d;
    };
    static void begin(const uint8_t* p, Ctx& c) { c.d = fset1(half_to_float(as<BlockQ4_0>(p)->d)); }
    static void sub(const uint8_t* p, const Ctx& c, int, F16v* w) {
        const I16v q = load_u8(as<BlockQ4_0>(p)->qs);
        w[0] = fmul(to_float(isub(iand(q, 0xF), 8)), c.d);
        w[1] = fmul(to_float(isub(isrl(q, 4), 8)), c.d);
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
        F16v d;
    };
    static void begin(const uint8_t* p, Ctx& c) { c.d = fset1(half_to_float(as<BlockQ5_0>(p)->d)); }
    static void sub(const uint8_t* p, const Ctx& c, int, F16v* w) {
        const auto* b = as<BlockQ5_0>(p);
        const uint32_t qh = load_u32(b->qh);
        const I16v q = load_u8(b->qs);
        w[0] = fmul(to_float(isub(ior(iand(q, 0xF), q5_high(qh, 0)), 16)), c.d);
        w[1] = fmul(to_float(isub(ior(isrl(q, 4), q5_high(qh, 16)), 16)), c.d);
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

// ---- the kernel ---------------------------------------------------------------------------------------

// One row times TT tokens (x: TT rows of n_in floats); out[t * out_stride] for t < TT.
template <class D, int TT>
inline void row_pass(const uint8_t* row, int64_t n_in, const float* x, float* out, int64_t out_stride) {
    // Independent accumulators per token so that few tokens still keep several FMAs in flight.
    constexpr int NA = TT == 1 ? 4 : (TT == 2 ? 2 : 1);
    F16v acc[TT][NA];
    for (int t = 0; t < TT; ++t)
        for (int a = 0; a < NA; ++a) acc[t][a] = fzero();
    const int64_t nb = n_in / D::kElems;
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + size_t(b) * D::kBytes;
        typename D::Ctx c;
        D::begin(blk, c);
        const float* xb = x + b * D::kElems;
#pragma GCC unroll 4
        for (int s = 0; s < D::kSubs; ++s) {
            F16v w[D::kVecs];
            D::sub(blk, c, s, w);
#pragma GCC unroll 4
            for (int v = 0; v < D::kVecs; ++v)
#pragma GCC unroll 8
                for (int t = 0; t < TT; ++t)
                    acc[t][v % NA] =
                        ffma(w[v], fload(xb + t * n_in + (s * D::kVecs + v) * 16), acc[t][v % NA]);
        }
    }
    for (int t = 0; t < TT; ++t) {
        F16v s = acc[t][0];
        for (int a = 1; a < NA; ++a) s = fadd(s, acc[t][a]);
        float r = fhsum(s);
        if constexpr (D::kAnyLength)
            for (int64_t i = nb * D::kElems; i < n_in; ++i) r += D::elem(row, i) * x[t * n_in + i];
        out[t * out_stride] = r;
    }
}

template <class D>
void decode_rows(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens,
                 int64_t r0, int64_t r1, float* out, int64_t out_stride) {
    const auto* x = static_cast<const float*>(act);
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* row = w + size_t(r) * row_bytes;
        for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxTokensPerPass) {
            const int64_t left = n_tokens - t0;
            const int tt = int(left < kMaxTokensPerPass ? left : kMaxTokensPerPass);
            const float* xt = x + t0 * n_in;
            float* o = out + t0 * out_stride + r;
            switch (tt) {
                case 1:
                    row_pass<D, 1>(row, n_in, xt, o, out_stride);
                    break;
                case 2:
                    row_pass<D, 2>(row, n_in, xt, o, out_stride);
                    break;
                case 3:
                    row_pass<D, 3>(row, n_in, xt, o, out_stride);
                    break;
                case 4:
                    row_pass<D, 4>(row, n_in, xt, o, out_stride);
                    break;
                default:
                    if constexpr (kMaxTokensPerPass > 4) {
                        switch (tt) {
                            case 5:
                                row_pass<D, 5>(row, n_in, xt, o, out_stride);
                                break;
                            case 6:
                                row_pass<D, 6>(row, n_in, xt, o, out_stride);
                                break;
                            case 7:
                                row_pass<D, 7>(row, n_in, xt, o, out_stride);
                                break;
                            default:
                                row_pass<D, 8>(row, n_in, xt, o, out_stride);
                                break;
                        }
                    }
                    break;
            }
        }
    }
}

size_t float_act_bytes(int64_t n_in, int64_t n_tokens) {
    return sizeof(float) * size_t(n_in) * size_t(n_tokens);
}

void float_prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    std::memcpy(act, x, float_act_bytes(n_in, n_tokens));
}

template <class D>
constexpr kinfer::cpu::MatmulPath float_path() {
    return kinfer::cpu::MatmulPath{kinfer::cpu::kActFloat, float_act_bytes, float_prepare, decode_rows<D>, 1};
}

// The decode path of `type` at this file's level, or nullptr.
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

}  // namespace
