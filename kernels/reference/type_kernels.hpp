#pragma once
// The scalar reference kernels per ggml type: how to read (dequantize) and write (quantize) rows of a type.
// Null where kinfer cannot read or write the type. Resolve once per tensor, not per row.
#include <cstdint>

#include "gguf/ggml_type.hpp"

namespace kinfer::ref {

// Reads `n` elements (a multiple of the block size) from consecutive blocks into floats.
using DequantizeRowFn = void (*)(const void* blocks, float* out, int64_t n);
// Writes `n` floats (a multiple of the block size) as consecutive blocks.
using QuantizeRowFn = void (*)(const float* in, void* blocks, int64_t n);

DequantizeRowFn dequantize_fn(GgmlType type);
QuantizeRowFn quantize_fn(GgmlType type);
inline DequantizeRowFn dequantize_fn(const TypeTraits& t) {
    return dequantize_fn(t.type);
}
inline QuantizeRowFn quantize_fn(const TypeTraits& t) {
    return quantize_fn(t.type);
}

}  // namespace kinfer::ref
