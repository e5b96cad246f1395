#include "quality/perplexity.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

namespace kinfer::quality {

ChunkPlan plan_chunks(std::span<const int32_t> tokens, int n_ctx, int max_chunks) {
    if (n_ctx < 4)
        throw UsageError("the context must be at least 4 tokens (got " + std::to_string(n_ctx) + ")");
    if (tokens.size() < 2 * size_t(n_ctx))
        throw UsageError("the text tokenizes to only " + std::to_string(tokens.size()) +
                         " tokens; perplexity with a " + "context of " + std::to_string(n_ctx) +
                         " needs at least " + std::to_string(2 * n_ctx));
    ChunkPlan p;
    p.n_ctx = n_ctx;
    p.n_chunk = int(tokens.size() / size_t(n_ctx));
    if (max_chunks > 0) p.n_chunk = std::min(p.n_chunk, max_chunks);
    p.first = n_ctx / 2;
    p.tokens.assign(tokens.begin(), tokens.begin() + ptrdiff_t(p.n_chunk) * n_ctx);
    return p;
}

void chunk_logits(Session& session, const ChunkPlan& plan, int chunk, int n_batch, int32_t bos,
                  std::vector<float>& rows) {
    const int n_ctx = plan.n_ctx, first = plan.first;
    if (n_batch <= 0 || n_batch > n_ctx) n_batch = n_ctx;
    const size_t n_vocab = size_t(session.model().n_vocab());
    std::vector<int32_t> toks(plan.tokens.begin() + ptrdiff_t(chunk) * n_ctx,
                              plan.tokens.begin() + ptrdiff_t(chunk + 1) * n_ctx);
    if (bos >= 0) toks[0] = bos;  // every chunk starts like a document
    rows.resize(size_t(scored_per_chunk(n_ctx)) * n_vocab);
    session.reset();
    for (int start = 0; start < n_ctx; start += n_batch) {
        const int end = std::min(n_ctx, start + n_batch);
        const bool need = end > first;
        const auto logits =
            session.feed(std::span<const int32_t>(toks.data() + start, size_t(end - start)), need);
        if (!need) continue;
        for (int pos = std::max(start, first); pos < std::min(end, n_ctx - 1); ++pos)
            std::memcpy(rows.data() + size_t(pos - first) * n_vocab,
                        logits.data() + size_t(pos - start) * n_vocab, n_vocab * sizeof(float));
    }
}

double token_nll(const float* logits, int n_vocab, int32_t token) {
    float max_logit = logits[0];
    for (int i = 1; i < n_vocab; ++i) max_logit = std::max(max_logit, logits[i]);
    double sum_exp = 0;
    for (int i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
    return -(double(logits[token] - max_logit) - std::log(sum_exp));
}

namespace {

// Mean and standard error of the mean, as llama.cpp reports them (no error for 10 values or fewer).
std::pair<double, double> mean_and_uncertainty(double sum, double sum2, uint64_t count) {
    if (count < 1) return {0.0, 0.0};
    const double f = sum / double(count);
    double df = sum2 / double(count) - f * f;
    df = df > 0 && count > 10 ? std::sqrt(df / double(count - 1)) : 0.0;
    return {f, df};
}

double covariance(double suma, double sumb, double sumab, uint64_t count) {
    if (count < 10) return 0.0;
    const double n = double(count);
    return (sumab / n - (suma / n) * (sumb / n)) / (n - 1);
}

// llama.cpp's nearest_int: round half to even through the float mantissa.
int nearest_int(float v) {
    const float x = v + 12582912.f;
    int32_t i;
    std::memcpy(&i, &x, 4);
    return (i & 0x007fffff) - 0x00400000;
}

}  // namespace

double NllStats::ppl() const {
    return std::exp(mean());
}

double NllStats::ppl_uncertainty() const {
    if (count < 2) return 0.0;
    const double m = mean();
    const double var = sum2 / double(count) - m * m;
    return var > 0 ? std::sqrt(var / double(count - 1)) * ppl() : 0.0;
}

double compress_log_probs(const float* logits, int n_vocab, int32_t token, uint16_t* row) {
    float max_logit = logits[0], min_logit = logits[0];
    for (int i = 1; i < n_vocab; ++i) {
        max_logit = std::max(max_logit, logits[i]);
        min_logit = std::min(min_logit, logits[i]);
    }
    min_logit = std::max(min_logit, max_logit - 16);
    double sum_exp = 0;
    for (int i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
    const float log_sum_exp = float(std::log(sum_exp));
    const float min_log_prob = min_logit - max_logit - log_sum_exp;
    const float scale = (max_logit - min_logit) / 65535.f;
    std::memcpy(row, &scale, 4);
    std::memcpy(row + 2, &min_log_prob, 4);
    uint16_t* q = row + 4;
    if (scale != 0) {
        const float inv_scale = 1 / scale;
        for (int i = 0; i < n_vocab; ++i)
            q[i] = logits[i] > min_logit ? uint16_t(nearest_int(inv_scale * (logits[i] - min_logit))) : 0;
    } else {
        std::fill(q, q + n_vocab, uint16_t(0));
    }
    if (n_vocab % 2) q[n_vocab] = 0;  // the padding to an even count
    return double(max_logit + log_sum_exp - logits[token]);
}

// ---- base-logits file
// ----------------------------------------------------------------------------------------

struct BaseLogitsWriter::Impl {
    std::string path;
    std::ofstream out;
    size_t row_values = 0;
};

BaseLogitsWriter::BaseLogitsWriter(const std::string& path, const ChunkPlan& plan, int n_vocab)
    : impl_(new Impl) {
    impl_->path = path;
    impl_->out.open(path, std::ios::binary | std::ios::trunc);
    if (!impl_->out) {
        delete impl_;
        throw Error(path + ": cannot create");
    }
    impl_->row_values = size_t(scored_per_chunk(plan.n_ctx)) * size_t(log_prob_row_u16s(n_vocab));
    const uint32_t n_ctx = uint32_t(plan.n_ctx);
    const int32_t nv = n_vocab, nc = plan.n_chunk;
    impl_->out.write("_logits_", 8);
    impl_->out.write(reinterpret_cast<const char*>(&n_ctx), 4);
    impl_->out.write(reinterpret_cast<const char*>(&nv), 4);
    impl_->out.write(reinterpret_cast<const char*>(&nc), 4);
    impl_->out.write(reinterpret_cast<const char*>(plan.tokens.data()),
                     std::streamsize(plan.tokens.size() * 4));
}

BaseLogitsWriter::~BaseLogitsWriter() {
    delete impl_;
}

void BaseLogitsWriter::write_chunk(std::span<const uint16_t> rows) {
    if (rows.size() != impl_->row_values) throw Error(impl_->path + ": internal error: wrong chunk size");
    impl_->out.write(reinterpret_cast<const char*>(rows.data()), std::streamsize(rows.size() * 2));
}

void BaseLogitsWriter::finish() {
    impl_->out.flush();
    if (!impl_->out) throw Error(impl_->path + ": write failed (disk full?)");
    impl_->out.close();
}

struct BaseLogitsReader::Impl {
    std::string path;
    std::ifstream in;
    ChunkPlan plan;
    int n_vocab = 0;
    int next_chunk = 0;
    std::vector<uint16_t> rows;
};

BaseLogitsReader::BaseLogitsReader(const std::string& path) : impl_(new Impl) {
    std::unique_ptr<Impl> guard(impl_);
    Impl& r = *impl_;
    r.path = path;
    const auto fail = [&](const std::string& what) -> void {
        throw FormatError(path + ": not a base-logits file of llama-perplexity / infer perplexity: " + what);
    };
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) throw Error(path + ": cannot open: " + ec.message());
    r.in.open(path, std::ios::binary);
    if (!r.in) throw Error(path + ": cannot open");
    char magic[8] = {};
    uint32_t n_ctx = 0;
    int32_t n_vocab = 0, n_chunk = 0;
    r.in.read(magic, 8);
    r.in.read(reinterpret_cast<char*>(&n_ctx), 4);
    r.in.read(reinterpret_cast<char*>(&n_vocab), 4);
    r.in.read(reinterpret_cast<char*>(&n_chunk), 4);
    if (!r.in || std::memcmp(magic, "_logits_", 8) != 0) fail("no \"_logits_\" header");
    if (n_ctx < 4 || n_ctx > (1u << 24)) fail("context size " + std::to_string(n_ctx) + " is out of range");
    if (n_vocab < 1 || n_vocab > (1 << 24))
        fail("vocabulary size " + std::to_string(n_vocab) + " is out of range");
    if (n_chunk < 1) fail("chunk count " + std::to_string(n_chunk) + " is out of range");
    // The exact length this header implies; computed in 128 bits so hostile counts cannot wrap around.
    const unsigned __int128 rows =
        (unsigned __int128)scored_per_chunk(int(n_ctx)) * uint32_t(log_prob_row_u16s(n_vocab));
    const unsigned __int128 want =
        20 + (unsigned __int128)n_chunk * n_ctx * 4 + (unsigned __int128)n_chunk * rows * 2;
    if (want != size)
        fail("its header (n_ctx " + std::to_string(n_ctx) + ", n_vocab " + std::to_string(n_vocab) + ", " +
             std::to_string(n_chunk) + " chunks) needs " +
             (want > UINT64_MAX ? std::string("more") : std::to_string(uint64_t(want))) +
             " bytes, the file has " + std::to_string(size));
    r.plan.n_ctx = int(n_ctx);
    r.plan.n_chunk = n_chunk;
    r.plan.first = int(n_ctx) / 2;
    r.plan.tokens.resize(size_t(n_chunk) * n_ctx);
    r.in.read(reinterpret_cast<char*>(r.plan.tokens.data()), std::streamsize(r.plan.tokens.size() * 4));
    if (!r.in) fail("truncated token list");
    for (size_t i = 0; i < r.plan.tokens.size(); ++i)
        if (r.plan.tokens[i] < 0 || r.plan.tokens[i] >= n_vocab)
            fail("token " + std::to_string(i) + " is " + std::to_string(r.plan.tokens[i]) +
                 ", outside the vocabulary");
    r.n_vocab = n_vocab;
    r.rows.resize(size_t(rows));
    guard.release();
}

BaseLogitsReader::~BaseLogitsReader() {
    delete impl_;
}
const ChunkPlan& BaseLogitsReader::plan() const {
    return impl_->plan;
}
int BaseLogitsReader::n_vocab() const {
    return impl_->n_vocab;
}

std::span<const uint16_t> BaseLogitsReader::read_chunk() {
    Impl& r = *impl_;
    if (r.next_chunk >= r.plan.n_chunk) throw Error(r.path + ": read past the last chunk");
    r.in.read(reinterpret_cast<char*>(r.rows.data()), std::streamsize(r.rows.size() * 2));
    if (!r.in) throw FormatError(r.path + ": chunk " + std::to_string(r.next_chunk) + " is truncated");
    ++r.next_chunk;
    return r.rows;
}

// ---- KL-divergence
// -------------------------------------------------------------------------------------------

void KldStats::add(const float* logits, const uint16_t* base_row, int n_vocab, int32_t token) {
    float max_logit = logits[0];
    int imax = 0;
    for (int i = 1; i < n_vocab; ++i)
        if (logits[i] > max_logit) {
            max_logit = logits[i];
            imax = i;
        }
    double sum_exp = 0;
    for (int i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
    const float log_sum_exp = float(std::log(sum_exp));
    float scale, min_log_prob;
    std::memcpy(&scale, base_row, 4);
    std::memcpy(&min_log_prob, base_row + 2, 4);
    const uint16_t* q = base_row + 4;

    const float nll_q = max_logit + log_sum_exp - logits[token];
    const float nll_b = -(scale * float(q[token]) + min_log_prob);
    nll.add(nll_q);
    nll_base.add(nll_b);
    sum_nll_nll_base += double(nll_q) * double(nll_b);

    const float log_norm = max_logit + log_sum_exp;
    double kld = 0;
    int imax_base = -1;
    float best = 0;
    for (int i = 0; i < n_vocab; ++i) {
        const float lp_base = scale * float(q[i]) + min_log_prob;
        if (i == 0 || lp_base > best) {
            best = lp_base;
            imax_base = i;
        }
        // KL(base || Q) = sum p_base (log p_base - log p_Q); tokens below e^-16 in the base are dropped
        if (lp_base > -16.f) kld += std::exp(lp_base) * (lp_base - logits[i] + log_norm);
    }
    sum_kld += kld;
    sum_kld2 += kld * kld;
    kld_values.push_back(float(kld));
    ++count;
    same_top += imax == imax_base ? 1 : 0;

    const float p_diff = std::exp(-nll_q) - std::exp(-nll_b);
    sum_p_diff += p_diff;
    const double d2 = double(p_diff) * p_diff;
    sum_p_diff2 += d2;
    sum_p_diff4 += d2 * d2;
    max_p_diff = std::max(max_p_diff, std::fabs(p_diff));
}

double KldStats::mean_kld() const {
    return mean_and_uncertainty(sum_kld, sum_kld2, count).first;
}
double KldStats::kld_uncertainty() const {
    return mean_and_uncertainty(sum_kld, sum_kld2, count).second;
}
double KldStats::same_top_fraction() const {
    return count ? double(same_top) / double(count) : 0.0;
}

double KldStats::ln_ppl_ratio() const {
    return mean_and_uncertainty(nll.sum, nll.sum2, count).first -
           mean_and_uncertainty(nll_base.sum, nll_base.sum2, count).first;
}

double KldStats::ln_ppl_ratio_uncertainty() const {
    const double a = mean_and_uncertainty(nll.sum, nll.sum2, count).second;
    const double b = mean_and_uncertainty(nll_base.sum, nll_base.sum2, count).second;
    const double v = a * a + b * b - 2.0 * covariance(nll.sum, nll_base.sum, sum_nll_nll_base, count);
    return v > 0 ? std::sqrt(v) : 0.0;
}

double KldStats::ppl_diff() const {
    return std::exp(mean_and_uncertainty(nll.sum, nll.sum2, count).first) -
           std::exp(mean_and_uncertainty(nll_base.sum, nll_base.sum2, count).first);
}

double KldStats::ppl_diff_uncertainty() const {
    const auto q = mean_and_uncertainty(nll.sum, nll.sum2, count);
    const auto b = mean_and_uncertainty(nll_base.sum, nll_base.sum2, count);
    const double pq = std::exp(q.first), pb = std::exp(b.first);
    const double uq = pq * q.second, ub = pb * b.second;
    const double v =
        uq * uq + ub * ub - 2.0 * pq * pb * covariance(nll.sum, nll_base.sum, sum_nll_nll_base, count);
    return v > 0 ? std::sqrt(v) : 0.0;
}

double KldStats::rms_p_diff() const {
    return std::sqrt(mean_and_uncertainty(sum_p_diff2, sum_p_diff4, count).first);
}

double KldStats::kld_percentile(double fraction) const {
    if (kld_values.empty()) return 0.0;
    std::vector<float> v = kld_values;
    std::sort(v.begin(), v.end());
    if (fraction <= 0) return v.front();
    if (fraction >= 1) return v.back();
    const double p = fraction * double(v.size() - 1);
    const size_t i = size_t(p);
    const double t = p - double(i);
    return (1 - t) * v[i] + t * v[std::min(i + 1, v.size() - 1)];
}

// ---- whole runs
// ----------------------------------------------------------------------------------------------

int32_t chunk_bos(const Model& model) {
    const std::vector<int32_t> empty =
        model.tokenize("", /*add_bos=*/true);  // BOS only if the model adds one
    return empty.empty() ? -1 : empty.front();
}

void score_chunks(Session& session, const ChunkPlan& plan, int n_batch, int32_t bos, NllStats& nll,
                  BaseLogitsWriter* writer, const ChunkCallback& after_chunk) {
    const int n_vocab = session.model().n_vocab();
    const int rows = scored_per_chunk(plan.n_ctx), nv = log_prob_row_u16s(n_vocab);
    std::vector<float> logits;
    std::vector<uint16_t> packed(writer ? size_t(rows) * size_t(nv) : 0);
    for (int c = 0; c < plan.n_chunk; ++c) {
        chunk_logits(session, plan, c, n_batch, bos, logits);
        const int32_t* targets = plan.tokens.data() + size_t(c) * size_t(plan.n_ctx) + plan.first + 1;
        for (int r = 0; r < rows; ++r) {
            const float* row = logits.data() + size_t(r) * size_t(n_vocab);
            nll.add(writer
                        ? compress_log_probs(row, n_vocab, targets[r], packed.data() + size_t(r) * size_t(nv))
                        : token_nll(row, n_vocab, targets[r]));
        }
        if (writer) writer->write_chunk(packed);
        if (after_chunk) after_chunk(c);
    }
}

void compare_chunks(Session& session, const ChunkPlan& plan, int n_batch, int32_t bos, BaseLogitsReader& base,
                    KldStats& kld, const ChunkCallback& after_chunk) {
    const int n_vocab = session.model().n_vocab();
    if (base.n_vocab() != n_vocab)
        throw FormatError("the base log-probs have a vocabulary of " + std::to_string(base.n_vocab()) +
                          " tokens, the model " + std::to_string(n_vocab));
    const int rows = scored_per_chunk(plan.n_ctx), nv = log_prob_row_u16s(n_vocab);
    std::vector<float> logits;
    for (int c = 0; c < plan.n_chunk; ++c) {
        chunk_logits(session, plan, c, n_batch, bos, logits);
        const int32_t* targets = plan.tokens.data() + size_t(c) * size_t(plan.n_ctx) + plan.first + 1;
        const auto base_rows = base.read_chunk();
        for (int r = 0; r < rows; ++r)
            kld.add(logits.data() + size_t(r) * size_t(n_vocab), base_rows.data() + size_t(r) * size_t(nv),
                    n_vocab, targets[r]);
        if (after_chunk) after_chunk(c);
    }
}

}  // namespace kinfer::quality
