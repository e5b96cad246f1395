// Prefill matrix products (more tokens than matvec takes): the weight is dequantized to fp16 in row slices,
// the activation rounded to fp16 once, and cuBLAS multiplies on the tensor cores with fp32 accumulation and
// output. fp16 activations keep 11 significant bits, more than the 8 of llama.cpp's q8_1 activations.
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/kernels.hpp"
#include "kernels/cuda/repacked.hpp"

namespace kinfer::cuda {
namespace {

using namespace repacked;

// Rows of W per slice: bounds the fp16 copy of the weight in the scratch.
constexpr int64_t kSliceElems = int64_t(32) << 20;  // 64 MiB of fp16

// One thread per 32-element group.
template <class L>
__global__ void dequant_f16_kernel(const uint8_t* __restrict__ w, int64_t row_bytes, int64_t first_row,
                                   int64_t n_rows, int n_groups, int n_records, __half* __restrict__ out) {
    const int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (idx >= n_rows * n_groups) return;
    const int64_t r = idx / n_groups;
    const int g = static_cast<int>(idx % n_groups);
    typename L::G grp;
    L::load(w + (first_row + r) * row_bytes, n_records, g, grp);
    __align__(16) __half vals[32];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        float v[16];
        L::values(grp, h, v);
#pragma unroll
        for (int i = 0; i < 16; ++i) vals[16 * h + i] = __float2half_rn(fmaf(grp.a[h], v[i], grp.b[h]));
    }
    uint4* dst = reinterpret_cast<uint4*>(out + r * n_groups * kGroupElems + int64_t(g) * kGroupElems);
#pragma unroll
    for (int i = 0; i < 4; ++i) dst[i] = reinterpret_cast<const uint4*>(vals)[i];
}

__global__ void to_f16_kernel(const float* __restrict__ x, int64_t n, __half* __restrict__ out) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        out[i] = __float2half_rn(x[i]);
}

// One cuBLAS handle per device, made on first use (handles are thread-safe to share given a stream per call
// under the mutex).
std::mutex g_blas_mutex;
cublasHandle_t blas_handle() {
    static cublasHandle_t handle = [] {
        cublasHandle_t h = nullptr;
        if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) throw Error("CUDA: cublasCreate failed");
        return h;
    }();
    return handle;
}

int64_t slice_rows(int64_t cols) {
    return std::max<int64_t>(1, kSliceElems / cols);
}

}  // namespace

void dequantize_to_f16(const DeviceMatrix& w, int64_t first_row, int64_t n_rows, void* out_dev,
                       Stream stream) {
    if (n_rows <= 0) return;
    const int n_groups = static_cast<int>(w.cols / kGroupElems);
    const int n_records = static_cast<int>(ceil_div<int64_t>(w.cols, kRecordElems));
    const int64_t threads = n_rows * n_groups;
    with_layout(w.type, [&](auto layout) {
        using L = decltype(layout);
        dequant_f16_kernel<L>
            <<<static_cast<unsigned>(ceil_div<int64_t>(threads, 256)), 256, 0, as_stream(stream)>>>(
                static_cast<const uint8_t*>(w.data), int64_t(w.row_bytes), first_row, n_rows, n_groups,
                n_records, static_cast<__half*>(out_dev));
    });
    check_launch("dequantize_to_f16");
}

size_t matmul_scratch_bytes(int64_t max_cols, int n_tokens) {
    const size_t decode =
        sizeof(float) * size_t(std::min(n_tokens, kMaxMatvecTokens) * activation_floats(max_cols));
    if (n_tokens <= kMaxMatvecTokens) return decode;
    const int64_t x_elems = (int64_t(n_tokens) * max_cols + 127) / 128 * 128;
    return std::max(decode, sizeof(__half) * size_t(x_elems + slice_rows(max_cols) * max_cols));
}

void matmul(const DeviceMatrix& w, const float* x_dev, int n_tokens, float* out_dev, int64_t out_stride,
            const GemmScratch& scratch, Stream stream) {
    if (n_tokens <= 0) return;
    if (scratch.bytes < matmul_scratch_bytes(w.cols, n_tokens))
        throw Error("internal error: matmul scratch too small for " + std::to_string(n_tokens) + " tokens");
    if (n_tokens <= kMaxMatvecTokens) {
        prepare_activation(x_dev, n_tokens, w.cols, static_cast<float*>(scratch.data), stream);
        matvec(w, static_cast<const float*>(scratch.data), n_tokens, out_dev, out_stride, stream);
        return;
    }
    const cudaStream_t s = as_stream(stream);
    const int64_t x_elems = (int64_t(n_tokens) * w.cols + 127) / 128 * 128;
    __half* xh = static_cast<__half*>(scratch.data);
    __half* wh = xh + x_elems;
    to_f16_kernel<<<static_cast<unsigned>(std::min<int64_t>(ceil_div<int64_t>(n_tokens * w.cols, 256), 4096)),
                    256, 0, s>>>(x_dev, n_tokens * w.cols, xh);
    check_launch("matmul to_f16");
    const std::lock_guard<std::mutex> lock(g_blas_mutex);
    cublasHandle_t h = blas_handle();
    if (cublasSetStream(h, s) != CUBLAS_STATUS_SUCCESS) throw Error("CUDA: cublasSetStream failed");
    const float one = 1.0f, zero = 0.0f;
    const int64_t slice = slice_rows(w.cols);
    for (int64_t r0 = 0; r0 < w.rows; r0 += slice) {
        const int64_t n = std::min(slice, w.rows - r0);
        dequantize_to_f16(w, r0, n, wh, stream);
        // Column-major view: out^T[r][t] = sum_i Wslice^T... C (n x n_tokens, ld out_stride) = A^T B with
        // A = the slice as K x n (lda K), B = x as K x n_tokens (ldb K).
        const cublasStatus_t st = cublasGemmEx(
            h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), n_tokens, static_cast<int>(w.cols), &one, wh,
            CUDA_R_16F, static_cast<int>(w.cols), xh, CUDA_R_16F, static_cast<int>(w.cols), &zero,
            out_dev + r0, CUDA_R_32F, static_cast<int>(out_stride), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS)
            throw Error("CUDA: cublasGemmEx failed (status " + std::to_string(int(st)) + ")");
    }
}

}  // namespace kinfer::cuda
