#include "tools/infer/serve_openai.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "tokenizer/utf8.hpp"

namespace kinfer::cli::serve {
namespace {

constexpr int kMaxDepth = 32;           // JSON nesting a request may have (OpenAI's bodies need 4)
constexpr size_t kMaxStopStrings = 4;   // as OpenAI
constexpr size_t kMaxLogitBias = 1024;  // tokens a request may bias (OpenAI allows 300)

[[noreturn]] void bad(const std::string& message, const std::string& code = "invalid_request") {
    throw ApiError{400, message, "invalid_request_error", code};
}

std::string type_name(const json& v) {
    return v.type_name();
}

// Optional fields: absent or null means "not given".
const json* field(const json& body, const char* name) {
    const auto it = body.find(name);
    return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& body, const char* name, double lo, double hi, double fallback) {
    const json* v = field(body, name);
    if (!v) return fallback;
    if (!v->is_number()) bad(std::string("'") + name + "' must be a number, got " + type_name(*v));
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi)
        bad(std::string("'") + name + "' must be in [" + json(lo).dump() + ", " + json(hi).dump() +
            "], got " + v->dump());
    return x;
}

int64_t integer(const json& body, const char* name, int64_t lo, int64_t hi, int64_t fallback) {
    const json* v = field(body, name);
    if (!v) return fallback;
    if (!v->is_number_integer()) bad(std::string("'") + name + "' must be an integer, got " + type_name(*v));
    const bool too_big = v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX);
    if (too_big || v->get<int64_t>() < lo || v->get<int64_t>() > hi)
        bad(std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
            "], got " + v->dump());
    return v->get<int64_t>();
}

bool boolean(const json& body, const char* name, bool fallback) {
    const json* v = field(body, name);
    if (!v) return fallback;
    if (!v->is_boolean()) bad(std::string("'") + name + "' must be a boolean, got " + type_name(*v));
    return v->get<bool>();
}

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
std::string message_content(const json& content, size_t i) {
    const std::string where = "messages[" + std::to_string(i) + "].content";
    if (content.is_null()) return "";
    if (content.is_string()) return content.get<std::string>();
    if (!content.is_array())
        bad("'" + where + "' must be a string or an array of text parts, got " + type_name(content));
    std::string text;
    for (size_t k = 0; k < content.size(); ++k) {
        const json& part = content[k];
        const std::string pw = where + "[" + std::to_string(k) + "]";
        if (!part.is_object()) bad("'" + pw + "' must be an object, got " + type_name(part));
        const json* type = field(part, "type");
        if (!type || !type->is_string() || type->get<std::string>() != "text")
            bad("'" + pw + ".type' must be \"text\" (only text is supported)");
        const json* t = field(part, "text");
        if (!t || !t->is_string()) bad("'" + pw + ".text' must be a string");
        text += t->get<std::string>();
    }
    return text;
}

std::vector<ChatMessage> chat_messages(const json& body) {
    const json* m = field(body, "messages");
    if (!m) bad("'messages' is required");
    if (!m->is_array()) bad("'messages' must be an array, got " + type_name(*m));
    if (m->empty()) bad("'messages' must not be empty");
    std::vector<ChatMessage> out;
    for (size_t i = 0; i < m->size(); ++i) {
        const json& msg = (*m)[i];
        const std::string where = "messages[" + std::to_string(i) + "]";
        if (!msg.is_object()) bad("'" + where + "' must be an object, got " + type_name(msg));
        const json* role = field(msg, "role");
        if (!role || !role->is_string()) bad("'" + where + ".role' must be a string");
        std::string r = role->get<std::string>();
        if (r == "developer") r = "system";  // OpenAI's newer name for it
        if (r != "system" && r != "user" && r != "assistant")
            bad("'" + where + ".role' must be system, user or assistant, got " +
                    role->dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 40),
                "invalid_role");
        if (msg.find("content") == msg.end()) bad("'" + where + ".content' is required");
        out.push_back({r, message_content(msg["content"], i)});
    }
    return out;
}

std::vector<std::string> stop_strings(const json& body) {
    const json* s = field(body, "stop");
    if (!s) return {};
    std::vector<std::string> out;
    if (s->is_string()) {
        out.push_back(s->get<std::string>());
    } else if (s->is_array()) {
        if (s->size() > kMaxStopStrings)
            bad("'stop' holds at most 4 strings, got " + std::to_string(s->size()));
        for (const auto& x : *s) {
            if (!x.is_string()) bad("'stop' must be a string or an array of strings");
            out.push_back(x.get<std::string>());
        }
    } else {
        bad("'stop' must be a string or an array of strings, got " + type_name(*s));
    }
    for (const auto& x : out)
        if (x.empty()) bad("'stop' strings must not be empty");
    return out;
}

// Options that change what an answer is and that this server does not implement (JSON schemas, tool calls;
// for completions also echo, best_of and suffix): a request that turns one on gets a 400 naming it, not an
// answer without it. Their "off" values (false, 0, [], {"type": "text"}, "none") are accepted: clients send
// them by default.
void reject_unsupported(const json& body, Endpoint endpoint) {
    const auto unsupported = [](const std::string& what) {
        bad(what + " is not supported by this server", "unsupported_parameter");
    };
    if (endpoint == Endpoint::Completion) {
        if (boolean(body, "echo", false)) unsupported("'echo'");
        if (integer(body, "best_of", 1, 20, 1) > 1) unsupported("'best_of' above 1");
        if (const json* v = field(body, "suffix")) {
            if (!v->is_string()) bad("'suffix' must be a string, got " + type_name(*v));
            if (!v->get<std::string>().empty()) unsupported("'suffix'");
        }
    }
    if (const json* v = field(body, "response_format")) {
        const json* type = v->is_object() ? field(*v, "type") : nullptr;
        if (!type || !type->is_string()) bad("'response_format' must be an object with a string 'type'");
        if (*type != "text" && *type != "json_object")
            unsupported("'response_format' of type " +
                        type->dump(-1, ' ', false, json::error_handler_t::replace));
    }
    for (const char* name : {"tools", "functions"})
        if (const json* v = field(body, name)) {
            if (!v->is_array()) bad(std::string("'") + name + "' must be an array, got " + type_name(*v));
            if (!v->empty()) unsupported(std::string("'") + name + "' (tool calls)");
        }
    if (const json* v = field(body, "tool_choice"); v && !(v->is_string() && (*v == "none" || *v == "auto")))
        unsupported("'tool_choice' other than \"none\" or \"auto\" (tool calls)");
}

// OpenAI's logit_bias: {"token id": bias in [-100, 100]}, added to the logits (-100 bans a token in practice,
// 100 all but forces it).
std::vector<std::pair<int32_t, float>> logit_bias(const json& body, const Model& model) {
    const json* v = field(body, "logit_bias");
    if (!v) return {};
    if (!v->is_object()) bad("'logit_bias' must be an object, got " + type_name(*v));
    if (v->size() > kMaxLogitBias)
        bad("'logit_bias' holds at most " + std::to_string(kMaxLogitBias) + " tokens, got " +
            std::to_string(v->size()));
    std::vector<std::pair<int32_t, float>> out;
    for (const auto& [key, bias] : v->items()) {
        int64_t id = -1;
        if (!key.empty() && key.size() <= 10 &&
            std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; }))
            id = std::stoll(key);
        if (id < 0 || id >= model.n_vocab())
            bad("'logit_bias' keys must be token ids in [0, " + std::to_string(model.n_vocab()) + "), got " +
                dump(json(key.substr(0, 24))));
        if (!bias.is_number() || !std::isfinite(bias.get<double>()) || std::fabs(bias.get<double>()) > 100)
            bad("'logit_bias' values must be numbers in [-100, 100], got " + dump(bias).substr(0, 40) +
                " for token " + key);
        out.emplace_back(int32_t(id), float(bias.get<double>()));
    }
    return out;
}

// Log probabilities: chat's "logprobs": true with "top_logprobs" alternatives (0..20), completions'
// "logprobs": N (the chosen token and N alternatives). -1: not asked for.
int top_logprobs(const json& body, Endpoint endpoint) {
    if (endpoint == Endpoint::Completion) return int(integer(body, "logprobs", 0, kMaxTopLogprobs, -1));
    const bool on = boolean(body, "logprobs", false);
    const int top = int(integer(body, "top_logprobs", 0, kMaxTopLogprobs, -1));
    if (top > 0 && !on) bad("'top_logprobs' needs 'logprobs': true");
    return on ? std::max(top, 0) : -1;
}

std::vector<int32_t> completion_prompt(const json& body, const Model& model) {
    const json* p = field(body, "prompt");
    if (!p) bad("'prompt' is required");
    if (p->is_string()) return model.tokenize(p->get<std::string>(), true, true);
    if (p->is_array() && p->size() == 1 && (*p)[0].is_string())
        return model.tokenize((*p)[0].get<std::string>(), true, true);
    if (p->is_array() && !p->empty() && (*p)[0].is_number()) {  // token ids
        std::vector<int32_t> ids;
        for (const auto& x : *p) {
            if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= model.n_vocab())
                bad("'prompt' token ids must be integers in [0, " + std::to_string(model.n_vocab()) + ")");
            ids.push_back(int32_t(x.get<int64_t>()));
        }
        return ids;
    }
    bad("'prompt' must be a string, an array of one string, or an array of token ids");
}

}  // namespace

json error_body(const ApiError& e) {
    return {{"error",
             {{"message", e.message},
              {"type", e.type},
              {"param", nullptr},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json parse_body(std::string_view body) {
    if (body.empty()) bad("the request body is empty (expected JSON)", "invalid_json");
    const json::parser_callback_t limit_depth = [](int depth, json::parse_event_t event, json&) {
        if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
            depth >= kMaxDepth)
            throw ApiError{400,
                           "the JSON body is nested deeper than " + std::to_string(kMaxDepth) + " levels",
                           "invalid_request_error", "invalid_json"};
        return true;
    };
    try {
        json j = json::parse(body.begin(), body.end(), limit_depth);
        if (!j.is_object())
            bad("the request body must be a JSON object, got " + type_name(j), "invalid_json");
        return j;
    } catch (const json::exception& e) {
        bad(std::string("the request body is not valid JSON: ") + e.what(), "invalid_json");
    }
}

CompletionCall parse_completion(const json& body, Endpoint endpoint, const Model& model, int n_ctx) {
    CompletionCall call;
    call.endpoint = endpoint;
    if (const json* m = field(body, "model"); m && !m->is_string())
        bad("'model' must be a string, got " + type_name(*m));
    if (integer(body, "n", 1, 1, 1) != 1) bad("'n' must be 1");
    reject_unsupported(body, endpoint);
    call.stream = boolean(body, "stream", false);
    if (const json* so = field(body, "stream_options")) {
        if (!so->is_object()) bad("'stream_options' must be an object, got " + type_name(*so));
        call.include_usage = boolean(*so, "include_usage", false);
    }

    GenerateOptions& o = call.request.options;
    SamplerOptions& s = o.sampling;
    // Chat answers run until the model ends them (or the context is full); completions follow OpenAI's 16.
    const int64_t default_max = endpoint == Endpoint::Chat ? -1 : 16;
    int64_t max_tokens = integer(body, "max_tokens", 0, 1 << 24, default_max);
    max_tokens = integer(body, "max_completion_tokens", 0, 1 << 24, max_tokens);
    o.max_tokens = int(max_tokens);
    s.temperature = float(number(body, "temperature", 0, 2, 1.0));
    s.top_p = float(number(body, "top_p", 0, 1, 1.0));
    if (s.top_p <= 0) bad("'top_p' must be in (0, 1], got 0");
    s.top_k = int32_t(integer(body, "top_k", 0, 1 << 24, 0));  // llama.cpp's extensions
    s.min_p = float(number(body, "min_p", 0, 1, 0.0));
    s.repeat_penalty = float(number(body, "repeat_penalty", 0.01, 10, 1.0));
    s.presence_penalty = float(number(body, "presence_penalty", -2, 2, 0.0));
    s.frequency_penalty = float(number(body, "frequency_penalty", -2, 2, 0.0));
    s.penalty_last_n = -1;  // OpenAI's penalties look at the whole text
    if (const json* seed = field(body, "seed")) {
        if (!seed->is_number_integer()) bad("'seed' must be an integer, got " + type_name(*seed));
        s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : uint64_t(seed->get<int64_t>());
    } else {
        s.seed = std::random_device{}();
    }
    s.logit_bias = logit_bias(body, model);
    call.request.top_logprobs = top_logprobs(body, endpoint);
    if (const json* rf = field(body, "response_format"))  // its type checked by reject_unsupported
        call.request.options.json_object = rf->value("type", "") == "json_object";
    o.stop = stop_strings(body);
    call.request.ignore_eos = boolean(body, "ignore_eos", false);  // llama.cpp's extension (load tests)

    try {
        if (endpoint == Endpoint::Chat) {
            const auto messages = chat_messages(body);
            call.request.prompt = model.chat_prompt(messages);
            call.request.strip_leading_space = true;
        } else {
            call.request.prompt = completion_prompt(body, model);
        }
    } catch (const UsageError& e) {  // invalid UTF-8, a template that refuses the conversation
        bad(e.what());
    }
    if (int64_t(call.request.prompt.size()) > n_ctx)
        bad("the prompt is " + std::to_string(call.request.prompt.size()) +
                " tokens, longer than the context of " + std::to_string(n_ctx) + " tokens",
            "context_length_exceeded");
    return call;
}

const char* finish_reason(StopReason reason) {
    return reason == StopReason::MaxTokens || reason == StopReason::ContextFull ? "length" : "stop";
}

json usage_json(const GenerateResult& r) {
    return {{"prompt_tokens", r.prompt_tokens},
            {"completion_tokens", r.generated_tokens},
            {"total_tokens", r.prompt_tokens + r.generated_tokens},
            {"prompt_tokens_details", {{"cached_tokens", r.prompt_cached}}}};
}

namespace {

// A token's text for JSON: its bytes when they are UTF-8, else "bytes:\xe4\xbd" (as OpenAI shows a token
// that holds part of a character); the exact bytes go in "bytes".
std::string token_string(const std::string& bytes) {
    if (tokenizer::is_valid_utf8(bytes)) return bytes;
    std::string out = "bytes:";
    for (const unsigned char c : bytes) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", c);
        out += hex;
    }
    return out;
}

// OpenAI writes -9999 for a probability too small to show; JSON has no -infinity.
double logprob_value(float lp) {
    return std::isnan(lp) ? -9999.0 : std::max(double(lp), -9999.0);
}

json chat_token(const TokenLogprob& t) {
    return {{"token", token_string(t.bytes)},
            {"logprob", logprob_value(t.logprob)},
            {"bytes", std::vector<int>(t.bytes.begin(), t.bytes.end())}};
}

}  // namespace

json logprobs_json(const CompletionCall& call, std::span<const TokenLogprobs> lp) {
    if (call.request.top_logprobs < 0 || lp.empty()) return nullptr;
    if (call.endpoint == Endpoint::Chat) {
        json content = json::array();
        for (const TokenLogprobs& t : lp) {
            json entry = chat_token(t.token);
            json top = json::array();
            for (const TokenLogprob& a : t.top) top.push_back(chat_token(a));
            entry["top_logprobs"] = std::move(top);
            content.push_back(std::move(entry));
        }
        return {{"content", std::move(content)}, {"refusal", nullptr}};
    }
    json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();
    for (const TokenLogprobs& t : lp) {
        tokens.push_back(token_string(t.token.bytes));
        token_logprobs.push_back(logprob_value(t.token.logprob));
        json alternatives = json::object();
        for (const TokenLogprob& a : t.top) alternatives[token_string(a.bytes)] = logprob_value(a.logprob);
        top.push_back(std::move(alternatives));
        offsets.push_back(t.text_offset);
    }
    return {{"tokens", std::move(tokens)},
            {"token_logprobs", std::move(token_logprobs)},
            {"top_logprobs", std::move(top)},
            {"text_offset", std::move(offsets)}};
}

json full_response(const CompletionCall& call, const ResponseHeader& h, const GenerateResult& r,
                   std::span<const TokenLogprobs> lp) {
    json choice = {
        {"index", 0}, {"logprobs", logprobs_json(call, lp)}, {"finish_reason", finish_reason(r.stop_reason)}};
    if (call.endpoint == Endpoint::Chat)
        choice["message"] = {{"role", "assistant"}, {"content", r.text}};
    else
        choice["text"] = r.text;
    return {{"id", h.id},
            {"object", call.endpoint == Endpoint::Chat ? "chat.completion" : "text_completion"},
            {"created", h.created},
            {"model", h.model},
            {"choices", json::array({choice})},
            {"usage", usage_json(r)}};
}

json stream_chunk(const CompletionCall& call, const ResponseHeader& h, std::string_view text, bool first,
                  const char* finish, std::span<const TokenLogprobs> lp) {
    json choice = {{"index", 0},
                   {"logprobs", logprobs_json(call, lp)},
                   {"finish_reason", finish ? json(finish) : json(nullptr)}};
    if (call.endpoint == Endpoint::Chat) {
        json delta = json::object();
        if (first) delta["role"] = "assistant";
        if (first || !text.empty()) delta["content"] = std::string(text);
        choice["delta"] = delta;
    } else {
        choice["text"] = std::string(text);
    }
    json chunk = {{"id", h.id},
                  {"object", call.endpoint == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
                  {"created", h.created},
                  {"model", h.model},
                  {"choices", json::array({choice})}};
    if (call.include_usage) chunk["usage"] = nullptr;
    return chunk;
}

json usage_chunk(const CompletionCall& call, const ResponseHeader& h, const GenerateResult& r) {
    return {{"id", h.id},
            {"object", call.endpoint == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
            {"created", h.created},
            {"model", h.model},
            {"choices", json::array()},
            {"usage", usage_json(r)}};
}

}  // namespace kinfer::cli::serve
