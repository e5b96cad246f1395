#pragma once
// Error checks for CUDA calls and launches: every failure becomes a kinfer::Error naming what failed.
#include <cuda_runtime.h>

#include <string>

#include "kinfer/error.hpp"

namespace kinfer::cuda {

inline void check_cuda(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw Error(std::string("CUDA ") + what + ": " + cudaGetErrorString(err));
}

// After a kernel launch: a bad configuration shows here (asynchronous faults show at the next sync).
inline void check_launch(const char* kernel) {
    check_cuda(cudaGetLastError(), kernel);
}

inline cudaStream_t as_stream(void* s) {
    return static_cast<cudaStream_t>(s);
}

template <class T>
__host__ __device__ constexpr T ceil_div(T a, T b) {
    return (a + b - 1) / b;
}

__device__ inline float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

}  // namespace kinfer::cuda
