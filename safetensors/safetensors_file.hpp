#pragma once
// A .safetensors file, memory-mapped read-only: an 8-byte little-endian header length, a JSON header
// ({"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}), then the raw tensor bytes.
// Opening validates the header strictly (the format's rules: offsets inside the data, no overlaps, no holes,
// sizes that match dtype x shape, unique names); tensors are zero-copy views into the mapping.
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/file_bytes.hpp"
#include "kinfer/error.hpp"

namespace kinfer::safetensors {

// Every dtype the format defines (their sizes validate the header); kinfer converts only the float ones
// F32, F16 and BF16 (is_float_dtype).
enum class DType { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U64, U32, U16, U8, BOOL };

const char* dtype_name(DType t);  // "BF16"
size_t dtype_size(DType t);
bool is_float_dtype(DType t);  // F32, F16 or BF16: the ones load_element reads

// Largest JSON header accepted (the format's own limit).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
// Largest number of dimensions accepted.
constexpr size_t kMaxDims = 8;

struct Tensor {
    std::string name;
    DType dtype = DType::F32;
    std::vector<uint64_t> shape;  // row-major, as PyTorch writes it: shape.back() is contiguous
    uint64_t offset = 0;          // relative to the start of the data section
    uint64_t n_bytes = 0;
    const uint8_t* data = nullptr;  // not aligned: read elements with memcpy

    uint64_t n_elements() const;
    std::string shape_string() const;  // "[4096, 1024]"
};

class SafetensorsFile {
  public:
    // Maps and validates `path`. Throws FormatError naming the file (and the tensor, where one is at
    // fault) on malformed input, Error if the file cannot be opened.
    static SafetensorsFile open(const std::string& path);
    // Parses a copy of `bytes` (tests). `name` stands for the path in messages.
    static SafetensorsFile from_bytes(std::span<const uint8_t> bytes, std::string name = "<memory>");

    SafetensorsFile(SafetensorsFile&&) noexcept;
    SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
    ~SafetensorsFile();

    const std::string& path() const { return path_; }
    uint64_t file_size() const { return size_; }
    uint64_t data_offset() const { return data_offset_; }

    // In data order (by offset).
    const std::vector<Tensor>& tensors() const { return tensors_; }
    const Tensor* find(std::string_view name) const;
    const Tensor& tensor(std::string_view name) const;  // throws FormatError naming the file and tensor
    // The optional "__metadata__" string map.
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

  private:
    SafetensorsFile() = default;
    void parse();

    std::string path_;
    FileBytes bytes_;  // an mmap, or a heap copy for in-memory parsing
    const uint8_t* base_ = nullptr;
    uint64_t size_ = 0;
    uint64_t data_offset_ = 0;
    std::vector<Tensor> tensors_;
    std::unordered_map<std::string_view, size_t> index_;
    std::map<std::string, std::string> metadata_;
};

// Reads element i of a F32/F16/BF16 tensor's bytes as float (other dtypes: precondition violated).
float load_element(DType t, const uint8_t* data, uint64_t i);

}  // namespace kinfer::safetensors
