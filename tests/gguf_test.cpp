// GGUF reader and writer: a real llama.cpp-written file, writer -> reader round trips for every value type
// and several tensor types, one malformed file per validation rule (checking the message names the problem
// and the offset), and exhaustive truncation / bit-flip sweeps that must end in FormatError or a clean parse.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/file_bytes.hpp"
#include "gguf/gguf_file.hpp"
#include "gguf/gguf_writer.hpp"
#include "kinfer/error.hpp"

using namespace kinfer;
using namespace kinfer::gguf;

namespace {

// ---- helpers ---------------------------------------------------------------------------------------------
// Builds GGUF bytes field by field, for files the writer refuses to produce.
struct Raw {
    std::vector<uint8_t> b;

    size_t pos() const { return b.size(); }
    template <class T>
    Raw& put(T v) {
        const size_t at = b.size();
        b.resize(at + sizeof(T));
        std::memcpy(b.data() + at, &v, sizeof(T));
        return *this;
    }
    Raw& u32(uint32_t v) { return put(v); }
    Raw& u64(uint64_t v) { return put(v); }
    Raw& str(std::string_view s) {
        u64(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        return u32(kMagic).u32(version).u64(n_tensors).u64(n_kv);
    }
    Raw& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(uint32_t(ValueType::U32)).u32(v); }
    // A tensor info; returns *this. Dims as given (n_dims = ne.size()).
    Raw& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
        str(name).u32(static_cast<uint32_t>(ne.size()));
        for (uint64_t d : ne) u64(d);
        return u32(type).u64(offset);
    }
    Raw& align(size_t a = 32) {
        while (b.size() % a) b.push_back(0);
        return *this;
    }
    Raw& zeros(size_t n) {
        b.insert(b.end(), n, 0);
        return *this;
    }
};

std::string parse_error(std::span<const uint8_t> bytes) {
    try {
        GgufFile::from_bytes(bytes, "test.gguf");
    } catch (const FormatError& e) {
        return e.what();
    }
    return "<parsed without error>";
}

// Asserts that parsing fails with a FormatError whose message contains every one of `parts`.
void expect_error(std::span<const uint8_t> bytes, std::initializer_list<std::string> parts) {
    const std::string msg = parse_error(bytes);
    INFO("message: " << msg);
    CHECK(msg.rfind("test.gguf: invalid GGUF at offset ", 0) == 0);
    for (const auto& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "missing '" << p << "'");
}

std::string at(uint64_t offset) {
    return "at offset " + std::to_string(offset) + ":";
}

std::vector<uint8_t> pattern(uint64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> v(n);
    for (auto& x : v) x = static_cast<uint8_t>(rng());
    return v;
}

// Reads everything a parsed file exposes, the way a consumer would (used on mutated files: under ASan any
// view pointing outside the bytes is caught).
size_t walk_everything(const GgufFile& f) {
    size_t n = 0;
    for (const KeyValue& kv : f.metadata()) {
        n += to_display_string(kv.value).size() + to_json(kv.value).size();
        REQUIRE(f.find(kv.key) == &kv.value);
    }
    for (const TensorView& t : f.tensors()) {
        REQUIRE(&f.tensor(t.name) == &t);
        for (uint64_t i = 0; i < t.n_bytes; ++i) n += t.data[i];
    }
    return n;
}

// Writes a parsed file again with GgufWriter (as the fuzz target does) and checks that the copy parses back
// to the same metadata and tensor bytes.
void rewrite_and_compare(const GgufFile& f) {
    if (f.alignment() > (1u << 20)) return;  // legal, but the copy would hold that much padding
    GgufWriter w;
    for (const KeyValue& kv : f.metadata()) w.add_value(kv.key, kv.value);
    std::vector<std::span<const uint8_t>> data;
    for (const TensorView& t : f.tensors()) {
        w.add_tensor(t.name, t.type->type, std::span<const uint64_t>(t.ne.data(), t.n_dims));
        data.emplace_back(t.data, t.n_bytes);
    }
    const std::vector<uint8_t> bytes = w.to_bytes(data);
    const GgufFile g = GgufFile::from_bytes(bytes, "rewritten.gguf");
    REQUIRE(g.metadata().size() == f.metadata().size());
    REQUIRE(g.tensors().size() == f.tensors().size());
    CHECK(g.alignment() == f.alignment());
    for (size_t i = 0; i < f.metadata().size(); ++i) {
        CHECK(g.metadata()[i].key == f.metadata()[i].key);
        CHECK(to_json(g.metadata()[i].value) == to_json(f.metadata()[i].value));
    }
    for (size_t i = 0; i < f.tensors().size(); ++i) {
        const TensorView &a = f.tensors()[i], &b = g.tensors()[i];
        CHECK(a.name == b.name);
        CHECK(a.type == b.type);
        CHECK(a.ne == b.ne);
        CHECK(std::memcmp(a.data, b.data, a.n_bytes) == 0);
    }
}

std::filesystem::path temp_path(const std::string& name) {
    return std::filesystem::temp_directory_path() /
           ("kinfer_gguf_test_" + std::to_string(::getpid()) + "_" + name);
}

void save(const std::filesystem::path& p, std::span<const uint8_t> bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

Value array_value(ValueType type, std::span<const uint8_t> raw, uint64_t count) {
    Value v;
    v.v = Array{type, count, raw, {}};
    return v;
}
Value array_of(ValueType type, std::vector<Value> items) {
    Value v;
    const uint64_t n = items.size();
    v.v = Array{type, n, {}, std::move(items)};
    return v;
}
Value string_value(std::string_view s) {
    Value v;
    v.v = s;
    return v;
}

// A small file with metadata of several kinds and three tensors (used by the sweeps and the file tests).
struct SmallFile {
    std::vector<uint8_t> bytes;
    std::vector<std::vector<uint8_t>> data;
};
SmallFile small_file() {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_u32("llama.block_count", 2);
    w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    const std::vector<std::string> tokens = {"<unk>", "<s>", "\xe2\x96\x81hi"};
    w.add_strings("tokenizer.ggml.tokens", tokens);
    const std::vector<float> scores = {0.f, -1.f, -2.5f};
    w.add_f32_array("tokenizer.ggml.scores", scores);
    const std::vector<Value> inner = {array_of(ValueType::STRING, {string_value("a")}),
                                      array_of(ValueType::STRING, {})};
    w.add_value("test.nested", array_of(ValueType::ARRAY, inner));
    const uint64_t a[] = {4, 2};
    const uint64_t b[] = {32};
    const uint64_t c[] = {3};
    w.add_tensor("a", GgmlType::F32, a);
    w.add_tensor("b", GgmlType::Q8_0, b);
    w.add_tensor("c", GgmlType::F16, c);
    SmallFile f;
    std::vector<std::span<const uint8_t>> spans;
    for (size_t i = 0; i < w.tensor_count(); ++i) f.data.push_back(pattern(w.tensor_bytes(i), uint32_t(i)));
    for (const auto& d : f.data) spans.emplace_back(d);
    f.bytes = w.to_bytes(spans);
    return f;
}

}  // namespace

// ---- a file written by llama.cpp's own Python writer -----------------------------------------------------
TEST_CASE("gguf: parses llama.cpp's ggml-vocab-llama-spm.gguf") {
    const std::string path = KINFER_DATA_DIR "/vocab/ggml-vocab-llama-spm.gguf";
    if (!std::filesystem::exists(path)) {
        FAIL("committed test data missing: " << path << " is missing");
        return;
    }
    const GgufFile f = GgufFile::open(path);
    CHECK(f.version() == 3);
    CHECK(f.alignment() == 32);
    CHECK(f.tensors().empty());
    CHECK(f.data_offset() <= f.file_size());
    CHECK(f.file_size() == std::filesystem::file_size(path));
    CHECK(f.get<std::string>("general.architecture") == "llama");
    CHECK(f.get<std::string_view>("tokenizer.ggml.model") == "llama");
    CHECK(f.get<uint32_t>("llama.vocab_size") == 32000);
    CHECK(f.get<int64_t>("llama.context_length") == 4096);
    CHECK(f.get<uint32_t>("tokenizer.ggml.bos_token_id") == 1);
    CHECK(f.get<uint32_t>("tokenizer.ggml.eos_token_id") == 2);
    CHECK(f.get<bool>("tokenizer.ggml.add_bos_token") == true);
    CHECK(f.get<float>("llama.attention.layer_norm_rms_epsilon") == doctest::Approx(1e-5));
    CHECK(f.get_or<uint32_t>("no.such.key", 7) == 7);

    const Array& tokens = f.get_array("tokenizer.ggml.tokens");
    CHECK(tokens.type == ValueType::STRING);
    REQUIRE(tokens.count == 32000);
    REQUIRE(tokens.items.size() == 32000);
    CHECK(tokens.string_at(0) == "<unk>");
    CHECK(tokens.string_at(1) == "<s>");
    CHECK(tokens.string_at(2) == "</s>");
    CHECK(tokens.string_at(3) == "<0x00>");
    const Array& scores = f.get_array("tokenizer.ggml.scores");
    CHECK(scores.type == ValueType::F32);
    CHECK(scores.count == 32000);
    const Array& types = f.get_array("tokenizer.ggml.token_type");
    CHECK(types.type == ValueType::I32);
    CHECK(types.count == 32000);
    CHECK(types.scalar_at<int32_t>(0) == 2);  // <unk>: UNKNOWN
    CHECK(types.scalar_at<int32_t>(1) == 3);  // <s>: CONTROL
    CHECK(types.scalar_at<int32_t>(3) == 6);  // <0x00>: BYTE

    // Iteration follows file order: the Python writer puts general.architecture first.
    REQUIRE(f.metadata().size() == 22);
    CHECK(f.metadata().front().key == "general.architecture");
    CHECK(f.metadata()[1].key == "general.name");
    CHECK(f.metadata().back().key == "tokenizer.ggml.add_eos_token");
    CHECK(f.metadata().front().offset == 24);  // right after the 24-byte header
}

// ---- writer -> reader round trips ------------------------------------------------------------------------
TEST_CASE("gguf: every metadata value type round-trips in order") {
    GgufWriter w;
    w.add_u8("u8", 255);
    w.add_i8("i8", -128);
    w.add_u16("u16", 65535);
    w.add_i16("i16", -32768);
    w.add_u32("u32", 4294967295u);
    w.add_i32("i32", std::numeric_limits<int32_t>::min());
    w.add_u64("u64", std::numeric_limits<uint64_t>::max());
    w.add_i64("i64", std::numeric_limits<int64_t>::min());
    w.add_f32("f32", -0.15625f);
    w.add_f64("f64", 1e300);
    w.add_f32("f32.nan", std::nanf(""));
    w.add_bool("bool.t", true);
    w.add_bool("bool.f", false);
    w.add_string("str", "plain");
    w.add_string("str.empty", "");
    w.add_string("str.unicode", "\xe2\x96\x81Gr\xc3\xbc\xc3\x9f \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
    const std::string with_nul("a\0b\nc", 5);
    w.add_string("str.binary", with_nul);
    const std::vector<std::string> strs = {"x", "", "\xc3\xa9t\xc3\xa9", std::string(300, 'z')};
    w.add_strings("arr.str", strs);
    w.add_strings("arr.str.empty", std::span<const std::string>());
    const std::vector<float> fl = {1.f, -2.f, 3.5f};
    w.add_f32_array("arr.f32", fl);
    const std::vector<int32_t> in = {-1, 0, 2147483647};
    w.add_i32_array("arr.i32", in);
    w.add_i32_array("arr.i32.empty", std::span<const int32_t>());
    static const uint8_t bools[] = {1, 0, 0, 1};
    w.add_value("arr.bool", array_value(ValueType::BOOL, bools, 4));
    static const uint64_t u64s[] = {0, 1ull << 63, ~0ull};
    w.add_value("arr.u64",
                array_value(ValueType::U64, {reinterpret_cast<const uint8_t*>(u64s), sizeof u64s}, 3));
    static const int16_t i16s[] = {-5, 5};
    w.add_value("arr.i16",
                array_value(ValueType::I16, {reinterpret_cast<const uint8_t*>(i16s), sizeof i16s}, 2));
    static const double f64s[] = {0.25, -1e-300};
    w.add_value("arr.f64",
                array_value(ValueType::F64, {reinterpret_cast<const uint8_t*>(f64s), sizeof f64s}, 2));
    static const uint16_t u16s[] = {1, 2, 3};
    // [[1, 2, 3], [], [["deep"]]]: nested arrays of different element types.
    const std::vector<Value> nested = {
        array_value(ValueType::U16, {reinterpret_cast<const uint8_t*>(u16s), sizeof u16s}, 3),
        array_value(ValueType::U8, {}, 0),
        array_of(ValueType::ARRAY, {array_of(ValueType::STRING, {string_value("deep")})}),
    };
    w.add_value("arr.nested", array_of(ValueType::ARRAY, nested));
    w.add_value("arr.nested.empty", array_of(ValueType::ARRAY, {}));

    const std::vector<uint8_t> bytes = w.to_bytes({});
    const GgufFile f = GgufFile::from_bytes(bytes);
    CHECK(f.version() == 3);
    CHECK(f.tensors().empty());

    const std::vector<std::pair<std::string, ValueType>> expected_order = {
        {"u8", ValueType::U8},
        {"i8", ValueType::I8},
        {"u16", ValueType::U16},
        {"i16", ValueType::I16},
        {"u32", ValueType::U32},
        {"i32", ValueType::I32},
        {"u64", ValueType::U64},
        {"i64", ValueType::I64},
        {"f32", ValueType::F32},
        {"f64", ValueType::F64},
        {"f32.nan", ValueType::F32},
        {"bool.t", ValueType::BOOL},
        {"bool.f", ValueType::BOOL},
        {"str", ValueType::STRING},
        {"str.empty", ValueType::STRING},
        {"str.unicode", ValueType::STRING},
        {"str.binary", ValueType::STRING},
        {"arr.str", ValueType::ARRAY},
        {"arr.str.empty", ValueType::ARRAY},
        {"arr.f32", ValueType::ARRAY},
        {"arr.i32", ValueType::ARRAY},
        {"arr.i32.empty", ValueType::ARRAY},
        {"arr.bool", ValueType::ARRAY},
        {"arr.u64", ValueType::ARRAY},
        {"arr.i16", ValueType::ARRAY},
        {"arr.f64", ValueType::ARRAY},
        {"arr.nested", ValueType::ARRAY},
        {"arr.nested.empty", ValueType::ARRAY},
    };
    REQUIRE(f.metadata().size() == expected_order.size());
    for (size_t i = 0; i < expected_order.size(); ++i) {
        CAPTURE(i);
        CHECK(f.metadata()[i].key == expected_order[i].first);
        CHECK(f.metadata()[i].value.type() == expected_order[i].second);
    }

    CHECK(f.get<uint8_t>("u8") == 255);
    CHECK(f.get<int8_t>("i8") == -128);
    CHECK(f.get<uint16_t>("u16") == 65535);
    CHECK(f.get<int16_t>("i16") == -32768);
    CHECK(f.get<uint32_t>("u32") == 4294967295u);
    CHECK(f.get<int32_t>("i32") == std::numeric_limits<int32_t>::min());
    CHECK(f.get<uint64_t>("u64") == std::numeric_limits<uint64_t>::max());
    CHECK(f.get<int64_t>("i64") == std::numeric_limits<int64_t>::min());
    CHECK(f.get<float>("f32") == -0.15625f);
    CHECK(f.get<double>("f64") == 1e300);
    CHECK(std::isnan(f.get<float>("f32.nan")));
    CHECK(f.get<bool>("bool.t") == true);
    CHECK(f.get<bool>("bool.f") == false);
    CHECK(f.get<std::string>("str") == "plain");
    CHECK(f.get<std::string>("str.empty").empty());
    CHECK(f.get<std::string>("str.unicode") ==
          "\xe2\x96\x81Gr\xc3\xbc\xc3\x9f \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
    CHECK(f.get<std::string>("str.binary") == with_nul);

    const Array& s = f.get_array("arr.str");
    REQUIRE(s.count == strs.size());
    for (size_t i = 0; i < strs.size(); ++i) CHECK(s.string_at(i) == strs[i]);
    CHECK(f.get_array("arr.str.empty").count == 0);
    CHECK(f.get_array("arr.str.empty").type == ValueType::STRING);
    const Array& af = f.get_array("arr.f32");
    REQUIRE(af.count == 3);
    CHECK(af.scalar_at<float>(2) == 3.5f);
    const Array& ai = f.get_array("arr.i32");
    REQUIRE(ai.count == 3);
    CHECK(ai.scalar_at<int32_t>(0) == -1);
    CHECK(ai.scalar_at<int32_t>(2) == 2147483647);
    CHECK(f.get_array("arr.i32.empty").count == 0);
    CHECK(f.get_array("arr.i32.empty").type == ValueType::I32);
    const Array& ab = f.get_array("arr.bool");
    REQUIRE(ab.count == 4);
    CHECK(ab.scalar_at<bool>(0));
    CHECK_FALSE(ab.scalar_at<bool>(1));
    CHECK(ab.scalar_at<bool>(3));
    CHECK(f.get_array("arr.u64").scalar_at<uint64_t>(1) == 1ull << 63);
    CHECK(f.get_array("arr.u64").scalar_at<uint64_t>(2) == ~0ull);
    CHECK(f.get_array("arr.i16").scalar_at<int16_t>(0) == -5);
    CHECK(f.get_array("arr.f64").scalar_at<double>(1) == -1e-300);

    const Array& n = f.get_array("arr.nested");
    CHECK(n.type == ValueType::ARRAY);
    REQUIRE(n.count == 3);
    const Array& n0 = n.items[0].as_array();
    CHECK(n0.type == ValueType::U16);
    REQUIRE(n0.count == 3);
    CHECK(n0.scalar_at<uint16_t>(2) == 3);
    CHECK(n.items[1].as_array().count == 0);
    CHECK(n.items[1].as_array().type == ValueType::U8);
    const Array& n2 = n.items[2].as_array();
    REQUIRE(n2.count == 1);
    REQUIRE(n2.items[0].as_array().count == 1);
    CHECK(n2.items[0].as_array().string_at(0) == "deep");
    CHECK(to_display_string(n.items[2]) == "[[\"deep\"]]");
    CHECK(f.get_array("arr.nested.empty").count == 0);

    // Copying every value to a second writer reproduces the file byte for byte.
    GgufWriter copy;
    for (const KeyValue& kv : f.metadata()) copy.add_value(kv.key, kv.value);
    CHECK(copy.to_bytes({}) == bytes);
}

TEST_CASE("gguf: typed accessors convert only without loss") {
    GgufWriter w;
    w.add_u8("u8", 200);
    w.add_i32("neg", -1);
    w.add_u64("big", 1ull << 63);
    w.add_i64("i64", 1234);
    w.add_f32("f", 0.5f);
    w.add_string("s", "text");
    w.add_bool("b", true);
    const std::vector<uint8_t> bytes = w.to_bytes({});
    const GgufFile f = GgufFile::from_bytes(bytes, "acc.gguf");

    CHECK(f.get<int32_t>("u8") == 200);
    CHECK(f.get<uint8_t>("u8") == 200);
    CHECK_THROWS_AS(f.get<int8_t>("u8"), FormatError);
    CHECK(f.get<int64_t>("neg") == -1);
    CHECK_THROWS_AS(f.get<uint32_t>("neg"), FormatError);
    CHECK_THROWS_AS(f.get<uint64_t>("neg"), FormatError);
    CHECK(f.get<uint64_t>("big") == 1ull << 63);
    CHECK_THROWS_AS(f.get<int64_t>("big"), FormatError);
    CHECK(f.get<uint16_t>("i64") == 1234);
    CHECK(f.get<double>("i64") == 1234.0);
    CHECK(f.get<double>("f") == 0.5);
    CHECK_THROWS_AS(f.get<int32_t>("f"), FormatError);
    CHECK_THROWS_AS(f.get<bool>("u8"), FormatError);
    CHECK_THROWS_AS(f.get<int32_t>("b"), FormatError);
    CHECK_THROWS_AS(f.get<std::string>("u8"), FormatError);
    CHECK_THROWS_AS(f.get<float>("s"), FormatError);
    CHECK_THROWS_AS(f.get_array("s"), FormatError);
    CHECK(f.get_or<int32_t>("missing", -3) == -3);
    CHECK(f.get_or<std::string>("missing", "dflt") == "dflt");
    CHECK(f.get_or<std::string>("s", "dflt") == "text");
    CHECK_THROWS_AS(f.get_or<int32_t>("s", 1), FormatError);  // present but of the wrong type: an error

    try {
        f.get<uint32_t>("no.such.key");
        FAIL("expected an error");
    } catch (const FormatError& e) {
        CHECK(std::string(e.what()) == "acc.gguf: missing metadata key 'no.such.key'");
    }
    try {
        f.get<int8_t>("u8");
        FAIL("expected an error");
    } catch (const FormatError& e) {
        const std::string m = e.what();
        CHECK(m.find("'u8'") != std::string::npos);
        CHECK(m.find("200") != std::string::npos);
    }
}

TEST_CASE("gguf: tensors of several types and shapes round-trip through a file (alignment 64)") {
    GgufWriter w;
    w.set_alignment(64);
    w.add_string("general.architecture", "llama");
    struct Spec {
        const char* name;
        GgmlType type;
        std::vector<uint64_t> ne;
        uint64_t bytes;
    };
    const std::vector<Spec> specs = {
        {"t.f32", GgmlType::F32, {8, 3}, 8 * 3 * 4},
        {"t.f16", GgmlType::F16, {5}, 10},
        {"t.q8_0", GgmlType::Q8_0, {64, 2, 3}, 2 * 2 * 3 * 34},
        {"t.q4_K", GgmlType::Q4_K, {256, 1, 1, 2}, 2 * 144},
        {"t.bf16", GgmlType::BF16, {1, 1, 1, 7}, 14},
        {"t.q6_K", GgmlType::Q6_K, {512, 1}, 2 * 210},
    };
    for (const auto& s : specs) w.add_tensor(s.name, s.type, s.ne);
    std::vector<std::vector<uint8_t>> data;
    for (size_t i = 0; i < specs.size(); ++i) {
        REQUIRE(w.tensor_bytes(i) == specs[i].bytes);
        data.push_back(pattern(specs[i].bytes, uint32_t(100 + i)));
    }

    const auto path = temp_path("tensors.gguf");
    w.open(path.string());
    for (size_t i = 0; i < data.size(); ++i) {
        if (i == 2) {  // stream one tensor in pieces
            const std::span<const uint8_t> all(data[i]);
            w.write_tensor_chunk(all.first(100));
            w.write_tensor_chunk(all.subspan(100));
        } else {
            w.write_tensor_data(data[i]);
        }
    }
    w.finish();

    {
        const GgufFile f = GgufFile::open(path.string());
        CHECK(f.alignment() == 64);
        CHECK(f.get<uint32_t>("general.alignment") == 64);
        CHECK(f.data_offset() % 64 == 0);
        REQUIRE(f.tensors().size() == specs.size());
        for (size_t i = 0; i < specs.size(); ++i) {
            CAPTURE(specs[i].name);
            const TensorView& t = f.tensors()[i];
            CHECK(t.name == specs[i].name);
            CHECK(t.type == &type_traits(specs[i].type));
            CHECK(t.n_dims == specs[i].ne.size());
            for (size_t d = 0; d < kMaxDims; ++d)
                CHECK(t.ne[d] == (d < specs[i].ne.size() ? specs[i].ne[d] : 1));
            CHECK(t.n_bytes == specs[i].bytes);
            CHECK(t.offset % 64 == 0);
            CHECK(reinterpret_cast<uintptr_t>(t.data) % 64 == 0);  // page-aligned mapping + multiple of 64
            CHECK(std::memcmp(t.data, data[i].data(), data[i].size()) == 0);
            CHECK(&f.tensor(specs[i].name) == &t);
        }
        CHECK(f.tensor("t.q8_0").n_rows() == 6);
        CHECK(f.tensor("t.q8_0").row_bytes() == 68);
        CHECK(f.find_tensor("nope") == nullptr);
        try {
            f.tensor("nope");
            FAIL("expected an error");
        } catch (const FormatError& e) {
            CHECK(std::string(e.what()).find("missing tensor 'nope'") != std::string::npos);
        }

        // Zero copy: the views point into a read-only mapping of this very file, not into heap memory.
        std::ifstream maps("/proc/self/maps");
        const std::string canonical = std::filesystem::canonical(path).string();
        const auto addr = reinterpret_cast<uintptr_t>(f.tensors()[0].data);
        bool found = false;
        for (std::string line; std::getline(maps, line);) {
            std::istringstream ls(line);
            std::string range, perms, off, dev, inode, file;
            ls >> range >> perms >> off >> dev >> inode >> file;
            const auto dash = range.find('-');
            const uintptr_t lo = std::stoull(range.substr(0, dash), nullptr, 16);
            const uintptr_t hi = std::stoull(range.substr(dash + 1), nullptr, 16);
            if (addr >= lo && addr < hi) {
                found = true;
                CHECK(file == canonical);
                CHECK(perms.substr(0, 2) == "r-");
            }
        }
        CHECK(found);
    }
    // The in-memory writer produces the same bytes as the streaming one.
    std::vector<std::span<const uint8_t>> spans(data.begin(), data.end());
    std::ifstream in(path, std::ios::binary);
    const std::vector<uint8_t> on_disk((std::istreambuf_iterator<char>(in)),
                                       std::istreambuf_iterator<char>());
    CHECK(w.to_bytes(spans) == on_disk);
    std::filesystem::remove(path);
}

TEST_CASE("gguf: version 2 files parse; the data section of a tensorless file may be unpadded") {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    std::vector<uint8_t> bytes = w.to_bytes({});
    bytes[4] = 2;  // version 2 has the same layout as 3 (64-bit counts)
    const GgufFile v2 = GgufFile::from_bytes(bytes);
    CHECK(v2.version() == 2);
    CHECK(v2.get<std::string>("general.architecture") == "llama");

    // llama.cpp does not pad a file without tensors: the header then ends at EOF.
    Raw r;
    r.header(0, 1).str("general.architecture").u32(uint32_t(ValueType::STRING)).str("x");
    REQUIRE(r.pos() % 32 != 0);
    const GgufFile unpadded = GgufFile::from_bytes(r.b);
    CHECK(unpadded.data_offset() == r.pos());
    CHECK(unpadded.data_offset() <= unpadded.file_size());
}

// ---- one malformed file per validation rule --------------------------------------------------------------
TEST_CASE("gguf: bad magic, big-endian and unsupported versions") {
    Raw ok;
    ok.header(0, 0);
    std::vector<uint8_t> b = ok.b;
    b[0] = 'X';
    expect_error(b, {at(0), "bad magic"});

    Raw be;  // a big-endian file: the magic bytes read "GGUF", the version is byte-swapped
    be.u32(kMagic).u32(0x03000000).u64(0).u64(0);
    expect_error(be.b, {at(4), "big-endian"});

    Raw v7;
    v7.header(0, 0, 7);
    expect_error(v7.b, {at(4), "unsupported GGUF version 7"});
    Raw v1;
    v1.header(0, 0, 1);
    expect_error(v1.b, {at(4), "version 1 is not supported"});
    expect_error(std::span<const uint8_t>(), {at(0), "truncated", "magic"});
}

TEST_CASE("gguf: counts and lengths larger than the file could hold") {
    Raw t;
    t.header(1ull << 40, 0);
    expect_error(t.b, {at(8), "tensor count 1099511627776 cannot fit"});
    Raw k;
    k.header(0, ~0ull);
    expect_error(k.b, {at(16), "metadata count"});

    Raw key;
    key.header(0, 1).u64(1000).zeros(20);
    expect_error(key.b, {at(24), "metadata key length 1000 exceeds"});

    Raw str;
    str.header(0, 1).str("k").u32(uint32_t(ValueType::STRING)).u64(~0ull).zeros(20);
    expect_error(str.b, {at(24 + 9 + 4), "string value length 18446744073709551615 exceeds"});

    Raw arr;  // 2^61 u64 items: count * 8 would wrap around to 8 bytes
    arr.header(0, 1)
        .str("k")
        .u32(uint32_t(ValueType::ARRAY))
        .u32(uint32_t(ValueType::U64))
        .u64((1ull << 61) + 1)
        .zeros(16);
    expect_error(arr.b, {at(24 + 9 + 4 + 4), "array length 2305843009213693953 of u64 cannot fit"});

    Raw sarr;  // array of strings: each needs at least its 8-byte length
    sarr.header(0, 1)
        .str("k")
        .u32(uint32_t(ValueType::ARRAY))
        .u32(uint32_t(ValueType::STRING))
        .u64(3)
        .zeros(16);
    expect_error(sarr.b, {at(24 + 9 + 4 + 4), "array length 3 of string cannot fit"});

    Raw name;
    name.header(1, 0).u64(1ull << 62).zeros(40);
    expect_error(name.b, {at(24), "tensor name length"});
}

TEST_CASE("gguf: malformed metadata values") {
    Raw type;
    type.header(0, 1).str("k").u32(13).u32(0);
    expect_error(type.b, {at(33), "unknown value type 13 for key 'k'"});

    Raw elem;
    elem.header(0, 1).str("k").u32(uint32_t(ValueType::ARRAY)).u32(99).u64(0);
    expect_error(elem.b, {at(37), "unknown array element type 99"});

    Raw b;
    b.header(0, 1).str("k").u32(uint32_t(ValueType::BOOL)).put<uint8_t>(2);
    expect_error(b.b, {at(37), "bool value 2"});

    Raw ba;
    ba.header(0, 1).str("k").u32(uint32_t(ValueType::ARRAY)).u32(uint32_t(ValueType::BOOL)).u64(3);
    ba.put<uint8_t>(1).put<uint8_t>(0).put<uint8_t>(7);
    expect_error(ba.b, {at(24 + 9 + 4 + 4 + 8 + 2), "bool array item 2 is 7"});

    Raw deep;  // arrays nested 9 deep
    deep.header(0, 1).str("k").u32(uint32_t(ValueType::ARRAY));
    for (int i = 0; i < 9; ++i) deep.u32(uint32_t(ValueType::ARRAY)).u64(1);
    deep.zeros(16);
    expect_error(deep.b, {"nested deeper than 8"});

    Raw empty_key;
    empty_key.header(0, 1).str("").u32(uint32_t(ValueType::U8)).put<uint8_t>(0);
    expect_error(empty_key.b, {at(24), "empty metadata key"});

    Raw dup;
    dup.header(0, 2).kv_u32("a.b", 1);
    const size_t second = dup.pos();
    dup.kv_u32("a.b", 2);
    expect_error(dup.b, {at(second), "duplicate metadata key 'a.b'"});
}

TEST_CASE("gguf: general.alignment must be a power-of-two u32") {
    Raw z;
    z.header(0, 1).kv_u32("general.alignment", 0);
    expect_error(z.b, {at(24), "general.alignment 0 is not a power of two"});
    Raw t;
    t.header(0, 1).kv_u32("general.alignment", 48);
    expect_error(t.b, {at(24), "48 is not a power of two"});
    Raw w;
    w.header(0, 1).str("general.alignment").u32(uint32_t(ValueType::U64)).u64(32);
    expect_error(w.b, {at(24), "general.alignment must be a u32"});
}

TEST_CASE("gguf: malformed tensor infos") {
    const uint32_t f32 = 0, q8_0 = 8;
    SUBCASE("n_dims outside 1..4") {
        for (uint32_t n : {0u, 5u, 0xffffffffu}) {
            Raw r;
            r.header(1, 0).str("w").u32(n).zeros(64);
            expect_error(
                r.b, {at(24 + 9), "tensor 'w' has " + std::to_string(n) + " dimensions (1 to 4 allowed)"});
        }
    }
    SUBCASE("zero dimension") {
        Raw r;
        r.header(1, 0).tensor("w", {4, 0}, f32, 0).align().zeros(64);
        expect_error(r.b, {at(24 + 9 + 4 + 8), "tensor 'w' ne[1] is zero"});
    }
    SUBCASE("element count overflows 64 bits") {
        Raw r;
        r.header(1, 0).tensor("w", {1ull << 32, 1ull << 30, 4}, f32, 0).align().zeros(64);
        expect_error(r.b, {at(24 + 9 + 4 + 16), "tensor 'w' ne[2] = 4: element count overflows 64 bits"});
        Raw neg;  // a dimension that is negative as int64 (as ggml stores it)
        neg.header(1, 0).tensor("w", {1ull << 63}, f32, 0).align().zeros(64);
        expect_error(neg.b, {at(24 + 9 + 4), "ne[0] = 9223372036854775808: element count overflows"});
    }
    SUBCASE("byte size overflows 64 bits") {
        Raw r;  // 2^62 f32 elements are representable, their 2^64 bytes are not
        r.header(1, 0).tensor("w", {1ull << 62}, f32, 0).align().zeros(64);
        expect_error(r.b, {at(24 + 9), "tensor 'w' byte size", "overflows 64 bits"});
    }
    SUBCASE("row length not a multiple of the block size") {
        Raw r;
        r.header(1, 0).tensor("w", {48, 2}, q8_0, 0).align().zeros(256);
        expect_error(r.b, {at(24 + 9 + 4),
                           "tensor 'w' row length ne[0] = 48 is not a multiple of the q8_0 block size 32"});
    }
    SUBCASE("unknown type id names the tensor") {
        Raw r;
        r.header(1, 0)
            .tensor("blk.0.ffn_up.weight", {32}, 4, 0)
            .align()
            .zeros(64);  // 4 and 5 are retired ids
        expect_error(r.b, {at(24 + 27 + 4 + 8), "tensor 'blk.0.ffn_up.weight' has unknown ggml type id 4"});
        Raw big;
        big.header(1, 0).tensor("x", {32}, 1000, 0).align().zeros(64);
        expect_error(big.b, {"tensor 'x' has unknown ggml type id 1000"});
    }
    SUBCASE("misaligned data offset") {
        Raw r;
        r.header(1, 0).tensor("w", {4}, f32, 16).align().zeros(64);
        expect_error(
            r.b, {at(24 + 9 + 4 + 8 + 4), "tensor 'w' data offset 16 is not a multiple of the alignment 32"});
        Raw a64;  // aligned to 32 but the file declares 64
        a64.header(1, 1).kv_u32("general.alignment", 64);
        const size_t info = a64.pos();
        a64.tensor("w", {4}, f32, 32).align(64).zeros(128);
        expect_error(a64.b, {at(info + 9 + 4 + 8 + 4), "not a multiple of the alignment 64"});
    }
    SUBCASE("duplicate tensor name") {
        Raw r;
        r.header(2, 0).tensor("x", {8}, f32, 0);
        const size_t second = r.pos();
        r.tensor("x", {8}, f32, 32).align().zeros(64);
        expect_error(r.b, {at(second), "duplicate tensor name 'x'"});
    }
    SUBCASE("empty tensor name") {
        Raw r;
        r.header(1, 0).tensor("", {8}, f32, 0).align().zeros(64);
        expect_error(r.b, {at(24), "tensor 0 has an empty name"});
    }
    SUBCASE("data running past the end of the file") {
        Raw r;
        r.header(2, 0).tensor("a", {8}, f32, 0);
        const size_t b_info = r.pos();
        r.tensor("b", {16}, f32, 32).align();
        const size_t data = r.pos();
        r.zeros(32 + 63);  // b needs 64 bytes at data + 32: one short
        expect_error(r.b, {at(b_info + 9 + 4 + 8 + 4), "tensor 'b' data (64 bytes at data offset 32",
                           "file offset " + std::to_string(data) + " + 32", "runs past the end of the file"});
        Raw huge;  // an offset so large that offset + size wraps around 64 bits
        huge.header(1, 0).tensor("w", {4}, f32, ~0ull - 31).align().zeros(64);
        expect_error(huge.b, {"tensor 'w' data", "runs past the end of the file"});
    }
    SUBCASE("data section missing after the tensor table") {
        Raw r;
        r.header(1, 0).tensor("w", {4}, f32, 0);
        expect_error(r.b, {"truncated file: the tensor data section should start at offset 64"});
    }
}

TEST_CASE("gguf: claimed counts never turn into big allocations (sparse 8 GiB file)") {
    // A huge file of zeros whose header claims as many entries as its size allows (hundreds of millions).
    // The reader must fail on the first entry without first reserving memory for all of them.
    for (const bool tensors : {false, true}) {
        CAPTURE(tensors);
        const auto path = temp_path(tensors ? "sparse_t.gguf" : "sparse_k.gguf");
        {
            Raw r;
            const uint64_t size = 8ull << 30;
            r.header(tensors ? size / 40 : 0, tensors ? 0 : size / 16);
            save(path, r.b);
            if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
                MESSAGE("skipped: cannot create a sparse file in " << path.parent_path());
                std::filesystem::remove(path);
                return;
            }
        }
        try {
            GgufFile::open(path.string());
            FAIL("expected an error");
        } catch (const FormatError& e) {
            CHECK(std::string(e.what()).find(tensors ? "has an empty name" : "empty metadata key") !=
                  std::string::npos);
        }
        std::filesystem::remove(path);
    }
}

// ---- exhaustive corruption sweeps ------------------------------------------------------------------------
TEST_CASE("gguf: a file truncated at every byte offset gives FormatError or a clean parse") {
    const SmallFile sf = small_file();
    const GgufFile whole = GgufFile::from_bytes(sf.bytes);
    const TensorView& last = whole.tensors().back();
    const uint64_t needed = whole.data_offset() + last.offset + last.n_bytes;  // the rest is padding
    size_t errors = 0;
    for (size_t len = 0; len < sf.bytes.size(); ++len) {
        CAPTURE(len);
        const std::span<const uint8_t> prefix(sf.bytes.data(), len);
        try {
            const GgufFile f = GgufFile::from_bytes(prefix);
            CHECK(len >= needed);  // only trailing padding may go missing
            walk_everything(f);
        } catch (const FormatError&) {
            ++errors;
            CHECK(len < needed);
        }
    }
    CHECK(errors == needed);
}

TEST_CASE("gguf: every single-bit flip of the header gives FormatError or a clean parse") {
    const SmallFile sf = small_file();
    const uint64_t header_end = GgufFile::from_bytes(sf.bytes).data_offset();
    size_t parsed = 0, errors = 0;
    std::vector<uint8_t> bytes = sf.bytes;
    for (uint64_t byte = 0; byte < header_end; ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            bytes[byte] ^= uint8_t(1u << bit);
            try {
                const GgufFile f = GgufFile::from_bytes(bytes);
                walk_everything(f);
                ++parsed;
            } catch (const FormatError&) {
                ++errors;
            }
            bytes[byte] ^= uint8_t(1u << bit);
        }
    }
    MESSAGE((header_end * 8) << " flips: " << parsed << " parsed, " << errors << " rejected");
    CHECK(parsed + errors == header_end * 8);
    CHECK(errors > 0);
    CHECK(parsed > 0);  // flips inside string bytes or values leave a valid file
}

TEST_CASE("gguf: random multi-byte corruption gives FormatError or a clean parse") {
    const SmallFile sf = small_file();
    std::mt19937 rng(1234);
    for (int round = 0; round < 2000; ++round) {
        std::vector<uint8_t> bytes = sf.bytes;
        const int n = 1 + int(rng() % 8);
        for (int i = 0; i < n; ++i) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
        try {
            walk_everything(GgufFile::from_bytes(bytes));
        } catch (const FormatError&) {
        }
    }
}

TEST_CASE("gguf: fuzzer regression inputs (tests/fixtures/gguf/*.bin) are handled cleanly") {
    const std::filesystem::path dir = KINFER_SOURCE_DIR "/tests/fixtures/gguf";
    size_t n = 0;
    if (!std::filesystem::exists(dir)) {
        MESSAGE("no regression inputs in " << dir.string());
        return;
    }
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().extension() != ".bin") continue;
        CAPTURE(entry.path().string());
        std::ifstream in(entry.path(), std::ios::binary);
        const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                         std::istreambuf_iterator<char>());
        std::optional<GgufFile> f;
        try {
            f.emplace(GgufFile::from_bytes(bytes, entry.path().filename().string()));
        } catch (const FormatError& e) {
            CHECK(std::string(e.what()).find("invalid GGUF at offset") != std::string::npos);
        }
        if (f) {
            walk_everything(*f);
            rewrite_and_compare(*f);
        }
        ++n;
    }
    MESSAGE(n << " regression inputs replayed");
}

TEST_CASE("gguf: opening a missing or non-regular file is an Error naming the path") {
    try {
        GgufFile::open("/nonexistent/dir/model.gguf");
        FAIL("expected an error");
    } catch (const FormatError&) {
        FAIL("a missing file is not a format error");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("/nonexistent/dir/model.gguf: cannot open") == 0);
    }
    CHECK_THROWS_AS(GgufFile::open(std::filesystem::temp_directory_path().string()), Error);
    const auto empty = temp_path("empty.gguf");
    save(empty, {});
    CHECK_THROWS_AS(GgufFile::open(empty.string()), FormatError);
    std::filesystem::remove(empty);
}

// ---- writer misuse ---------------------------------------------------------------------------------------
TEST_CASE("gguf writer: a huge alignment is padded in one step") {
    // Found by the fuzzer: a tensorless file declaring alignment 2^29 made the writer pad byte by byte.
    GgufWriter w;
    w.set_alignment(1u << 24);
    w.add_string("general.architecture", "llama");
    const std::vector<uint8_t> bytes = w.to_bytes({});
    CHECK(bytes.size() == 1u << 24);
    const GgufFile f = GgufFile::from_bytes(bytes);
    CHECK(f.alignment() == 1u << 24);
    CHECK(f.data_offset() == bytes.size());
    CHECK(f.get<std::string>("general.architecture") == "llama");
}

TEST_CASE("gguf writer: refuses what would produce an invalid file") {
    GgufWriter w;
    w.add_u32("k", 1);
    CHECK_THROWS_AS(w.add_string("k", "again"), UsageError);
    CHECK_THROWS_AS(w.add_u8("", 1), UsageError);
    CHECK_THROWS_AS(w.add_u64("general.alignment", 64), UsageError);  // must be u32
    CHECK_THROWS_AS(w.set_alignment(48), UsageError);
    w.add_u32("general.alignment", 16);  // routed to set_alignment: the layout follows it
    const uint64_t ne[] = {48};
    CHECK_THROWS_AS(w.add_tensor("q", GgmlType::Q8_0, ne), UsageError);  // 48 % 32 != 0
    const uint64_t zero[] = {0};
    CHECK_THROWS_AS(w.add_tensor("z", GgmlType::F32, zero), UsageError);
    const uint64_t huge[] = {1ull << 40, 1ull << 40};
    CHECK_THROWS_AS(w.add_tensor("h", GgmlType::F32, huge), UsageError);
    const uint64_t five[] = {1, 1, 1, 1, 1};
    CHECK_THROWS_AS(w.add_tensor("five", GgmlType::F32, five), UsageError);
    const uint64_t four[] = {4};
    CHECK_THROWS_AS(w.add_tensor("", GgmlType::F32, four), UsageError);
    w.add_tensor("t", GgmlType::F32, four);
    CHECK_THROWS_AS(w.add_tensor("t", GgmlType::F32, four), UsageError);
    CHECK_THROWS_AS(w.set_alignment(64), UsageError);  // after tensors

    // Hand-built values that do not describe themselves consistently.
    static const uint8_t two_bytes[] = {1, 2};
    CHECK_THROWS_AS(w.add_value("bad.count", array_value(ValueType::U32, two_bytes, 1)), UsageError);
    static const uint8_t bad_bool[] = {2};
    CHECK_THROWS_AS(w.add_value("bad.bool", array_value(ValueType::BOOL, bad_bool, 1)), UsageError);
    CHECK_THROWS_AS(w.add_value("bad.items", array_of(ValueType::STRING, {array_of(ValueType::U8, {})})),
                    UsageError);
    CHECK_FALSE(w.has_key("bad.count"));

    const std::vector<uint8_t> wrong(15);
    CHECK_THROWS_AS(w.to_bytes({wrong}), UsageError);
    const std::vector<uint8_t> right(16, 0xab);
    const std::vector<uint8_t> bytes = w.to_bytes({right});
    const GgufFile f = GgufFile::from_bytes(bytes);
    CHECK(f.alignment() == 16);
    CHECK(f.data_offset() % 16 == 0);
    CHECK(f.tensor("t").data[15] == 0xab);

    const auto path = temp_path("writer_misuse.gguf");
    w.open(path.string());
    CHECK_THROWS_AS(w.add_u8("late", 1), UsageError);
    CHECK_THROWS_AS(w.write_tensor_data(wrong), UsageError);
    CHECK_THROWS_AS(w.finish(), UsageError);  // tensor data missing
    w.write_tensor_data(right);
    CHECK_THROWS_AS(w.write_tensor_data(right), UsageError);  // more tensors than declared
    w.finish();
    CHECK(GgufFile::open(path.string()).tensor("t").data[0] == 0xab);
    std::filesystem::remove(path);
}

// The advice is what makes a first read of a 7B file land in 2 MiB folios (gguf/file_bytes.cpp); the
// mapping must carry it wherever the kernel takes MADV_HUGEPAGE at all (checked on an anonymous probe).
TEST_CASE("file bytes: a mapped model file carries the huge-page advice (VmFlags hg)") {
    void* probe = ::mmap(nullptr, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(probe != MAP_FAILED);
    const bool kernel_takes_advice = ::madvise(probe, 4 << 20, MADV_HUGEPAGE) == 0;
    ::munmap(probe, 4 << 20);
    if (!kernel_takes_advice) {
        MESSAGE("skipped: this kernel refuses MADV_HUGEPAGE");
        return;
    }
    const auto path = std::filesystem::temp_directory_path() / ("kinfer_hg_" + std::to_string(::getpid()));
    {
        std::ofstream out(path, std::ios::binary);
        const std::vector<char> zeros(3 << 20, 0);
        out.write(zeros.data(), std::streamsize(zeros.size()));
    }
    const FileBytes bytes = FileBytes::map(path.string());
    const auto start = reinterpret_cast<uintptr_t>(bytes.data());
    std::ifstream smaps("/proc/self/smaps");
    std::string line, flags;
    bool in_mapping = false;
    while (std::getline(smaps, line)) {
        uintptr_t lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' '))
            in_mapping = lo <= start && start < hi;
        else if (in_mapping && line.rfind("VmFlags:", 0) == 0)
            flags = line;
    }
    std::filesystem::remove(path);
    INFO("smaps line: " << flags);
    CHECK(flags.find(" hg") != std::string::npos);
}
