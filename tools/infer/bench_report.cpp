#include "tools/infer/bench_report.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

namespace kinfer::cli {
namespace {

double mean(const std::vector<double>& v) {
    return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

// Sample standard deviation (n - 1), as llama-bench reports it; 0 for a single sample.
double stddev(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size() - 1));
}

std::string fixed(double x, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
    return buf;
}

// The fields of one result, in llama-bench's names where it has the same thing.
nlohmann::ordered_json fields(const BenchResult& r, const BenchEnvironment& env) {
    nlohmann::ordered_json j;
    j["cpu_info"] = env.cpu_info;
    j["cpu_kernels"] = env.cpu_kernels;
    j["backends"] = r.backend;
    j["model_filename"] = r.model.path;
    j["model_type"] = r.model.model_type;
    j["file_type"] = r.model.file_type;
    j["model_size"] = r.model.size_bytes;
    j["model_n_params"] = r.model.n_params;
    j["n_threads"] = r.threads;
    j["n_prompt"] = r.test.n_prompt;
    j["n_gen"] = r.test.n_gen;
    j["n_depth"] = r.test.n_depth;
    j["n_seqs"] = r.test.n_seqs;
    j["test"] = r.test.name();
    j["avg_ns"] = uint64_t(std::llround(r.avg_ns()));
    j["stddev_ns"] = uint64_t(std::llround(r.stddev_ns()));
    j["avg_ts"] = r.avg_ts();
    j["stddev_ts"] = r.stddev_ts();
    const double gbps = r.weights_gbps(), pct = r.bandwidth_pct(env.mem_read_gbps);
    j["weights_gbps"] = gbps >= 0 ? nlohmann::ordered_json(gbps) : nlohmann::ordered_json();
    j["mem_read_gbps"] =
        env.mem_read_gbps > 0 ? nlohmann::ordered_json(env.mem_read_gbps) : nlohmann::ordered_json();
    j["bandwidth_pct"] = pct >= 0 ? nlohmann::ordered_json(pct) : nlohmann::ordered_json();
    if (r.quality) {  // --perplexity; no llama-bench equivalent
        const BenchQuality& q = *r.quality;
        j["ppl"] = q.ppl;
        j["ppl_err"] = q.ppl_err;
        j["kld"] = q.kld;
        j["kld_err"] = q.kld_err;
        j["same_top_pct"] = 100.0 * q.same_top;
        j["kl_base"] = q.base_path;
        j["kl_base_type"] = q.base_type;
        j["ppl_text"] = q.text_path;
        j["ppl_ctx"] = q.n_ctx;
        j["ppl_chunks"] = q.n_chunk;
        j["ppl_tokens"] = q.n_tokens;
    }
    return j;
}

std::string csv_quote(const std::string& s) {
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

std::string csv_value(const nlohmann::ordered_json& v) {
    if (v.is_null()) return "";
    if (v.is_string()) return csv_quote(v.get<std::string>());
    return csv_quote(v.dump());
}

struct Column {
    const char* name;
    int width;
    bool left;  // text columns are left-aligned, numbers right-aligned
};
constexpr Column kColumns[] = {{"model", 30, true},   {"type", 8, true},    {"size", 10, false},
                               {"params", 10, false}, {"backend", 7, true}, {"threads", 7, false},
                               {"test", 15, false},   {"t/s", 20, false},   {"GB/s", 7, false},
                               {"% bw", 6, false}};

void md_line(FILE* out, const std::vector<std::string>& cells) {
    std::string line = "|";
    for (size_t i = 0; i < cells.size(); ++i) {
        const Column& c = kColumns[i];
        std::string cell = cells[i];
        // Width in characters, not bytes: "±" is two bytes of UTF-8.
        const int chars =
            int(std::count_if(cell.begin(), cell.end(), [](char ch) { return (ch & 0xC0) != 0x80; }));
        const int pad = c.width - chars;
        if (pad > 0) cell = c.left ? cell + std::string(pad, ' ') : std::string(pad, ' ') + cell;
        line += " " + cell + " |";
    }
    std::fprintf(out, "%s\n", line.c_str());
}

}  // namespace

std::string BenchTest::name() const {
    std::string n;
    if (n_prompt > 0) n = "pp" + std::to_string(n_prompt);
    if (n_gen > 0) n += (n.empty() ? "tg" : "+tg") + std::to_string(n_gen);
    if (n_seqs > 1) n += " x" + std::to_string(n_seqs);
    if (n_depth > 0) n += " @ d" + std::to_string(n_depth);
    return n;
}

double BenchResult::avg_ns() const {
    return mean(samples_ns);
}
double BenchResult::stddev_ns() const {
    return stddev(samples_ns);
}
std::vector<double> BenchResult::samples_ts() const {
    std::vector<double> ts;
    const double tokens = double(test.n_prompt + test.n_gen) * test.n_seqs;  // all sequences together
    for (double ns : samples_ns) ts.push_back(ns > 0 ? tokens * 1e9 / ns : 0.0);
    return ts;
}
double BenchResult::avg_ts() const {
    return mean(samples_ts());
}
double BenchResult::stddev_ts() const {
    return stddev(samples_ts());
}

double BenchResult::weights_gbps() const {
    if (test.n_prompt > 0 || test.n_gen == 0) return -1;
    return double(model.bytes_per_token) * avg_ts() / test.n_seqs / 1e9;  // one read per step
}

double BenchResult::bandwidth_pct(double mem_gbps) const {
    const double gbps = weights_gbps();
    return gbps >= 0 && mem_gbps > 0 ? 100.0 * gbps / mem_gbps : -1;
}

BenchPrinter::BenchPrinter(BenchFormat format, BenchEnvironment env, FILE* out)
    : format_(format), env_(std::move(env)), out_(out) {}

void BenchPrinter::begin() {
    if (format_ == BenchFormat::Markdown) {
        std::vector<std::string> names, rules;
        for (const Column& c : kColumns) {
            names.emplace_back(c.name);
            rules.push_back(std::string(size_t(c.width - 1), '-') + (c.left ? "-" : ":"));
        }
        md_line(out_, names);
        md_line(out_, rules);
    } else if (format_ == BenchFormat::Json) {
        std::fputs("[\n", out_);
    }
    std::fflush(out_);
}

void BenchPrinter::row(const BenchResult& r) {
    const double gbps = r.weights_gbps(), pct = r.bandwidth_pct(env_.mem_read_gbps);
    switch (format_) {
        case BenchFormat::Markdown:
            md_line(out_, {r.model.model_type, r.model.file_type, format_model_size(r.model.size_bytes),
                           format_params(r.model.n_params), r.backend, std::to_string(r.threads),
                           r.test.name(), fixed(r.avg_ts(), 2) + " ± " + fixed(r.stddev_ts(), 2),
                           gbps >= 0 ? fixed(gbps, 2) : "", pct >= 0 ? fixed(pct, 1) : ""});
            break;
        case BenchFormat::Csv: {
            const auto j = fields(r, env_);
            std::string line;
            if (rows_ == 0) {
                for (const auto& [key, value] : j.items()) line += (line.empty() ? "" : ",") + key;
                std::fprintf(out_, "%s\n", line.c_str());
                line.clear();
            }
            bool first = true;
            for (const auto& [key, value] : j.items()) {
                line += (first ? "" : ",") + csv_value(value);
                first = false;
            }
            std::fprintf(out_, "%s\n", line.c_str());
            break;
        }
        case BenchFormat::Json:
        case BenchFormat::Jsonl: {
            auto j = fields(r, env_);
            std::vector<uint64_t> ns;
            for (double x : r.samples_ns) ns.push_back(uint64_t(std::llround(x)));
            j["samples_ns"] = ns;
            j["samples_ts"] = r.samples_ts();
            if (format_ == BenchFormat::Json)
                std::fprintf(out_, "%s%s", rows_ ? ",\n" : "", j.dump(2).c_str());
            else
                std::fprintf(out_, "%s\n", j.dump().c_str());
            break;
        }
    }
    ++rows_;
    std::fflush(out_);
}

void BenchPrinter::end() {
    if (format_ == BenchFormat::Json) {
        std::fputs(rows_ ? "\n]\n" : "]\n", out_);
    } else if (format_ == BenchFormat::Markdown) {
        std::string bw = "not measured";
        if (env_.mem_read_gbps > 0)
            bw = fixed(env_.mem_read_gbps, 2) + " GB/s (read probe: " +
                 (env_.gpu_name.empty() ? std::to_string(env_.probe_threads) + " threads, " : "") +
                 format_model_size(env_.probe_bytes) + ")";
        if (env_.gpu_name.empty())
            std::fprintf(out_, "\nCPU: %s; kernels: %s; memory read bandwidth: %s\n", env_.cpu_info.c_str(),
                         env_.cpu_kernels.c_str(), bw.c_str());
        else
            std::fprintf(out_, "\nGPU: %s; kernels: %s; device memory read bandwidth: %s\n",
                         env_.gpu_name.c_str(), env_.cpu_kernels.c_str(), bw.c_str());
    }
    std::fflush(out_);
}

std::string format_model_size(uint64_t bytes) {
    const double b = double(bytes);
    return b < double(1ull << 30) ? fixed(b / double(1 << 20), 2) + " MiB"
                                  : fixed(b / double(1ull << 30), 2) + " GiB";
}

std::string format_params(uint64_t n) {
    return n < 1000000000ull ? fixed(double(n) / 1e6, 2) + " M" : fixed(double(n) / 1e9, 2) + " B";
}

std::string model_type_label(const std::string& arch, uint64_t n_params) {
    // Size classes as model names round them: 7.25e9 -> "7B", 1.1e9 -> "1B", 0.36e9 -> "360M".
    const double b = double(n_params) / 1e9;
    std::string size;
    if (b >= 1)
        size = std::to_string(std::llround(b)) + "B";
    else if (n_params >= 1000000)
        size = std::to_string(std::llround(double(n_params) / 1e6)) + "M";
    else
        size = std::to_string(std::llround(double(n_params) / 1e3)) + "K";
    return arch + " " + size;
}

}  // namespace kinfer::cli
