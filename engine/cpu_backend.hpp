#pragma once
// The CPU backend: activations in host memory, weights read in place from the mapping through the
// kernels in kernels/cpu/. Owns the per-thread scratch rows its kernels need, sized once at creation,
// so a forward step allocates nothing.
#include <vector>

#include "engine/backend.hpp"
#include "engine/model.hpp"

namespace kinfer::engine {

class CpuBackend final : public Backend {
  public:
    CpuBackend(const Model& model, const BackendShape& shape);

    const char* name() const override { return "cpu"; }
    void* allocate(size_t bytes) override;
    void release(void* p) noexcept override;
    void copy_to_host(void* host_dst, const void* src, size_t bytes) override;

    void embed(const gguf::TensorView& table, std::span<const int32_t> ids, Mat out) override;
    void rmsnorm(Mat x, const gguf::TensorView& w, float eps, Mat out) override;
    void matmul(const gguf::TensorView& w, Mat x, Mat out) override;
    void rope(Mat q, Mat k, int64_t pos0) override;
    void kv_store(KvCache& cache, int64_t layer, Mat k, Mat v, int64_t pos0) override;
    void attention(const KvCache& cache, int64_t layer, Mat q, int64_t pos0, Mat out) override;
    void swiglu(Mat gate, Mat up, Mat out) override;
    void add(Mat x, Mat y) override;
    void kv_shift(KvCache& cache, int64_t keep, int64_t discard, int64_t n_past) override;

  private:
    const Model& model_;
    int n_threads_;
    std::vector<float> row_scratch_;   // n_threads rows of the widest matmul input
    std::vector<float> attn_scratch_;  // n_threads rows of n_ctx attention scores
    int64_t row_scratch_width_ = 0;
};

}  // namespace kinfer::engine
