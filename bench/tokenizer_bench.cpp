// Tokenizer throughput (MB/s of input text) on large texts, with the Mistral v0.3 vocabulary:
//   ./build/bin/kinfer_bench --benchmark_filter=Tokenize
// Texts: our multilingual test corpus (CJK, Cyrillic, emoji, code, whitespace runs) and the GPL-3 text
// (English prose), each repeated to 1 MiB. scripts/dev/llama_tokenize_bench.cpp measures llama.cpp on the
// same texts. Vocabulary: $KINFER_DATA_DIR/vocab/mistral-v0.3-vocab.gguf (default: data/ in the source tree).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "gguf/gguf_file.hpp"
#include "tokenizer/streaming_decoder.hpp"
#include "tokenizer/tokenizer.hpp"

namespace fs = std::filesystem;
using kinfer::tokenizer::Tokenizer;

namespace {

const fs::path kSourceDir = fs::path(__FILE__).parent_path().parent_path();
constexpr size_t kTextBytes = 1 << 20;

struct Loaded {
    std::unique_ptr<kinfer::gguf::GgufFile> file;
    std::unique_ptr<Tokenizer> tok;
};

const Tokenizer* mistral() {
    static const Loaded l = [] {
        Loaded r;
        const char* env = std::getenv("KINFER_DATA_DIR");
        const fs::path shared = env ? fs::path(env) : kSourceDir / "data";
        const fs::path vocab = shared / "vocab" / "mistral-v0.3-vocab.gguf";
        if (!fs::exists(vocab)) return r;
        r.file = std::make_unique<kinfer::gguf::GgufFile>(kinfer::gguf::GgufFile::open(vocab.string()));
        r.tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(*r.file));
        return r;
    }();
    return l.tok.get();
}

// `path`'s content repeated to at least kTextBytes (the same rule as the llama.cpp reference program).
std::string repeated(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string unit = ss.str();
    std::string text;
    if (unit.empty()) return text;
    while (text.size() < kTextBytes) text += unit;
    return text;
}

const std::string& corpus_text() {
    static const std::string t = repeated(kSourceDir / "tests/fixtures/tokenizer/corpus.inp");
    return t;
}
const std::string& english_text() {
    static const std::string t = repeated("/usr/share/common-licenses/GPL-3");
    return t;
}

void run_encode(benchmark::State& state, const std::string& text) {
    const Tokenizer* tok = mistral();
    if (!tok || text.empty()) {
        state.SkipWithError("vocabulary or text not found");
        return;
    }
    std::vector<int32_t> ids;
    for (auto _ : state) {
        ids.clear();
        tok->encode(text, {true, false, false}, ids);
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
    state.counters["tokens"] = double(ids.size());
}

// The same text line by line: many short calls, as a chat front end makes them.
void run_encode_lines(benchmark::State& state, const std::string& text) {
    const Tokenizer* tok = mistral();
    if (!tok || text.empty()) {
        state.SkipWithError("vocabulary or text not found");
        return;
    }
    std::vector<std::string_view> lines;
    for (size_t pos = 0; pos < text.size();) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        lines.emplace_back(text.data() + pos, nl - pos);
        pos = nl + 1;
    }
    std::vector<int32_t> ids;
    for (auto _ : state) {
        for (std::string_view line : lines) {
            ids.clear();
            tok->encode(line, {false, false, false}, ids);
            benchmark::DoNotOptimize(ids.data());
        }
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}

void BM_TokenizeCorpus1MiB(benchmark::State& s) {
    run_encode(s, corpus_text());
}
void BM_TokenizeEnglish1MiB(benchmark::State& s) {
    run_encode(s, english_text());
}
void BM_TokenizeCorpusLines(benchmark::State& s) {
    run_encode_lines(s, corpus_text());
}
void BM_TokenizeEnglishLines(benchmark::State& s) {
    run_encode_lines(s, english_text());
}

void BM_StreamingDecodeCorpus(benchmark::State& state) {
    const Tokenizer* tok = mistral();
    if (!tok || corpus_text().empty()) {
        state.SkipWithError("vocabulary or text not found");
        return;
    }
    const std::vector<int32_t> ids = tok->encode(corpus_text(), false, false);
    std::string out;
    for (auto _ : state) {
        kinfer::tokenizer::StreamingDecoder sd(*tok);
        out.clear();
        for (int32_t id : ids) sd.push(id, out);
        sd.finish(out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(ids.size()));
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(out.size()));
}

}  // namespace

BENCHMARK(BM_TokenizeCorpus1MiB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TokenizeEnglish1MiB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TokenizeCorpusLines)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TokenizeEnglishLines)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StreamingDecodeCorpus)->Unit(benchmark::kMillisecond);
