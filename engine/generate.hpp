#pragma once
// The generation loop: evaluate a prompt (reusing whatever prefix of it the session's cache already
// holds), then sample, detokenize (UTF-8 safe), match stop strings and feed each token back, until an
// end-of-generation token, the token limit, a stop string, a full context, an interrupt or the caller
// says stop. Streaming and non-streaming callers go through this same code.
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampler.hpp"
#include "engine/session.hpp"
#include "tokenizer/tokenizer.hpp"

namespace kinfer::engine {

struct GenerateOptions {
    int64_t max_tokens = 256;  // tokens to generate at most; < 0: no limit (until EOS or a full context)
    SamplerOptions sampling;
    std::vector<std::string> stop;  // stop strings: generation ends before the first one to appear
    bool context_shift = false;     // on a full context: drop the oldest half (after n_keep) and go on
    int64_t n_keep = 0;             // positions kept by a context shift, after the BOS token (if any);
                                    // < 0: the whole prompt
    const std::atomic<bool>* interrupt = nullptr;  // checked before each token; true: stop (Ctrl-C)
};

enum class StopReason {
    EndOfGeneration,  // the model produced EOS (or another end-of-generation token)
    MaxTokens,        // max_tokens were generated
    StopString,       // a stop string appeared (it is not part of the text)
    ContextFull,      // the context is full and context shifting is off
    Interrupted,      // *interrupt became true
    Callback,         // the text callback returned false
};

struct GenerateResult {
    std::string text;  // everything passed to the callback, in one string
    StopReason stop_reason = StopReason::EndOfGeneration;
    std::string message;           // why it stopped, for ContextFull (a sentence for the user), else ""
    int64_t prompt_tokens = 0;     // tokens in the prompt
    int64_t prompt_reused = 0;     // of those, found in the cache (not evaluated again)
    int64_t generated_tokens = 0;  // tokens sampled (the end-of-generation token not counted)
    int64_t context_shifts = 0;
    double prompt_seconds = 0.0;    // evaluating the prompt
    double generate_seconds = 0.0;  // sampling and evaluating the generated tokens
};

// Receives text as it becomes final; return false to stop generating.
using TextCallback = std::function<bool(std::string_view)>;

// Runs `prompt` (non-empty) in `session`, then generates. Throws UsageError when the prompt does not fit
// in the context (with a message saying so), or for invalid options.
GenerateResult generate(Session& session, const tokenizer::Tokenizer& tok, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const TextCallback& on_text = {});

// Length of the prefix of `prompt` whose cache entries `session` can keep: the common prefix with its
// tokens, limited to the reusable positions, and one short of the whole prompt (the last prompt token is
// always evaluated so that there are logits to sample from).
int64_t reusable_prefix(const Session& session, std::span<const int32_t> prompt);

}  // namespace kinfer::engine
