// libFuzzer target for the safetensors reader: any byte string must either parse or throw
// kinfer::FormatError, never crash, hang, leak or allocate without bound. A parsed file is walked completely
// (every float element read, every tensor's bytes touched) so that sanitizers see any view outside the input.
#include <cstddef>
#include <cstdint>
#include <span>

#include "kinfer/error.hpp"
#include "safetensors/safetensors_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace kinfer::safetensors;
    try {
        const SafetensorsFile f = SafetensorsFile::from_bytes(std::span<const uint8_t>(data, size), "fuzz");
        volatile float sink = 0;
        for (const Tensor& t : f.tensors()) {
            uint8_t x = 0;
            for (uint64_t i = 0; i < t.n_bytes; ++i) x ^= t.data[i];
            sink = sink + float(x);
            if (is_float_dtype(t.dtype))
                for (uint64_t i = 0; i < t.n_elements(); ++i) sink = sink + load_element(t.dtype, t.data, i);
            if (f.find(t.name) != &t) __builtin_trap();
        }
        for (const auto& [k, v] : f.metadata()) sink = sink + float(k.size() + v.size());
    } catch (const kinfer::FormatError&) {
    }
    return 0;
}
