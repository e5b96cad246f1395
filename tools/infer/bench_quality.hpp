#pragma once
// `infer bench --perplexity TEXT`: the quality columns of the per-type table. Every model is scored on the
// same chunks of TEXT exactly as `infer perplexity` scores them (quality/perplexity.hpp), and compared with
// a base model (the most precise file given, or --kl-base) as `infer perplexity --kl-divergence` does:
// mean KL-divergence of the model's next-token distribution from the base's, and how often the two agree
// on the most likely token.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kinfer/kinfer.hpp"
#include "tools/infer/bench_report.hpp"

namespace kinfer::cli {

struct BenchQualityOptions {
    std::string text_path;  // the evaluation text (UTF-8)
    std::string base_path;  // the KL-divergence base; "" = the most precise of the models
    int n_ctx = 512;        // tokens per chunk
    int max_chunks = -1;    // score at most this many chunks (-1: all)
    Device device = Device::Cpu;
    int threads = 0;
};

// The base: `explicit_base` when given, else the model with the most bits per weight (the first on ties).
std::string pick_kl_base(const std::vector<BenchModelInfo>& models, const std::string& explicit_base);

// Scores the base first (its log-probs go to a temporary file, removed after), then every other model
// against it. Returns each model's quality by path. Progress lines go to `progress`. Throws UsageError for
// a text too short for one chunk pair or a context beyond a model's, FormatError for models whose
// vocabularies differ from the base's.
std::map<std::string, BenchQuality> measure_bench_quality(
    const std::vector<BenchModelInfo>& models, const BenchQualityOptions& options,
    const std::function<void(const std::string&)>& progress);

}  // namespace kinfer::cli
