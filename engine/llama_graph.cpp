#include "engine/llama_graph.hpp"

namespace kinfer::engine {

Activations::Activations(Backend& backend, const ModelConfig& c, int64_t n_batch_)
    : n_batch(n_batch_), n_vocab(c.n_vocab) {
    const auto floats = [&](int64_t cols) {
        return DeviceBuffer(backend, sizeof(float) * size_t(n_batch * cols));
    };
    x = floats(c.n_embd);
    xn = floats(c.n_embd);
    q = floats(c.n_head * c.head_dim);
    k = floats(c.n_embd_kv());
    v = floats(c.n_embd_kv());
    att = floats(c.n_head * c.head_dim);
    proj = floats(c.n_embd);
    gate = floats(c.n_ff);
    up = floats(c.n_ff);
    reserve_logits(backend, 1);
}

void Activations::reserve_logits(Backend& backend, int64_t rows) {
    if (rows <= logits_rows) return;
    logits = DeviceBuffer(backend, sizeof(float) * size_t(rows * n_vocab));
    logits_rows = rows;
}

void llama_forward(Backend& be, const Model& model, KvCache& cache, Activations& a,
                   std::span<const int32_t> tokens, int64_t pos0, int64_t n_out) {
    const ModelConfig& c = model.config();
    const ModelWeights& w = model.weights();
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t q_dim = c.n_head * c.head_dim;

    const Mat x = a.x.mat(n, c.n_embd), xn = a.xn.mat(n, c.n_embd), proj = a.proj.mat(n, c.n_embd);
    const Mat q = a.q.mat(n, q_dim), att = a.att.mat(n, q_dim);
    const Mat k = a.k.mat(n, c.n_embd_kv()), v = a.v.mat(n, c.n_embd_kv());
    const Mat gate = a.gate.mat(n, c.n_ff), up = a.up.mat(n, c.n_ff);

    be.embed(*w.token_embd, tokens, x);
    for (int64_t il = 0; il < c.n_layer; ++il) {
        const LayerWeights& l = w.layers[static_cast<size_t>(il)];
        // attention block
        be.rmsnorm(x, *l.attn_norm, c.rms_eps, xn);
        be.matmul(*l.wq, xn, q);
        be.matmul(*l.wk, xn, k);
        be.matmul(*l.wv, xn, v);
        be.rope(q, k, pos0);
        be.kv_store(cache, il, k, v, pos0);
        be.attention(cache, il, q, pos0, att);
        be.matmul(*l.wo, att, proj);
        be.add(x, proj);
        // feed-forward block
        be.rmsnorm(x, *l.ffn_norm, c.rms_eps, xn);
        be.matmul(*l.w_gate, xn, gate);
        be.matmul(*l.w_up, xn, up);
        be.swiglu(gate, up, gate);
        be.matmul(*l.w_down, gate, proj);
        be.add(x, proj);
    }
    if (n_out <= 0) return;
    const Mat rows = x.row_range(n - n_out, n_out);
    const Mat rows_normed = xn.first_rows(n_out);
    be.rmsnorm(rows, *w.output_norm, c.rms_eps, rows_normed);
    be.matmul(*w.output, rows_normed, a.logits.mat(n_out, c.n_vocab));
}

}  // namespace kinfer::engine
