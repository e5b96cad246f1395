// The device's memory read bandwidth, the ceiling of token generation on the GPU (each weight byte is read
// once per token): a kernel stream-reads a buffer far larger than L2 with 16-byte loads, best of a few
// passes. `infer bench --device cuda` prints tokens/s beside the share of it their weight bytes take.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cuda/cuda_info.hpp"

namespace kinfer::cuda {
namespace {

// Every thread folds its 16-byte words into one value, so the loads cannot be dropped; one store per
// thread that the host never reads.
__global__ void read_kernel(const uint4* __restrict__ p, int64_t n, uint32_t* __restrict__ sink) {
    uint32_t acc = 0;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        const uint4 v = __ldcs(p + i);  // streaming: not kept in L2
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    sink[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

}  // namespace

ReadBandwidth measure_read_bandwidth() {
    ReadBandwidth r;
    int dev = 0, n_sm = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
        r.error = "no CUDA device";
        return r;
    }
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    // 2 GiB (at most a quarter of what is free): ~40x the L2 of an H100/H200.
    const size_t bytes = std::min<size_t>(size_t(2) << 30, free_bytes / 4) / 16 * 16;
    const int threads = 512, blocks = n_sm * 4;
    void* buf = nullptr;
    uint32_t* sink = nullptr;
    if (bytes < (size_t(64) << 20) || cudaMalloc(&buf, bytes) != cudaSuccess) {
        r.error = "not enough free device memory for the read probe";
        return r;
    }
    if (cudaMalloc(&sink, sizeof(uint32_t) * size_t(threads) * blocks) != cudaSuccess) {
        cudaFree(buf);
        r.error = "not enough free device memory for the read probe";
        return r;
    }
    cudaMemset(buf, 1, bytes);
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    float best_ms = 0;
    for (int pass = 0; pass < 6; ++pass) {  // the first pass warms up
        cudaEventRecord(a);
        read_kernel<<<blocks, threads>>>(static_cast<const uint4*>(buf), int64_t(bytes / 16), sink);
        cudaEventRecord(b);
        cudaEventSynchronize(b);
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        if (pass > 0 && (best_ms == 0 || ms < best_ms)) best_ms = ms;
    }
    const cudaError_t err = cudaGetLastError();
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaFree(sink);
    cudaFree(buf);
    if (err != cudaSuccess || best_ms <= 0) {
        r.error = std::string("read probe failed: ") + cudaGetErrorString(err);
        return r;
    }
    r.gb_per_s = double(bytes) / (double(best_ms) * 1e-3) / 1e9;
    r.buffer_bytes = bytes;
    return r;
}

}  // namespace kinfer::cuda
