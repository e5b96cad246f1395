#include <cmath>

#include "kernels/cpu/simple_ops.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "kernels/fp16.hpp"

namespace kinfer::cpu {
namespace {
// Chunks of at least this many elements, starting on 64-byte boundaries of the arrays.
constexpr int64_t kMinChunk = 4096, kAlign = 16;
}  // namespace

void swiglu(const float* gate, const float* up, int64_t n, float* out, ThreadPool* pool) {
    parallel_range(
        pool, n >= kMinParallelElements, n,
        [&](int64_t begin, int64_t end, int) {
            for (int64_t i = begin; i < end; ++i) {
                const float g = gate[i];
                out[i] = g / (1.0f + std::exp(-g)) * up[i];
            }
        },
        kMinChunk, kAlign);
}

void add(float* x, const float* y, int64_t n, ThreadPool* pool) {
    parallel_range(
        pool, n >= kMinParallelElements, n,
        [&](int64_t begin, int64_t end, int) {
            for (int64_t i = begin; i < end; ++i) x[i] += y[i];
        },
        kMinChunk, kAlign);
}

void store_row(const float* src, void* dst, int64_t n, bool f16) {
    if (f16) {
        auto* h = static_cast<uint16_t*>(dst);
        for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
    } else {
        auto* f = static_cast<float*>(dst);
        for (int64_t i = 0; i < n; ++i) f[i] = src[i];
    }
}

}  // namespace kinfer::cpu
