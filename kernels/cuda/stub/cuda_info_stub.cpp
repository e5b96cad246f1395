#include "kernels/cuda/cuda_info.hpp"

namespace kinfer::cuda {

DeviceInfo query_devices() {
    DeviceInfo info;
    info.reason = "kinfer was built without CUDA (KINFER_CUDA=OFF or no nvcc)";
    return info;
}

ReadBandwidth measure_read_bandwidth() {
    ReadBandwidth r;
    r.error = "kinfer was built without CUDA";
    return r;
}

}  // namespace kinfer::cuda
