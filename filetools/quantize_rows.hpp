#pragma once
// Whole-tensor (de)quantization in memory on all cores (OpenMP), with the scalar reference row functions.
// Quantizing goes through the same driver as writing model files (filetools/row_stream.hpp). For tools,
// tests and benchmarks; not a per-token hot path.
#include <cstdint>

#include "gguf/ggml_type.hpp"

namespace kinfer {

// Quantizes n_rows rows of row_len floats into consecutive rows of `type`'s blocks (row_bytes(type, row_len)
// bytes each). Throws UsageError if the type cannot be written or row_len is not a multiple of its block
// size.
void quantize_rows(const TypeTraits& type, const float* in, void* out, int64_t n_rows, int64_t row_len);

// The inverse: n_rows rows of `type` blocks into n_rows * row_len floats.
void dequantize_rows(const TypeTraits& type, const void* in, float* out, int64_t n_rows, int64_t row_len);

}  // namespace kinfer
