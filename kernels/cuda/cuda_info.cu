#include <cuda_runtime.h>

#include "kernels/cuda/cuda_info.hpp"

namespace kinfer::cuda {

DeviceInfo query_devices() {
    DeviceInfo info;
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        info.reason = std::string("no CUDA device: ") + cudaGetErrorString(err);
        return info;
    }
    if (n == 0) {
        info.reason = "no CUDA device";
        return info;
    }
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    info.count = n;
    info.name = prop.name;
    info.sm_major = prop.major;
    info.sm_minor = prop.minor;
    return info;
}

}  // namespace kinfer::cuda
