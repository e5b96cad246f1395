#include "kernels/cuda/cuda_info.hpp"

namespace kinfer::cuda {

DeviceInfo query_devices() {
    DeviceInfo info;
    info.reason = "kinfer was built without CUDA (KINFER_CUDA=OFF or no nvcc)";
    return info;
}

}  // namespace kinfer::cuda
