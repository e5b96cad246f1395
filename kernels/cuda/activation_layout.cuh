#pragma once
// The permuted activation layout matvec reads (kernels/cuda/kernels.hpp, prepare_activation): chunks of 32
// groups (1024 elements); inside a chunk, float4 j (0..7) of group l (0..31) at float (j * 32 + l) * 4, so a
// warp whose lane l handles group l loads 512 contiguous bytes per 16-byte load. Producers of matvec inputs
// (RMSNorm, SwiGLU) can write it directly.
#include <cstdint>

namespace kinfer::cuda {

__host__ __device__ inline int64_t activation_offset(int64_t e) {
    const int64_t g = e / 32, i = e % 32;
    return (g / 32) * 1024 + ((i / 4) * 32 + g % 32) * 4 + i % 4;
}

}  // namespace kinfer::cuda
