#include <cmath>

#include "kernels/cpu/simple_ops.hpp"
#include "kernels/fp16.hpp"

namespace kinfer::cpu {

void swiglu(const float* gate, const float* up, int64_t n, float* out, int n_threads) {
#pragma omp parallel for num_threads(n_threads) if (n_threads > 1 && n >= kMinParallelElements) \
    schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

void add(float* x, const float* y, int64_t n, int n_threads) {
#pragma omp parallel for num_threads(n_threads) if (n_threads > 1 && n >= kMinParallelElements) \
    schedule(static)
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
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
