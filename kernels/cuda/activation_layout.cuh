#pragma once
// The prepared activation matvec reads (kernels/cuda/kernels.hpp, prepare_activation), per token, for F =
// cols rounded up to 1024 (activation_floats(cols) = 35 F / 16 floats):
// - floats [0, F): the values in a permuted order for the float-weight path: chunks of 32 groups (1024
//   elements); inside a chunk, float4 j (0..7) of group l (0..31) at float (j * 32 + l) * 4, so a warp whose
//   lane l handles group l loads 512 contiguous bytes per 16-byte load.
// - bytes [4F, 6F): each group of 32 as two int8 terms, x ~ s1 * q1 + s2 * q2 with s1 = max|x| / 127 and
//   s2 = s1 / 254 (q2 quantizes what q1 leaves: the error is max|x| / 64516, 1/254 of a single int8 term as
//   llama.cpp's q8_1 uses), for the quantized-weight path (dp4a). 16-byte chunk j of group g (j = 0, 1: q1 of
//   elements 0..15, 16..31; j = 2, 3: q2 likewise) at byte ((g / 32) * 4 + j) * 512 + (g % 32) * 16.
// - bytes [6F, 6.5F): per group a float4 {s2, sum of elements 0..15, sum of 16..31, sum of all 32}: the
//   exact sums carry the weights' offsets (the whole group's for types with one scale per group).
// - bytes [6.5F, 8.5F): the values rounded to fp16, for the tensor-core batches of fp16 products: 64
//   bytes per group, element i at half activation_half_slot(i), the order of the m16n8k16 B fragments
//   (matvec.cu).
// - bytes [8.5F, 8.75F): per group the float sums of its fp16 values 0..15 and 16..31 (what carries the
//   weights' offsets on that path: the sums of the values it multiplies, not of the exact ones).
// Producers (RMSNorm, SwiGLU, prepare_activation) write them all with prepare_group, a warp per group; the
// batches' gate/up pairs with SwiGLU (matvec_swiglu_pairs) only the fp16 values and sums, with prepare_half.
#include <cstdint>
#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

namespace kinfer::cuda {

__host__ __device__ inline int64_t activation_offset(int64_t e) {
    const int64_t g = e / 32, i = e % 32;
    return (g / 32) * 1024 + ((i / 4) * 32 + g % 32) * 4 + i % 4;
}

__host__ __device__ inline int64_t activation_padded(int64_t cols) {
    return (cols + 1023) / 1024 * 1024;
}

// Byte offsets of the int8 terms and of the per-group scales inside one token's prepared activation.
__host__ __device__ inline int64_t activation_q_offset(int64_t cols) {
    return 4 * activation_padded(cols);
}
__host__ __device__ inline int64_t activation_scale_offset(int64_t cols) {
    return 6 * activation_padded(cols);
}
__host__ __device__ inline int64_t activation_half_offset(int64_t cols) {
    return 13 * activation_padded(cols) / 2;
}
__host__ __device__ inline int64_t activation_half_sum_offset(int64_t cols) {
    return 17 * activation_padded(cols) / 2;
}
// Element i (0..31) of a group in its 32 fp16 slots: quad thread q = (i % 16) / 4 reads slots 8q .. 8q + 7 as
// one 16-byte word, the B fragments of its two k-steps: elements 4q, 4q + 2 | 4q + 1, 4q + 3, then the same
// 16 further on (the pairs the codes unpack into, matvec.cu group_halves).
__host__ __device__ inline int activation_half_slot(int i) {
    const int m = i % 4;
    return 8 * ((i % 16) / 4) + 4 * (i / 16) + ((m & 1) << 1 | m >> 1);
}

#if defined(__CUDACC__)
// The fp16 part alone (the values and their sum per 16): called by the 16 lanes of a half-warp together
// (lane l % 16 holding element e, e % 16 == l % 16, all 32 lanes of the warp active), the values of one
// half-group of 16. What the tensor-core batches of fp16 products read; prepare_group calls it, so a
// half-group prepared either way has the same bits. A lane with store false takes part in the sum only.
__device__ inline void prepare_half(float v, int64_t e, int64_t cols, float* p, bool store = true) {
    const int lane = threadIdx.x % 32;
    // fp16: a value beyond 65 504 becomes inf, and the step fails with "non-finite logits" (no clipping).
    const __half h = __float2half_rn(v);
    auto* base = reinterpret_cast<uint8_t*>(p);
    if (store)
        reinterpret_cast<__half*>(
            base + activation_half_offset(cols))[e - e % 32 + activation_half_slot(int(e % 32))] = h;
    float h_sum = __half2float(h);  // the butterfly leaves its half-warp's sum in every lane of it
#pragma unroll
    for (int o = 8; o > 0; o /= 2) h_sum += __shfl_xor_sync(0xffffffffu, h_sum, o);
    if (store && lane % 16 == 0)
        reinterpret_cast<float*>(base + activation_half_sum_offset(cols))[e / 16] = h_sum;
}

// Called by the 32 lanes of a warp together, lane l holding element l of group g (all lanes active): writes
// the group's floats, int8 terms and scales into the token's prepared activation `p`.
__device__ inline void prepare_group(float v, int64_t g, int64_t cols, float* p) {
    const int lane = threadIdx.x % 32;
    p[activation_offset(g * 32 + lane)] = v;
    float amax = fabsf(v);
#pragma unroll
    for (int o = 16; o > 0; o /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float inv1 = amax > 0.0f ? 127.0f / amax : 0.0f;
    const float s1 = amax / 127.0f;
    const float q1 = rintf(v * inv1);
    const float q2 = fminf(fmaxf(rintf((v - q1 * s1) * inv1 * 254.0f), -127.0f), 127.0f);
    auto* q = reinterpret_cast<int8_t*>(p) + activation_q_offset(cols) + ((g / 32) * 4 + lane / 16) * 512 +
              (g % 32) * 16 + lane % 16;
    q[0] = static_cast<int8_t>(q1);
    q[1024] = static_cast<int8_t>(q2);
    float half_sum = v;  // sum over the lane's half-warp
#pragma unroll
    for (int o = 8; o > 0; o /= 2) half_sum += __shfl_xor_sync(0xffffffffu, half_sum, o);
    const float hi = __shfl_sync(0xffffffffu, half_sum, 16);
    prepare_half(v, g * 32 + lane, cols, p);
    if (lane == 0) {
        auto* s = reinterpret_cast<float4*>(reinterpret_cast<uint8_t*>(p) + activation_scale_offset(cols));
        s[g] = make_float4(s1 / 254.0f, half_sum, hi, half_sum + hi);
    }
}
#endif

}  // namespace kinfer::cuda
