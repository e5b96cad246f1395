#pragma once
// Several sessions of one model, stepped together: their new tokens go through the model in one forward
// step, so each weight is read once for all of them. Decoding is memory-bound, so k sequences cost about
// what one does; this is how a server serves many clients from one model (continuous batching).
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/session.hpp"

namespace kinfer::engine {

struct SequenceInput {
    Session* session;
    std::span<const int32_t> tokens;  // to evaluate after what the session holds (at least one)
    // 0: the session gets its last token's logits (Session::logits). k > 0 (at most n_vocab): only its k
    // best candidates (Session::top), which the step selects on the device; the outputs of the step that want
    // logits copy theirs besides, the others do not.
    int32_t top_k = 0;
};

class BatchDecoder {
  public:
    // Steps of at most n_batch tokens in all, over sessions of `model` with contexts up to n_ctx.
    BatchDecoder(std::shared_ptr<const Model> model, int64_t n_batch = 512, int64_t n_ctx = 0);

    // Evaluates each input's tokens after what its session holds, all sessions together, in as few steps
    // of at most n_batch tokens as it takes (a long prompt is spread over several steps). Afterwards each
    // session's logits() (or top(), for an input with top_k) are those of its last new token. Throws
    // UsageError, changing nothing, when a session appears twice, belongs to another model, or an input does
    // not fit its session (see Session::check_input).
    void decode(std::span<const SequenceInput> inputs);

    int64_t n_batch() const { return ws_->n_batch; }
    // Backend::decode_tokens_max of the model's backend.
    int64_t decode_tokens_max() const;

  private:
    std::shared_ptr<const Model> model_;
    std::unique_ptr<Workspace> ws_;
    std::vector<int32_t> tokens_, seq_, outputs_;
    std::vector<int64_t> pos_;
    std::vector<KvCache*> caches_;
    std::vector<size_t> input_of_seq_;  // per sequence of a step: which input it came from
    std::vector<int64_t> done_;         // per input: tokens already evaluated
    std::vector<uint8_t> exact_;        // per input: whether its session's cache was fully reusable
    std::vector<float> logits_;  // one row per output of a step that wants logits (grows, never per token)
    std::vector<TopCandidate> top_;  // the candidates of every output, when one of a step wants them
    std::vector<uint8_t> full_;      // per output of a step: it wants its full logits
};

}  // namespace kinfer::engine
