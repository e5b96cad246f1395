#pragma once
// A GGUF v2/v3 file, memory-mapped read-only. Opening parses and validates the header, metadata and tensor
// table; tensor data is never read here: tensors are views (pointer + type + shape) into the mapping.
#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include <vector>
#include "gguf/file_bytes.hpp"

#include "gguf/ggml_type.hpp"
#include "gguf/gguf_value.hpp"
#include "kinfer/error.hpp"

namespace kinfer::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;

struct TensorView {
    std::string_view name;
    uint32_t n_dims = 0;
    std::array<uint64_t, kMaxDims> ne{1, 1, 1, 1};  // ne[0] is the row length (contiguous)
    const TypeTraits* type = nullptr;
    uint64_t offset = 0;   // relative to the data section
    uint64_t n_bytes = 0;  // exact size of the tensor's data
    const uint8_t* data = nullptr;

    uint64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    uint64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
    uint64_t row_bytes() const { return n_bytes / n_rows(); }
    const uint8_t* row(uint64_t i) const { return data + i * row_bytes(); }
};

// "[4096, 32000]": the sizes in `ne`, the one way every message and table writes a shape.
std::string shape_string(std::span<const uint64_t> ne);
inline std::string shape_string(const TensorView& t) {
    return shape_string(std::span<const uint64_t>(t.ne.data(), t.n_dims ? t.n_dims : 1));
}

struct KeyValue {
    std::string_view key;
    Value value;
    uint64_t offset;  // file offset of the key's length field (for messages)
};

class GgufFile {
  public:
    // Maps and parses `path`. Throws FormatError (naming the file, field and offset) on any malformed input,
    // Error if the file cannot be opened.
    static GgufFile open(const std::string& path);
    // Parses a copy of `bytes` (tests, fuzzing). `name` stands for the path in messages.
    static GgufFile from_bytes(std::span<const uint8_t> bytes, std::string name = "<memory>");

    GgufFile(GgufFile&&) noexcept;
    GgufFile& operator=(GgufFile&&) noexcept;
    ~GgufFile();

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    uint64_t file_size() const { return size_; }
    uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section

    // Metadata in file order.
    const std::vector<KeyValue>& metadata() const { return kvs_; }
    const Value* find(std::string_view key) const;
    bool has(std::string_view key) const { return find(key) != nullptr; }

    // Typed accessors. get<T> throws FormatError if the key is missing or its value does not convert to T
    // without loss (integers of any width convert if the value fits; floats accept any number).
    template <class T>
    T get(std::string_view key) const;
    template <class T>
    T get_or(std::string_view key, T fallback) const {
        return has(key) ? get<T>(key) : fallback;
    }
    const Array& get_array(std::string_view key) const;  // throws if missing or not an array

    const std::vector<TensorView>& tensors() const { return tensors_; }
    const TensorView* find_tensor(std::string_view name) const;
    const TensorView& tensor(std::string_view name) const;  // throws FormatError naming the tensor

  private:
    GgufFile() = default;
    void parse();

    std::string path_;
    FileBytes bytes_;  // an mmap, or a heap copy for in-memory parsing
    const uint8_t* base_ = nullptr;
    uint64_t size_ = 0;
    uint32_t version_ = 0;
    uint32_t alignment_ = kDefaultAlignment;
    uint64_t data_offset_ = 0;
    std::vector<KeyValue> kvs_;
    std::unordered_map<std::string_view, size_t> kv_index_;
    std::vector<TensorView> tensors_;
    std::unordered_map<std::string_view, size_t> tensor_index_;
};

namespace detail {
[[noreturn]] void throw_bad_value(const std::string& path, std::string_view key, const char* wanted,
                                  const Value& v);
[[noreturn]] void throw_missing_key(const std::string& path, std::string_view key);
}  // namespace detail

template <class T>
T GgufFile::get(std::string_view key) const {
    const Value* v = find(key);
    if (!v) detail::throw_missing_key(path_, key);
    if constexpr (std::is_same_v<T, bool>) {
        if (v->type() == ValueType::BOOL) return std::get<bool>(v->v);
        detail::throw_bad_value(path_, key, "bool", *v);
    } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
        if (v->is_string()) return T(v->as_string());
        detail::throw_bad_value(path_, key, "string", *v);
    } else if constexpr (std::is_floating_point_v<T>) {
        if (v->is_number()) return static_cast<T>(v->as_f64());
        detail::throw_bad_value(path_, key, "number", *v);
    } else if constexpr (std::is_integral_v<T>) {
        if (v->is_integer()) {
            if (std::is_signed_v<T>) {
                const bool neg_ok = v->type() != ValueType::U64 || v->as_u64() <= uint64_t(INT64_MAX);
                const int64_t x = v->as_i64();
                if (neg_ok && x >= int64_t(std::numeric_limits<T>::min()) &&
                    x <= int64_t(std::numeric_limits<T>::max()))
                    return static_cast<T>(x);
            } else {
                const bool is_neg = v->type() != ValueType::U64 && v->as_i64() < 0;
                if (!is_neg && v->as_u64() <= uint64_t(std::numeric_limits<T>::max()))
                    return static_cast<T>(v->as_u64());
            }
        }
        detail::throw_bad_value(path_, key, "integer in range", *v);
    } else {
        static_assert(sizeof(T) == 0, "unsupported type for GgufFile::get");
    }
}

}  // namespace kinfer::gguf
