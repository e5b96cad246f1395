#include "engine/session.hpp"

#include <algorithm>
#include <string>

#include "engine/finite_outputs.hpp"
#include "kinfer/error.hpp"

namespace kinfer::engine {

Session::Session(std::shared_ptr<const Model> model, const SessionOptions& options)
    : model_(std::move(model)) {
    if (!model_) throw UsageError("session: no model");
    const ModelConfig& c = model_->config();
    if (options.n_ctx < 1)
        throw UsageError("context size must be at least 1, got " + std::to_string(options.n_ctx));
    if (options.n_batch < 1)
        throw UsageError("batch size must be at least 1, got " + std::to_string(options.n_batch));
    n_ctx_ = std::min(options.n_ctx, c.n_ctx_train);
    const int64_t n_batch = std::min(options.n_batch, n_ctx_);
    cache_ = std::make_unique<KvCache>(model_->backend(), options.kv_type, c.n_layer, n_ctx_, c.n_embd_kv());
    ws_ = model_->backend().create_workspace(n_batch, n_ctx_);
    tokens_.reserve(static_cast<size_t>(n_ctx_));
    logits_.resize(static_cast<size_t>(c.n_vocab));
    pos_.reserve(size_t(n_batch));
    seq_.assign(size_t(n_batch), 0);
    outputs_.reserve(size_t(n_batch));
}

void Session::check_input(std::span<const int32_t> tokens) const {
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t n_vocab = model_->config().n_vocab;
    if (n == 0) throw UsageError("forward: no tokens");
    for (int32_t id : tokens)
        if (id < 0 || id >= n_vocab)
            throw UsageError("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                             std::to_string(n_vocab) + ")");
    if (n_past() + n > n_ctx_)
        throw UsageError("context full: " + std::to_string(n_past()) + " tokens in the cache + " +
                         std::to_string(n) + " new > context size " + std::to_string(n_ctx_));
}

void Session::append_evaluated(std::span<const int32_t> tokens, bool exact) {
    tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
    if (exact) n_reusable_ = n_past();
}

std::span<const float> Session::forward(std::span<const int32_t> tokens, bool all_logits) {
    evaluate(tokens, all_logits, 0);
    const int64_t n_vocab = model_->config().n_vocab;
    return {logits_.data(), size_t((all_logits ? int64_t(tokens.size()) : 1) * n_vocab)};
}

std::span<const TopCandidate> Session::forward_top(std::span<const int32_t> tokens, int32_t k) {
    const int64_t n_vocab = model_->config().n_vocab;
    if (k < 1 || k > n_vocab)
        throw UsageError("forward: " + std::to_string(k) + " candidates asked, outside [1, " +
                         std::to_string(n_vocab) + "]");
    evaluate(tokens, false, k);
    return top_;
}

void Session::evaluate(std::span<const int32_t> tokens, bool all_logits, int32_t top_k) {
    check_input(tokens);
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t n_vocab = model_->config().n_vocab;
    if (all_logits && logits_.size() < size_t(n * n_vocab)) logits_.resize(size_t(n * n_vocab));
    if (top_k > 0) top_.resize(size_t(top_k));
    have_logits_ = have_top_ = false;
    const bool exact = n_reusable_ == n_past();
    KvCache* const caches[] = {cache_.get()};
    for (int64_t done = 0; done < n;) {
        const int64_t step = std::min(ws_->n_batch, n - done);
        const bool last = done + step == n;
        pos_.clear();
        outputs_.clear();
        for (int64_t t = 0; t < step; ++t) {
            pos_.push_back(n_past() + t);
            if (all_logits || (last && t == step - 1)) outputs_.push_back(int32_t(t));
        }
        const std::span<const int32_t> chunk = tokens.subspan(size_t(done), size_t(step));
        Batch batch{chunk, pos_, std::span<const int32_t>(seq_.data(), size_t(step)), caches, outputs_};
        batch.top_k = top_k;
        model_->backend().forward(*ws_, batch, logits_.data() + (all_logits ? size_t(done * n_vocab) : 0),
                                  top_.data());
        // Before the chunk joins the session: a failed step leaves it as it was.
        if (top_k > 0 && last)
            check_top_finite(top_.data(), 1, top_k, "forward", n_past() + step - 1);
        else if (top_k == 0 && (all_logits || last))
            check_logits_finite(logits_.data() + (all_logits ? size_t(done * n_vocab) : 0),
                                all_logits ? step : 1, n_vocab, "forward",
                                all_logits ? n_past() : n_past() + step - 1);
        append_evaluated(chunk, exact);
        done += step;
    }
    have_logits_ = top_k == 0;
    have_top_ = top_k > 0;
    last_logits_row_ = all_logits ? n - 1 : 0;
}

std::span<const float> Session::logits() const {
    if (!have_logits_) return {};
    const size_t n_vocab = size_t(model_->config().n_vocab);
    return {logits_.data() + size_t(last_logits_row_) * n_vocab, n_vocab};
}

std::span<const TopCandidate> Session::top() const {
    if (!have_top_) return {};
    return top_;
}

void Session::truncate(int64_t n) {
    if (n < 0 || n > n_past())
        throw UsageError("truncate: position " + std::to_string(n) + " outside [0, " +
                         std::to_string(n_past()) + "]");
    if (n == n_past()) return;
    tokens_.resize(size_t(n));
    n_reusable_ = std::min(n_reusable_, n);
    have_logits_ = have_top_ = false;
}

int64_t Session::shift_context(int64_t n_keep) {
    n_keep = std::clamp<int64_t>(n_keep, 0, n_past());
    const int64_t n_discard = (n_past() - n_keep) / 2;
    if (n_discard <= 0) return 0;
    model_->backend().kv_shift(*ws_, *cache_, n_keep, n_discard, n_past());
    tokens_.erase(tokens_.begin() + n_keep, tokens_.begin() + n_keep + n_discard);
    n_reusable_ = std::min(n_reusable_, n_keep);
    return n_discard;
}

}  // namespace kinfer::engine
