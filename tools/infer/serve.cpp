// `infer serve`: an OpenAI-compatible HTTP server over the continuous-batching Scheduler
// (include/kinfer/scheduler.hpp). The routes are in serve_http.cpp, the API shapes in serve_openai.cpp,
// the chat page in serve_page.cpp.
#include <pthread.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tools/infer/args.hpp"
#include "tools/infer/commands.hpp"
#include "tools/infer/model_flags.hpp"
#include "tools/infer/serve_http.hpp"

namespace kinfer::cli {
namespace {

std::string help_text() {
    return std::string(
               "usage: infer serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [--ctx N]\n"
               "                   [--api-key KEY | --api-key-file FILE] [options]\n\n"
               "An OpenAI-compatible server: any OpenAI client (Python, JavaScript, curl) talks to it.\n"
               "  POST /v1/chat/completions, /v1/completions   (stream: Server-Sent Events, ending with\n"
               "                                              data: [DONE])\n"
               "  GET  /v1/models, /health (slots busy/idle), /metrics (Prometheus)\n"
               "  POST /tokenize {\"content\": TEXT}, /detokenize {\"tokens\": [IDS]}\n"
               "  GET  /   a chat page (multi-turn, streaming, stop button, tokens/s)\n"
               "Up to --parallel requests are decoded together in one batched step (continuous batching);\n"
               "long prompts are evaluated in chunks between the other streams' steps; a follow-up turn of "
               "a\n"
               "conversation reuses its slot's KV cache. Further requests wait in a queue; when it is full\n"
               "the answer is 503 with Retry-After. A client that disconnects frees its slot at once.\n"
               "OpenMP's idle threads sleep rather than spin (the server restarts itself with\n"
               "OMP_WAIT_POLICY=passive unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set): they would starve "
               "the\n"
               "HTTP threads and the clients that share the cores.\n\n"
               "server:\n"
               "  --host ADDR           address to listen on (default 127.0.0.1: this machine only)\n"
               "  --port N              port (default 8080; 0: any free port, printed on stderr)\n"
               "  -np, --parallel N     slots: requests decoded together (default 4)\n"
               "  --queue N             requests that may wait for a slot (default 64)\n"
               "  --api-key KEY         require \"Authorization: Bearer KEY\" (401 otherwise; / and /health\n"
               "                        stay open)\n"
               "  --api-key-file FILE   the same, the key read from FILE (first line)\n"
               "  --alias NAME          the model name in /v1/models and responses (default: file name)\n"
               "  --timeout S           seconds to read a request or write to a client (default 15)\n"
               "  --max-body BYTES      largest request body (default 1048576; larger: 413)\n"
               "  --batch N             tokens per forward step, all slots together (default 512)\n"
               "  --prefill-chunk N     prompt tokens of one request per step (default 128)\n"
               "  (--ctx is the context of each slot)\n\n") +
           model_flags_help() + "\n" + kLogFlagsHelp +
           "\nSampling follows each request (temperature, top_p, seed, stop, presence/frequency_penalty,\n"
           "logit_bias, max_tokens; llama.cpp's top_k, min_p, repeat_penalty, ignore_eos too); OpenAI's\n"
           "defaults apply otherwise. Log probabilities: chat's logprobs / top_logprobs, completions'\n"
           "logprobs (at most 20 alternatives), the model's own (before biases, penalties, temperature).\n"
           "JSON mode: response_format {\"type\": \"json_object\"} keeps the reply one JSON object.\n"
           "Options it does not implement are refused with 400 (unsupported_parameter) when turned on, not\n"
           "ignored: response_format json_schema, tools, tool_choice other than none/auto; for completions\n"
           "echo, best_of above 1, suffix.\n\n"
           "example:\n"
           "  infer serve -m mistral-7b-instruct.gguf --parallel 8\n"
           "  curl -N localhost:8080/v1/chat/completions -d '{\"messages\":[{\"role\":\"user\",\n"
           "       \"content\":\"Hi\"}],\"stream\":true}'\n";
}

std::string read_key_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw UsageError("--api-key-file: cannot read " + path);
    std::string key;
    std::getline(in, key);
    while (!key.empty() && (key.back() == '\r' || key.back() == ' ' || key.back() == '\t')) key.pop_back();
    if (key.empty()) throw UsageError("--api-key-file: " + path + " has an empty first line");
    return key;
}

std::string file_name(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

int cmd_serve(int argc, char** argv) {
    ArgReader args("serve", argc, argv);
    ModelFlags mf;
    serve::HttpOptions http;
    SchedulerOptions so;
    std::string key_file;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(help_text().c_str(), stdout);
            return 0;
        }
        if (parse_model_flag(args, mf)) continue;
        if (args.is("--host")) {
            http.host = args.value();
        } else if (args.is("--port")) {
            http.port = int(args.int_value(0, 65535));
        } else if (args.is("-np", "--parallel")) {
            so.slots = int(args.int_value(1, 256));
        } else if (args.is("--queue")) {
            so.max_queued = int(args.int_value(0, 4096));
        } else if (args.is("--api-key")) {
            http.api_key = args.value();
            if (http.api_key.empty()) throw UsageError("--api-key needs a non-empty key");
        } else if (args.is("--api-key-file")) {
            key_file = args.value();
        } else if (args.is("--alias")) {
            http.model_name = args.value();
        } else if (args.is("--timeout")) {
            http.timeout_seconds = int(args.int_value(1, 3600));
        } else if (args.is("--max-body")) {
            http.max_body = size_t(args.int_value(1024, int64_t(1) << 30));
        } else if (args.is("--batch")) {
            so.batch_tokens = int(args.int_value(1, 1 << 16));
        } else if (args.is("--prefill-chunk")) {
            so.prefill_chunk = int(args.int_value(1, 1 << 16));
        } else {
            args.unknown();
        }
    }
    finish_flags(mf, nullptr);
    if (!key_file.empty()) {
        if (!http.api_key.empty()) throw UsageError("give --api-key or --api-key-file, not both");
        http.api_key = read_key_file(key_file);
    }
    if (so.batch_tokens < so.slots) so.batch_tokens = so.slots;
    if (http.model_name.empty()) http.model_name = file_name(mf.path);

    // Signals go to one thread that stops the server; every other thread (httplib's, the scheduler's)
    // inherits the blocked mask. A client gone mid-write must not kill the process.
    std::signal(SIGPIPE, SIG_IGN);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    Model model = load_model(mf);
    if (!model.has_chat_template() && !mf.quiet)
        log_line("warning: the model names no chat template; /v1/chat/completions uses " +
                 model.chat_template_name());
    so.n_ctx = model.n_ctx();
    Scheduler scheduler(model, so);
    serve::HttpServer server(scheduler, http);
    const int port = server.bind();
    if (!mf.quiet) {
        log_line("infer serve: " + model.description());
        log_line("infer serve: listening on http://" + http.host + ":" + std::to_string(port) + " (" +
                 std::to_string(so.slots) + " slots of " + std::to_string(scheduler.slot_context()) +
                 " tokens, queue " + std::to_string(so.max_queued) +
                 (http.api_key.empty() ? "" : ", API key required") + ")");
    } else {
        log_line("infer serve: listening on http://" + http.host + ":" + std::to_string(port));
    }
    std::fflush(stderr);

    std::thread signal_thread([&] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        server.stop();
    });
    server.listen();
    // listen() returns after stop() (the signal thread) or a failure: then wake the signal thread.
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
    if (!mf.quiet) log_line("infer serve: stopped");
    return 0;
}

}  // namespace kinfer::cli
