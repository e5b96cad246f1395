#pragma once
// Scalar reference conversions for the plain float formats (F32, F16, BF16).
#include <cstdint>

namespace kinfer::ref {

void dequantize_row_f32(const void* src, float* out, int64_t n);
void quantize_row_f32(const float* in, void* dst, int64_t n);
void dequantize_row_f16(const void* src, float* out, int64_t n);
void quantize_row_f16(const float* in, void* dst, int64_t n);
void dequantize_row_bf16(const void* src, float* out, int64_t n);
void quantize_row_bf16(const float* in, void* dst, int64_t n);

}  // namespace kinfer::ref
