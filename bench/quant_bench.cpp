// Throughput of the reference (de)quantizers per block format, in MB of float32 data per second:
//   ./build/bin/kinfer_bench --benchmark_filter='Quant|Dequant'
// BM_QuantizeRow / BM_DequantizeRow: one thread, the scalar reference row functions.
// BM_QuantizeRows / BM_DequantizeRows: the OpenMP drivers on all cores (OMP_NUM_THREADS to change).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "gguf/ggml_type.hpp"
#include "filetools/quantize_rows.hpp"
#include "kernels/reference/type_kernels.hpp"

namespace {

using kinfer::GgmlType;

constexpr GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                               GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                               GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K};

std::vector<float> weights(int64_t n) {
    std::mt19937 rng(42);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = dist(rng);
    return x;
}

const kinfer::TypeTraits& traits_of(const benchmark::State& state) {
    return kinfer::type_traits(kTypes[state.range(0)]);
}

void BM_QuantizeRow(benchmark::State& state) {
    const auto& t = traits_of(state);
    const int64_t n = 4096;
    const std::vector<float> x = weights(n);
    std::vector<uint8_t> q(kinfer::row_bytes(t, n));
    for (auto _ : state) {
        kinfer::ref::quantize_fn(t)(x.data(), q.data(), n);
        benchmark::DoNotOptimize(q.data());
    }
    state.SetLabel(t.name);
    state.SetBytesProcessed(state.iterations() * n * static_cast<int64_t>(sizeof(float)));
}

void BM_DequantizeRow(benchmark::State& state) {
    const auto& t = traits_of(state);
    const int64_t n = 4096;
    const std::vector<float> x = weights(n);
    std::vector<uint8_t> q(kinfer::row_bytes(t, n));
    kinfer::ref::quantize_fn(t)(x.data(), q.data(), n);
    std::vector<float> y(static_cast<size_t>(n));
    for (auto _ : state) {
        kinfer::ref::dequantize_fn(t)(q.data(), y.data(), n);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetLabel(t.name);
    state.SetBytesProcessed(state.iterations() * n * static_cast<int64_t>(sizeof(float)));
}

// A 4096 x 1024 matrix (16 MB of floats), like one projection of a small model.
constexpr int64_t kRows = 1024, kRowLen = 4096;

void BM_QuantizeRows(benchmark::State& state) {
    const auto& t = traits_of(state);
    const std::vector<float> x = weights(kRows * kRowLen);
    std::vector<uint8_t> q(kinfer::row_bytes(t, kRows * kRowLen));
    for (auto _ : state) {
        kinfer::quantize_rows(t, x.data(), q.data(), kRows, kRowLen);
        benchmark::DoNotOptimize(q.data());
    }
    state.SetLabel(t.name);
    state.SetBytesProcessed(state.iterations() * kRows * kRowLen * static_cast<int64_t>(sizeof(float)));
}

void BM_DequantizeRows(benchmark::State& state) {
    const auto& t = traits_of(state);
    const std::vector<float> x = weights(kRows * kRowLen);
    std::vector<uint8_t> q(kinfer::row_bytes(t, kRows * kRowLen));
    kinfer::quantize_rows(t, x.data(), q.data(), kRows, kRowLen);
    std::vector<float> y(x.size());
    for (auto _ : state) {
        kinfer::dequantize_rows(t, q.data(), y.data(), kRows, kRowLen);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetLabel(t.name);
    state.SetBytesProcessed(state.iterations() * kRows * kRowLen * static_cast<int64_t>(sizeof(float)));
}

constexpr int64_t kNumTypes = static_cast<int64_t>(std::size(kTypes));

}  // namespace

BENCHMARK(BM_QuantizeRow)->DenseRange(0, kNumTypes - 1);
BENCHMARK(BM_DequantizeRow)->DenseRange(0, kNumTypes - 1);
BENCHMARK(BM_QuantizeRows)->DenseRange(0, kNumTypes - 1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DequantizeRows)->DenseRange(0, kNumTypes - 1)->UseRealTime()->Unit(benchmark::kMillisecond);
