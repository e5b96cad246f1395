#pragma once
// Error checks for CUDA calls and launches: every failure becomes a kinfer::Error naming what failed.
#include <cuda_runtime.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "kernels/cuda/env_switch.hpp"
#include "kinfer/error.hpp"

namespace kinfer::cuda {

inline void check_cuda(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw Error(std::string("CUDA ") + what + ": " + cudaGetErrorString(err));
}

// After a kernel launch: a bad configuration shows here (asynchronous faults show at the next sync).
inline void check_launch(const char* kernel) {
    check_cuda(cudaGetLastError(), kernel);
}

inline cudaStream_t as_stream(void* s) {
    return static_cast<cudaStream_t>(s);
}

template <class T>
__host__ __device__ constexpr T ceil_div(T a, T b) {
    return (a + b - 1) / b;
}

// The current device's multiprocessors (read once; 100 if the query fails), for grids sized to the GPU.
inline int sm_count() {
    static const int n = [] {
        int dev = 0, c = 0;
        cudaGetDevice(&dev);
        cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, dev);
        return c > 0 ? c : 100;
    }();
    return n;
}

// Programmatic dependent launch (on unless KINFER_PDL=0, read once): a kernel launched through launch_kernel
// may start while the kernel before it in the stream finishes, hiding part of the launch gap between the many
// small kernels of a decode step (+1-2% tg128 on an H200); every such kernel calls wait_for_producer() before
// it touches memory.
inline bool pdl_enabled() {
    static const bool on = env_on("KINFER_PDL");
    return on;
}

template <class... KArgs, class... Args>
void launch_kernel(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t shared, cudaStream_t s,
                   Args&&... args) {
    if (!pdl_enabled()) {
        kernel<<<grid, block, shared, s>>>(std::forward<Args>(args)...);
        return;
    }
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = shared;
    cfg.stream = s;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    check_cuda(cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...), "launch");
}

// Waits until the previous kernel of the stream has completed and its writes are visible (a no-op when
// launched without programmatic dependence), then lets the next kernel of the stream start launching: its
// blocks take free slots as ours retire and wait in their own wait_for_producer, so the launch and ramp-up of
// the next kernel overlap this one's tail instead of following it. Safe wherever it is called: the wait of a
// dependent always waits for this whole grid to complete and flush.
__device__ inline void wait_for_producer() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

__device__ inline float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

}  // namespace kinfer::cuda
