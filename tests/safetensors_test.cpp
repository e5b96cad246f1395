// The safetensors reader: well-formed files give exact views; every hostile header (huge length, bad JSON,
// offsets out of range or overlapping, sizes that do not match dtype x shape, duplicate names) gives a
// FormatError that names the file and, where one is at fault, the tensor.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "safetensors/safetensors_file.hpp"
#include "tests/support/safetensors_builder.hpp"

using namespace kinfer;
using namespace kinfer::safetensors;
using kinfer::test::safetensors_bytes;
using kinfer::test::safetensors_raw;
using kinfer::test::st_tensor;

namespace {

std::string parse_error(const std::vector<uint8_t>& bytes) {
    try {
        SafetensorsFile::from_bytes(bytes, "test.safetensors");
    } catch (const FormatError& e) {
        return e.what();
    }
    return "<parsed without error>";
}

void expect_error(const std::vector<uint8_t>& bytes, std::initializer_list<std::string> parts) {
    const std::string msg = parse_error(bytes);
    INFO("message: " << msg);
    CHECK(msg.rfind("test.safetensors: invalid safetensors file: ", 0) == 0);
    for (const auto& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "missing '" << p << "'");
}

std::vector<uint8_t> bytes_of(size_t n) {
    return std::vector<uint8_t>(n, 0x3c);
}

}  // namespace

TEST_CASE("safetensors: tensors of each float dtype read back exactly, in data order") {
    const std::vector<float> a{1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, 65504.0f};
    const std::vector<float> b{0.5f, -0.75f, 2.0f, 4.0f};
    const auto bytes =
        safetensors_bytes({st_tensor("model.a", "F32", {2, 3}, a), st_tensor("model.b", "F16", {4}, b),
                           st_tensor("model.c", "BF16", {2, 2}, b)});
    const auto f = SafetensorsFile::from_bytes(bytes, "x.safetensors");
    REQUIRE(f.tensors().size() == 3);
    CHECK(f.metadata().at("format") == "pt");
    const Tensor& ta = f.tensor("model.a");
    CHECK(ta.dtype == DType::F32);
    CHECK(ta.shape == std::vector<uint64_t>{2, 3});
    CHECK(ta.n_elements() == 6);
    CHECK(ta.shape_string() == "[2, 3]");
    for (size_t i = 0; i < a.size(); ++i) CHECK(load_element(ta.dtype, ta.data, i) == a[i]);
    const Tensor& tb = f.tensor("model.b");
    CHECK(tb.dtype == DType::F16);
    CHECK(tb.offset == 24);
    for (size_t i = 0; i < b.size(); ++i) CHECK(load_element(tb.dtype, tb.data, i) == b[i]);
    const Tensor& tc = f.tensor("model.c");
    CHECK(tc.dtype == DType::BF16);
    for (size_t i = 0; i < b.size(); ++i) CHECK(load_element(tc.dtype, tc.data, i) == b[i]);
    CHECK(f.tensors()[0].name == "model.a");
    CHECK(f.find("nope") == nullptr);
    CHECK_THROWS_WITH_AS(f.tensor("nope"), "x.safetensors: no tensor 'nope'", FormatError);
    CHECK(dtype_size(DType::BF16) == 2);
    CHECK(std::string(dtype_name(DType::F8_E4M3)) == "F8_E4M3");
}

TEST_CASE("safetensors: a file on disk is mapped; scalars, empty tensors and non-float dtypes parse") {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("kinfer_st_" + std::to_string(::getpid()) + ".safetensors"))
                                 .string();
    const std::string header = R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                               R"("e":{"dtype":"F16","shape":[0,7],"data_offsets":[4,4]},)"
                               R"("i":{"dtype":"I64","shape":[2],"data_offsets":[4,20]}})";
    std::vector<uint8_t> data(20, 0);
    const float one = 1.0f;
    std::memcpy(data.data(), &one, 4);
    kinfer::test::write_file(path, safetensors_raw(header, data));
    const auto f = SafetensorsFile::open(path);
    std::filesystem::remove(path);
    CHECK(f.path() == path);
    CHECK(f.tensor("s").shape.empty());
    CHECK(f.tensor("s").n_elements() == 1);
    CHECK(load_element(DType::F32, f.tensor("s").data, 0) == 1.0f);
    CHECK(f.tensor("e").n_elements() == 0);
    CHECK(f.tensor("i").dtype == DType::I64);
    CHECK_FALSE(is_float_dtype(DType::I64));
    CHECK_THROWS_AS(SafetensorsFile::open(path), Error);  // gone
}

TEST_CASE("safetensors: hostile header lengths") {
    expect_error({1, 2, 3}, {"only 3 bytes"});
    std::vector<uint8_t> huge(16, 0);
    const uint64_t big = ~0ull;
    std::memcpy(huge.data(), &big, 8);
    expect_error(huge, {"header length 18446744073709551615 exceeds the format's limit"});
    const uint64_t past = 9;
    std::memcpy(huge.data(), &past, 8);
    expect_error(huge, {"header length 9 exceeds the 8 bytes after the length field"});
    expect_error(safetensors_raw("", {}), {"cannot hold a JSON object"});
}

TEST_CASE("safetensors: bad JSON and wrong JSON shapes") {
    expect_error(safetensors_raw("{\"a\": ", {}), {"header is not valid JSON"});
    expect_error(safetensors_raw("{\"a\":1} trailing", {}), {"header is not valid JSON"});
    expect_error(safetensors_raw("[1, 2, 3]", {}), {"header is array, not a JSON object"});
    expect_error(safetensors_raw(R"({"t": 5})", {}), {"tensor 't': entry is 5, not an object"});
    expect_error(safetensors_raw(R"({"__metadata__": {"k": 1}})", {}), {"__metadata__ value 'k'"});
    expect_error(safetensors_raw(R"({"__metadata__": [1]})", {}), {"__metadata__ is not an object"});
    expect_error(safetensors_raw(R"({"t": {"shape": [1], "data_offsets": [0, 4]}})", bytes_of(4)),
                 {"tensor 't': no dtype string"});
    expect_error(
        safetensors_raw(R"({"t": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}})", bytes_of(4)),
        {"tensor 't': unknown dtype \"F33\""});
    expect_error(safetensors_raw(R"({"t": {"dtype": "F32", "data_offsets": [0, 4]}})", bytes_of(4)),
                 {"tensor 't': no shape array"});
    expect_error(
        safetensors_raw(R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", bytes_of(4)),
        {"tensor 't': shape [-1] has an entry that is not a count"});
    expect_error(
        safetensors_raw(R"({"t": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", bytes_of(4)),
        {"tensor 't'", "not a count"});
    expect_error(
        safetensors_raw(R"({"t": {"dtype": "F32", "shape": [1,1,1,1,1,1,1,1,1], "data_offsets": [0, 4]}})",
                        bytes_of(4)),
        {"tensor 't': shape has 9 dimensions"});
    expect_error(
        safetensors_raw(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", bytes_of(4)),
        {"tensor 't': data_offsets is not a pair"});
    expect_error(safetensors_raw(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}})",
                                 bytes_of(4)),
                 {"tensor 't': unexpected field 'x'"});
    expect_error(
        safetensors_raw(R"({"": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", bytes_of(4)),
        {"empty name"});
}

TEST_CASE("safetensors: duplicate names are refused, not collapsed") {
    expect_error(safetensors_raw(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                                 R"( "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                                 bytes_of(8)),
                 {"tensor 'w' appears twice"});
    // The same key inside an entry is not a tensor name (nlohmann keeps the last; it must then be valid).
    CHECK_NOTHROW(SafetensorsFile::from_bytes(safetensors_raw(
        R"({"w": {"dtype": "F16", "dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", bytes_of(4))));
}

TEST_CASE("safetensors: sizes and offsets must match dtype x shape and tile the data exactly") {
    // Wrong dtype size: 4 F32 need 16 bytes, the offsets give 8.
    expect_error(
        safetensors_raw(R"({"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}})", bytes_of(8)),
        {"tensor 't': holds 8 bytes, but F32 [4] needs 16"});
    expect_error(
        safetensors_raw(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", bytes_of(8)),
        {"tensor 't': data_offsets [8, 4] run backwards"});
    expect_error(
        safetensors_raw(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", bytes_of(8)),
        {"tensor 't': data_offsets end 12 lies past the 8 bytes"});
    expect_error(
        safetensors_raw(R"({"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 18446744073709551615]}})",
                        bytes_of(8)),
        {"tensor 't'", "lies past"});
    expect_error(safetensors_raw(
                     R"({"t": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})",
                     bytes_of(8)),
                 {"tensor 't'", "overflows 64 bits"});
    expect_error(safetensors_raw(
                     R"({"t": {"dtype": "F64", "shape": [4294967296, 2147483648], "data_offsets": [0, 8]}})",
                     bytes_of(8)),
                 {"tensor 't'", "overflows 64 bits in bytes"});
    // Overlap: b starts inside a.
    expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                                 R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                 bytes_of(12)),
                 {"tensor 'b' (bytes 4..12) overlaps tensor 'a'"});
    // Two tensors on the same bytes.
    expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                                 R"( "b": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}})",
                                 bytes_of(4)),
                 {"overlaps"});
    // A hole between tensors, and bytes after the last.
    expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                                 R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
                                 bytes_of(12)),
                 {"bytes 4..8 of the data belong to no tensor (before tensor 'b')"});
    expect_error(
        safetensors_raw(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", bytes_of(6)),
        {"the last 2 bytes of the data belong to no tensor"});
}

TEST_CASE("safetensors: deep JSON nesting and random corruption end in FormatError or a clean parse") {
    // 100k nested arrays: the parser must neither overflow the stack nor accept it.
    std::string deep = "{\"t\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
    expect_error(safetensors_raw(deep, {}), {"nests JSON deeper"});
    expect_error(
        safetensors_raw(R"({"t": {"dtype": "F32", "shape": [[1]], "data_offsets": [0, 4]}})", bytes_of(4)),
        {"tensor 't': shape [[1]] has an entry that is not a count"});

    const auto good = safetensors_bytes({st_tensor("a.weight", "F32", {3, 5}, std::vector<float>(15, 1.0f)),
                                         st_tensor("b.weight", "BF16", {7}, std::vector<float>(7, 2.0f))});
    std::mt19937 rng(7);
    int parsed = 0;
    for (int trial = 0; trial < 2000; ++trial) {
        auto bytes = good;
        const int flips = 1 + int(rng() % 3);
        for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] ^= uint8_t(1u << (rng() % 8));
        if (trial % 5 == 0) bytes.resize(rng() % bytes.size());
        try {
            const auto f = SafetensorsFile::from_bytes(bytes);
            for (const auto& t : f.tensors())
                if (is_float_dtype(t.dtype))
                    for (uint64_t i = 0; i < t.n_elements(); ++i) (void)load_element(t.dtype, t.data, i);
            ++parsed;
        } catch (const FormatError&) {
        }
    }
    CHECK(parsed < 2000);
}
