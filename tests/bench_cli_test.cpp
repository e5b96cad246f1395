// `infer bench`: its statistics and formats (tools/infer/bench_report.cpp, compiled into the tests), and the
// real binary on tiny models: tables, JSON fields, the per-type cache of --all-types, usage errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/infer_cli.hpp"
#include "tests/tiny_llama.hpp"
#include "tools/infer/bench_report.hpp"

using namespace kinfer_test;
using kinfer::cli::BenchResult;
using kinfer::cli::BenchTest;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

std::vector<std::string> table_rows(const std::string& out, const std::string& needle) {
    std::vector<std::string> rows;
    for (const auto& l : lines_of(out))
        if (l.rfind("| ", 0) == 0 && l.find(needle) != std::string::npos) rows.push_back(l);
    return rows;
}

// The cells of a markdown table row, trimmed.
std::vector<std::string> cells(const std::string& row) {
    std::vector<std::string> out;
    std::istringstream in(row.substr(1));
    for (std::string c; std::getline(in, c, '|');) {
        const size_t b = c.find_first_not_of(' '), e = c.find_last_not_of(' ');
        out.push_back(b == std::string::npos ? "" : c.substr(b, e - b + 1));
    }
    return out;
}

// A small f32 model (no general.file_type: its type is named after its tensors).
const std::string& tiny_model() {
    static ScratchDir dir("bench_model");
    static const std::string path = [] {
        kinfer::test::TinyLlamaSpec spec;
        spec.n_ctx_train = 64;
        const std::string p = (dir / "tiny.gguf").string();
        kinfer::test::write_tiny_llama(spec, p);
        return p;
    }();
    return path;
}

}  // namespace

TEST_CASE("bench report: test names, statistics and sizes as llama-bench writes them") {
    CHECK(BenchTest{512, 0, 0}.name() == "pp512");
    CHECK(BenchTest{0, 128, 0}.name() == "tg128");
    CHECK(BenchTest{512, 128, 0}.name() == "pp512+tg128");
    CHECK(BenchTest{0, 128, 4096}.name() == "tg128 @ d4096");
    CHECK(BenchTest{0, 128, 4096, 8}.name() == "tg128 x8 @ d4096");

    BenchResult r;
    r.test = {0, 100, 0};
    r.model.bytes_per_token = 4'000'000'000;
    r.samples_ns = {1e9, 2e9, 4e9};  // 100, 50, 25 tokens/s
    CHECK(r.samples_ts() == std::vector<double>{100, 50, 25});
    CHECK(r.avg_ts() == doctest::Approx(175.0 / 3));
    // sample standard deviation (n - 1): sqrt(((100-58.33)^2 + (50-58.33)^2 + (25-58.33)^2) / 2) = 38.19
    CHECK(r.stddev_ts() == doctest::Approx(38.188).epsilon(1e-4));
    CHECK(r.avg_ns() == doctest::Approx(7e9 / 3));
    CHECK(r.weights_gbps() == doctest::Approx(4.0 * 175.0 / 3));
    CHECK(r.bandwidth_pct(466.6666) == doctest::Approx(50).epsilon(1e-4));
    CHECK(r.bandwidth_pct(0) < 0);  // not measured
    // 4 sequences together: 4x the tokens per second, the weights read once per step.
    r.test = {0, 100, 0, 4};
    CHECK(r.samples_ts() == std::vector<double>{400, 200, 100});
    CHECK(r.weights_gbps() == doctest::Approx(4.0 * 175.0 / 3));
    r.test = {512, 0, 0};
    CHECK(r.weights_gbps() < 0);  // prompt processing is not bandwidth-bound: no GB/s
    r.samples_ns = {5e8};
    CHECK(r.stddev_ts() == 0);

    CHECK(kinfer::cli::format_model_size(4'368'439'296ull) == "4.07 GiB");
    CHECK(kinfer::cli::format_model_size(13'496'832) == "12.87 MiB");
    CHECK(kinfer::cli::format_params(7'248'023'552ull) == "7.25 B");
    CHECK(kinfer::cli::format_params(19'925'248) == "19.93 M");
    CHECK(kinfer::cli::model_type_label("llama", 7'248'023'552ull) == "llama 7B");
    CHECK(kinfer::cli::model_type_label("llama", 360'000'000) == "llama 360M");
}

TEST_CASE("infer bench: a markdown table with one row per thread count and test, progress on stderr") {
    const CliResult r = run_infer_cli("bench -m " + tiny_model() + " -p 8 -n 3 -r 2 -t 1,2 --probe-mib 16");
    REQUIRE_MESSAGE(r.status == 0, r.err);
    const auto header = table_rows(r.out, "model");
    REQUIRE(header.size() == 1);
    CHECK(cells(header[0]) == std::vector<std::string>{"model", "type", "size", "params", "backend",
                                                       "threads", "test", "t/s", "GB/s", "% bw"});
    const auto pp = table_rows(r.out, " pp8 "), tg = table_rows(r.out, " tg3 ");
    REQUIRE(pp.size() == 2);
    REQUIRE(tg.size() == 2);
    for (const auto& row : pp) {
        const auto c = cells(row);
        CHECK(c[1] == "f32");
        CHECK(c[4] == "CPU");
        CHECK(c[7].find(" ± ") != std::string::npos);
        CHECK(std::stod(c[7]) > 0);
        CHECK(c[8].empty());  // no GB/s for prompt processing
    }
    CHECK(cells(tg[0])[5] == "1");
    CHECK(cells(tg[1])[5] == "2");
    for (const auto& row : tg) {
        CHECK(std::stod(cells(row)[8]) > 0);  // GB/s
        CHECK(std::stod(cells(row)[9]) > 0);  // % bw
    }
    CHECK(r.out.find("kernels: ") != std::string::npos);
    CHECK(r.out.find("memory read bandwidth: ") != std::string::npos);
    CHECK(r.err.find("rep 2/2") != std::string::npos);
    CHECK(r.err.find("CPU kernels: ") != std::string::npos);
    CHECK(r.out.find("rep 2/2") == std::string::npos);  // progress never goes to stdout
}

// The memory target's line counts the model alone: the read probe's buffer (here 384 MiB, freed before the
// model loads) is not part of its peak, which stays near the peak of a run without the probe (the process's
// own baseline, larger under the sanitizers, is in both).
TEST_CASE("infer bench: the peak RSS line leaves out the read probe's buffer") {
    const auto peak_gib = [](const std::string& flags, bool& reset) {
        const CliResult r = run_infer_cli("bench -m " + tiny_model() + " -p 0 -n 2 -r 1 -t 1 " + flags);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        const size_t at = r.err.find("peak RSS ");
        REQUIRE(at != std::string::npos);
        reset = r.err.find("since the start", at) == std::string::npos;
        return std::stod(r.err.substr(at + 9));
    };
    bool reset = false, reset_without = false;
    const double with_probe = peak_gib("--probe-mib 384", reset),
                 without = peak_gib("--no-bandwidth", reset_without);
    MESSAGE("peak RSS with the probe " << with_probe << " GiB, without " << without);
    if (!reset) {
        MESSAGE("no /proc/self/clear_refs here: the peak includes the probe");
        CHECK(with_probe >= 0.375);
    } else {
        CHECK(with_probe < without + 0.2);
    }
}

TEST_CASE("infer bench: json, jsonl and csv carry llama-bench's fields") {
    const std::string base = "bench -m " + tiny_model() + " -p 4 -n 2 -pg 4,2 -d 0,3 -r 3 -t 1 --no-warmup ";
    const CliResult json = run_infer_cli(base + "-o json --no-bandwidth");
    REQUIRE_MESSAGE(json.status == 0, json.err);
    const auto j = nlohmann::json::parse(json.out);
    REQUIRE(j.is_array());
    REQUIRE(j.size() == 6);  // 2 depths x (pp, tg, pg)
    std::vector<std::string> names;
    for (const auto& o : j) {
        names.push_back(o["test"]);
        CHECK(o["samples_ns"].size() == 3);
        CHECK(o["samples_ts"].size() == 3);
        CHECK(o["avg_ts"].get<double>() > 0);
        CHECK(o["n_threads"] == 1);
        CHECK(o["model_n_params"].get<uint64_t>() > 0);
        CHECK(o["mem_read_gbps"].is_null());
        CHECK(o["cpu_kernels"].get<std::string>().size() > 0);
        const bool tg = o["n_prompt"] == 0;
        CHECK(o["weights_gbps"].is_null() == !tg);
    }
    CHECK(names == std::vector<std::string>{"pp4", "tg2", "pp4+tg2", "pp4 @ d3", "tg2 @ d3", "pp4+tg2 @ d3"});
    CHECK(j[5]["n_prompt"] == 4);
    CHECK(j[5]["n_gen"] == 2);
    CHECK(j[5]["n_depth"] == 3);

    const CliResult jsonl = run_infer_cli(base + "-o jsonl --no-bandwidth");
    REQUIRE(jsonl.status == 0);
    const auto jl = lines_of(jsonl.out);
    REQUIRE(jl.size() == 6);
    for (const auto& line : jl) CHECK(nlohmann::json::parse(line)["samples_ns"].size() == 3);

    const CliResult csv = run_infer_cli(base + "-o csv --probe-mib 16");
    REQUIRE(csv.status == 0);
    const auto rows = lines_of(csv.out);
    REQUIRE(rows.size() == 7);
    CHECK(rows[0].find("model_filename,model_type,file_type,model_size,model_n_params,n_threads") !=
          std::string::npos);
    CHECK(rows[0].find("avg_ts,stddev_ts") != std::string::npos);
    CHECK(rows[2].find("\"tg2\"") != std::string::npos);
}

TEST_CASE("infer bench --all-types: synthesises each type once into --dir, then reuses it") {
    ScratchDir dir("bench_types");
    const std::string cmd =
        "bench --all-types --types Q4_0,Q8_0 --synth-preset tiny --vocab none "
        "--synth-n-vocab 300 --dir " +
        shell_quote(dir.path()) + " -p 8 -n 2 -r 1 -t 1 --no-bandwidth";
    const CliResult first = run_infer_cli(cmd);
    REQUIRE_MESSAGE(first.status == 0, first.err);
    CHECK(std::filesystem::exists(dir / "tiny-bytes300-Q4_0.gguf"));
    CHECK(std::filesystem::exists(dir / "tiny-bytes300-Q8_0.gguf"));
    CHECK(first.err.find("synthesising") != std::string::npos);
    CHECK(table_rows(first.out, "| Q4_0 ").size() == 3);  // pp8, tg2 and the summary row
    const auto summary = table_rows(first.out, "bits/weight");
    REQUIRE(summary.size() == 1);
    CHECK(cells(summary[0]) == std::vector<std::string>{"type", "size", "bits/weight", "threads", "pp8 t/s",
                                                        "tg2 t/s", "tg2 GB/s"});

    const auto mtime = std::filesystem::last_write_time(dir / "tiny-bytes300-Q4_0.gguf");
    const CliResult again = run_infer_cli(cmd);
    REQUIRE_MESSAGE(again.status == 0, again.err);
    CHECK(again.err.find("synthesising") == std::string::npos);
    CHECK(again.err.find("using ") != std::string::npos);
    CHECK(std::filesystem::last_write_time(dir / "tiny-bytes300-Q4_0.gguf") == mtime);
    // No partial files left behind.
    int n_files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++n_files;
    CHECK(n_files == 2);
}

TEST_CASE("infer bench --seqs: tg tests of several sequences decoded together, aggregate tokens/s") {
    const CliResult r = run_infer_cli("bench -m " + tiny_model() +
                                      " -p 4 -n 3 -s 1,3 -d 0,2 -r 2 -t 1 -o json --no-bandwidth");
    REQUIRE_MESSAGE(r.status == 0, r.err);
    const auto j = nlohmann::json::parse(r.out);
    REQUIRE(j.size() == 6);  // 2 depths x (pp4, tg3, tg3 x3): --seqs applies to tg tests only
    std::vector<std::string> names;
    for (const auto& e : j) names.push_back(e["test"].get<std::string>());
    CHECK(names == std::vector<std::string>{"pp4", "tg3", "tg3 x3", "pp4 @ d2", "tg3 @ d2", "tg3 x3 @ d2"});
    CHECK(j[2]["n_seqs"] == 3);
    CHECK(j[1]["n_seqs"] == 1);
    CHECK(j[2]["avg_ts"].get<double>() > 0);
    const CliResult bad = run_infer_cli("bench -m " + tiny_model() + " -s 0");
    CHECK(bad.status == 2);
}

TEST_CASE("infer bench: --help lists the flags and every type of --all-types") {
    const CliResult r = run_infer_cli("bench --help");
    REQUIRE(r.status == 0);
    for (const char* s : {"-pg P,G", "-d, --n-depth", "-s, --seqs", "-r, --repetitions", "-t, --threads",
                          "--device", "md (a table", "jsonl", "--all-types", "--dir DIR", "--types LIST",
                          "Q2_K", "Q3_K_M", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16"})
        CHECK_MESSAGE(r.out.find(s) != std::string::npos, s);
    CHECK(run_infer_cli("--help").out.find("bench") != std::string::npos);
}

TEST_CASE("infer bench: usage errors are one line and exit status 2") {
    const std::string m = " -m " + tiny_model();
    struct Case {
        std::string args, message;
    };
    const std::vector<Case> cases = {
        {"bench", "missing -m MODEL or --all-types"},
        {"bench" + m + " -o xml", "-o must be md, csv, json or jsonl"},
        {"bench" + m + " -pg 512", "-pg wants two numbers"},
        {"bench" + m + " -p 8,x", "comma-separated list of integers"},
        {"bench" + m + " -t 0", "values must be in [1, 1024]"},
        {"bench" + m + " -p 0 -n 0", "no test to run"},
        {"bench" + m + " -p 0 -n 0 -pg 60,8", "need a context of 68 tokens"},
        {"bench" + m + " --types Q4_0", "--types goes with --all-types"},
        {"bench" + m + " --all-types", "either -m MODEL or --all-types"},
        {"bench --all-types --types Q9_9 --dir /nonexistent", "unknown type 'Q9_9'"},
        {"bench" + m + " --device gpu", "--device must be cpu or cuda"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.args);
        const CliResult r = run_infer_cli(c.args);
        CHECK(r.status == 2);
        CHECK(r.out.empty());
        CHECK_MESSAGE(r.err.find(c.message) != std::string::npos, r.err);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
    const CliResult missing = run_infer_cli("bench -m /nonexistent/model.gguf");
    CHECK(missing.status == 1);
    CHECK(missing.err.find("/nonexistent/model.gguf") != std::string::npos);
}
