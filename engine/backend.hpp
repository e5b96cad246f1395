#pragma once
// The one interface the llama graph (engine/llama_graph.cpp) is written against. A Backend runs a handful of
// coarse operations on matrices that live in its own memory (host for CPU, device for CUDA), so the
// engine never copies activations between ops; the only transfers are token ids in and logits out.
//
// One Backend per Session: it owns that session's scratch space (and, on CUDA, its stream), so sessions
// never share mutable state. The weights it reads belong to the Model and are shared read-only.
// Dispatch is one virtual call per op and layer, never per element. A backend that gains from fusing
// ops (rmsnorm+quantize, rope+kv_store, a whole layer) does so inside these calls.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>

#include "gguf/gguf_file.hpp"

namespace kinfer::engine {

class Model;
class KvCache;

enum class Device { Cpu, Cuda };
enum class KvType { F16, F32 };

// A rows x cols float32 matrix in a backend's memory, row-major and contiguous. A view; owns nothing.
struct Mat {
    float* data = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;

    Mat first_rows(int64_t n) const { return {data, n, cols}; }
    Mat row_range(int64_t first, int64_t n) const { return {data + first * cols, n, cols}; }
    int64_t size() const { return rows * cols; }
};

class Backend {
  public:
    virtual ~Backend() = default;
    virtual const char* name() const = 0;

    // ---- memory ----
    // Backend memory of `bytes` bytes (zero-filled); throws Error when it cannot be had.
    virtual void* allocate(size_t bytes) = 0;
    virtual void release(void* p) noexcept = 0;
    // Copies backend memory to the host; waits for queued ops to finish.
    virtual void copy_to_host(void* host_dst, const void* src, size_t bytes) = 0;

    // ---- ops: `out` never aliases an input unless said ----
    // out[t] = row ids[t] of the embedding table (host ids, already range-checked).
    virtual void embed(const gguf::TensorView& table, std::span<const int32_t> ids, Mat out) = 0;
    // out = x / rms(x) * w, row by row (out may be x).
    virtual void rmsnorm(Mat x, const gguf::TensorView& w, float eps, Mat out) = 0;
    // out[t][r] = sum_i W[r][i] * x[t][i]: W quantized, one row per output feature (ne[1] rows of ne[0]).
    virtual void matmul(const gguf::TensorView& w, Mat x, Mat out) = 0;
    // Rotates q (n_head heads per row) and k (n_head_kv heads per row) in place; row t has position pos0 + t.
    virtual void rope(Mat q, Mat k, int64_t pos0) = 0;
    // Writes k and v rows into the cache of `layer` at positions pos0 ...
    virtual void kv_store(KvCache& cache, int64_t layer, Mat k, Mat v, int64_t pos0) = 0;
    // Causal attention of q (row t at position pos0 + t) over cache positions 0 .. pos0 + t.
    virtual void attention(const KvCache& cache, int64_t layer, Mat q, int64_t pos0, Mat out) = 0;
    // out = silu(gate) * up (out may be gate).
    virtual void swiglu(Mat gate, Mat up, Mat out) = 0;
    // x += y.
    virtual void add(Mat x, Mat y) = 0;
    // Context shift: drops cache positions [keep, keep + discard) of every layer, moves positions
    // [keep + discard, n_past) down by `discard` and re-rotates their keys to the new positions.
    virtual void kv_shift(KvCache& cache, int64_t keep, int64_t discard, int64_t n_past) = 0;
};

// A block of backend memory, released when it goes out of scope (which must be before its backend).
class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    DeviceBuffer(Backend& backend, size_t bytes)
        : backend_(&backend), ptr_(backend.allocate(bytes)), bytes_(bytes) {}
    DeviceBuffer(DeviceBuffer&& o) noexcept { swap(o); }
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        DeviceBuffer(std::move(o)).swap(*this);
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() {
        if (ptr_) backend_->release(ptr_);
    }

    void* data() const { return ptr_; }
    size_t bytes() const { return bytes_; }
    // The buffer as a rows x cols float matrix (rows * cols * 4 <= bytes()).
    Mat mat(int64_t rows, int64_t cols) const { return {static_cast<float*>(ptr_), rows, cols}; }

  private:
    void swap(DeviceBuffer& o) noexcept {
        std::swap(backend_, o.backend_);
        std::swap(ptr_, o.ptr_);
        std::swap(bytes_, o.bytes_);
    }
    Backend* backend_ = nullptr;
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

// The largest batch (tokens per forward step) and context a session's backend must serve.
struct BackendShape {
    int64_t n_batch = 0;
    int64_t n_ctx = 0;
};

// A backend for one session of `model` on the model's device. Throws Error when the device is not
// available (e.g. CUDA in a build without it).
std::unique_ptr<Backend> create_backend(const Model& model, const BackendShape& shape);

}  // namespace kinfer::engine
