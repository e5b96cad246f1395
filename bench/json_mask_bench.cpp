// JSON mode's cost per sampled token: JsonMask::apply over the Mistral v0.3 vocabulary (32 768 tokens) in
// the grammar's typical states, beside the step it masks (one token of Mistral-7B: ~100 ms on two CPU
// cores, ~2 ms on an H200):
//   ./build/bin/kinfer_bench --benchmark_filter=JsonMask
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/json_mask.hpp"
#include "gguf/gguf_file.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {

namespace fs = std::filesystem;

const kinfer::engine::JsonMask* mask() {
    static const std::unique_ptr<kinfer::engine::JsonMask> m =
        []() -> std::unique_ptr<kinfer::engine::JsonMask> {
        const char* env = std::getenv("KINFER_DATA_DIR");
        const fs::path data = env ? fs::path(env) : fs::path(__FILE__).parent_path().parent_path() / "data";
        const fs::path vocab = data / "vocab" / "mistral-v0.3-vocab.gguf";
        if (!fs::exists(vocab)) return nullptr;
        const auto file = kinfer::gguf::GgufFile::open(vocab.string());
        return std::make_unique<kinfer::engine::JsonMask>(kinfer::tokenizer::Tokenizer::from_gguf(file));
    }();
    return m.get();
}

// state 0: inside a string value; 1: after ':' (a value next); 2: inside a number; 3: after a value.
void BM_JsonMask(benchmark::State& state) {
    const kinfer::engine::JsonMask* m = mask();
    if (!m) return state.SkipWithError("data/vocab/mistral-v0.3-vocab.gguf is missing");
    static const char* const prefixes[] = {R"({"name": "kin)", R"({"name":)", R"({"n": 12)",
                                           R"({"n": [1, "x"])"};
    kinfer::engine::JsonPrefix p;
    p.push(prefixes[state.range(0)]);
    std::vector<float> logits(32768, 0.0f);
    for (auto _ : state) {
        benchmark::DoNotOptimize(m->apply(p, logits));
        benchmark::ClobberMemory();
    }
    state.SetLabel(prefixes[state.range(0)]);
}
BENCHMARK(BM_JsonMask)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond);

}  // namespace
