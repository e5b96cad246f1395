#include <cmath>

#include "kernels/cpu/simple_ops.hpp"

namespace kinfer::cpu {

void rope(float* x, int64_t n_rows, size_t row_stride, int64_t n_heads, int64_t head_dim, int64_t n_rot,
          const double* inv_freq, const int64_t* pos, int n_threads) {
    constexpr int64_t kMaxPairs = 512;  // ModelConfig caps n_rot at 1024
    const int64_t n_pairs = n_rot / 2;
#pragma omp parallel for num_threads(n_threads) if (n_threads > 1 && n_rows > 1) schedule(static)
    for (int64_t t = 0; t < n_rows; ++t) {
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
}

}  // namespace kinfer::cpu
