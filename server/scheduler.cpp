// The continuous-batching scheduler (include/kinfer/scheduler.hpp). One thread owns the slots: each turn
// it admits queued requests into idle slots, drops cancelled ones, then runs one BatchDecoder step holding
// every active slot's next input (a decode token, or a chunk of a prompt), and samples for every slot whose
// prompt is complete. Per slot the pieces of the single-session loop (engine/generate.cpp) are reused:
// the prefix reuse rule, the Sampler, the UTF-8-safe StreamingDecoder and the StopStringMatcher.
#include "kinfer/scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>

#include "engine/batch_decoder.hpp"
#include "engine/generate.hpp"
#include "engine/json_mask.hpp"
#include "engine/sampler.hpp"
#include "engine/session.hpp"
#include "engine/stop_strings.hpp"
#include "src/model_access.hpp"
#include "tokenizer/streaming_decoder.hpp"

namespace kinfer {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

}  // namespace

// ---- CompletionStream ----------------------------------------------------------------------------------

struct Waker;

struct CompletionStream::Impl {
    CompletionRequest request;
    mutable std::mutex mutex;
    std::condition_variable changed;
    std::string pending;                  // text not yet taken by wait()
    std::vector<TokenLogprobs> logprobs;  // every token's log probabilities handed out so far
    size_t logprobs_taken = 0;            // how many of them wait() gave out
    GenerateResult result;
    std::string error;
    bool finished = false;
    std::atomic<bool> cancelled{false};
    std::shared_ptr<Waker> waker;  // cancel() wakes the scheduler's thread
};

// How a stream reaches its scheduler: streams may outlive it, so the link is cut when it goes.
struct Waker {
    std::mutex mutex;
    std::function<void()> wake;  // null once the scheduler is gone
    void operator()() {
        std::lock_guard lock(mutex);
        if (wake) wake();
    }
};

CompletionStream::CompletionStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CompletionStream::~CompletionStream() = default;

bool CompletionStream::wait(std::string& out, std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mutex);
    impl_->changed.wait_for(lock, timeout, [&] { return !impl_->pending.empty() || impl_->finished; });
    out += impl_->pending;
    impl_->pending.clear();
    impl_->logprobs_taken = impl_->logprobs.size();
    return impl_->finished;
}

bool CompletionStream::wait(std::string& out, std::vector<TokenLogprobs>& logprobs,
                            std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mutex);
    impl_->changed.wait_for(lock, timeout, [&] {
        return !impl_->pending.empty() || impl_->logprobs_taken < impl_->logprobs.size() || impl_->finished;
    });
    out += impl_->pending;
    impl_->pending.clear();
    logprobs.insert(logprobs.end(), impl_->logprobs.begin() + ptrdiff_t(impl_->logprobs_taken),
                    impl_->logprobs.end());
    impl_->logprobs_taken = impl_->logprobs.size();
    return impl_->finished;
}

std::vector<TokenLogprobs> CompletionStream::logprobs() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->logprobs;
}

void CompletionStream::cancel() {
    impl_->cancelled.store(true);
    if (impl_->waker) (*impl_->waker)();
}

bool CompletionStream::finished() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->finished;
}

GenerateResult CompletionStream::result() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->result;
}

std::string CompletionStream::error() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->error;
}

// ---- Scheduler -----------------------------------------------------------------------------------------

namespace {

// One slot: a session and, while it serves a request, that request's generation state.
struct Slot {
    engine::Session session;
    std::shared_ptr<CompletionStream> stream;  // null: idle
    CompletionStream::Impl* req = nullptr;     // stream's state
    size_t n_fed = 0;                          // prompt tokens in the session
    bool decoding = false;                     // prompt done: the next input is `next_token`
    int32_t next_token = 0;
    std::optional<engine::Sampler> sampler;
    std::optional<tokenizer::StreamingDecoder> decoder;
    std::optional<engine::StopStringMatcher> matcher;
    std::string piece;                 // scratch for decoded text
    std::vector<float> masked_logits;  // ignore_eos, JSON mode: the logits without the tokens they forbid
    std::vector<engine::TopCandidate> masked_top;  // ignore_eos: the candidates without them
    int32_t top_k = 0;  // candidates each step keeps for the sampler (0: full logits)
    // top_logprobs requests: tokens' log probabilities waiting for their text to be handed out (the
    // decoder and the stop-string matcher hold text back), and the text's length in and out of the matcher.
    std::vector<TokenLogprobs> held;
    size_t decoded_bytes = 0, emitted_bytes = 0;
    std::vector<engine::TopCandidate> best;  // scratch for the alternatives
    std::optional<engine::JsonPrefix> json;  // json_object requests: the reply so far, as JSON
    Clock::time_point t_start, t_prompt_done;
    uint64_t last_used = 0;  // when its last request ended (larger: more recent)

    Slot(std::shared_ptr<const engine::Model> model, const engine::SessionOptions& o) : session(model, o) {}
};

}  // namespace

struct Scheduler::Impl {
    Model model;
    SchedulerOptions options;
    const tokenizer::Tokenizer* tok;
    int n_ctx;
    std::vector<std::unique_ptr<Slot>> slots;
    std::vector<int32_t> eog_ids;  // the vocabulary's end-of-generation tokens (masked for ignore_eos)
    std::unique_ptr<engine::JsonMask> json_mask;  // made for the first json_object request
    std::optional<engine::BatchDecoder> batch;
    int64_t decode_tokens_max = 0;  // the backend's: the most tokens a step takes through the decode kernels

    mutable std::mutex mutex;  // guards queue, stats, stop
    std::condition_variable wake;
    std::deque<std::shared_ptr<CompletionStream>> queue;
    SchedulerStats stats;
    bool stop = false;
    bool woken = false;  // something changed since the thread last looked (a cancel)
    std::thread thread;
    std::shared_ptr<Waker> waker = std::make_shared<Waker>();

    // Throughput window for stats.tokens_per_second.
    Clock::time_point window_start = Clock::now();
    uint64_t window_tokens = 0;

    uint64_t use_counter = 0;
    std::vector<engine::SequenceInput> inputs;
    std::vector<Slot*> input_slots;

    explicit Impl(const Model& m) : model(m) {}
    void run();
    void admit(std::shared_ptr<CompletionStream> stream);
    void finish(Slot& s, StopReason reason, const std::string& error = {});
    void emit(Slot& s, const std::string& text);
    void release_logprobs(Slot& s, bool all);
    TokenLogprobs token_logprobs(Slot& s, int32_t id);
    void after_token(Slot& s);
    void step(bool decode);
    void count_tokens(uint64_t n);
};

Scheduler::Scheduler(const Model& model, const SchedulerOptions& options)
    : impl_(std::make_unique<Impl>(model)) {
    Impl& m = *impl_;
    m.options = options;
    if (options.slots < 1 || options.slots > 1024)
        throw UsageError("scheduler: slots must be in [1, 1024], got " + std::to_string(options.slots));
    if (options.max_queued < 0)
        throw UsageError("scheduler: max_queued must be >= 0, got " + std::to_string(options.max_queued));
    if (options.batch_tokens < options.slots)
        throw UsageError("scheduler: batch_tokens (" + std::to_string(options.batch_tokens) +
                         ") must be at least the number of slots (" + std::to_string(options.slots) + ")");
    if (options.prefill_chunk < 1)
        throw UsageError("scheduler: prefill_chunk must be >= 1, got " +
                         std::to_string(options.prefill_chunk));
    if (options.n_ctx < 0)
        throw UsageError("scheduler: n_ctx must be >= 0, got " + std::to_string(options.n_ctx));
    m.tok = &ModelAccess::tokenizer(model);
    for (int32_t id = 0; id < model.n_vocab(); ++id)
        if (m.tok->is_eog(id)) m.eog_ids.push_back(id);
    const auto& em = ModelAccess::engine_model(model);
    m.n_ctx = std::min(options.n_ctx > 0 ? options.n_ctx : model.n_ctx(), model.n_ctx_train());
    engine::SessionOptions so{.n_ctx = m.n_ctx, .kv_type = ModelAccess::kv_type(model), .n_batch = 1};
    for (int i = 0; i < options.slots; ++i) m.slots.push_back(std::make_unique<Slot>(em, so));
    m.batch.emplace(em, options.batch_tokens, m.n_ctx);
    m.decode_tokens_max = m.batch->decode_tokens_max();
    // KINFER_MIX_PROMPTS=0: short prompts take a step of their own too (comparisons).
    if (const char* mix = std::getenv("KINFER_MIX_PROMPTS"); mix && std::string(mix) == "0")
        m.decode_tokens_max = 0;
    m.stats.slots = options.slots;
    m.waker->wake = [&m] {
        {
            std::lock_guard lock(m.mutex);
            m.woken = true;
        }
        m.wake.notify_all();
    };
    m.thread = std::thread([&m] { m.run(); });
}

Scheduler::~Scheduler() {
    {
        std::lock_guard lock(impl_->waker->mutex);
        impl_->waker->wake = nullptr;
    }
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stop = true;
    }
    impl_->wake.notify_all();
    impl_->thread.join();
}

const SchedulerOptions& Scheduler::options() const {
    return impl_->options;
}
int Scheduler::slot_context() const {
    return impl_->n_ctx;
}
const Model& Scheduler::model() const {
    return impl_->model;
}

SchedulerStats Scheduler::stats() const {
    std::lock_guard lock(impl_->mutex);
    SchedulerStats s = impl_->stats;
    s.queued = int(impl_->queue.size());
    const double window = seconds_between(impl_->window_start, Clock::now());
    // The last full window's rate, or the current one's once it is long enough to mean something.
    if (window > 1.0) s.tokens_per_second = std::max(s.tokens_per_second, impl_->window_tokens / window);
    return s;
}

std::shared_ptr<CompletionStream> Scheduler::submit(CompletionRequest request) {
    Impl& m = *impl_;
    const auto& prompt = request.prompt;
    if (prompt.empty()) throw UsageError("empty prompt: nothing to generate from");
    if (int64_t(prompt.size()) > m.n_ctx)
        throw UsageError("the prompt is " + std::to_string(prompt.size()) +
                         " tokens, longer than the context of " + std::to_string(m.n_ctx) + " tokens");
    for (const int32_t id : prompt)
        if (id < 0 || id >= m.model.n_vocab())
            throw UsageError("prompt token id " + std::to_string(id) + " is outside the vocabulary (" +
                             std::to_string(m.model.n_vocab()) + " tokens)");
    if (request.top_logprobs < -1 || request.top_logprobs > kMaxTopLogprobs)
        throw UsageError("top_logprobs must be in [-1, " + std::to_string(kMaxTopLogprobs) + "], got " +
                         std::to_string(request.top_logprobs));
    for (const auto& s : request.options.stop) {
        if (s.empty()) throw UsageError("stop strings must not be empty");
        ModelAccess::check_utf8(s, "stop string");
    }
    engine::Sampler check(request.options.sampling, m.model.n_vocab());  // throws for invalid options
    (void)check;

    auto impl = std::make_unique<CompletionStream::Impl>();
    impl->request = std::move(request);
    impl->waker = m.waker;
    auto stream = std::make_shared<CompletionStream>(std::move(impl));
    {
        std::lock_guard lock(m.mutex);
        if (int(m.queue.size()) >= m.options.max_queued + m.options.slots - m.stats.busy) {
            ++m.stats.rejected;
            throw QueueFullError("the server is busy: " + std::to_string(m.queue.size()) +
                                 " requests are waiting (the queue holds " +
                                 std::to_string(m.options.max_queued) + ")");
        }
        m.queue.push_back(stream);
        ++m.stats.requests;
    }
    m.wake.notify_all();
    return stream;
}

void Scheduler::Impl::count_tokens(uint64_t n) {
    // Called with `mutex` held.
    stats.generated_tokens += n;
    window_tokens += n;
    const auto now = Clock::now();
    const double window = seconds_between(window_start, now);
    if (window >= 5.0) {
        stats.tokens_per_second = window_tokens / window;
        window_start = now;
        window_tokens = 0;
    }
}

void Scheduler::Impl::emit(Slot& s, const std::string& text) {
    if (text.empty()) return;
    std::lock_guard lock(s.req->mutex);
    s.req->result.text += text;
    s.req->pending += text;
    s.emitted_bytes += text.size();
    release_logprobs(s, false);
    s.req->changed.notify_all();
}

// Hands out the held log probabilities of the tokens whose text has begun to be handed out (all: every one
// held). Called with the request's mutex held.
void Scheduler::Impl::release_logprobs(Slot& s, bool all) {
    size_t n = 0;
    while (n < s.held.size() && (all || s.held[n].text_offset < s.emitted_bytes)) ++n;
    if (n == 0) return;
    std::move(s.held.begin(), s.held.begin() + ptrdiff_t(n), std::back_inserter(s.req->logprobs));
    s.held.erase(s.held.begin(), s.held.begin() + ptrdiff_t(n));
}

// Token `id`'s log probability and the request's top_logprobs best alternatives, from the slot's raw logits:
// log p(i) = l_i - m - log(sum_j exp(l_j - m)) with m the largest logit (no overflow, the sum >= 1). The
// terms in float (each within 1e-7 of itself; the largest, 1, exact), added in double: a double exp per
// token of the vocabulary took ~0.5 ms a step.
TokenLogprobs Scheduler::Impl::token_logprobs(Slot& s, int32_t id) {
    const std::span<const float> logits = s.session.logits();
    float m = -INFINITY;
    for (const float l : logits) m = std::max(m, l);
    double sum = 0;
    for (const float l : logits) sum += double(std::exp(l - m));
    const double log_z = double(m) + std::log(sum);
    const auto entry = [&](int32_t t) {
        return TokenLogprob{t, std::string(tok->piece(t, true)), float(double(logits[size_t(t)]) - log_z)};
    };
    TokenLogprobs out{entry(id), {}, s.decoded_bytes};
    const int32_t n = std::min<int32_t>(s.req->request.top_logprobs, int32_t(logits.size()));
    if (n > 0) {
        s.best.resize(size_t(n));
        engine::select_top(logits, n, s.best);
        out.top.reserve(size_t(n));
        for (const engine::TopCandidate& c : s.best) out.top.push_back(entry(c.id));
    }
    return out;
}

void Scheduler::Impl::finish(Slot& s, StopReason reason, const std::string& error) {
    // Flush what the decoder and the stop-string matcher still hold (as generate() does).
    if (error.empty() && s.decoder && s.matcher && !s.matcher->stopped()) {
        emit(s, s.matcher->push(s.decoder->finish()));
        if (!s.matcher->stopped()) emit(s, s.matcher->flush());
        if (s.matcher->stopped() && reason != StopReason::Interrupted) reason = StopReason::StopString;
    }
    const auto now = Clock::now();
    GenerateResult& r = s.req->result;  // only this thread writes it
    {
        // The scheduler's counts first: whoever sees the request finished also sees them.
        std::lock_guard lock(mutex);
        ++stats.finished;
        if (reason == StopReason::Interrupted) ++stats.cancelled;
        if (s.decoding) stats.prompt_tokens += uint64_t(r.prompt_tokens - r.prompt_cached);
        stats.prompt_cached += uint64_t(r.prompt_cached);
        --stats.busy;
    }
    {
        std::lock_guard lock(s.req->mutex);
        // Text the decoder or the matcher held is out now; what a stop string cut away has no tokens to show.
        if (!(s.matcher && s.matcher->stopped())) release_logprobs(s, true);
        s.held.clear();
        r.stop_reason = reason;
        if (reason == StopReason::ContextFull)
            r.message = "context full (" + std::to_string(n_ctx) + " tokens): generation stopped";
        if (s.decoding) {
            r.prompt_seconds = seconds_between(s.t_start, s.t_prompt_done);
            r.generate_seconds = seconds_between(s.t_prompt_done, now);
        } else {
            r.prompt_seconds = seconds_between(s.t_start, now);
        }
        s.req->error = error;
        s.req->finished = true;
        s.req->changed.notify_all();
    }
    s.last_used = ++use_counter;
    s.stream.reset();
    s.req = nullptr;
    s.sampler.reset();
    s.decoder.reset();
    s.matcher.reset();
    s.decoding = false;
}

void Scheduler::Impl::admit(std::shared_ptr<CompletionStream> stream) {
    // The idle slot whose cache shares the longest prefix with the prompt: a follow-up turn of a
    // conversation lands where that conversation is. When no slot shares more than a BOS token, the one
    // idle the longest, so recent conversations stay cached for their next turn.
    const auto& prompt = stream->impl_->request.prompt;
    Slot* best = nullptr;
    int64_t best_reuse = -1;
    for (auto& slot : slots) {
        if (slot->stream) continue;
        const int64_t reuse = engine::reusable_prefix(slot->session, prompt);
        const int64_t score = reuse > 1 ? reuse : 0;
        const int64_t best_score = best_reuse > 1 ? best_reuse : 0;
        if (!best || score > best_score || (score == best_score && slot->last_used < best->last_used))
            best = slot.get(), best_reuse = reuse;
    }
    Slot& s = *best;
    s.stream = std::move(stream);
    s.req = s.stream->impl_.get();
    const auto& o = s.req->request.options;
    s.session.truncate(best_reuse);
    s.n_fed = size_t(best_reuse);
    s.decoding = false;
    s.sampler.emplace(o.sampling, s.session.n_vocab());
    // Greedy and top-k sampling read only the best few candidates of a step (selected on the device);
    // ignore_eos drops end-of-generation tokens from them, so it asks for that many more.
    s.top_k = s.sampler->candidates_needed();
    if (s.top_k > 0 && s.req->request.ignore_eos) s.top_k += int32_t(eog_ids.size());
    if (s.top_k > s.session.n_vocab()) s.top_k = 0;
    if (s.req->request.top_logprobs >= 0) s.top_k = 0;  // log probabilities need the whole distribution
    s.json.reset();
    if (o.json_object) {
        s.top_k = 0;  // the mask may leave any token
        s.json.emplace();
        if (!json_mask) json_mask = std::make_unique<engine::JsonMask>(*tok);
    }
    s.held.clear();
    s.decoded_bytes = s.emitted_bytes = 0;
    s.decoder.emplace(*tok,
                      tokenizer::StreamingOptions{.strip_leading_space = s.req->request.strip_leading_space});
    s.matcher.emplace(o.stop);
    s.t_start = Clock::now();
    std::lock_guard lock(s.req->mutex);
    s.req->result.prompt_tokens = int(prompt.size());
    s.req->result.prompt_cached = int(best_reuse);
}

// After the slot's logits are fresh (its prompt completed, or its last token was evaluated): sample the
// next token and turn it into text, or finish.
void Scheduler::Impl::after_token(Slot& s) {
    const GenerateOptions& o = s.req->request.options;
    GenerateResult& r = s.req->result;  // generated_tokens is only written by this thread
    if (o.max_tokens >= 0 && r.generated_tokens >= o.max_tokens) return finish(s, StopReason::MaxTokens);
    int32_t id = 0;
    if (s.top_k > 0) {
        std::span<const engine::TopCandidate> top = s.session.top();
        if (s.req->request.ignore_eos) {
            s.masked_top.clear();  // capacity kept: no allocation per token
            for (const engine::TopCandidate& c : top)
                if (std::find(eog_ids.begin(), eog_ids.end(), c.id) == eog_ids.end())
                    s.masked_top.push_back(c);
            top = s.masked_top;
        }
        id = s.sampler->sample(top);
    } else {
        std::span<const float> logits = s.session.logits();
        if (s.req->request.ignore_eos || s.json) {
            s.masked_logits.assign(logits.begin(), logits.end());  // capacity kept: no allocation per token
            if (!s.json) {
                for (const int32_t eog : eog_ids) s.masked_logits[size_t(eog)] = -INFINITY;
            } else if (json_mask->apply(*s.json, s.masked_logits) == 0) {
                // The mask refuses end-of-generation tokens itself. No token continues the object (a
                // vocabulary without the bytes it needs): end it here.
                return finish(s, StopReason::EndOfGeneration);
            }
            logits = s.masked_logits;
        }
        id = s.sampler->sample(logits, s.session.tokens());
        // A masked token wins only when every allowed one is at -inf too (biases): end the object there.
        if (s.json && !s.json->push(json_mask->bytes(id))) return finish(s, StopReason::EndOfGeneration);
    }
    if (tok->is_eog(id)) return finish(s, StopReason::EndOfGeneration);
    {
        std::lock_guard lock(s.req->mutex);
        ++r.generated_tokens;
    }
    {
        std::lock_guard lock(mutex);
        count_tokens(1);
    }
    s.piece.clear();
    s.decoder->push(id, s.piece);
    if (s.req->request.top_logprobs >= 0) s.held.push_back(token_logprobs(s, id));
    s.decoded_bytes += s.piece.size();
    emit(s, s.matcher->push(s.piece));
    if (s.matcher->stopped()) return finish(s, StopReason::StopString);
    if (s.json && s.json->complete()) return finish(s, StopReason::EndOfGeneration);
    // The last token needs no evaluation: nothing will be sampled after it.
    if (o.max_tokens >= 0 && r.generated_tokens >= o.max_tokens) return finish(s, StopReason::MaxTokens);
    if (s.session.n_past() >= s.session.n_ctx()) return finish(s, StopReason::ContextFull);
    s.next_token = id;
}

// One batched forward step over the decoding slots (decode = true: one token each) or the slots still
// evaluating their prompt (a chunk each, at most batch_tokens in all); then sampling where a slot's
// logits are fresh.
void Scheduler::Impl::step(bool decode) {
    inputs.clear();
    input_slots.clear();
    int64_t room = options.batch_tokens;
    for (auto& slot : slots) {
        if (!slot->stream || slot->decoding != decode || room <= 0) continue;
        if (decode) {
            inputs.push_back({&slot->session, std::span<const int32_t>(&slot->next_token, 1), slot->top_k});
            room -= 1;
        } else {
            const auto& prompt = slot->req->request.prompt;
            const int64_t take =
                std::min<int64_t>({int64_t(prompt.size() - slot->n_fed), options.prefill_chunk, room});
            inputs.push_back({&slot->session,
                              std::span<const int32_t>(prompt).subspan(slot->n_fed, size_t(take)),
                              slot->top_k});
            room -= take;
        }
        input_slots.push_back(slot.get());
    }
    // A prompt whose rest fits beside the decode tokens within the decode kernels' step size joins them:
    // all of it, so that its tokens are computed as they would be alone (its own short-prompt step took the
    // same kernels), and a new request costs the other streams no step of its own.
    if (decode && !inputs.empty()) {
        int64_t mix = std::min<int64_t>(room, decode_tokens_max - int64_t(inputs.size()));
        for (auto& slot : slots) {
            if (!slot->stream || slot->decoding) continue;
            const auto& prompt = slot->req->request.prompt;
            const int64_t rest = int64_t(prompt.size() - slot->n_fed);
            if (rest > mix || rest > options.prefill_chunk) continue;
            inputs.push_back(
                {&slot->session, std::span<const int32_t>(prompt).subspan(slot->n_fed), slot->top_k});
            input_slots.push_back(slot.get());
            mix -= rest;
            room -= rest;
        }
    }
    if (inputs.empty()) return;

    const auto t0 = Clock::now();
    try {
        batch->decode(inputs);
    } catch (const std::exception& e) {
        // Checked at submit(), so this is an engine failure: the requests of this step end with it.
        for (Slot* s : input_slots) finish(*s, StopReason::EndOfGeneration, e.what());
        return;
    }
    for (size_t i = 0; i < input_slots.size(); ++i) {
        Slot& s = *input_slots[i];
        if (!s.decoding) {
            s.n_fed += inputs[i].tokens.size();
            if (s.n_fed < s.req->request.prompt.size()) continue;  // more chunks to come
            s.decoding = true;
            s.t_prompt_done = Clock::now();
        }
        after_token(s);
    }
    std::lock_guard lock(mutex);
    ++stats.steps;
    stats.busy_seconds += seconds_between(t0, Clock::now());
}

void Scheduler::Impl::run() {
    for (;;) {
        // ---- admit and drop, under the lock ----
        {
            std::unique_lock lock(mutex);
            const auto has_work = [&] {
                if (stop || woken) return true;
                for (const auto& s : slots)
                    if (s->stream) return true;
                return !queue.empty();
            };
            wake.wait(lock, has_work);
            woken = false;
            if (stop) break;
            // Cancelled requests leave the queue at once.
            for (auto it = queue.begin(); it != queue.end();) {
                if ((*it)->impl_->cancelled.load()) {
                    auto& req = *(*it)->impl_;
                    {
                        std::lock_guard rl(req.mutex);
                        req.result.stop_reason = StopReason::Interrupted;
                        req.result.prompt_tokens = int(req.request.prompt.size());
                        req.finished = true;
                        req.changed.notify_all();
                    }
                    ++stats.finished;
                    ++stats.cancelled;
                    it = queue.erase(it);
                } else {
                    ++it;
                }
            }
            while (!queue.empty() && stats.busy < int(slots.size())) {
                auto stream = std::move(queue.front());
                queue.pop_front();
                ++stats.busy;
                lock.unlock();
                admit(std::move(stream));
                lock.lock();
            }
        }

        // ---- cancelled slots free themselves ----
        for (auto& slot : slots)
            if (slot->stream && slot->req->cancelled.load()) finish(*slot, StopReason::Interrupted);

        // ---- a decode step (a token per decoding slot, and the short prompts that fit beside them), then a
        // step of prompt chunks ----
        // Kept apart beyond the decode kernels' step size: the engine picks its kernels per step by the
        // step's size (large steps take the prefill kernels, which round activations differently), so a
        // stream's decode tokens must not share a large step with other streams' prompts or its text would
        // depend on who else is served.
        step(true);
        step(false);
    }

    // Shutting down: every request still here ends as interrupted.
    for (auto& slot : slots)
        if (slot->stream) finish(*slot, StopReason::Interrupted);
    std::lock_guard lock(mutex);
    for (auto& stream : queue) {
        std::lock_guard rl(stream->impl_->mutex);
        stream->impl_->result.stop_reason = StopReason::Interrupted;
        stream->impl_->finished = true;
        stream->impl_->changed.notify_all();
    }
    queue.clear();
}

}  // namespace kinfer
