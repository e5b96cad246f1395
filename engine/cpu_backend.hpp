#pragma once
// The CPU backend: weights read in place from the mapping, each with its kernels resolved once at load
// (kernels/cpu/quant_matmul: by type and instruction set); activations in host memory; the generic llama
// graph (engine/llama_graph.hpp) run over CpuOps. A step allocates nothing: its workspace is sized once.
// Threads: one pool per backend (kernels/cpu/thread_pool), alive as long as the model, shared by every
// workspace; callers on several threads take turns per op (the pool runs one job at a time), so the
// model never runs more than its thread count of compute threads. One thread: no pool, ops run inline.
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.hpp"
#include "engine/model.hpp"
#include "engine/model_weights.hpp"
#include "kernels/cpu/quant_matmul.hpp"
#include "kernels/reference/type_kernels.hpp"

namespace kinfer::cpu {
class ThreadPool;
}

namespace kinfer::engine {

// One weight as the CPU kernels see it.
struct CpuWeight {
    const uint8_t* data = nullptr;  // in the mapping
    size_t row_bytes = 0;
    int64_t n_in = 0;                            // elements per row
    int64_t n_out = 0;                           // rows
    const cpu::QuantKernels* kernels = nullptr;  // matrix products (null for vectors)
    ref::DequantizeRowFn dequantize = nullptr;   // reading single rows (embeddings) and norm vectors
    const float* f32() const { return reinterpret_cast<const float*>(data); }
};

class CpuBackend final : public Backend {
  public:
    CpuBackend(const Model& model, cpu::Isa isa);
    ~CpuBackend() override;

    std::string describe() const override;
    void* allocate(size_t bytes) const override;
    void release(void* p) const noexcept override;
    std::unique_ptr<Workspace> create_workspace(int64_t n_batch, int64_t n_ctx) const override;
    int64_t decode_tokens_max() const override;
    void forward(Workspace& ws, const Batch& batch, float* logits, TopCandidate* top) const override;
    void kv_shift(Workspace& ws, KvCache& cache, int64_t keep, int64_t discard,
                  int64_t n_past) const override;

    const ModelTensors<CpuWeight>& weights() const { return weights_; }
    cpu::Isa isa() const { return isa_; }
    int n_threads() const { return n_threads_; }
    cpu::ThreadPool* pool() const { return pool_.get(); }  // null with one thread

  private:
    const Model& model_;
    cpu::Isa isa_;
    int n_threads_;
    ModelTensors<CpuWeight> weights_;
    std::unique_ptr<cpu::ThreadPool> pool_;
};

}  // namespace kinfer::engine
