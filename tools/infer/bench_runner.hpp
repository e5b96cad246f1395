#pragma once
// Runs `infer bench` tests on one model the way llama-bench does: pp tests evaluate a prompt of random
// valid token ids in one feed, tg tests feed random tokens one at a time, pg tests do both; the context is
// first filled with n_depth tokens (not timed); each repetition starts from an empty context.
#include <functional>
#include <memory>
#include <string>

#include "kinfer/kinfer.hpp"
#include "tools/infer/bench_report.hpp"

namespace kinfer::cli {

// Reads the facts of a model file (type, size, parameters, bytes read per token). Throws FormatError.
BenchModelInfo read_bench_model_info(const std::string& path);

struct BenchRunOptions {
    int repetitions = 5;
    bool warmup = true;                                // one untimed run of the test first
    std::function<void(const std::string&)> progress;  // "warmup", "rep 2/5": where the test is
};

// One model loaded with one device and thread count; tests run on it one after the other.
class BenchInstance {
  public:
    BenchInstance(const BenchModelInfo& info, Device device, int threads, int max_tokens);
    BenchResult run(const BenchTest& test, const BenchRunOptions& options);
    double load_seconds() const { return load_seconds_; }

  private:
    BenchResult run_batch(const BenchTest& test, const BenchRunOptions& options);
    BenchModelInfo info_;
    Device device_;
    int threads_;
    double load_seconds_ = 0;
    Model model_;
};

// The process's peak resident memory since the start or the last reset_peak_rss (Linux: VmHWM of
// /proc/self/status; elsewhere getrusage, since the start), in bytes; 0 where unknown.
uint64_t peak_rss_bytes();
// Starts the peak over from the memory resident now (Linux: "5" into /proc/self/clear_refs), so that a
// model's peak leaves out the read probe's buffer and an earlier model's pages, both freed. False where it
// cannot.
bool reset_peak_rss();

}  // namespace kinfer::cli
