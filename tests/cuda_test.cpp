// GPU tests: run where a CUDA device is present, skip with a message elsewhere (CI has nvcc but no GPU).
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <ios>
#include <vector>

#include "kernels/cuda/cuda_info.hpp"
#include "kernels/cuda/half_convert.hpp"
#include "kernels/fp16.hpp"
#include "kinfer/error.hpp"

using namespace kinfer;

TEST_CASE("cuda: every fp16 bit pattern converts as kinfer's software decoder does") {
    const cuda::DeviceInfo info = cuda::query_devices();
    if (info.count == 0) {
        MESSAGE("skipping GPU test: " << info.reason);
        CHECK_THROWS_AS(cuda::fp16_to_fp32(nullptr, nullptr, 1), Error);
        return;
    }
    MESSAGE("GPU: " << info.name << " (sm_" << info.sm_major << info.sm_minor << ")");
    std::vector<uint16_t> halves(1 << 16);
    for (uint32_t i = 0; i < halves.size(); ++i) halves[i] = static_cast<uint16_t>(i);
    std::vector<float> gpu(halves.size());
    cuda::fp16_to_fp32(halves.data(), gpu.data(), static_cast<int64_t>(halves.size()));
    int mismatches = 0;
    for (uint32_t i = 0; i < halves.size(); ++i) {
        const float cpu = fp16_to_fp32(halves[i]);
        const bool same = std::isnan(cpu) ? std::isnan(gpu[i])
                                          : std::bit_cast<uint32_t>(cpu) == std::bit_cast<uint32_t>(gpu[i]);
        if (!same && ++mismatches <= 5)
            MESSAGE("half 0x" << std::hex << i << ": cpu " << cpu << " gpu " << gpu[i]);
    }
    CHECK(mismatches == 0);
}
