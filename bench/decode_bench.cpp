// The CPU decode path (kernels/cpu/decode_*.cpp) per weight type, one thread: matrix x vector products of
// 4096 x 4096 and 14336 x 4096 (Mistral-7B's attention and FFN shapes) and 8 tokens at once (batched decode
// of 8 sequences), the portable reference path beside each SIMD level this CPU has; where the default is
// the two-int8-term path (AVX-512: the quantized types) the float path beside it (-float), and for
// the k-quants the int16-activation variant (-int16); on CPUs with GFNI, Q4_K and Q4_0 without it (-nogfni)
// (see kernels/cpu/decode_table.hpp).
// 256 x 4096 stays in L2: the kernels' compute speed without memory in the way. 32768 x 256 (Q8_0 and Q4_0)
// is the demo model's output matrix: rows of a single group of 8 blocks, its own batch form. bytes_per_second
// counts weight bytes read; a decode step is memory-bound when it stays near the machine's read bandwidth.
//   ./build/bin/kinfer_bench --benchmark_filter=Decode
//   ./build/bin/kinfer_bench --benchmark_filter='Decode/q4_K'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gguf/ggml_type.hpp"
#include "kernels/cpu/decode_table.hpp"
#include "kernels/cpu/quant_matmul.hpp"
#include "kernels/reference/type_kernels.hpp"

namespace {

using kinfer::GgmlType;
using kinfer::cpu::Isa;

constexpr GgmlType kTypes[] = {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_K, GgmlType::Q8_0, GgmlType::Q4_0,
                               GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                               GgmlType::F16,  GgmlType::BF16, GgmlType::F32};

// Quantized weights of every type, made once per (type, shape): quantizing 14336 x 4096 takes a while.
const std::vector<uint8_t>& weights(GgmlType type, int64_t n_rows, int64_t n_in) {
    static std::vector<std::pair<std::string, std::vector<uint8_t>>> cache;
    const std::string key =
        std::to_string(int(type)) + "/" + std::to_string(n_rows) + "x" + std::to_string(n_in);
    for (auto& [k, v] : cache)
        if (k == key) return v;
    const size_t row_bytes = kinfer::row_bytes(kinfer::type_traits(type), uint64_t(n_in));
    std::vector<uint8_t> w(row_bytes * size_t(n_rows));
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<float> row(static_cast<size_t>(n_in));
    const auto quantize = kinfer::ref::quantize_fn(type);
    // Few distinct rows, repeated: realistic blocks without minutes of quantizing.
    constexpr int64_t kDistinct = 64;
    for (int64_t r = 0; r < kDistinct && r < n_rows; ++r) {
        for (float& v : row) v = normal(rng);
        quantize(row.data(), w.data() + size_t(r) * row_bytes, n_in);
    }
    for (int64_t r = kDistinct; r < n_rows; ++r)
        std::copy_n(w.data() + size_t(r % kDistinct) * row_bytes, row_bytes,
                    w.data() + size_t(r) * row_bytes);
    cache.emplace_back(key, std::move(w));
    return cache.back().second;
}

// NoGfni: the Q4_K / Q4_0 rows without vgf2p8affineqb, beside the default where that is the GFNI one.
enum class Variant { Default, Float, Int16, NoGfni };

const kinfer::cpu::MatmulPath* variant_path(GgmlType type, Isa isa, Variant v) {
    switch (v) {
        case Variant::Float:
            return isa == Isa::Portable ? nullptr : kinfer::cpu::decode_path_float(type, isa);
        case Variant::Int16:
            return kinfer::cpu::decode_path_int16(type, isa);
        case Variant::NoGfni:
            if (isa < Isa::Avx512 || !kinfer::cpu::gfni_enabled() || kinfer::cpu::float_decode_forced())
                return nullptr;
            if (type == GgmlType::Q4_K) return kinfer::cpu::decode_path_i8x2p_avx512(type, false);
            if (type == GgmlType::Q4_0) return kinfer::cpu::decode_path_i8x2b_avx512(type, false);
            return nullptr;
        default:
            return &kinfer::cpu::quant_kernels(type, isa).decode;
    }
}

void BM_Decode(benchmark::State& state, GgmlType type, Isa isa, Variant variant, int64_t n_rows, int64_t n_in,
               int64_t n_tokens) {
    const auto& p = *variant_path(type, isa, variant);
    const std::vector<uint8_t>& w = weights(type, n_rows, n_in);
    const size_t row_bytes = w.size() / size_t(n_rows);
    std::vector<float> x(size_t(n_in * n_tokens), 0.5f), out(size_t(n_rows * n_tokens));
    kinfer::cpu::ActBuffer act;
    act.resize(p.act_bytes(n_in, n_tokens));
    for (auto _ : state) {
        p.prepare(x.data(), n_in, n_tokens, act.data());
        p.rows(w.data(), row_bytes, n_in, act.data(), n_tokens, 0, n_rows, out.data(), n_rows);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.size()));
    state.counters["tok/s"] =
        benchmark::Counter(double(n_tokens) * double(state.iterations()), benchmark::Counter::kIsRate);
}

// One case: "Decode/<type>/<isa><suffix>/<rows>x<cols>/tokens:<n>", in milliseconds of real time.
void add_case(GgmlType type, Isa isa, Variant v, const char* suffix, int64_t n_rows, int64_t n_in,
              int64_t n_tokens) {
    const std::string name = std::string("Decode/") + kinfer::type_name(type) + "/" +
                             kinfer::cpu::isa_name(isa) + suffix + "/" + std::to_string(n_rows) + "x" +
                             std::to_string(n_in) + "/tokens:" + std::to_string(n_tokens);
    benchmark::RegisterBenchmark(name.c_str(), BM_Decode, type, isa, v, n_rows, n_in, n_tokens)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

const bool kRegistered = [] {
    for (const GgmlType type : kTypes)
        for (int level = 0; level <= int(kinfer::cpu::detected_isa()); ++level)
            for (const Variant v : {Variant::Default, Variant::Float, Variant::Int16, Variant::NoGfni})
                for (const int64_t n_rows : {int64_t(256), int64_t(4096), int64_t(14336)})
                    for (const int64_t n_tokens : {int64_t(1), int64_t(8)}) {
                        const Isa isa = Isa(level);
                        const auto* p = variant_path(type, isa, v);
                        // the float variant only where it is not the default
                        if (!p || (v == Variant::Float &&
                                   p->rows == variant_path(type, isa, Variant::Default)->rows))
                            continue;
                        const char* suffix = v == Variant::Int16    ? "-int16"
                                             : v == Variant::Float  ? "-float"
                                             : v == Variant::NoGfni ? "-nogfni"
                                                                    : "";
                        if (isa == Isa::Portable && n_tokens > 1)
                            continue;  // the reference is slow enough once
                        add_case(type, isa, v, suffix, n_rows, 4096, n_tokens);
                    }
    for (const GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0})
        for (int level = 1; level <= int(kinfer::cpu::detected_isa()); ++level)
            for (const int64_t n_tokens : {int64_t(1), int64_t(8)})
                add_case(type, Isa(level), Variant::Default, "", 32768, 256, n_tokens);
    // The FFN down projection's shape (14336 inputs: per-token activation regions that are not a power of
    // two long), on the detected path only.
    for (const GgmlType type :
         {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_K, GgmlType::Q8_0, GgmlType::Q4_0})
        for (const int64_t n_tokens : {int64_t(1), int64_t(8)})
            add_case(type, kinfer::cpu::detected_isa(), Variant::Default, "", 4096, 14336, n_tokens);
    return true;
}();

}  // namespace
