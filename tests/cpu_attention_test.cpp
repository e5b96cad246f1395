// kernels/cpu attention (every instruction-set level this CPU has) against its scalar reference on random
// data, odd shapes included; the same result on any thread count; and a decode step that allocates nothing.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <random>
#include <thread>
#include <vector>

#include "engine/model.hpp"
#include "engine/session.hpp"
#include "kernels/cpu/quant_matmul.hpp"
#include "kernels/cpu/simple_ops.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "kernels/fp16.hpp"
#include "tests/tiny_llama.hpp"

// Counts the C++ allocations of the thread that sets `counting` (the whole test binary's operator new
// comes through here; other threads and other times pass straight to malloc).
namespace {
thread_local bool counting = false;
std::atomic<int64_t> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
    if (counting) allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    return operator new(n);
}
// The nothrow forms too (std::stable_sort's buffer): every form that the deletes below free must come from
// malloc, or ASan reports new/free mismatches.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    if (counting) allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
    return operator new(n, t);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}

using namespace kinfer;

namespace {

struct Shape {
    int64_t n_head, n_head_kv, head_dim, pos0, n_tokens, window;
};

std::vector<cpu::Isa> levels() {
    std::vector<cpu::Isa> out;
    for (cpu::Isa isa : {cpu::Isa::Portable, cpu::Isa::Avx2, cpu::Isa::Avx512})
        if (isa <= cpu::detected_isa()) out.push_back(isa);
    return out;
}

}  // namespace

TEST_CASE("cpu attention: every level matches the scalar reference, odd shapes and any thread count") {
    const Shape shapes[] = {
        {1, 1, 1, 0, 1, 0},     {3, 1, 5, 0, 1, 0},     {6, 3, 20, 7, 5, 0}, {12, 1, 17, 33, 4, 5},
        {8, 8, 128, 100, 1, 0}, {32, 8, 128, 70, 3, 0}, {5, 5, 24, 0, 9, 3}, {10, 2, 40, 16, 17, 0},
        {18, 2, 16, 1, 2, 0},   {4, 2, 33, 45, 1, 46},
    };
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    cpu::ThreadPool pool(3);
    for (const Shape& s : shapes) {
        const int64_t q_dim = s.n_head * s.head_dim, kv_dim = s.n_head_kv * s.head_dim;
        const int64_t n_kv = s.pos0 + s.n_tokens;
        for (float q_scale : {1.0f, 30.0f}) {  // 30: peaky softmax, exp arguments far below -87
            std::vector<float> q(size_t(s.n_tokens * q_dim)), kf(size_t(n_kv * kv_dim)), vf(kf.size());
            for (auto& x : q) x = uni(rng) * q_scale;
            for (auto& x : kf) x = uni(rng);
            for (auto& x : vf) x = uni(rng);
            std::vector<uint16_t> kh(kf.size()), vh(vf.size());
            for (size_t i = 0; i < kf.size(); ++i) {
                kh[i] = fp32_to_fp16(kf[i]);
                vh[i] = fp32_to_fp16(vf[i]);
            }
            for (bool f16 : {false, true}) {
                const void* k = f16 ? static_cast<const void*>(kh.data()) : kf.data();
                const void* v = f16 ? static_cast<const void*>(vh.data()) : vf.data();
                const float scale = 1.0f / std::sqrt(float(s.head_dim));
                std::vector<float> want(q.size()), scores(static_cast<size_t>(n_kv));
                cpu::attention_reference(q.data(), s.n_tokens, s.pos0, k, v, f16, s.n_head, s.n_head_kv,
                                         s.head_dim, scale, s.window, want.data(), scores.data());
                for (cpu::Isa isa : levels()) {
                    CAPTURE(s.n_head);
                    CAPTURE(s.n_head_kv);
                    CAPTURE(s.head_dim);
                    CAPTURE(s.pos0);
                    CAPTURE(s.n_tokens);
                    CAPTURE(s.window);
                    CAPTURE(q_scale);
                    CAPTURE(f16);
                    CAPTURE(cpu::isa_name(isa));
                    std::vector<float> one(q.size(), NAN), three(q.size(), NAN);
                    std::vector<float> scratch(cpu::attention_scratch_floats(s.n_head, s.n_head_kv, n_kv, 3));
                    cpu::attention(q.data(), s.n_tokens, s.pos0, k, v, f16, s.n_head, s.n_head_kv, s.head_dim,
                                   scale, s.window, one.data(), scratch.data(), nullptr, isa);
                    int bad = 0;
                    for (size_t i = 0; i < want.size(); ++i)
                        if (!(std::fabs(one[i] - want[i]) <= 2e-5f * (1.0f + std::fabs(want[i])))) ++bad;
                    CHECK(bad == 0);
                    // With a pool (small shapes stay inline; the next test makes the pool split).
                    cpu::attention(q.data(), s.n_tokens, s.pos0, k, v, f16, s.n_head, s.n_head_kv, s.head_dim,
                                   scale, s.window, three.data(), scratch.data(), &pool, isa);
                    CHECK(std::equal(one.begin(), one.end(), three.begin()));
                }
            }
        }
    }
}

TEST_CASE("cpu attention: a long context split over threads gives what one thread gives") {
    // Large enough that the pool really runs (n_tokens * n_head * n_kv * head_dim >= kMinParallelWork).
    const int64_t n_head = 8, n_head_kv = 2, hd = 64, pos0 = 300, nq = 8, n_kv = pos0 + nq;
    REQUIRE(nq * n_head * n_kv * hd >= cpu::kMinParallelWork);
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    std::vector<float> q(size_t(nq * n_head * hd)), k(size_t(n_kv * n_head_kv * hd)), v(k.size());
    for (auto* vec : {&q, &k, &v})
        for (auto& e : *vec) e = uni(rng);
    for (int threads : {2, 3, 5}) {
        cpu::ThreadPool pool(threads);
        std::vector<float> scratch(cpu::attention_scratch_floats(n_head, n_head_kv, n_kv, threads));
        std::vector<float> one(q.size()), many(q.size());
        cpu::attention(q.data(), nq, pos0, k.data(), v.data(), false, n_head, n_head_kv, hd, 0.125f, 0,
                       one.data(), scratch.data(), nullptr);
        cpu::attention(q.data(), nq, pos0, k.data(), v.data(), false, n_head, n_head_kv, hd, 0.125f, 0,
                       many.data(), scratch.data(), &pool);
        CHECK(one == many);
    }
}

TEST_CASE("cpu backend: a decode step allocates nothing, on one thread and on a pool") {
    test::TinyLlamaSpec spec;
    spec.n_embd = 64;
    spec.n_ff = 96;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    spec.weight_type = GgmlType::Q8_0;
    const test::TinyLlama m = test::build_tiny_llama(spec);
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        engine::LoadOptions opts;
        opts.n_threads = threads;
        const auto model = engine::Model::from_file(gguf::GgufFile::from_bytes(m.bytes, "tiny.gguf"), opts);
        engine::Session s(model, {.n_ctx = 64});
        const std::vector<int32_t> prompt = {1, 5, 9, 13};
        s.forward(prompt);
        s.forward(std::vector<int32_t>{7});  // first-use growth (thread-local scratch) happens here
        counting = true;
        allocations = 0;
        void* volatile probe = ::operator new(16);  // the counter sees allocations: this one
        ::operator delete(probe);
        const int64_t seen = allocations.exchange(0);
        for (int32_t id = 10; id < 20; ++id) s.forward(std::span<const int32_t>(&id, 1));
        counting = false;
        CHECK(seen == 1);
        CHECK(allocations.load() == 0);
    }
}

TEST_CASE("cpu backend: sessions on several threads share the model's pool and get what they get alone") {
    // Products above kMinParallelWork, so every step really uses the pool; 3 threads (dividing no row count).
    test::TinyLlamaSpec spec;
    spec.n_embd = 512;
    spec.n_ff = 1280;
    spec.n_head = 8;
    spec.n_head_kv = 2;
    spec.n_vocab = 1000;
    spec.weight_type = GgmlType::Q4_K;
    const test::TinyLlama m = test::build_tiny_llama(spec);
    REQUIRE(spec.n_embd * spec.n_ff >= cpu::kMinParallelWork / 4);
    const auto load = [&](int threads) {
        engine::LoadOptions opts;
        opts.n_threads = threads;
        return engine::Model::from_file(gguf::GgufFile::from_bytes(m.bytes, "tiny.gguf"), opts);
    };
    const auto shared = load(3), alone = load(1);
    const auto decode = [](const std::shared_ptr<const engine::Model>& model, int32_t first) {
        engine::Session s(model, {.n_ctx = 32});
        std::vector<float> out;
        const std::vector<int32_t> prompt = {1,  first, 7,   300,
                                             42, 5,     999, 64};  // a step of 8 tokens, then decode
        s.forward(prompt);
        for (int32_t id = first; id < first + 6; ++id) {
            const auto l = s.forward(std::span<const int32_t>(&id, 1));
            out.insert(out.end(), l.begin(), l.end());
        }
        return out;
    };
    std::vector<float> want[3], got[3];
    for (int i = 0; i < 3; ++i) want[i] = decode(alone, 10 + 100 * i);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) threads.emplace_back([&, i] { got[i] = decode(shared, 10 + 100 * i); });
    for (auto& t : threads) t.join();
    for (int i = 0; i < 3; ++i) {
        CAPTURE(i);
        REQUIRE(got[i].size() == want[i].size());
        CHECK(std::equal(got[i].begin(), got[i].end(), want[i].begin()));
    }
}
