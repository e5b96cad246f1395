#include "kernels/reference/float_rows.hpp"

#include <cstring>

#include "kernels/fp16.hpp"

namespace kinfer::ref {

void dequantize_row_f32(const void* src, float* out, int64_t n) {
    std::memcpy(out, src, sizeof(float) * n);
}
void quantize_row_f32(const float* in, void* dst, int64_t n) {
    std::memcpy(dst, in, sizeof(float) * n);
}

void dequantize_row_f16(const void* src, float* out, int64_t n) {
    const auto* h = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(h[i]);
}
void quantize_row_f16(const float* in, void* dst, int64_t n) {
    auto* h = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(in[i]);
}

void dequantize_row_bf16(const void* src, float* out, int64_t n) {
    const auto* h = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_fp32(h[i]);
}
void quantize_row_bf16(const float* in, void* dst, int64_t n) {
    auto* h = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(in[i]);
}

}  // namespace kinfer::ref
