#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/half_convert.hpp"
#include "kinfer/error.hpp"

namespace kinfer::cuda {
namespace {

void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw Error(std::string("CUDA ") + what + ": " + cudaGetErrorString(err));
}

__global__ void fp16_to_fp32_kernel(const __half* in, float* out, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __half2float(in[i]);
}

// Frees device memory on every exit path, so a throwing check never leaks.
struct DeviceBuffer {
    void* p = nullptr;
    ~DeviceBuffer() { cudaFree(p); }
};

}  // namespace

void fp16_to_fp32(const uint16_t* host_in, float* host_out, int64_t n) {
    if (n <= 0) return;
    DeviceBuffer in, out;
    check(cudaMalloc(&in.p, n * sizeof(uint16_t)), "cudaMalloc");
    check(cudaMalloc(&out.p, n * sizeof(float)), "cudaMalloc");
    check(cudaMemcpy(in.p, host_in, n * sizeof(uint16_t), cudaMemcpyHostToDevice), "copy to device");
    const int threads = 256;
    const int64_t blocks = (n + threads - 1) / threads;
    fp16_to_fp32_kernel<<<static_cast<unsigned>(blocks), threads>>>(static_cast<const __half*>(in.p),
                                                                    static_cast<float*>(out.p), n);
    check(cudaGetLastError(), "kernel launch");
    check(cudaMemcpy(host_out, out.p, n * sizeof(float), cudaMemcpyDeviceToHost), "copy to host");
}

}  // namespace kinfer::cuda
