#pragma once
// Matrix products of quantized weight rows with float activations on the CPU, chosen once per weight (type
// and instruction set) at model load and then called per op.
//
// Shape: W has n_rows rows of n_in elements (row r at w + r * row_bytes, ggml blocks); x has n_tokens rows of
// n_in floats; out[t * out_stride + r] = sum_i W[r][i] * x[t][i]. Every kernel reads each weight byte once
// per call, whatever n_tokens is: decoding k sequences together costs about what one costs (memory-bound).
//
// Two paths per type, because the two regimes want different trade-offs:
// - decode (few tokens, memory-bound): keeps the activation precise (float, or two 8-bit terms), so its logit
//   error stays at or below half of llama.cpp's (which rounds activations to 8 bits);
// - prefill (many tokens, arithmetic-bound): may round activations to 8 bits as llama.cpp does, for
// integer dot
//   products (AVX2 maddubs, AVX-512 VNNI), tiled so each weight block is reused across many tokens.
// A call first prepares the activation once (`prepare`: into the path's own format, e.g. int8 blocks) —
// weights whose paths share `act_format` (wq/wk/wv, gate/up) share one prepared activation — then splits rows
// [0, n_rows) across threads, each calling `rows` on its own range (multiples of `row_block`, except the
// last).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gguf/ggml_type.hpp"

namespace kinfer::cpu {

// Instruction-set levels, each including the ones before it. Avx512 means AVX-512 F/BW/VL/VNNI.
enum class Isa { Portable = 0, Avx2 = 1, Avx512 = 2 };

Isa detected_isa();  // the best level this CPU (and OS) supports
// detected_isa(), capped by the environment variable KINFER_CPU_ISA=portable|avx2|avx512 (read once per
// process; a level above the detected one is capped to it). Kernels are resolved with this level.
Isa active_isa();
const char* isa_name(Isa isa);  // "portable", "avx2", "avx512"
// Parses "portable" / "avx2" / "avx512"; false if unknown.
bool parse_isa(const char* name, Isa& out);

struct MatmulPath {
    int act_format = 0;  // paths with equal act_format read the same prepared activation
    // Bytes of the prepared activation for n_tokens rows of n_in.
    size_t (*act_bytes)(int64_t n_in, int64_t n_tokens) = nullptr;
    // x (n_tokens rows of n_in floats) -> act.
    void (*prepare)(const float* x, int64_t n_in, int64_t n_tokens, void* act) = nullptr;
    // out[t * out_stride + r] for r in [r0, r1) and t < n_tokens. Thread-safe; allocates nothing.
    void (*rows)(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens,
                 int64_t r0, int64_t r1, float* out, int64_t out_stride) = nullptr;
    int64_t row_block = 1;  // split rows in multiples of this (kernels that interleave rows want 4 or 8)
};

struct QuantKernels {
    GgmlType type;
    Isa isa;
    MatmulPath decode;
    MatmulPath prefill;
    int64_t prefill_min_tokens = 32;  // n_tokens at or above this use the prefill path

    const MatmulPath& path(int64_t n_tokens) const {
        return n_tokens >= prefill_min_tokens ? prefill : decode;
    }
};

// The kernels for `type` at instruction level `isa` (a type without a fast kernel at that level gets the
// best lower one). Throws UsageError for a type kinfer cannot read. The reference is always at Portable.
const QuantKernels& quant_kernels(GgmlType type, Isa isa = active_isa());

// A prepared activation's bytes, 64-byte aligned: the kernels' 512-bit loads from a 16-byte aligned buffer
// split cache lines (8 tokens of Q4_K, one thread: 10% slower).
class ActBuffer {
  public:
    void resize(size_t n) {
        bytes_.resize(n + 63);
        offset_ = (64 - reinterpret_cast<uintptr_t>(bytes_.data()) % 64) % 64;
        size_ = n;
    }
    uint8_t* data() { return bytes_.data() + offset_; }
    size_t size() const { return size_; }

  private:
    std::vector<uint8_t> bytes_;
    size_t offset_ = 0, size_ = 0;
};

// One whole product on the calling thread (tests, tools): prepares into `act` (path.act_bytes bytes) and
// runs every row.
void matmul_single_thread(const QuantKernels& k, const uint8_t* w, size_t row_bytes, int64_t n_rows,
                          int64_t n_in, const float* x, int64_t n_tokens, float* out, void* act);

}  // namespace kinfer::cpu
