#pragma once
// Continuous batching: many completions on one model at once, as a server needs them (`infer serve` is
// this plus HTTP). N slots, one Session each; one thread steps every decoding slot in one batched forward
// step (BatchDecoder), so each weight is read once for all of them. A short prompt joins the decode step
// (as long as the step stays within the decode kernels' size, Backend::decode_tokens_max); longer ones are
// evaluated in chunks, in a step of their own between decode steps, so a long prompt does not stall the other
// streams; a slot keeps its KV cache after a request, and a later request whose prompt extends that
// conversation starts where it left off. Requests beyond the slots wait in a bounded queue.
//
//     kinfer::Scheduler scheduler(model, {.slots = 4});
//     auto stream = scheduler.submit({.prompt = model.chat_prompt({{"user", "Hi"}}), .options = options});
//     std::string text;
//     while (!stream->wait(text, std::chrono::milliseconds(100))) { /* show text so far */ }
//     kinfer::GenerateResult result = stream->result();
//
// Greedy requests give the same text as they would alone: batching changes which sequences share a step,
// not what each one computes.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kinfer/kinfer.hpp"

namespace kinfer {

struct SchedulerOptions {
    int slots = 4;            // completions decoded together (each holds a Session)
    int n_ctx = 0;            // context of each slot in tokens; 0: the model's n_ctx()
    int max_queued = 64;      // requests waiting for a slot; past this submit() throws QueueFullError
    int batch_tokens = 512;   // tokens per forward step, all slots together (>= slots)
    int prefill_chunk = 128;  // prompt tokens of one slot per step: keeps other slots' streams moving
};

// submit() found the queue full: try again later (a server answers 503 with Retry-After).
class KINFER_API QueueFullError : public Error {
  public:
    using Error::Error;
};

// The most alternatives a request may ask log probabilities for (as OpenAI's top_logprobs).
inline constexpr int kMaxTopLogprobs = 20;

struct CompletionRequest {
    std::vector<int32_t> prompt;       // non-empty, at most the slot context (a BOS is not added)
    GenerateOptions options;           // `interrupt` and `context_shift` do not apply (cancel(); ContextFull)
    bool strip_leading_space = false;  // drop the word-start space of the first token (chat replies)
    bool ignore_eos = false;  // never sample an end-of-generation token: run to max_tokens (load tests)
    // >= 0: report each generated token's log probability and this many most likely alternatives (at most
    // kMaxTopLogprobs); -1: none. Reading them makes the request's steps copy its full logits.
    int top_logprobs = -1;
};

// A token and its log probability under the model: the log-softmax of the step's raw logits, before logit
// biases, penalties and temperature (what the model says, not what the sampler drew from).
struct TokenLogprob {
    int32_t id = 0;
    std::string bytes;  // what the token stands for (special tokens by name); a byte token may hold part of
                        // a UTF-8 character
    float logprob = 0;
};

// A generated token's log probability, its request's top_logprobs most likely alternatives (most likely
// first, ties by id) and where its text starts in the completion's text (bytes). End-of-generation tokens
// are not reported, nor tokens whose text a stop string cut away entirely.
struct TokenLogprobs {
    TokenLogprob token;
    std::vector<TokenLogprob> top;
    size_t text_offset = 0;
};

// One submitted request's output: the scheduler's thread appends text, any one other thread reads it.
class KINFER_API CompletionStream {
  public:
    // Waits until there is text not yet taken, the request finished, or `timeout` passed; appends the new
    // text to `out`. Returns true once the request finished and all its text was taken.
    bool wait(std::string& out, std::chrono::milliseconds timeout);
    // The same, also appending the log probabilities of the tokens whose text it hands out (requests with
    // top_logprobs >= 0; they arrive with, never before, the text they belong to).
    bool wait(std::string& out, std::vector<TokenLogprobs>& logprobs, std::chrono::milliseconds timeout);
    // Stops the request as soon as the scheduler sees it (within one step) and frees its slot; the
    // result's stop reason becomes Interrupted.
    void cancel();
    bool finished() const;
    // The whole result (text, stop reason, token counts, timings); complete once finished().
    GenerateResult result() const;
    // Every token's log probabilities handed out so far (all of them once finished()).
    std::vector<TokenLogprobs> logprobs() const;
    // Non-empty when the engine failed on this request (the result is then partial).
    std::string error() const;

    struct Impl;
    explicit CompletionStream(std::unique_ptr<Impl> impl);
    ~CompletionStream();
    CompletionStream(const CompletionStream&) = delete;
    CompletionStream& operator=(const CompletionStream&) = delete;

  private:
    std::unique_ptr<Impl> impl_;
    friend class Scheduler;
};

struct SchedulerStats {
    int slots = 0;
    int busy = 0;           // slots with a request
    int queued = 0;         // requests waiting for a slot
    uint64_t requests = 0;  // accepted by submit()
    uint64_t rejected = 0;  // refused because the queue was full
    uint64_t finished = 0;  // completed (cancelled ones included)
    uint64_t cancelled = 0;
    uint64_t prompt_tokens = 0;  // prompt tokens evaluated (cached prefixes excluded)
    uint64_t prompt_cached = 0;  // prompt tokens reused from a slot's cache
    uint64_t generated_tokens = 0;
    uint64_t steps = 0;            // batched forward steps
    double busy_seconds = 0;       // time spent in forward steps and sampling
    double tokens_per_second = 0;  // generated tokens per second over the last few seconds
};

class KINFER_API Scheduler {
  public:
    // Creates the slots (their KV caches are allocated now) and starts the scheduling thread. Throws
    // UsageError for invalid options.
    Scheduler(const Model& model, const SchedulerOptions& options = {});
    // Cancels every request and joins the thread.
    ~Scheduler();

    // Queues a request. Throws UsageError when the prompt is empty, longer than the slot context or holds
    // an id outside the vocabulary, or the options are invalid; QueueFullError when the queue is full.
    std::shared_ptr<CompletionStream> submit(CompletionRequest request);

    SchedulerStats stats() const;
    const SchedulerOptions& options() const;
    int slot_context() const;  // tokens of context per slot
    const Model& model() const;

    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace kinfer
