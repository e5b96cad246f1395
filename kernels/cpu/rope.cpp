#include <cmath>

#include "kernels/cpu/simple_ops.hpp"
#include "kernels/cpu/thread_pool.hpp"

namespace kinfer::cpu {

void rope(float* x, int64_t n_rows, size_t row_stride, int64_t n_heads, int64_t head_dim, int64_t n_rot,
          const double* inv_freq, const int64_t* pos, ThreadPool* pool) {
    constexpr int64_t kMaxPairs = 512;  // ModelConfig caps n_rot at 1024
    const int64_t n_pairs = n_rot / 2;
    parallel_range(pool, n_rows * n_heads * n_rot >= kMinParallelElements / 4, n_rows,
                   [&](int64_t begin, int64_t end, int) {
                       for (int64_t t = begin; t < end; ++t) {
                           // Angles in double: exact-minded, and computed once per row for all heads.
                           float cos_t[kMaxPairs], sin_t[kMaxPairs];
                           const double p = double(pos[t]);
                           for (int64_t i = 0; i < n_pairs; ++i) {
                               const double theta = p * inv_freq[i];
                               cos_t[i] = static_cast<float>(std::cos(theta));
                               sin_t[i] = static_cast<float>(std::sin(theta));
                           }
                           float* row = x + static_cast<size_t>(t) * row_stride;
                           for (int64_t h = 0; h < n_heads; ++h) {
                               float* v = row + h * head_dim;
                               for (int64_t i = 0; i < n_pairs; ++i) {
                                   const float a = v[2 * i], b = v[2 * i + 1];
                                   v[2 * i] = a * cos_t[i] - b * sin_t[i];
                                   v[2 * i + 1] = a * sin_t[i] + b * cos_t[i];
                               }
                           }
                       }
                   });
}

}  // namespace kinfer::cpu
