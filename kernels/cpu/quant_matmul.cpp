// Kernel resolution and instruction-set dispatch for quantized matrix products, plus the portable path
// every type has: dequantize a row with the scalar reference, dot it with each token's float activation.
#include "kernels/cpu/quant_matmul.hpp"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/cpu/decode_table.hpp"
#include "kernels/cpu/prefill_table.hpp"
#include "kernels/cpu/simple_ops.hpp"
#include "kernels/reference/type_kernels.hpp"
#include "kinfer/error.hpp"

namespace kinfer::cpu {

Isa detected_isa() {
#if defined(__x86_64__) || defined(__i386__)
    static const Isa isa = [] {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512vnni"))
            return Isa::Avx512;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
            return Isa::Avx2;
        return Isa::Portable;
    }();
    return isa;
#else
    return Isa::Portable;
#endif
}

bool parse_isa(const char* name, Isa& out) {
    const std::string s = name ? name : "";
    if (s == "portable")
        out = Isa::Portable;
    else if (s == "avx2")
        out = Isa::Avx2;
    else if (s == "avx512")
        out = Isa::Avx512;
    else
        return false;
    return true;
}

Isa active_isa() {
    static const Isa isa = [] {
        const Isa best = detected_isa();
        const char* env = std::getenv("KINFER_CPU_ISA");
        Isa wanted;
        if (!env || !*env || !parse_isa(env, wanted)) return best;  // an unknown name cannot raise the level
        return wanted < best ? wanted : best;
    }();
    return isa;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Portable:
            return "portable";
        case Isa::Avx2:
            return "avx2";
        case Isa::Avx512:
            return "avx512";
    }
    return "?";
}

namespace {

// ---- the portable path: float activations, rows dequantized by the scalar reference ----

size_t float_act_bytes(int64_t n_in, int64_t n_tokens) {
    return sizeof(float) * size_t(n_in) * size_t(n_tokens);
}

void float_prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    std::memcpy(act, x, float_act_bytes(n_in, n_tokens));
}

template <GgmlType T>
void portable_rows(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens,
                   int64_t r0, int64_t r1, float* out, int64_t out_stride) {
    static const ref::DequantizeRowFn dequantize = ref::dequantize_fn(T);
    thread_local std::vector<float> row;  // grows once per thread to the widest row, then never allocates
    if (row.size() < size_t(n_in)) row.resize(size_t(n_in));
    const auto* x = static_cast<const float*>(act);
    for (int64_t r = r0; r < r1; ++r) {
        dequantize(w + size_t(r) * row_bytes, row.data(), n_in);
        for (int64_t t = 0; t < n_tokens; ++t) out[t * out_stride + r] = dot(row.data(), x + t * n_in, n_in);
    }
}

template <GgmlType T>
QuantKernels portable_kernels() {
    const MatmulPath p{0, float_act_bytes, float_prepare, portable_rows<T>, 1};
    return QuantKernels{T, Isa::Portable, p, p, 1 << 30};
}

const QuantKernels* portable(GgmlType type) {
    static const QuantKernels table[] = {
        portable_kernels<GgmlType::F32>(),  portable_kernels<GgmlType::F16>(),
        portable_kernels<GgmlType::BF16>(), portable_kernels<GgmlType::Q4_0>(),
        portable_kernels<GgmlType::Q4_1>(), portable_kernels<GgmlType::Q5_0>(),
        portable_kernels<GgmlType::Q5_1>(), portable_kernels<GgmlType::Q8_0>(),
        portable_kernels<GgmlType::Q2_K>(), portable_kernels<GgmlType::Q3_K>(),
        portable_kernels<GgmlType::Q4_K>(), portable_kernels<GgmlType::Q5_K>(),
        portable_kernels<GgmlType::Q6_K>(), portable_kernels<GgmlType::Q8_K>(),
    };
    for (const QuantKernels& k : table)
        if (k.type == type) return &k;
    return nullptr;
}

// Every type's kernels at every level, assembled once: the portable path, then each level's own paths where
// it has them (a level without one keeps the best lower level's).
struct KernelTables {
    std::vector<QuantKernels> level[3];

    KernelTables() {
        const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                                  GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                                  GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                                  GgmlType::Q6_K, GgmlType::Q8_K};
        for (GgmlType t : types) {
            QuantKernels k = *portable(t);
            for (Isa isa : {Isa::Portable, Isa::Avx2, Isa::Avx512}) {
                k.isa = isa;
                if (const MatmulPath* p = decode_path(t, isa)) k.decode = *p;
                if (const MatmulPath* p = prefill_path(t, isa)) {
                    k.prefill = *p;
                    k.prefill_min_tokens = kPrefillMinTokens;
                }
                level[int(isa)].push_back(k);
            }
        }
    }
};

}  // namespace

const QuantKernels& quant_kernels(GgmlType type, Isa isa) {
    static const KernelTables tables;
    if (isa > detected_isa()) isa = detected_isa();  // never hand out instructions this CPU lacks
    for (const QuantKernels& k : tables.level[int(isa)])
        if (k.type == type) return k;
    throw UsageError(std::string("no CPU kernel for tensor type ") + type_name(type));
}

void matmul_single_thread(const QuantKernels& k, const uint8_t* w, size_t row_bytes, int64_t n_rows,
                          int64_t n_in, const float* x, int64_t n_tokens, float* out, void* act) {
    const MatmulPath& p = k.path(n_tokens);
    p.prepare(x, n_in, n_tokens, act);
    p.rows(w, row_bytes, n_in, act, n_tokens, 0, n_rows, out, n_rows);
}

}  // namespace kinfer::cpu
