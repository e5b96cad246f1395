#pragma once
// The device memory layout of weights: GGUF is the file format, not the layout the GPU reads. At upload every
// row is repacked (kernels/cuda/repack.cpp) into records of 256 elements whose sizes are multiples of 16
// bytes, so each thread's loads are 16 bytes wide and aligned, and the scales unpack in a few instructions.
// The records hold the same bytes as the GGUF blocks (Q3_K gains 2 bytes of padding per 256 elements); what
// does not fit a 16-byte record goes to a small per-row tail plane after the records (Q2_K's d/dmin, Q6_K's
// d).
//
// A thread handles one group of 32 elements (group g of a row: record g / 8, slot g % 8) as two sub-groups of
// 16. For quantized types every element of sub-group h is w = a[h] * v + b[h], where v is built from the
// element's unsigned code c without an int->float conversion (those run at 1/8 of the FMA rate): a byte
// permute writes c into the mantissa of 128.0f (or 32768.0f for 8-bit codes), so v = 128 + c exactly. The
// dot product of a sub-group is then a * sum(v * x) + b * sum(x), which is exact up to float rounding.
//
// Codes are laid out so that the four 32-bit words k = 0..3 of a sub-group give the codes of elements
// 4k .. 4k+3 (byte m = element 4k + m) with one or two logic operations:
// - 4-bit low parts: 16 bytes per group, byte i holds element i (low nibble) and element 16 + i (high).
// - 1 extra bit (Q5_*, Q5_K, Q3_K): 32 bits per group; the bit of element 16h + 4k + m is bit 8m + 2k + h.
// - 2-bit parts (Q2_K, Q3_K low bits, Q6_K high bits): 8 bytes per group, word h; the 2 bits of element
//   16h + 4k + m are bits 8m + 2k .. 8m + 2k + 1.
// - 8-bit codes (Q8_0): 32 bytes per group in element order, code = q + 128.
//
// Everything here is plain C++17 usable by nvcc and by host code: the host versions let the CPU tests check
// the repacking and unpacking against the scalar reference without a GPU.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "gguf/ggml_type.hpp"
#include "kernels/blocks.hpp"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define KINFER_UNROLL _Pragma("unroll")
#else
#define KINFER_UNROLL  // host compilers unroll on their own; g++ warns about the CUDA pragma
#endif

namespace kinfer::cuda::repacked {

constexpr int kRecordElems = 256;
constexpr int kGroupElems = 32;
constexpr int kGroupsPerRecord = kRecordElems / kGroupElems;

struct alignas(16) Words4 {
    uint32_t w[4];
};

// ---- loads (read-only cache on the device, memcpy on the host) -------------------------------------------

KINFER_HOST_DEVICE inline Words4 load16(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
    return Words4{{v.x, v.y, v.z, v.w}};
#else
    Words4 r;
    std::memcpy(r.w, p, 16);
    return r;
#endif
}

KINFER_HOST_DEVICE inline void load8(const uint8_t* p, uint32_t& lo, uint32_t& hi) {
#if defined(__CUDA_ARCH__)
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(p));
    lo = v.x;
    hi = v.y;
#else
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
#endif
}

KINFER_HOST_DEVICE inline uint32_t load4(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
    return __ldg(reinterpret_cast<const unsigned int*>(p));
#else
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
#endif
}

KINFER_HOST_DEVICE inline uint16_t load2(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
    return __ldg(reinterpret_cast<const unsigned short*>(p));
#else
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
#endif
}

// The loads above as a policy: the layouts' load functions take one (template parameter M), so a kernel
// that stages weights in shared memory can read them with plain loads through the same unpacking code.
struct GlobalLoads {
    KINFER_HOST_DEVICE static Words4 load16(const uint8_t* p) { return repacked::load16(p); }
    KINFER_HOST_DEVICE static void load8(const uint8_t* p, uint32_t& lo, uint32_t& hi) {
        repacked::load8(p, lo, hi);
    }
    KINFER_HOST_DEVICE static uint32_t load4(const uint8_t* p) { return repacked::load4(p); }
    KINFER_HOST_DEVICE static uint16_t load2(const uint8_t* p) { return repacked::load2(p); }
};

KINFER_HOST_DEVICE inline float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, 4);
    return f;
#endif
}

// IEEE half -> float (exact).
KINFER_HOST_DEVICE inline float half_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
    return __half2float(__ushort_as_half(h));
#else
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));
    if (exp != 0) return bits_to_float(sign | ((exp + 112) << 23) | (mant << 13));
    const float v = static_cast<float>(mant) * (1.0f / 16777216.0f);  // subnormal or zero, exact
    return sign ? -v : v;
#endif
}

KINFER_HOST_DEVICE inline float bf16_to_float(uint16_t h) {
    return bits_to_float(static_cast<uint32_t>(h) << 16);
}

// 128 + (byte m of word), for byte values below 128: one byte permute on the device.
template <int m>
KINFER_HOST_DEVICE inline float code_plus_128(uint32_t word) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(__byte_perm(word, 0x43u, 0x4055u | (m << 8)));
#else
    return bits_to_float(0x43000000u | (((word >> (8 * m)) & 0xffu) << 16));
#endif
}

// 32768 + (byte m of word), any byte value.
template <int m>
KINFER_HOST_DEVICE inline float code_plus_32768(uint32_t word) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(__byte_perm(word, 0x47u, 0x4505u | (m << 4)));
#else
    return bits_to_float(0x47000000u | (((word >> (8 * m)) & 0xffu) << 8));
#endif
}

// v[4k + m] = base + code of byte m of codes[k].
KINFER_HOST_DEVICE inline void codes_to_v128(const uint32_t codes[4], float v[16]) {
    KINFER_UNROLL
    for (int k = 0; k < 4; ++k) {
        v[4 * k + 0] = code_plus_128<0>(codes[k]);
        v[4 * k + 1] = code_plus_128<1>(codes[k]);
        v[4 * k + 2] = code_plus_128<2>(codes[k]);
        v[4 * k + 3] = code_plus_128<3>(codes[k]);
    }
}

KINFER_HOST_DEVICE inline void codes_to_v32768(const uint32_t codes[4], float v[16]) {
    KINFER_UNROLL
    for (int k = 0; k < 4; ++k) {
        v[4 * k + 0] = code_plus_32768<0>(codes[k]);
        v[4 * k + 1] = code_plus_32768<1>(codes[k]);
        v[4 * k + 2] = code_plus_32768<2>(codes[k]);
        v[4 * k + 3] = code_plus_32768<3>(codes[k]);
    }
}

// Nibbles of sub-group h from the 16 low-part bytes.
KINFER_HOST_DEVICE inline uint32_t nibbles(const Words4& q, int k, int h) {
    return (h ? q.w[k] >> 4 : q.w[k]) & 0x0f0f0f0fu;
}
// The extra bit (layout above) of word k of sub-group h, moved to bit `to` of each byte.
KINFER_HOST_DEVICE inline uint32_t extra_bit(uint32_t bits, int k, int h, int to) {
    return ((bits >> (2 * k + h)) & 0x01010101u) << to;
}
// The 2-bit parts of word k (from that sub-group's word), moved to bits to, to+1 of each byte.
KINFER_HOST_DEVICE inline uint32_t two_bits(uint32_t word, int k, int to) {
    return ((word >> (2 * k)) & 0x03030303u) << to;
}

// What one thread loads for one group of one row: N 16-byte words (codes, or raw values for float types) and
// each sub-group's scale a and offset b.
template <int N>
struct Group {
    Words4 q[N];
    float a[2], b[2];
};

// What thread q (0..3) of a quad takes of one group for the tensor-core product (matvec.cu): word q of each
// sub-group's codes (codes(o, h, c)[q], with a 4-byte load instead of the group's 16) and the scales. The
// layouts that have it define load_quad(row, n_records, g, q, QuadWord&).
struct QuadWord {
    uint32_t c[2];
    float a[2], b[2];
};
// The same for kQuadStep consecutive groups g0 .. g0 + kQuadStep - 1 of one record (g0 % kQuadStep == 0): the
// layouts that have it define QuadRaw, load_quads_at(row_pos of g0, q, QuadRaw&), which issues every load of
// the step at once (the scale words once per step, not per group; load_quads below from a row),
// quad_prepare(raw) once the loads are in (conversions shared by the step's groups), then group g0 + j's
// codes, quad_codes(raw, j, q, c), and scales, quad_scales(raw, j, g0 % 8, a, b) (j may vary across a warp's
// threads there: no register is indexed by it); together (quad_word below) they equal load_quad of that
// group.

template <class L>
KINFER_HOST_DEVICE inline void quad_word(const typename L::QuadRaw& r, int j, int q, int slot, QuadWord& o) {
    L::quad_codes(r, j, q, o.c);
    L::quad_scales(r, j, slot, o.a, o.b);
}

KINFER_HOST_DEVICE inline uint32_t nibbles_of(uint32_t word, int h) {
    return (h ? word >> 4 : word) & 0x0f0f0f0fu;
}

// The values of sub-group h of a quantized layout: its codes (each byte below 128, or any byte with
// kCodeBase 32768) with kCodeBase added. The int8 matvec path reads the codes themselves (w = a * code +
// b + kCodeBase * a).
template <class L>
KINFER_HOST_DEVICE inline void values_of(const typename L::G& o, int h, float v[16]) {
    uint32_t c[4];
    L::codes(o, h, c);
    if constexpr (L::kCodeBase == 128)
        codes_to_v128(c, v);
    else
        codes_to_v32768(c, v);
}

// Geometry shared by every layout: where record `g / 8` starts and where the tail entry of that record is.
struct RowPos {
    const uint8_t* rec;   // the record holding the group
    const uint8_t* tail;  // the record's entry in the tail plane (types with one)
    int slot;             // g % 8
};
template <int kRecord, int kTail>
KINFER_HOST_DEVICE inline RowPos row_pos(const uint8_t* row, int n_records, int g) {
    const int r = int(unsigned(g) / kGroupsPerRecord);  // g >= 0: shifts, not a signed division
    return {row + static_cast<int64_t>(r) * kRecord,
            row + static_cast<int64_t>(n_records) * kRecord + r * kTail, int(unsigned(g) % kGroupsPerRecord)};
}

// The step loads of groups g0 .. g0 + kQuadStep - 1 of a row (the layouts' load_quads_at at row_pos of g0).
template <class L>
KINFER_HOST_DEVICE inline void load_quads(const uint8_t* row, int n_records, int g0, int q,
                                          typename L::QuadRaw& o) {
    L::load_quads_at(row_pos<L::kRecord, L::kTail>(row, n_records, g0), q, o);
}

// Groups g and g + 4 of one record (g % 8 < 4) for the decode product: layouts whose groups share a meta
// word load it once (load_pair); the others load the two groups.
template <class L, class = void>
struct HasLoadPair : std::false_type {};
template <class L>
struct HasLoadPair<L, std::void_t<decltype(&L::load_pair)>> : std::true_type {};

// Whether a layout declares kOneScale (both sub-groups share a and b: the decode product applies one scale
// per group).
template <class L, class = void>
struct OneScale : std::false_type {};
template <class L>
struct OneScale<L, std::void_t<decltype(L::kOneScale)>> : std::bool_constant<L::kOneScale> {};

// ---- the layouts, one per type
// ----------------------------------------------------------------------------- Each has: kRecord, kTail
// (bytes per record and per tail entry), kWords (16-byte words per group), kHasOffset (b may be nonzero),
// load(row, n_records, g, group), values(group, h, v[16]); kOneScale where both sub-groups share a and b.

struct LayoutQ4_0 {  // [d x8 halves][qs 8 x 16]
    static constexpr int kRecord = 144, kTail = 0, kWords = 1;
    static constexpr bool kHasOffset = true;
    static constexpr bool kOneScale = true;  // a[0] == a[1], b[0] == b[1]: one scale per 32
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        o.q[0] = M::load16(p.rec + 16 + 16 * p.slot);
        const float d = half_to_float(M::load2(p.rec + 2 * p.slot));
        o.a[0] = o.a[1] = d;
        o.b[0] = o.b[1] = -136.0f * d;  // w = d * (c - 8) = d * v - 136 d
    }
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load_quad(const uint8_t* row, int n_records, int g, int q, QuadWord& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        const uint32_t w = M::load4(p.rec + 16 + 16 * p.slot + 4 * q);
        o.c[0] = nibbles_of(w, 0), o.c[1] = nibbles_of(w, 1);
        const float d = half_to_float(M::load2(p.rec + 2 * p.slot));
        o.a[0] = o.a[1] = d;
        o.b[0] = o.b[1] = -136.0f * d;
    }
    static constexpr int kQuadStep = 4;
    struct QuadRaw {
        uint32_t w[4], d[2];
    };
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load_quads_at(const RowPos& p, int q, QuadRaw& o) {
        M::load8(p.rec + 2 * p.slot, o.d[0], o.d[1]);  // the 4 groups' d
        KINFER_UNROLL
        for (int j = 0; j < 4; ++j) o.w[j] = M::load4(p.rec + 16 + 16 * (p.slot + j) + 4 * q);
    }
    KINFER_HOST_DEVICE static void quad_prepare(QuadRaw&) {}
    KINFER_HOST_DEVICE static void quad_codes(const QuadRaw& r, int j, int, uint32_t (&c)[2]) {
        c[0] = nibbles_of(r.w[j], 0), c[1] = nibbles_of(r.w[j], 1);
    }
    KINFER_HOST_DEVICE static void quad_scales(const QuadRaw& r, int j, int, float (&a)[2], float (&b)[2]) {
        a[0] = a[1] = half_to_float(static_cast<uint16_t>((j >= 2 ? r.d[1] : r.d[0]) >> (16 * (j % 2))));
        b[0] = b[1] = -136.0f * a[0];
    }
    static constexpr int kCodeBase = 128;
    KINFER_HOST_DEVICE static void codes(const G& o, int h, uint32_t c[4]) {
        KINFER_UNROLL
        for (int k = 0; k < 4; ++k) c[k] = nibbles(o.q[0], k, h);
    }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) { values_of<LayoutQ4_0>(o, h, v); }
};

struct LayoutQ4_1 {  // [d x8][m x8][qs 8 x 16]
    static constexpr int kRecord = 160, kTail = 0, kWords = 1;
    static constexpr bool kHasOffset = true;
    static constexpr bool kOneScale = true;  // a[0] == a[1], b[0] == b[1]: one scale per 32
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        o.q[0] = M::load16(p.rec + 32 + 16 * p.slot);
        const float d = half_to_float(M::load2(p.rec + 2 * p.slot));
        const float m = half_to_float(M::load2(p.rec + 16 + 2 * p.slot));
        o.a[0] = o.a[1] = d;
        o.b[0] = o.b[1] = m - 128.0f * d;
    }
    static constexpr int kCodeBase = 128;
    KINFER_HOST_DEVICE static void codes(const G& o, int h, uint32_t c[4]) { LayoutQ4_0::codes(o, h, c); }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) { LayoutQ4_0::values(o, h, v); }
};

struct LayoutQ5_0 {  // [d x8][qh 8 x 4][qs 8 x 16]; q1.w[0] holds the group's extra bits
    static constexpr int kRecord = 176, kTail = 0, kWords = 2;
    static constexpr bool kHasOffset = true;
    static constexpr bool kOneScale = true;  // a[0] == a[1], b[0] == b[1]: one scale per 32
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        o.q[0] = M::load16(p.rec + 48 + 16 * p.slot);
        o.q[1].w[0] = M::load4(p.rec + 16 + 4 * p.slot);
        const float d = half_to_float(M::load2(p.rec + 2 * p.slot));
        o.a[0] = o.a[1] = d;
        o.b[0] = o.b[1] = -144.0f * d;  // w = d * (c - 16)
    }
    static constexpr int kCodeBase = 128;
    KINFER_HOST_DEVICE static void codes(const G& o, int h, uint32_t c[4]) {
        KINFER_UNROLL
        for (int k = 0; k < 4; ++k) c[k] = nibbles(o.q[0], k, h) | extra_bit(o.q[1].w[0], k, h, 4);
    }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) { values_of<LayoutQ5_0>(o, h, v); }
};

struct LayoutQ5_1 {  // [d x8][m x8][qh 8 x 4][qs 8 x 16]
    static constexpr int kRecord = 192, kTail = 0, kWords = 2;
    static constexpr bool kHasOffset = true;
    static constexpr bool kOneScale = true;  // a[0] == a[1], b[0] == b[1]: one scale per 32
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        o.q[0] = M::load16(p.rec + 64 + 16 * p.slot);
        o.q[1].w[0] = M::load4(p.rec + 32 + 4 * p.slot);
        const float d = half_to_float(M::load2(p.rec + 2 * p.slot));
        const float m = half_to_float(M::load2(p.rec + 16 + 2 * p.slot));
        o.a[0] = o.a[1] = d;
        o.b[0] = o.b[1] = m - 128.0f * d;
    }
    static constexpr int kCodeBase = 128;
    KINFER_HOST_DEVICE static void codes(const G& o, int h, uint32_t c[4]) { LayoutQ5_0::codes(o, h, c); }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) { LayoutQ5_0::values(o, h, v); }
};

struct LayoutQ8_0 {  // [d x8][qs 8 x 32], code = q + 128
    static constexpr int kRecord = 272, kTail = 0, kWords = 2;
    static constexpr bool kHasOffset = true;
    static constexpr bool kOneScale = true;  // a[0] == a[1], b[0] == b[1]: one scale per 32
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        o.q[0] = M::load16(p.rec + 16 + 32 * p.slot);
        o.q[1] = M::load16(p.rec + 32 + 32 * p.slot);
        const float d = half_to_float(M::load2(p.rec + 2 * p.slot));
        o.a[0] = o.a[1] = d;
        o.b[0] = o.b[1] = -32896.0f * d;  // v = 32768 + q + 128
    }
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load_quad(const uint8_t* row, int n_records, int g, int q, QuadWord& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        o.c[0] = M::load4(p.rec + 16 + 32 * p.slot + 4 * q);
        o.c[1] = M::load4(p.rec + 32 + 32 * p.slot + 4 * q);
        const float d = half_to_float(M::load2(p.rec + 2 * p.slot));
        o.a[0] = o.a[1] = d;
        o.b[0] = o.b[1] = -32896.0f * d;
    }
    static constexpr int kQuadStep = 2;
    struct QuadRaw {
        uint32_t w[2][2], d;
    };
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load_quads_at(const RowPos& p, int q, QuadRaw& o) {
        o.d = M::load4(p.rec + 2 * p.slot);  // the 2 groups' d
        KINFER_UNROLL
        for (int j = 0; j < 2; ++j) KINFER_UNROLL
        for (int h = 0; h < 2; ++h) o.w[j][h] = M::load4(p.rec + 16 + 32 * (p.slot + j) + 16 * h + 4 * q);
    }
    KINFER_HOST_DEVICE static void quad_prepare(QuadRaw&) {}
    KINFER_HOST_DEVICE static void quad_codes(const QuadRaw& r, int j, int, uint32_t (&c)[2]) {
        c[0] = r.w[j][0], c[1] = r.w[j][1];
    }
    KINFER_HOST_DEVICE static void quad_scales(const QuadRaw& r, int j, int, float (&a)[2], float (&b)[2]) {
        a[0] = a[1] = half_to_float(static_cast<uint16_t>(r.d >> (16 * j)));
        b[0] = b[1] = -32896.0f * a[0];
    }
    static constexpr int kCodeBase = 32768;
    KINFER_HOST_DEVICE static void codes(const G& o, int h, uint32_t c[4]) {
        KINFER_UNROLL
        for (int k = 0; k < 4; ++k) c[k] = o.q[h].w[k];
    }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) { codes_to_v32768(o.q[h].w, v); }
};

// Q2_K: [scales 16: (sc | mn << 4) per 16 elements][qs 8 x 8]; tail: d, dmin.
struct LayoutQ2_K {
    static constexpr int kRecord = 80, kTail = 4, kWords = 1;
    static constexpr bool kHasOffset = true;
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        M::load8(p.rec + 16 + 8 * p.slot, o.q[0].w[0], o.q[0].w[1]);
        const uint16_t s = M::load2(p.rec + 2 * p.slot);
        const float d = half_to_float(M::load2(p.tail)), dmin = half_to_float(M::load2(p.tail + 2));
        for (int h = 0; h < 2; ++h) {
            const int sm = (s >> (8 * h)) & 0xff;
            o.a[h] = d * static_cast<float>(sm & 15);
            o.b[h] = -128.0f * o.a[h] - dmin * static_cast<float>(sm >> 4);
        }
    }
    static constexpr int kCodeBase = 128;
    KINFER_HOST_DEVICE static void codes(const G& o, int h, uint32_t c[4]) {
        KINFER_UNROLL
        for (int k = 0; k < 4; ++k) c[k] = two_bits(o.q[0].w[h], k, 0);
    }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) { values_of<LayoutQ2_K>(o, h, v); }
};

// Q3_K: [lo nibbles of the 16 six-bit scale codes (8 bytes) | their top 2 bits (32 bits) | d | pad 2]
//       [low 2 bits 8 x 8][high bit 8 x 4]; code = low | high << 2, w = d * (s - 32) * (code - 4).
struct LayoutQ3_K {
    static constexpr int kRecord = 112, kTail = 0, kWords = 1;
    static constexpr bool kHasOffset = true;
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        M::load8(p.rec + 16 + 8 * p.slot, o.q[0].w[0], o.q[0].w[1]);
        o.q[0].w[2] = M::load4(p.rec + 80 + 4 * p.slot);
        const uint32_t lo = p.rec[p.slot];  // low nibbles of the codes of sub-groups 2j, 2j+1
        const uint32_t hi = M::load4(p.rec + 8);
        const float d = half_to_float(M::load2(p.rec + 12));
        for (int h = 0; h < 2; ++h) {
            const int i = 2 * p.slot + h;
            const int code = static_cast<int>(((lo >> (4 * h)) & 15) | (((hi >> (2 * i)) & 3) << 4));
            o.a[h] = d * static_cast<float>(code - 32);
            o.b[h] = -132.0f * o.a[h];
        }
    }
    static constexpr int kCodeBase = 128;
    KINFER_HOST_DEVICE static void codes(const G& o, int h, uint32_t c[4]) {
        KINFER_UNROLL
        for (int k = 0; k < 4; ++k) c[k] = two_bits(o.q[0].w[h], k, 0) | extra_bit(o.q[0].w[2], k, h, 2);
    }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) { values_of<LayoutQ3_K>(o, h, v); }
};

// Q4_K / Q5_K meta (16 bytes): d, dmin, bytes 4 + j = scale of group j (6 bits) | top 2 bits of its min << 6,
// then the mins' low nibbles (bits 4j of the last word). One byte permute finds group j's byte.
// One 16-byte load of the meta (the 8 threads of a record share it through L1).
// Group j's byte of the re-laid scale word (6-bit scale | top bits of the min << 6): byte j of {w2:w1}.
KINFER_HOST_DEVICE inline uint32_t kquant_byte(const Words4& meta, int j) {
#if defined(__CUDA_ARCH__)
    return __byte_perm(meta.w[1], meta.w[2], unsigned(j));
#else
    return static_cast<uint32_t>(((uint64_t(meta.w[2]) << 32 | meta.w[1]) >> (8 * j)) & 0xffu);
#endif
}
// Group j's 6-bit min: its low nibble from w3, its top bits from the byte.
KINFER_HOST_DEVICE inline uint32_t kquant_min(const Words4& meta, uint32_t byte, int j) {
    return ((meta.w[3] >> (4 * j)) & 15u) | ((byte >> 2) & 0x30u);
}

KINFER_HOST_DEVICE inline void kquant_decode(const Words4& meta, int j, float& a, float& b) {
    const float d = half_to_float(static_cast<uint16_t>(meta.w[0] & 0xffffu));
    const float dmin = half_to_float(static_cast<uint16_t>(meta.w[0] >> 16));
    const uint32_t byte = kquant_byte(meta, j);
    a = d * static_cast<float>(byte & 63u);
    b = -128.0f * a - dmin * static_cast<float>(kquant_min(meta, byte, j));
}
template <class M = GlobalLoads>
KINFER_HOST_DEVICE inline void kquant_scale_min(const uint8_t* meta_ptr, int j, float& a, float& b) {
    kquant_decode(M::load16(meta_ptr), j, a, b);
}

// (x & kMask) | kOr as one LOP3 on the device. Written in C++, ptxas made it two where both constants are
// immediates (a LOP3 takes one); the PTX lop3 with both lets it hold one in a register (bench/cuda/NOTES.md
// session 27: the 8-token Q4_K loop 457 -> 393 SASS instructions per chunk for the codes' fp16 pairs).
template <uint32_t kMask, uint32_t kOr>
KINFER_HOST_DEVICE inline uint32_t and_or(uint32_t x) {
#if defined(__CUDA_ARCH__)
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(r) : "r"(x), "n"(kMask), "n"(kOr));  // (a & b) | c
    return r;
#else
    return (x & kMask) | kOr;
#endif
}

// K-quant group j's 6-bit scale and min as floats (exact integers).
KINFER_HOST_DEVICE inline void kquant_scale_min_ints(const Words4& meta, int j, float& sc, float& mn) {
    const uint32_t byte = kquant_byte(meta, j);
#if defined(__CUDA_ARCH__)
    // Without an int->float conversion: the bits of 2^23 + u, less 2^23 (exact for u < 2^23), the masks and
    // 2^23's bits in one LOP3 each (and_or).
    constexpr uint32_t k2p23 = 0x4b000000u;
    sc = __uint_as_float(and_or<63u, k2p23>(byte)) - 8388608.0f;
    const uint32_t top = and_or<0x30u, k2p23>(byte >> 2);  // the min's top 2 bits
    mn = __uint_as_float(((meta.w[3] >> (4 * j)) & 15u) | top) - 8388608.0f;
#else
    sc = static_cast<float>(byte & 63u), mn = static_cast<float>(kquant_min(meta, byte, j));
#endif
}

// K-quant group j's a and b (as kquant_decode) from a record's meta with d and dmin already converted: the
// tensor-core path converts them once per record and row (quad_prepare), not once per group.
KINFER_HOST_DEVICE inline void kquant_decode_prepared(const Words4& meta, float d, float dmin, int j,
                                                      float& a, float& b) {
    float sc, mn;
    kquant_scale_min_ints(meta, j, sc, mn);
    a = d * sc;
    b = -128.0f * a - dmin * mn;
}

struct LayoutQ4_K {  // [meta 16][qs 8 x 16]
    static constexpr int kRecord = 144, kTail = 0, kWords = 1;
    static constexpr bool kHasOffset = true;
    static constexpr bool kOneScale = true;  // a[0] == a[1], b[0] == b[1]: one scale per 32
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        o.q[0] = M::load16(p.rec + 16 + 16 * p.slot);
        kquant_scale_min<M>(p.rec, p.slot, o.a[0], o.b[0]);
        o.a[1] = o.a[0];
        o.b[1] = o.b[0];
    }
    // Groups g and g + 4 (g % 8 < 4) of one record, its meta loaded once.
    KINFER_HOST_DEVICE static void load_pair(const uint8_t* row, int n_records, int g, G& o, G& o4) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        o.q[0] = load16(p.rec + 16 + 16 * p.slot);
        o4.q[0] = load16(p.rec + 80 + 16 * p.slot);
        const Words4 meta = load16(p.rec);
        kquant_decode(meta, p.slot, o.a[0], o.b[0]);
        kquant_decode(meta, p.slot + 4, o4.a[0], o4.b[0]);
        o.a[1] = o.a[0], o.b[1] = o.b[0], o4.a[1] = o4.a[0], o4.b[1] = o4.b[0];
    }
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load_quad(const uint8_t* row, int n_records, int g, int q, QuadWord& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        const uint32_t w = M::load4(p.rec + 16 + 16 * p.slot + 4 * q);
        o.c[0] = nibbles_of(w, 0), o.c[1] = nibbles_of(w, 1);
        kquant_scale_min<M>(p.rec, p.slot, o.a[0], o.b[0]);
        o.a[1] = o.a[0];
        o.b[1] = o.b[0];
    }
    static constexpr int kQuadStep = 4;
    struct QuadRaw {
        uint32_t w[4];
        Words4 meta;
        float d, dmin;  // set by quad_prepare
    };
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load_quads_at(const RowPos& p, int q, QuadRaw& o) {
        o.meta = M::load16(p.rec);
        KINFER_UNROLL
        for (int j = 0; j < 4; ++j) o.w[j] = M::load4(p.rec + 16 + 16 * (p.slot + j) + 4 * q);
    }
    template <class R>
    KINFER_HOST_DEVICE static void quad_prepare_meta(R& r) {
        r.d = half_to_float(static_cast<uint16_t>(r.meta.w[0] & 0xffffu));
        r.dmin = half_to_float(static_cast<uint16_t>(r.meta.w[0] >> 16));
    }
    KINFER_HOST_DEVICE static void quad_prepare(QuadRaw& r) { quad_prepare_meta(r); }
    // Group g0 + j of the step (slot: g0 % 8), after quad_prepare.
    KINFER_HOST_DEVICE static void quad_codes(const QuadRaw& r, int j, int, uint32_t (&c)[2]) {
        c[0] = nibbles_of(r.w[j], 0), c[1] = nibbles_of(r.w[j], 1);
    }
    KINFER_HOST_DEVICE static void quad_scales(const QuadRaw& r, int j, int slot, float (&a)[2],
                                               float (&b)[2]) {
        kquant_decode_prepared(r.meta, r.d, r.dmin, slot + j, a[0], b[0]);
        a[1] = a[0], b[1] = b[0];
    }
    // The same group's scale and min as integers (w = d * sc * code - dmin * mn), for the fp16 form's offset
    // MMA (matvec.cu), which needs them exact.
    KINFER_HOST_DEVICE static void quad_scale_min_ints(const QuadRaw& r, int j, int slot, float& sc,
                                                       float& mn) {
        kquant_scale_min_ints(r.meta, slot + j, sc, mn);
    }
    static constexpr int kCodeBase = 128;
    KINFER_HOST_DEVICE static void codes(const G& o, int h, uint32_t c[4]) { LayoutQ4_0::codes(o, h, c); }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) { LayoutQ4_0::values(o, h, v); }
};

struct LayoutQ5_K {  // [meta 16][qh 8 x 4][qs 8 x 16]
    static constexpr int kRecord = 176, kTail = 0, kWords = 2;
    static constexpr bool kHasOffset = true;
    static constexpr bool kOneScale = true;  // a[0] == a[1], b[0] == b[1]: one scale per 32
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        o.q[0] = M::load16(p.rec + 48 + 16 * p.slot);
        o.q[1].w[0] = M::load4(p.rec + 16 + 4 * p.slot);
        kquant_scale_min<M>(p.rec, p.slot, o.a[0], o.b[0]);
        o.a[1] = o.a[0];
        o.b[1] = o.b[0];
    }
    KINFER_HOST_DEVICE static void load_pair(const uint8_t* row, int n_records, int g, G& o, G& o4) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        o.q[0] = load16(p.rec + 48 + 16 * p.slot);
        o4.q[0] = load16(p.rec + 112 + 16 * p.slot);
        o.q[1].w[0] = load4(p.rec + 16 + 4 * p.slot);
        o4.q[1].w[0] = load4(p.rec + 32 + 4 * p.slot);
        const Words4 meta = load16(p.rec);
        kquant_decode(meta, p.slot, o.a[0], o.b[0]);
        kquant_decode(meta, p.slot + 4, o4.a[0], o4.b[0]);
        o.a[1] = o.a[0], o.b[1] = o.b[0], o4.a[1] = o4.a[0], o4.b[1] = o4.b[0];
    }
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load_quad(const uint8_t* row, int n_records, int g, int q, QuadWord& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        const uint32_t w = M::load4(p.rec + 48 + 16 * p.slot + 4 * q),
                       bits = M::load4(p.rec + 16 + 4 * p.slot);
        o.c[0] = nibbles_of(w, 0) | extra_bit(bits, q, 0, 4);
        o.c[1] = nibbles_of(w, 1) | extra_bit(bits, q, 1, 4);
        kquant_scale_min<M>(p.rec, p.slot, o.a[0], o.b[0]);
        o.a[1] = o.a[0];
        o.b[1] = o.b[0];
    }
    static constexpr int kQuadStep = 4;
    struct QuadRaw {
        uint32_t w[4];
        Words4 bits, meta;
        float d, dmin;  // set by quad_prepare
    };
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load_quads_at(const RowPos& p, int q, QuadRaw& o) {
        o.meta = M::load16(p.rec);
        o.bits = M::load16(p.rec + 16 + 4 * p.slot);  // the 4 groups' extra-bit words
        KINFER_UNROLL
        for (int j = 0; j < 4; ++j) o.w[j] = M::load4(p.rec + 48 + 16 * (p.slot + j) + 4 * q);
    }
    KINFER_HOST_DEVICE static void quad_prepare(QuadRaw& r) { LayoutQ4_K::quad_prepare_meta(r); }
    KINFER_HOST_DEVICE static void quad_codes(const QuadRaw& r, int j, int q, uint32_t (&c)[2]) {
        c[0] = nibbles_of(r.w[j], 0) | extra_bit(r.bits.w[j], q, 0, 4);
        c[1] = nibbles_of(r.w[j], 1) | extra_bit(r.bits.w[j], q, 1, 4);
    }
    KINFER_HOST_DEVICE static void quad_scales(const QuadRaw& r, int j, int slot, float (&a)[2],
                                               float (&b)[2]) {
        kquant_decode_prepared(r.meta, r.d, r.dmin, slot + j, a[0], b[0]);
        a[1] = a[0], b[1] = b[0];
    }
    static constexpr int kCodeBase = 128;
    KINFER_HOST_DEVICE static void codes(const G& o, int h, uint32_t c[4]) { LayoutQ5_0::codes(o, h, c); }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) { LayoutQ5_0::values(o, h, v); }
};

// Q6_K: [int8 scales 16][low nibbles 8 x 16][high 2 bits 8 x 8]; tail: d. w = d * sc * (code - 32).
struct LayoutQ6_K {
    static constexpr int kRecord = 208, kTail = 2, kWords = 2;
    static constexpr bool kHasOffset = true;
    static constexpr float kOffsetPerScale = -160.0f;  // b = -160 a (quad_scales): w = a * (code - 32)
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        o.q[0] = M::load16(p.rec + 16 + 16 * p.slot);
        M::load8(p.rec + 144 + 8 * p.slot, o.q[1].w[0], o.q[1].w[1]);
        const uint16_t s = M::load2(p.rec + 2 * p.slot);
        const float d = half_to_float(M::load2(p.tail));
        for (int h = 0; h < 2; ++h) {
            o.a[h] = d * static_cast<float>(static_cast<int8_t>((s >> (8 * h)) & 0xff));
            o.b[h] = kOffsetPerScale * o.a[h];
        }
    }
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load_quad(const uint8_t* row, int n_records, int g, int q, QuadWord& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        const uint32_t w = M::load4(p.rec + 16 + 16 * p.slot + 4 * q);
        uint32_t hi0, hi1;
        M::load8(p.rec + 144 + 8 * p.slot, hi0, hi1);
        o.c[0] = nibbles_of(w, 0) | two_bits(hi0, q, 4);
        o.c[1] = nibbles_of(w, 1) | two_bits(hi1, q, 4);
        const uint16_t s = M::load2(p.rec + 2 * p.slot);
        const float d = half_to_float(M::load2(p.tail));
        for (int h = 0; h < 2; ++h) {
            o.a[h] = d * static_cast<float>(static_cast<int8_t>((s >> (8 * h)) & 0xff));
            o.b[h] = kOffsetPerScale * o.a[h];
        }
    }
    static constexpr int kQuadStep = 2;
    struct QuadRaw {
        uint32_t lo[2], sc;
        Words4 hi;  // word 2 j + h: the high bits of group j's sub-group h
        float d;
    };
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load_quads_at(const RowPos& p, int q, QuadRaw& o) {
        o.hi = M::load16(p.rec + 144 + 8 * p.slot);
        o.sc = M::load4(p.rec + 2 * p.slot);  // byte 2 j + h: the scale of group j's sub-group h
        o.d = half_to_float(M::load2(p.tail));
        KINFER_UNROLL
        for (int j = 0; j < 2; ++j) o.lo[j] = M::load4(p.rec + 16 + 16 * (p.slot + j) + 4 * q);
    }
    KINFER_HOST_DEVICE static void quad_prepare(QuadRaw&) {}
    KINFER_HOST_DEVICE static void quad_codes(const QuadRaw& r, int j, int q, uint32_t (&c)[2]) {
        KINFER_UNROLL
        for (int h = 0; h < 2; ++h) c[h] = nibbles_of(r.lo[j], h) | two_bits(r.hi.w[2 * j + h], q, 4);
    }
    KINFER_HOST_DEVICE static void quad_scales(const QuadRaw& r, int j, int, float (&a)[2], float (&b)[2]) {
        KINFER_UNROLL
        for (int h = 0; h < 2; ++h) {
            a[h] = r.d * static_cast<float>(static_cast<int8_t>((r.sc >> (8 * (2 * j + h))) & 0xff));
            b[h] = kOffsetPerScale * a[h];
        }
    }
    static constexpr int kCodeBase = 128;
    KINFER_HOST_DEVICE static void codes(const G& o, int h, uint32_t c[4]) {
        KINFER_UNROLL
        for (int k = 0; k < 4; ++k) c[k] = nibbles(o.q[0], k, h) | two_bits(o.q[1].w[h], k, 4);
    }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) { values_of<LayoutQ6_K>(o, h, v); }
};

// Float types: records of 256 values in element order; a = 1, b = 0.
struct LayoutF32 {
    static constexpr int kRecord = 1024, kTail = 0, kWords = 8;
    static constexpr bool kHasOffset = false;
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        for (int i = 0; i < kWords; ++i) o.q[i] = M::load16(p.rec + 128 * p.slot + 16 * i);
        o.a[0] = o.a[1] = 1.0f;
        o.b[0] = o.b[1] = 0.0f;
    }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) {
        for (int i = 0; i < 16; ++i) v[i] = bits_to_float(o.q[4 * h + i / 4].w[i % 4]);
    }
};

template <bool kBf16>
struct LayoutHalf {
    static constexpr int kRecord = 512, kTail = 0, kWords = 4;
    static constexpr bool kHasOffset = false;
    using G = Group<kWords>;
    template <class M = GlobalLoads>
    KINFER_HOST_DEVICE static void load(const uint8_t* row, int n_records, int g, G& o) {
        const RowPos p = row_pos<kRecord, kTail>(row, n_records, g);
        for (int i = 0; i < kWords; ++i) o.q[i] = M::load16(p.rec + 64 * p.slot + 16 * i);
        o.a[0] = o.a[1] = 1.0f;
        o.b[0] = o.b[1] = 0.0f;
    }
    KINFER_HOST_DEVICE static void values(const G& o, int h, float v[16]) {
        for (int i = 0; i < 16; ++i) {
            const uint32_t w = o.q[2 * h + i / 8].w[(i % 8) / 2];
            const uint16_t bits = static_cast<uint16_t>(i % 2 ? w >> 16 : w & 0xffff);
            v[i] = kBf16 ? bf16_to_float(bits) : half_to_float(bits);
        }
    }
};
using LayoutF16 = LayoutHalf<false>;
using LayoutBF16 = LayoutHalf<true>;

// Bytes of one repacked row of `cols` elements (a multiple of 32): the records, the tail plane, padding
// to 16.
template <class L>
constexpr int64_t row_bytes_of(int64_t cols) {
    const int64_t n_records = (cols + kRecordElems - 1) / kRecordElems;
    return (n_records * (L::kRecord + L::kTail) + 15) / 16 * 16;
}

// Calls f(Layout{}) for the layout of `type`; returns false when the type has no device layout.
template <class F>
bool with_layout(GgmlType type, F&& f) {
    switch (type) {
        case GgmlType::Q4_0:
            f(LayoutQ4_0{});
            return true;
        case GgmlType::Q4_1:
            f(LayoutQ4_1{});
            return true;
        case GgmlType::Q5_0:
            f(LayoutQ5_0{});
            return true;
        case GgmlType::Q5_1:
            f(LayoutQ5_1{});
            return true;
        case GgmlType::Q8_0:
            f(LayoutQ8_0{});
            return true;
        case GgmlType::Q2_K:
            f(LayoutQ2_K{});
            return true;
        case GgmlType::Q3_K:
            f(LayoutQ3_K{});
            return true;
        case GgmlType::Q4_K:
            f(LayoutQ4_K{});
            return true;
        case GgmlType::Q5_K:
            f(LayoutQ5_K{});
            return true;
        case GgmlType::Q6_K:
            f(LayoutQ6_K{});
            return true;
        case GgmlType::F32:
            f(LayoutF32{});
            return true;
        case GgmlType::F16:
            f(LayoutF16{});
            return true;
        case GgmlType::BF16:
            f(LayoutBF16{});
            return true;
        default:
            return false;
    }
}

}  // namespace kinfer::cuda::repacked
