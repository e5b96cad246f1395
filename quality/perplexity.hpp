#pragma once
// Perplexity and KL-divergence exactly as llama.cpp's llama-perplexity defines them, on kinfer's public
// Session API. The text is tokenized once (with BOS); it is cut into non-overlapping chunks of n_ctx
// tokens; each chunk is evaluated from an empty context with its first token replaced by BOS, and only the
// second half is scored: the logits at positions n_ctx/2 .. n_ctx-2 predict the tokens after them. So every
// scored token has at least n_ctx/2 tokens of context, and chunk results do not depend on each other.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "kinfer/kinfer.hpp"

namespace kinfer::quality {

// How many rows each chunk scores: n_ctx - 1 - n_ctx/2.
inline int scored_per_chunk(int n_ctx) {
    return n_ctx - 1 - n_ctx / 2;
}

struct ChunkPlan {
    std::vector<int32_t> tokens;  // n_chunk * n_ctx tokens of the text, as tokenized
    int n_ctx = 0;
    int n_chunk = 0;
    int first = 0;  // n_ctx / 2: the first scored logit row's position
};

// Chunks of `tokens`: all that fit, or at most max_chunks (> 0). Throws UsageError when the text has fewer
// than 2 * n_ctx tokens (llama.cpp's rule) or n_ctx < 4.
ChunkPlan plan_chunks(std::span<const int32_t> tokens, int n_ctx, int max_chunks = -1);

// Evaluates chunk `chunk` in `session` (reset first) in forward calls of at most n_batch tokens (<= 0: the
// whole chunk at once), with the first token replaced by `bos` when bos >= 0. Fills `rows` with the
// logits of positions first .. n_ctx-2 (scored_per_chunk rows of n_vocab); calls before `first` skip
// their logits.
void chunk_logits(Session& session, const ChunkPlan& plan, int chunk, int n_batch, int32_t bos,
                  std::vector<float>& rows);

// -log p(token) under softmax(logits), computed as llama.cpp does (float max, double sum of expf).
double token_nll(const float* logits, int n_vocab, int32_t token);

// Running sums of the negative log-likelihoods; ppl() = exp(mean), uncertainty as llama.cpp prints it.
struct NllStats {
    double sum = 0, sum2 = 0;
    uint64_t count = 0;
    void add(double nll) {
        sum += nll;
        sum2 += nll * nll;
        ++count;
    }
    double mean() const { return count ? sum / double(count) : 0.0; }
    double ppl() const;
    double ppl_uncertainty() const;  // ppl * standard error of the mean NLL
};

// ---- llama.cpp's base-logits file (--kl-divergence-base) ----------------------------------------------
// "_logits_", u32 n_ctx, i32 n_vocab, i32 n_chunk, i32 tokens[n_chunk * n_ctx], then per chunk
// scored_per_chunk rows of log_prob_row_u16s(n_vocab) uint16: [f32 scale, f32 min log-prob] as 4 uint16,
// then each token's log-prob quantized to 16 bits over the 16 units below the maximum (lower ones are 0).
// Files written by either program are read by the other.
inline int log_prob_row_u16s(int n_vocab) {
    return 2 * ((n_vocab + 1) / 2) + 4;
}

// Quantizes one row of logits into `row` (log_prob_row_u16s entries); returns the NLL of `token`.
double compress_log_probs(const float* logits, int n_vocab, int32_t token, uint16_t* row);

class BaseLogitsWriter {
  public:
    // Creates `path` and writes the header. Throws Error if it cannot be written.
    BaseLogitsWriter(const std::string& path, const ChunkPlan& plan, int n_vocab);
    ~BaseLogitsWriter();
    void write_chunk(std::span<const uint16_t> rows);  // scored_per_chunk rows
    void finish();                                     // throws Error if anything failed to write

  private:
    struct Impl;
    Impl* impl_;
};

class BaseLogitsReader {
  public:
    // Opens and validates `path`: magic, sizes, and a length that matches n_chunk chunks exactly.
    // Throws FormatError naming the file.
    explicit BaseLogitsReader(const std::string& path);
    ~BaseLogitsReader();
    const ChunkPlan& plan() const;  // n_ctx, n_chunk and the tokens of the base run
    int n_vocab() const;
    // The next chunk's rows (scored_per_chunk * log_prob_row_u16s values).
    std::span<const uint16_t> read_chunk();

  private:
    struct Impl;
    Impl* impl_;
};

// ---- KL-divergence of a model's logits against base log-probs ----------------------------------------
struct KldStats {
    NllStats nll, nll_base;
    double sum_nll_nll_base = 0;
    double sum_kld = 0, sum_kld2 = 0;
    double sum_p_diff = 0, sum_p_diff2 = 0, sum_p_diff4 = 0;
    float max_p_diff = 0;
    uint64_t same_top = 0;
    uint64_t count = 0;
    std::vector<float> kld_values;  // one per scored token (for percentiles)

    // One scored position: logits of the model under test, the base row, the true next token.
    void add(const float* logits, const uint16_t* base_row, int n_vocab, int32_t token);

    double mean_kld() const;
    double kld_uncertainty() const;
    double same_top_fraction() const;
    double ln_ppl_ratio() const;              // mean ln(PPL(Q)/PPL(base))
    double ln_ppl_ratio_uncertainty() const;  // with the covariance of the two, as llama.cpp
    double ppl_diff() const;                  // PPL(Q) - PPL(base)
    double ppl_diff_uncertainty() const;
    double rms_p_diff() const;
    double kld_percentile(double fraction) const;  // of kld_values (sorted copy), interpolated
};

// ---- whole runs, shared by `infer perplexity` and `infer bench --perplexity` ---------------------------
// The token each chunk starts with: the model's BOS when its tokenizer adds one (as llama.cpp), else -1.
int32_t chunk_bos(const Model& model);

// Called after each chunk with its index (0-based).
using ChunkCallback = std::function<void(int chunk)>;

// Evaluates every chunk of `plan` in `session` (forward calls of at most n_batch tokens) and adds the NLL of
// each scored token to `nll`; with `writer`, also saves the log-probs (the base of a KL-divergence run).
void score_chunks(Session& session, const ChunkPlan& plan, int n_batch, int32_t bos, NllStats& nll,
                  BaseLogitsWriter* writer = nullptr, const ChunkCallback& after_chunk = {});

// Evaluates the first plan.n_chunk chunks of `plan` (the base run's: base.plan(), possibly fewer chunks)
// and compares each scored token with the base log-probs read from `base`, in `kld`.
void compare_chunks(Session& session, const ChunkPlan& plan, int n_batch, int32_t bos, BaseLogitsReader& base,
                    KldStats& kld, const ChunkCallback& after_chunk = {});

}  // namespace kinfer::quality
