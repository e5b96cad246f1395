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
#include "kinfer/options.hpp"
#include "tokenizer/tokenizer.hpp"

namespace kinfer::engine {

// One definition each, shared with the public API (include/kinfer/options.hpp).
using kinfer::GenerateOptions;
using kinfer::GenerateResult;
using kinfer::StopReason;
using kinfer::TextCallback;

// Runs `prompt` (non-empty) in `session`, then generates. Throws UsageError when the prompt does not fit
// in the context (with a message saying so), or for invalid options.
GenerateResult generate(Session& session, const tokenizer::Tokenizer& tok, std::span<const int32_t> prompt,
                        const GenerateOptions& options, const TextCallback& on_text = {});

// Length of the prefix of `prompt` whose cache entries `session` can keep: the common prefix with its
// tokens, limited to the reusable positions, and one short of the whole prompt (the last prompt token is
// always evaluated so that there are logits to sample from).
int64_t reusable_prefix(const Session& session, std::span<const int32_t> prompt);

}  // namespace kinfer::engine
