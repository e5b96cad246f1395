// The float dot product the simple kernels share (attention, the portable matmul path).
#include "kernels/cpu/simple_ops.hpp"

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

}  // namespace kinfer::cpu
