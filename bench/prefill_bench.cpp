// The prefill matrix product, 512 tokens x 4096 rows x 4096 inputs (a Mistral-7B projection over a pp512
// prompt), per type and instruction level, one thread, and at the best level the feed-forward shapes
// (shape 1: 14336 rows x 4096 inputs, gate/up; shape 2: 4096 rows x 14336 inputs, down);
// FLOP counter = 2 * tokens * rows * inputs / s:
//   ./build/bin/kinfer_bench --benchmark_filter=Prefill
// Level 0 is the portable path (dequantize to float + float dots), the others the 8-bit tiled kernels.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "gguf/ggml_type.hpp"
#include "kernels/cpu/prefill_table.hpp"
#include "kernels/cpu/quant_matmul.hpp"
#include "kernels/reference/type_kernels.hpp"

namespace {

using kinfer::GgmlType;

constexpr GgmlType kTypes[] = {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0,
                               GgmlType::Q5_K, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_1,
                               GgmlType::Q5_0, GgmlType::Q5_1};

void BM_PrefillMatmul(benchmark::State& state) {
    const GgmlType type = kTypes[state.range(0)];
    const auto isa = kinfer::cpu::Isa(state.range(1));
    const int64_t n_tokens = state.range(2), shape = state.range(3);
    const int64_t n_rows = shape == 1 ? 14336 : 4096, n_in = shape == 2 ? 14336 : 4096;
    if (isa > kinfer::cpu::detected_isa()) {
        state.SkipWithError("instruction level not supported by this CPU");
        return;
    }
    const kinfer::cpu::MatmulPath* fast = kinfer::cpu::prefill_path(type, isa);
    const kinfer::cpu::MatmulPath& path = fast ? *fast : kinfer::cpu::quant_kernels(type, isa).prefill;

    const kinfer::TypeTraits& tr = kinfer::type_traits(type);
    const size_t row_bytes = kinfer::row_bytes(tr, n_in);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> row(n_in);
    std::vector<uint8_t> w(row_bytes * n_rows);
    constexpr int64_t kDistinctRows = 64;  // quantizing is slow; the rest repeat these (speed is the same)
    for (int64_t r = 0; r < n_rows; ++r) {
        if (r < kDistinctRows) {
            for (float& v : row) v = normal(rng);
            kinfer::ref::quantize_fn(type)(row.data(), w.data() + r * row_bytes, n_in);
        } else {
            std::copy_n(w.data() + (r % kDistinctRows) * row_bytes, row_bytes, w.data() + r * row_bytes);
        }
    }
    std::vector<float> x(size_t(n_tokens * n_in));
    for (float& v : x) v = normal(rng);
    std::vector<uint8_t> act(path.act_bytes(n_in, n_tokens));
    std::vector<float> out(size_t(n_tokens * n_rows));
    for (auto _ : state) {
        path.prepare(x.data(), n_in, n_tokens, act.data());
        path.rows(w.data(), row_bytes, n_in, act.data(), n_tokens, 0, n_rows, out.data(), n_rows);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetLabel(std::string(tr.name) + " " + kinfer::cpu::isa_name(isa));
    state.counters["FLOP/s"] = benchmark::Counter(2.0 * double(n_tokens * n_rows * n_in) * state.iterations(),
                                                  benchmark::Counter::kIsRate);
}

void prefill_args(benchmark::internal::Benchmark* b) {
    for (int t = 0; t < int(std::size(kTypes)); ++t)
        for (int isa = 0; isa <= 2; ++isa) b->Args({t, isa, 512, 0});
    for (int t = 0; t < 4; ++t)  // Q4_K, Q6_K, Q8_0, Q4_0
        for (int shape : {1, 2}) b->Args({t, 2, 512, shape});
    // Short prompts, where unpacking the weight tile is paid over fewer tokens (prefill_min_tokens).
    for (int t = 0; t < int(std::size(kTypes)); ++t)
        for (int isa = 1; isa <= 2; ++isa)
            for (int tokens : {8, 16, 32, 64}) b->Args({t, isa, tokens, 0});
}

BENCHMARK(BM_PrefillMatmul)->Apply(prefill_args)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
