#pragma once
// Builds .safetensors bytes for tests: well-formed files from tensors, or any header text with any data.
#include <cstdint>
#include <string>
#include <vector>

namespace kinfer::test {

struct StTensor {
    std::string name;
    std::string dtype;            // "F32", "F16", "BF16", ...
    std::vector<uint64_t> shape;  // row-major
    std::vector<uint8_t> bytes;   // the raw data
};

// A float tensor with `values` stored as dtype (F32, F16 or BF16; F16/BF16 rounded to nearest even).
StTensor st_tensor(std::string name, std::string dtype, std::vector<uint64_t> shape,
                   const std::vector<float>& values);

// A file with the tensors back to back, in the given order, header padded with spaces to 8 bytes.
std::vector<uint8_t> safetensors_bytes(const std::vector<StTensor>& tensors);
// A file whose header is exactly `header` (length written as given) followed by `data`.
std::vector<uint8_t> safetensors_raw(const std::string& header, const std::vector<uint8_t>& data);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
void write_file(const std::string& path, const std::string& text);

}  // namespace kinfer::test
