#include <cmath>

#include "kernels/cpu/simple_ops.hpp"

namespace kinfer::cpu {

void rmsnorm(const float* x, const float* w, float eps, int64_t n_rows, int64_t n, float* out,
             int n_threads) {
#pragma omp parallel for num_threads(n_threads) if (n_threads > 1 && n_rows > 1 && \
                                                    n_rows * n >= kMinParallelElements) schedule(static)
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* xr = x + r * n;
        double sum = 0.0;  // the mean of squares in double, as the float64 reference computes it
        for (int64_t i = 0; i < n; ++i) sum += double(xr[i]) * double(xr[i]);
        const float scale = static_cast<float>(1.0 / std::sqrt(sum / double(n) + double(eps)));
        float* o = out + r * n;
        for (int64_t i = 0; i < n; ++i) o[i] = (xr[i] * scale) * w[i];
    }
}

}  // namespace kinfer::cpu
