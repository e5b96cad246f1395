#pragma once
// The CUDA backend: the weights uploaded once per model in the GPU layout of kernels/cuda (repacked, 16-byte
// records), activations and fp16 KV caches in device memory, the generic llama graph run over CudaOps on
// each workspace's own stream. A step of up to 16 tokens (decode, batched decode) is captured once per shape
// as a CUDA graph and replayed: the host's work per token is three small copies and one graph launch.
#include <memory>

#include "engine/backend.hpp"

namespace kinfer::engine {

// Throws Error when CUDA is absent (build or device) or the model does not fit the GPU (naming the sizes).
std::unique_ptr<Backend> make_cuda_backend(const Model& model, const LoadProgress& progress);

}  // namespace kinfer::engine
