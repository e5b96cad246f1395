#pragma once
// One conversation with a model: its KV cache, the tokens in it, and a workspace of the model's backend
// for its own steps, all preallocated at creation for the session's context. Not thread-safe itself; many
// sessions may share one Model from different threads. Several sessions can also be stepped together in
// one forward step (engine/batch_decoder.hpp), which is how a server decodes its clients.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/backend.hpp"
#include "engine/kv_cache.hpp"
#include "engine/model.hpp"

namespace kinfer::engine {

struct SessionOptions {
    int64_t n_ctx = 4096;  // context in tokens; capped at the model's training context
    KvType kv_type = KvType::F16;
    int64_t n_batch = 512;  // tokens per forward step (longer inputs are processed in steps of this size)
};

class Session {
  public:
    Session(std::shared_ptr<const Model> model, const SessionOptions& options = {});

    // Evaluates `tokens` at positions n_past() .. and appends them to the cache. Returns the logits of the
    // last token (n_vocab floats), or of every token (tokens.size() rows of n_vocab) when all_logits.
    // The span stays valid until the next call that changes the session. Throws UsageError for an id
    // outside the vocabulary or when the tokens do not fit in the remaining context (nothing is changed).
    std::span<const float> forward(std::span<const int32_t> tokens, bool all_logits = false);

    // Like forward(tokens), but the step keeps only the last token's k best candidates (1 <= k <= n_vocab;
    // engine/top_candidates.hpp), which the backend may select on its device without copying the logits
    // back. Returns them, valid as forward's span; logits() is empty until the next forward().
    std::span<const TopCandidate> forward_top(std::span<const int32_t> tokens, int32_t k);

    // The last token's logits from the latest forward(); empty when there are none (new or truncated, or
    // the latest step was forward_top).
    std::span<const float> logits() const;
    // The last token's candidates from the latest forward_top() (or a BatchDecoder input that asked for
    // them); empty otherwise.
    std::span<const TopCandidate> top() const;

    // Forgets every position from n on (n <= n_past): the start of the cache is kept and reused.
    void truncate(int64_t n);
    void reset() { truncate(0); }
    // Context shift as llama.cpp does it: keeps the first n_keep positions, drops half of the rest (the
    // oldest) and moves the newer half down, so generation can continue. Returns the number dropped.
    int64_t shift_context(int64_t n_keep);

    int64_t n_past() const { return static_cast<int64_t>(tokens_.size()); }
    // How many leading positions hold exactly what evaluating tokens()[0 .. n) afresh would give: all of
    // them, unless a context shift left later keys and values computed in a context that no longer exists.
    // Only these may be reused for a new prompt that starts with the same tokens.
    int64_t n_reusable() const { return n_reusable_; }
    int64_t n_ctx() const { return n_ctx_; }
    int64_t n_vocab() const { return model_->config().n_vocab; }
    // The tokens whose keys and values are in the cache, in order.
    std::span<const int32_t> tokens() const { return tokens_; }
    const Model& model() const { return *model_; }
    const std::shared_ptr<const Model>& model_ptr() const { return model_; }
    const KvCache& cache() const { return *cache_; }
    int64_t n_batch() const { return ws_->n_batch; }

    // Throws UsageError when `tokens` cannot follow what the session holds: empty, an id outside the
    // vocabulary, or more than the remaining context.
    void check_input(std::span<const int32_t> tokens) const;

  private:
    friend class BatchDecoder;
    // Records that `tokens` were evaluated (their keys and values are in the cache).
    void append_evaluated(std::span<const int32_t> tokens, bool exact);
    // forward and forward_top: top_k > 0 keeps candidates instead of logits (and excludes all_logits).
    void evaluate(std::span<const int32_t> tokens, bool all_logits, int32_t top_k);

    std::shared_ptr<const Model> model_;
    int64_t n_ctx_;
    std::unique_ptr<KvCache> cache_;
    std::unique_ptr<Workspace> ws_;
    std::vector<int32_t> tokens_;
    std::vector<float> logits_;  // host copy: the last forward's logits (1 or n rows)
    std::vector<int64_t> pos_;   // per step: the batch's positions, sequence ids and output rows
    std::vector<int32_t> seq_, outputs_;
    std::vector<TopCandidate> top_;  // the last forward_top's candidates (capacity kept)
    bool have_logits_ = false;
    bool have_top_ = false;
    int64_t last_logits_row_ = 0;  // row of logits_ holding the last token
    int64_t n_reusable_ = 0;
};

}  // namespace kinfer::engine
