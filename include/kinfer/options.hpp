#pragma once
// The option and result types of generation, shared by the public API (kinfer.hpp) and the engine: one
// definition each, so the two cannot drift apart.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kinfer/export.hpp"

namespace kinfer {

struct SamplerOptions {
    float temperature = 0.8f;        // <= 0: greedy (the most likely token, after penalties)
    int32_t top_k = 40;              // keep the k most likely tokens; <= 0: off
    float top_p = 0.95f;             // keep the smallest set of tokens whose probability reaches p; >= 1: off
    float min_p = 0.05f;             // drop tokens less likely than min_p times the most likely; <= 0: off
    float repeat_penalty = 1.0f;     // > 1 discourages tokens seen in the last penalty_last_n; 1: off
    float frequency_penalty = 0.0f;  // subtracted once per occurrence in the window
    float presence_penalty = 0.0f;   // subtracted once if present in the window
    int32_t penalty_last_n = 64;     // penalty window in tokens; 0: off; -1: the whole context
    uint64_t seed = 0;               // the same seed, model and input give the same tokens
    // (token id, bias) pairs added to those tokens' logits before everything else (OpenAI's logit_bias,
    // llama.cpp's --logit-bias); -INFINITY bans a token. A bias makes the sampler read the full logits.
    std::vector<std::pair<int32_t, float>> logit_bias;
};

struct GenerateOptions {
    int max_tokens = 256;  // stop after this many tokens; < 0: no limit
    SamplerOptions sampling;
    std::vector<std::string> stop;  // stop strings: the text ends right before the first one produced
    bool context_shift = false;     // when the context is full, drop the oldest half and go on
                                    // (default: stop with StopReason::ContextFull)
    int n_keep = 0;                 // tokens (after BOS) a context shift never drops; -1: the whole prompt
    const std::atomic<bool>* interrupt = nullptr;  // polled before each token: set it to stop (e.g. Ctrl-C)
    // JSON mode: the reply is one JSON object. Tokens that would break it are never sampled (whitespace only
    // as llama.cpp's JSON grammar allows it), and generation ends (EndOfGeneration) as soon as the object
    // closes; max_tokens, a stop string or the context can still cut it short. Each step then reads the full
    // logits.
    bool json_object = false;
};

enum class StopReason {
    EndOfGeneration,  // the model ended its answer (EOS)
    MaxTokens,        // GenerateOptions::max_tokens reached
    StopString,       // a stop string was produced (it is cut from the text)
    ContextFull,      // no room left in the context (see GenerateResult::message)
    Interrupted,      // *GenerateOptions::interrupt became true
    Callback,         // the text callback returned false
};
KINFER_API const char* to_string(StopReason reason);

struct GenerateResult {
    std::string text;  // the whole completion (what the callback received, concatenated)
    StopReason stop_reason = StopReason::EndOfGeneration;
    std::string message;          // for ContextFull: a sentence explaining it
    int prompt_tokens = 0;        // prompt length in tokens
    int prompt_cached = 0;        // prompt tokens found in the session's cache and not evaluated again
    int generated_tokens = 0;     // tokens generated (EOS excluded)
    int context_shifts = 0;       // context shifts made during generation
    double prompt_seconds = 0;    // time evaluating the prompt
    double generate_seconds = 0;  // time generating
};

// Called with each piece of text as soon as it is final (whole UTF-8 characters, stop strings held back
// until they are ruled out). Return false to stop generation.
using TextCallback = std::function<bool(std::string_view text)>;

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

}  // namespace kinfer
