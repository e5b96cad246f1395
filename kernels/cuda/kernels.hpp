#pragma once
// The CUDA kernels behind the CUDA backend, as host-side launchers that plain C++ code can call (no CUDA
// headers here). Pointers named *_dev are device memory; every launcher enqueues on `stream` (a
// cudaStream_t; null = the default stream) and returns without waiting. Shapes are the caller's contract
// (the backend checks them once per model); launch failures throw kinfer::Error naming the kernel.
//
// Activations are row-major float matrices, one row per token. Weights are DeviceMatrix: GGUF rows repacked
// into the layout of kernels/cuda/repacked.hpp by upload_matrix.
#include <cstddef>
#include <cstdint>
#include <string>

#include "gguf/ggml_type.hpp"

namespace kinfer::cuda {

using Stream = void*;
struct KvRow;           // below, with attention
struct AttentionShape;  // below, with attention

// ---- device memory
// -----------------------------------------------------------------------------------------

// Device memory that frees itself. Allocation failures throw Error naming `what` and the sizes.
class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    DeviceBuffer(size_t bytes, const std::string& what);
    DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
        o.ptr_ = nullptr, o.bytes_ = 0;
    }
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer();

    void* data() const { return ptr_; }
    template <class T>
    T* as() const {
        return static_cast<T*>(ptr_);
    }
    size_t bytes() const { return bytes_; }

  private:
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

// Throws Error when `bytes` more do not fit in the free memory of the current device (cudaMemGetInfo),
// naming what needs them, both sizes and the device.
void ensure_fits(uint64_t bytes, const std::string& what);

// Raw device memory, zero-filled (KV caches); throws like DeviceBuffer. Null for 0 bytes.
void* device_alloc_zeroed(size_t bytes, const std::string& what);
void device_free(void* p) noexcept;

// A stream of its own (non-blocking with respect to the default stream).
Stream create_stream();
void destroy_stream(Stream stream) noexcept;

// A captured sequence of launches, replayed with one call: a decode step costs one launch of host work.
class Graph {
  public:
    Graph() = default;
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;
    ~Graph();
    // Everything enqueued on `stream` between begin and end is recorded instead of run (no synchronous
    // CUDA calls in between).
    void begin_capture(Stream stream);
    void end_capture(Stream stream);
    bool ready() const { return exec_ != nullptr; }
    void launch(Stream stream) const;

  private:
    void* graph_ = nullptr;  // cudaGraph_t
    void* exec_ = nullptr;   // cudaGraphExec_t
};

void copy_to_device(void* dst_dev, const void* src, size_t bytes, Stream stream = nullptr);
void zero_device(void* dst_dev, size_t bytes, Stream stream = nullptr);
void copy_device(void* dst_dev, const void* src_dev, size_t bytes, Stream stream = nullptr);
void copy_to_host(void* dst, const void* src_dev, size_t bytes, Stream stream = nullptr);  // waits
void synchronize(Stream stream = nullptr);

// ---- weights
// -----------------------------------------------------------------------------------------------

// A weight matrix on the device: `rows` rows of `cols` elements, repacked, row r at data + r * row_bytes.
struct DeviceMatrix {
    GgmlType type = GgmlType::F32;
    int64_t rows = 0, cols = 0;
    uint64_t row_bytes = 0;
    const void* data = nullptr;
};

// Device bytes upload_matrix needs for a rows x cols matrix of `type` (throws UsageError naming `name` for a
// type or shape the GPU cannot read).
uint64_t device_matrix_bytes(const TypeTraits& type, int64_t rows, int64_t cols, const std::string& name);

// Repacks GGUF rows on the host (all cores) and copies them to dst_dev (device_matrix_bytes bytes). Waits.
DeviceMatrix upload_matrix(const TypeTraits& type, const void* gguf_rows, int64_t rows, int64_t cols,
                           void* dst_dev, const std::string& name);

// ---- matrix products
// ---------------------------------------------------------------------------------------

// The most tokens matvec handles in one pass over the weights.
inline constexpr int kMaxMatvecTokens = 16;

// matvec reads activations in a permuted layout (coalesced 16-byte loads for its thread-per-group mapping):
// activation_floats(cols) floats per token. prepare_activation writes n_tokens rows of x (cols floats each,
// contiguous) in that layout; weights that share an input (wq/wk/wv, gate/up) share one prepared activation.
int64_t activation_floats(int64_t cols);
void prepare_activation(const float* x_dev, int n_tokens, int64_t cols, float* out_dev, Stream stream);

// out_dev[t * out_stride + r] = sum_i W[r][i] * x[t][i] for t < n_tokens (1..16), x prepared by
// prepare_activation, reading W once: fused dequantization with float activations, 16-byte loads, several
// rows per block sharing each activation load.
void matvec(const DeviceMatrix& w, const float* x_prepared_dev, int n_tokens, float* out_dev,
            int64_t out_stride, Stream stream);

// An input prepared by matvec_add_norm: x * w of an RMSNorm without its scale. The products that read it
// multiply their sums by rsqrt(sum(ssq[0 .. cols / 32)) / cols + eps), one token only. Empty (ssq null): a
// plain prepared input.
struct RowNorm {
    const float* ssq = nullptr;
    float eps = 0.0f;
    int cols = 0;
};

// The same with the residual add in the epilogue: out_dev[t * out_stride + r] += sum_i W[r][i] * x[t][i]
// (the same float addition as `add` of a separate product: bit for bit).
void matvec_add(const DeviceMatrix& w, const float* x_prepared_dev, int n_tokens, float* out_dev,
                int64_t out_stride, Stream stream, const RowNorm& norm = {});

// One token: matvec_add into the residual row x_dev (w.rows floats) and, in the same launch, the next
// RMSNorm's input for the products after it: x * norm_w (the new x) in matvec's layout into prepared_dev, and
// per 32 elements their sum of squares of x into ssq_dev (w.rows / 32 floats), so that no norm kernel runs
// between the products (the consumers take RowNorm{ssq_dev, eps, w.rows}). Each block owns 32 outputs, one
// group of the next activation. x_dev itself gets the same bits as matvec_add's. For the main decode types
// (Q4_K, Q6_K, Q8_0, Q5_K, Q4_0), rows % 32 == 0 and rows <= 8192 (matvec_add_norm_supports).
bool matvec_add_norm_supports(const DeviceMatrix& w);
void matvec_add_norm(const DeviceMatrix& w, const float* x_prepared_dev, float* x_dev,
                     const float* norm_w_dev, float* prepared_dev, float* ssq_dev, Stream stream);

// Several products of one prepared activation (wq/wk/wv, gate/up): consecutive outputs of the same type and
// width run in one launch.
struct MatvecOut {
    const DeviceMatrix* w;
    float* out;
    int64_t out_stride;
};
void matvecs(const MatvecOut* outs, int n_outs, const float* x_prepared_dev, int n_tokens, Stream stream,
             const RowNorm& norm = {});

// wq, wk, wv (qkv[0..2]) of one prepared activation with RoPE and the KV-cache store in the epilogue: q rows
// rotated into qkv[0].out, k rows rotated and v rows stored as fp16 into each token's cache row at its
// position of `layer` (as rope_kv_store; qkv[1].out and qkv[2].out are not written). For an even head_dim
// and n_rot <= head_dim (matvecs_rope_kv_supports).
bool matvecs_rope_kv_supports(const AttentionShape& shape);
void matvecs_rope_kv(const MatvecOut* qkv, const float* x_prepared_dev, int n_tokens, const KvRow* rows_dev,
                     int layer, const AttentionShape& shape, const double* inv_freq_dev, Stream stream,
                     const RowNorm& norm = {});

// The gate/up pair of a feed-forward block with SwiGLU fused in: out[t * out_stride + r] = silu(gate x) *
// (up x), each block reading the same rows of both matrices. If prepared_dev, the result also goes there in
// matvec's layout (activation_floats(gate.rows) per token), written by the last block to finish each 32
// outputs: counters_dev holds gate.rows / 32 ints, zero-filled once (zero_device); every call leaves them
// zero. For matrices of one type among Q4_K, Q6_K, Q8_0, Q5_K, Q4_0, of the same shape, rows % 32 == 0
// (matvec_swiglu_supports).
bool matvec_swiglu_supports(const DeviceMatrix& gate, const DeviceMatrix& up);
void matvec_swiglu(const DeviceMatrix& gate, const DeviceMatrix& up, const float* x_prepared_dev,
                   int n_tokens, float* out_dev, int64_t out_stride, float* prepared_dev, int* counters_dev,
                   Stream stream, const RowNorm& norm = {});

// The same pair for a batch of 5-16 tokens on the tensor cores (Q4_K): block b reads rows 16 b .. of both
// matrices, so SwiGLU needs no count between blocks. out as matvec_swiglu; prepared_dev (required) gets only
// the fp16 values and sums of matvec's layout, what a product that takes the fp16 form reads
// (matvec_reads_half_form): a consumer that does not must prepare `out` itself. KINFER_SWIGLU_PAIRS=0 turns
// it off (matvec_swiglu_pairs_supports false).
bool matvec_swiglu_pairs_supports(const DeviceMatrix& gate, const DeviceMatrix& up, int n_tokens);
void matvec_swiglu_pairs(const DeviceMatrix& gate, const DeviceMatrix& up, const float* x_prepared_dev,
                         int n_tokens, float* out_dev, int64_t out_stride, float* prepared_dev,
                         Stream stream);
// Whether a product of w over n_tokens reads only the fp16 part of its prepared input (the tensor-core fp16
// form of Q4_K and Q6_K batches).
bool matvec_reads_half_form(const DeviceMatrix& w, int n_tokens);

// Scratch for matmul's prefill path; sized with matmul_scratch_bytes.
struct GemmScratch {
    void* data = nullptr;
    size_t bytes = 0;
};
// Scratch bytes matmul needs for up to n_tokens tokens against matrices of at most max_cols columns.
size_t matmul_scratch_bytes(int64_t max_cols, int n_tokens);

// Any number of tokens, x plain (not prepared): up to 16 prepared into `scratch` and through matvec; more: W
// dequantized to fp16 in row slices inside `scratch`,
// x rounded to fp16 and a cuBLAS fp16 x fp16 -> fp32 product per slice.
void matmul(const DeviceMatrix& w, const float* x_dev, int n_tokens, float* out_dev, int64_t out_stride,
            const GemmScratch& scratch, Stream stream);

// out_dev[r * cols .. ] = row r of W as fp16 (tests; matmul's prefill path).
void dequantize_to_f16(const DeviceMatrix& w, int64_t first_row, int64_t n_rows, void* out_dev,
                       Stream stream);

// ---- small fused ops
// -----------------------------------------------------------------------------------------

// out[t] = table row ids_dev[t], dequantized (ids must be valid rows).
void embed(const DeviceMatrix& table, const int32_t* ids_dev, int n_tokens, float* out_dev, Stream stream);

// If residual_dev: x += residual first (written back to x). Then out = x / rms(x) * w, row by row (out may be
// x); if prepared_dev, the rows also in matvec's activation layout (activation_floats(n) per row).
void rmsnorm(float* x_dev, const float* residual_dev, const float* w_dev, float eps, int n_rows, int n,
             float* out_dev, float* prepared_dev, Stream stream);

// out = silu(gate) * up over n_rows rows of `cols` (out may be gate); if prepared_dev, also in matvec's
// layout.
void swiglu(const float* gate_dev, const float* up_dev, int n_rows, int64_t cols, float* out_dev,
            float* prepared_dev, Stream stream);

// out[i] = x[rows_dev[i]] for i < n, rows of `cols` floats.
void gather_rows(const float* x_dev, const int32_t* rows_dev, int n, int64_t cols, float* out_dev,
                 Stream stream);

// x += y over n elements.
void add(float* x_dev, const float* y_dev, int64_t n, Stream stream);

// ---- candidate selection
// -----------------------------------------------------------------------------------

// The most candidates per row top_k_select is used for (larger k: the host selects from full logits).
inline constexpr int kMaxTopK = 256;

// For each of `rows` rows of n_vocab logits: its k best (1 <= k <= n_vocab) as k pairs {int32 id, float
// logit} at out_dev + row * k, unordered. Best = highest logit, ties to the lower id, NaN below everything
// (-0 equals +0): the same k as engine::select_top.
void top_k_select(const float* logits_dev, int rows, int64_t n_vocab, int k, void* out_dev, Stream stream);

// Where each token of a step reads and writes its sequence's KV cache (device memory, one per token). The
// cache of a sequence is fp16, per layer [n_ctx][n_head_kv * head_dim]; layer l starts at k + l *
// layer_elems.
struct KvRow {
    uint16_t* k = nullptr;
    uint16_t* v = nullptr;
    int64_t layer_elems = 0;
    int32_t pos = 0;    // the token's position: its K/V go to row pos; it attends to rows first .. pos
    int32_t first = 0;  // first visible row (sliding window; 0 = all)
};

struct AttentionShape {
    int n_head = 0, n_head_kv = 0, head_dim = 0, n_rot = 0;
};

// RoPE (GGUF/llama convention, angles pos * inv_freq[i] in double) on q (n_tokens rows of n_head heads, in
// place) and k (n_head_kv heads), then k and v stored as fp16 at each token's row of layer `layer`.
// inv_freq_dev: n_rot / 2 doubles.
void rope_kv_store(float* q_dev, const float* k_dev, const float* v_dev, const KvRow* rows_dev, int n_tokens,
                   int layer, const AttentionShape& shape, const double* inv_freq_dev, Stream stream);

// Turns n_rows fp16 key rows (n_head_kv heads each, row_stride elements apart) by delta positions (RoPE
// angles delta * inv_freq[i]): a context shift re-rotates the keys it moves.
void rope_shift_keys(uint16_t* k_dev, int64_t n_rows, int64_t row_stride, const AttentionShape& shape,
                     const double* inv_freq_dev, int64_t delta, Stream stream);

// Whether attention has a kernel for this head size (16, 32, 64, 96, 128, 256): checked at load.
bool attention_supports_head_dim(int head_dim);

// Scratch floats attention needs for up to n_tokens rows attending to at most max_kv positions.
size_t attention_scratch_floats(const AttentionShape& shape, int n_tokens, int max_kv);
// Counters (ints) attention needs for up to n_tokens rows: zero-filled once (zero_device); every call leaves
// them zero.
size_t attention_counters(const AttentionShape& shape, int n_tokens);

// Causal attention of q (n_tokens rows, n_head heads) over each row's cache rows first .. pos; query head h
// reads KV head h / (n_head / n_head_kv). The positions are split across blocks (flash-decoding) when the
// rows alone would not fill the GPU; the last block of each (row, head) merges the splits. max_kv bounds
// pos + 1 - first over the rows (a CUDA graph passes n_ctx). If prepared_dev (head_dim % 32 == 0 only), the
// output rows also go there in matvec's layout (activation_floats(n_head * head_dim) per row). head_dim must
// be one of 16, 32, 64, 96, 128, 256.
void attention(const float* q_dev, const KvRow* rows_dev, int n_tokens, int layer,
               const AttentionShape& shape, float scale, int max_kv, float* out_dev, float* prepared_dev,
               float* scratch_dev, int* counters_dev, Stream stream);

}  // namespace kinfer::cuda
