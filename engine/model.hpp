#pragma once
// A loaded model: the mapped GGUF file, its hyperparameters, weight views, and the backend that runs it
// (made once here, with the device's copy of the weights). Immutable after load, so any number of sessions
// (on any threads) may share one through std::shared_ptr<const Model>.
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.hpp"
#include "engine/model_config.hpp"
#include "engine/model_weights.hpp"
#include "gguf/gguf_file.hpp"

namespace kinfer::engine {

struct LoadOptions {
    Device device = Device::Cpu;
    int n_threads =
        0;  // CPU threads per step; 0 = cpu::default_thread_count() (OMP_NUM_THREADS, else all CPUs)
    uint64_t memory_limit = 0;  // bytes of device memory the weights may take; 0: the device's size
    LoadProgress progress;      // reports slow preparation (uploads, repacking); may be null
};

class Model {
  public:
    // Maps `path` and checks it is a llama model kinfer can run. Throws Error / FormatError.
    static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& options = {});
    // The same from an already opened file (tests build models in memory).
    static std::shared_ptr<const Model> from_file(gguf::GgufFile file, const LoadOptions& options = {});

    const gguf::GgufFile& file() const { return file_; }
    const ModelConfig& config() const { return config_; }
    const ModelWeights& weights() const { return weights_; }
    Device device() const { return device_; }
    int n_threads() const { return n_threads_; }
    // RoPE angle per position for each rotated pair i < n_rot / 2:
    // freq_scale * base^(-2i / n_rot) / rope_freqs[i], in double.
    const std::vector<double>& rope_inv_freq() const { return rope_inv_freq_; }
    // Bytes of all weight tensors (what one decode step reads).
    uint64_t weight_bytes() const { return weight_bytes_; }
    uint64_t memory_limit() const { return memory_limit_; }
    // The backend that runs this model; shared by its sessions.
    const Backend& backend() const { return *backend_; }

    Model(gguf::GgufFile file, const LoadOptions& options);  // use load() / from_file()

  private:
    gguf::GgufFile file_;
    ModelConfig config_;
    ModelWeights weights_;
    Device device_;
    int n_threads_;
    std::vector<double> rope_inv_freq_;
    uint64_t weight_bytes_ = 0;
    uint64_t memory_limit_ = 0;
    std::unique_ptr<Backend> backend_;  // last: built from everything above
};

}  // namespace kinfer::engine
