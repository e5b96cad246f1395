#include "engine/cuda_backend.hpp"

#include "kinfer/error.hpp"

#if !KINFER_WITH_CUDA

namespace kinfer::engine {

std::unique_ptr<Backend> make_cuda_backend(const Model&, const LoadProgress&) {
    throw Error("kinfer was built without CUDA (KINFER_CUDA=OFF or no nvcc); use --device cpu");
}

}  // namespace kinfer::engine

#else

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/kv_cache.hpp"
#include "engine/llama_graph.hpp"
#include "engine/model.hpp"
#include "kernels/cuda/cuda_info.hpp"
#include "kernels/cuda/env_switch.hpp"
#include "kernels/cuda/kernels.hpp"
#include "kernels/reference/type_kernels.hpp"

namespace kinfer::engine {
namespace {

void check(bool ok, const char* what) {
    if (!ok) throw Error(std::string("internal error: cuda backend: ") + what);
}

// One weight on the device: a repacked matrix, or a float vector (norms).
struct CudaWeight {
    cuda::DeviceMatrix m;
    const float* vec = nullptr;
};

// kernels/cuda/top_k.cu writes {int32 id, float logit} pairs straight into TopCandidate rows.
static_assert(sizeof(TopCandidate) == 8 && offsetof(TopCandidate, logit) == 4);

size_t align256(size_t n) {
    return (n + 255) / 256 * 256;
}

struct CudaWorkspace final : Workspace {
    cuda::Stream stream = nullptr;
    cuda::DeviceBuffer x, xn, q, k, v, att, proj, gate, up;  // n_batch rows each
    cuda::DeviceBuffer act, act2;                            // prepared activations for matvec
    cuda::DeviceBuffer ssq;           // a row's sums of squares per 32 elements (matvec_add_norm), one token
    cuda::DeviceBuffer ffn_counters;  // fused SwiGLU's counts (kept zero)
    cuda::DeviceBuffer gemm;          // prefill product scratch
    cuda::DeviceBuffer attn;          // flash-decoding partials
    cuda::DeviceBuffer counters;      // attention's merge counts (kept zero)
    cuda::DeviceBuffer ids, rows, outs;  // the step's inputs on the device
    cuda::DeviceBuffer logits;           // n_batch rows of n_vocab
    cuda::DeviceBuffer top;              // n_batch rows of kMaxTopK candidates
    std::vector<float> host_logits;      // candidates beyond kMaxTopK: selected on the host from these
    std::vector<cuda::KvRow> host_rows;
    std::vector<int32_t> host_ids, host_outs;
    // Decode-step graphs by (tokens, outputs, attention span): their launches bake in this workspace's
    // buffers.
    std::map<std::tuple<int64_t, int64_t, int>, std::unique_ptr<cuda::Graph> > graphs;
    ~CudaWorkspace() override { cuda::destroy_stream(stream); }
};

class CudaBackend;

// The generic graph's ops on the device; the step's inputs (ids, KV rows, output rows) are already there.
class CudaOps {
  public:
    using Weight = CudaWeight;

    CudaOps(const ModelConfig& c, const double* inv_freq_dev, CudaWorkspace& ws, int64_t n, int max_kv)
        : c_(c),
          inv_freq_(inv_freq_dev),
          ws_(ws),
          n_(n),
          max_kv_(max_kv),
          shape_{int(c.n_head), int(c.n_head_kv), int(c.head_dim), int(c.n_rot)} {}

    LlamaMats mats(int64_t n) {
        const int64_t q_dim = c_.n_head * c_.head_dim;
        auto m = [&](const cuda::DeviceBuffer& b, int64_t cols) { return Mat{b.as<float>(), n, cols}; };
        return {m(ws_.x, c_.n_embd),      m(ws_.xn, c_.n_embd),     m(ws_.q, q_dim),
                m(ws_.k, c_.n_embd_kv()), m(ws_.v, c_.n_embd_kv()), m(ws_.att, q_dim),
                m(ws_.proj, c_.n_embd),   m(ws_.gate, c_.n_ff),     m(ws_.up, c_.n_ff)};
    }

    void embed(const CudaWeight& table, std::span<const int32_t> ids, Mat out) {
        check(out.rows == int64_t(ids.size()) && out.cols == table.m.cols, "embed shape");
        flush();
        cuda::embed(table.m, ws_.ids.as<int32_t>(), int(out.rows), out.data, ws_.stream);
    }

    // A pending residual add (x += y) of the same x is fused into the norm; with up to 16 tokens the norm
    // also writes its output in matvec's layout, so the products after it need no preparation pass.
    void rmsnorm(Mat x, const CudaWeight& w, Mat out) {
        check(x.rows == out.rows && x.cols == out.cols && w.vec, "rmsnorm shape");
        if (pending_add_norm_ && add_x_.data == x.data && add_x_.size() == x.size() && out.data != x.data) {
            // The pending product with the residual add (wo, down) prepares this norm's input in its
            // epilogue; the products reading `out` apply the norm's scale (RowNorm), `out` itself is not
            // written (every decode product reads the prepared rows).
            pending_add_norm_ = false;
            flush();
            float* prepared = gu_act_ == ws_.act.as<float>() ? ws_.act2.as<float>() : ws_.act.as<float>();
            cuda::matvec_add_norm(*mv_.w, gu_act_, x.data, w.vec, prepared, ws_.ssq.as<float>(), ws_.stream);
            set_prepared(out.data, prepared, {ws_.ssq.as<float>(), c_.rms_eps, int(x.cols)});
            return;
        }
        const float* residual = nullptr;
        if (pending_ && pending_x_.data == x.data && pending_x_.size() == x.size()) {
            residual = pending_y_.data;
            pending_ = false;
        }
        flush();
        float* prepared = decode(x.rows) ? ws_.act.as<float>() : nullptr;
        cuda::rmsnorm(x.data, residual, w.vec, c_.rms_eps, int(x.rows), int(x.cols), out.data, prepared,
                      ws_.stream);
        set_prepared(prepared ? out.data : nullptr, prepared);
    }

    void matmuls(Mat x, std::initializer_list<MatmulOut<CudaWeight> > outs) {
        flush();
        check(outs.size() <= 3, "too many products on one input");
        for (const auto& o : outs)
            check(o.w.m.cols == x.cols && o.out.cols == o.w.m.rows && o.out.rows == x.rows, "matmul shape");
        if (decode(x.rows)) {
            const float* act = prepare(x, outs);
            const cuda::RowNorm norm = prepared_norm_;
            cuda::MatvecOut mv[3];
            int n = 0;
            for (const auto& o : outs) mv[n++] = {&o.w.m, o.out.data, o.out.cols};
            // A gate/up pair waits for the SwiGLU that follows it, to run as one kernel.
            for (const auto& o : outs)
                if (o.out.data == prepared_for_) set_prepared(nullptr, nullptr);
            // wq/wk/wv wait for the KV store that follows them, to rotate and store in their epilogue.
            if (n == 3 && mv[0].out == ws_.q.data() && mv[1].out == ws_.k.data() &&
                mv[2].out == ws_.v.data() && cuda::matvecs_rope_kv_supports(shape_) && fused_rope()) {
                pending_qkv_ = true;
                for (int i = 0; i < 3; ++i) qkv_[i] = mv[i];
                gu_act_ = act;
                gu_norm_ = norm;
                gu_rows_ = int(x.rows);
                return;
            }
            // Batches: the pair kernel (SwiGLU needs no count between blocks there); one token only with
            // KINFER_FUSED_SWIGLU=1.
            if (n == 2 &&
                (x.rows > 1 ? !norm.ssq && cuda::matvec_swiglu_pairs_supports(*mv[0].w, *mv[1].w, int(x.rows))
                            : cuda::matvec_swiglu_supports(*mv[0].w, *mv[1].w) && !fused_off())) {
                pending_gu_ = true;
                gu_[0] = mv[0], gu_[1] = mv[1];
                gu_act_ = act;
                gu_norm_ = norm;
                gu_rows_ = int(x.rows);
                return;
            }
            // A lone product (wo, down) waits for the residual add that follows it, to add in its epilogue.
            if (n == 1 && fused_add()) {
                pending_mv_ = true;
                mv_ = mv[0];
                gu_act_ = act;
                gu_norm_ = norm;
                gu_rows_ = int(x.rows);
                return;
            }
            cuda::matvecs(mv, n, act, int(x.rows), ws_.stream, norm);
        } else {
            for (const auto& o : outs)
                cuda::matmul(o.w.m, x.data, int(x.rows), o.out.data, o.out.cols,
                             {ws_.gemm.data(), ws_.gemm.bytes()}, ws_.stream);
        }
        for (const auto& o : outs)
            if (o.out.data == prepared_for_) set_prepared(nullptr, nullptr);
    }

    // RoPE is fused with the cache store: kv_store rotates q and k as it writes k and v.
    void rope(Mat q, Mat k) { check(q.rows == k.rows && q.rows == n_, "rope shape"); }

    void kv_store(int64_t layer, Mat k, Mat v) {
        check(k.cols == c_.n_embd_kv() && v.cols == k.cols && v.rows == k.rows, "kv_store shape");
        if (pending_qkv_ && qkv_[1].out == k.data && qkv_[2].out == v.data) {
            pending_qkv_ = false;
            flush();
            cuda::matvecs_rope_kv(qkv_, gu_act_, gu_rows_, ws_.rows.as<cuda::KvRow>(), int(layer), shape_,
                                  inv_freq_, ws_.stream, gu_norm_);
            return;
        }
        flush();
        const Mat q{ws_.q.as<float>(), k.rows, c_.n_head * c_.head_dim};
        cuda::rope_kv_store(q.data, k.data, v.data, ws_.rows.as<cuda::KvRow>(), int(k.rows), int(layer),
                            shape_, inv_freq_, ws_.stream);
    }

    void attention(int64_t layer, Mat q, Mat out) {
        check(q.cols == c_.n_head * c_.head_dim && out.cols == q.cols && out.rows == q.rows,
              "attention shape");
        flush();
        const float scale = static_cast<float>(1.0 / std::sqrt(double(c_.head_dim)));
        // With up to 16 tokens the output also goes out in matvec's layout for the output projection.
        float* prepared = decode(q.rows) && c_.head_dim % 32 == 0 ? ws_.act.as<float>() : nullptr;
        cuda::attention(q.data, ws_.rows.as<cuda::KvRow>(), int(q.rows), int(layer), shape_, scale, max_kv_,
                        out.data, prepared, ws_.attn.as<float>(), ws_.counters.as<int>(), ws_.stream);
        if (prepared)
            set_prepared(out.data, prepared);
        else if (out.data == prepared_for_)
            set_prepared(nullptr, nullptr);
    }

    void swiglu(Mat gate, Mat up, Mat out) {
        check(gate.size() == up.size() && out.size() == gate.size() && gate.cols == out.cols, "swiglu shape");
        if (pending_gu_ && gu_[0].out == gate.data && gu_[1].out == up.data && out.data == gate.data &&
            gu_[0].out_stride == gate.cols) {
            // The pending gate/up product with SwiGLU in its epilogue, prepared into the buffer its input
            // does not use.
            pending_gu_ = false;
            flush();
            float* prepared = gu_act_ == ws_.act.as<float>() ? ws_.act2.as<float>() : ws_.act.as<float>();
            if (gu_rows_ > 1) {  // only the fp16 part prepared: prepare() completes it for other readers
                cuda::matvec_swiglu_pairs(*gu_[0].w, *gu_[1].w, gu_act_, gu_rows_, out.data, out.cols,
                                          prepared, ws_.stream);
                set_prepared(out.data, prepared);
                prepared_half_only_ = true;
                return;
            }
            cuda::matvec_swiglu(*gu_[0].w, *gu_[1].w, gu_act_, gu_rows_, out.data, out.cols, prepared,
                                ws_.ffn_counters.as<int>(), ws_.stream, gu_norm_);
            set_prepared(out.data, prepared);
            return;
        }
        flush();
        float* prepared = decode(gate.rows) ? ws_.act.as<float>() : nullptr;
        cuda::swiglu(gate.data, up.data, int(gate.rows), gate.cols, out.data, prepared, ws_.stream);
        set_prepared(prepared ? out.data : nullptr, prepared);
    }

    // Deferred: the next op either fuses it (rmsnorm of the same x) or runs it first.
    void add(Mat x, Mat y) {
        check(x.size() == y.size(), "add shape");
        if (pending_mv_ && mv_.out == y.data && mv_.out_stride == y.cols && y.cols == x.cols &&
            y.rows == x.rows && x.data != y.data) {
            // x += W a in the product's epilogue; y (the product's own output) is not written. One token
            // waits further for the norm of x that follows (rmsnorm), to prepare its input in the same
            // launch.
            pending_mv_ = false;
            if (x.rows == 1 && !gu_norm_.ssq && fused_norm() && cuda::matvec_add_norm_supports(*mv_.w)) {
                flush();
                pending_add_norm_ = true;
                add_x_ = x;
                return;
            }
            flush();
            cuda::matvec_add(*mv_.w, gu_act_, gu_rows_, x.data, x.cols, ws_.stream, gu_norm_);
            if (x.data == prepared_for_) set_prepared(nullptr, nullptr);
            return;
        }
        flush();
        pending_ = true;
        pending_x_ = x;
        pending_y_ = y;
    }

    void gather_rows(Mat x, std::span<const int32_t> rows, Mat out) {
        check(out.rows == int64_t(rows.size()) && out.cols == x.cols, "gather shape");
        flush();
        cuda::gather_rows(x.data, ws_.outs.as<int32_t>(), int(out.rows), x.cols, out.data, ws_.stream);
        if (out.data == prepared_for_) set_prepared(nullptr, nullptr);
    }

    // The product into the workspace's logits; forward copies them to the host after the step.
    void logits(const CudaWeight& w, Mat x, float*) {
        check(w.m.cols == x.cols && w.m.rows == c_.n_vocab, "logits shape");
        flush();
        if (decode(x.rows)) {
            cuda::matvec(w.m, prepare(x), int(x.rows), ws_.logits.as<float>(), w.m.rows, ws_.stream);
        } else {
            cuda::matmul(w.m, x.data, int(x.rows), ws_.logits.as<float>(), w.m.rows,
                         {ws_.gemm.data(), ws_.gemm.bytes()}, ws_.stream);
        }
    }

    // Runs a deferred gate/up product (no SwiGLU came to fuse it) and a deferred add.
    void flush() {
        if (pending_add_norm_) {  // no norm came: the plain residual add
            pending_add_norm_ = false;
            cuda::matvec_add(*mv_.w, gu_act_, gu_rows_, add_x_.data, add_x_.cols, ws_.stream);
            if (add_x_.data == prepared_for_) set_prepared(nullptr, nullptr);
        }
        if (pending_mv_) {
            pending_mv_ = false;
            cuda::matvecs(&mv_, 1, gu_act_, gu_rows_, ws_.stream, gu_norm_);
        }
        if (pending_qkv_) {
            pending_qkv_ = false;
            cuda::matvecs(qkv_, 3, gu_act_, gu_rows_, ws_.stream, gu_norm_);
        }
        if (pending_gu_) {
            pending_gu_ = false;
            cuda::matvecs(gu_, 2, gu_act_, gu_rows_, ws_.stream, gu_norm_);
        }
        if (!pending_) return;
        pending_ = false;
        cuda::add(pending_x_.data, pending_y_.data, pending_x_.size(), ws_.stream);
    }

  private:
    static bool decode(int64_t rows) { return rows <= cuda::kMaxMatvecTokens; }
    // SwiGLU in the gate/up epilogue only with KINFER_FUSED_SWIGLU=1 (read once): its per-block count and
    // fence measured 6% slower end to end than the separate kernel (H200, Q4_K_M tg128 374 vs 398 t/s).
    static bool fused_off() {
        static const bool off = cuda::env_int("KINFER_FUSED_SWIGLU", 0) != 1;
        return off;
    }
    // The residual add in the epilogue of the product before it unless KINFER_FUSED_ADD=0 (read once).
    static bool fused_add() {
        static const bool on = cuda::env_on("KINFER_FUSED_ADD");
        return on;
    }
    // RoPE and the KV store in the wq/wk/wv epilogue unless KINFER_FUSED_ROPE=0 (read once; comparisons).
    static bool fused_rope() {
        static const bool on = cuda::env_on("KINFER_FUSED_ROPE");
        return on;
    }
    // One token's norms prepared in the epilogue of the product before them (matvec_add_norm) unless
    // KINFER_FUSED_NORM=0 (read once; comparisons).
    static bool fused_norm() {
        static const bool on = cuda::env_on("KINFER_FUSED_NORM");
        return on;
    }
    void set_prepared(const float* of, const float* buf, const cuda::RowNorm& norm = {}) {
        prepared_for_ = of;
        prepared_buf_ = buf;
        prepared_norm_ = norm;
        prepared_half_only_ = false;
    }
    // x in matvec's layout: where it is already (with every part the products read), else prepared into
    // ws.act.
    const float* prepare(Mat x, std::initializer_list<MatmulOut<CudaWeight> > readers) {
        bool half_enough = prepared_for_ == x.data && prepared_half_only_;
        for (const auto& o : readers)
            half_enough = half_enough && cuda::matvec_reads_half_form(o.w.m, int(x.rows));
        if (half_enough) return prepared_buf_;
        return prepare(x);
    }
    const float* prepare(Mat x) {
        if (prepared_for_ == x.data && !prepared_half_only_) return prepared_buf_;
        cuda::prepare_activation(x.data, int(x.rows), x.cols, ws_.act.as<float>(), ws_.stream);
        set_prepared(x.data, ws_.act.as<float>());
        return prepared_buf_;
    }

    const ModelConfig& c_;
    const double* inv_freq_;
    CudaWorkspace& ws_;
    int64_t n_;
    int max_kv_;
    cuda::AttentionShape shape_;
    const float* prepared_for_ = nullptr;  // the matrix whose rows are prepared in prepared_buf_
    const float* prepared_buf_ = nullptr;  // ws.act or ws.act2
    bool prepared_half_only_ = false;      // prepared_buf_ holds only the fp16 part (matvec_swiglu_pairs)
    cuda::RowNorm prepared_norm_;          // set: prepared_buf_ holds x * w of a norm without its scale
    bool pending_ = false;
    Mat pending_x_, pending_y_;
    bool pending_gu_ = false;  // a gate/up product waiting for its SwiGLU
    cuda::MatvecOut gu_[2];
    bool pending_mv_ = false;  // a lone product waiting for the residual add of its output
    cuda::MatvecOut mv_;
    bool pending_qkv_ = false;  // wq/wk/wv waiting for their KV store
    cuda::MatvecOut qkv_[3];
    bool pending_add_norm_ = false;  // mv_ with the residual add into add_x_, waiting for the norm of add_x_
    Mat add_x_;
    const float* gu_act_ = nullptr;  // the pending product's prepared input
    cuda::RowNorm gu_norm_;          // and the norm scale it still needs
    int gu_rows_ = 0;
};

class CudaBackend final : public Backend {
  public:
    CudaBackend(const Model& model, const LoadProgress& progress) : model_(model) {
        // Refused at load, not at the first step: the attention kernels exist for a few head sizes only.
        const int64_t head_dim = model.config().head_dim;
        if (!cuda::attention_supports_head_dim(int(head_dim)))
            throw UsageError(
                "--device cuda: head_dim " + std::to_string(head_dim) +
                " (attention.key_length) has no CUDA attention kernel (16, 32, 64, 96, 128 or 256); "
                "use --device cpu");
        const cuda::DeviceInfo info = cuda::query_devices();
        if (info.count == 0) throw Error("--device cuda: " + info.reason + "; use --device cpu");
        device_name_ = info.name;
        upload(progress);
    }

    std::string describe() const override { return "cuda (" + device_name_ + ")"; }
    // Up to this many tokens a step's products are the matvec / tensor-core batch kernels, beyond it cuBLAS.
    int64_t decode_tokens_max() const override { return cuda::kMaxMatvecTokens; }

    void* allocate(size_t bytes) const override { return cuda::device_alloc_zeroed(bytes, "the KV cache"); }
    void release(void* p) const noexcept override { cuda::device_free(p); }

    std::unique_ptr<Workspace> create_workspace(int64_t n_batch, int64_t n_ctx) const override {
        const ModelConfig& c = model_.config();
        auto ws = std::make_unique<CudaWorkspace>();
        ws->n_batch = n_batch;
        ws->n_ctx = n_ctx;
        ws->stream = cuda::create_stream();
        const auto floats = [&](int64_t cols) {
            return cuda::DeviceBuffer(sizeof(float) * size_t(n_batch * cols), "activations");
        };
        const int64_t q_dim = c.n_head * c.head_dim;
        ws->x = floats(c.n_embd);
        ws->xn = floats(c.n_embd);
        ws->q = floats(q_dim);
        ws->k = floats(c.n_embd_kv());
        ws->v = floats(c.n_embd_kv());
        ws->att = floats(q_dim);
        ws->proj = floats(c.n_embd);
        ws->gate = floats(c.n_ff);
        ws->up = floats(c.n_ff);
        ws->logits = floats(c.n_vocab);
        const int64_t max_cols = std::max({c.n_embd, c.n_ff, q_dim});
        const int n_decode = int(std::min<int64_t>(n_batch, cuda::kMaxMatvecTokens));
        ws->act = cuda::DeviceBuffer(sizeof(float) * size_t(n_decode * cuda::activation_floats(max_cols)),
                                     "activations");
        ws->act2 = cuda::DeviceBuffer(ws->act.bytes(), "activations");
        ws->ssq = cuda::DeviceBuffer(sizeof(float) * size_t(max_cols / 32 + 1), "norm sums");
        ws->ffn_counters = cuda::DeviceBuffer(sizeof(int) * size_t(c.n_ff / 32 + 1), "swiglu counters");
        cuda::zero_device(ws->ffn_counters.data(), ws->ffn_counters.bytes());
        if (n_batch > cuda::kMaxMatvecTokens)
            ws->gemm =
                cuda::DeviceBuffer(cuda::matmul_scratch_bytes(max_cols, int(n_batch)), "matmul scratch");
        const cuda::AttentionShape shape{int(c.n_head), int(c.n_head_kv), int(c.head_dim), int(c.n_rot)};
        size_t attn_floats = 1;  // the most any span's splits need
        for (int span = attention_span(1, int(n_ctx));; span = attention_span(span + 1, int(n_ctx))) {
            attn_floats = std::max(attn_floats, cuda::attention_scratch_floats(shape, int(n_batch), span));
            if (span >= n_ctx) break;
        }
        ws->attn = cuda::DeviceBuffer(sizeof(float) * attn_floats, "attention scratch");
        ws->counters = cuda::DeviceBuffer(sizeof(int) * cuda::attention_counters(shape, int(n_batch)),
                                          "attention counters");
        cuda::zero_device(ws->counters.data(), ws->counters.bytes());
        ws->ids = cuda::DeviceBuffer(sizeof(int32_t) * size_t(n_batch), "token ids");
        ws->outs = cuda::DeviceBuffer(sizeof(int32_t) * size_t(n_batch), "output rows");
        ws->rows = cuda::DeviceBuffer(sizeof(cuda::KvRow) * size_t(n_batch), "kv rows");
        ws->top = cuda::DeviceBuffer(sizeof(TopCandidate) * size_t(n_batch * cuda::kMaxTopK), "candidates");
        return ws;
    }

    void forward(Workspace& base, const Batch& b, float* logits, TopCandidate* top) const override {
        auto& ws = static_cast<CudaWorkspace&>(base);
        const ModelConfig& c = model_.config();
        const int64_t n = b.size();
        check(n >= 1 && n <= ws.n_batch, "batch size");
        check(b.top_k >= 0 && b.top_k <= c.n_vocab, "candidates per output");
        // The step's inputs, in one copy each.
        ws.host_rows.resize(size_t(n));
        ws.host_ids.assign(b.tokens.begin(), b.tokens.end());
        ws.host_outs.assign(b.outputs.begin(), b.outputs.end());
        int max_kv = 1;
        for (int64_t t = 0; t < n; ++t) {
            KvCache* cache = b.caches[size_t(b.seq[size_t(t)])];
            if (!cache->is_f16())
                throw UsageError("the CUDA backend keeps the KV cache in fp16 (kv type f16)");
            const int64_t p = b.pos[size_t(t)];
            check(p >= 0 && p < cache->n_ctx() && cache->n_ctx() <= ws.n_ctx, "position outside the cache");
            cuda::KvRow& r = ws.host_rows[size_t(t)];
            r.k = static_cast<uint16_t*>(cache->k(0));
            r.v = static_cast<uint16_t*>(cache->v(0));
            r.layer_elems = int64_t(cache->layer_bytes() / 2);
            r.pos = int32_t(p);
            r.first = c.sliding_window > 0 ? int32_t(std::max<int64_t>(0, p - c.sliding_window + 1)) : 0;
            max_kv = std::max(max_kv, r.pos + 1 - r.first);
        }
        cuda::copy_to_device(ws.ids.data(), ws.host_ids.data(), sizeof(int32_t) * size_t(n), ws.stream);
        cuda::copy_to_device(ws.rows.data(), ws.host_rows.data(), sizeof(cuda::KvRow) * size_t(n), ws.stream);
        const int64_t n_out = int64_t(b.outputs.size());
        if (n_out > 0)
            cuda::copy_to_device(ws.outs.data(), ws.host_outs.data(), sizeof(int32_t) * size_t(n_out),
                                 ws.stream);

        if (n <= cuda::kMaxMatvecTokens) {
            // Decode: one graph per (tokens, outputs, span), its attention sized for `span` positions so
            // that the launches never change while the rows fit.
            const int span = attention_span(max_kv, int(ws.n_ctx));
            auto& graph = ws.graphs[{n, n_out, span}];
            if (!graph) {
                auto g = std::make_unique<cuda::Graph>();
                g->begin_capture(ws.stream);
                try {
                    CudaOps ops(c, inv_freq_.as<double>(), ws, n, span);
                    llama_forward(ops, c, weights_, b, logits);
                    ops.flush();
                } catch (...) {
                    try {
                        g->end_capture(ws.stream);
                    } catch (...) {
                    }
                    throw;
                }
                g->end_capture(ws.stream);
                graph = std::move(g);
            }
            graph->launch(ws.stream);
        } else {
            CudaOps ops(c, inv_freq_.as<double>(), ws, n, max_kv);
            llama_forward(ops, c, weights_, b, logits);
            ops.flush();
        }
        const int k = b.top_k;
        check(b.full.empty() || (k > 0 && b.full.size() == size_t(n_out)), "full rows");
        if (n_out == 0) {
            cuda::synchronize(ws.stream);
        } else if (k == 0) {
            cuda::copy_to_host(logits, ws.logits.data(), sizeof(float) * size_t(n_out * c.n_vocab),
                               ws.stream);
        } else if (k <= cuda::kMaxTopK) {
            // Select on the device (after the step's graph, so one graph serves every k) and copy back k
            // pairs per row; the device leaves their order to us.
            cuda::top_k_select(ws.logits.as<float>(), int(n_out), c.n_vocab, k, ws.top.data(), ws.stream);
            size_t packed = 0;  // the rows batch.full asks for in full, before the candidates' copy waits
            for (size_t o = 0; o < b.full.size(); ++o)
                if (b.full[o])
                    cuda::copy_to_host(logits + packed++ * size_t(c.n_vocab),
                                       ws.logits.as<float>() + o * size_t(c.n_vocab),
                                       sizeof(float) * size_t(c.n_vocab), ws.stream);
            cuda::copy_to_host(top, ws.top.data(), sizeof(TopCandidate) * size_t(n_out * k), ws.stream);
            for (int64_t r = 0; r < n_out; ++r) sort_candidates({top + r * k, size_t(k)});
        } else {
            ws.host_logits.resize(size_t(n_out * c.n_vocab));  // keeps its capacity: grows once
            cuda::copy_to_host(ws.host_logits.data(), ws.logits.data(),
                               sizeof(float) * size_t(n_out * c.n_vocab), ws.stream);
            select_top_rows(ws.host_logits.data(), n_out, c.n_vocab, k, top);
            size_t packed = 0;
            for (size_t o = 0; o < b.full.size(); ++o)
                if (b.full[o])
                    std::copy_n(ws.host_logits.data() + o * size_t(c.n_vocab), size_t(c.n_vocab),
                                logits + packed++ * size_t(c.n_vocab));
        }
    }

    void kv_shift(Workspace& base, KvCache& cache, int64_t keep, int64_t discard,
                  int64_t n_past) const override {
        auto& ws = static_cast<CudaWorkspace&>(base);
        check(keep >= 0 && discard > 0 && keep + discard <= n_past && n_past <= cache.n_ctx(),
              "kv_shift range");
        const ModelConfig& c = model_.config();
        const int64_t n_move = n_past - keep - discard;
        const size_t rb = cache.row_bytes();
        if (n_move <= 0) return;
        // Overlapping device copies are undefined: move through a scratch buffer.
        cuda::DeviceBuffer tmp(size_t(n_move) * rb, "context shift");
        const cuda::AttentionShape shape{int(c.n_head), int(c.n_head_kv), int(c.head_dim), int(c.n_rot)};
        for (int64_t l = 0; l < cache.n_layer(); ++l) {
            for (void* base_ptr : {cache.k(l), cache.v(l)}) {
                auto* p = static_cast<uint8_t*>(base_ptr);
                cuda::copy_device(tmp.data(), p + size_t(keep + discard) * rb, size_t(n_move) * rb,
                                  ws.stream);
                cuda::copy_device(p + size_t(keep) * rb, tmp.data(), size_t(n_move) * rb, ws.stream);
            }
            cuda::rope_shift_keys(static_cast<uint16_t*>(cache.k(l)) + size_t(keep) * cache.n_embd_kv(),
                                  n_move, cache.n_embd_kv(), shape, inv_freq_.as<double>(), -discard,
                                  ws.stream);
        }
        cuda::synchronize(ws.stream);
    }

  private:
    // The positions a decode graph's attention is sized for: the power of two from 256 up that covers the
    // step's longest row, at most the context. A graph sized for the whole context splits every row as if it
    // were that long (at a context of 1 024 the grouped kernel and a combine launch even for rows of 100
    // positions; H200, `infer serve --ctx 1024`, one stream: 452-454 t/s, sized by span 471-475); a few
    // graphs per batch size instead of one. Rows longer than the span would still be read whole (split_range
    // follows each row's length); the span only sizes the splits. KINFER_ATTN_SPAN=0 (read once): always the
    // context.
    static int attention_span(int max_kv, int n_ctx) {
        static const bool on = cuda::env_on("KINFER_ATTN_SPAN");
        if (!on) return n_ctx;
        int span = 256;
        while (span < max_kv && span < n_ctx) span *= 2;
        return std::min(span, n_ctx);
    }

    void upload(const LoadProgress& progress) {
        const ModelWeights& mw = model_.weights();
        // Every distinct tensor once (tied embeddings share one), at 256-byte aligned offsets of one arena.
        std::vector<const gguf::TensorView*> tensors;
        auto note = [&](const gguf::TensorView* t) {
            if (t && std::find(tensors.begin(), tensors.end(), t) == tensors.end()) tensors.push_back(t);
            return 0;
        };
        mw.map(note);
        std::map<const gguf::TensorView*, size_t> offset;
        size_t total = 0;
        for (const gguf::TensorView* t : tensors) {
            offset[t] = total;
            total += align256(bytes_of(*t));
        }
        cuda::ensure_fits(total, model_.file().path() + ": the model's weights");
        arena_ = cuda::DeviceBuffer(total, "the model's weights");
        std::map<const gguf::TensorView*, CudaWeight> done;
        size_t uploaded = 0;
        for (const gguf::TensorView* t : tensors) {
            auto* dst = arena_.as<uint8_t>() + offset[t];
            CudaWeight w;
            const std::string name(t->name);
            if (t->n_rows() == 1) {  // a vector (norm): floats
                std::vector<float> f(t->ne[0]);
                const auto deq = ref::dequantize_fn(*t->type);
                if (!deq) throw FormatError(name + ": tensor type " + t->type->name + " cannot be read");
                deq(t->data, f.data(), int64_t(f.size()));
                cuda::copy_to_device(dst, f.data(), f.size() * sizeof(float));
                w.vec = reinterpret_cast<const float*>(dst);
            } else {
                w.m = cuda::upload_matrix(*t->type, t->data, int64_t(t->n_rows()), int64_t(t->ne[0]), dst,
                                          name);
            }
            done[t] = w;
            uploaded += bytes_of(*t);
            if (progress) progress("uploading weights to the GPU", double(uploaded) / double(total));
        }
        cuda::synchronize();
        weights_ = mw.map([&](const gguf::TensorView* t) { return done.at(t); });
        // RoPE frequencies for the kernels.
        const std::vector<double>& f = model_.rope_inv_freq();
        inv_freq_ = cuda::DeviceBuffer(sizeof(double) * std::max<size_t>(1, f.size()), "rope frequencies");
        cuda::copy_to_device(inv_freq_.data(), f.data(), sizeof(double) * f.size());
        cuda::synchronize();
        if (progress) progress("uploading weights to the GPU", 1.0);
    }

    static size_t bytes_of(const gguf::TensorView& t) {
        if (t.n_rows() == 1) return sizeof(float) * t.ne[0];
        return cuda::device_matrix_bytes(*t.type, int64_t(t.n_rows()), int64_t(t.ne[0]), std::string(t.name));
    }

    const Model& model_;
    std::string device_name_;
    cuda::DeviceBuffer arena_;
    cuda::DeviceBuffer inv_freq_;
    ModelTensors<CudaWeight> weights_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const Model& model, const LoadProgress& progress) {
    return std::make_unique<CudaBackend>(model, progress);
}

}  // namespace kinfer::engine

#endif  // KINFER_WITH_CUDA
