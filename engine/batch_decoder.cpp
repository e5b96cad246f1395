#include "engine/batch_decoder.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "engine/finite_outputs.hpp"
#include "kinfer/error.hpp"

namespace kinfer::engine {

BatchDecoder::BatchDecoder(std::shared_ptr<const Model> model, int64_t n_batch, int64_t n_ctx)
    : model_(std::move(model)) {
    if (!model_) throw UsageError("batch decoder: no model");
    if (n_batch < 1) throw UsageError("batch size must be at least 1, got " + std::to_string(n_batch));
    const int64_t ctx =
        n_ctx > 0 ? std::min(n_ctx, model_->config().n_ctx_train) : model_->config().n_ctx_train;
    ws_ = model_->backend().create_workspace(n_batch, ctx);
    tokens_.reserve(size_t(n_batch));
    seq_.reserve(size_t(n_batch));
    pos_.reserve(size_t(n_batch));
    outputs_.reserve(size_t(n_batch));
}

int64_t BatchDecoder::decode_tokens_max() const {
    return model_->backend().decode_tokens_max();
}

void BatchDecoder::decode(std::span<const SequenceInput> inputs) {
    // Check everything first: an error leaves every session as it was.
    for (size_t i = 0; i < inputs.size(); ++i) {
        const Session* s = inputs[i].session;
        if (!s) throw UsageError("batch: input " + std::to_string(i) + " has no session");
        if (&s->model() != model_.get())
            throw UsageError("batch: input " + std::to_string(i) + "'s session belongs to another model");
        if (s->n_ctx() > ws_->n_ctx)
            throw UsageError("batch: input " + std::to_string(i) + "'s session has a context of " +
                             std::to_string(s->n_ctx()) + " tokens, more than the decoder's " +
                             std::to_string(ws_->n_ctx));
        for (size_t j = 0; j < i; ++j)
            if (inputs[j].session == s)
                throw UsageError("batch: inputs " + std::to_string(j) + " and " + std::to_string(i) +
                                 " are the same session");
        s->check_input(inputs[i].tokens);
        if (inputs[i].top_k < 0 || inputs[i].top_k > model_->config().n_vocab)
            throw UsageError("batch: input " + std::to_string(i) + " asks for " +
                             std::to_string(inputs[i].top_k) + " candidates, outside [0, n_vocab]");
    }
    const int64_t n_vocab = model_->config().n_vocab;
    done_.assign(inputs.size(), 0);
    exact_.resize(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
        Session& s = *inputs[i].session;
        exact_[i] = s.n_reusable_ == s.n_past();
        s.have_logits_ = s.have_top_ = false;
    }

    size_t first_open = 0;  // inputs before this one are done
    while (first_open < inputs.size()) {
        int32_t step_k = 0;
        full_.clear();
        tokens_.clear();
        seq_.clear();
        pos_.clear();
        outputs_.clear();
        caches_.clear();
        input_of_seq_.clear();
        // Fill the step in input order: earlier inputs finish first, a long one takes what room is left.
        for (size_t i = first_open; i < inputs.size() && int64_t(tokens_.size()) < ws_->n_batch; ++i) {
            const SequenceInput& in = inputs[i];
            const int64_t n = int64_t(in.tokens.size());
            const int64_t take = std::min(n - done_[i], ws_->n_batch - int64_t(tokens_.size()));
            if (take <= 0) continue;
            const int32_t seq = int32_t(caches_.size());
            caches_.push_back(in.session->cache_.get());
            input_of_seq_.push_back(i);
            for (int64_t t = 0; t < take; ++t) {
                tokens_.push_back(in.tokens[size_t(done_[i] + t)]);
                pos_.push_back(in.session->n_past() + t);
                seq_.push_back(seq);
            }
            if (done_[i] + take == n) {
                outputs_.push_back(int32_t(tokens_.size() - 1));
                // The step selects candidates for every output as soon as one wants them (as many as the
                // most any wants: each takes its first k); those that want logits get theirs besides (full_).
                full_.push_back(in.top_k == 0);
                step_k = std::max(step_k, in.top_k);
            }
        }
        const size_t n_out = outputs_.size();
        const size_t n_full = size_t(std::count(full_.begin(), full_.end(), uint8_t(1)));
        if (logits_.size() < n_full * size_t(n_vocab)) logits_.resize(n_full * size_t(n_vocab));
        if (top_.size() < n_out * size_t(step_k)) top_.resize(n_out * size_t(step_k));
        Batch batch{tokens_, pos_, seq_, caches_, outputs_};
        batch.top_k = step_k;
        if (step_k > 0 && n_full > 0) batch.full = full_;
        model_->backend().forward(*ws_, batch, logits_.data(), top_.data());
        // Before any sequence takes its tokens: a failed step leaves every session as it was. The logits rows
        // are the outputs that wanted them, in order (all of them in a step of no candidates).
        for (size_t o = 0, row = 0; o < n_out; ++o) {
            const int64_t position = pos_[size_t(outputs_[o])];
            if (step_k > 0) check_top_finite(top_.data() + o * size_t(step_k), 1, step_k, "decode", position);
            if (full_[o])
                check_logits_finite(logits_.data() + row++ * size_t(n_vocab), 1, n_vocab, "decode", position);
        }

        // Commit: each sequence's tokens join its session; finished ones take their logits row.
        size_t out = 0, row = 0;
        for (size_t s = 0; s < input_of_seq_.size(); ++s) {
            const size_t i = input_of_seq_[s];
            const SequenceInput& in = inputs[i];
            const int64_t take = std::count(seq_.begin(), seq_.end(), int32_t(s));
            in.session->append_evaluated(in.tokens.subspan(size_t(done_[i]), size_t(take)), exact_[i]);
            done_[i] += take;
            if (done_[i] == int64_t(in.tokens.size())) {
                Session& session = *in.session;
                const int32_t k = in.top_k;
                if (k == 0) {
                    std::memcpy(session.logits_.data(), logits_.data() + row++ * size_t(n_vocab),
                                sizeof(float) * size_t(n_vocab));
                    session.have_logits_ = true;
                    session.last_logits_row_ = 0;
                } else {
                    session.top_.resize(size_t(k));  // capacity kept: grows once (step_k >= k)
                    std::copy_n(top_.data() + out * size_t(step_k), size_t(k), session.top_.data());
                    session.have_top_ = true;
                }
                ++out;
            }
        }
        while (first_open < inputs.size() && done_[first_open] == int64_t(inputs[first_open].tokens.size()))
            ++first_open;
    }
}

}  // namespace kinfer::engine
