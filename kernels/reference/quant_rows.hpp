#pragma once
// Scalar reference (de)quantizers for ggml's block formats (layouts in kernels/blocks.hpp).
//
// dequantize_row_*: bit-exact with ggml for every block (any codes, any finite scale); fast kernels are
// tested against these. quantize_row_*: imatrix-free, same algorithms as ggml's quantize_row_*_ref (the
// ones llama-quantize uses without --imatrix). `n` is the element count, a multiple of the block size.
#include <cstdint>

namespace kinfer::ref {

void dequantize_row_q4_0(const void* blocks, float* out, int64_t n);
void dequantize_row_q4_1(const void* blocks, float* out, int64_t n);
void dequantize_row_q5_0(const void* blocks, float* out, int64_t n);
void dequantize_row_q5_1(const void* blocks, float* out, int64_t n);
void dequantize_row_q8_0(const void* blocks, float* out, int64_t n);
void dequantize_row_q2_k(const void* blocks, float* out, int64_t n);
void dequantize_row_q3_k(const void* blocks, float* out, int64_t n);
void dequantize_row_q4_k(const void* blocks, float* out, int64_t n);
void dequantize_row_q5_k(const void* blocks, float* out, int64_t n);
void dequantize_row_q6_k(const void* blocks, float* out, int64_t n);
void dequantize_row_q8_k(const void* blocks, float* out, int64_t n);

void quantize_row_q4_0(const float* in, void* blocks, int64_t n);
void quantize_row_q4_1(const float* in, void* blocks, int64_t n);
void quantize_row_q5_0(const float* in, void* blocks, int64_t n);
void quantize_row_q5_1(const float* in, void* blocks, int64_t n);
void quantize_row_q8_0(const float* in, void* blocks, int64_t n);
void quantize_row_q2_k(const float* in, void* blocks, int64_t n);
void quantize_row_q3_k(const float* in, void* blocks, int64_t n);
void quantize_row_q4_k(const float* in, void* blocks, int64_t n);
void quantize_row_q5_k(const float* in, void* blocks, int64_t n);
void quantize_row_q6_k(const float* in, void* blocks, int64_t n);
void quantize_row_q8_k(const float* in, void* blocks, int64_t n);

}  // namespace kinfer::ref
