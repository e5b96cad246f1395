#pragma once
// Scalar reference dot product of one quantized row with a float vector: what every fast dot-product kernel
// (CPU SIMD, CUDA) is tested against.
#include <cstdint>

#include "gguf/ggml_type.hpp"

namespace kinfer::ref {

// sum_i dequantize(row)[i] * x[i] for n elements (a multiple of the type's block size), accumulated in
// double. Throws UsageError for a type kinfer cannot read or an n that does not fit the blocks.
float vec_dot(const TypeTraits& type, const void* row, const float* x, int64_t n);

}  // namespace kinfer::ref
