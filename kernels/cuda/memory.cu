// Device memory, transfers and weight upload.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/kernels.hpp"
#include "kernels/cuda/repack.hpp"

namespace kinfer::cuda {
namespace {

std::string gib(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(1ull << 30));
    return buf;
}

void* allocate_or_throw(size_t bytes, const std::string& what) {
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err != cudaSuccess) {
        cudaGetLastError();  // an allocation failure is not sticky; clear it
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        throw Error("CUDA: cannot allocate " + gib(bytes) + " for " + what + " (" + gib(free_b) +
                    " free of " + gib(total_b) + "): " + cudaGetErrorString(err));
    }
    return p;
}

}  // namespace

DeviceBuffer::DeviceBuffer(size_t bytes, const std::string& what) : bytes_(bytes) {
    if (bytes) ptr_ = allocate_or_throw(bytes, what);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
        if (ptr_) cudaFree(ptr_);
        ptr_ = o.ptr_;
        bytes_ = o.bytes_;
        o.ptr_ = nullptr;
        o.bytes_ = 0;
    }
    return *this;
}

DeviceBuffer::~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
}

void ensure_fits(uint64_t bytes, const std::string& what) {
    size_t free_b = 0, total_b = 0;
    check_cuda(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    // Leave room for the CUDA context's own allocations (cuBLAS workspace, graphs).
    const uint64_t reserve = 256ull << 20;
    if (bytes + reserve > free_b) {
        int dev = 0;
        cudaDeviceProp prop{};
        cudaGetDevice(&dev);
        cudaGetDeviceProperties(&prop, dev);
        throw Error(what + " needs " + gib(bytes) + " of GPU memory, but " + prop.name + " has " +
                    gib(free_b) + " free of " + gib(total_b) +
                    " (use a smaller quantization or --device cpu)");
    }
}

void* device_alloc_zeroed(size_t bytes, const std::string& what) {
    if (bytes == 0) return nullptr;
    void* p = allocate_or_throw(bytes, what);
    const cudaError_t err = cudaMemset(p, 0, bytes);
    if (err != cudaSuccess) {
        cudaFree(p);
        check_cuda(err, "memset");
    }
    return p;
}

void device_free(void* p) noexcept {
    if (p) cudaFree(p);
}

Stream create_stream() {
    cudaStream_t s = nullptr;
    check_cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    return s;
}

void destroy_stream(Stream stream) noexcept {
    if (stream) cudaStreamDestroy(as_stream(stream));
}

Graph::~Graph() {
    if (exec_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
    if (graph_) cudaGraphDestroy(static_cast<cudaGraph_t>(graph_));
}

void Graph::begin_capture(Stream stream) {
    check_cuda(cudaStreamBeginCapture(as_stream(stream), cudaStreamCaptureModeThreadLocal), "graph capture");
}

void Graph::end_capture(Stream stream) {
    cudaGraph_t g = nullptr;
    check_cuda(cudaStreamEndCapture(as_stream(stream), &g), "graph capture");
    graph_ = g;
    cudaGraphExec_t e = nullptr;
    check_cuda(cudaGraphInstantiate(&e, g, 0), "graph instantiate");
    exec_ = e;
}

void Graph::launch(Stream stream) const {
    check_cuda(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), as_stream(stream)), "graph launch");
}

void copy_to_device(void* dst_dev, const void* src, size_t bytes, Stream stream) {
    check_cuda(cudaMemcpyAsync(dst_dev, src, bytes, cudaMemcpyHostToDevice, as_stream(stream)),
               "copy to device");
}

void zero_device(void* dst_dev, size_t bytes, Stream stream) {
    if (bytes) check_cuda(cudaMemsetAsync(dst_dev, 0, bytes, as_stream(stream)), "zero fill");
}

void copy_device(void* dst_dev, const void* src_dev, size_t bytes, Stream stream) {
    check_cuda(cudaMemcpyAsync(dst_dev, src_dev, bytes, cudaMemcpyDeviceToDevice, as_stream(stream)),
               "device copy");
}

void copy_to_host(void* dst, const void* src_dev, size_t bytes, Stream stream) {
    check_cuda(cudaMemcpyAsync(dst, src_dev, bytes, cudaMemcpyDeviceToHost, as_stream(stream)),
               "copy to host");
    check_cuda(cudaStreamSynchronize(as_stream(stream)), "copy to host");
}

void synchronize(Stream stream) {
    check_cuda(cudaStreamSynchronize(as_stream(stream)), "synchronize");
}

uint64_t device_matrix_bytes(const TypeTraits& type, int64_t rows, int64_t cols, const std::string& name) {
    return repacked_row_bytes(type, cols, name) * static_cast<uint64_t>(rows);
}

DeviceMatrix upload_matrix(const TypeTraits& type, const void* gguf_rows, int64_t rows, int64_t cols,
                           void* dst_dev, const std::string& name) {
    DeviceMatrix m;
    m.type = type.type;
    m.rows = rows;
    m.cols = cols;
    m.row_bytes = repacked_row_bytes(type, cols, name);
    m.data = dst_dev;
    // Slices of rows keep the host staging buffer small (~64 MiB) for the large matrices.
    const int64_t slice = std::max<int64_t>(1, int64_t(64ull << 20) / int64_t(m.row_bytes));
    std::vector<uint8_t> staging(static_cast<size_t>(std::min(slice, rows)) * m.row_bytes);
    const auto* src = static_cast<const uint8_t*>(gguf_rows);
    const uint64_t in_row = row_bytes(type, static_cast<uint64_t>(cols));
    for (int64_t r = 0; r < rows; r += slice) {
        const int64_t n = std::min(slice, rows - r);
        repack_rows(type, src + static_cast<uint64_t>(r) * in_row, n, cols, staging.data(), name);
        check_cuda(cudaMemcpy(static_cast<uint8_t*>(dst_dev) + static_cast<uint64_t>(r) * m.row_bytes,
                              staging.data(), static_cast<size_t>(n) * m.row_bytes, cudaMemcpyHostToDevice),
                   "weight upload");
    }
    return m;
}

}  // namespace kinfer::cuda
