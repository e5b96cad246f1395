// The two-int8-term decode path for Q4_K and Q6_K with the group scales applied in int32 (AVX-512 VNNI on
// 256-bit vectors). Same precision as decode_i8x2_avx512.cpp, about a third fewer vector instructions per
// block, since what was float work per group of weights is now one vpdpwssd:
//
// x of each 256-element block is rounded to c * step, c = round(x / step), step = max|x| / 127^2, and c is
// split as 127 q1 + q2 with q1 = floor(c / 127) in -127..127 and q2 in 0..126 (both int8, q2 never
// negative). Per 4-element int32 lane, vpdpbusd gives hi = w . q1 and lo = w . q2 (|hi|, lo < 2^15 for codes
// w < 64), packed as P = hi << 16 + lo: since lo >= 0 the high half of P is exactly hi. One vpdpwssd then
// adds P's halves times the int16 pair (127 s, s) of the group scale s: lane += s * (127 hi + lo), exact in
// int32. One int->float conversion per block (per half block for Q6_K, whose larger codes and scales could
// reach 2^31 over a whole block); mins and offsets multiply exact sums of c, as in the other file.
//
// Vectors are 256 bits: a group of 32 (Q4_K) is one vector, its scale pair one lane of a register.
// Batches of 4 and 8 tokens take 512-bit int16 products instead (q4k_slices, q6k_slices), with the same sums.
// This file alone is built with -mavx512f/bw/vl/vnni and only runs where detected_isa() allows it.
#include "kernels/cpu/decode_table.hpp"

#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 on _mm512_undefined in the intrinsics
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels/blocks.hpp"
#include "kernels/cpu/decode_i8x2_shared.hpp"

namespace kinfer::cpu {
namespace {

using i8x2::gf2p8affine;
using i8x2::hsum;
using i8x2::prefetch_ahead;
using i8x2::prefetch_l2;
using int_common::q4k_mins;
using int_common::q4k_scales_mins;

// ---- prepared activation (kActI8x2KP), per token, contiguous; regions kSkew bytes apart so that
// power-of-two row lengths do not put every region at the same L1 set:
//   int8 q1[n_in] | int8 q2[n_in] | float step[nb] | float s16[nb][16] | float s32[nb][8] | int16 ce[n_in]
// s16[g] = step * sum of c = 127 q1 + q2 over group g of 16, s32 over groups of 32; c itself is for the
// batches (the slices below), as ce: per pair of groups (64 elements) the even elements of the first group,
// of the second, then the odd ones of each. ----
// Every region starts on a 64-byte boundary (and so every token, the buffer being aligned): with 14336
// inputs the scale regions' 5 600 bytes left ce and every other token 32 bytes off, and each of the batches'
// 512-bit loads split two cache lines (kinfer_bench 4096x14336, 8 tokens: Q4_K 4.75 ms, Q6_K 6.61, against
// 4.40 and 5.93 for 14336x4096's same number of weights).
constexpr size_t kSkew = 64;

constexpr size_t round64(size_t n) {
    return (n + 63) / 64 * 64;
}

size_t ce_offset(int64_t n_in) {
    const size_t nb = size_t(n_in / 256);
    return round64(2 * (size_t(n_in) + kSkew) + nb * 4 * (1 + 16 + 8)) + kSkew;
}

size_t token_bytes(int64_t n_in) {
    return round64(ce_offset(n_in) + 2 * size_t(n_in) + kSkew);
}

size_t act_bytes(int64_t n_in, int64_t n_tokens) {
    return token_bytes(n_in) * size_t(n_tokens);
}

struct Tok {
    const int8_t *q1, *q2;
    const float *step, *s16, *s32;
    const int16_t* ce;
};

Tok token(const void* act, int64_t n_in, int64_t t) {
    const auto* base = static_cast<const uint8_t*>(act) + size_t(t) * token_bytes(n_in);
    const int64_t nb = n_in / 256;
    const auto* q1 = reinterpret_cast<const int8_t*>(base);
    const auto* step = reinterpret_cast<const float*>(base + 2 * (size_t(n_in) + kSkew));
    const auto* ce = reinterpret_cast<const int16_t*>(base + ce_offset(n_in));
    return Tok{q1, q1 + n_in + kSkew, step, step + nb, step + nb + 16 * nb, ce};
}

void prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    const int64_t nb = n_in / 256;
    for (int64_t t = 0; t < n_tokens; ++t) {
        const Tok tok = token(act, n_in, t);
        auto* q1 = const_cast<int8_t*>(tok.q1);
        auto* q2 = const_cast<int8_t*>(tok.q2);
        auto* step = const_cast<float*>(tok.step);
        auto* s16 = const_cast<float*>(tok.s16);
        auto* s32 = const_cast<float*>(tok.s32);
        auto* ce = const_cast<int16_t*>(tok.ce);
        // ce's order: of the 16-element pieces 2 g and 2 g + 1 of group g, the even elements, then the odd;
        // written only for calls of 4 tokens or more, the only ones whose rows read it (the slices)
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        for (int64_t b = 0; b < nb; ++b) {
            const float* xb = x + t * n_in + b * 256;
            __m512 m = _mm512_setzero_ps();
            for (int i = 0; i < 256; i += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(xb + i)));
            const float amax = _mm512_reduce_max_ps(m);
            const float id = amax > 0 ? 16129.0f / amax : 0.0f;
            step[b] = amax > 0 ? amax / 16129.0f : 0.0f;
            int32_t sum16[16];
            __m512i cs[16];
            for (int g = 0; g < 16; ++g) {
                const __m512i c = i8x2::split127(_mm512_loadu_ps(xb + 16 * g), id, q1 + b * 256 + 16 * g,
                                                 q2 + b * 256 + 16 * g);
                sum16[g] = _mm512_reduce_add_epi32(c);
                cs[g] = c;
            }
            for (int i = 0; i < 4 && n_tokens >= 4; ++i) {  // groups 2 i, 2 i + 1: pieces 4 i .. 4 i + 3
                int16_t* o = ce + b * 256 + 64 * i;
                const auto put = [&](int at, __m512i v) {
                    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + at), _mm512_cvtepi32_epi16(v));
                };
                put(0, _mm512_permutex2var_epi32(cs[4 * i], even, cs[4 * i + 1]));
                put(16, _mm512_permutex2var_epi32(cs[4 * i + 2], even, cs[4 * i + 3]));
                put(32, _mm512_permutex2var_epi32(cs[4 * i], odd, cs[4 * i + 1]));
                put(48, _mm512_permutex2var_epi32(cs[4 * i + 2], odd, cs[4 * i + 3]));
            }
            for (int g = 0; g < 16; ++g) s16[16 * b + g] = step[b] * float(sum16[g]);
            for (int g = 0; g < 8; ++g) s32[8 * b + g] = step[b] * float(sum16[2 * g] + sum16[2 * g + 1]);
        }
    }
}

// ---- shared pieces ----

// hi = w . q1 and lo = w . q2 per lane, packed as hi << 16 + lo (lo >= 0, both below 2^15).
inline __m256i packed_dot(__m256i w, const int8_t* q1, const int8_t* q2) {
    const __m256i hi = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w,
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q1)));
    return _mm256_dpbusd_epi32(_mm256_slli_epi32(hi, 16), w,
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q2)));
}

// The int16 pairs (s, 127 s) of signed group scales s, one int32 per group.
inline __m512i scale_pairs(__m512i s) {
    // 127 s << 16 by one vpmulld (the constant hidden from the optimiser, which would spend three shifts and
    // a subtraction on it), then s's low half or-ed in
    __m512i k = _mm512_set1_epi32(127 << 16);
    asm("" : "+v"(k));
    return _mm512_ternarylogic_epi32(_mm512_mullo_epi32(s, k), s, _mm512_set1_epi32(0xFFFF), 0xF8);
}

// ---- Q4_K: block = d, dmin (fp16), 12 bytes of 6-bit scales and mins, 128 bytes of nibbles; bytes
// 32 i .. 32 i + 31 hold group 2 i in their low nibbles and group 2 i + 1 in their high ones. ----
// The eight groups' scale pairs (s, 127 s), one int32 lane each: scales are 0..63, so s * (127 << 16 | 1) has
// no borrow between the halves.
inline __m256i q4k_pairs(uint64_t sc) {
    // the constant hidden from the optimiser, which would otherwise spend four shifts and adds on it
    __m256i k = _mm256_set1_epi32(0x007F0001);
    asm("" : "+x"(k));
    return _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(sc))), k);
}

// One block of a row, unpacked: the eight groups' codes, their scale pairs, the mins (times dmin) and d.
struct Q4KBlock {
    __m256i w[8];
    __m256i pairs;  // lane g: group g's scale pair
    __m256 mins;
    float d;

    void load(const uint8_t* p) {
        prefetch_ahead(p, sizeof(BlockQ4_K));
        const auto* blk = reinterpret_cast<const BlockQ4_K*>(p);
        uint64_t sc, mn;
        q4k_scales_mins(blk->scales, sc, mn);
        pairs = q4k_pairs(sc);
        mins = q4k_mins(blk, mn, d);
        const __m256i low = _mm256_set1_epi8(0x0F);
        for (int i = 0; i < 4; ++i) {
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qs + 32 * i));
            w[2 * i] = _mm256_and_si256(q, low);
            w[2 * i + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
        }
    }
};

// NR rows x TT tokens. Each (row, token) sums its groups in int32 chains (two when NR * TT <= 2, so that
// the chain's latency hides), in the same order whatever NR and TT are, so a token's result does not depend
// on which rows or tokens share the call. NR = 1 in use: two rows sharing each activation load measured
// 20% slower (one thread, 4096 x 4096 in cache and 16384 x 4096 from DRAM).
template <int NR, int TT>
void q4k_tile(const uint8_t* row0, size_t row_bytes, int64_t nb, const Tok* tok, float* out,
              int64_t out_stride) {
    constexpr int NA = NR * TT <= 2 ? 2 : 1;
    __m256 acc[NR][TT], mins[NR][TT];
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < TT; ++t) acc[r][t] = mins[r][t] = _mm256_setzero_ps();
    Q4KBlock blk[NR];
    for (int64_t b = 0; b < nb; ++b) {
        for (int r = 0; r < NR; ++r)
            blk[r].load(row0 + size_t(r) * row_bytes + size_t(b) * sizeof(BlockQ4_K));
        const int64_t e = b * 256;
        __m256i ia[NR][TT][NA];
        for (int r = 0; r < NR; ++r)
            for (int t = 0; t < TT; ++t)
                for (int a = 0; a < NA; ++a) ia[r][t][a] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = 0; g < 8; ++g) {
#pragma GCC unroll 8
            for (int t = 0; t < TT; ++t) {
                const __m256i q1 =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tok[t].q1 + e + 32 * g));
                const __m256i q2 =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tok[t].q2 + e + 32 * g));
#pragma GCC unroll 2
                for (int r = 0; r < NR; ++r) {
                    const __m256i hi = _mm256_dpbusd_epi32(_mm256_setzero_si256(), blk[r].w[g], q1);
                    const __m256i pk = _mm256_dpbusd_epi32(_mm256_slli_epi32(hi, 16), blk[r].w[g], q2);
                    __m256i& a = ia[r][t][g % NA];
                    // the pair from a register: a broadcast from memory would read a just-stored vector
                    // (measured 8% slower: store-to-load forwarding)
                    a = _mm256_dpwssd_epi32(a, pk,
                                            _mm256_permutevar8x32_epi32(blk[r].pairs, _mm256_set1_epi32(g)));
                }
            }
        }
        for (int r = 0; r < NR; ++r)
            for (int t = 0; t < TT; ++t) {
                __m256i sum = ia[r][t][0];
                if constexpr (NA == 2) sum = _mm256_add_epi32(sum, ia[r][t][1]);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum),
                                            _mm256_set1_ps(blk[r].d * tok[t].step[b]), acc[r][t]);
                mins[r][t] = _mm256_fmadd_ps(blk[r].mins, _mm256_loadu_ps(tok[t].s32 + 8 * b), mins[r][t]);
            }
    }
    for (int r = 0; r < NR; ++r)
        for (int t = 0; t < TT; ++t) out[t * out_stride + r] = hsum(acc[r][t]) - hsum(mins[r][t]);
}

// One row, one token, two groups per 512-bit vector: the 32 code bytes of groups 2 i and 2 i + 1 (low and
// high nibbles) broadcast to both halves and shifted per half, against the two groups' 64 activation bytes,
// so a pair of groups costs the three VNNI instructions one group costs in q4k_tile. Lane l + 8 (group 2 i +
// 1) is added to lane l (group 2 i) before the conversion: the same exact int32 sums, then the same float
// operations in the same order, so the bits are q4k_tile's. KB blocks per iteration (their instructions
// interleaved), each block's float steps still in block order. One thread, this host (Zen 4, 69 GB/s):
// kinfer_bench Decode/q4_K/avx512 4096x4096 25.2-25.7 -> 28.8-30.1 GB/s, 14336x4096 24.7 -> 28.7-28.9
// (KB = 1: 29.2 / 28.1-28.6); Q4_K_M tg64 at 2 threads 11.1-11.2 -> 12.0-12.4 t/s. kGfni (CPUs with GFNI):
// the nibbles by one vgf2p8affineqb instead of a variable shift and a mask (7 -> 6 vector instructions per
// 64 weights, 3 of them VNNI: the loop is bound by vector issue, not by the VNNI pipe): kinfer_bench
// Decode/q4_K/avx512 one token, one thread, 3 alternating runs, 14336x4096 901-932 -> 960-965 tok/s,
// 4096x4096 3 230-3 404 -> 3 491-3 639; the same bits. The scale pairs by one vpmulld (q4k_pairs) and each
// block's chain started by vpmaddwd (no zeroed register copied), on this Zen 5 host: 14336x4096 932-961 ->
// 985-999 tok/s, 4096x4096 3 366-3 556 -> 3 718-3 802.
template <int KB, bool kGfni>
void q4k_one512(const uint8_t* row, size_t, int64_t nb, const Tok* tok, float* out, int64_t) {
    const Tok& t = tok[0];
    __m256 acc = _mm256_setzero_ps(), mins = _mm256_setzero_ps();
    const __m512i shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    const __m512i low = _mm512_set1_epi8(0x0F);
    // kGfni: the low nibbles in the low 256 bits and the high ones in the high 256 by one affine byte map
    const __m512i nibbles =
        _mm512_inserti64x4(_mm512_set1_epi64(i8x2::kLowNibble), _mm256_set1_epi64x(i8x2::kHighNibble), 1);
    const __m512i pick[4] = {_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                             _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3),
                             _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5),
                             _mm512_setr_epi32(6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7)};
    const auto block_sum = [&](const BlockQ4_K* blk, int64_t e, __m512i pairs) {
        __m512i ia;
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {
            const __m512i q = _mm512_broadcast_i64x4(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qs + 32 * i)));
            __m512i w;
            if constexpr (kGfni)
                w = gf2p8affine(q, nibbles);
            else
                w = _mm512_and_si512(_mm512_srlv_epi16(q, shift), low);
            const __m512i hi =
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_loadu_si512(t.q1 + e + 64 * i));
            const __m512i pk =
                _mm512_dpbusd_epi32(_mm512_slli_epi32(hi, 16), w, _mm512_loadu_si512(t.q2 + e + 64 * i));
            const __m512i sp = _mm512_permutexvar_epi32(pick[i], pairs);
            // the first pair by vpmaddwd (no zeroed accumulator to copy), the same integers
            ia = i == 0 ? _mm512_madd_epi16(pk, sp) : _mm512_dpwssd_epi32(ia, pk, sp);
        }
        return _mm256_add_epi32(_mm512_castsi512_si256(ia), _mm512_extracti64x4_epi64(ia, 1));
    };
    // Block b's integer sums, its mins times dmin, and d.
    const auto block = [&](int64_t b, __m256i& sum, __m256& bmins, float& d) {
        const uint8_t* p = row + size_t(b) * sizeof(BlockQ4_K);
        prefetch_ahead(p, sizeof(BlockQ4_K));
        const auto* blk = reinterpret_cast<const BlockQ4_K*>(p);
        uint64_t sc, mn;
        q4k_scales_mins(blk->scales, sc, mn);
        bmins = q4k_mins(blk, mn, d);
        sum = block_sum(blk, b * 256, _mm512_castsi256_si512(q4k_pairs(sc)));
    };
    const auto add = [&](int64_t b, __m256i sum, __m256 bmins, float d) {
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d * t.step[b]), acc);
        mins = _mm256_fmadd_ps(bmins, _mm256_loadu_ps(t.s32 + 8 * b), mins);
    };
    int64_t b = 0;
    for (; b + KB <= nb; b += KB) {
        __m256i sum[KB];
        __m256 bmins[KB];
        float d[KB];
#pragma GCC unroll 2
        for (int k = 0; k < KB; ++k) block(b + k, sum[k], bmins[k], d[k]);
        for (int k = 0; k < KB; ++k) add(b + k, sum[k], bmins[k], d[k]);
    }
    for (; b < nb; ++b) {  // a last odd block
        __m256i sum;
        __m256 bmins;
        float d;
        block(b, sum, bmins, d);
        add(b, sum, bmins, d);
    }
    out[0] = hsum(acc) - hsum(mins);
}

// ---- Q6_K: block = ql[128], qh[64], 16 int8 group scales (groups of 16), d (fp16); element
// 128 h + 32 i + l (i < 4, l < 32) has its low four bits in ql[64 h + 32 (i % 2) + l] (high nibble for i >=
// 2) and its top two at bits 2 i of qh[32 h + l]; codes are q - 32. With codes < 64 and scales >= -128, one
// half block's lanes stay below 2^31: 4 * (127 * 32004 + 31752) * 128 < 2^31. ----
// A Q6_K block's scale pairs, d, and its code offset per group (32 d s: codes are q - 32), prefetching ahead.
struct Q6KHead {
    const BlockQ6_K* blk;
    __m512i pairs;
    float d;
    __m512 off;
    explicit Q6KHead(const uint8_t* p) : blk(reinterpret_cast<const BlockQ6_K*>(p)) {
        prefetch_ahead(p, sizeof(BlockQ6_K));
        const __m512i sc =
            _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales)));
        pairs = scale_pairs(sc);
        d = _cvtsh_ss(blk->d);
        off = _mm512_mul_ps(_mm512_cvtepi32_ps(sc), _mm512_set1_ps(32.0f * d));
    }
};

template <int NR, int TT>
void q6k_tile(const uint8_t* row, size_t, int64_t nb, const Tok* tok, float* out, int64_t out_stride) {
    static_assert(NR == 1);
    __m256 acc[TT];
    __m512 offs[TT];
    for (int t = 0; t < TT; ++t) {
        acc[t] = _mm256_setzero_ps();
        offs[t] = _mm512_setzero_ps();
    }
    const __m256i low = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
    // lanes 0..3 take group 2 i of the half, lanes 4..7 group 2 i + 1
    const __m256i pick[4] = {
        _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3),
        _mm256_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5), _mm256_setr_epi32(6, 6, 6, 6, 7, 7, 7, 7)};
    for (int64_t b = 0; b < nb; ++b) {
        const Q6KHead h6(row + size_t(b) * sizeof(BlockQ6_K));
        const int64_t e = b * 256;
        __m256 f[TT];
        for (int t = 0; t < TT; ++t) f[t] = _mm256_setzero_ps();
        for (int h = 0; h < 2; ++h) {
            const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h6.blk->ql + 64 * h));
            const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h6.blk->ql + 64 * h + 32));
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h6.blk->qh + 32 * h));
            // (x & 0x0F) | y with y already masked to 0x30: ternary logic 0xE4 = "c ? a : b" with c = 0x0F
            auto join = [&](__m256i x, __m256i y) { return _mm256_ternarylogic_epi32(x, y, low, 0xE4); };
            __m256i w[4];
            w[0] = join(a, _mm256_and_si256(_mm256_slli_epi16(q, 4), top));
            w[1] = join(c, _mm256_and_si256(_mm256_slli_epi16(q, 2), top));
            w[2] = join(_mm256_srli_epi16(a, 4), _mm256_and_si256(q, top));
            w[3] = join(_mm256_srli_epi16(c, 4), _mm256_and_si256(_mm256_srli_epi16(q, 2), top));
            const __m256i half_pairs =
                h == 0 ? _mm512_castsi512_si256(h6.pairs) : _mm512_extracti64x4_epi64(h6.pairs, 1);
            const int64_t eh = e + 128 * h;
            __m256i ia[TT];
            for (int t = 0; t < TT; ++t) ia[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int i = 0; i < 4; ++i) {
                const __m256i sp = _mm256_permutevar8x32_epi32(half_pairs, pick[i]);
#pragma GCC unroll 8
                for (int t = 0; t < TT; ++t)
                    ia[t] = _mm256_dpwssd_epi32(
                        ia[t], packed_dot(w[i], tok[t].q1 + eh + 32 * i, tok[t].q2 + eh + 32 * i), sp);
            }
            for (int t = 0; t < TT; ++t) f[t] = _mm256_add_ps(f[t], _mm256_cvtepi32_ps(ia[t]));
        }
        for (int t = 0; t < TT; ++t) {
            acc[t] = _mm256_fmadd_ps(f[t], _mm256_set1_ps(h6.d * tok[t].step[b]), acc[t]);
            offs[t] = _mm512_fmadd_ps(h6.off, _mm512_loadu_ps(tok[t].s16 + 16 * b), offs[t]);
        }
    }
    for (int t = 0; t < TT; ++t) out[t * out_stride] = hsum(acc[t]) - _mm512_reduce_add_ps(offs[t]);
}

// One row, one token on 512-bit vectors: two of q6k_tile's 32-element vectors in one (the half block's ql
// bytes as they lie, qh broadcast and shifted per half), so a half block takes two packed products and two
// vpdpwssd where q6k_tile takes four of each. The halves of the lanes are added before the conversion: the
// same exact int32 per half block, the same float operations, the bits of q6k_tile. One thread, this host:
// kinfer_bench Decode/q6_K/avx512 4096x4096 29.0-29.8 -> 38.1-39.1 GB/s, 14336x4096 28.1 -> 33.4-33.6.
void q6k_one512(const uint8_t* row, size_t, int64_t nb, const Tok* tok, float* out, int64_t) {
    const Tok& t = tok[0];
    __m256 acc = _mm256_setzero_ps();
    __m512 offs = _mm512_setzero_ps();
    const __m512i low = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i pick[2] = {_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                             _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7)};
    for (int64_t b = 0; b < nb; ++b) {
        const Q6KHead h6(row + size_t(b) * sizeof(BlockQ6_K));
        const int64_t e = b * 256;
        __m256 f = _mm256_setzero_ps();
        for (int h = 0; h < 2; ++h) {
            const __m512i ac = _mm512_loadu_si512(h6.blk->ql + 64 * h);  // q6k_tile's a | c
            const __m512i q = _mm512_broadcast_i64x4(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h6.blk->qh + 32 * h)));
            // (x & 0x0F) | y with y masked to 0x30, as in q6k_tile
            const auto join = [&](__m512i x, __m512i y) {
                return _mm512_ternarylogic_epi32(x, y, low, 0xE4);
            };
            const __m512i w01 = join(ac, _mm512_and_si512(_mm512_sllv_epi16(q, shl), top));
            const __m512i w23 =
                join(_mm512_srli_epi16(ac, 4), _mm512_and_si512(_mm512_srlv_epi16(q, shr), top));
            const __m512i half_pairs = _mm512_castsi256_si512(
                h == 0 ? _mm512_castsi512_si256(h6.pairs) : _mm512_extracti64x4_epi64(h6.pairs, 1));
            const int64_t eh = e + 128 * h;
            __m512i ia;
#pragma GCC unroll 2
            for (int j = 0; j < 2; ++j) {
                const __m512i w = j == 0 ? w01 : w23;
                const __m512i hi =
                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_loadu_si512(t.q1 + eh + 64 * j));
                const __m512i pk =
                    _mm512_dpbusd_epi32(_mm512_slli_epi32(hi, 16), w, _mm512_loadu_si512(t.q2 + eh + 64 * j));
                const __m512i sp = _mm512_permutexvar_epi32(pick[j], half_pairs);
                ia =
                    j == 0 ? _mm512_madd_epi16(pk, sp) : _mm512_dpwssd_epi32(ia, pk, sp);  // as in q4k_one512
            }
            const __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(ia), _mm512_extracti64x4_epi64(ia, 1));
            f = _mm256_add_ps(f, _mm256_cvtepi32_ps(s));
        }
        acc = _mm256_fmadd_ps(f, _mm256_set1_ps(h6.d * t.step[b]), acc);
        offs = _mm512_fmadd_ps(h6.off, _mm512_loadu_ps(t.s16 + 16 * b), offs);
    }
    out[0] = hsum(acc) - _mm512_reduce_add_ps(offs);
}

// ---- Batches (TT >= 4 tokens): each code times its group scale as int16 (|q s| <= 63 * 128), made once per
// block for all TT tokens, against c = 127 q1 + q2 stored as int16: one vpdpwssd per 32 weights and token,
// where the packed tiles spend three VNNI instructions (the VNNI pipes bound both). The two 256-bit halves
// added (see Q4KScaled, Q6KScaled) are lane j of the packed tiles' sum, the same exact int32
// (Q4_K: at most 16 products of 15 * 63 * 16129 per lane; Q6_K, per half block: 16 of 63 * 128 * 16129 < 2^31
// / 16), converted and scaled by the same float operations, so a token gets the bits it gets alone (the
// engine's batches rely on it; tests/cpu_decode_test.cpp checks). ----

inline __m512 two_halves(__m256 lo, __m256 hi) {
    return _mm512_insertf32x8(_mm512_zextps256_ps512(lo), hi, 1);
}

// The sum of each 8-lane half (lanes 0..7 and 8..15), exactly as hsum adds a ymm's lanes.
inline float hsum_lo(__m512 v) {
    return hsum(_mm512_castps512_ps256(v));
}
inline float hsum_hi(__m512 v) {
    return hsum(_mm512_extractf32x8_ps(v, 1));
}

// Q4_K's codes times their group scale as int16 by vpmaddubsw against the scale bytes in every other byte:
// the even elements of a pair of groups in one vector, the odd ones in another, the order of ce. Lane m of
// the two vpdpwssd is then elements 4 m .. 4 m + 3 of the first group (m < 8) or of the second, and the two
// halves added are the packed tiles' lane m. Per block 4 affine byte maps or shift-and-masks, a broadcast, 8
// vpshufb and 8 vpmaddubsw, where widening each group and multiplying it by its broadcast scale took 36
// instructions. kinfer_bench Decode/q4_K/avx512 8 tokens, one thread, 3 alternating runs: 4096x4096 6 603-6
// 664 -> 6 747-6 861 tok/s, 14336x4096 1 851-1 898 -> 1 889-1 930: the 64 vpdpwssd per block and 8 tokens
// bound it (two chains per token instead of one measured 3-4% slower: the accumulators no longer fit the
// registers).
template <bool kGfni>
struct Q4KScaled {
    __m512i even[4], odd[4];  // pair i: groups 2 i and 2 i + 1

    // Byte j of pattern 2 i (even) / 2 i + 1 (odd): scale byte 2 i + (j >= 32) where j is even / odd, else
    // zero (index 0x80); vpshufb reads within 128-bit lanes, each of which holds the 8 scale bytes twice.
    static const __m512i* patterns() {
        alignas(64) static const auto table = [] {
            std::array<std::array<uint8_t, 64>, 8> t{};
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 64; ++j) {
                    const uint8_t byte = uint8_t(2 * i + (j >= 32 ? 1 : 0));
                    t[2 * i][j] = j % 2 == 0 ? byte : 0x80;
                    t[2 * i + 1][j] = j % 2 == 1 ? byte : 0x80;
                }
            return t;
        }();
        return reinterpret_cast<const __m512i*>(table.data());
    }

    void load(const BlockQ4_K* blk, uint64_t sc) {
        const __m512i* pat = patterns();
        const __m512i s = _mm512_set1_epi64(int64_t(sc));
        const __m512i nibbles =
            _mm512_inserti64x4(_mm512_set1_epi64(i8x2::kLowNibble), _mm256_set1_epi64x(i8x2::kHighNibble), 1);
        const __m512i shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
        for (int i = 0; i < 4; ++i) {
            const __m512i q = _mm512_broadcast_i64x4(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qs + 32 * i)));
            __m512i w;  // group 2 i's codes, then group 2 i + 1's, as bytes
            if constexpr (kGfni)
                w = i8x2::gf2p8affine(q, nibbles);
            else
                w = _mm512_and_si512(_mm512_srlv_epi16(q, shift), _mm512_set1_epi8(0x0F));
            even[i] = _mm512_maddubs_epi16(w, _mm512_shuffle_epi8(s, _mm512_load_si512(pat + 2 * i)));
            odd[i] = _mm512_maddubs_epi16(w, _mm512_shuffle_epi8(s, _mm512_load_si512(pat + 2 * i + 1)));
        }
    }
};

// ia[i][j] for the rows i = 0, 1 (weights e_i, o_i) and the tokens tok[0], tok[1]: the sum over the K chunks
// of 64 elements at ce + at of e_i[k] . (their even elements) + o_i[k] . (the odd ones), each activation
// vector loaded once for both rows; the first pair of each chain by vpmaddwd, no zeroed accumulator to copy.
template <int K>
[[gnu::always_inline]] inline void paired_sums(const __m512i (&e0)[K], const __m512i (&o0)[K],
                                               const __m512i (&e1)[K], const __m512i (&o1)[K], const Tok* tok,
                                               int64_t at, __m512i (&ia)[2][2]) {
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k)
#pragma GCC unroll 2
        for (int j = 0; j < 2; ++j) {
            const int16_t* c = tok[j].ce + at + 64 * k;
            __m512i pe = _mm512_loadu_si512(c), po = _mm512_loadu_si512(c + 32);
            asm("" : "+v"(pe), "+v"(po));  // kept in registers for both rows, not folded into each
            ia[0][j] = _mm512_dpwssd_epi32(
                k == 0 ? _mm512_madd_epi16(e0[k], pe) : _mm512_dpwssd_epi32(ia[0][j], e0[k], pe), o0[k], po);
            ia[1][j] = _mm512_dpwssd_epi32(
                k == 0 ? _mm512_madd_epi16(e1[k], pe) : _mm512_dpwssd_epi32(ia[1][j], e1[k], pe), o1[k], po);
        }
}

// The packed tiles' lanes of two (row, token) sums: halves added, token a's in lanes 0..7, b's in 8..15.
inline __m512i fold_halves(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x44), _mm512_shuffle_i64x2(a, b, 0xEE));
}

// n_rows <= kSliceRows rows x TT tokens (TT even), in slices of kSliceBlocks blocks taken across the rows, so
// that the slice's activations (16 KiB for 8 tokens) come from L1 for every row; each (row, token) keeps its
// float accumulators in memory between slices and adds its blocks in order, as the packed tiles do. Tokens t
// and t + 1 share a zmm of accumulators (lanes 0..7 and 8..15). One thread, 8 tokens, 4096 x 4096 in cache:
// 48 ns per Q4_K block one row at a time (activations from L2), 36 with two rows per activation load, 32.5
// in slices of 8 rows x 4 blocks (2 blocks: 33.5, 8 blocks: 40, 4 rows: 34), measured before the rows' int16
// form; q4k_slices now takes the slice's rows in pairs as well.
constexpr int kSliceRows = 8, kSliceBlocks = 4;

// Rows in pairs: each activation load feeds both rows' vpdpwssd, tokens two at a time so that the two rows'
// 16 weight vectors and their 4 sums stay in registers (GCC keeps them there only with the loops below
// unrolled). kinfer_bench Decode/q4_K/avx512 8 tokens, one thread, alternating: 4096x4096 1.18 -> 1.08 ms,
// 14336x4096 4.24-4.26 -> 3.81-3.92, 4096x14336 4.13-4.16 -> 3.69-3.73 (one row at a time: an activation
// load per vpdpwssd, ~18 of the block's ~74 cycles). Same sums in the same order.
template <int TT, bool kGfni>
void q4k_slices(const uint8_t* row0, size_t row_bytes, int64_t nb, const Tok* tok, float* out,
                int64_t out_stride, int n_rows) {
    static_assert(TT % 2 == 0);
    constexpr int TP = TT / 2;
    __m512 acc[kSliceRows][TP], mins[kSliceRows][TP];
    for (int r = 0; r < kSliceRows; ++r)
        for (int t = 0; t < TP; ++t) acc[r][t] = mins[r][t] = _mm512_setzero_ps();
    const size_t group_bytes = kSliceRows * row_bytes;
    for (int64_t b0 = 0; b0 < nb; b0 += kSliceBlocks) {
        const int64_t b1 = std::min<int64_t>(nb, b0 + kSliceBlocks);
        for (int r = 0; r < n_rows; r += 2) {
            const int r2 = r + 1 < n_rows ? r + 1 : r;  // an odd last row is done twice, stored once
            const uint8_t* row[2] = {row0 + size_t(r) * row_bytes, row0 + size_t(r2) * row_bytes};
            for (int64_t b = b0; b < b1; ++b) {
                Q4KScaled<kGfni> w[2];
                __m512 bmins[2], d[2];
#pragma GCC unroll 2
                for (int i = 0; i < 2; ++i) {
                    const uint8_t* p = row[i] + size_t(b) * sizeof(BlockQ4_K);
                    prefetch_l2(p, group_bytes, sizeof(BlockQ4_K));
                    const auto* blk = reinterpret_cast<const BlockQ4_K*>(p);
                    uint64_t sc, mn;
                    q4k_scales_mins(blk->scales, sc, mn);
                    float dr;
                    const __m256 bm = q4k_mins(blk, mn, dr);
                    bmins[i] = two_halves(bm, bm);
                    d[i] = _mm512_set1_ps(dr);
                    w[i].load(blk, sc);
                }
                const int64_t e = b * 256;
#pragma GCC unroll 4
                for (int h = 0; h < TT; h += 2) {
                    __m512i ia[2][2];
                    paired_sums<4>(w[0].even, w[0].odd, w[1].even, w[1].odd, tok + h, e, ia);
                    const int t = h / 2;  // the pair's accumulators
                    const __m512 step =
                        two_halves(_mm256_set1_ps(tok[h].step[b]), _mm256_set1_ps(tok[h + 1].step[b]));
                    const __m512 s32 = two_halves(_mm256_loadu_ps(tok[h].s32 + 8 * b),
                                                  _mm256_loadu_ps(tok[h + 1].s32 + 8 * b));
#pragma GCC unroll 2
                    for (int i = 0; i < 2; ++i) {
                        const int ri = i == 0 ? r : r2;
                        acc[ri][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(fold_halves(ia[i][0], ia[i][1])),
                                                     _mm512_mul_ps(d[i], step), acc[ri][t]);
                        mins[ri][t] = _mm512_fmadd_ps(bmins[i], s32, mins[ri][t]);
                        if (r2 == r) break;
                    }
                }
            }
        }
    }
    for (int r = 0; r < n_rows; ++r)
        for (int t = 0; t < TP; ++t) {
            out[2 * t * out_stride + r] = hsum_lo(acc[r][t]) - hsum_lo(mins[r][t]);
            out[(2 * t + 1) * out_stride + r] = hsum_hi(acc[r][t]) - hsum_hi(mins[r][t]);
        }
}

// Q6_K's codes times their scale as int16 by vpmaddubsw, in ce's even/odd order, as Q4KScaled does for Q4_K:
// per 64 elements (chunk k of the block) one vector of codes in element order, against the block's 16 scale
// bytes in each 128-bit lane picked by vpshufb (lane L of chunk k is sub-group 4 k + L) into every other
// byte. Lane m of the two vpdpwssd is then elements 4 m .. 4 m + 3 of the chunk, and with both chunks of a
// half in the same sums the two 256-bit halves added are the packed tiles' lane m (elements 4 m + 32 i + d):
// the same exact int32 as q6k_tile's. Per half block 7 instructions for the codes and 8 for the scales (and
// the loads), where the joins, widening, permuting the scales and vpmullw took 25. kinfer_bench
// Decode/q6_K/avx512 8 tokens, one thread, 3 alternating runs: 4096x4096 4 966-5 110 -> 5 271-5 378 tok/s,
// 14336x4096 1 225-1 314 -> 1 353-1 380.
struct Q6KScaled {
    __m512i even[2], odd[2];  // chunk 2 h + c of half h

    static const __m512i* patterns() {  // 2 k: even bytes take sub-group 4 k + L; 2 k + 1: odd bytes
        alignas(64) static const auto table = [] {
            std::array<std::array<uint8_t, 64>, 8> t{};
            for (int k = 0; k < 4; ++k)
                for (int j = 0; j < 64; ++j) {
                    const uint8_t sub = uint8_t(4 * k + j / 16);
                    t[2 * k][j] = j % 2 == 0 ? sub : 0x80;
                    t[2 * k + 1][j] = j % 2 == 1 ? sub : 0x80;
                }
            return t;
        }();
        return reinterpret_cast<const __m512i*>(table.data());
    }

    void load(const BlockQ6_K* blk, int h, __m512i scales) {
        const __m512i* pat = patterns();
        const __m512i low = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
        // ql + 64 h: elements 0..31 / 32..63 of the half in the low nibbles of its two 32-byte rows, 64..95 /
        // 96..127 in the high ones; qh + 32 h: bits 4-5 of each at shifts 0, 2, 4, 6 (of 32..63: 2,
        // of 64..95: 4)
        const __m512i q = _mm512_loadu_si512(blk->ql + 64 * h);
        const __m512i qh =
            _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qh + 32 * h)));
        const __m512i up = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        const __m512i down = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
        const __m512i c0 =
            _mm512_ternarylogic_epi32(q, _mm512_and_si512(_mm512_sllv_epi16(qh, up), top), low, 0xE4);
        const __m512i c1 = _mm512_ternarylogic_epi32(
            _mm512_srli_epi16(q, 4), _mm512_and_si512(_mm512_srlv_epi16(qh, down), top), low, 0xE4);
        even[0] = _mm512_maddubs_epi16(c0, _mm512_shuffle_epi8(scales, _mm512_load_si512(pat + 4 * h)));
        odd[0] = _mm512_maddubs_epi16(c0, _mm512_shuffle_epi8(scales, _mm512_load_si512(pat + 4 * h + 1)));
        even[1] = _mm512_maddubs_epi16(c1, _mm512_shuffle_epi8(scales, _mm512_load_si512(pat + 4 * h + 2)));
        odd[1] = _mm512_maddubs_epi16(c1, _mm512_shuffle_epi8(scales, _mm512_load_si512(pat + 4 * h + 3)));
    }
};

// Rows in pairs, as q4k_slices: per half block the two rows' 8 weight vectors, each activation load feeding
// both, tokens two at a time; the halves' float sums (2 rows x TT / 2 pairs) stay in registers between them.
template <int TT>
void q6k_slices(const uint8_t* row0, size_t row_bytes, int64_t nb, const Tok* tok, float* out,
                int64_t out_stride, int n_rows) {
    static_assert(TT % 2 == 0);
    constexpr int TP = TT / 2;
    __m512 acc[kSliceRows][TP], offs[kSliceRows][TT];
    for (int r = 0; r < kSliceRows; ++r) {
        for (int t = 0; t < TP; ++t) acc[r][t] = _mm512_setzero_ps();
        for (int t = 0; t < TT; ++t) offs[r][t] = _mm512_setzero_ps();
    }
    const size_t group_bytes = kSliceRows * row_bytes;
    for (int64_t b0 = 0; b0 < nb; b0 += kSliceBlocks) {
        const int64_t b1 = std::min<int64_t>(nb, b0 + kSliceBlocks);
        for (int r = 0; r < n_rows; r += 2) {
            const int r2 = r + 1 < n_rows ? r + 1 : r;  // an odd last row is done twice, stored once
            const int rr[2] = {r, r2};
            for (int64_t b = b0; b < b1; ++b) {
                const BlockQ6_K* blk[2];
                __m512i scales[2];
                __m512 d[2], off[2];
#pragma GCC unroll 2
                for (int i = 0; i < 2; ++i) {
                    const uint8_t* p = row0 + size_t(rr[i]) * row_bytes + size_t(b) * sizeof(BlockQ6_K);
                    prefetch_l2(p, group_bytes, sizeof(BlockQ6_K));  // one group of rows ahead
                    blk[i] = reinterpret_cast<const BlockQ6_K*>(p);
                    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[i]->scales));
                    scales[i] = _mm512_broadcast_i32x4(sc8);
                    const float dr = _cvtsh_ss(blk[i]->d);
                    d[i] = _mm512_set1_ps(dr);
                    off[i] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc8)),
                                           _mm512_set1_ps(32.0f * dr));
                }
                const int64_t e = b * 256;
                __m512 f[2][TP];
#pragma GCC unroll 2
                for (int h = 0; h < 2; ++h) {
                    Q6KScaled w[2];
#pragma GCC unroll 2
                    for (int i = 0; i < 2; ++i) w[i].load(blk[i], h, scales[i]);
#pragma GCC unroll 4
                    for (int t = 0; t < TP; ++t) {
                        __m512i ia[2][2];
                        paired_sums<2>(w[0].even, w[0].odd, w[1].even, w[1].odd, tok + 2 * t, e + 128 * h,
                                       ia);
#pragma GCC unroll 2
                        for (int i = 0; i < 2; ++i) {
                            const __m512 v = _mm512_cvtepi32_ps(fold_halves(ia[i][0], ia[i][1]));
                            f[i][t] = h == 0 ? v : _mm512_add_ps(f[i][t], v);
                        }
                    }
                }
#pragma GCC unroll 4
                for (int t = 0; t < TP; ++t) {
                    const __m512 step = two_halves(_mm256_set1_ps(tok[2 * t].step[b]),
                                                   _mm256_set1_ps(tok[2 * t + 1].step[b]));
                    const __m512 s16a = _mm512_loadu_ps(tok[2 * t].s16 + 16 * b);
                    const __m512 s16b = _mm512_loadu_ps(tok[2 * t + 1].s16 + 16 * b);
#pragma GCC unroll 2
                    for (int i = 0; i < 2; ++i) {
                        const int ri = rr[i];
                        acc[ri][t] = _mm512_fmadd_ps(f[i][t], _mm512_mul_ps(d[i], step), acc[ri][t]);
                        offs[ri][2 * t] = _mm512_fmadd_ps(off[i], s16a, offs[ri][2 * t]);
                        offs[ri][2 * t + 1] = _mm512_fmadd_ps(off[i], s16b, offs[ri][2 * t + 1]);
                        if (r2 == r) break;
                    }
                }
            }
        }
    }
    for (int r = 0; r < n_rows; ++r)
        for (int t = 0; t < TP; ++t) {
            out[2 * t * out_stride + r] = hsum_lo(acc[r][t]) - _mm512_reduce_add_ps(offs[r][2 * t]);
            out[(2 * t + 1) * out_stride + r] = hsum_hi(acc[r][t]) - _mm512_reduce_add_ps(offs[r][2 * t + 1]);
        }
}

using Tile = void (*)(const uint8_t*, size_t, int64_t, const Tok*, float*, int64_t);
using Slices = void (*)(const uint8_t*, size_t, int64_t, const Tok*, float*, int64_t, int);

// Rows kSliceRows at a time; tokens in passes of 8 and 4 (slices), then 2 and 1 (one row at a time) over
// them, whose blocks are in L1/L2 after the first pass.
template <Tile tile1, Tile tile2, Slices slices4, Slices slices8>
void rows_in_passes(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens,
                    int64_t r0, int64_t r1, float* out, int64_t out_stride) {
    const int64_t nb = n_in / 256;
    for (int64_t r = r0; r < r1; r += kSliceRows) {
        const int n_rows = int(std::min<int64_t>(kSliceRows, r1 - r));
        const uint8_t* rows = w + size_t(r) * row_bytes;
        for (int64_t t0 = 0; t0 < n_tokens;) {
            const int64_t left = n_tokens - t0;
            const int tt = left >= 8 ? 8 : (left >= 4 ? 4 : (left >= 2 ? 2 : 1));
            Tok tok[8];
            for (int t = 0; t < tt; ++t) tok[t] = token(act, n_in, t0 + t);
            float* o = out + t0 * out_stride + r;
            if (tt >= 4) {
                (tt == 8 ? slices8 : slices4)(rows, row_bytes, nb, tok, o, out_stride, n_rows);
            } else {
                for (int k = 0; k < n_rows; ++k)
                    (tt == 2 ? tile2 : tile1)(rows + size_t(k) * row_bytes, row_bytes, nb, tok, o + k,
                                              out_stride);
            }
            t0 += tt;
        }
    }
}

}  // namespace

const MatmulPath* decode_path_i8x2p_avx512(GgmlType type, bool gfni) {
    // One token per row: q4k_one512 / q6k_one512 (KINFER_Q4K_ONE=256, read once: the 256-bit tiles, for
    // comparisons); gfni (only where the CPU has it): Q4_K's nibbles by vgf2p8affineqb
    static constexpr MatmulPath kQ4_K{
        kActI8x2KP, act_bytes, prepare,
        rows_in_passes<q4k_one512<2, false>, q4k_tile<1, 2>, q4k_slices<4, false>, q4k_slices<8, false>>, 1};
    static constexpr MatmulPath kQ4_KG{
        kActI8x2KP, act_bytes, prepare,
        rows_in_passes<q4k_one512<2, true>, q4k_tile<1, 2>, q4k_slices<4, true>, q4k_slices<8, true>>, 1};
    static constexpr MatmulPath kQ4_K256{
        kActI8x2KP, act_bytes, prepare,
        rows_in_passes<q4k_tile<1, 1>, q4k_tile<1, 2>, q4k_slices<4, false>, q4k_slices<8, false>>, 1};
    static const bool tile256 = [] {
        const char* e = std::getenv("KINFER_Q4K_ONE");
        return e && std::strcmp(e, "256") == 0;
    }();
    static constexpr MatmulPath kQ6_K{
        kActI8x2KP, act_bytes, prepare,
        rows_in_passes<q6k_one512, q6k_tile<1, 2>, q6k_slices<4>, q6k_slices<8>>, 1};
    static constexpr MatmulPath kQ6_K256{
        kActI8x2KP, act_bytes, prepare,
        rows_in_passes<q6k_tile<1, 1>, q6k_tile<1, 2>, q6k_slices<4>, q6k_slices<8>>, 1};
    switch (type) {
        case GgmlType::Q4_K:
            return tile256 ? &kQ4_K256 : (gfni ? &kQ4_KG : &kQ4_K);
        case GgmlType::Q6_K:
            return tile256 ? &kQ6_K256 : &kQ6_K;
        default:
            return nullptr;
    }
}

}  // namespace kinfer::cpu
#endif
