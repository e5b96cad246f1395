#pragma once
// fp16 -> fp32 conversion on the GPU: the first CUDA kernel, used to check the toolchain and the device path
// end to end (and kinfer's software fp16 decoder against the hardware's) until the CUDA backend lands.
#include <cstdint>

namespace kinfer::cuda {

// Converts n halves on device 0; throws kinfer::Error naming the CUDA failure (or that CUDA is absent).
void fp16_to_fp32(const uint16_t* host_in, float* host_out, int64_t n);

}  // namespace kinfer::cuda
