#include "engine/generate.hpp"

#include <chrono>
#include <optional>

#include "engine/json_mask.hpp"
#include "engine/stop_strings.hpp"
#include "kinfer/error.hpp"
#include "tokenizer/streaming_decoder.hpp"

namespace kinfer::engine {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int64_t reusable_prefix(const Session& session, std::span<const int32_t> prompt) {
    const auto cached = session.tokens();
    const int64_t limit =
        std::min<int64_t>({session.n_reusable(), int64_t(prompt.size()) - 1, int64_t(cached.size())});
    int64_t n = 0;
    while (n < limit && cached[size_t(n)] == prompt[size_t(n)]) ++n;
    return n;
}

GenerateResult generate(Session& session, const tokenizer::Tokenizer& tok, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const TextCallback& on_text) {
    GenerateResult result;
    const int64_t n_prompt = static_cast<int64_t>(prompt.size());
    if (n_prompt == 0) throw UsageError("empty prompt: nothing to generate from");
    if (n_prompt > session.n_ctx())
        throw UsageError("the prompt is " + std::to_string(n_prompt) +
                         " tokens, longer than the context of " + std::to_string(session.n_ctx()) +
                         " tokens (raise --ctx, up to the model's " +
                         std::to_string(session.model().config().n_ctx_train) + ")");
    Sampler sampler(options.sampling, session.n_vocab());  // validates the options before any work
    // Greedy and top-k sampling (without penalties) need only the best few candidates of each step, which
    // the backend selects where the logits are; anything else reads the full logits.
    // JSON mode masks the logits, so it reads them all.
    const int32_t k = options.json_object ? 0 : sampler.candidates_needed();
    std::optional<JsonMask> json_mask;
    std::optional<JsonPrefix> json;
    std::vector<float> masked;  // the step's logits with the tokens that break the object at -inf
    if (options.json_object) {
        json_mask.emplace(tok);
        json.emplace();
        masked.reserve(size_t(session.n_vocab()));
    }
    const auto evaluate = [&](std::span<const int32_t> tokens) {
        if (k > 0)
            session.forward_top(tokens, k);
        else
            session.forward(tokens);
    };

    // ---- prompt ----
    const auto t_prompt = std::chrono::steady_clock::now();
    const int64_t reuse = reusable_prefix(session, prompt);
    session.truncate(reuse);
    evaluate(prompt.subspan(size_t(reuse)));
    result.prompt_tokens = n_prompt;
    result.prompt_cached = int(reuse);
    result.prompt_seconds = seconds_since(t_prompt);

    // Positions a context shift keeps: the BOS token, plus n_keep (or the whole prompt).
    int64_t n_keep = options.n_keep < 0 ? n_prompt : options.n_keep;
    if (tok.bos_id() >= 0 && prompt[0] == tok.bos_id() && options.n_keep >= 0) n_keep += 1;
    n_keep = std::min(n_keep, n_prompt);

    // ---- generation ----
    const auto t_gen = std::chrono::steady_clock::now();
    tokenizer::StreamingDecoder decoder(tok);
    StopStringMatcher matcher(options.stop);
    bool caller_stopped = false;
    std::string piece;
    const auto emit = [&](const std::string& text) {
        if (text.empty() || caller_stopped) return;
        result.text += text;
        if (on_text && !on_text(text)) caller_stopped = true;
    };

    bool done = false;
    while (!done) {
        if (options.max_tokens >= 0 && result.generated_tokens >= options.max_tokens) {
            result.stop_reason = StopReason::MaxTokens;
            break;
        }
        if (options.interrupt && options.interrupt->load(std::memory_order_relaxed)) {
            result.stop_reason = StopReason::Interrupted;
            break;
        }
        int32_t id = 0;
        if (json) {
            const std::span<const float> logits = session.logits();
            masked.assign(logits.begin(), logits.end());
            // No token continues the object (biases at -inf), or a masked one won: end the object there.
            if (json_mask->apply(*json, masked) == 0 ||
                !json->push(json_mask->bytes(id = sampler.sample(masked, session.tokens())))) {
                result.stop_reason = StopReason::EndOfGeneration;
                break;
            }
        } else {
            id = k > 0 ? sampler.sample(session.top()) : sampler.sample(session.logits(), session.tokens());
        }
        if (tok.is_eog(id)) {
            result.stop_reason = StopReason::EndOfGeneration;
            break;
        }
        ++result.generated_tokens;
        piece.clear();
        decoder.push(id, piece);
        emit(matcher.push(piece));
        if (matcher.stopped()) {
            result.stop_reason = StopReason::StopString;
            break;
        }
        if (caller_stopped) {
            result.stop_reason = StopReason::Callback;
            break;
        }
        if (json && json->complete()) {  // the object closed: the reply is whole
            result.stop_reason = StopReason::EndOfGeneration;
            break;
        }
        if (options.max_tokens >= 0 && result.generated_tokens >= options.max_tokens) {
            // The last token needs no evaluation: nothing will be sampled after it.
            result.stop_reason = StopReason::MaxTokens;
            break;
        }
        if (session.n_past() >= session.n_ctx()) {
            if (!options.context_shift || session.shift_context(n_keep) == 0) {
                result.stop_reason = StopReason::ContextFull;
                result.message =
                    "context full (" + std::to_string(session.n_ctx()) +
                    " tokens): generation stopped; use a larger --ctx" +
                    (options.context_shift ? "" : ", or --context-shift to drop the oldest tokens");
                break;
            }
            ++result.context_shifts;
        }
        evaluate(std::span<const int32_t>(&id, 1));
    }

    // Flush: a character cut short at the end, then any partial stop-string match that never completed.
    if (!matcher.stopped()) {
        emit(matcher.push(decoder.finish()));
        if (!matcher.stopped()) emit(matcher.flush());
        if (matcher.stopped() && result.stop_reason != StopReason::Callback)
            result.stop_reason = StopReason::StopString;
    }
    result.generate_seconds = seconds_since(t_gen);
    return result;
}

}  // namespace kinfer::engine
