#pragma once
// OpenAI's API shapes for `infer serve`: request bodies checked field by field (each mistake becomes an
// ApiError naming the field), and the JSON of responses, stream chunks and errors. No HTTP here.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kinfer/scheduler.hpp"

namespace kinfer::cli::serve {

using nlohmann::json;

// A request that gets an error response: the HTTP status and OpenAI's {"error": {...}} body.
struct ApiError {
    int status = 400;
    std::string message;
    std::string type = "invalid_request_error";
    std::string code;  // "" -> null
};

json error_body(const ApiError& e);

// Parses a request body. Depth is limited (deep nesting is refused early, without recursion), invalid UTF-8
// is an error. Throws ApiError.
json parse_body(std::string_view body);

enum class Endpoint { Chat, Completion };

struct CompletionCall {
    Endpoint endpoint = Endpoint::Chat;
    CompletionRequest request;
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
};

// The request for POST /v1/chat/completions or /v1/completions: prompt tokens (chat through the model's
// template) and generation options. Throws ApiError (400) for every invalid field, or a prompt longer than
// `n_ctx` tokens.
CompletionCall parse_completion(const json& body, Endpoint endpoint, const Model& model, int n_ctx);

// "stop" or "length" (OpenAI's finish_reason) for a finished request.
const char* finish_reason(StopReason reason);

// Response bodies. `id` is "chatcmpl-..." or "cmpl-...", `created` Unix seconds.
struct ResponseHeader {
    std::string id;
    int64_t created = 0;
    std::string model;
};
json usage_json(const GenerateResult& r);
// A choice's "logprobs" for these tokens: chat's {"content": [...]}, completions' {"tokens",
// "token_logprobs", "top_logprobs", "text_offset"}; null when the request did not ask for them or there are
// none.
json logprobs_json(const CompletionCall& call, std::span<const TokenLogprobs> lp);
json full_response(const CompletionCall& call, const ResponseHeader& h, const GenerateResult& r,
                   std::span<const TokenLogprobs> lp = {});
// One stream chunk: `text` (delta) and the log probabilities of its tokens, or the role-only first chat chunk
// (first = true), or the final chunk with a finish reason (finish != nullptr).
json stream_chunk(const CompletionCall& call, const ResponseHeader& h, std::string_view text, bool first,
                  const char* finish, std::span<const TokenLogprobs> lp = {});
json usage_chunk(const CompletionCall& call, const ResponseHeader& h, const GenerateResult& r);

// JSON text for the wire: never throws on bad UTF-8 (replaced).
std::string dump(const json& j);

}  // namespace kinfer::cli::serve
