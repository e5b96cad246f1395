// The CPU decode path (kernels/cpu/decode_*.cpp) of every weight type at every instruction-set level this
// CPU has, against a float64 reference: weights dequantized by the scalar reference kernels, dotted in
// double. Random weights (quantized by the reference quantizers, so the scales are realistic) and random
// activations with a few large outliers, odd row counts, row sub-ranges, an output stride wider than the row
// count, several row lengths and 1..17 tokens per call.
//
// The bound: |out - exact| <= kRelTol * sum_i |w_i * x_i| per output, plus, for paths that round the
// activation (two int8 terms per 32 or 256 elements, int16 per 256), the worst case of that rounding:
// sum_i |w_i| * step_i / 2. The float path keeps the activation in float, so only float32 summation error
// is left (measured: ~1e-7 of sum|w*x|). Rounding the activation to 8 bits as llama.cpp does costs ~1e-3 of
// sum|w*x| on the same data (measured below as a sanity check of the bound's meaning).
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gguf/ggml_type.hpp"
#include "kernels/cpu/decode_table.hpp"
#include "kernels/cpu/quant_matmul.hpp"
#include "kernels/reference/type_kernels.hpp"

using namespace kinfer;
using namespace kinfer::cpu;

namespace {

constexpr double kRelTol = 2e-6;
// The int16-activation paths (k-quants on AVX2/AVX-512) round x to 16 bits per 256 elements (step
// max|x| / 32767): on top of kRelTol they may err by sum_i |w_i| * step_i / 2, the worst case of that
// rounding, 1/258 of what the same bound is for llama.cpp's 8-bit q8_K activations of the k-quants.
constexpr int64_t kInt16Block = 256;

constexpr GgmlType kTypes[] = {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_K, GgmlType::Q8_0, GgmlType::Q4_0,
                               GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                               GgmlType::F16,  GgmlType::BF16, GgmlType::F32};

struct Matrix {
    int64_t n_rows, n_in;
    size_t row_bytes;
    std::vector<uint8_t> bytes;
    std::vector<double> deq;  // the reference's dequantized weights
};

Matrix random_matrix(GgmlType type, int64_t n_rows, int64_t n_in, std::mt19937& rng) {
    const TypeTraits& t = type_traits(type);
    Matrix m{n_rows, n_in, size_t(row_bytes(t, uint64_t(n_in))), {}, {}};
    m.bytes.resize(m.row_bytes * size_t(n_rows));
    m.deq.resize(size_t(n_rows * n_in));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> row(static_cast<size_t>(n_in)), back(static_cast<size_t>(n_in));
    for (int64_t r = 0; r < n_rows; ++r) {
        const float scale = std::exp2(float(int(rng() % 9)) - 6.0f);  // rows of different magnitudes
        for (float& v : row) v = scale * normal(rng);
        uint8_t* dst = m.bytes.data() + size_t(r) * m.row_bytes;
        ref::quantize_fn(type)(row.data(), dst, n_in);
        ref::dequantize_fn(type)(dst, back.data(), n_in);
        std::copy(back.begin(), back.end(), m.deq.begin() + r * n_in);
    }
    return m;
}

std::vector<float> random_activation(int64_t n_tokens, int64_t n_in, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(size_t(n_tokens * n_in));
    for (float& v : x) v = normal(rng);
    for (int64_t k = 0; k < n_tokens * 2; ++k)
        x[rng() % x.size()] *= 40.0f;  // outliers, as in real hidden states
    return x;
}

struct ErrorStats {
    double max_rel = -1;  // max over outputs of (|out - exact| - allowed rounding) / sum|w*x|
    double max_raw = 0;   // max over outputs of |out - exact| / sum|w*x|
};

// Runs the decode path on rows [r0, r1) with out_stride `stride`, checks every output against float64 and
// that nothing outside [r0, r1) was written.
void check_product(const QuantKernels& k, const MatmulPath& p, const Matrix& m, const std::vector<float>& x,
                   int64_t n_tokens, int64_t r0, int64_t r1, ErrorStats& stats) {
    std::vector<uint8_t> act(p.act_bytes(m.n_in, n_tokens));
    p.prepare(x.data(), m.n_in, n_tokens, act.data());
    const int64_t stride = m.n_rows + 3;
    constexpr float kUntouched = -12345.0f;
    std::vector<float> out(size_t(stride * n_tokens), kUntouched);
    p.rows(m.bytes.data(), m.row_bytes, m.n_in, act.data(), n_tokens, r0, r1, out.data(), stride);
    for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < stride; ++r) {
            const float got = out[size_t(t * stride + r)];
            if (r < r0 || r >= r1) {
                REQUIRE(got == kUntouched);
                continue;
            }
            // the activation's rounding step per block: max|x| / levels
            const bool int16 = p.act_format == kActI16K;
            const bool i8x2 = p.act_format == kActI8x2K || p.act_format == kActI8x2KPerm ||
                              p.act_format == kActI8x2KP || p.act_format == kActC16K ||
                              p.act_format == kActC16B || p.act_format >= kActI8x2B;
            // formats of c = round(x / step) with step max|x| / 127^2 (as 127 q1 + q2, or as int16)
            const bool packed = p.act_format == kActI8x2KP || p.act_format == kActC16K ||
                                p.act_format == kActC16B || p.act_format >= kActI8x2BP;
            const int64_t block =
                int16 ? kInt16Block : (p.act_format >= kActI8x2B || p.act_format == kActC16B ? 32 : 256);
            const double levels = int16 ? 32767.0 : (packed ? 127.0 * 127.0 : 127.0 * 128.0);
            double exact = 0, magnitude = 0, rounding = 0;
            for (int64_t b = 0; b < m.n_in; b += block) {
                const int64_t e = std::min(m.n_in, b + block);
                double amax = 0, wsum = 0;
                for (int64_t i = b; i < e; ++i) {
                    const double w = m.deq[size_t(r * m.n_in + i)], xi = x[size_t(t * m.n_in + i)];
                    exact += w * xi;
                    magnitude += std::fabs(w * xi);
                    amax = std::max(amax, std::fabs(xi));
                    wsum += std::fabs(w);
                }
                rounding += wsum * amax / levels / 2 * 1.001;
            }
            const double err = std::fabs(double(got) - exact) - (int16 || i8x2 ? rounding : 0.0);
            const double rel = magnitude > 0 ? err / magnitude : err;
            stats.max_rel = std::max(stats.max_rel, rel);
            stats.max_raw = std::max(stats.max_raw, std::fabs(double(got) - exact) / magnitude);
            if (!(rel <= kRelTol)) {
                FAIL_CHECK(std::string(type_name(k.type))
                           << " at " << std::string(isa_name(k.isa)) << ": n_in " << m.n_in << " row " << r
                           << " token " << t << "/" << n_tokens << ": got " << got << ", exact " << exact
                           << ", error " << rel << " of sum|w*x|");
                return;
            }
        }
}

std::vector<int64_t> row_lengths(GgmlType type) {
    const int64_t block = type_traits(type).block_elems;
    if (block == 1)
        return {1, 17, 64, 300, 1000};  // float types take any length; 64-element main loop + tail
    if (block == 32) return {32, 96, 352, 1056};
    return {256, 768, 2816};
}

}  // namespace

TEST_CASE("cpu decode path: every type and instruction set against float64") {
    for (int level = 0; level <= int(detected_isa()); ++level) {
        const Isa isa = Isa(level);
        for (const GgmlType type : kTypes) {
            const QuantKernels& k = quant_kernels(type, isa);
            REQUIRE(k.type == type);
            // the default path, the float one, the two-int8-term one and the int16 one where the type has
            // them
            const MatmulPath* int16 = decode_path_int16(type, isa);
            if (int16) CHECK(int16->act_format == kActI16K);
            const MatmulPath* i8x2 = decode_path_i8x2(type, isa);
            if (i8x2)
                CHECK(bool(k.decode.rows == i8x2->rows) !=
                      float_decode_forced());  // the default where it exists
            const MatmulPath* fl = isa == Isa::Portable ? nullptr : decode_path_float(type, isa);
            for (const MatmulPath* p : {&k.decode, fl, i8x2, int16}) {
                if (!p || (p != &k.decode && p->rows == k.decode.rows)) continue;
                const char* kind =
                    p->act_format == kActI16K
                        ? " int16"
                        : (p == i8x2 || p->rows == (i8x2 ? i8x2->rows : nullptr) ? " i8x2" : " float");
                const std::string what = std::string(type_name(type)) + " " + isa_name(isa) + kind;
                CAPTURE(what);
                std::mt19937 rng(1234 + unsigned(type));
                ErrorStats stats;
                for (const int64_t n_in : row_lengths(type)) {
                    const Matrix m = random_matrix(type, 13, n_in, rng);
                    for (int64_t n_tokens = 1; n_tokens <= 17; n_tokens += (n_in > 1000 ? 4 : 1)) {
                        const std::vector<float> x = random_activation(n_tokens, n_in, rng);
                        check_product(k, *p, m, x, n_tokens, 0, m.n_rows, stats);
                        check_product(k, *p, m, x, n_tokens, 3, 8, stats);  // a thread's sub-range
                    }
                }
                MESSAGE(what << ": max error " << stats.max_raw
                             << " of sum|w*x|; beyond the activation's rounding " << stats.max_rel);
            }
        }
    }
}

namespace {

// x rounded to `levels` steps either side of zero per block of `block` elements (scale max|x| / levels).
std::vector<double> round_blocks(const std::vector<float>& x, int64_t block, double levels) {
    std::vector<double> out(x.size());
    for (size_t b = 0; b < x.size(); b += size_t(block)) {
        double amax = 0;
        for (size_t i = b; i < b + size_t(block); ++i) amax = std::max(amax, std::fabs(double(x[i])));
        const double d = amax / levels;
        for (size_t i = b; i < b + size_t(block); ++i) out[i] = d > 0 ? std::round(x[i] / d) * d : 0;
    }
    return out;
}

// max over rows of |W x' - W x| / sum|w*x|
double rounding_error(const Matrix& m, const std::vector<float>& x, const std::vector<double>& xr) {
    double worst = 0;
    for (int64_t r = 0; r < m.n_rows; ++r) {
        double exact = 0, rounded = 0, magnitude = 0;
        for (int64_t i = 0; i < m.n_in; ++i) {
            const double w = m.deq[size_t(r * m.n_in + i)];
            exact += w * x[size_t(i)];
            rounded += w * xr[size_t(i)];
            magnitude += std::fabs(w * x[size_t(i)]);
        }
        worst = std::max(worst, std::fabs(rounded - exact) / magnitude);
    }
    return worst;
}

}  // namespace

TEST_CASE("cpu decode path: the bounds are far below 8-bit activation rounding") {
    // On the data of the test above, llama.cpp's activation rounding (8 bits per 32 elements for q8_0 and
    // the legacy types, per 256 for q8_K and the k-quants) must cost far more than kRelTol, and the int16
    // rounding of our k-quant paths far less than the 8-bit one it replaces.
    std::mt19937 rng(7);
    const int64_t n_in = 4096;
    const Matrix m = random_matrix(GgmlType::Q4_K, 8, n_in, rng);
    const std::vector<float> x = random_activation(1, n_in, rng);
    const double q8_0 = rounding_error(m, x, round_blocks(x, 32, 127));
    const double q8_k = rounding_error(m, x, round_blocks(x, 256, 127));
    const double i16 = rounding_error(m, x, round_blocks(x, 256, 32767));
    MESSAGE("activation rounding error, of sum|w*x|: 8 bits per 32 " << q8_0 << ", 8 bits per 256 " << q8_k
                                                                     << ", 16 bits per 256 " << i16);
    CHECK(q8_0 > 100 * kRelTol);
    CHECK(i16 * 50 < q8_k);
    CHECK(i16 * 10 < q8_0);
}

TEST_CASE("cpu decode path: KINFER_CPU_ISA names and levels") {
    Isa isa;
    CHECK(parse_isa("avx2", isa));
    CHECK(isa == Isa::Avx2);
    CHECK_FALSE(parse_isa("sse9", isa));
    CHECK(active_isa() <= detected_isa());
    // every level at or below the detected one resolves every type to kernels of that level
    for (int level = 0; level <= int(detected_isa()); ++level)
        for (const GgmlType type : kTypes) CHECK(quant_kernels(type, Isa(level)).isa == Isa(level));
}

TEST_CASE("cpu decode path: a token's result does not depend on the tokens or rows sharing the call") {
    // The engine's batch decoding relies on it (tests/batch_test.cpp): a token decoded with 1..15 others and
    // with rows split unevenly across threads gets the bits it gets alone, on every path of every level.
    std::mt19937 rng(99);
    for (int level = 1; level <= int(detected_isa()); ++level)
        for (const GgmlType type : kTypes) {
            const Isa isa = Isa(level);
            const MatmulPath& p = quant_kernels(type, isa).decode;
            CAPTURE(std::string(type_name(type)) + " " + isa_name(isa));
            // 11 blocks of 256: the batch slices (4 blocks, 8 rows) end in a partial one; blocks of 32 go by
            // pairs of 8-block groups: 11 blocks end in a partial pair, 8 and 33 in a lone group (two rows at
            // once)
            const std::vector<int64_t> lengths = type_traits(type).block_elems == 256
                                                     ? std::vector<int64_t>{2816}
                                                     : std::vector<int64_t>{352, 256, 1056};
            for (const int64_t n_in : lengths) {
                const int64_t n_rows = 11;
                const Matrix m = random_matrix(type, n_rows, n_in, rng);
                const int64_t n_tokens = 15;
                const std::vector<float> x = random_activation(n_tokens, n_in, rng);
                std::vector<float> alone(size_t(n_tokens * n_rows));
                std::vector<uint8_t> act(p.act_bytes(n_in, n_tokens));
                for (int64_t t = 0; t < n_tokens; ++t) {
                    p.prepare(x.data() + t * n_in, n_in, 1, act.data());
                    p.rows(m.bytes.data(), m.row_bytes, n_in, act.data(), 1, 0, n_rows,
                           alone.data() + t * n_rows, n_rows);
                }
                for (int64_t count = 2; count <= n_tokens; count += 3) {
                    p.prepare(x.data(), n_in, count, act.data());
                    std::vector<float> out(size_t(count * n_rows));
                    // three "threads" with odd row ranges
                    for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, 3}, {3, 10}, {10, n_rows}})
                        p.rows(m.bytes.data(), m.row_bytes, n_in, act.data(), count, r0, r1, out.data(),
                               n_rows);
                    for (int64_t i = 0; i < count * n_rows; ++i) REQUIRE(out[size_t(i)] == alone[size_t(i)]);
                }
            }
        }
}

#if defined(__x86_64__)
TEST_CASE("cpu decode path: the GFNI variants (Q4_K, Q4_0) give the plain ones' bits") {
    // Only the nibble extraction differs (vgf2p8affineqb for a shift and a mask), so every output must be
    // bit-identical; the default path is the GFNI one wherever the CPU has GFNI (unless KINFER_GFNI=0).
    if (detected_isa() < Isa::Avx512) return;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("gfni")) {
        MESSAGE("skipped: this CPU has no GFNI");
        return;
    }
    std::mt19937 rng(7);
    for (const GgmlType type : {GgmlType::Q4_K, GgmlType::Q4_0}) {
        CAPTURE(std::string(type_name(type)));
        const auto path = [&](bool gfni) {
            return type == GgmlType::Q4_K ? decode_path_i8x2p_avx512(type, gfni)
                                          : decode_path_i8x2b_avx512(type, gfni);
        };
        const MatmulPath *plain = path(false), *gfni = path(true);
        REQUIRE(plain);
        REQUIRE(gfni);
        CHECK(bool(plain->rows != gfni->rows));
        if (!float_decode_forced() && gfni_enabled())
            CHECK(bool(quant_kernels(type, Isa::Avx512).decode.rows == gfni->rows));
        for (const int64_t n_in : row_lengths(type)) {
            const int64_t n_rows = 9;
            const Matrix m = random_matrix(type, n_rows, n_in, rng);
            for (const int64_t n_tokens : {1, 2, 3, 4, 8}) {
                const std::vector<float> x = random_activation(n_tokens, n_in, rng);
                std::vector<uint8_t> act(plain->act_bytes(n_in, n_tokens));
                plain->prepare(x.data(), n_in, n_tokens, act.data());
                std::vector<float> a(size_t(n_tokens * n_rows)), b(a.size());
                plain->rows(m.bytes.data(), m.row_bytes, n_in, act.data(), n_tokens, 0, n_rows, a.data(),
                            n_rows);
                gfni->rows(m.bytes.data(), m.row_bytes, n_in, act.data(), n_tokens, 0, n_rows, b.data(),
                           n_rows);
                for (size_t i = 0; i < a.size(); ++i)
                    REQUIRE(std::bit_cast<uint32_t>(a[i]) == std::bit_cast<uint32_t>(b[i]));
            }
        }
    }
}
#endif
