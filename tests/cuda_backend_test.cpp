// The CUDA backend end to end on tiny random models: the logits of prompts, decode steps (CUDA graphs),
// batches of several sequences and a context shift match the CPU backend's. Skips without a GPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <span>
#include <vector>

#include "engine/batch_decoder.hpp"
#include "engine/model.hpp"
#include "engine/session.hpp"
#include "kernels/cuda/cuda_info.hpp"
#include "kinfer/error.hpp"
#include "tests/tiny_llama.hpp"

using namespace kinfer;

namespace {

std::shared_ptr<const engine::Model> load_tiny(const test::TinyLlamaSpec& spec, engine::Device device) {
    static std::vector<std::vector<uint8_t>> keep;  // the models' bytes outlive the models
    keep.push_back(test::build_tiny_llama(spec).bytes);
    engine::LoadOptions opts;
    opts.device = device;
    opts.n_threads = 2;
    return engine::Model::from_file(gguf::GgufFile::from_bytes(keep.back(), "tiny.gguf"), opts);
}

std::shared_ptr<const engine::Model> tiny(GgmlType type, engine::Device device, int64_t window = 0,
                                          int64_t n_vocab = 160) {
    test::TinyLlamaSpec spec;
    spec.n_embd = 256;
    spec.n_ff = 512;
    spec.n_head = 8;
    spec.n_head_kv = 2;
    spec.n_layer = 3;
    spec.n_vocab = n_vocab;
    spec.sliding_window = window;
    spec.weight_type = type;
    spec.embd_type = type;
    spec.seed = 3 + uint64_t(type);
    return load_tiny(spec, device);
}

// max |a - b| / (max b - min b), row by row of n_vocab.
double rel_err(std::span<const float> a, std::span<const float> b) {
    REQUIRE(a.size() == b.size());
    double diff = 0, lo = 1e30, hi = -1e30;
    for (size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
        lo = std::min(lo, double(b[i]));
        hi = std::max(hi, double(b[i]));
    }
    return diff / std::max(hi - lo, 1e-30);
}

bool have_gpu() {
    const cuda::DeviceInfo info = cuda::query_devices();
    if (info.count == 0) MESSAGE("skipping GPU test: " << info.reason);
    return info.count > 0;
}

}  // namespace

TEST_CASE("cuda backend: prompts and decode steps give the CPU backend's logits, every weight type") {
    if (!have_gpu()) {
        CHECK_THROWS_AS(tiny(GgmlType::Q8_0, engine::Device::Cuda), Error);
        return;
    }
    const GgmlType types[] = {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_K,
                              GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                              GgmlType::F16,  GgmlType::BF16, GgmlType::F32};
    std::mt19937 rng(1);
    for (GgmlType type : types) {
        CAPTURE(type_name(type));
        const auto cpu = tiny(type, engine::Device::Cpu);
        const auto gpu = tiny(type, engine::Device::Cuda);
        std::uniform_int_distribution<int32_t> tok(0, int32_t(cpu->config().n_vocab) - 1);
        engine::Session a(cpu, {.n_ctx = 96, .n_batch = 32}), b(gpu, {.n_ctx = 96, .n_batch = 32});
        // A 40-token prompt (two steps: cuBLAS, then matvec), then single tokens (graphs), then 3 at once.
        std::vector<int32_t> prompt(40);
        for (auto& t : prompt) t = tok(rng);
        // The CPU reference takes the prompt token by token: its decode path keeps float activations (exact),
        // where its prompt path rounds them to int8 and would dominate the difference.
        std::vector<float> want_prompt;
        for (const int32_t t : prompt) {
            const std::span<const float> l = a.forward(std::span<const int32_t>(&t, 1));
            want_prompt.insert(want_prompt.end(), l.begin(), l.end());
        }
        double worst_prefill = rel_err(b.forward(prompt, true), want_prompt);
        double worst_decode = 0;
        for (int step = 0; step < 6; ++step) {
            const std::vector<int32_t> in(step == 5 ? 3 : 1, tok(rng));
            std::span<const float> want;
            for (const int32_t& t : in) want = a.forward(std::span<const int32_t>(&t, 1));  // CPU: exact path
            worst_decode = std::max(worst_decode, rel_err(b.forward(in), want));
        }
        MESSAGE(type_name(type) << ": prefill error " << worst_prefill << ", decode error " << worst_decode);
        CHECK(worst_prefill <= 5e-3);
        CHECK(worst_decode <= 1e-3);
    }
}

// Mistral's attention shape (head_dim 128, 4 query heads per KV head) in a context of over 512 positions: its
// decode steps take the grouped attention (attention_gqa_kernel, its splits and combine_kernel) 600 positions
// deep, where the other tests' small contexts take the per-head kernel.
TEST_CASE(
    "cuda backend: head_dim 128 and 4 query heads per KV head, 600 positions deep, give the CPU's logits") {
    if (!have_gpu()) return;
    const test::TinyLlamaSpec spec{.n_vocab = 160,
                                   .n_embd = 512,
                                   .n_layer = 2,
                                   .n_ff = 512,
                                   .n_head = 4,
                                   .n_head_kv = 1,
                                   .n_ctx_train = 1024,
                                   .weight_type = GgmlType::Q8_0,
                                   .embd_type = GgmlType::Q8_0,
                                   .seed = 41};
    const auto cpu = load_tiny(spec, engine::Device::Cpu), gpu = load_tiny(spec, engine::Device::Cuda);
    engine::Session a(cpu, {.n_ctx = 640, .n_batch = 64}), b(gpu, {.n_ctx = 640, .n_batch = 64});
    std::mt19937 rng(5);
    std::uniform_int_distribution<int32_t> tok(0, int32_t(cpu->config().n_vocab) - 1);
    std::vector<int32_t> prompt(600);
    for (auto& t : prompt) t = tok(rng);
    for (const int32_t t : prompt) a.forward(std::span<const int32_t>(&t, 1));  // CPU: the exact path
    b.forward(prompt);
    double worst = 0;
    for (int step = 0; step < 4; ++step) {
        const int32_t t = tok(rng);
        const std::span<const float> want = a.forward(std::span<const int32_t>(&t, 1));
        worst = std::max(worst, rel_err(b.forward(std::span<const int32_t>(&t, 1)), want));
    }
    MESSAGE("decode error 600 positions deep: " << worst);
    CHECK(worst <= 1e-3);
}

TEST_CASE("cuda backend: several sequences in one step, a sliding window and a context shift") {
    if (!have_gpu()) return;
    const auto cpu = tiny(GgmlType::Q4_K, engine::Device::Cpu, 24);
    const auto gpu = tiny(GgmlType::Q4_K, engine::Device::Cuda, 24);
    std::mt19937 rng(2);
    std::uniform_int_distribution<int32_t> tok(0, int32_t(cpu->config().n_vocab) - 1);
    const int k = 5;
    std::vector<engine::Session> cs, gs;
    cs.reserve(k);
    gs.reserve(k);
    for (int s = 0; s < k; ++s) {
        cs.emplace_back(cpu, engine::SessionOptions{.n_ctx = 64, .n_batch = 16});
        gs.emplace_back(gpu, engine::SessionOptions{.n_ctx = 64, .n_batch = 16});
    }
    engine::BatchDecoder decoder(gpu, 16);
    double worst = 0;
    for (int round = 0; round < 8; ++round) {
        std::vector<std::vector<int32_t>> ins(k);
        std::vector<engine::SequenceInput> inputs;
        for (int s = 0; s < k; ++s) {
            ins[size_t(s)].resize(round == 0 ? size_t(2 + s * 3) : 1);
            for (auto& t : ins[size_t(s)]) t = tok(rng);
            inputs.push_back({&gs[size_t(s)], ins[size_t(s)]});
        }
        decoder.decode(inputs);
        for (int s = 0; s < k; ++s) {
            const auto want = cs[size_t(s)].forward(ins[size_t(s)]);
            worst = std::max(worst, rel_err(gs[size_t(s)].logits(), want));
        }
    }
    MESSAGE("batched decode error " << worst);
    CHECK(worst <= 1e-3);
    // Context shift on one sequence, then one more token.
    CHECK(cs[4].shift_context(4) == gs[4].shift_context(4));
    const std::vector<int32_t> one = {tok(rng)};
    const double shifted = rel_err(gs[4].forward(one), cs[4].forward(one));
    MESSAGE("after a context shift: error " << shifted);
    CHECK(shifted <= 1e-3);
}

TEST_CASE("cuda backend: steps that keep candidates give the candidates of the same step's logits") {
    if (!have_gpu()) return;
    const auto gpu = tiny(GgmlType::Q8_0, engine::Device::Cuda, 0, 300);
    const int32_t n_vocab = int32_t(gpu->config().n_vocab);
    REQUIRE(n_vocab > 256);  // above the device select's cap (kernels/cuda kMaxTopK)
    std::mt19937 rng(4);
    std::uniform_int_distribution<int32_t> tok(0, n_vocab - 1);
    std::vector<int32_t> prompt(20);
    for (auto& t : prompt) t = tok(rng);
    // k = 1 (argmax), a radix select, all of the vocabulary, and one above the device's cap (host select).
    for (const int32_t k : {1, 9, 256, n_vocab}) {
        CAPTURE(k);
        engine::Session full(gpu, {.n_ctx = 64, .n_batch = 32}), top(gpu, {.n_ctx = 64, .n_batch = 32});
        std::vector<int32_t> in = prompt;
        for (int step = 0; step < 6; ++step) {  // the prompt, then decode steps (graphs)
            const auto l = full.forward(in);
            const auto t = top.forward_top(in, k);
            std::vector<engine::TopCandidate> want(static_cast<size_t>(k));
            engine::select_top(l, k, want);
            REQUIRE(t.size() == want.size());
            for (size_t i = 0; i < want.size(); ++i) {
                CHECK(t[i].id == want[i].id);
                CHECK(t[i].logit == want[i].logit);
            }
            in.assign(1, want[0].id);
        }
    }
    // several sequences in one step, each with its own k (the step selects max k, each takes its first k),
    // against the same step with full logits
    engine::Session a(gpu, {.n_ctx = 64}), b(gpu, {.n_ctx = 64}), fa(gpu, {.n_ctx = 64}),
        fb(gpu, {.n_ctx = 64});
    engine::BatchDecoder decoder(gpu, 32, 64);
    const std::vector<int32_t> pa(prompt.begin(), prompt.begin() + 5),
        pb(prompt.begin() + 5, prompt.begin() + 8);
    decoder.decode(std::vector<engine::SequenceInput>{{&a, pa, 3}, {&b, pb, 1}});
    decoder.decode(std::vector<engine::SequenceInput>{{&fa, pa, 0}, {&fb, pb, 0}});
    std::vector<engine::TopCandidate> want(3);
    engine::select_top(fa.logits(), 3, want);
    REQUIRE(a.top().size() == 3);
    for (size_t i = 0; i < 3; ++i) CHECK(a.top()[i].id == want[i].id);
    engine::select_top(fb.logits(), 1, want);
    REQUIRE(b.top().size() == 1);
    CHECK(b.top()[0].id == want[0].id);
    // One sequence that wants logits beside one that wants candidates (selected on the device, or on the host
    // above its cap): the logits row copied alone, the same as the full-logits step's.
    for (const int32_t k : {3, n_vocab}) {
        CAPTURE(k);
        engine::Session c(gpu, {.n_ctx = 64}), d(gpu, {.n_ctx = 64});
        decoder.decode(std::vector<engine::SequenceInput>{{&c, pa, k}, {&d, pb, 0}});
        std::vector<engine::TopCandidate> best(static_cast<size_t>(k));
        engine::select_top(fa.logits(), k, best);
        REQUIRE(c.top().size() == best.size());
        CHECK(c.top()[0].id == best[0].id);
        CHECK(c.top()[size_t(k) - 1].id == best[size_t(k) - 1].id);
        const auto got = d.logits(), ref = fb.logits();
        REQUIRE(got.size() == ref.size());
        CHECK(std::equal(got.begin(), got.end(), ref.begin()));
    }
}
