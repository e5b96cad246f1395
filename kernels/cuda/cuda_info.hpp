#pragma once
// What CUDA devices this process can use. Without a CUDA build, or without a device, the count is 0 and
// the reason says why, so GPU tests and `--device cuda` can skip or fail with a clear message.
#include <string>

namespace kinfer::cuda {

struct DeviceInfo {
    int count = 0;
    std::string reason;  // why count is 0 ("built without CUDA", "no CUDA device: ...")
    std::string name;    // first device's name
    int sm_major = 0, sm_minor = 0;
};

DeviceInfo query_devices();

}  // namespace kinfer::cuda
