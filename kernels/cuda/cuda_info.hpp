#pragma once
// What CUDA devices this process can use. Without a CUDA build, or without a device, the count is 0 and
// the reason says why, so GPU tests and `--device cuda` can skip or fail with a clear message.
#include <cstddef>
#include <string>

namespace kinfer::cuda {

struct DeviceInfo {
    int count = 0;
    std::string reason;  // why count is 0 ("built without CUDA", "no CUDA device: ...")
    std::string name;    // first device's name
    int sm_major = 0, sm_minor = 0;
};

DeviceInfo query_devices();

// The first device's memory read bandwidth (kernels/cuda/read_probe.cu); gb_per_s 0 and `error` set when
// it cannot be measured.
struct ReadBandwidth {
    double gb_per_s = 0;  // 1e9 bytes per second
    size_t buffer_bytes = 0;
    std::string error;
};
ReadBandwidth measure_read_bandwidth();

}  // namespace kinfer::cuda
