#pragma once
// `infer bench` results and their output formats, with llama-bench's columns and field names so that the
// two tools' results can be put side by side: md (a table, rows printed as tests finish), csv, json (one
// array) and jsonl (one object per line).
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace kinfer::cli {

// What is known about a model file before running it.
struct BenchModelInfo {
    std::string path;
    std::string model_type;           // "llama 7B": architecture and size class, as llama-bench's first words
    std::string file_type;            // "Q4_K_M" (general.file_type), or the main tensor type when not given
    uint64_t size_bytes = 0;          // all tensor data
    uint64_t n_params = 0;            // all tensor elements
    uint64_t bytes_per_token = 0;     // weight bytes one generated token reads (all but the embedding table)
    int64_t n_ctx_train = 0;          // <arch>.context_length; 0 if not given
    uint64_t kv_bytes_per_token = 0;  // the KV cache (fp16, as the bench loads it) per context position
};

struct BenchTest {
    int n_prompt = 0;  // pp: tokens evaluated in one feed
    int n_gen = 0;     // tg: tokens fed one at a time
    int n_depth = 0;   // tokens already in the context (not timed)
    int n_seqs = 1;    // tg: sequences decoded together, one token each per step (BatchDecoder)
    // "pp512", "tg128", "pp512+tg128", "tg128 x8" (8 sequences), with " @ d512" when n_depth > 0
    std::string name() const;
};

// --perplexity: the model's quality on a text, against a base model (quality/perplexity.hpp's measures).
struct BenchQuality {
    std::string text_path;
    std::string base_path, base_type;  // the KL-divergence base and its file type ("F16")
    bool is_base = false;              // this model is the base: KLD 0, same top 100% by definition
    int n_ctx = 0, n_chunk = 0;        // the chunks scored
    uint64_t n_tokens = 0;             // scored tokens
    double ppl = 0, ppl_err = 0;       // perplexity and its uncertainty (as infer perplexity prints them)
    double kld = 0, kld_err = 0;       // mean KL-divergence from the base, nats per token
    double same_top = 0;               // fraction of scored tokens where the most likely token is the base's
};

struct BenchResult {
    BenchModelInfo model;
    std::string backend;  // "CPU", "CUDA"
    int threads = 0;
    BenchTest test;
    std::vector<double> samples_ns;       // one per repetition
    std::optional<BenchQuality> quality;  // with --perplexity
    double avg_ns() const;
    double stddev_ns() const;
    std::vector<double> samples_ts() const;  // tokens per second of each repetition
    double avg_ts() const;
    double stddev_ts() const;
    // Generation only: weight bytes read per second (GB/s) and the share of the read bandwidth (percent);
    // negative when not applicable.
    double weights_gbps() const;
    double bandwidth_pct(double mem_gbps) const;
};

enum class BenchFormat { Markdown, Csv, Json, Jsonl };

// Facts printed once: which CPU kernels ran, the measured bandwidth (0 = not measured).
struct BenchEnvironment {
    std::string cpu_info;     // the CPU's model name
    std::string cpu_kernels;  // the SIMD path of the CPU kernels ("reference", "avx2", ...)
    std::string gpu_name;     // --device cuda: the GPU's name, whose memory mem_read_gbps is
    double mem_read_gbps = 0;
    int probe_threads = 0;  // 0 for the GPU's probe
    uint64_t probe_bytes = 0;
};

// Writes results to `out` as they come: begin(), one row() per test, end().
class BenchPrinter {
  public:
    BenchPrinter(BenchFormat format, BenchEnvironment env, FILE* out = stdout);
    void begin();
    void row(const BenchResult& r);
    void end();

  private:
    BenchFormat format_;
    BenchEnvironment env_;
    FILE* out_;
    int rows_ = 0;
};

// "4.07 GiB" / "13.50 MiB" and "7.25 B" / "14.02 M", as llama-bench writes them.
std::string format_model_size(uint64_t bytes);
std::string format_params(uint64_t n);
// "llama 7B": the size class from the parameter count.
std::string model_type_label(const std::string& arch, uint64_t n_params);

}  // namespace kinfer::cli
