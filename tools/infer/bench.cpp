// `infer bench`: tokens per second of prompt processing and generation, with llama-bench's flags, tests and
// output formats, so that the two tools' numbers can be compared directly; plus GB/s of weights read and the
// share of the machine's memory bandwidth for generation, and --all-types (one synthetic 7B per file type).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kernels/cpu/decode_table.hpp"
#include "kernels/cpu/quant_matmul.hpp"
#include "kernels/cuda/cuda_info.hpp"
#include "tools/infer/args.hpp"
#include "tools/infer/bandwidth_probe.hpp"
#include "tools/infer/bench_models.hpp"
#include "tools/infer/bench_quality.hpp"
#include "tools/infer/bench_report.hpp"
#include "tools/infer/bench_runner.hpp"
#include "tools/infer/commands.hpp"

namespace kinfer::cli {
namespace {

constexpr const char* kDefaultVocab = KINFER_DATA_DIR "/vocab/mistral-v0.3-vocab.gguf";

// The instruction-set path of the CPU kernels in use (KINFER_CPU_ISA may force a lower one).
std::string cpu_kernel_path() {
    return cpu::decode_path_name(cpu::active_isa());
}

std::string help_text() {
    const std::string dir = default_bench_dir();
    std::string types;
    for (const auto& t : all_bench_types()) types += (types.empty() ? "" : ", ") + t;
    return "usage: infer bench -m MODEL [-m MODEL ...] [options]\n"
           "       infer bench --all-types [--dir DIR] [--types LIST] [options]\n"
           "       infer bench -m F16.gguf -m Q4_K_M.gguf ... --perplexity TEXT [--ctx N] [--chunks N]\n\n"
           "Measures tokens per second as llama.cpp's llama-bench does, with its flags and output, so the "
           "two\n"
           "can be compared directly. A pp test evaluates a prompt of random token ids in one step; a tg "
           "test\n"
           "generates (feeds) tokens one at a time; pp+tg does both. Each repetition starts from an empty\n"
           "context, filled first with -d tokens (not timed); a warmup run comes first. Results go to "
           "stdout\n"
           "as tests finish (mean ± standard deviation over the repetitions), progress to stderr, with each\n"
           "model's load time and the process's peak resident memory (RSS) against file + KV cache size.\n\n"
           "For generation, GB/s is the weight bytes read per second (every weight is read once per token)\n"
           "and % bw its share of the machine's memory read bandwidth, measured once at the start by a read\n"
           "probe (all hardware threads streaming a buffer much larger than the caches; with --device cuda\n"
           "a kernel streaming 2 GiB of the GPU's memory).\n\n"
           "Lists are comma-separated (-t 1,2,4); each combination of model, threads, depth and test runs.\n"
           "  -m, --model FILE       a GGUF model (repeatable)\n"
           "  -p, --n-prompt LIST    prompt lengths of pp tests (default 512; 0: no pp test)\n"
           "  -n, --n-gen LIST       tokens of tg tests (default 128; 0: no tg test)\n"
           "  -pg P,G                a pp+tg test: a prompt of P tokens, then G generated (repeatable)\n"
           "  -d, --n-depth LIST     tokens already in the context (default 0)\n"
           "  -s, --seqs LIST        sequences generated together in tg tests, one token each per step "
           "through\n"
           "                         one batch (default 1); t/s is all sequences' tokens, \"tg128 x8\"\n"
           "  -r, --repetitions N    timed runs of each test (default 5)\n"
           "  -t, --threads LIST     CPU threads (default: all hardware threads, here " +
           std::to_string(std::max(1u, std::thread::hardware_concurrency())) +
           ")\n"
           "  --device cpu|cuda      where to run (default cpu)\n"
           "  -o, --output FORMAT    md (a table, default), csv, json (an array) or jsonl (an object a "
           "line);\n"
           "                         fields use llama-bench's names (avg_ts, stddev_ts, n_prompt, ...)\n"
           "  --no-warmup            skip the warmup run\n"
           "  --no-bandwidth         skip the read probe (no % bw)\n\n"
           "Quality (real models, e.g. one checkpoint in several file types):\n"
           "  --perplexity TEXT      before the speed tests, score every model on TEXT as `infer "
           "perplexity`\n"
           "                         does (PPL ± error), and against a base model as `infer perplexity\n"
           "                         --kl-divergence` does: mean KL-divergence from the base's next-token\n"
           "                         distribution and how often the most likely token is the same. Adds "
           "these\n"
           "                         fields to every output format and prints a per-type table (type, size,\n"
           "                         bits/weight, PPL, KLD, same top, t/s) after the results\n"
           "  --kl-base FILE         the base (default: the -m file with the most bits per weight, e.g. "
           "F16);\n"
           "                         it need not be one of the -m files\n"
           "  --ctx N                tokens per chunk (default 512); the text needs at least 2N tokens\n"
           "  --chunks N             score only the first N chunks (default: all)\n\n"
           "All file types (synthetic models):\n"
           "  --all-types            measure one Mistral-7B-shaped model per file type (" +
           types +
           "),\n"
           "                         synthesised on first use as `infer synth --preset mistral-7b --type T`\n"
           "                         would write them (4-15 GB each, about 48 GB for all) and reused after;\n"
           "                         prints a table per type after the results\n"
           "  --types LIST           with --all-types: only these file types\n"
           "  --dir DIR              where the synthetic models are kept (default " +
           dir +
           ")\n"
           "  --vocab FILE|none      their vocabulary (default the Mistral v0.3 one of the source tree; "
           "none: a\n"
           "                         built-in byte-level one of 32768 tokens)\n\n"
           "examples:\n"
           "  infer bench -m mistral-7b-q4_k_m.gguf -t 2 -r 3\n"
           "  infer bench -m a.gguf -m b.gguf -p 0 -n 128 -d 0,1024 -o json\n"
           "  infer bench --all-types -t 2 -p 512 -n 128\n"
           "  infer bench -m m-f16.gguf -m m-q8_0.gguf -m m-q4_k_m.gguf --perplexity wiki.test.raw --chunks "
           "20\n";
}

std::vector<int> int_list(ArgReader& args, int lo, int hi) {
    const std::string flag = args.current();
    std::vector<int> out;
    std::stringstream ss(args.value());
    for (std::string item; std::getline(ss, item, ',');) {
        size_t used = 0;
        int v = 0;
        try {
            v = std::stoi(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != item.size())
            throw UsageError(flag + " wants a comma-separated list of integers, got '" + item + "'");
        if (v < lo || v > hi)
            throw UsageError(flag + " values must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                             "], got " + item);
        out.push_back(v);
    }
    if (out.empty()) throw UsageError(flag + " needs a value");
    return out;
}

std::string cpu_model_name() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
        }
    return "unknown CPU";
}

void progress_line(const std::string& text) {
    std::fprintf(stderr, "infer bench: %s\n", text.c_str());
}

// The per-type summary of --all-types and --perplexity: one row per model and thread count, the quality
// columns when measured, then one column per test.
void print_type_table(const std::vector<BenchResult>& results) {
    std::vector<std::string> tests;
    std::map<std::pair<std::string, int>, std::map<std::string, const BenchResult*>> rows;
    std::vector<std::pair<std::string, int>> order;
    for (const auto& r : results) {
        const std::string test = r.test.name();
        if (std::find(tests.begin(), tests.end(), test) == tests.end()) tests.push_back(test);
        const auto key = std::pair{r.model.path, r.threads};
        if (!rows.count(key)) order.push_back(key);
        rows[key][test] = &r;
    }
    const bool quality = !results.empty() && results.front().quality.has_value();
    std::string head = "\n| type | size | bits/weight |", rule = "| --- | ---: | ---: |";
    if (quality) {
        head += " PPL | KLD vs " + results.front().quality->base_type + " | same top |";
        rule += " ---: | ---: | ---: |";
    }
    head += " threads |";
    rule += " ---: |";
    for (const auto& t : tests) {
        head += " " + t + " t/s |";
        rule += " ---: |";
        if (t.rfind("tg", 0) == 0) {
            head += " " + t + " GB/s |";
            rule += " ---: |";
        }
    }
    std::printf("%s\n%s\n", head.c_str(), rule.c_str());
    for (const auto& key : order) {
        const BenchResult& any = *rows[key].begin()->second;
        char buf[160];
        std::snprintf(buf, sizeof buf, "| %s | %s | %.2f |", any.model.file_type.c_str(),
                      format_model_size(any.model.size_bytes).c_str(),
                      8.0 * double(any.model.size_bytes) / double(std::max<uint64_t>(any.model.n_params, 1)));
        std::string line = buf;
        if (quality && any.quality) {
            const BenchQuality& q = *any.quality;
            if (q.is_base)
                std::snprintf(buf, sizeof buf, " %.3f ± %.3f | 0 (base) | 100 %% |", q.ppl, q.ppl_err);
            else
                std::snprintf(buf, sizeof buf, " %.3f ± %.3f | %.5f ± %.5f | %.2f %% |", q.ppl, q.ppl_err,
                              q.kld, q.kld_err, 100.0 * q.same_top);
            line += buf;
        }
        line += " " + std::to_string(key.second) + " |";
        for (const auto& t : tests) {
            const auto it = rows[key].find(t);
            const BenchResult* r = it == rows[key].end() ? nullptr : it->second;
            std::snprintf(buf, sizeof buf, " %.2f ± %.2f |", r ? r->avg_ts() : 0, r ? r->stddev_ts() : 0);
            line += r ? buf : " |";
            if (t.rfind("tg", 0) == 0) {
                std::snprintf(buf, sizeof buf, " %.2f |", r ? r->weights_gbps() : 0);
                line += r ? buf : " |";
            }
        }
        std::printf("%s\n", line.c_str());
    }
    if (quality) {
        const BenchQuality& q = *results.front().quality;
        std::printf(
            "\nPPL: %s, %d chunks of %d tokens (%llu scored per model); KLD and same top: against %s\n",
            q.text_path.c_str(), q.n_chunk, q.n_ctx, static_cast<unsigned long long>(q.n_tokens),
            q.base_path.c_str());
    }
}

}  // namespace

int cmd_bench(int argc, char** argv) {
    ArgReader args("bench", argc, argv);
    std::vector<std::string> models, types;
    std::vector<int> prompts, gens, depths, threads, seqs;
    std::vector<std::pair<int, int>> pairs;
    int reps = 5;
    Device device = Device::Cpu;
    BenchFormat format = BenchFormat::Markdown;
    bool warmup = true, all_types = false, probe = true, types_given = false;
    BenchSynthSpec synth{.dir = default_bench_dir(), .vocab = kDefaultVocab};
    uint64_t probe_bytes = 0;
    BenchQualityOptions quality;
    bool ctx_given = false, chunks_given = false;
    constexpr int kMaxTokens = 1 << 20;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(help_text().c_str(), stdout);
            return 0;
        } else if (args.is("-m", "--model")) {
            models.push_back(args.value());
        } else if (args.is("-p", "--n-prompt")) {
            for (int v : int_list(args, 0, kMaxTokens)) prompts.push_back(v);
        } else if (args.is("-n", "--n-gen")) {
            for (int v : int_list(args, 0, kMaxTokens)) gens.push_back(v);
        } else if (args.is("-pg")) {
            const auto pg = int_list(args, 0, kMaxTokens);
            if (pg.size() != 2 || pg[0] + pg[1] == 0)
                throw UsageError("-pg wants two numbers P,G (prompt and generated tokens), e.g. -pg 512,128");
            pairs.emplace_back(pg[0], pg[1]);
        } else if (args.is("-d", "--n-depth")) {
            for (int v : int_list(args, 0, kMaxTokens)) depths.push_back(v);
        } else if (args.is("-s", "--seqs")) {
            for (int v : int_list(args, 1, 256)) seqs.push_back(v);
        } else if (args.is("-r", "--repetitions")) {
            reps = static_cast<int>(args.int_value(1, 100000));
        } else if (args.is("-t", "--threads")) {
            for (int v : int_list(args, 1, 1024)) threads.push_back(v);
        } else if (args.is("--device")) {
            const std::string v = args.value();
            if (v != "cpu" && v != "cuda") throw UsageError("--device must be cpu or cuda, got '" + v + "'");
            device = v == "cuda" ? Device::Cuda : Device::Cpu;
        } else if (args.is("-o", "--output")) {
            const std::string v = args.value();
            if (v == "md")
                format = BenchFormat::Markdown;
            else if (v == "csv")
                format = BenchFormat::Csv;
            else if (v == "json")
                format = BenchFormat::Json;
            else if (v == "jsonl")
                format = BenchFormat::Jsonl;
            else
                throw UsageError("-o must be md, csv, json or jsonl, got '" + v + "'");
        } else if (args.is("--no-warmup")) {
            warmup = false;
        } else if (args.is("--no-bandwidth")) {
            probe = false;
        } else if (args.is("--all-types")) {
            all_types = true;
        } else if (args.is("--types")) {
            std::stringstream ss(args.value());
            for (std::string t; std::getline(ss, t, ',');) types.push_back(t);
            types_given = true;
        } else if (args.is("--dir")) {
            synth.dir = args.value();
        } else if (args.is("--vocab")) {
            synth.vocab = args.value();
            synth.default_vocab = synth.vocab == kDefaultVocab;
        } else if (args.is("--perplexity")) {
            quality.text_path = args.value();
        } else if (args.is("--kl-base")) {
            quality.base_path = args.value();
        } else if (args.is("--ctx", "-c")) {
            quality.n_ctx = static_cast<int>(args.int_value(4, 1 << 24));
            ctx_given = true;
        } else if (args.is("--chunks")) {
            quality.max_chunks = static_cast<int>(args.int_value(1, 1 << 30));
            chunks_given = true;
        } else if (args.is("--synth-preset")) {  // not in --help: tests use the tiny preset
            synth.preset = args.value();
        } else if (args.is("--synth-n-vocab")) {  // not in --help: the size of the --vocab none vocabulary
            synth.n_vocab = static_cast<uint32_t>(args.int_value(259, 1 << 20));
        } else if (args.is("--probe-mib")) {  // not in --help: a small probe buffer for tests
            probe_bytes = uint64_t(args.int_value(1, 1 << 20)) << 20;
        } else {
            args.unknown();
        }
    }
    if (types_given && !all_types) throw UsageError("--types goes with --all-types");
    if (all_types && !models.empty()) throw UsageError("give either -m MODEL or --all-types, not both");
    if (!all_types && models.empty()) throw UsageError("missing -m MODEL or --all-types (see --help)");
    const bool measure_quality = !quality.text_path.empty();
    if (!measure_quality && (ctx_given || chunks_given || !quality.base_path.empty()))
        throw UsageError(std::string(ctx_given      ? "--ctx"
                                     : chunks_given ? "--chunks"
                                                    : "--kl-base") +
                         " goes with --perplexity TEXT");
    if (measure_quality && all_types)
        throw UsageError(
            "--perplexity needs real models (-m FILE ...); the --all-types models have random weights");
    if (prompts.empty()) prompts = {512};
    if (gens.empty()) gens = {128};
    if (depths.empty()) depths = {0};
    if (seqs.empty()) seqs = {1};
    if (threads.empty()) threads = {static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};

    std::vector<BenchTest> tests_per_depth;
    for (int p : prompts)
        if (p > 0) tests_per_depth.push_back({p, 0, 0});
    for (int n : gens)
        if (n > 0)
            for (int s : seqs) tests_per_depth.push_back({0, n, 0, s});
    for (auto [p, n] : pairs) tests_per_depth.push_back({p, n, 0});
    if (tests_per_depth.empty()) throw UsageError("no test to run: -p and -n are both 0 and no -pg given");
    std::vector<BenchTest> tests;
    for (int d : depths)
        for (BenchTest t : tests_per_depth) {
            t.n_depth = d;
            tests.push_back(t);
        }

    if (all_types) {
        if (!types_given) types = all_bench_types();
        for (const auto& t : types) models.push_back(ensure_bench_model(synth, t, false));
    }

    // Every model is checked before anything is measured.
    int max_tokens = 0;
    int max_seqs = 1;
    for (const auto& t : tests) {
        max_tokens = std::max(max_tokens, t.n_depth + t.n_prompt + t.n_gen);
        max_seqs = std::max(max_seqs, t.n_seqs);
    }
    std::vector<BenchModelInfo> infos;
    for (const auto& path : models) {
        infos.push_back(read_bench_model_info(path));
        if (infos.back().n_ctx_train > 0 && max_tokens > infos.back().n_ctx_train)
            throw UsageError(path + ": the tests need a context of " + std::to_string(max_tokens) +
                             " tokens (depth + prompt + generated), the model's is " +
                             std::to_string(infos.back().n_ctx_train));
    }

    // Quality first: a bad text or a mismatched base fails before minutes of speed tests.
    std::map<std::string, BenchQuality> qualities;
    if (measure_quality) {
        quality.device = device;
        quality.threads = *std::max_element(threads.begin(), threads.end());
        qualities = measure_bench_quality(infos, quality, progress_line);
    }

    BenchEnvironment env;
    env.cpu_info = cpu_model_name();
    env.cpu_kernels = device == Device::Cpu ? cpu_kernel_path() : "cuda";
    progress_line(device == Device::Cpu ? "CPU kernels: " + env.cpu_kernels : "backend: CUDA");
    bool has_generation = false;
    for (const auto& t : tests) has_generation = has_generation || (t.n_gen > 0 && t.n_prompt == 0);
    if (probe && has_generation && device == Device::Cuda && cuda::query_devices().count > 0) {
        env.gpu_name = cuda::query_devices().name;
        progress_line("measuring the GPU's memory read bandwidth");
        const cuda::ReadBandwidth bw = cuda::measure_read_bandwidth();
        if (bw.gb_per_s > 0) {
            env.mem_read_gbps = bw.gb_per_s;
            env.probe_bytes = bw.buffer_bytes;
            char line[160];
            std::snprintf(line, sizeof line, "GPU memory read bandwidth %.0f GB/s (%s buffer)", bw.gb_per_s,
                          format_model_size(bw.buffer_bytes).c_str());
            progress_line(line);
        } else {
            progress_line("GPU read probe: " + bw.error + " (no % bw)");
        }
    }
    if (probe && has_generation && device == Device::Cpu) {
        progress_line("measuring the memory read bandwidth");
        const BandwidthResult bw = measure_read_bandwidth(0, probe_bytes);
        env.mem_read_gbps = bw.gb_per_s;
        env.probe_threads = bw.threads;
        env.probe_bytes = bw.buffer_bytes;
        char line[160];
        std::snprintf(line, sizeof line, "memory read bandwidth %.2f GB/s (%d threads, %s buffer)",
                      bw.gb_per_s, bw.threads, format_model_size(bw.buffer_bytes).c_str());
        progress_line(line);
    }

    const size_t total = models.size() * threads.size() * tests.size();
    size_t index = 0;
    BenchPrinter printer(format, env);
    std::vector<BenchResult> results;
    bool begun = false;  // the header comes once the first model has loaded: a load error prints no table
    for (const auto& info : infos) {
        for (int t : threads) {
            // The memory target counts this model alone: not the probe's buffer, nor an earlier instance.
            const bool peak_reset = reset_peak_rss();
            BenchInstance instance(info, device, t, max_tokens);
            char line[200];
            std::snprintf(line, sizeof line, "loaded %s in %.2f s (%d threads)", info.path.c_str(),
                          instance.load_seconds(), t);
            progress_line(line);
            if (!std::exchange(begun, true)) printer.begin();
            for (const auto& test : tests) {
                ++index;
                const std::string where = "[" + std::to_string(index) + "/" + std::to_string(total) + "] " +
                                          info.model_type + " " + info.file_type + ", " + std::to_string(t) +
                                          " threads, " + test.name() + ": ";
                BenchRunOptions options;
                options.repetitions = reps;
                options.warmup = warmup;
                options.progress = [&](const std::string& what) { progress_line(where + what); };
                results.push_back(instance.run(test, options));
                if (measure_quality) results.back().quality = qualities.at(info.path);
                printer.row(results.back());
            }
            // The memory target: the mapped weights plus the KV cache, and little else.
            if (device == Device::Cpu) {
                const double gib = double(1u << 30), rss = double(peak_rss_bytes());
                const double kv = double(info.kv_bytes_per_token) * max_tokens * max_seqs,
                             budget = double(info.size_bytes) + kv;
                std::snprintf(line, sizeof line,
                              "peak RSS %.2f GiB = %.1f%% of file %.2f GiB + KV cache %.3f GiB (%d tokens)%s",
                              rss / gib, 100.0 * rss / budget, double(info.size_bytes) / gib, kv / gib,
                              max_tokens * max_seqs,
                              peak_reset ? "" : " (since the start: with the read probe's buffer)");
                progress_line(line);
            }
        }
    }
    printer.end();
    if ((all_types || measure_quality) && format == BenchFormat::Markdown) print_type_table(results);
    return 0;
}

}  // namespace kinfer::cli
