#include "engine/cpu_backend.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "engine/kv_cache.hpp"
#include "engine/llama_graph.hpp"
#include "kernels/cpu/decode_table.hpp"
#include "kernels/cpu/simple_ops.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "kernels/fp16.hpp"
#include "kinfer/error.hpp"

namespace kinfer::engine {
namespace {

void check(bool ok, const char* what) {
    // Shape mismatches are engine bugs, not user errors; they still must not corrupt memory.
    if (!ok) throw Error(std::string("internal error: cpu backend: ") + what);
}

// A stretch of the batch: consecutive tokens of one sequence at consecutive positions. Attention and RoPE
// run per run (a run's queries see the cache up to their own position).
struct Run {
    int64_t first = 0, count = 0;
    int64_t pos0 = 0;
    KvCache* cache = nullptr;
};

struct CpuWorkspace final : Workspace {
    std::vector<float> x, xn, q, k, v, att, proj, gate, up;  // n_batch rows each
    std::vector<float> attn_scratch;                         // cpu::attention_scratch_floats
    cpu::ActBuffer act[3];                                   // prepared activations, one per input format
    std::vector<Run> runs;
    std::vector<float> logits;  // steps that want candidates: the outputs' logits (grows, never per token)
};

float* ptr(std::vector<float>& v) {
    return v.data();
}

// The generic graph's ops for one step of one batch.
class CpuOps {
  public:
    using Weight = CpuWeight;

    CpuOps(const CpuBackend& be, const ModelConfig& c, const std::vector<double>& inv_freq, CpuWorkspace& ws,
           const Batch& b)
        : c_(c), inv_freq_(inv_freq), ws_(ws), b_(b), pool_(be.pool()) {
        ws.runs.clear();
        for (int64_t t = 0; t < b.size(); ++t) {
            KvCache* cache = b.caches[size_t(b.seq[size_t(t)])];
            const int64_t p = b.pos[size_t(t)];
            check(p >= 0 && p < cache->n_ctx(), "position outside the cache");
            if (!ws.runs.empty() && ws.runs.back().cache == cache &&
                ws.runs.back().pos0 + ws.runs.back().count == p)
                ++ws.runs.back().count;
            else
                ws.runs.push_back(Run{t, 1, p, cache});
        }
        for (const Run& r : ws.runs) longest_run_ = std::max(longest_run_, r.count);
    }

    LlamaMats mats(int64_t n) {
        const int64_t q_dim = c_.n_head * c_.head_dim;
        return {{ptr(ws_.x), n, c_.n_embd},      {ptr(ws_.xn), n, c_.n_embd},     {ptr(ws_.q), n, q_dim},
                {ptr(ws_.k), n, c_.n_embd_kv()}, {ptr(ws_.v), n, c_.n_embd_kv()}, {ptr(ws_.att), n, q_dim},
                {ptr(ws_.proj), n, c_.n_embd},   {ptr(ws_.gate), n, c_.n_ff},     {ptr(ws_.up), n, c_.n_ff}};
    }

    void embed(const CpuWeight& table, std::span<const int32_t> ids, Mat out) {
        check(out.rows == int64_t(ids.size()) && out.cols == table.n_in, "embed shape");
        for (int64_t t = 0; t < out.rows; ++t)
            table.dequantize(table.data + size_t(ids[size_t(t)]) * table.row_bytes, out.data + t * out.cols,
                             out.cols);
    }

    void rmsnorm(Mat x, const CpuWeight& w, Mat out) {
        check(x.rows == out.rows && x.cols == out.cols && w.n_in == x.cols, "rmsnorm shape");
        cpu::rmsnorm(x.data, w.f32(), c_.rms_eps, x.rows, x.cols, out.data, pool_);
    }

    // Every output of one input: the input is prepared once per activation format, and all products run
    // in one job on the pool. The outputs' rows are laid end to end and cut into chunks of about equal
    // work; a chunk's edges inside an output are rounded up to that output's row_block, so the chunks tile
    // every output exactly in multiples of row_block (any row count, any thread count). Threads claim
    // chunks as they come: one that the OS deschedules holds back a chunk, not a fixed share.
    void matmuls(Mat x, std::initializer_list<MatmulOut<CpuWeight>> outs) {
        check(outs.size() <= 3, "too many products on one input");
        struct Product {
            const cpu::MatmulPath* path;
            const void* act;
            const CpuWeight* w;
            float* out;
            int64_t row0;  // first row in the laid-out order
        };
        Product prods[3];
        int formats[3];
        int n_formats = 0, n_prods = 0;
        int64_t work = 0, total_rows = 0;
        for (const auto& o : outs) {
            check(o.w.n_in == x.cols && o.out.cols == o.w.n_out && o.out.rows == x.rows, "matmul shape");
            // A step of single tokens (many sequences decoding together) takes the decode path whatever its
            // size: its precision, and each token's bits being those it gets alone. Prompts go by row count.
            const cpu::MatmulPath& p = o.w.kernels->path(longest_run_ > 1 ? x.rows : 1);
            int f = 0;
            while (f < n_formats && formats[f] != p.act_format) ++f;
            if (f == n_formats) {
                cpu::ActBuffer& buf = ws_.act[n_formats];
                check(p.act_bytes(x.cols, x.rows) <= buf.size(), "activation buffer");
                p.prepare(x.data, x.cols, x.rows, buf.data());
                formats[n_formats++] = p.act_format;
            }
            prods[n_prods++] = Product{&p, ws_.act[f].data(), &o.w, o.out.data, total_rows};
            total_rows += o.w.n_out;
            work += o.w.n_out * o.w.n_in * x.rows;
        }
        const auto chunk = [&](int64_t begin, int64_t end, int) {
            for (int i = 0; i < n_prods; ++i) {
                const Product& pr = prods[i];
                const int64_t n_out = pr.w->n_out, rb = pr.path->row_block;
                const auto edge = [&](int64_t global) {
                    const int64_t local = std::clamp<int64_t>(global - pr.row0, 0, n_out);
                    return std::min((local + rb - 1) / rb * rb, n_out);
                };
                const int64_t r0 = edge(begin), r1 = edge(end);
                if (r0 < r1)
                    pr.path->rows(pr.w->data, pr.w->row_bytes, pr.w->n_in, pr.act, x.rows, r0, r1, pr.out,
                                  n_out);
            }
        };
        // Chunks of at least 16 rows: smaller ones would cost more in claiming than they balance.
        cpu::parallel_range(pool_, work >= cpu::kMinParallelWork, total_rows, chunk, 16);
    }

    void rope(Mat q, Mat k) {
        check(q.cols == c_.n_head * c_.head_dim && k.cols == c_.n_embd_kv() && q.rows == k.rows,
              "rope shape");
        const int64_t* pos = b_.pos.data();
        cpu::rope(q.data, q.rows, size_t(q.cols), c_.n_head, c_.head_dim, c_.n_rot, inv_freq_.data(), pos,
                  pool_);
        cpu::rope(k.data, k.rows, size_t(k.cols), c_.n_head_kv, c_.head_dim, c_.n_rot, inv_freq_.data(), pos,
                  pool_);
    }

    void kv_store(int64_t layer, Mat k, Mat v) {
        check(k.cols == c_.n_embd_kv() && v.cols == k.cols && v.rows == k.rows, "kv_store shape");
        for (const Run& r : ws_.runs) {
            KvCache& cache = *r.cache;
            const size_t rb = cache.row_bytes();
            auto* kd = static_cast<uint8_t*>(cache.k(layer)) + size_t(r.pos0) * rb;
            auto* vd = static_cast<uint8_t*>(cache.v(layer)) + size_t(r.pos0) * rb;
            for (int64_t t = 0; t < r.count; ++t) {
                cpu::store_row(k.data + (r.first + t) * k.cols, kd + size_t(t) * rb, k.cols, cache.is_f16());
                cpu::store_row(v.data + (r.first + t) * v.cols, vd + size_t(t) * rb, v.cols, cache.is_f16());
            }
        }
    }

    void attention(int64_t layer, Mat q, Mat out) {
        check(q.cols == c_.n_head * c_.head_dim && out.cols == q.cols && out.rows == q.rows,
              "attention shape");
        const float scale = static_cast<float>(1.0 / std::sqrt(double(c_.head_dim)));
        const int n_threads = pool_ ? pool_->size() : 1;
        // Sequences whose attention is too small to split across the pool (a decode step of short contexts:
        // each would run on the calling thread alone) run as one task each instead, on a thread's share of
        // the scratch; each sequence's arithmetic is the same either way.
        bool by_sequence = n_threads > 1 && ws_.runs.size() > 1;
        for (const Run& r : ws_.runs) {
            check(cpu::attention_scratch_floats(c_.n_head, c_.n_head_kv, r.pos0 + r.count, n_threads) <=
                      ws_.attn_scratch.size(),
                  "attention context");
            if (r.count * c_.n_head * (r.pos0 + r.count) * c_.head_dim >= cpu::kMinParallelWork)
                by_sequence = false;
        }
        const auto run = [&](const Run& r, float* scratch, cpu::ThreadPool* pool) {
            const KvCache& cache = *r.cache;
            cpu::attention(q.data + r.first * q.cols, r.count, r.pos0, cache.k(layer), cache.v(layer),
                           cache.is_f16(), c_.n_head, c_.n_head_kv, c_.head_dim, scale, c_.sliding_window,
                           out.data + r.first * out.cols, scratch, pool);
        };
        if (by_sequence) {
            const size_t share = ws_.attn_scratch.size() / size_t(n_threads);
            pool_->run(int64_t(ws_.runs.size()), [&](int64_t i, int thread) {
                run(ws_.runs[size_t(i)], ws_.attn_scratch.data() + size_t(thread) * share, nullptr);
            });
            return;
        }
        for (const Run& r : ws_.runs) run(r, ws_.attn_scratch.data(), pool_);
    }

    void swiglu(Mat gate, Mat up, Mat out) {
        check(gate.size() == up.size() && out.size() == gate.size(), "swiglu shape");
        cpu::swiglu(gate.data, up.data, gate.size(), out.data, pool_);
    }

    void add(Mat x, Mat y) {
        check(x.size() == y.size(), "add shape");
        cpu::add(x.data, y.data, x.size(), pool_);
    }

    void gather_rows(Mat x, std::span<const int32_t> rows, Mat out) {
        check(out.rows == int64_t(rows.size()) && out.cols == x.cols, "gather shape");
        for (size_t i = 0; i < rows.size(); ++i)
            std::memmove(out.data + int64_t(i) * out.cols, x.data + int64_t(rows[i]) * x.cols,
                         sizeof(float) * size_t(x.cols));
    }

    void logits(const CpuWeight& w, Mat x, float* host) {
        matmuls(x, {MatmulOut<CpuWeight>{w, Mat{host, x.rows, w.n_out}}});
    }

  private:
    const ModelConfig& c_;
    const std::vector<double>& inv_freq_;
    CpuWorkspace& ws_;
    const Batch& b_;
    cpu::ThreadPool* pool_;
    int64_t longest_run_ = 0;  // most tokens of one sequence in the step (1: a decode step)
};

CpuWeight cpu_weight(const gguf::TensorView* t, cpu::Isa isa) {
    CpuWeight w;
    w.data = t->data;
    w.row_bytes = t->row_bytes();
    w.n_in = int64_t(t->ne[0]);
    w.n_out = t->n_dims >= 2 ? int64_t(t->ne[1]) : 1;
    w.dequantize = ref::dequantize_fn(*t->type);
    if (t->n_dims >= 2) w.kernels = &cpu::quant_kernels(t->type->type, isa);
    return w;
}

}  // namespace

CpuBackend::CpuBackend(const Model& model, cpu::Isa isa)
    : model_(model), isa_(isa), n_threads_(model.n_threads()) {
    weights_ = model.weights().map([&](const gguf::TensorView* t) { return cpu_weight(t, isa); });
    // One thread needs no pool: its ops run inline on the caller.
    if (n_threads_ > 1) pool_ = std::make_unique<cpu::ThreadPool>(n_threads_);
}

CpuBackend::~CpuBackend() = default;

int64_t CpuBackend::decode_tokens_max() const {
    int64_t most = std::numeric_limits<int64_t>::max();
    for (const auto& l : weights_.layers)
        for (const CpuWeight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
            if (w->kernels) most = std::min(most, w->kernels->prefill_min_tokens - 1);
    if (weights_.output.kernels) most = std::min(most, weights_.output.kernels->prefill_min_tokens - 1);
    return most;
}

std::string CpuBackend::describe() const {
    return "cpu (" + cpu::decode_path_name(isa_) + ", " + std::to_string(n_threads_) +
           (n_threads_ == 1 ? " thread)" : " threads)");
}

void* CpuBackend::allocate(size_t bytes) const {
    void* p = std::calloc(std::max<size_t>(bytes, 1), 1);
    if (!p)
        throw Error("out of memory allocating " + std::to_string(bytes >> 20) + " MiB for the cpu backend");
    return p;
}

void CpuBackend::release(void* p) const noexcept {
    std::free(p);
}

std::unique_ptr<Workspace> CpuBackend::create_workspace(int64_t n_batch, int64_t n_ctx) const {
    const ModelConfig& c = model_.config();
    auto ws = std::make_unique<CpuWorkspace>();
    ws->n_batch = n_batch;
    ws->n_ctx = n_ctx;
    const auto rows = [&](std::vector<float>& v, int64_t cols) { v.resize(size_t(n_batch * cols)); };
    rows(ws->x, c.n_embd);
    rows(ws->xn, c.n_embd);
    rows(ws->q, c.n_head * c.head_dim);
    rows(ws->k, c.n_embd_kv());
    rows(ws->v, c.n_embd_kv());
    rows(ws->att, c.n_head * c.head_dim);
    rows(ws->proj, c.n_embd);
    rows(ws->gate, c.n_ff);
    rows(ws->up, c.n_ff);
    ws->attn_scratch.resize(cpu::attention_scratch_floats(c.n_head, c.n_head_kv, n_ctx, n_threads_));
    // The largest prepared activation any product of a step can need (act_bytes grows with n_tokens).
    size_t act_bytes = 0;
    const auto need = [&](const CpuWeight& w) {
        if (!w.kernels) return;
        for (const cpu::MatmulPath* p : {&w.kernels->decode, &w.kernels->prefill})
            act_bytes = std::max(act_bytes, p->act_bytes(w.n_in, n_batch));
    };
    need(weights_.output);
    for (const auto& l : weights_.layers)
        for (const CpuWeight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) need(*w);
    for (auto& a : ws->act) a.resize(act_bytes);
    ws->runs.reserve(size_t(n_batch));
    return ws;
}

void CpuBackend::forward(Workspace& ws, const Batch& batch, float* logits, TopCandidate* top) const {
    auto& cws = static_cast<CpuWorkspace&>(ws);
    const int64_t n_vocab = model_.config().n_vocab;
    check(batch.size() >= 1 && batch.size() <= ws.n_batch, "batch size");
    check(batch.top_k >= 0 && batch.top_k <= n_vocab, "candidates per output");
    check(batch.full.empty() || (batch.top_k > 0 && batch.full.size() == batch.outputs.size()), "full rows");
    const size_t n_out = batch.outputs.size();
    float* const full_out = logits;
    if (batch.top_k > 0) {
        if (cws.logits.size() < n_out * size_t(n_vocab)) cws.logits.resize(n_out * size_t(n_vocab));
        logits = cws.logits.data();
    }
    CpuOps ops(*this, model_.config(), model_.rope_inv_freq(), cws, batch);
    llama_forward(ops, model_.config(), weights_, batch, logits);
    if (batch.top_k <= 0) return;
    size_t packed = 0;
    for (size_t o = 0; o < batch.full.size(); ++o)
        if (batch.full[o])
            std::memcpy(full_out + packed++ * size_t(n_vocab), logits + o * size_t(n_vocab),
                        sizeof(float) * size_t(n_vocab));
    // Each output's selection on its own thread: with 8 sequences a step's selections were ~0.5 ms of
    // one core while the other idled (perf, infer serve at 8 streams on the demo model).
    const auto select = [&](int64_t begin, int64_t end, int) {
        select_top_rows(logits + begin * n_vocab, end - begin, n_vocab, batch.top_k,
                        top + begin * batch.top_k);
    };
    if (pool() && n_out > 1)
        pool()->parallel_for(int64_t(n_out), select);
    else
        select(0, int64_t(n_out), 0);
}

void CpuBackend::kv_shift(Workspace&, KvCache& cache, int64_t keep, int64_t discard, int64_t n_past) const {
    check(keep >= 0 && discard > 0 && keep + discard <= n_past && n_past <= cache.n_ctx(), "kv_shift range");
    const ModelConfig& c = model_.config();
    const int64_t n_move = n_past - keep - discard;
    const size_t rb = cache.row_bytes();
    const int64_t back = -discard;
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
                      model_.rope_inv_freq().data(), &back, nullptr);
            cpu::store_row(row.data(), kp, cache.n_embd_kv(), cache.is_f16());
        }
    }
}

}  // namespace kinfer::engine
