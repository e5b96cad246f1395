#pragma once
// The one table of ggml tensor formats as GGUF stores them: id, name, block geometry. Everything that needs
// to know how big a row of type T is asks here; how to compute with a type is the kernels' business
// (kernels/reference/type_kernels.hpp for the scalar reference, kernels/cpu, kernels/cuda).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kinfer {

// ggml's type ids as stored in GGUF tensor infos (ggml.h, gguf-py constants.py). Gaps are retired ids.
enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
    Q2_0 = 42,
};

struct TypeTraits {
    GgmlType type;
    const char* name;      // ggml's spelling: "f32", "q4_K", ...
    uint32_t block_elems;  // elements per block (1 for plain types)
    uint32_t block_bytes;  // bytes per block
};

// Traits for a raw type id from a file; null for ids ggml does not define.
const TypeTraits* find_type(uint32_t id);
// Traits for a known type (never null).
const TypeTraits& type_traits(GgmlType type);
// Case-insensitive lookup by ggml name ("q4_k", "F16"); null if unknown.
const TypeTraits* find_type_by_name(std::string_view name);
inline const char* type_name(GgmlType type) {
    return type_traits(type).name;
}

// Bytes needed for a row of `n` elements; n must be a multiple of the block size.
inline uint64_t row_bytes(const TypeTraits& t, uint64_t n) {
    return n / t.block_elems * t.block_bytes;
}

// Every entry of the table, for iteration (inspect, tests).
struct TypeTable {
    const TypeTraits* begin_;
    const TypeTraits* end_;
    const TypeTraits* begin() const { return begin_; }
    const TypeTraits* end() const { return end_; }
};
TypeTable all_types();

}  // namespace kinfer
