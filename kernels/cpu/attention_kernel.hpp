#pragma once
// The unit of CPU attention work, shared by the instruction-set variants (attention_kernels.inl compiled
// for AVX2 and AVX-512 in attention_avx2.cpp / attention_avx512.cpp, and portably in attention.cpp):
// one query token against the cache rows of one KV head, for a block of that KV head's query heads at
// once, so each cached key and value is read from memory once per block instead of once per head.
#include <cstdint>

#include "kernels/cpu/quant_matmul.hpp"

namespace kinfer::cpu {

inline constexpr int kAttnMaxHeads = 8;  // query heads per task (a GQA group larger than this is split)

struct AttnTask {
    const float* q = nullptr;  // n_heads query heads, head_dim floats apart
    float* out = nullptr;      // n_heads output heads, head_dim floats apart
    const void* k = nullptr;   // cache row 0 of the KV head (fp16 or float); row j at j * kv_stride
    const void* v = nullptr;
    int64_t kv_stride = 0;  // elements between cache rows
    int64_t head_dim = 0;
    int64_t first = 0, last = 0;  // the cache positions attended: [first, last]
    int n_heads = 1;              // 1 .. kAttnMaxHeads
    float scale = 1.0f;
    float* scores = nullptr;  // scratch: n_heads * (last - first + 1) floats
};

using AttendFn = void (*)(const AttnTask&);

struct AttendFns {
    AttendFn f32 = nullptr;  // float cache
    AttendFn f16 = nullptr;  // fp16 cache
};

// The kernels of one level (the x86 ones exist only on x86-64 builds); attend_fns picks the best at or
// below `isa`.
const AttendFns& attend_fns(Isa isa);
const AttendFns& attend_portable();
const AttendFns& attend_avx2();
const AttendFns& attend_avx512();

}  // namespace kinfer::cpu
