#include "engine/kv_cache.hpp"

namespace kinfer::engine {

KvCache::KvCache(const Backend& backend, KvType type, int64_t n_layer, int64_t n_ctx, int64_t n_embd_kv)
    : type_(type), n_layer_(n_layer), n_ctx_(n_ctx), n_embd_kv_(n_embd_kv) {
    k_ = DeviceBuffer(backend, layer_bytes() * size_t(n_layer));
    v_ = DeviceBuffer(backend, layer_bytes() * size_t(n_layer));
}

}  // namespace kinfer::engine
