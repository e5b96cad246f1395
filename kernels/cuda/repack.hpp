#pragma once
// Host side of the device weight layout (kernels/cuda/repacked.hpp): GGUF rows -> repacked rows, at upload.
// Plain C++ (no CUDA), so the CPU tests check it against the scalar reference without a GPU.
#include <cstdint>
#include <string>

#include "gguf/ggml_type.hpp"

namespace kinfer::cuda {

// Whether the GPU kernels read `type`.
bool has_device_layout(GgmlType type);

// Bytes of one repacked row of `cols` elements (a multiple of 16, so every row starts 16-byte aligned).
// Throws UsageError naming `what` when the type has no device layout or cols is not a multiple of 32 (and of
// the type's block size).
uint64_t repacked_row_bytes(const TypeTraits& type, int64_t cols, const std::string& what);

// Repacks n_rows GGUF rows of `cols` elements (row r at src + r * row_bytes(type, cols)) into dst
// (n_rows * repacked_row_bytes bytes). Parallel over rows (OpenMP).
void repack_rows(const TypeTraits& type, const void* src, int64_t n_rows, int64_t cols, void* dst,
                 const std::string& what);

// Dequantizes one repacked row on the host through the very unpacking code the kernels run (tests).
void dequantize_repacked_row(GgmlType type, const void* row, int64_t cols, float* out);

}  // namespace kinfer::cuda
