#include "tools/infer/serve_http.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>

#include <httplib.h>

#include "tools/infer/serve_openai.hpp"
#include "tools/infer/serve_page.hpp"
#include "tools/infer/serve_peer.hpp"

namespace kinfer::cli::serve {
namespace {

using Clock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

// How often a request that is waiting for text checks whether its client is still connected.
constexpr std::chrono::milliseconds kPeerCheck{50};

bool is_known_path(const std::string& path) {
    static const char* const known[] = {"/",
                                        "/health",
                                        "/metrics",
                                        "/v1/models",
                                        "/v1/chat/completions",
                                        "/v1/completions",
                                        "/tokenize",
                                        "/detokenize",
                                        "/chat/completions",
                                        "/completions",
                                        "/models"};
    for (const char* k : known)
        if (path == k) return true;
    return false;
}

const char* allowed_methods(const std::string& path) {
    if (path == "/" || path == "/health" || path == "/metrics" || path == "/v1/models" || path == "/models")
        return "GET, HEAD";
    return "POST";
}

// Compares without an early exit, so response time says nothing about how much of a key was right.
bool same_secret(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(dump(error_body(e)), "application/json");
}

}  // namespace

struct HttpServer::Impl {
    Scheduler& scheduler;
    HttpOptions options;
    httplib::Server server;
    std::atomic<uint64_t> next_id{1};
    std::mutex status_mutex;
    std::map<int, uint64_t> responses_by_status;  // for /metrics

    Impl(Scheduler& s, HttpOptions o) : scheduler(s), options(std::move(o)) {}

    ResponseHeader header(Endpoint ep) {
        char id[48];
        std::snprintf(id, sizeof id, "%s-%016llx", ep == Endpoint::Chat ? "chatcmpl" : "cmpl",
                      static_cast<unsigned long long>(next_id.fetch_add(1)));
        return {id, std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count(),
                options.model_name};
    }

    void completion(const httplib::Request& req, httplib::Response& res, Endpoint ep);
    void routes();
    std::string metrics();
};

void HttpServer::Impl::completion(const httplib::Request& req, httplib::Response& res, Endpoint ep) {
    const json body = parse_body(req.body);
    const Model& model = scheduler.model();
    CompletionCall call = parse_completion(body, ep, model, scheduler.slot_context());
    std::shared_ptr<CompletionStream> stream;
    try {
        stream = scheduler.submit(call.request);
    } catch (const QueueFullError& e) {
        res.set_header("Retry-After", "1");
        throw ApiError{503, e.what(), "server_error", "server_busy"};
    } catch (const UsageError& e) {
        throw ApiError{400, e.what(), "invalid_request_error", "invalid_request"};
    }
    const ResponseHeader h = header(ep);

    if (!call.stream) {
        // Waiting for the whole answer, look at the connection now and then: a client that gave up frees
        // its slot at once (nothing else would notice it before the response is written).
        const PeerWatch peer(req);
        std::string text;
        while (!stream->wait(text, kPeerCheck)) {
            text.clear();
            if (peer.gone()) {
                stream->cancel();
                res.status = 499;  // nginx's "client closed request": only /metrics sees it
                res.set_content("client gone", "text/plain");
                return;
            }
        }
        if (const std::string err = stream->error(); !err.empty())
            throw ApiError{500, "generation failed: " + err, "server_error", "internal_error"};
        res.set_content(dump(full_response(call, h, stream->result(), stream->logprobs())),
                        "application/json");
        return;
    }

    // Server-Sent Events: one chunk per piece of text, then the finish chunk, usage if asked, [DONE].
    struct State {
        CompletionCall call;
        ResponseHeader header;
        std::shared_ptr<CompletionStream> stream;
        PeerWatch peer;
        bool started = false;
        std::string text;
        std::vector<TokenLogprobs> logprobs;  // of the tokens behind `text` (top_logprobs requests)
        SteadyClock::time_point last_write = SteadyClock::now();
    };
    auto state = std::make_shared<State>(State{std::move(call), h, stream, PeerWatch(req)});
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [state](size_t, httplib::DataSink& sink) {
            const auto send = [&](const json& j) {
                const std::string event = "data: " + dump(j) + "\n\n";
                state->last_write = SteadyClock::now();
                return sink.write(event.data(), event.size());
            };
            if (!state->started) {
                state->started = true;
                // The role chunk goes out at once (as OpenAI's does): the client sees the stream open.
                if (state->call.endpoint == Endpoint::Chat)
                    return send(stream_chunk(state->call, state->header, "", true, nullptr));
            }
            state->text.clear();
            state->logprobs.clear();
            const bool finished = state->stream->wait(state->text, state->logprobs, kPeerCheck);
            if (!state->text.empty() || !state->logprobs.empty()) {
                if (!send(stream_chunk(state->call, state->header, state->text, false, nullptr,
                                       state->logprobs)))
                    return false;
            } else if (!finished) {
                // Nothing new (a long prompt, a queue, a slow model): a client that left is noticed by
                // looking at the connection, and a comment line now and then keeps proxies from timing out.
                if (state->peer.gone()) return false;
                if (SteadyClock::now() - state->last_write < std::chrono::seconds(1)) return true;
                static const char ping[] = ": keep-alive\n\n";
                state->last_write = SteadyClock::now();
                return sink.write(ping, sizeof ping - 1);
            }
            if (!finished) return true;
            if (const std::string err = state->stream->error(); !err.empty()) {
                if (!send(error_body({500, "generation failed: " + err, "server_error", "internal_error"})))
                    return false;
            } else {
                const GenerateResult r = state->stream->result();
                if (!send(stream_chunk(state->call, state->header, "", false, finish_reason(r.stop_reason))))
                    return false;
                if (state->call.include_usage && !send(usage_chunk(state->call, state->header, r)))
                    return false;
            }
            static const char done[] = "data: [DONE]\n\n";
            if (!sink.write(done, sizeof done - 1)) return false;
            sink.done();
            return true;
        },
        // However the response ends (finished, client gone, write timeout), the request stops and its
        // slot is free for the next one.
        [state](bool) { state->stream->cancel(); });
}

std::string HttpServer::Impl::metrics() {
    const SchedulerStats s = scheduler.stats();
    std::string out;
    const auto metric = [&](const char* name, const char* type, const char* help, double value) {
        char line[64];
        std::snprintf(line, sizeof line, "%.17g", value);
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name +
               " " + line + "\n";
    };
    metric("kinfer_requests_total", "counter", "Completion requests accepted.", double(s.requests));
    metric("kinfer_requests_rejected_total", "counter", "Completion requests refused: queue full (503).",
           double(s.rejected));
    metric("kinfer_requests_finished_total", "counter", "Completion requests finished.", double(s.finished));
    metric("kinfer_requests_cancelled_total", "counter", "Completion requests cancelled (client gone).",
           double(s.cancelled));
    metric("kinfer_prompt_tokens_total", "counter", "Prompt tokens evaluated.", double(s.prompt_tokens));
    metric("kinfer_prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's KV cache.",
           double(s.prompt_cached));
    metric("kinfer_generated_tokens_total", "counter", "Tokens generated.", double(s.generated_tokens));
    metric("kinfer_forward_steps_total", "counter", "Batched forward steps.", double(s.steps));
    metric("kinfer_busy_seconds_total", "counter", "Seconds spent in forward steps and sampling.",
           s.busy_seconds);
    metric("kinfer_slots", "gauge", "Slots (requests decoded together).", s.slots);
    metric("kinfer_slots_busy", "gauge", "Slots serving a request.", s.busy);
    metric("kinfer_queue_length", "gauge", "Requests waiting for a slot.", s.queued);
    metric("kinfer_tokens_per_second", "gauge", "Generated tokens per second, recent.", s.tokens_per_second);
    out +=
        "# HELP kinfer_http_responses_total HTTP responses by status.\n"
        "# TYPE kinfer_http_responses_total counter\n";
    std::lock_guard lock(status_mutex);
    for (const auto& [status, n] : responses_by_status)
        out += "kinfer_http_responses_total{status=\"" + std::to_string(status) + "\"} " + std::to_string(n) +
               "\n";
    return out;
}

void HttpServer::Impl::routes() {
    // Each handler's ApiError becomes OpenAI's error body; anything else is a 500 that names it.
    using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
    const auto guarded = [](Handler h) {
        return [h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
            try {
                h(req, res);
            } catch (const ApiError& e) {
                send_error(res, e);
            } catch (const std::exception& e) {
                send_error(
                    res, {500, std::string("internal error: ") + e.what(), "server_error", "internal_error"});
            }
        };
    };

    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (options.api_key.empty() || req.path == "/" || req.path == "/health")
            return httplib::Server::HandlerResponse::Unhandled;
        const std::string auth = req.get_header_value("Authorization");
        const std::string_view prefix = "Bearer ";
        if (auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
            same_secret(std::string_view(auth).substr(prefix.size()), options.api_key))
            return httplib::Server::HandlerResponse::Unhandled;
        res.set_header("WWW-Authenticate", "Bearer");
        send_error(res, {401, "invalid or missing API key (send Authorization: Bearer KEY)",
                         "authentication_error", "invalid_api_key"});
        return httplib::Server::HandlerResponse::Handled;
    });

    server.Get("/", [](const httplib::Request&, httplib::Response& res) {
        res.set_header("Content-Security-Policy",
                       "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                       "connect-src 'self'");
        res.set_content(std::string(chat_page_html()), "text/html; charset=utf-8");
    });
    server.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        const SchedulerStats s = scheduler.stats();
        res.set_content(dump({{"status", "ok"},
                              {"slots_idle", s.slots - s.busy},
                              {"slots_busy", s.busy},
                              {"queued", s.queued}}),
                        "application/json");
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(metrics(), "text/plain; version=0.0.4");
    });
    const auto models = [this](const httplib::Request&, httplib::Response& res) {
        const json m = {
            {"id", options.model_name},
            {"object", "model"},
            {"created", 0},
            {"owned_by", "kinfer"},
            {"meta", {{"n_ctx", scheduler.slot_context()}, {"n_vocab", scheduler.model().n_vocab()}}}};
        res.set_content(dump({{"object", "list"}, {"data", json::array({m})}}), "application/json");
    };
    server.Get("/v1/models", models);
    server.Get("/models", models);
    const auto chat = guarded([this](const httplib::Request& req, httplib::Response& res) {
        completion(req, res, Endpoint::Chat);
    });
    const auto complete = guarded([this](const httplib::Request& req, httplib::Response& res) {
        completion(req, res, Endpoint::Completion);
    });
    server.Post("/v1/chat/completions", chat);
    server.Post("/chat/completions", chat);
    server.Post("/v1/completions", complete);
    server.Post("/completions", complete);
    server.Post("/tokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
                    const json body = parse_body(req.body);
                    const auto it = body.find("content");
                    if (it == body.end() || !it->is_string())
                        throw ApiError{400, "'content' must be a string"};
                    const auto special = body.find("add_special");
                    if (special != body.end() && !special->is_boolean())
                        throw ApiError{400, "'add_special' must be a boolean"};
                    try {
                        const auto ids = scheduler.model().tokenize(
                            it->get<std::string>(), special != body.end() && special->get<bool>(), false);
                        res.set_content(dump({{"tokens", ids}}), "application/json");
                    } catch (const UsageError& e) {
                        throw ApiError{400, e.what()};
                    }
                }));
    server.Post(
        "/detokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
            const json body = parse_body(req.body);
            const auto it = body.find("tokens");
            if (it == body.end() || !it->is_array())
                throw ApiError{400, "'tokens' must be an array of token ids"};
            std::vector<int32_t> ids;
            const int n_vocab = scheduler.model().n_vocab();
            for (const auto& t : *it) {
                if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= n_vocab)
                    throw ApiError{400,
                                   "'tokens' must hold token ids in [0, " + std::to_string(n_vocab) + ")"};
                ids.push_back(int32_t(t.get<int64_t>()));
            }
            res.set_content(dump({{"content", scheduler.model().detokenize(ids)}}), "application/json");
        }));

    // Whatever httplib answers by itself (no route, a body over the limit, a malformed request line) gets
    // OpenAI's error body too; a known path with the wrong method is 405, not 404.
    server.set_error_handler(
        httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
            if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
            ApiError e{res.status, "", "invalid_request_error", ""};
            if (res.status == 404 && is_known_path(req.path)) {
                e.status = 405;
                res.set_header("Allow", allowed_methods(req.path));
                e.message = req.method + " is not allowed on " + req.path + " (use " +
                            allowed_methods(req.path) + ")";
                e.code = "method_not_allowed";
            } else if (res.status == 404) {
                e.message = "no such route: " + req.method + " " + req.path.substr(0, 200);
                e.type = "not_found_error";
                e.code = "not_found";
            } else if (res.status == 413) {
                e.message = "the request body is larger than the limit";
                e.code = "request_too_large";
            } else {
                e.message = "bad request (HTTP " + std::to_string(res.status) + ")";
            }
            // A request httplib could not read (malformed, too large, too slow) ends the connection: a client
            // must not hold a server thread by failing again and again on the same keep-alive connection.
            if (res.status != 404) res.set_header("Connection", "close");
            send_error(res, e);
            return httplib::Server::HandlerResponse::Handled;
        }));
    server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        send_error(res, {500, "internal error: " + what, "server_error", "internal_error"});
    });
    server.set_logger([this](const httplib::Request&, const httplib::Response& res) {
        std::lock_guard lock(status_mutex);
        ++responses_by_status[res.status];
    });
}

HttpServer::HttpServer(Scheduler& scheduler, HttpOptions options)
    : impl_(std::make_unique<Impl>(scheduler, std::move(options))) {
    Impl& m = *impl_;
    const int threads = m.options.http_threads > 0
                            ? m.options.http_threads
                            : scheduler.options().slots + scheduler.options().max_queued + 16;
    m.server.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
    // httplib's default also sets SO_REUSEPORT, which lets a second server bind the same port and take
    // half of its connections: only SO_REUSEADDR here, so a port in use is an error.
    m.server.set_socket_options([](int sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    m.server.set_payload_max_length(m.options.max_body);
    m.server.set_read_timeout(m.options.timeout_seconds, 0);
    m.server.set_write_timeout(m.options.timeout_seconds, 0);
    m.server.set_keep_alive_timeout(2);
    m.routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
    Impl& m = *impl_;
    if (m.options.port == 0) {
        const int port = m.server.bind_to_any_port(m.options.host);
        if (port <= 0) throw Error("cannot listen on " + m.options.host + " (any port)");
        return port;
    }
    if (!m.server.bind_to_port(m.options.host, m.options.port))
        throw Error("cannot listen on " + m.options.host + ":" + std::to_string(m.options.port) +
                    " (in use, or not an address of this machine?)");
    return m.options.port;
}

void HttpServer::listen() {
    impl_->server.listen_after_bind();
}

void HttpServer::stop() {
    impl_->server.stop();
}

}  // namespace kinfer::cli::serve
