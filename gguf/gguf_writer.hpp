#pragma once
// Writes GGUF v3 files: metadata and tensor infos first, then tensor data streamed in declaration order,
// each tensor padded to the alignment. Nothing but the header is held in memory.
#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf_value.hpp"
#include "gguf/ggml_type.hpp"

namespace kinfer::gguf {

class GgufWriter {
  public:
    GgufWriter();

    // ---- metadata (any order; keys must be unique) ----
    void add_u8(std::string_view key, uint8_t v);
    void add_i8(std::string_view key, int8_t v);
    void add_u16(std::string_view key, uint16_t v);
    void add_i16(std::string_view key, int16_t v);
    void add_u32(std::string_view key, uint32_t v);
    void add_i32(std::string_view key, int32_t v);
    void add_u64(std::string_view key, uint64_t v);
    void add_i64(std::string_view key, int64_t v);
    void add_f32(std::string_view key, float v);
    void add_f64(std::string_view key, double v);
    void add_bool(std::string_view key, bool v);
    void add_string(std::string_view key, std::string_view v);
    void add_strings(std::string_view key, std::span<const std::string> v);
    void add_f32_array(std::string_view key, std::span<const float> v);
    void add_i32_array(std::string_view key, std::span<const int32_t> v);
    // Any value as read by GgufFile (copying metadata between files), nested arrays included.
    void add_value(std::string_view key, const Value& v);
    // Sets general.alignment (a power of two) and uses it for the data layout.
    void set_alignment(uint32_t alignment);
    bool has_key(std::string_view key) const;

    // ---- tensors ----
    // Declares a tensor; ne[0] is the row length and must be a multiple of the type's block size.
    void add_tensor(std::string_view name, GgmlType type, std::span<const uint64_t> ne);
    size_t tensor_count() const { return tensors_.size(); }
    uint64_t tensor_bytes(size_t i) const { return tensors_[i].n_bytes; }

    // ---- output ----
    // Writes the header (metadata and tensor table) to `path`; then call write_tensor_data once per tensor,
    // in declaration order, and finally finish(). Throws Error on I/O failure (naming the path).
    void open(const std::string& path);
    void write_tensor_data(std::span<const uint8_t> bytes);
    // Streams one tensor in pieces: begin_tensor(), write_tensor_chunk()..., the sizes must add up.
    void write_tensor_chunk(std::span<const uint8_t> bytes);
    void finish();

    // Builds the whole file in memory (tests): header plus the given tensor data.
    std::vector<uint8_t> to_bytes(const std::vector<std::span<const uint8_t>>& data);

  private:
    struct TensorInfo {
        std::string name;
        GgmlType type;
        std::vector<uint64_t> ne;
        uint64_t n_bytes;
        uint64_t offset;
    };
    void begin_kv(std::string_view key, ValueType type);
    std::vector<uint8_t> header_bytes() const;
    void write_raw(const void* p, size_t n);
    void pad_to_alignment();

    std::vector<uint8_t> kv_bytes_;
    std::vector<std::string> keys_;
    uint64_t n_kv_ = 0;
    uint32_t alignment_ = 32;
    std::vector<TensorInfo> tensors_;
    uint64_t data_size_ = 0;

    std::string path_;
    std::ofstream out_;
    uint64_t written_ = 0;         // bytes written to out_ so far
    size_t next_tensor_ = 0;       // tensor whose data is being written
    uint64_t tensor_written_ = 0;  // bytes of next_tensor_ written so far
};

}  // namespace kinfer::gguf
