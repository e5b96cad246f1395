#pragma once
// The key/value cache of one session, preallocated for its whole context in backend memory:
// K and V each [n_layer][n_ctx][n_embd_kv], fp16 (default; half the memory) or float32. Position p of
// the sequence lives at row p. Which positions are filled is the session's business.
#include <cstdint>

#include "engine/backend.hpp"

namespace kinfer::engine {

class KvCache {
  public:
    KvCache(const Backend& backend, KvType type, int64_t n_layer, int64_t n_ctx, int64_t n_embd_kv);

    KvType type() const { return type_; }
    bool is_f16() const { return type_ == KvType::F16; }
    int64_t n_layer() const { return n_layer_; }
    int64_t n_ctx() const { return n_ctx_; }
    int64_t n_embd_kv() const { return n_embd_kv_; }
    size_t elem_bytes() const { return is_f16() ? 2 : 4; }
    size_t row_bytes() const { return elem_bytes() * static_cast<size_t>(n_embd_kv_); }
    size_t layer_bytes() const { return row_bytes() * static_cast<size_t>(n_ctx_); }
    size_t bytes() const { return 2 * layer_bytes() * static_cast<size_t>(n_layer_); }

    // Base of a layer's K (or V) rows, in backend memory.
    void* k(int64_t layer) const { return static_cast<uint8_t*>(k_.data()) + layer_bytes() * size_t(layer); }
    void* v(int64_t layer) const { return static_cast<uint8_t*>(v_.data()) + layer_bytes() * size_t(layer); }

  private:
    KvType type_;
    int64_t n_layer_, n_ctx_, n_embd_kv_;
    DeviceBuffer k_, v_;
};

}  // namespace kinfer::engine
