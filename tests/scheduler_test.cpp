// The continuous-batching Scheduler (include/kinfer/scheduler.hpp) without HTTP: requests decoded
// together give the text each gives alone; a long prompt in chunks does not hold up other streams; a
// follow-up prompt reuses its slot's cache; cancel frees a slot; a full queue refuses.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/batch_decoder.hpp"
#include "engine/json_prefix.hpp"
#include "kinfer/scheduler.hpp"
#include "src/model_access.hpp"
#include "tests/tiny_llama.hpp"

using namespace kinfer;
using namespace std::chrono_literals;

namespace {

Model load_vocab_model() {
    const std::string& path = test::vocab_model_path();
    REQUIRE_MESSAGE(!path.empty(), "data/vocab/mistral-v0.3-vocab.gguf is missing");
    return Model::load(path, {.threads = 1, .n_ctx = 512});
}

GenerateOptions greedy(int max_tokens) {
    GenerateOptions o;
    o.max_tokens = max_tokens;
    o.sampling.temperature = 0;
    return o;
}

GenerateResult alone(const Model& model, const std::vector<int32_t>& prompt, const GenerateOptions& o) {
    Session s(model, 512);
    return s.generate(prompt, o);
}

GenerateResult finish(CompletionStream& stream, std::string text = {}) {
    const auto t0 = std::chrono::steady_clock::now();
    while (!stream.wait(text, 100ms)) REQUIRE(std::chrono::steady_clock::now() - t0 < 60s);
    CHECK(stream.error().empty());
    const GenerateResult r = stream.result();
    CHECK(text == r.text);  // what wait() handed out is the whole text
    return r;
}

}  // namespace

TEST_CASE("scheduler: requests decoded together give the text each gives alone (greedy)") {
    const Model model = load_vocab_model();
    const char* texts[] = {"Hello",       "The capital of France is",
                           "1 2 3 4 5",   "Once upon a time, in a land",
                           "def main():", "Bonjour, je",
                           "What is",     "中文和emoji 🙂"};
    std::vector<std::vector<int32_t>> prompts;
    std::vector<GenerateResult> expected;
    for (const char* t : texts) {
        prompts.push_back(model.tokenize(t));
        expected.push_back(alone(model, prompts.back(), greedy(20)));
    }
    Scheduler scheduler(model, {.slots = 3, .max_queued = 16, .prefill_chunk = 4});
    std::vector<std::shared_ptr<CompletionStream>> streams;
    for (const auto& p : prompts) streams.push_back(scheduler.submit({.prompt = p, .options = greedy(20)}));
    for (size_t i = 0; i < streams.size(); ++i) {
        CAPTURE(texts[i]);
        const GenerateResult r = finish(*streams[i]);
        CHECK(r.text == expected[i].text);
        CHECK(r.stop_reason == expected[i].stop_reason);
        CHECK(r.generated_tokens == expected[i].generated_tokens);
        CHECK(r.prompt_tokens == int(prompts[i].size()));
    }
    const SchedulerStats st = scheduler.stats();
    CHECK(st.requests == streams.size());
    CHECK(st.finished == streams.size());
    CHECK(st.busy == 0);
    CHECK(st.generated_tokens >= 20);
}

TEST_CASE("scheduler: requests that need the full logits share steps with greedy ones, each as alone") {
    // A logit bias or a penalty makes a slot ask the step for every output's logits (the others then take
    // their candidates from those on the host): the texts must not change with who shares the step.
    const Model model = load_vocab_model();
    const std::vector<int32_t> p0 = model.tokenize("The capital of France is"),
                               p1 = model.tokenize("1 2 3 4 5"), p2 = model.tokenize("Once upon a time");
    GenerateOptions biased = greedy(16), penalised = greedy(16);
    biased.sampling.logit_bias = {{model.tokenize(" is").back(), -INFINITY},
                                  {model.tokenize(" river").back(), 2.0f}};
    penalised.sampling.presence_penalty = 1.5f;
    penalised.sampling.penalty_last_n = -1;
    const GenerateResult e0 = alone(model, p0, biased), e1 = alone(model, p1, greedy(16)),
                         e2 = alone(model, p2, penalised);
    CHECK(e0.text != alone(model, p0, greedy(16)).text);  // the bias does change this text
    Scheduler scheduler(model, {.slots = 3});
    auto s0 = scheduler.submit({.prompt = p0, .options = biased});
    auto s1 = scheduler.submit({.prompt = p1, .options = greedy(16)});
    auto s2 = scheduler.submit({.prompt = p2, .options = penalised});
    CHECK(finish(*s0).text == e0.text);
    CHECK(finish(*s1).text == e1.text);
    CHECK(finish(*s2).text == e2.text);
    GenerateOptions bad = greedy(4);
    bad.sampling.logit_bias = {{model.n_vocab(), 1.0f}};
    CHECK_THROWS_AS(scheduler.submit({.prompt = p1, .options = bad}), UsageError);
}

TEST_CASE("scheduler: stop strings and max_tokens end a request as generate() ends it") {
    const Model model = load_vocab_model();
    const auto prompt = model.tokenize("Once upon a time");
    const GenerateResult full = alone(model, prompt, greedy(16));
    REQUIRE(full.text.size() > 8);
    GenerateOptions o = greedy(16);
    o.stop = {full.text.substr(full.text.size() / 2, 3)};
    const GenerateResult expected = alone(model, prompt, o);
    REQUIRE(expected.stop_reason == StopReason::StopString);
    Scheduler scheduler(model, {.slots = 2});
    const GenerateResult r = finish(*scheduler.submit({.prompt = prompt, .options = o}));
    CHECK(r.text == expected.text);
    CHECK(r.stop_reason == StopReason::StopString);
    const GenerateResult none = finish(*scheduler.submit({.prompt = prompt, .options = greedy(0)}));
    CHECK(none.text.empty());
    CHECK(none.stop_reason == StopReason::MaxTokens);
}

namespace {

// A greedy decoding of `prompt` by hand, one token at a time through the public Session, with each step's
// log-softmax in float64 and its `top` best tokens (descending, ties by id): what top_logprobs should report.
struct StepLogprobs {
    int32_t id;
    double logprob;
    std::vector<std::pair<int32_t, double>> top;
};
std::vector<StepLogprobs> reference_logprobs(const Model& model, const std::vector<int32_t>& prompt, int n,
                                             int top) {
    Session s(model, 512);
    std::span<const float> logits = s.feed(prompt);
    std::vector<StepLogprobs> out;
    for (int i = 0; i < n; ++i) {
        const double m = *std::max_element(logits.begin(), logits.end());
        double sum = 0;
        for (const float l : logits) sum += std::exp(double(l) - m);
        std::vector<int32_t> order(logits.size());
        for (size_t k = 0; k < order.size(); ++k) order[k] = int32_t(k);
        std::stable_sort(order.begin(), order.end(),
                         [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
        StepLogprobs step{order[0], double(logits[size_t(order[0])]) - m - std::log(sum), {}};
        for (int k = 0; k < top; ++k)
            step.top.emplace_back(order[size_t(k)],
                                  double(logits[size_t(order[size_t(k)])]) - m - std::log(sum));
        out.push_back(step);
        if (model.is_end_of_generation(step.id)) break;
        const int32_t next = step.id;
        logits = s.feed(std::span<const int32_t>(&next, 1));
    }
    return out;
}

}  // namespace

TEST_CASE("scheduler: log probabilities are each step's log-softmax, handed out with their text") {
    const Model model = load_vocab_model();
    const auto prompt = model.tokenize("Once upon a time");
    const std::vector<StepLogprobs> want = reference_logprobs(model, prompt, 12, 5);
    REQUIRE(want.size() == 12);
    REQUIRE_FALSE(model.is_end_of_generation(want.back().id));
    Scheduler scheduler(model, {.slots = 2});
    // Beside a request without them, so that the two share steps (one full-logits row, one of candidates).
    auto other = scheduler.submit({.prompt = model.tokenize("1 2 3 4 5"), .options = greedy(12)});
    auto stream = scheduler.submit({.prompt = prompt, .options = greedy(12), .top_logprobs = 5});
    std::string text;
    std::vector<TokenLogprobs> got;
    const auto t0 = std::chrono::steady_clock::now();
    for (bool done = false; !done;) {
        done = stream->wait(text, got, 100ms);
        // Never ahead of their text: every token handed out starts inside the text handed out so far.
        for (const TokenLogprobs& t : got) CHECK(t.text_offset < std::max<size_t>(text.size(), 1));
        REQUIRE(std::chrono::steady_clock::now() - t0 < 60s);
    }
    finish(*other);
    CHECK(text == stream->result().text);
    REQUIRE(got.size() == want.size());
    CHECK(stream->logprobs().size() == got.size());
    size_t offset = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK(got[i].token.id == want[i].id);
        // This random model is sure of its picks (log p ~ -1e-6, the runner-up ~ -14): a tolerance relative
        // to the value, so that a missing normalisation (log p = 0) shows.
        CHECK(std::fabs(got[i].token.logprob - want[i].logprob) <= 1e-8 + 1e-5 * std::fabs(want[i].logprob));
        // This text is plain UTF-8 without control tokens: token i's bytes are the text at its offset.
        CHECK(got[i].text_offset == offset);
        CHECK(text.compare(offset, got[i].token.bytes.size(), got[i].token.bytes) == 0);
        offset += got[i].token.bytes.size();
        REQUIRE(got[i].top.size() == 5);
        for (size_t k = 0; k < 5; ++k) {
            CHECK(got[i].top[k].id == want[i].top[k].first);
            CHECK(std::fabs(got[i].top[k].logprob - want[i].top[k].second) <=
                  1e-8 + 1e-5 * std::fabs(want[i].top[k].second));
        }
        CHECK(got[i].top[0].logprob == got[i].token.logprob);  // greedy: the pick is the most likely
    }

    // A stop string at the start of a token's text: that token and those after it are not reported (their
    // text was cut away), the ones before are. This model repeats itself; a presence penalty makes its
    // text varied enough to hold a stop string found only there (log probabilities ignore penalties).
    GenerateOptions varied = greedy(12);
    varied.sampling.presence_penalty = 30.0f;
    varied.sampling.penalty_last_n = -1;
    auto first = scheduler.submit({.prompt = prompt, .options = varied, .top_logprobs = 0});
    const std::string varied_text = finish(*first).text;
    const std::vector<TokenLogprobs> all = first->logprobs();
    REQUIRE(all.size() == 12);
    size_t j = all.size() / 2;
    while (j < all.size() && (all[j].token.bytes.size() < 2 ||
                              varied_text.find(all[j].token.bytes.substr(0, 2)) != all[j].text_offset))
        ++j;
    CAPTURE(varied_text);
    REQUIRE(j < all.size());
    GenerateOptions o = varied;
    o.stop = {all[j].token.bytes.substr(0, 2)};
    auto stopped = scheduler.submit({.prompt = prompt, .options = o, .top_logprobs = 0});
    const GenerateResult r = finish(*stopped);
    CHECK(r.text == varied_text.substr(0, all[j].text_offset));
    const std::vector<TokenLogprobs> kept = stopped->logprobs();
    CHECK(kept.size() == j);
    for (size_t i = 0; i < kept.size(); ++i) {
        CHECK(kept[i].token.id == all[i].token.id);
        CHECK(kept[i].token.logprob == all[i].token.logprob);
        CHECK(kept[i].top.empty());
    }
    // Without top_logprobs nothing is reported; out of range is refused.
    CHECK(stream->logprobs().size() == got.size());
    auto plain = scheduler.submit({.prompt = prompt, .options = greedy(3)});
    finish(*plain);
    CHECK(plain->logprobs().empty());
    CHECK_THROWS_AS(
        scheduler.submit({.prompt = prompt, .options = greedy(3), .top_logprobs = kMaxTopLogprobs + 1}),
        UsageError);
    CHECK_THROWS_AS(scheduler.submit({.prompt = prompt, .options = greedy(3), .top_logprobs = -2}),
                    UsageError);
}

TEST_CASE("scheduler: JSON mode keeps the reply one JSON object and ends it when the object closes") {
    const Model model = load_vocab_model();
    const auto prompt = model.tokenize("Once upon a time");
    // The id of a token whose text is exactly `text` (after another token, so without a word-start space).
    const auto token = [&](const char* text) {
        const int32_t id = model.tokenize(std::string("a") + text).back();
        REQUIRE(model.detokenize(std::vector<int32_t>{id}) == text);
        return id;
    };
    const auto json = [](GenerateOptions o) {
        o.json_object = true;
        return o;
    };
    Scheduler scheduler(model, {.slots = 3});
    // This random model left alone: whatever it says is a prefix of an object (checked by nlohmann-free
    // means: the grammar's own tests compare it with nlohmann), starting with '{'; greedy and sampled, beside
    // a plain request, which keeps its text.
    GenerateOptions sampled = greedy(40);
    sampled.sampling.temperature = 1.0f;
    sampled.sampling.seed = 9;
    auto a = scheduler.submit({.prompt = prompt, .options = json(greedy(40))});
    auto b = scheduler.submit({.prompt = prompt, .options = json(sampled)});
    auto c = scheduler.submit({.prompt = prompt, .options = greedy(12)});
    for (auto* stream : {&a, &b}) {
        const GenerateResult r = finish(**stream);
        CAPTURE(r.text);
        REQUIRE_FALSE(r.text.empty());
        CHECK(r.text[0] == '{');
        engine::JsonPrefix p;
        CHECK(p.push(r.text));
        CHECK((r.stop_reason == StopReason::MaxTokens ||
               (r.stop_reason == StopReason::EndOfGeneration && p.complete())));
    }
    CHECK(finish(*c).text == alone(model, prompt, greedy(12)).text);

    // Biases steer it through a whole object: '"' wherever it fits, then ':', then '}', then '{'. The
    // reply ends as the object closes, without an end-of-generation token.
    GenerateOptions steered = greedy(40);
    steered.sampling.logit_bias = {
        {token("{"), 50.0f}, {token("\""), 100.0f}, {token(":"), 90.0f}, {token("}"), 80.0f}};
    const GenerateResult r = finish(*scheduler.submit({.prompt = prompt, .options = json(steered)}));
    CHECK(r.text == R"({"":""})");
    CHECK(r.stop_reason == StopReason::EndOfGeneration);
    CHECK(r.generated_tokens == 7);
    steered.sampling.logit_bias = {{token("{"), 50.0f}, {token("}"), 100.0f}};
    CHECK(finish(*scheduler.submit({.prompt = prompt, .options = json(steered)})).text == "{}");
    // Without JSON mode the same biases give no object.
    CHECK(finish(*scheduler.submit({.prompt = prompt, .options = steered})).text != "{}");
}

TEST_CASE("scheduler: a long prompt in chunks does not hold up a stream decoding beside it") {
    const Model model = load_vocab_model();
    std::vector<int32_t> long_prompt = model.tokenize("x");
    while (long_prompt.size() < 480) long_prompt.push_back(1000 + int32_t(long_prompt.size() % 500));
    const auto short_prompt = model.tokenize("Hello");
    Scheduler scheduler(model, {.slots = 2, .prefill_chunk = 8});
    auto a = scheduler.submit({.prompt = short_prompt, .options = greedy(4)});
    auto b = scheduler.submit({.prompt = long_prompt, .options = greedy(1)});
    // b's prompt takes 60 steps of 8 tokens; a needs 5 steps and must not wait for them.
    const GenerateResult ra = finish(*a);
    CHECK_FALSE(b->finished());
    CHECK(ra.text == alone(model, short_prompt, greedy(4)).text);
    const GenerateResult rb = finish(*b);
    CHECK(rb.text == alone(model, long_prompt, greedy(1)).text);
    CHECK(scheduler.stats().steps >= 60);
}

TEST_CASE("scheduler: a short prompt joins the decode step of the others, a long one takes its own") {
    // A Q4_K model: on the CPU its decode kernels take steps of up to 15 tokens, larger ones the prefill
    // kernels, which round activations differently.
    test::TinyLlamaSpec spec;
    spec.vocab = test::shared_mistral_vocab();
    REQUIRE_MESSAGE(spec.vocab, "data/vocab/mistral-v0.3-vocab.gguf is missing");
    spec.weight_type = GgmlType::Q4_K;
    spec.embd_type = GgmlType::Q6_K;
    spec.n_embd = 256, spec.n_ff = 512, spec.n_head = 8, spec.n_head_kv = 2;
    const std::string path = test::temp_path("q4k.gguf");
    test::write_tiny_llama(spec, path);
    struct Remove {
        std::string p;
        ~Remove() { std::remove(p.c_str()); }
    } remove{path};
    const Model model = Model::load(path, {.threads = 1, .n_ctx = 512});
    const int64_t limit = engine::BatchDecoder(ModelAccess::engine_model(model), 64, 512).decode_tokens_max();
    CAPTURE(limit);
    REQUIRE(limit < 64);

    const auto prompt_a = model.tokenize("Tell me a long story");
    // B's prompt of `n` tokens beside A (decoding 200), in a new scheduler (no cached prefix): the steps of
    // the run beyond A's own (its prompt's step, then one per token but the last), and each text as alone.
    const auto extra_steps = [&](int n) {
        Scheduler scheduler(model, {.slots = 2});
        std::vector<int32_t> prompt_b = model.tokenize("x");
        while (int(prompt_b.size()) < n) prompt_b.push_back(1000 + 7 * int32_t(prompt_b.size()));
        const uint64_t steps0 = scheduler.stats().steps;
        auto a = scheduler.submit({.prompt = prompt_a, .options = greedy(200)});
        std::string text;
        while (text.empty()) REQUIRE_FALSE(a->wait(text, 100ms));  // A is decoding
        auto b = scheduler.submit({.prompt = prompt_b, .options = greedy(5)});
        CHECK(finish(*b).text == alone(model, prompt_b, greedy(5)).text);
        const GenerateResult ra = finish(*a, text);
        REQUIRE(ra.generated_tokens == 200);  // B ended long before A
        CHECK(ra.text == alone(model, prompt_a, greedy(200)).text);
        return int64_t(scheduler.stats().steps - steps0) - 200;
    };
    // Beside A's one token, a prompt of up to limit - 1 joins A's step: no step of B's own; one token more
    // and it takes one (of the prefill kernels once it is that long alone).
    CHECK(extra_steps(int(limit) - 1) == 0);
    CHECK(extra_steps(int(limit)) == 1);
    CHECK(extra_steps(4) == 0);
    CHECK(extra_steps(40) == 1);
}

TEST_CASE("scheduler: a follow-up prompt reuses the KV cache of its conversation") {
    const Model model = load_vocab_model();
    Scheduler scheduler(model, {.slots = 2});
    std::vector<int32_t> turn1 = model.chat_prompt({{"user", "Hi there"}});
    const GenerateResult r1 = finish(*scheduler.submit({.prompt = turn1, .options = greedy(6)}));
    CHECK(r1.prompt_cached == 0);
    // Another conversation in between takes the other slot.
    finish(*scheduler.submit({.prompt = model.tokenize("Something else entirely"), .options = greedy(3)}));
    const std::vector<int32_t> turn2 =
        model.chat_prompt({{"user", "Hi there"}, {"assistant", r1.text}, {"user", "And then?"}});
    const GenerateResult r2 = finish(*scheduler.submit({.prompt = turn2, .options = greedy(6)}));
    CHECK(r2.prompt_cached >= int(turn1.size()));
    CHECK(r2.text == alone(model, turn2, greedy(6)).text);
    CHECK(scheduler.stats().prompt_cached >= turn1.size());
}

TEST_CASE("scheduler: cancel frees the slot at once; a full queue refuses; bad requests are refused") {
    const Model model = load_vocab_model();
    Scheduler scheduler(model, {.slots = 1, .max_queued = 1});
    const auto prompt = model.tokenize("Tell me a long story");
    auto running = scheduler.submit({.prompt = prompt, .options = greedy(-1)});
    auto waiting = scheduler.submit({.prompt = prompt, .options = greedy(3)});
    CHECK_THROWS_AS(scheduler.submit({.prompt = prompt, .options = greedy(3)}), QueueFullError);
    CHECK(scheduler.stats().rejected == 1);

    std::string text;
    while (text.empty()) running->wait(text, 100ms);  // it is generating
    running->cancel();
    const GenerateResult r = finish(*running, text);
    CHECK(r.stop_reason == StopReason::Interrupted);
    CHECK(r.generated_tokens < 500);
    const GenerateResult w = finish(*waiting);  // got the slot
    CHECK(w.stop_reason == StopReason::MaxTokens);
    CHECK(w.generated_tokens == 3);

    // A queued request that is cancelled never runs.
    auto first = scheduler.submit({.prompt = prompt, .options = greedy(-1)});
    auto queued = scheduler.submit({.prompt = prompt, .options = greedy(3)});
    queued->cancel();
    first->cancel();
    CHECK(finish(*queued).generated_tokens == 0);
    CHECK(finish(*first).stop_reason == StopReason::Interrupted);
    const auto t0 = std::chrono::steady_clock::now();
    while (scheduler.stats().busy != 0) REQUIRE(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(scheduler.stats().cancelled == 3);

    CHECK_THROWS_AS(scheduler.submit({.prompt = {}, .options = greedy(3)}), UsageError);
    CHECK_THROWS_AS(scheduler.submit({.prompt = std::vector<int32_t>(513, 1), .options = greedy(3)}),
                    UsageError);
    CHECK_THROWS_AS(scheduler.submit({.prompt = {1, 99999999}, .options = greedy(3)}), UsageError);
    GenerateOptions bad = greedy(3);
    bad.stop = {""};
    CHECK_THROWS_AS(scheduler.submit({.prompt = prompt, .options = bad}), UsageError);
    CHECK_THROWS_AS(Scheduler(model, {.slots = 0}), UsageError);
    CHECK_THROWS_AS(Scheduler(model, {.slots = 8, .batch_tokens = 4}), UsageError);
}

TEST_CASE("scheduler: streams outlive their scheduler; destroying it interrupts what runs") {
    const Model model = load_vocab_model();
    std::shared_ptr<CompletionStream> stream;
    {
        Scheduler scheduler(model, {.slots = 1});
        stream = scheduler.submit({.prompt = model.tokenize("Hello"), .options = greedy(-1)});
    }
    CHECK(stream->finished());
    CHECK(stream->result().stop_reason == StopReason::Interrupted);
    stream->cancel();  // no scheduler any more: nothing happens
}

TEST_CASE(
    "scheduler: ignore_eos, top-k and full-logits samplers decoded together give what each gives alone") {
    const Model model = load_vocab_model();
    // Ending the prompt with EOS makes EOS the greedy choice of the tiny model (it echoes its last token).
    std::vector<int32_t> echo = model.tokenize("Hi");
    echo.push_back(model.eos_id());
    REQUIRE(alone(model, echo, greedy(8)).generated_tokens == 0);
    // ignore_eos by hand: the full logits with EOS removed, argmax, fed back.
    std::vector<int32_t> want_ids;
    {
        Session s(model, 512);
        std::span<const float> logits = s.feed(echo);
        for (int i = 0; i < 8; ++i) {
            std::vector<float> masked(logits.begin(), logits.end());
            masked[size_t(model.eos_id())] = -INFINITY;
            want_ids.push_back(int32_t(std::max_element(masked.begin(), masked.end()) - masked.begin()));
            logits = s.feed(std::span<const int32_t>(&want_ids.back(), 1));
        }
    }
    GenerateOptions top_k;
    top_k.max_tokens = 12, top_k.sampling.temperature = 0.9f, top_k.sampling.top_k = 20;
    top_k.sampling.repeat_penalty = 1.0f, top_k.sampling.seed = 5;
    GenerateOptions full = top_k;  // penalties read every logit, as does no top-k: full-logits requests
    full.sampling.repeat_penalty = 1.3f, full.sampling.top_k = 0, full.sampling.temperature = 2.0f;
    const std::vector<int32_t> prompt = model.tokenize("Once upon a time");

    Scheduler scheduler(model, {.slots = 3, .max_queued = 8, .prefill_chunk = 4});
    auto a = scheduler.submit({.prompt = echo, .options = greedy(8), .ignore_eos = true});
    auto b = scheduler.submit({.prompt = prompt, .options = top_k});
    auto c = scheduler.submit({.prompt = prompt, .options = full});
    const GenerateResult ra = finish(*a), rb = finish(*b), rc = finish(*c);
    CHECK(ra.generated_tokens == 8);
    CHECK(ra.text == model.detokenize(want_ids));
    CHECK(rb.text == alone(model, prompt, top_k).text);
    CHECK(rc.text == alone(model, prompt, full).text);
}
