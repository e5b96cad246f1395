// Dev-only reference (never built by CMake or CI): llama.cpp's tokenizer throughput on the texts that
// bench/tokenizer_bench.cpp uses, so the two can be compared. Build against a llama.cpp build:
//
//   g++ -O2 -std=c++17 scripts/dev/llama_tokenize_bench.cpp -I/tmp/llama.cpp/include
//   -I/tmp/llama.cpp/ggml/include \
//       -L/tmp/llama.cpp/build/bin -lllama -lggml -lggml-base -Wl,-rpath,/tmp/llama.cpp/build/bin -o
//       /tmp/llama_tok_bench
//   /tmp/llama_tok_bench ../shared/vocab/mistral-v0.3-vocab.gguf tests/fixtures/tokenizer/corpus.inp [lines]
//
// The text is the file repeated to at least 1 MiB (as in our benchmark); "lines" tokenizes it line by line.
// Prints the best of several runs in MB/s (1 MB = 2^20 bytes, as Google Benchmark counts) and the token
// count.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s VOCAB.gguf TEXT_FILE [lines]\n", argv[0]);
        return 2;
    }
    const bool by_lines = argc > 3 && std::string(argv[3]) == "lines";
    llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model* model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 1;
    const llama_vocab* vocab = llama_model_get_vocab(model);

    std::ifstream in(argv[2], std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string unit = ss.str();
    std::string text;
    while (text.size() < (1u << 20)) text += unit;

    std::vector<std::string> pieces;
    if (by_lines) {
        for (size_t pos = 0; pos < text.size();) {
            size_t nl = text.find('\n', pos);
            if (nl == std::string::npos) nl = text.size();
            pieces.push_back(text.substr(pos, nl - pos));
            pos = nl + 1;
        }
    } else {
        pieces.push_back(text);
    }

    std::vector<llama_token> ids(text.size() + 16);
    // CPU time of this process (the machine may be shared; Google Benchmark's rates use CPU time too).
    auto cpu_now = [] {
        timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
    };
    double best = 1e30;
    size_t n_tokens = 0;
    for (int rep = 0; rep < 5; ++rep) {
        const double t0 = cpu_now();
        n_tokens = 0;
        for (const std::string& p : pieces) {
            const int32_t n =
                llama_tokenize(vocab, p.data(), int32_t(p.size()), ids.data(), int32_t(ids.size()),
                               /*add_special*/ !by_lines, /*parse_special*/ false);
            if (n < 0) return 1;
            n_tokens += size_t(n);
        }
        const double s = cpu_now() - t0;
        best = std::min(best, s);
    }
    std::printf("llama.cpp %s: %zu bytes, %zu tokens, best %.2f ms CPU, %.2f MB/s\n",
                by_lines ? "lines" : "whole", text.size(), n_tokens, best * 1e3,
                double(text.size()) / best / (1 << 20));
    llama_model_free(model);
    return 0;
}
