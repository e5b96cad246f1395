#pragma once
// Per-type unpacking of one weight block into the prefill tile's exact integer form:
//   w[k] = scale[k / kSub] * q[k] - min[k / kSub],   q an unsigned byte,
// which every ggml type we read fits without rounding: the offsets of the signed types (Q4_0's -8, Q6_K's
// -32, Q8_0's +128 shift ...) move into `min`, scales and mins become floats computed exactly as the scalar
// reference computes them. (The one exception is Q8_0 at levels without an unsigned x signed 8-bit multiply
// that cannot saturate: `Signed` keeps its q as signed bytes and min = 0.)
//
// This header holds only internal-linkage code: each ISA translation unit includes it after its target
// pragma, so each gets its own copy compiled for its instruction set (no ODR merging across levels).
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/blocks.hpp"
#include "kernels/fp16.hpp"

namespace kinfer::cpu::prefill {
namespace {

inline uint32_t load_le32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

struct UnpackQ4_0 {
    static constexpr int kChunk = 32, kSub = 32, kChunkBytes = sizeof(BlockQ4_0), kMaxQ = 15;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        BlockQ4_0 b;
        std::memcpy(&b, src, sizeof b);
        const float d = fp16_to_fp32(b.d);
        for (int j = 0; j < 16; ++j) {
            q[j] = b.qs[j] & 0xF;
            q[j + 16] = b.qs[j] >> 4;
        }
        sc[0] = d;
        mn[0] = 8 * d;
    }
};

struct UnpackQ4_1 {
    static constexpr int kChunk = 32, kSub = 32, kChunkBytes = sizeof(BlockQ4_1), kMaxQ = 15;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        BlockQ4_1 b;
        std::memcpy(&b, src, sizeof b);
        for (int j = 0; j < 16; ++j) {
            q[j] = b.qs[j] & 0xF;
            q[j + 16] = b.qs[j] >> 4;
        }
        sc[0] = fp16_to_fp32(b.d);
        mn[0] = -fp16_to_fp32(b.m);
    }
};

struct UnpackQ5_0 {
    static constexpr int kChunk = 32, kSub = 32, kChunkBytes = sizeof(BlockQ5_0), kMaxQ = 31;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        BlockQ5_0 b;
        std::memcpy(&b, src, sizeof b);
        const uint32_t qh = load_le32(b.qh);
        for (int j = 0; j < 16; ++j) {
            q[j] = uint8_t((b.qs[j] & 0xF) | ((qh >> j) & 1) << 4);
            q[j + 16] = uint8_t((b.qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
        }
        const float d = fp16_to_fp32(b.d);
        sc[0] = d;
        mn[0] = 16 * d;
    }
};

struct UnpackQ5_1 {
    static constexpr int kChunk = 32, kSub = 32, kChunkBytes = sizeof(BlockQ5_1), kMaxQ = 31;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        BlockQ5_1 b;
        std::memcpy(&b, src, sizeof b);
        const uint32_t qh = load_le32(b.qh);
        for (int j = 0; j < 16; ++j) {
            q[j] = uint8_t((b.qs[j] & 0xF) | ((qh >> j) & 1) << 4);
            q[j + 16] = uint8_t((b.qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
        }
        sc[0] = fp16_to_fp32(b.d);
        mn[0] = -fp16_to_fp32(b.m);
    }
};

template <bool Signed>
struct UnpackQ8_0 {
    static constexpr int kChunk = 32, kSub = 32, kChunkBytes = sizeof(BlockQ8_0), kMaxQ = Signed ? 128 : 255;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        BlockQ8_0 b;
        std::memcpy(&b, src, sizeof b);
        const float d = fp16_to_fp32(b.d);
        for (int j = 0; j < 32; ++j) q[j] = uint8_t(Signed ? b.qs[j] : b.qs[j] + 128);
        sc[0] = d;
        mn[0] = Signed ? 0.0f : 128 * d;
    }
};

struct UnpackQ2_K {
    static constexpr int kChunk = 256, kSub = 16, kChunkBytes = sizeof(BlockQ2_K), kMaxQ = 3;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ2_K*>(src);
        const float d = fp16_to_fp32(b->d), dmin = fp16_to_fp32(b->dmin);
        for (int g = 0; g < 16; ++g) {  // element 16g + l: byte 32*(g/8) + 16*(g%2) + l, bits 2*((g/2)%4)
            const uint8_t s = b->scales[g];
            sc[g] = d * float(s & 0xF);
            mn[g] = dmin * float(s >> 4);
            const uint8_t* qs = b->qs + 32 * (g / 8) + 16 * (g % 2);
            const int shift = 2 * ((g / 2) % 4);
            for (int l = 0; l < 16; ++l) q[16 * g + l] = (qs[l] >> shift) & 3;
        }
    }
};

struct UnpackQ3_K {
    static constexpr int kChunk = 256, kSub = 16, kChunkBytes = sizeof(BlockQ3_K), kMaxQ = 7;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ3_K*>(src);
        const float d = fp16_to_fp32(b->d);
        for (int g = 0; g < 16; ++g) {  // q = low 2 bits + 4 * high bit, value = dl * (q - 4)
            const float dl = d * float(unpack_scale_q3_k(g, b->scales));
            sc[g] = dl;
            mn[g] = 4 * dl;
            const uint8_t* qs = b->qs + 32 * (g / 8) + 16 * (g % 2);
            const uint8_t* hm = b->hmask + 16 * (g % 2);
            const int shift = 2 * ((g / 2) % 4);
            for (int l = 0; l < 16; ++l)
                q[16 * g + l] = uint8_t(((qs[l] >> shift) & 3) | ((hm[l] >> (g / 2)) & 1) << 2);
        }
    }
};

struct UnpackQ4_K {
    static constexpr int kChunk = 256, kSub = 32, kChunkBytes = sizeof(BlockQ4_K), kMaxQ = 15;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ4_K*>(src);
        const float d = fp16_to_fp32(b->d), dmin = fp16_to_fp32(b->dmin);
        for (int g = 0; g < 8; ++g) {
            uint8_t s = 0, m = 0;
            unpack_scale_min_k4(g, b->scales, s, m);
            sc[g] = d * float(s);
            mn[g] = dmin * float(m);
        }
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l) {
                q[64 * c + l] = b->qs[32 * c + l] & 0xF;
                q[64 * c + 32 + l] = b->qs[32 * c + l] >> 4;
            }
    }
};

struct UnpackQ5_K {
    static constexpr int kChunk = 256, kSub = 32, kChunkBytes = sizeof(BlockQ5_K), kMaxQ = 31;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ5_K*>(src);
        const float d = fp16_to_fp32(b->d), dmin = fp16_to_fp32(b->dmin);
        for (int g = 0; g < 8; ++g) {
            uint8_t s = 0, m = 0;
            unpack_scale_min_k4(g, b->scales, s, m);
            sc[g] = d * float(s);
            mn[g] = dmin * float(m);
        }
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l) {
                const uint8_t h = b->qh[l];
                q[64 * c + l] = uint8_t((b->qs[32 * c + l] & 0xF) | ((h >> (2 * c)) & 1) << 4);
                q[64 * c + 32 + l] = uint8_t((b->qs[32 * c + l] >> 4) | ((h >> (2 * c + 1)) & 1) << 4);
            }
    }
};

struct UnpackQ6_K {
    static constexpr int kChunk = 256, kSub = 16, kChunkBytes = sizeof(BlockQ6_K), kMaxQ = 63;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ6_K*>(src);
        const float d = fp16_to_fp32(b->d);
        for (int g = 0; g < 16; ++g) {
            const float dl = d * float(b->scales[g]);
            sc[g] = dl;
            mn[g] = 32 * dl;
        }
        // Per half: element 32s + l has its low nibble in ql[l + 32*(s&1)] (high nibble for s >= 2) and its
        // top two bits at bits 2s of qh[l].
        for (int half = 0; half < 2; ++half) {
            const uint8_t* ql = b->ql + 64 * half;
            const uint8_t* qh = b->qh + 32 * half;
            uint8_t* out = q + 128 * half;
            for (int l = 0; l < 32; ++l) {
                const uint8_t h = qh[l];
                out[l] = uint8_t((ql[l] & 0xF) | (h & 3) << 4);
                out[32 + l] = uint8_t((ql[32 + l] & 0xF) | ((h >> 2) & 3) << 4);
                out[64 + l] = uint8_t((ql[l] >> 4) | ((h >> 4) & 3) << 4);
                out[96 + l] = uint8_t((ql[32 + l] >> 4) | ((h >> 6) & 3) << 4);
            }
        }
    }
};

// Storage of the weight tile of R rows x n_in, as the kernels read it: q interleaved by groups of 4 bytes,
// [n_in/4][R][4] (one vector load gives 4 consecutive bytes of each of R rows, the operand of one 8-bit dot
// product instruction), then scale and min as [n_in/kSub][R] floats. Rows past the matrix are zero.
struct TileLayout {
    size_t q_bytes, sub_count;
    TileLayout(int64_t n_in, int rows, int sub)
        : q_bytes(size_t(n_in) * rows), sub_count(size_t(n_in / sub) * rows) {}
    size_t bytes() const { return q_bytes + 2 * sub_count * sizeof(float) + 64; }
};

// A tile buffer per thread: grows once to the widest tile, then never allocates.
inline uint8_t* tile_buffer(size_t bytes) {
    thread_local std::vector<uint8_t> buffer;
    if (buffer.size() < bytes) buffer.resize(bytes);
    return buffer.data();
}

template <class U, int R>
struct Tile {
    uint8_t* q;
    float* scale;
    float* min;

    Tile(int64_t n_in) {
        const TileLayout layout(n_in, R, U::kSub);
        uint8_t* base = tile_buffer(layout.bytes());
        base += (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
        q = base;
        scale = reinterpret_cast<float*>(base + layout.q_bytes);
        min = scale + layout.sub_count;
    }

    // Unpacks rows [0, nr) of w (nr <= R) into the tile.
    void build(const uint8_t* w, size_t row_bytes, int nr, int64_t n_in) {
        constexpr int kSubs = U::kChunk / U::kSub;
        alignas(64) uint8_t cq[R][U::kChunk];
        float csc[R][kSubs], cmn[R][kSubs];
        for (int r = nr; r < R; ++r) {
            std::memset(cq[r], 0, sizeof cq[r]);
            for (int s = 0; s < kSubs; ++s) csc[r][s] = cmn[r][s] = 0;
        }
        for (int64_t c = 0; c < n_in / U::kChunk; ++c) {
            for (int r = 0; r < nr; ++r)
                U::unpack(w + size_t(r) * row_bytes + size_t(c) * U::kChunkBytes, cq[r], csc[r], cmn[r]);
            uint8_t* tq = q + size_t(c) * U::kChunk * R;
            for (int k4 = 0; k4 < U::kChunk / 4; ++k4)
                for (int r = 0; r < R; ++r) std::memcpy(tq + (size_t(k4) * R + r) * 4, &cq[r][4 * k4], 4);
            for (int s = 0; s < kSubs; ++s)
                for (int r = 0; r < R; ++r) {
                    scale[(c * kSubs + s) * R + r] = csc[r][s];
                    min[(c * kSubs + s) * R + r] = cmn[r][s];
                }
        }
    }
};

}  // namespace
}  // namespace kinfer::cpu::prefill
