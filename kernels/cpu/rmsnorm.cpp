#include <cmath>

#include "kernels/cpu/simple_ops.hpp"
#include "kernels/cpu/thread_pool.hpp"

namespace kinfer::cpu {

void rmsnorm(const float* x, const float* w, float eps, int64_t n_rows, int64_t n, float* out,
             ThreadPool* pool) {
    parallel_range(
        pool, n_rows > 1 && n_rows * n >= kMinParallelElements, n_rows, [&](int64_t begin, int64_t end, int) {
            for (int64_t r = begin; r < end; ++r) {
                const float* xr = x + r * n;
                double sum = 0.0;  // the mean of squares in double, as the float64 reference
                for (int64_t i = 0; i < n; ++i) sum += double(xr[i]) * double(xr[i]);
                const float scale = static_cast<float>(1.0 / std::sqrt(sum / double(n) + double(eps)));
                float* o = out + r * n;
                for (int64_t i = 0; i < n; ++i) o[i] = (xr[i] * scale) * w[i];
            }
        });
}

}  // namespace kinfer::cpu
