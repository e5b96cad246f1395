// Matrix products over quantized weight rows: the one place the simple CPU path touches weights.
#include <omp.h>

#include "kernels/cpu/simple_ops.hpp"
#include "kernels/reference/type_kernels.hpp"

namespace kinfer::cpu {

float dot(const float* a, const float* b, int64_t n) {
    // 16 independent partial sums: the compiler vectorises this loop, and each lane adds only n/16 terms,
    // so rounding error grows far slower than a single running sum.
    constexpr int kLanes = 16;
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; ++i, ++l) acc[l] += a[i] * b[i];
    for (int width = kLanes / 2; width > 0; width /= 2)
        for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
    return acc[0];
}

void matmul(const TypeTraits& type, const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in,
            const float* x, int64_t n_tokens, float* out, float* scratch, int n_threads) {
    // Small products run on the calling thread: waking a team costs more than it saves there, and on a
    // busy machine every extra parallel region risks waiting for a descheduled thread.
    const bool parallel = n_threads > 1 && n_rows * n_in * n_tokens >= kMinParallelWork;
#pragma omp parallel num_threads(n_threads) if (parallel)
    {
        float* row = scratch + static_cast<size_t>(omp_get_thread_num()) * static_cast<size_t>(n_in);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n_rows; ++r) {
            ref::dequantize_fn(type)(w + static_cast<size_t>(r) * row_bytes, row, n_in);
            for (int64_t t = 0; t < n_tokens; ++t) out[t * n_rows + r] = dot(row, x + t * n_in, n_in);
        }
    }
}

void embed_rows(const TypeTraits& type, const uint8_t* table, size_t row_bytes, int64_t n_embd,
                const int32_t* ids, int64_t n_tokens, float* out, int n_threads) {
#pragma omp parallel for num_threads(n_threads) if (n_threads > 1 && n_tokens > 1) schedule(static)
    for (int64_t t = 0; t < n_tokens; ++t)
        ref::dequantize_fn(type)(table + static_cast<size_t>(ids[t]) * row_bytes, out + t * n_embd, n_embd);
}

}  // namespace kinfer::cpu
