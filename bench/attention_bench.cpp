// CPU attention (kernels/cpu/attention.cpp) for one decoded token at Mistral-7B's shape (32 query heads,
// 8 KV heads of 128) over an fp16 cache of 512 .. 4096 positions: one layer's worth, one thread, the scalar
// reference beside each SIMD level. bytes_per_second counts the cache bytes read (K and V). A decode step
// at depth d costs about n_layer (32) times this on top of its weight reads, which is how `infer bench -d`
// stays near its depth-0 speed.
//   ./build/bin/kinfer_bench --benchmark_filter=Attention
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/quant_matmul.hpp"
#include "kernels/cpu/simple_ops.hpp"
#include "kernels/fp16.hpp"

namespace {

using kinfer::cpu::Isa;

constexpr int64_t kHeads = 32, kHeadsKv = 8, kHeadDim = 128;

void BM_Attention(benchmark::State& state, int level) {  // level -1: the scalar reference
    const int64_t depth = state.range(0), n_kv = depth + 1;
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    std::vector<float> q(size_t(kHeads * kHeadDim)), out(q.size());
    std::vector<uint16_t> k(size_t(n_kv * kHeadsKv * kHeadDim)), v(k.size());
    for (auto& x : q) x = uni(rng);
    for (auto* c : {&k, &v})
        for (auto& x : *c) x = kinfer::fp32_to_fp16(uni(rng));
    std::vector<float> scratch(kinfer::cpu::attention_scratch_floats(kHeads, kHeadsKv, n_kv, 1));
    const float scale = 1.0f / std::sqrt(float(kHeadDim));
    for (auto _ : state) {
        if (level < 0)
            kinfer::cpu::attention_reference(q.data(), 1, depth, k.data(), v.data(), true, kHeads, kHeadsKv,
                                             kHeadDim, scale, 0, out.data(), scratch.data());
        else
            kinfer::cpu::attention(q.data(), 1, depth, k.data(), v.data(), true, kHeads, kHeadsKv, kHeadDim,
                                   scale, 0, out.data(), scratch.data(), nullptr, Isa(level));
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * 2 * n_kv * kHeadsKv * kHeadDim * 2);
}

const bool registered = [] {
    benchmark::RegisterBenchmark("Attention/f16/reference", BM_Attention, -1)->Arg(512)->Arg(4096);
    for (Isa isa : {Isa::Portable, Isa::Avx2, Isa::Avx512})
        if (isa <= kinfer::cpu::detected_isa())
            benchmark::RegisterBenchmark((std::string("Attention/f16/") + kinfer::cpu::isa_name(isa)).c_str(),
                                         BM_Attention, int(isa))
                ->Arg(512)
                ->Arg(4096);
    return true;
}();

}  // namespace
