#include "engine/cpu_backend.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/kv_cache.hpp"
#include "kernels/cpu/simple_ops.hpp"
#include "kernels/fp16.hpp"
#include "kinfer/error.hpp"

namespace kinfer::engine {
namespace {

void check(bool ok, const char* what) {
    // Shape mismatches are engine bugs, not user errors; they still must not corrupt memory.
    if (!ok) throw Error(std::string("internal error: cpu backend: ") + what);
}

}  // namespace

std::unique_ptr<Backend> create_backend(const Model& model, const BackendShape& shape) {
    switch (model.device()) {
        case Device::Cpu:
            return std::make_unique<CpuBackend>(model, shape);
        case Device::Cuda:
            break;
    }
    throw Error("CUDA backend not available yet; use --device cpu");
}

CpuBackend::CpuBackend(const Model& model, const BackendShape& shape)
    : model_(model), n_threads_(model.n_threads()) {
    const ModelConfig& c = model.config();
    row_scratch_width_ = std::max({c.n_embd, c.n_ff, c.n_head * c.head_dim});
    row_scratch_.resize(static_cast<size_t>(n_threads_) * static_cast<size_t>(row_scratch_width_));
    attn_scratch_.resize(static_cast<size_t>(n_threads_) * static_cast<size_t>(shape.n_ctx));
}

void* CpuBackend::allocate(size_t bytes) {
    void* p = std::calloc(std::max<size_t>(bytes, 1), 1);
    if (!p)
        throw Error("out of memory allocating " + std::to_string(bytes >> 20) + " MiB for the cpu backend");
    return p;
}

void CpuBackend::release(void* p) noexcept {
    std::free(p);
}

void CpuBackend::copy_to_host(void* host_dst, const void* src, size_t bytes) {
    std::memcpy(host_dst, src, bytes);
}

void CpuBackend::embed(const gguf::TensorView& table, std::span<const int32_t> ids, Mat out) {
    check(out.rows == int64_t(ids.size()) && out.cols == int64_t(table.ne[0]), "embed shape");
    cpu::embed_rows(*table.type, table.data, table.row_bytes(), out.cols, ids.data(), out.rows, out.data,
                    n_threads_);
}

void CpuBackend::rmsnorm(Mat x, const gguf::TensorView& w, float eps, Mat out) {
    check(x.rows == out.rows && x.cols == out.cols && int64_t(w.ne[0]) == x.cols, "rmsnorm shape");
    cpu::rmsnorm(x.data, reinterpret_cast<const float*>(w.data), eps, x.rows, x.cols, out.data, n_threads_);
}

void CpuBackend::matmul(const gguf::TensorView& w, Mat x, Mat out) {
    check(int64_t(w.ne[0]) == x.cols && int64_t(w.ne[1]) == out.cols && x.rows == out.rows, "matmul shape");
    check(x.cols <= row_scratch_width_, "matmul scratch");
    cpu::matmul(*w.type, w.data, w.row_bytes(), out.cols, x.cols, x.data, x.rows, out.data,
                row_scratch_.data(), n_threads_);
}

void CpuBackend::rope(Mat q, Mat k, int64_t pos0) {
    const ModelConfig& c = model_.config();
    check(q.cols == c.n_head * c.head_dim && k.cols == c.n_embd_kv() && q.rows == k.rows, "rope shape");
    const double* inv_freq = model_.rope_inv_freq().data();
    cpu::rope(q.data, q.rows, size_t(q.cols), c.n_head, c.head_dim, c.n_rot, inv_freq, pos0, 1, n_threads_);
    cpu::rope(k.data, k.rows, size_t(k.cols), c.n_head_kv, c.head_dim, c.n_rot, inv_freq, pos0, 1,
              n_threads_);
}

void CpuBackend::kv_store(KvCache& cache, int64_t layer, Mat k, Mat v, int64_t pos0) {
    check(k.cols == cache.n_embd_kv() && v.cols == k.cols && v.rows == k.rows, "kv_store shape");
    check(pos0 >= 0 && pos0 + k.rows <= cache.n_ctx(), "kv_store position");
    auto* kd = static_cast<uint8_t*>(cache.k(layer)) + size_t(pos0) * cache.row_bytes();
    auto* vd = static_cast<uint8_t*>(cache.v(layer)) + size_t(pos0) * cache.row_bytes();
    for (int64_t t = 0; t < k.rows; ++t) {
        cpu::store_row(k.data + t * k.cols, kd + size_t(t) * cache.row_bytes(), k.cols, cache.is_f16());
        cpu::store_row(v.data + t * v.cols, vd + size_t(t) * cache.row_bytes(), v.cols, cache.is_f16());
    }
}

void CpuBackend::attention(const KvCache& cache, int64_t layer, Mat q, int64_t pos0, Mat out) {
    const ModelConfig& c = model_.config();
    check(q.cols == c.n_head * c.head_dim && out.cols == q.cols && out.rows == q.rows, "attention shape");
    check(
        pos0 + q.rows <= cache.n_ctx() && size_t(pos0 + q.rows) * size_t(n_threads_) <= attn_scratch_.size(),
        "attention context");
    const float scale = static_cast<float>(1.0 / std::sqrt(double(c.head_dim)));
    cpu::attention(q.data, q.rows, pos0, cache.k(layer), cache.v(layer), cache.is_f16(), c.n_head,
                   c.n_head_kv, c.head_dim, scale, c.sliding_window, out.data, attn_scratch_.data(),
                   n_threads_);
}

void CpuBackend::swiglu(Mat gate, Mat up, Mat out) {
    check(gate.size() == up.size() && out.size() == gate.size(), "swiglu shape");
    cpu::swiglu(gate.data, up.data, gate.size(), out.data, n_threads_);
}

void CpuBackend::add(Mat x, Mat y) {
    check(x.size() == y.size(), "add shape");
    cpu::add(x.data, y.data, x.size(), n_threads_);
}

void CpuBackend::kv_shift(KvCache& cache, int64_t keep, int64_t discard, int64_t n_past) {
    check(keep >= 0 && discard > 0 && keep + discard <= n_past && n_past <= cache.n_ctx(), "kv_shift range");
    const ModelConfig& c = model_.config();
    const int64_t n_move = n_past - keep - discard;
    const size_t rb = cache.row_bytes();
    std::vector<float> row(static_cast<size_t>(cache.n_embd_kv()));  // once per shift, not per token
    for (int64_t l = 0; l < cache.n_layer(); ++l) {
        auto* k = static_cast<uint8_t*>(cache.k(l));
        auto* v = static_cast<uint8_t*>(cache.v(l));
        std::memmove(k + size_t(keep) * rb, k + size_t(keep + discard) * rb, size_t(n_move) * rb);
        std::memmove(v + size_t(keep) * rb, v + size_t(keep + discard) * rb, size_t(n_move) * rb);
        // Keys carry their position in their rotation; turning them back by `discard` positions makes
        // them what they would have been had they been computed at their new positions.
        for (int64_t p = keep; p < keep + n_move; ++p) {
            uint8_t* kp = k + size_t(p) * rb;
            if (cache.is_f16()) {
                const auto* h = reinterpret_cast<const uint16_t*>(kp);
                for (size_t i = 0; i < row.size(); ++i) row[i] = fp16_to_fp32(h[i]);
            } else {
                std::memcpy(row.data(), kp, rb);
            }
            cpu::rope(row.data(), 1, row.size(), c.n_head_kv, c.head_dim, c.n_rot,
                      model_.rope_inv_freq().data(), -discard, 0, 1);
            cpu::store_row(row.data(), kp, cache.n_embd_kv(), cache.is_f16());
        }
    }
}

}  // namespace kinfer::engine
