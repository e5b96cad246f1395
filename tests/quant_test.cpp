// Block formats: golden dequantization against llama.cpp, hand-checked edge blocks, quantizer quality
// against llama.cpp's reference quantizers, the parallel row drivers and the reference dot product.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/blocks.hpp"
#include "kernels/fp16.hpp"
#include "gguf/ggml_type.hpp"
#include "filetools/quantize_rows.hpp"
#include "kernels/reference/vec_dot.hpp"
#include "kinfer/error.hpp"
#include "tests/quant_test_data.hpp"
#include "kernels/reference/type_kernels.hpp"

using namespace kinfer;

namespace {

const std::string kFixtureDir = std::string(KINFER_SOURCE_DIR) + "/tests/fixtures/quant/";

// The formats this module makes exact (the plain float ones live in float_rows but are checked here too).
const char* const kQuantNames[] = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K",
                                   "q3_K", "q4_K", "q5_K", "q6_K", "q8_K"};

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    REQUIRE_MESSAGE(f.good(),
                    "missing fixture " << path << " (regenerate with scripts/dev/make_quant_fixtures.py)");
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

uint32_t read_u32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
           static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

std::vector<float> dequantize(const TypeTraits& t, const std::vector<uint8_t>& blocks) {
    const int64_t n = static_cast<int64_t>(blocks.size() / t.block_bytes * t.block_elems);
    std::vector<float> out(static_cast<size_t>(n));
    ref::dequantize_fn(t)(blocks.data(), out.data(), n);
    return out;
}

std::vector<float> quantize_roundtrip(const TypeTraits& t, const std::vector<float>& x) {
    std::vector<uint8_t> q(row_bytes(t, x.size()));
    ref::quantize_fn(t)(x.data(), q.data(), static_cast<int64_t>(x.size()));
    return dequantize(t, q);
}

uint32_t bits_of(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}

template <typename Block>
std::vector<uint8_t> bytes_of(const Block& b) {
    std::vector<uint8_t> v(sizeof b);
    std::memcpy(v.data(), &b, sizeof b);
    return v;
}

}  // namespace

TEST_CASE("quant: block structs match the type table") {
    CHECK(type_traits(GgmlType::Q4_0).block_bytes == sizeof(BlockQ4_0));
    CHECK(type_traits(GgmlType::Q4_1).block_bytes == sizeof(BlockQ4_1));
    CHECK(type_traits(GgmlType::Q5_0).block_bytes == sizeof(BlockQ5_0));
    CHECK(type_traits(GgmlType::Q5_1).block_bytes == sizeof(BlockQ5_1));
    CHECK(type_traits(GgmlType::Q8_0).block_bytes == sizeof(BlockQ8_0));
    CHECK(type_traits(GgmlType::Q2_K).block_bytes == sizeof(BlockQ2_K));
    CHECK(type_traits(GgmlType::Q3_K).block_bytes == sizeof(BlockQ3_K));
    CHECK(type_traits(GgmlType::Q4_K).block_bytes == sizeof(BlockQ4_K));
    CHECK(type_traits(GgmlType::Q5_K).block_bytes == sizeof(BlockQ5_K));
    CHECK(type_traits(GgmlType::Q6_K).block_bytes == sizeof(BlockQ6_K));
    CHECK(type_traits(GgmlType::Q8_K).block_bytes == sizeof(BlockQ8_K));
    for (const std::string name : kQuantNames) {
        const TypeTraits* t = find_type_by_name(name);
        REQUIRE(t != nullptr);
        CHECK(static_cast<bool>(ref::dequantize_fn(*t)));
        CHECK(static_cast<bool>(ref::quantize_fn(*t)));
    }
}

// Fixtures: random block bytes (and edge blocks) dequantized by llama.cpp (gguf-py, cross-checked against
// ggml's C code), see scripts/dev/make_quant_fixtures.py. Every output float must match bit for bit.
TEST_CASE("quant: dequantization is bit-exact with llama.cpp") {
    std::vector<std::string> names(std::begin(kQuantNames), std::end(kQuantNames));
    names.push_back("f16");
    names.push_back("bf16");
    for (const std::string& name : names) {
        CAPTURE(name);
        const std::vector<uint8_t> file = read_file(kFixtureDir + name + ".bin");
        REQUIRE(file.size() >= 24);
        REQUIRE(std::memcmp(file.data(), "KQFX", 4) == 0);
        REQUIRE(read_u32(&file[4]) == 1);
        const TypeTraits* t = find_type(read_u32(&file[8]));
        REQUIRE(t != nullptr);
        CHECK(std::string(t->name) == name);
        REQUIRE(read_u32(&file[12]) == t->block_elems);
        REQUIRE(read_u32(&file[16]) == t->block_bytes);
        const uint64_t n_blocks = read_u32(&file[20]);
        const uint64_t n = n_blocks * t->block_elems;
        REQUIRE(file.size() == 24 + n_blocks * t->block_bytes + n * 4);

        std::vector<float> out(n);
        ref::dequantize_fn(*t)(&file[24], out.data(), static_cast<int64_t>(n));
        const uint8_t* expected = &file[24 + n_blocks * t->block_bytes];
        size_t mismatches = 0;
        for (uint64_t i = 0; i < n; ++i) {
            float want;
            std::memcpy(&want, expected + 4 * i, 4);
            if (bits_of(out[i]) != bits_of(want)) {
                if (mismatches++ < 5)
                    FAIL_CHECK("element " << i << " (block " << i / t->block_elems << "): got " << out[i]
                                          << " want " << want);
            }
        }
        CHECK(mismatches == 0);
        CHECK(std::memcmp(out.data(), expected, n * 4) == 0);
    }
}

// ---- hand-checked edge blocks --------------------------------------------------------------------------

TEST_CASE("quant: all-zero blocks decode to zeros") {
    for (const std::string name : kQuantNames) {
        CAPTURE(name);
        const TypeTraits& t = *find_type_by_name(name);
        const std::vector<uint8_t> zeros(3 * t.block_bytes, 0);
        for (float v : dequantize(t, zeros)) REQUIRE(v == 0.0f);
    }
}

TEST_CASE("quant: d = 0 zeroes every code") {
    const TypeTraits& q4 = type_traits(GgmlType::Q4_0);
    BlockQ4_0 b{};
    b.d = 0x8000;  // -0.0
    std::memset(b.qs, 0x9C, sizeof b.qs);
    for (float v : dequantize(q4, bytes_of(b))) CHECK(v == 0.0f);

    BlockQ6_K b6{};
    std::memset(&b6, 0xA7, sizeof b6);
    b6.d = 0;
    for (float v : dequantize(type_traits(GgmlType::Q6_K), bytes_of(b6))) CHECK(v == 0.0f);

    // Q4_K with d = 0 keeps the min term: every value is -dmin * m.
    BlockQ4_K b4{};
    std::memset(&b4, 0xFF, sizeof b4);
    b4.d = 0;
    b4.dmin = fp32_to_fp16(0.5f);
    for (float v : dequantize(type_traits(GgmlType::Q4_K), bytes_of(b4))) CHECK(v == -0.5f * 63);
}

TEST_CASE("quant: legacy formats, max codes and negative scales") {
    BlockQ4_0 b40{};
    b40.d = fp32_to_fp16(-2.0f);
    std::memset(b40.qs, 0xF0, sizeof b40.qs);  // low nibble 0 -> -8, high nibble 15 -> 7
    auto y = dequantize(type_traits(GgmlType::Q4_0), bytes_of(b40));
    for (int j = 0; j < 16; ++j) {
        CHECK(y[j] == 16.0f);
        CHECK(y[j + 16] == -14.0f);
    }

    BlockQ4_1 b41{};
    b41.d = fp32_to_fp16(0.25f);
    b41.m = fp32_to_fp16(-1.0f);
    std::memset(b41.qs, 0xFF, sizeof b41.qs);
    for (float v : dequantize(type_traits(GgmlType::Q4_1), bytes_of(b41))) CHECK(v == 15 * 0.25f - 1.0f);

    // Q5_0: qh bit j is the 5th bit of element j; set it for odd elements only.
    BlockQ5_0 b50{};
    b50.d = fp32_to_fp16(1.0f);
    std::memset(b50.qs, 0xFF, sizeof b50.qs);
    std::memset(b50.qh, 0xAA, sizeof b50.qh);
    y = dequantize(type_traits(GgmlType::Q5_0), bytes_of(b50));
    for (int j = 0; j < 32; ++j) CHECK(y[j] == (j % 2 ? 31 - 16 : 15 - 16));

    BlockQ5_1 b51{};
    b51.d = fp32_to_fp16(-1.0f);
    b51.m = fp32_to_fp16(3.0f);
    b51.qh[3] = 0x80;  // element 31 only
    y = dequantize(type_traits(GgmlType::Q5_1), bytes_of(b51));
    for (int j = 0; j < 31; ++j) CHECK(y[j] == 3.0f);
    CHECK(y[31] == -16.0f + 3.0f);

    BlockQ8_0 b80{};
    b80.d = fp32_to_fp16(-0.5f);
    for (int j = 0; j < 32; ++j) b80.qs[j] = static_cast<int8_t>(j % 2 ? -128 : 127);
    y = dequantize(type_traits(GgmlType::Q8_0), bytes_of(b80));
    for (int j = 0; j < 32; ++j) CHECK(y[j] == (j % 2 ? 64.0f : -63.5f));
}

TEST_CASE("quant: q4_K / q5_K 6-bit scale and min packing") {
    // Hand-packed codes sc = {1,2,3,4,33,40,50,63}, mn = {5,6,7,8,17,31,48,62} (see blocks.hpp for the
    // layout).
    const uint8_t packed[12] = {0x81, 0x82, 0xC3, 0xC4, 0x45, 0x46, 0xC7, 0xC8, 0x11, 0xF8, 0x02, 0xEF};
    const int sc[8] = {1, 2, 3, 4, 33, 40, 50, 63};
    const int mn[8] = {5, 6, 7, 8, 17, 31, 48, 62};
    for (int g = 0; g < 8; ++g) {
        uint8_t s = 0, m = 0;
        unpack_scale_min_k4(g, packed, s, m);
        CHECK(s == sc[g]);
        CHECK(m == mn[g]);
    }

    BlockQ4_K b4{};
    b4.d = fp32_to_fp16(1.0f);
    b4.dmin = fp32_to_fp16(0.5f);
    std::memcpy(b4.scales, packed, 12);
    std::memset(b4.qs, 0x21, sizeof b4.qs);  // even groups (low nibbles) q = 1, odd groups q = 2
    auto y = dequantize(type_traits(GgmlType::Q4_K), bytes_of(b4));
    for (int e = 0; e < QK_K; ++e) {
        const int g = e / 32;
        CHECK(y[e] == sc[g] * (g % 2 ? 2.0f : 1.0f) - 0.5f * mn[g]);
    }

    BlockQ5_K b5{};
    b5.d = fp32_to_fp16(1.0f);
    b5.dmin = fp32_to_fp16(0.5f);
    std::memcpy(b5.scales, packed, 12);
    std::memset(b5.qs, 0x21, sizeof b5.qs);
    std::memset(b5.qh, 0x0F, sizeof b5.qh);  // 5th bit set in groups 0..3 only
    y = dequantize(type_traits(GgmlType::Q5_K), bytes_of(b5));
    for (int e = 0; e < QK_K; ++e) {
        const int g = e / 32;
        const int q = (g % 2 ? 2 : 1) + (g < 4 ? 16 : 0);
        CHECK(y[e] == sc[g] * static_cast<float>(q) - 0.5f * mn[g]);
    }
}

TEST_CASE("quant: q2_K / q3_K / q6_K / q8_K codes and signed scales") {
    BlockQ2_K b2{};
    b2.d = fp32_to_fp16(1.0f);
    b2.dmin = fp32_to_fp16(-1.0f);
    for (int g = 0; g < 16; ++g) b2.scales[g] = static_cast<uint8_t>((g & 0xF) | ((15 - g) << 4));
    std::memset(b2.qs, 0xE4, sizeof b2.qs);  // bits 2s..2s+1 = s: element 32*s + l has q = s
    auto y = dequantize(type_traits(GgmlType::Q2_K), bytes_of(b2));
    for (int e = 0; e < QK_K; ++e) {
        const int g = e / 16, q = (e % 128) / 32;
        CHECK(y[e] == static_cast<float>(g * q + (15 - g)));
    }

    BlockQ3_K b3{};
    b3.d = fp32_to_fp16(-1.0f);  // scale codes all 0 -> group scale -32
    std::memset(b3.qs, 0xFF, sizeof b3.qs);
    std::memset(b3.hmask, 0x0F, sizeof b3.hmask);  // high bit set for elements 0..127 only
    y = dequantize(type_traits(GgmlType::Q3_K), bytes_of(b3));
    for (int e = 0; e < QK_K; ++e) CHECK(y[e] == (e < 128 ? 32.0f * 3 : 32.0f * -1));
    // Scale code 63 in every group: low nibbles 0xF, top bits 3.
    std::memset(b3.scales, 0xFF, sizeof b3.scales);
    std::memset(b3.qs, 0, sizeof b3.qs);
    std::memset(b3.hmask, 0, sizeof b3.hmask);  // q = -4 everywhere
    b3.d = fp32_to_fp16(0.5f);
    for (float v : dequantize(type_traits(GgmlType::Q3_K), bytes_of(b3))) CHECK(v == 0.5f * 31 * -4);

    BlockQ6_K b6{};
    b6.d = fp32_to_fp16(0.25f);
    for (int g = 0; g < 16; ++g) b6.scales[g] = static_cast<int8_t>(g % 2 ? -128 : 127);
    std::memset(b6.ql, 0xFF, sizeof b6.ql);
    std::memset(b6.qh, 0xFF, sizeof b6.qh);  // q = 63 - 32 = 31
    y = dequantize(type_traits(GgmlType::Q6_K), bytes_of(b6));
    for (int e = 0; e < QK_K; ++e) CHECK(y[e] == 0.25f * ((e / 16) % 2 ? -128 : 127) * 31);
    // Only the high bits of element 32*s + l for s = 2 (bits 4..5 of qh) set, all low nibbles zero.
    std::memset(b6.ql, 0, sizeof b6.ql);
    std::memset(b6.qh, 0x30, sizeof b6.qh);
    for (int g = 0; g < 16; ++g) b6.scales[g] = 1;
    b6.d = fp32_to_fp16(1.0f);
    y = dequantize(type_traits(GgmlType::Q6_K), bytes_of(b6));
    for (int e = 0; e < QK_K; ++e) CHECK(y[e] == ((e % 128) / 32 == 2 ? 48.0f - 32 : -32.0f));

    BlockQ8_K b8{};
    b8.d = -0.125f;
    for (int j = 0; j < QK_K; ++j) b8.qs[j] = static_cast<int8_t>(j - 128);
    y = dequantize(type_traits(GgmlType::Q8_K), bytes_of(b8));
    for (int j = 0; j < QK_K; ++j) CHECK(y[j] == -0.125f * (j - 128));
}

// ---- quantizers ----------------------------------------------------------------------------------------

TEST_CASE("quant: quantizers round-trip with bounded error") {
    // Per-type bound on max |error| relative to the block's largest magnitude, ~1.2x the worst seen over 200
    // seeds (the quality test below is the real yardstick; this one catches slips that pass on average).
    const std::map<std::string, double> bound = {
        {"q4_0", 0.13}, {"q4_1", 0.075}, {"q5_0", 0.07}, {"q5_1", 0.04},  {"q8_0", 0.006}, {"q2_K", 0.45},
        {"q3_K", 0.3},  {"q4_K", 0.1},   {"q5_K", 0.06}, {"q6_K", 0.025}, {"q8_K", 0.005}};
    for (const std::string name : kQuantNames) {
        CAPTURE(name);
        const TypeTraits& t = *find_type_by_name(name);
        const std::vector<float> x = quant_test::gaussian(3 * 256, 7);
        const std::vector<float> y = quantize_roundtrip(t, x);
        for (size_t b = 0; b < x.size(); b += t.block_elems) {
            float amax = 0;
            for (size_t i = b; i < b + t.block_elems; ++i) amax = std::fmax(amax, std::fabs(x[i]));
            for (size_t i = b; i < b + t.block_elems; ++i)
                REQUIRE(std::fabs(x[i] - y[i]) <= bound.at(name) * amax);
        }
        // All-zero input gives an all-zero output.
        for (float v : quantize_roundtrip(t, std::vector<float>(512, 0.0f))) CHECK(v == 0.0f);
        // Non-finite input must not crash or hit undefined conversions (UBSan builds check the latter).
        std::vector<float> bad = x;
        bad[3] = NAN;
        bad[300] = INFINITY;
        bad[600] = -INFINITY;
        (void)quantize_roundtrip(t, bad);
    }
}

TEST_CASE("quant: q8_K block sums") {
    const std::vector<float> x = quant_test::student_t3(2 * QK_K, 3);
    std::vector<BlockQ8_K> b(2);
    ref::quantize_fn(type_traits(GgmlType::Q8_K))(x.data(), b.data(), 2 * QK_K);
    for (const BlockQ8_K& blk : b) {
        for (int g = 0; g < 16; ++g) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += blk.qs[16 * g + l];
            CHECK(blk.bsums[g] == sum);
        }
        int amax = 0;
        for (int8_t q : blk.qs) amax = std::max(amax, std::abs(static_cast<int>(q)));
        CHECK(amax == 127);
    }
}

// llama.cpp's RMSE for each type and data set, measured by scripts/dev/llamacpp_quant_rmse.c on the very
// same data (generated by the same integer-only PRNG, checked by hash) with ggml's quantize_row_*_ref.
TEST_CASE("quant: quantization quality within 5% of llama.cpp") {
    std::ifstream f(kFixtureDir + "llamacpp_rmse.txt");
    REQUIRE_MESSAGE(f.good(), "missing tests/fixtures/quant/llamacpp_rmse.txt");
    std::map<std::string, double> theirs;  // "type dist" -> rmse
    std::map<std::string, std::string> hashes;
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        std::string kind;
        ls >> kind;
        if (kind == "data") {
            std::string dist, hash;
            ls >> dist >> hash;
            hashes[dist] = hash;
        } else if (kind == "rmse") {
            std::string type, dist;
            double v = 0;
            ls >> type >> dist >> v;
            theirs[type + " " + dist] = v;
        }
    }
    const int64_t n = quant_test::kRows * quant_test::kRowLen;
    for (const std::string dist : {"gaussian", "student_t3"}) {
        const std::vector<float> data =
            dist == "gaussian" ? quant_test::gaussian(n, 1) : quant_test::student_t3(n, 2);
        CAPTURE(dist);
        REQUIRE(hashes.count(dist) == 1);
        CHECK(quant_test::hash_hex(data) == hashes[dist]);  // the same data llama.cpp was measured on
        std::ostringstream table;
        table << "RMSE on " << dist << " (ours / llama.cpp):";
        for (const std::string name : kQuantNames) {
            CAPTURE(name);
            const TypeTraits& t = *find_type_by_name(name);
            REQUIRE(theirs.count(name + " " + dist) == 1);
            const double ref = theirs[name + " " + dist];
            std::vector<uint8_t> q(row_bytes(t, data.size()));
            quantize_rows(t, data.data(), q.data(), quant_test::kRows, quant_test::kRowLen);
            std::vector<float> y(data.size());
            dequantize_rows(t, q.data(), y.data(), quant_test::kRows, quant_test::kRowLen);
            const double ours = quant_test::rmse(data, y);
            table << "  " << name << " " << ours << " / " << ref;
            CHECK(ref > 0);
            CHECK(ours <= 1.05 * ref);
        }
        MESSAGE(table.str());
    }
}

// Stronger than the quality bound: the reference quantizers follow ggml's algorithms operation for operation,
// so on the same input they write the very same bytes as llama.cpp's quantize_row_*_ref (fixture written by
// scripts/dev/llamacpp_quant_rmse.c). This relies on the reference being built without FMA contraction.
TEST_CASE("quant: quantizers write llama.cpp's bytes") {
    const std::vector<uint8_t> file = read_file(kFixtureDir + "llamacpp_quantized.bin");
    REQUIRE(file.size() >= 16);
    REQUIRE(std::memcmp(file.data(), "KQQX", 4) == 0);
    REQUIRE(read_u32(&file[4]) == 1);
    const uint32_t n = read_u32(&file[8]);
    const uint32_t entries = read_u32(&file[12]);
    const std::vector<float> data[2] = {quant_test::gaussian(n, 1), quant_test::student_t3(n, 2)};
    size_t pos = 16;
    std::map<std::string, int> seen;
    for (uint32_t e = 0; e < entries; ++e) {
        REQUIRE(pos + 12 <= file.size());
        const TypeTraits* t = find_type(read_u32(&file[pos]));
        const uint32_t dist = read_u32(&file[pos + 4]);
        const uint32_t size = read_u32(&file[pos + 8]);
        pos += 12;
        REQUIRE(t != nullptr);
        REQUIRE(dist < 2);
        REQUIRE(size == row_bytes(*t, n));
        REQUIRE(pos + size <= file.size());
        CAPTURE(t->name);
        CAPTURE(dist);
        std::vector<uint8_t> ours(size);
        ref::quantize_fn(*t)(data[dist].data(), ours.data(), n);
        size_t differing_blocks = 0;
        for (size_t b = 0; b < size; b += t->block_bytes)
            differing_blocks += std::memcmp(&ours[b], &file[pos + b], t->block_bytes) != 0;
        CHECK(differing_blocks == 0);
        pos += size;
        ++seen[t->name];
    }
    CHECK(pos == file.size());
    for (const std::string name : kQuantNames) CHECK_MESSAGE(seen[name] == 2, name);
}

// ---- row drivers and dot product -----------------------------------------------------------------------

TEST_CASE("quant: quantize_rows / dequantize_rows equal the row functions") {
    for (const std::string name : {"q4_0", "q5_1", "q4_K", "q6_K", "f16"}) {
        CAPTURE(name);
        const TypeTraits& t = *find_type_by_name(name);
        const int64_t rows = 37, len = 512;  // odd row count; > one parallel chunk in total
        const std::vector<float> x = quant_test::gaussian(rows * len, 11);
        std::vector<uint8_t> par(row_bytes(t, rows * len)), ser(par.size());
        quantize_rows(t, x.data(), par.data(), rows, len);
        for (int64_t r = 0; r < rows; ++r)
            ref::quantize_fn(t)(x.data() + r * len, ser.data() + row_bytes(t, r * len), len);
        CHECK(par == ser);
        std::vector<float> y(x.size());
        dequantize_rows(t, par.data(), y.data(), rows, len);
        CHECK(y == dequantize(t, ser));
    }
    const TypeTraits& q4k = type_traits(GgmlType::Q4_K);
    std::vector<float> x(300);
    std::vector<uint8_t> out(1024);
    CHECK_THROWS_AS(quantize_rows(q4k, x.data(), out.data(), 1, 300), UsageError);
    CHECK_THROWS_AS(dequantize_rows(q4k, out.data(), x.data(), 1, 100), UsageError);
    CHECK_THROWS_AS(quantize_rows(type_traits(GgmlType::IQ2_XXS), x.data(), out.data(), 1, 256), UsageError);
}

TEST_CASE("quant: reference vec_dot equals dequantize-then-dot") {
    for (const std::string name : {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K",
                                   "q6_K", "q8_K", "f32", "f16", "bf16"}) {
        CAPTURE(name);
        const TypeTraits& t = *find_type_by_name(name);
        for (int64_t n :
             {int64_t{256}, int64_t{3 * 256}, int64_t{5 * 256 + (t.block_elems == 256 ? 0 : 96)}}) {
            CAPTURE(n);
            const std::vector<float> w = quant_test::student_t3(n, 5);
            const std::vector<float> x = quant_test::gaussian(n, 6);
            std::vector<uint8_t> q(row_bytes(t, n));
            ref::quantize_fn(t)(w.data(), q.data(), n);
            const std::vector<float> wd = dequantize(t, q);
            double expect = 0, scale = 0;
            for (int64_t i = 0; i < n; ++i) {
                expect += static_cast<double>(wd[i]) * x[i];
                scale += std::fabs(static_cast<double>(wd[i]) * x[i]);
            }
            CHECK(std::fabs(ref::vec_dot(t, q.data(), x.data(), n) - expect) <= 1e-6 * scale);
        }
    }
    std::vector<float> x(64);
    std::vector<uint8_t> q(256);
    CHECK_THROWS_AS(ref::vec_dot(type_traits(GgmlType::Q4_0), q.data(), x.data(), 40), UsageError);
    CHECK_THROWS_AS(ref::vec_dot(type_traits(GgmlType::IQ4_NL), q.data(), x.data(), 32), UsageError);
}
