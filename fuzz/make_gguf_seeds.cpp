// Writes the seed corpus for gguf_reader_fuzz: small valid GGUF files covering every metadata value type,
// nested arrays, several tensor types and alignments, and (if given) a cut-down copy of a real vocabulary
// file. Usage: make_gguf_seeds OUT_DIR [VOCAB.gguf]
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/gguf_file.hpp"
#include "gguf/gguf_writer.hpp"

namespace {

using namespace kinfer;
using namespace kinfer::gguf;

void save(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw Error(path.string() + ": write failed");
    GgufFile::from_bytes(bytes, path.string());  // every seed must be valid
    std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

std::vector<uint8_t> filler(uint64_t n, uint8_t start) {
    std::vector<uint8_t> v(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(start + i * 7);
    return v;
}

std::vector<uint8_t> all_value_types() {
    GgufWriter w;
    w.add_u8("t.u8", 200);
    w.add_i8("t.i8", -100);
    w.add_u16("t.u16", 60000);
    w.add_i16("t.i16", -30000);
    w.add_u32("t.u32", 4000000000u);
    w.add_i32("t.i32", -2000000000);
    w.add_u64("t.u64", 1ull << 60);
    w.add_i64("t.i64", -(1ll << 60));
    w.add_f32("t.f32", 1.5f);
    w.add_f64("t.f64", -2.25);
    w.add_bool("t.bool", true);
    w.add_string("t.str", "h\xc3\xa9llo");
    w.add_string("t.empty", "");
    const std::vector<std::string> strs = {"a", "", "\xe2\x96\x81x"};
    w.add_strings("t.strs", strs);
    const std::vector<float> f = {0.5f, -1.0f};
    w.add_f32_array("t.f32s", f);
    const std::vector<int32_t> i = {};
    w.add_i32_array("t.i32s", i);
    static const uint8_t bools[] = {1, 0, 1};
    Value inner1, inner2, outer;
    inner1.v = Array{ValueType::BOOL, 3, bools, {}};
    inner2.v = Array{ValueType::BOOL, 0, {}, {}};
    outer.v = Array{ValueType::ARRAY, 2, {}, {inner1, inner2}};
    w.add_value("t.nested", outer);
    return w.to_bytes({});
}

std::vector<uint8_t> with_tensors(uint32_t alignment) {
    GgufWriter w;
    if (alignment != 32) w.set_alignment(alignment);
    w.add_string("general.architecture", "llama");
    const uint64_t a[] = {8, 2};
    const uint64_t b[] = {64, 1, 2};
    const uint64_t c[] = {3};
    const uint64_t d[] = {256, 1, 1, 1};
    w.add_tensor("a.f32", GgmlType::F32, a);
    w.add_tensor("b.q8_0", GgmlType::Q8_0, b);
    w.add_tensor("c.f16", GgmlType::F16, c);
    w.add_tensor("d.q4_K", GgmlType::Q4_K, d);
    std::vector<std::vector<uint8_t>> data;
    std::vector<std::span<const uint8_t>> spans;
    for (size_t t = 0; t < w.tensor_count(); ++t) data.push_back(filler(w.tensor_bytes(t), uint8_t(t)));
    for (const auto& x : data) spans.emplace_back(x);
    return w.to_bytes(spans);
}

// All of a real vocabulary file's metadata, arrays cut to their first 8 items.
std::vector<uint8_t> cut_vocab(const std::string& path) {
    const GgufFile src = GgufFile::open(path);
    GgufWriter w;
    for (const KeyValue& kv : src.metadata()) {
        if (!kv.value.is_array()) {
            w.add_value(kv.key, kv.value);
            continue;
        }
        Value cut = kv.value;
        Array& a = std::get<Array>(cut.v);
        a.count = std::min<uint64_t>(a.count, 8);
        if (scalar_size(a.type))
            a.raw = a.raw.first(a.count * scalar_size(a.type));
        else
            a.items.resize(a.count);
        w.add_value(kv.key, cut);
    }
    return w.to_bytes({});
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: make_gguf_seeds OUT_DIR [VOCAB.gguf]\n");
        return 2;
    }
    try {
        const std::filesystem::path dir = argv[1];
        std::filesystem::create_directories(dir);
        save(dir / "empty.gguf", GgufWriter().to_bytes({}));
        save(dir / "values.gguf", all_value_types());
        save(dir / "tensors32.gguf", with_tensors(32));
        save(dir / "tensors64.gguf", with_tensors(64));
        if (argc > 2) save(dir / "vocab_cut.gguf", cut_vocab(argv[2]));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_gguf_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
