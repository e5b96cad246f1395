#include "tools/infer/bench_runner.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "filetools/quant_recipe.hpp"
#include "gguf/gguf_file.hpp"

namespace kinfer::cli {
namespace {

// general.file_type as the name users type ("Q4_K_M"); files without it (or with an id kinfer does not
// write) are named after the type holding most of the weight bytes ("q4_K").
std::string file_type_label(const gguf::GgufFile& file) {
    if (const auto* v = file.find("general.file_type"); v && v->is_integer()) {
        const auto id = static_cast<uint32_t>(v->as_u64() & ~uint64_t(1024));  // 1024: llama.cpp's "guessed"
        for (const auto& ft : file_types())
            if (static_cast<uint32_t>(ft.id) == id) return ft.name;
    }
    std::map<std::string, uint64_t> bytes_by_type;
    for (const auto& t : file.tensors())
        if (t.n_dims >= 2) bytes_by_type[t.type->name] += t.n_bytes;
    const auto most = std::max_element(bytes_by_type.begin(), bytes_by_type.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
    return most == bytes_by_type.end() ? "?" : most->first;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

BenchModelInfo read_bench_model_info(const std::string& path) {
    const gguf::GgufFile file = gguf::GgufFile::open(path);
    BenchModelInfo info;
    info.path = path;
    info.file_type = file_type_label(file);
    const bool tied_output = file.find_tensor("output.weight") == nullptr;
    for (const auto& t : file.tensors()) {
        info.size_bytes += t.n_bytes;
        info.n_params += t.n_elements();
        // A token reads one row of the embedding table, but all of it when it is also the output matrix.
        const bool embedding = t.name == "token_embd.weight";
        info.bytes_per_token += embedding && !tied_output ? t.row_bytes() : t.n_bytes;
    }
    const std::string arch = file.get_or<std::string>("general.architecture", "?");
    info.model_type = model_type_label(arch, info.n_params);
    info.n_ctx_train = file.get_or<int64_t>(arch + ".context_length", 0);
    const int64_t n_layer = file.get_or<int64_t>(arch + ".block_count", 0);
    const int64_t n_embd = file.get_or<int64_t>(arch + ".embedding_length", 0);
    const int64_t n_head = file.get_or<int64_t>(arch + ".attention.head_count", 0);
    const int64_t n_head_kv = file.get_or<int64_t>(arch + ".attention.head_count_kv", n_head);
    const int64_t head_dim =
        file.get_or<int64_t>(arch + ".attention.key_length", n_head > 0 ? n_embd / n_head : 0);
    if (n_layer > 0 && n_head_kv > 0 && head_dim > 0)
        info.kv_bytes_per_token =
            2 * uint64_t(n_layer) * uint64_t(n_head_kv * head_dim) * 2;  // K and V, fp16
    return info;
}

uint64_t peak_rss_bytes() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0)
            return uint64_t(std::strtoull(line.c_str() + 6, nullptr, 10)) * 1024;
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
    return uint64_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

bool reset_peak_rss() {
    std::ofstream clear("/proc/self/clear_refs");
    return clear && (clear << "5").flush().good();
}

BenchInstance::BenchInstance(const BenchModelInfo& info, Device device, int threads, int max_tokens)
    : info_(info), device_(device), threads_(threads), model_([&] {
          const auto t0 = std::chrono::steady_clock::now();
          Model m = Model::load(info.path,
                                {.device = device, .threads = threads, .n_ctx = std::max(max_tokens, 1)});
          load_seconds_ = seconds_since(t0);
          return m;
      }()) {
    if (max_tokens > model_.n_ctx_train())
        throw UsageError(info.path + ": the tests need a context of " + std::to_string(max_tokens) +
                         " tokens (depth + prompt + generated), the model's is " +
                         std::to_string(model_.n_ctx_train()));
}

BenchResult BenchInstance::run(const BenchTest& test, const BenchRunOptions& options) {
    if (test.n_seqs > 1) return run_batch(test, options);
    const int n_ctx = test.n_depth + test.n_prompt + test.n_gen;
    Session session(model_, n_ctx);
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int32_t> any_token(0, model_.n_vocab() - 1);
    // As llama-bench: random valid ids, BOS first in an empty context.
    const auto random_tokens = [&](int n) {
        std::vector<int32_t> ids(static_cast<size_t>(n));
        for (auto& id : ids) id = any_token(rng);
        if (n > 0 && session.n_past() == 0 && model_.bos_id() >= 0) ids[0] = model_.bos_id();
        return ids;
    };
    const auto say = [&](const std::string& what) {
        if (options.progress) options.progress(what);
    };
    // Tokens are drawn before the clock starts; only feeding them is timed.
    const auto timed_run = [&]() {
        session.reset();
        if (test.n_depth > 0) session.feed(random_tokens(test.n_depth));
        const std::vector<int32_t> prompt = random_tokens(test.n_prompt);
        const std::vector<int32_t> gen = random_tokens(test.n_gen);
        const auto t0 = std::chrono::steady_clock::now();
        if (!prompt.empty()) session.feed(prompt);
        for (int32_t id : gen) session.feed(std::span<const int32_t>(&id, 1));
        return seconds_since(t0);
    };

    BenchResult r;
    r.model = info_;
    r.backend = device_ == Device::Cuda ? "CUDA" : "CPU";
    r.threads = threads_;
    r.test = test;
    if (options.warmup) {  // as llama-bench: the prompt once and one generated token, untimed
        say("warmup");
        session.reset();
        if (test.n_prompt > 0) session.feed(random_tokens(test.n_prompt));
        if (test.n_gen > 0) session.feed(random_tokens(1));
    }
    for (int rep = 0; rep < options.repetitions; ++rep) {
        say("rep " + std::to_string(rep + 1) + "/" + std::to_string(options.repetitions));
        r.samples_ns.push_back(timed_run() * 1e9);
    }
    return r;
}

// n_seqs sessions generate together: each step feeds one random token of every session through one
// BatchDecoder step (each weight read once per step); each session's context is first filled with n_depth
// tokens (not timed).
BenchResult BenchInstance::run_batch(const BenchTest& test, const BenchRunOptions& options) {
    const int n_ctx = test.n_depth + test.n_gen;
    std::vector<Session> sessions;
    for (int i = 0; i < test.n_seqs; ++i) sessions.emplace_back(model_, n_ctx);
    BatchDecoder batch(model_, test.n_seqs);
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int32_t> any_token(0, model_.n_vocab() - 1);
    const auto random_tokens = [&](int n, bool bos) {
        std::vector<int32_t> ids(static_cast<size_t>(n));
        for (auto& id : ids) id = any_token(rng);
        if (n > 0 && bos && model_.bos_id() >= 0) ids[0] = model_.bos_id();
        return ids;
    };
    const auto say = [&](const std::string& what) {
        if (options.progress) options.progress(what);
    };
    std::vector<BatchInput> inputs(sessions.size());
    std::vector<std::vector<int32_t>> gen(sessions.size());  // per session, its tokens of the run
    const auto step = [&](int k) {
        for (size_t i = 0; i < sessions.size(); ++i)
            inputs[i] = {&sessions[i], std::span<const int32_t>(&gen[i][size_t(k)], 1)};
        batch.decode(inputs);
    };
    const auto prepare = [&](int n_gen) {
        for (size_t i = 0; i < sessions.size(); ++i) {
            sessions[i].reset();
            if (test.n_depth > 0) sessions[i].feed(random_tokens(test.n_depth, true));
            gen[i] = random_tokens(n_gen, test.n_depth == 0);
        }
    };
    BenchResult r;
    r.model = info_;
    r.backend = device_ == Device::Cuda ? "CUDA" : "CPU";
    r.threads = threads_;
    r.test = test;
    if (options.warmup) {  // one untimed step of every session
        say("warmup");
        prepare(1);
        step(0);
    }
    for (int rep = 0; rep < options.repetitions; ++rep) {
        say("rep " + std::to_string(rep + 1) + "/" + std::to_string(options.repetitions));
        prepare(test.n_gen);
        const auto t0 = std::chrono::steady_clock::now();
        for (int k = 0; k < test.n_gen; ++k) step(k);
        r.samples_ns.push_back(seconds_since(t0) * 1e9);
    }
    return r;
}

}  // namespace kinfer::cli
