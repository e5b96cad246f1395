#include "tools/infer/bench_quality.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "quality/perplexity.hpp"
#include "tools/infer/bench_runner.hpp"

namespace kinfer::cli {
namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open (--perplexity)");
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

bool same_file(const std::string& a, const std::string& b) {
    std::error_code ec;
    const bool same = fs::equivalent(a, b, ec);
    return ec ? a == b : same;
}

// The base model's log-probs live in a file only for the length of the run.
struct TempFile {
    std::string path;
    TempFile() {
        static std::atomic<int> counter{0};
        path = (fs::temp_directory_path() /
                ("kinfer-bench-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".logits"))
                   .string();
    }
    ~TempFile() {
        std::error_code ec;
        fs::remove(path, ec);
    }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Model load_for_quality(const std::string& path, const BenchQualityOptions& o) {
    Model model = Model::load(path, {.device = o.device, .threads = o.threads, .n_ctx = o.n_ctx});
    if (o.n_ctx > model.n_ctx_train())
        throw UsageError(path + ": --ctx " + std::to_string(o.n_ctx) +
                         " is longer than the context the model was trained with (" +
                         std::to_string(model.n_ctx_train()) + ")");
    return model;
}

}  // namespace

std::string pick_kl_base(const std::vector<BenchModelInfo>& models, const std::string& explicit_base) {
    if (!explicit_base.empty()) return explicit_base;
    const BenchModelInfo* best = nullptr;
    const auto bpw = [](const BenchModelInfo& m) {
        return double(m.size_bytes) / double(std::max<uint64_t>(m.n_params, 1));
    };
    for (const auto& m : models)
        if (!best || bpw(m) > bpw(*best)) best = &m;
    if (!best) throw UsageError("no model to measure");
    return best->path;
}

std::map<std::string, BenchQuality> measure_bench_quality(
    const std::vector<BenchModelInfo>& models, const BenchQualityOptions& options,
    const std::function<void(const std::string&)>& progress) {
    const std::string base_path = pick_kl_base(models, options.base_path);
    const BenchModelInfo base_info = read_bench_model_info(base_path);
    const std::string text = read_text(options.text_path);

    BenchQuality common;
    common.text_path = options.text_path;
    common.base_path = base_path;
    common.base_type = base_info.file_type;

    std::map<std::string, BenchQuality> out;
    TempFile base_logits;
    quality::ChunkPlan plan;
    {
        const Model base = load_for_quality(base_path, options);
        plan = quality::plan_chunks(base.tokenize(text, /*add_bos=*/true), options.n_ctx, options.max_chunks);
        common.n_ctx = plan.n_ctx;
        common.n_chunk = plan.n_chunk;
        progress("quality: " + std::to_string(plan.n_chunk) + " chunks of " + std::to_string(plan.n_ctx) +
                 " tokens of " + options.text_path + ", " +
                 std::to_string(quality::scored_per_chunk(plan.n_ctx)) +
                 " scored per chunk; KL-divergence base: " + base_info.file_type + " (" + base_path + ")");
        quality::BaseLogitsWriter writer(base_logits.path, plan, base.n_vocab());
        Session session(base, plan.n_ctx);
        quality::NllStats nll;
        const auto t0 = std::chrono::steady_clock::now();
        quality::score_chunks(session, plan, 0, quality::chunk_bos(base), nll, &writer, [&](int c) {
            char line[160];
            std::snprintf(line, sizeof line, "quality: base %s, chunk %d/%d, PPL %.4f (%.1f s)",
                          base_info.file_type.c_str(), c + 1, plan.n_chunk, nll.ppl(), seconds_since(t0));
            progress(line);
        });
        writer.finish();
        BenchQuality q = common;
        q.n_tokens = nll.count;
        q.ppl = nll.ppl();
        q.ppl_err = nll.ppl_uncertainty();
        q.kld = 0;
        q.same_top = 1;
        q.is_base = true;
        for (const auto& m : models)
            if (same_file(m.path, base_path)) out[m.path] = q;
    }
    for (const auto& m : models) {
        if (out.count(m.path)) continue;
        const Model model = load_for_quality(m.path, options);
        quality::BaseLogitsReader reader(base_logits.path);
        if (reader.n_vocab() != model.n_vocab())
            throw FormatError(m.path + ": its vocabulary has " + std::to_string(model.n_vocab()) +
                              " tokens, the KL-divergence base " + base_path + " has " +
                              std::to_string(reader.n_vocab()) + "; they are not the same model");
        Session session(model, plan.n_ctx);
        quality::KldStats kl;
        const auto t0 = std::chrono::steady_clock::now();
        quality::compare_chunks(session, plan, 0, quality::chunk_bos(model), reader, kl, [&](int c) {
            char line[200];
            std::snprintf(line, sizeof line,
                          "quality: %s, chunk %d/%d, PPL %.4f, KLD %.6f, same top %.2f%% (%.1f s)",
                          m.file_type.c_str(), c + 1, plan.n_chunk, kl.nll.ppl(), kl.mean_kld(),
                          100.0 * kl.same_top_fraction(), seconds_since(t0));
            progress(line);
        });
        BenchQuality q = common;
        q.n_tokens = kl.count;
        q.ppl = kl.nll.ppl();
        q.ppl_err = kl.nll.ppl_uncertainty();
        q.kld = kl.mean_kld();
        q.kld_err = kl.kld_uncertainty();
        q.same_top = kl.same_top_fraction();
        out[m.path] = q;
    }
    return out;
}

}  // namespace kinfer::cli
