#pragma once
// The HTTP side of `infer serve`: OpenAI's routes over a Scheduler, with cpp-httplib. Request limits,
// timeouts, the API key and error bodies are all handled here.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "kinfer/scheduler.hpp"

namespace kinfer::cli::serve {

struct HttpOptions {
    std::string host = "127.0.0.1";
    int port = 8080;            // 0: any free port
    std::string api_key;        // non-empty: requests need "Authorization: Bearer KEY"
    std::string model_name;     // what /v1/models and responses call the model
    size_t max_body = 1 << 20;  // larger bodies get 413
    int timeout_seconds = 15;   // reading a request / writing to a client
    int http_threads = 0;       // connections served at once; 0: from the scheduler's size
};

class HttpServer {
  public:
    HttpServer(Scheduler& scheduler, HttpOptions options);
    ~HttpServer();
    // Binds; returns the port (useful with port 0). Throws Error when the address cannot be bound.
    int bind();
    // Serves until stop() (from another thread or a signal handler thread).
    void listen();
    void stop();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace kinfer::cli::serve
