// The CPU prefill (matrix x matrix) kernels against float64 products of the dequantized weights, at every
// instruction level this CPU runs, on odd shapes: rows not a multiple of the row block, token counts not a
// multiple of the token tile, row sub-ranges as threads take them, an output stride wider than the rows.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gguf/ggml_type.hpp"
#include "kernels/cpu/prefill_act.hpp"
#include "kernels/cpu/prefill_table.hpp"
#include "kernels/cpu/quant_matmul.hpp"
#include "kernels/fp16.hpp"
#include "kernels/reference/type_kernels.hpp"

using namespace kinfer;

namespace {

constexpr GgmlType kPrefillTypes[] = {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0,
                                      GgmlType::Q5_K, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_1,
                                      GgmlType::Q5_0, GgmlType::Q5_1};

// Gaussian values whose scale changes from block to block (as in real weights and activations), with an
// all-zero block and a few outliers, so every scale and rounding branch is taken.
std::vector<float> varied(int64_t n, int64_t block, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> spread(0.05f, 3.0f);
    std::vector<float> x(size_t(n), 0.0f);
    for (int64_t b = 0; b < n / block; ++b) {
        if (b % 7 == 3) continue;  // stays zero
        const float s = spread(rng);
        for (int64_t i = 0; i < block; ++i) x[size_t(b * block + i)] = s * normal(rng);
        if (b % 5 == 1) x[size_t(b * block + b % block)] *= 8.0f;
    }
    return x;
}

struct Product {
    GgmlType type;
    int64_t n_rows, n_in, n_tokens;
    std::vector<uint8_t> w;  // quantized rows
    std::vector<double> wd;  // the same rows dequantized
    std::vector<float> x;    // activations
    size_t row_bytes;

    Product(GgmlType t, int64_t rows, int64_t in, int64_t tokens, uint64_t seed)
        : type(t), n_rows(rows), n_in(in), n_tokens(tokens) {
        const TypeTraits& tr = type_traits(t);
        row_bytes = size_t(kinfer::row_bytes(tr, uint64_t(in)));
        const std::vector<float> wf = varied(rows * in, 16, seed);
        w.resize(row_bytes * size_t(rows));
        std::vector<float> row(static_cast<size_t>(in), 0.0f);
        for (int64_t r = 0; r < rows; ++r) {
            ref::quantize_fn(t)(wf.data() + r * in, w.data() + size_t(r) * row_bytes, in);
            ref::dequantize_fn(t)(w.data() + size_t(r) * row_bytes, row.data(), in);
            wd.insert(wd.end(), row.begin(), row.end());
        }
        x = varied(tokens * in, 32, seed + 1);
    }

    // sum_i W[r][i] * a[t][i] in float64, and sum_i |W[r][i] * a[t][i]|.
    void reference(const std::vector<float>& a, int64_t t, int64_t r, double& dot, double& mag) const {
        dot = 0;
        mag = 0;
        for (int64_t i = 0; i < n_in; ++i) {
            const double p = wd[size_t(r * n_in + i)] * double(a[size_t(t * n_in + i)]);
            dot += p;
            mag += std::fabs(p);
        }
    }
};

struct Errors {
    double vs_float = 0;    // max |out - W x| / sum|W x|
    double vs_rounded = 0;  // max |out - W round(x)| / sum|W round(x)|
};

// Runs `path` on rows [r0, r1) in two "thread" ranges split at a row-block boundary, into an output with a
// wider stride; checks every output against float64 and that nothing outside [r0, r1) was written.
Errors run_and_check(const cpu::MatmulPath& path, const Product& p, int64_t r0, int64_t r1,
                     bool rounded_exact) {
    const int64_t stride = p.n_rows + 5;
    const float sentinel = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> out(size_t(stride * p.n_tokens), sentinel);
    std::vector<uint8_t> act(path.act_bytes(p.n_in, p.n_tokens));
    path.prepare(p.x.data(), p.n_in, p.n_tokens, act.data());
    const int64_t split = std::min(r1, r0 + path.row_block * ((r1 - r0) / path.row_block / 2 + 1));
    path.rows(p.w.data(), p.row_bytes, p.n_in, act.data(), p.n_tokens, r0, split, out.data(), stride);
    path.rows(p.w.data(), p.row_bytes, p.n_in, act.data(), p.n_tokens, split, r1, out.data(), stride);

    std::vector<float> xr(p.x.size());
    for (int64_t t = 0; t < p.n_tokens; ++t)
        cpu::prefill::round_like_prepare(p.x.data() + t * p.n_in, p.n_in, xr.data() + t * p.n_in);
    Errors e;
    for (int64_t t = 0; t < p.n_tokens; ++t) {
        for (int64_t r = 0; r < stride; ++r) {
            const float got = out[size_t(t * stride + r)];
            if (r < r0 || r >= r1) {
                REQUIRE_MESSAGE(std::isnan(got),
                                "row " << r << " outside [" << r0 << ", " << r1 << ") written");
                continue;
            }
            double dot, mag;
            p.reference(p.x, t, r, dot, mag);
            REQUIRE(std::isfinite(got));
            if (mag > 0) e.vs_float = std::max(e.vs_float, std::fabs(got - dot) / mag);
            if (rounded_exact) {
                p.reference(xr, t, r, dot, mag);
                if (mag > 0)
                    e.vs_rounded = std::max(e.vs_rounded, std::fabs(got - dot) / mag);
                else
                    CHECK(got == 0.0f);
            }
        }
    }
    return e;
}

}  // namespace

TEST_CASE("cpu prefill: every type at every level matches float64 on odd shapes") {
    for (const GgmlType type : kPrefillTypes) {
        const int64_t block = type_traits(type).block_elems;
        const int64_t n_in = block == 256 ? 3 * 256 : 25 * 32;
        const Product p(type, 37, n_in, 70, 1000 + uint64_t(type));
        for (int level = int(cpu::Isa::Portable); level <= int(cpu::detected_isa()); ++level) {
            const auto isa = cpu::Isa(level);
            const cpu::MatmulPath* fast = cpu::prefill_path(type, isa);
            const cpu::MatmulPath& path = fast ? *fast : cpu::quant_kernels(type, isa).prefill;
            const bool int8 = path.act_format == cpu::prefill::kPrefillActFormat;
            CAPTURE(type_name(type));
            CAPTURE(cpu::isa_name(isa));
            REQUIRE(path.row_block >= 1);
            for (const int64_t n_tokens : {70, 33, 3}) {
                Product q = p;
                q.n_tokens = n_tokens;
                q.x.resize(size_t(n_tokens * n_in));
                CAPTURE(n_tokens);
                const Errors all = run_and_check(path, q, 0, q.n_rows, int8);
                // 8-bit activation rounding per 32 (d = max/127): well under 1% of sum|w x| on this data.
                CHECK(all.vs_float < (int8 ? 0.02 : 1e-5));
                // With the activation rounded as prepare rounds it, only float accumulation error is left.
                if (int8) CHECK(all.vs_rounded < 2e-6);
            }
            // A middle range as a thread gets it: starts on a row block, ends anywhere.
            const Errors part = run_and_check(path, p, path.row_block, p.n_rows - 3, int8);
            CHECK(part.vs_float < (int8 ? 0.02 : 1e-5));
        }
    }
}

TEST_CASE("cpu prefill: a path exists for every supported type at every SIMD level") {
    for (const GgmlType type : kPrefillTypes)
        for (int level = int(cpu::Isa::Avx2); level <= int(cpu::detected_isa()); ++level) {
            CAPTURE(type_name(type));
            const cpu::MatmulPath* path = cpu::prefill_path(type, cpu::Isa(level));
            REQUIRE(path != nullptr);
            CHECK(path->act_format == cpu::prefill::kPrefillActFormat);
            CHECK(path->row_block > 1);
        }
    CHECK(cpu::prefill_path(GgmlType::Q4_K, cpu::Isa::Portable) == nullptr);
    CHECK(cpu::prefill_path(GgmlType::F32, cpu::detected_isa()) == nullptr);
}

TEST_CASE("cpu prefill: every level prepares the activation bit for bit as the reference rounds it") {
    const int64_t n_in = 9 * 32, n_tokens = 5;
    std::vector<float> x = varied(n_in * n_tokens, 32, 77);
    // A block with max 127, so d = 1 and halves are exact ties (to even: 2.5 -> 2, -3.5 -> -4).
    for (int i = 0; i < 32; ++i) x[size_t(64 + i)] = float(i - 16) + 0.5f;
    x[64] = 127.0f;
    for (int level = int(cpu::Isa::Avx2); level <= int(cpu::detected_isa()); ++level) {
        const cpu::MatmulPath* path = cpu::prefill_path(GgmlType::Q4_K, cpu::Isa(level));
        REQUIRE(path != nullptr);
        std::vector<uint8_t> act(path->act_bytes(n_in, n_tokens));
        path->prepare(x.data(), n_in, n_tokens, act.data());
        const cpu::prefill::ActView v(act.data(), n_in, n_tokens);
        std::vector<float> want(static_cast<size_t>(n_in), 0.0f);
        for (int64_t t = 0; t < n_tokens; ++t) {
            cpu::prefill::round_like_prepare(x.data() + t * n_in, n_in, want.data());
            for (int64_t b = 0; b < n_in / 32; ++b) {
                const int64_t cell = b * n_tokens + t;
                double sum_lo = 0, sum_hi = 0;
                for (int i = 0; i < 32; ++i) {
                    const float got = v.d[cell] * float(v.q[cell * 32 + i]);
                    REQUIRE(got == want[size_t(b * 32 + i)]);
                    (i < 16 ? sum_lo : sum_hi) += double(v.q[cell * 32 + i]);
                }
                CHECK(v.s16[2 * cell] == float(v.d[cell] * float(sum_lo)));
                CHECK(v.s16[2 * cell + 1] == float(v.d[cell] * float(sum_hi)));
                CHECK(v.s32[cell] == float(v.d[cell] * float(sum_lo + sum_hi)));
            }
        }
    }
}

namespace {

// The activation as llama.cpp rounds it for the same product: q8_K (one float scale per 256) for the
// k-quants, q8_0 (one fp16 scale per 32) for the legacy types. Both round to nearest with d = max|x| / 127.
std::vector<float> round_like_llamacpp(const std::vector<float>& x, int64_t block, bool fp16_scale) {
    std::vector<float> out(x.size());
    for (size_t b = 0; b < x.size(); b += size_t(block)) {
        float amax = 0;
        for (int64_t i = 0; i < block; ++i) amax = std::max(amax, std::fabs(x[b + size_t(i)]));
        const float d = amax / 127.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        const float ds = fp16_scale ? fp16_to_fp32(fp32_to_fp16(d)) : d;
        for (int64_t i = 0; i < block; ++i) out[b + size_t(i)] = ds * std::nearbyint(x[b + size_t(i)] * id);
    }
    return out;
}

}  // namespace

TEST_CASE("cpu prefill: error at or below llama.cpp's activation rounding on every type") {
    for (const GgmlType type : kPrefillTypes) {
        const bool kquant = type_traits(type).block_elems == 256;
        const int64_t n_in = kquant ? 4 * 256 : 32 * 32, n_tokens = 40;
        const Product p(type, 48, n_in, n_tokens, 500 + uint64_t(type));
        const cpu::MatmulPath* path = cpu::prefill_path(type, cpu::detected_isa());
        if (!path) continue;  // a CPU without AVX2
        std::vector<float> out(size_t(n_tokens * p.n_rows));
        std::vector<uint8_t> act(path->act_bytes(n_in, n_tokens));
        path->prepare(p.x.data(), n_in, n_tokens, act.data());
        path->rows(p.w.data(), p.row_bytes, n_in, act.data(), n_tokens, 0, p.n_rows, out.data(), p.n_rows);
        const std::vector<float> xl = round_like_llamacpp(p.x, kquant ? 256 : 32, !kquant);
        double ours = 0, llama = 0;
        for (int64_t t = 0; t < n_tokens; ++t)
            for (int64_t r = 0; r < p.n_rows; ++r) {
                double exact, mag, theirs;
                p.reference(p.x, t, r, exact, mag);
                p.reference(xl, t, r, theirs, mag);
                ours += std::pow(double(out[size_t(t * p.n_rows + r)]) - exact, 2);
                llama += std::pow(theirs - exact, 2);
            }
        CAPTURE(type_name(type));
        // k-quants: blocks of 32 against 256, clearly finer. Legacy: the same blocks with a float scale
        // instead of fp16, so equal up to the fp16 rounding (which only adds error).
        if (kquant)
            CHECK(ours < 0.8 * llama);
        else
            CHECK(ours <= 1.02 * llama);
    }
}

TEST_CASE("cpu prefill: a long prompt crosses the token chunks") {
    const Product p(GgmlType::Q4_K, 21, 256, 530, 99);  // over 512 tokens: both levels chunk
    for (int level = int(cpu::Isa::Avx2); level <= int(cpu::detected_isa()); ++level) {
        const cpu::MatmulPath* path = cpu::prefill_path(GgmlType::Q4_K, cpu::Isa(level));
        REQUIRE(path != nullptr);
        const Errors e = run_and_check(*path, p, 0, p.n_rows, true);
        CHECK(e.vs_float < 0.02);
        CHECK(e.vs_rounded < 2e-6);
    }
}
