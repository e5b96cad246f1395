// The public API as a program using the installed library would: only <kinfer/kinfer.hpp>.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "kernels/cuda/cuda_info.hpp"
#include "kinfer/kinfer.hpp"
#include "tests/tiny_llama.hpp"

namespace {

#define REQUIRE_MODEL_FILE(path)                                                 \
    const std::string& path = kinfer::test::vocab_model_path();                  \
    if (path.empty()) {                                                          \
        FAIL("committed test data missing: data/vocab/mistral-v0.3-vocab.gguf"); \
        return;                                                                  \
    }

kinfer::ModelOptions two_threads() {
    kinfer::ModelOptions o;
    o.threads = 2;
    o.n_ctx = 256;
    return o;
}

kinfer::GenerateOptions greedy(int n) {
    kinfer::GenerateOptions o;
    o.max_tokens = n;
    o.sampling.temperature = 0.0f;
    return o;
}

// Captures what is written to file descriptor 1 while it lives.
class StdoutCapture {
  public:
    StdoutCapture() {
        std::fflush(stdout);
        path_ = kinfer::test::temp_path("stdout");
        saved_ = ::dup(1);
        FILE* f = std::fopen(path_.c_str(), "w");
        ::dup2(fileno(f), 1);
        std::fclose(f);
    }
    std::string finish() {
        std::fflush(stdout);
        ::dup2(saved_, 1);
        ::close(saved_);
        std::ifstream in(path_);
        std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::remove(path_.c_str());
        return s;
    }

  private:
    std::string path_;
    int saved_ = -1;
};

}  // namespace

TEST_CASE("api: load, facts, tokenize and detokenize") {
    REQUIRE_MODEL_FILE(path);
    const kinfer::Model model = kinfer::Model::load(path, two_threads());
    CHECK(model.n_vocab() == 32768);
    CHECK(model.n_layer() == 2);
    CHECK(model.n_embd() == 64);
    CHECK(model.n_ctx_train() == 512);
    CHECK(model.n_ctx() == 256);
    CHECK(model.bos_id() == 1);
    CHECK(model.eos_id() == 2);
    CHECK(model.is_end_of_generation(2));
    CHECK(model.description().find("2 layers") != std::string::npos);

    const auto ids = model.tokenize("Hello world");
    REQUIRE(ids.size() >= 2);
    CHECK(ids[0] == 1);
    CHECK(model.detokenize(ids) == "Hello world");
    CHECK(model.tokenize("Hello world", false)[0] != 1);
    CHECK(model.token_text(2) == "</s>");

    // BOS is added exactly once, whether or not the text spells it
    const auto special = model.tokenize("<s>[INST] hi [/INST]", true, true);
    CHECK(special[0] == 1);
    CHECK(special[1] == 3);  // [INST]
    CHECK(std::count(special.begin(), special.end(), 1) == 1);

    CHECK_THROWS_AS(model.tokenize("bad \xff byte"), kinfer::UsageError);
}

TEST_CASE("api: chat template gives exactly one BOS") {
    REQUIRE_MODEL_FILE(path);
    const kinfer::Model model = kinfer::Model::load(path, two_threads());
    CHECK(model.has_chat_template());
    CHECK(model.chat_template_name() == "mistral-v3");
    const std::vector<kinfer::ChatMessage> msgs = {{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};
    const std::string text = model.apply_chat_template(msgs);
    CHECK(text.find("[INST] Hi[/INST] Hello!</s>[INST] Bye[/INST]") != std::string::npos);
    const auto ids = model.chat_prompt(msgs);
    CHECK(ids[0] == 1);
    CHECK(std::count(ids.begin(), ids.end(), 1) == 1);
    CHECK(std::count(ids.begin(), ids.end(), 3) == 2);  // two [INST]
    CHECK(std::count(ids.begin(), ids.end(), 2) == 1);  // the </s> closing the answer
}

TEST_CASE("api: feed, logits, sample, generate") {
    REQUIRE_MODEL_FILE(path);
    const kinfer::Model model = kinfer::Model::load(path, two_threads());
    kinfer::Session s(model);
    CHECK(s.n_ctx() == 256);
    CHECK(s.logits().empty());
    const auto prompt = model.tokenize("Once upon a time");
    const auto logits = s.feed(prompt);
    CHECK(logits.size() == 32768);
    CHECK(s.n_past() == int(prompt.size()));
    const int32_t argmax = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    kinfer::SamplerOptions g;
    g.temperature = 0;
    CHECK(s.sample(g) == argmax);
    // Logit biases: the argmax banned gives the runner-up, a large bias any token; changing only the biases
    // is a new sampler (Session::sample keeps one while the options stay the same).
    std::vector<float> rest(logits.begin(), logits.end());
    rest[size_t(argmax)] = -INFINITY;
    const int32_t second = int32_t(std::max_element(rest.begin(), rest.end()) - rest.begin());
    g.logit_bias = {{argmax, -INFINITY}};
    CHECK(s.sample(g) == second);
    g.logit_bias = {{7, 1000.0f}};
    CHECK(s.sample(g) == 7);
    g.logit_bias.clear();
    CHECK(s.sample(g) == argmax);

    // generate == streaming == a fresh session
    kinfer::Session a(model), b(model);
    std::string streamed;
    const auto ra = a.generate(prompt, greedy(10), [&](std::string_view t) {
        streamed += t;
        return true;
    });
    const auto rb = b.generate("Once upon a time", greedy(10));  // text prompt: same tokens
    CHECK(ra.generated_tokens == 10);
    CHECK(ra.stop_reason == kinfer::StopReason::MaxTokens);
    CHECK(streamed == ra.text);
    CHECK(rb.text == ra.text);
    CHECK(std::string(kinfer::to_string(ra.stop_reason)) == "token limit");
    // greedy generate keeps only candidates internally; logits() and sample() still serve after it
    const int32_t next = a.sample(g);
    const auto after = a.logits();
    REQUIRE(after.size() == 32768);
    CHECK(int32_t(std::max_element(after.begin(), after.end()) - after.begin()) == next);
    CHECK(a.n_past() == int(prompt.size()) + 9);  // the last generated token is not evaluated
    CHECK(b.logits().size() == 32768);
    CHECK(b.sample(g) == next);

    // all logits
    kinfer::Session c(model);
    const auto all = c.feed(prompt, true);
    CHECK(all.size() == prompt.size() * 32768);
    CHECK(std::equal(logits.begin(), logits.end(), all.end() - 32768));

    // errors
    CHECK_THROWS_AS(c.feed(std::vector<int32_t>{40000}), kinfer::UsageError);
    kinfer::Session small(model, 4);
    CHECK_THROWS_AS(small.generate(prompt, greedy(4)), kinfer::UsageError);
    CHECK_THROWS_AS(kinfer::Session(model, 0), kinfer::UsageError);
}

TEST_CASE("api: chat turns reuse the cache and give the same reply as recomputing") {
    REQUIRE_MODEL_FILE(path);
    const kinfer::Model model = kinfer::Model::load(path, two_threads());
    kinfer::Session s(model);
    std::vector<kinfer::ChatMessage> history = {{"user", "Hello there"}};
    const auto r1 = s.chat(history, greedy(8));
    history.push_back({"assistant", r1.text});
    history.push_back({"user", "And then?"});
    const auto r2 = s.chat(history, greedy(8));
    CHECK(r2.prompt_cached > 5);  // the first turn was not evaluated again

    CHECK(r1.text.substr(0, 1) != " ");  // the answer's leading word-start space is not part of it

    kinfer::Session fresh(model);
    const auto r2_fresh = fresh.chat(history, greedy(8));
    CHECK(r2_fresh.prompt_cached == 0);
    CHECK(r2.text == r2_fresh.text);
    CHECK(std::equal(s.tokens().begin(), s.tokens().end(), fresh.tokens().begin(), fresh.tokens().end()));
}

TEST_CASE("api: several sessions on one model run concurrently and match running alone") {
    REQUIRE_MODEL_FILE(path);
    kinfer::ModelOptions o = two_threads();
    o.threads = 1;  // threads of our own; pool threads would only oversubscribe the CI's two cores
    const kinfer::Model model = kinfer::Model::load(path, o);
    const std::vector<std::string> prompts = {"The sky is", "In 1905, Einstein",
                                              "def main():", "Bonjour, je"};
    std::vector<std::string> alone;
    for (const auto& p : prompts) {
        kinfer::Session s(model);
        kinfer::GenerateOptions g = greedy(12);
        g.sampling.temperature = 0.9f;  // sampled, seeded: exercises each session's own sampler
        g.sampling.seed = 5;
        alone.push_back(s.generate(p, g).text);
    }
    std::vector<std::string> together(prompts.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < prompts.size(); ++i)
        threads.emplace_back([&, i] {
            kinfer::Session s(model);
            kinfer::GenerateOptions g = greedy(12);
            g.sampling.temperature = 0.9f;
            g.sampling.seed = 5;
            for (int round = 0; round < 2; ++round) {
                s.reset();
                together[i] = s.generate(prompts[i], g).text;
            }
        });
    for (auto& t : threads) t.join();
    CHECK(together == alone);
}

TEST_CASE("api: sessions keep their model alive; handles are values") {
    REQUIRE_MODEL_FILE(path);
    std::optional<kinfer::Session> s;
    {
        kinfer::Model model = kinfer::Model::load(path, two_threads());
        kinfer::Model copy = model;
        s.emplace(copy);
    }  // every Model handle is gone
    const auto r = s->generate("Hi", greedy(3));
    CHECK(r.generated_tokens == 3);
    kinfer::Session moved = std::move(*s);
    CHECK(moved.n_past() > 0);
}

TEST_CASE("api: errors are exceptions, and the library writes nothing to stdout") {
    StdoutCapture capture;
    CHECK_THROWS_AS(kinfer::Model::load("/nonexistent/model.gguf"), kinfer::Error);
    const std::string not_gguf = kinfer::test::temp_path("not.gguf");
    std::ofstream(not_gguf) << "this is not a model";
    CHECK_THROWS_AS(kinfer::Model::load(not_gguf), kinfer::FormatError);
    std::remove(not_gguf.c_str());
    kinfer::ModelOptions bad;
    bad.threads = -1;
    CHECK_THROWS_AS(kinfer::Model::load("x.gguf", bad), kinfer::UsageError);
    kinfer::ModelOptions cuda;
    cuda.device = kinfer::Device::Cuda;
    const std::string& path = kinfer::test::vocab_model_path();
    if (!path.empty()) {
        if (kinfer::cuda::query_devices().count == 0) {
            CHECK_THROWS_WITH_AS(kinfer::Model::load(path, cuda), doctest::Contains("use --device cpu"),
                                 kinfer::Error);
        } else {  // a GPU machine: loads, or refuses this tiny model with an Error; stdout stays clean
            try {
                kinfer::Model::load(path, cuda);
            } catch (const kinfer::Error&) {
            }
        }
        std::vector<std::string> logged;
        kinfer::ModelOptions o = two_threads();
        o.log = [&](std::string_view line) { logged.emplace_back(line); };
        o.chat_template = "no-such-template";
        CHECK_THROWS_AS(kinfer::Model::load(path, o), kinfer::UsageError);
        o.chat_template = "chatml";
        const kinfer::Model model = kinfer::Model::load(path, o);
        CHECK(model.chat_template_name() == "chatml");
        kinfer::Session s(model);
        s.chat(std::vector<kinfer::ChatMessage>{{"user", "hi"}}, greedy(4));
    }
    const std::string out = capture.finish();
    INFO("stdout: " << out);
    CHECK(out.empty());
}
