// libFuzzer target for the GGUF reader: any byte string must either parse or throw kinfer::FormatError,
// never crash, hang, leak or allocate without bound. A parsed file is then walked completely (every
// metadata value rendered, every typed accessor tried, every tensor's bytes read) so that sanitizers see
// any view that points outside the input.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/gguf_file.hpp"
#include "kinfer/error.hpp"

namespace {

// Reads every byte of a tensor's view; a view past the input's end is caught by ASan.
uint8_t touch_bytes(const kinfer::gguf::TensorView& t) {
    uint8_t x = 0;
    for (uint64_t i = 0; i < t.n_bytes; ++i) x ^= t.data[i];
    return x;
}

template <class T>
void try_get(const kinfer::gguf::GgufFile& f, std::string_view key) {
    try {
        volatile T v = f.get<T>(key);
        (void)v;
    } catch (const kinfer::FormatError&) {
        // the value does not convert to T: expected for most keys
    }
}

void walk(const kinfer::gguf::GgufFile& f) {
    using namespace kinfer::gguf;
    for (const KeyValue& kv : f.metadata()) {
        volatile size_t n = to_display_string(kv.value).size() + to_json(kv.value, 0).size();
        (void)n;
        if (f.find(kv.key) == nullptr) __builtin_trap();  // every key listed must be found by name
        try_get<uint8_t>(f, kv.key);
        try_get<int32_t>(f, kv.key);
        try_get<uint64_t>(f, kv.key);
        try_get<int64_t>(f, kv.key);
        try_get<double>(f, kv.key);
        try_get<bool>(f, kv.key);
        try_get<std::string_view>(f, kv.key);
        if (kv.value.is_array()) {
            const Array& a = f.get_array(kv.key);
            if (scalar_size(a.type) != 0)
                for (uint64_t i = 0; i < a.count; ++i) {
                    volatile double d = a.scalar_at<double>(i);
                    (void)d;
                }
        }
    }
    volatile uint8_t sink = 0;
    for (const TensorView& t : f.tensors()) {
        if (&f.tensor(t.name) != &t) __builtin_trap();  // names are unique and indexed
        sink = sink ^ touch_bytes(t);
        volatile uint64_t rows = t.n_rows() + t.row_bytes();
        (void)rows;
    }
    (void)sink;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const auto file = kinfer::gguf::GgufFile::from_bytes(std::span<const uint8_t>(data, size), "<fuzz>");
        walk(file);
    } catch (const kinfer::FormatError&) {
        // a clean rejection is a correct outcome
    }
    return 0;
}
