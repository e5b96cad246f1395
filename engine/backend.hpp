#pragma once
// A Backend runs the model on one device. It is made once per Model at load, where it prepares the
// device's copy of the weights (CPU: the mmap views plus the kernels resolved per weight, never a second
// copy; CUDA: one upload in its own layout), and is then shared read-only by every session of the model.
//
// It owns the whole forward step: forward(batch) evaluates a batch of tokens from any number of sequences,
// each token with its own position and KV cache, and returns the logits asked for. The generic op-by-op
// llama graph (engine/llama_graph.hpp) is the default a backend may reuse, or replace by fused kernels (one
// CUDA graph per step). What the activations look like between ops is the backend's business: mutable
// per-step state lives in a Workspace, one per caller (a session, a batch decoder), so one backend serves
// many threads at once. Dispatch is per step or per op, never per element.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "engine/top_candidates.hpp"

namespace kinfer::engine {

class Model;
class KvCache;

enum class Device { Cpu, Cuda };
enum class KvType { F16, F32 };

// One forward step: n tokens, each from one sequence (an index into `caches`) at a position of it. Within a
// sequence the batch's tokens are consecutive positions, and every earlier position of that sequence is
// already in its cache. Sequences never share a cache.
struct Batch {
    std::span<const int32_t> tokens;   // token ids, in the vocabulary
    std::span<const int64_t> pos;      // each token's position in its sequence
    std::span<const int32_t> seq;      // each token's sequence
    std::span<KvCache* const> caches;  // each sequence's KV cache
    std::span<const int32_t> outputs;  // the tokens (indices, ascending) whose logits are wanted
    // 0: each output's full logits. k > 0 (at most n_vocab): only each output's k best (id, logit) pairs in
    // candidate order (engine/top_candidates.hpp), which a backend may select where the logits are.
    int32_t top_k = 0;
    // With top_k > 0: the outputs o with full[o] != 0 also get their full logits (packed in output order,
    // one row of n_vocab each), so that one sequence that needs them does not make every output of the step
    // copy its logits. Empty: none.
    std::span<const uint8_t> full = {};

    int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

// A backend's scratch for steps of up to n_batch tokens over contexts of up to n_ctx positions.
class Workspace {
  public:
    virtual ~Workspace() = default;
    int64_t n_batch = 0;
    int64_t n_ctx = 0;
};

class Backend {
  public:
    virtual ~Backend() = default;

    // e.g. "cpu (avx512, 2 threads)": what runs the model, for logs and `infer bench`.
    virtual std::string describe() const = 0;

    // Zero-filled memory of the backend's device (KV caches); throws Error naming the size when it cannot
    // be had.
    virtual void* allocate(size_t bytes) const = 0;
    virtual void release(void* p) const noexcept = 0;
    virtual std::unique_ptr<Workspace> create_workspace(int64_t n_batch, int64_t n_ctx) const = 0;

    // The most tokens a step may hold and still take the decode path's kernels: a step of up to this many,
    // whatever mix of sequences and prompt pieces, computes each token as a decode step would (the CPU: the
    // same bits whoever shares the step), where larger steps take the prefill kernels, which round
    // activations differently. A scheduler may add short prompts to its decode steps up to this size.
    virtual int64_t decode_tokens_max() const = 0;

    // Evaluates `batch` (at most ws.n_batch tokens, ids and positions already checked), storing every
    // token's key and value in its sequence's cache, and writes the results of batch.outputs, in order, to
    // host memory: with batch.top_k == 0 their logits to `logits` (outputs.size() rows of n_vocab floats;
    // `top` unused), with top_k > 0 their candidates to `top` (outputs.size() rows of top_k) and the logits
    // of the outputs batch.full marks to `logits` (one row each; else `logits` unused, may be null).
    virtual void forward(Workspace& ws, const Batch& batch, float* logits, TopCandidate* top) const = 0;

    // Context shift of one cache: drops positions [keep, keep + discard), moves [keep + discard, n_past)
    // down by `discard` and re-rotates their keys to the new positions.
    virtual void kv_shift(Workspace& ws, KvCache& cache, int64_t keep, int64_t discard,
                          int64_t n_past) const = 0;
};

// A block of backend memory, released when it goes out of scope (which must be before its backend).
class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    DeviceBuffer(const Backend& backend, size_t bytes)
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

  private:
    void swap(DeviceBuffer& o) noexcept {
        std::swap(backend_, o.backend_);
        std::swap(ptr_, o.ptr_);
        std::swap(bytes_, o.bytes_);
    }
    const Backend* backend_ = nullptr;
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

// Reports slow load work: stage name and fraction done in [0, 1] (1 once at the end of each stage).
using LoadProgress = std::function<void(const char* stage, double fraction)>;

// The backend of `model` on the model's device, its weights prepared. Throws Error when the device is not
// available, or when the model does not fit it (naming both sizes).
std::unique_ptr<Backend> create_backend(const Model& model, const LoadProgress& progress);

}  // namespace kinfer::engine
