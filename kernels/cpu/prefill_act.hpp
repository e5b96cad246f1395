#pragma once
// The prepared activation of the prefill (matrix x matrix) path: every token's floats rounded to 8-bit
// blocks of 32 with a float scale each (finer than llama.cpp's q8_K, one fp32 scale per 256), laid out
// block-major so that the kernel's tile of tokens reads one contiguous run per block:
//
//   q   int8  [n_in/32][n_tokens][32]   round(x / d), d = max|x| / 127 over the block
//   d   float [n_in/32][n_tokens]
//   s32 float [n_in/32][n_tokens]       d * (sum of the 32 q): the block's rounded sum, for min/offset terms
//   s16 float [n_in/32][n_tokens][2]    the same per half block (types with 16-element sub-blocks)
//
// Shared by every ISA level (one act_format), so wq/wk/wv of mixed types read one prepared activation.
#include <cstddef>
#include <cstdint>

namespace kinfer::cpu::prefill {

inline constexpr int kActBlock = 32;
// MatmulPath::act_format of every prefill path (distinct from other paths' formats: "pf").
inline constexpr int kPrefillActFormat = 0x7066;

// A read-only view of the regions of a prepared activation.
struct ActView {
    const int8_t* q;
    const float* d;
    const float* s32;
    const float* s16;
    int64_t n_tokens;

    ActView(const void* act, int64_t n_in, int64_t n_tokens_);
};

// Bytes of the prepared activation for n_tokens rows of n_in (a multiple of 32).
size_t act_bytes(int64_t n_in, int64_t n_tokens);
// x (n_tokens rows of n_in floats) -> act.
void prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act);
// The activation as `prepare` rounds it (d * q), one row of n_in: what the kernels multiply exactly.
void round_like_prepare(const float* x, int64_t n_in, float* out);

}  // namespace kinfer::cpu::prefill
