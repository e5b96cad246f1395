#include "engine/model.hpp"

#include <cmath>
#include <cstring>

#include "kernels/cpu/thread_pool.hpp"
#include "kinfer/error.hpp"

namespace kinfer::engine {

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& options) {
    return from_file(gguf::GgufFile::open(path), options);
}

std::shared_ptr<const Model> Model::from_file(gguf::GgufFile file, const LoadOptions& options) {
    return std::make_shared<const Model>(std::move(file), options);
}

Model::Model(gguf::GgufFile file, const LoadOptions& options)
    : file_(std::move(file)), device_(options.device) {
    if (options.n_threads < 0)
        throw UsageError("thread count must be >= 0, got " + std::to_string(options.n_threads));
    n_threads_ = options.n_threads > 0 ? options.n_threads : cpu::default_thread_count();
    config_ = read_model_config(file_);
    weights_ = bind_model_weights(file_, config_);

    const int64_t n_pairs = config_.n_rot / 2;
    rope_inv_freq_.resize(static_cast<size_t>(n_pairs));
    for (int64_t i = 0; i < n_pairs; ++i) {
        double f = double(config_.rope_freq_scale) *
                   std::pow(double(config_.rope_freq_base), -2.0 * double(i) / double(config_.n_rot));
        if (weights_.rope_freqs) {
            float factor;
            std::memcpy(&factor, weights_.rope_freqs->data + 4 * i, 4);
            if (!(factor > 0.0f) || !std::isfinite(factor))
                throw FormatError(file_.path() + ": rope_freqs.weight[" + std::to_string(i) + "] is " +
                                  std::to_string(factor) + ", expected a positive number");
            f /= double(factor);
        }
        rope_inv_freq_[static_cast<size_t>(i)] = f;
    }
    for (const gguf::TensorView& t : file_.tensors()) weight_bytes_ += t.n_bytes;
    memory_limit_ = options.memory_limit;
    backend_ = create_backend(*this, options.progress);
}

}  // namespace kinfer::engine
