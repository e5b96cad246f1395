// kernels/cpu/thread_pool: every task exactly once, any count, exceptions, nesting, reuse across many jobs.
// Also run under ThreadSanitizer by scripts/tsan.sh.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <numeric>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/cpu/thread_pool.hpp"
#include "kinfer/error.hpp"

using kinfer::cpu::ThreadPool;

namespace {

// Runs `pool.run(n)` and returns how often each task index ran.
std::vector<int> task_counts(ThreadPool& pool, int64_t n) {
    std::vector<std::atomic<int>> hits(size_t(n) + 1);  // +1: a task index past the end would show up here
    pool.run(n, [&](int64_t task, int thread) {
        CHECK(thread >= 0);
        CHECK(thread < pool.size());
        if (task >= 0 && task <= n) hits[size_t(task)].fetch_add(1);
    });
    std::vector<int> out;
    for (auto& h : hits) out.push_back(h.load());
    return out;
}

}  // namespace

TEST_CASE("thread pool: every task runs exactly once, for odd counts and thread counts") {
    for (int threads : {1, 2, 3, 5}) {
        ThreadPool pool(threads);
        CHECK(pool.size() == threads);
        for (int64_t n : {0, 1, 2, 3, 7, 64, 1001}) {
            CAPTURE(threads);
            CAPTURE(n);
            const auto counts = task_counts(pool, n);
            for (int64_t i = 0; i < n; ++i) CHECK(counts[size_t(i)] == 1);
            CHECK(counts[size_t(n)] == 0);
        }
    }
}

TEST_CASE("thread pool: parallel_for covers the range once in contiguous chunks") {
    ThreadPool pool(3);
    for (int64_t n : {1, 2, 5, 11, 12, 13, 4097}) {
        for (int64_t min_chunk : {1, 4, 100}) {
            CAPTURE(n);
            CAPTURE(min_chunk);
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            std::atomic<int64_t> chunks{0}, smallest{n};
            pool.parallel_for(
                n,
                [&](int64_t begin, int64_t end, int) {
                    CHECK(begin < end);
                    chunks.fetch_add(1);
                    int64_t s = smallest.load();
                    while (end - begin < s && !smallest.compare_exchange_weak(s, end - begin)) {
                    }
                    for (int64_t i = begin; i < end; ++i) hits[size_t(i)].fetch_add(1);
                },
                min_chunk);
            for (int64_t i = 0; i < n; ++i) CHECK(hits[size_t(i)].load() == 1);
            CHECK(chunks.load() == pool.chunk_count(n, min_chunk));
            CHECK(chunks.load() <= 3 * ThreadPool::kChunksPerThread);
            if (n >= min_chunk) CHECK(smallest.load() >= min_chunk);
        }
    }
    // Aligned chunks: every chunk starts at a multiple of 8, only the last one may be shorter.
    for (int64_t n : {1, 7, 8, 9, 100, 1003}) {
        CAPTURE(n);
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::mutex m;
        std::vector<std::pair<int64_t, int64_t>> ranges;
        pool.parallel_for(
            n,
            [&](int64_t begin, int64_t end, int) {
                for (int64_t i = begin; i < end; ++i) hits[size_t(i)].fetch_add(1);
                std::lock_guard lock(m);
                ranges.emplace_back(begin, end);
            },
            16, 8);
        for (int64_t i = 0; i < n; ++i) CHECK(hits[size_t(i)].load() == 1);
        for (auto [begin, end] : ranges) {
            CHECK(begin % 8 == 0);
            CHECK(begin < end);
            CHECK((end == n || end - begin >= 16));
        }
    }
    // More threads than items: one item per chunk.
    ThreadPool wide(8);
    CHECK(wide.chunk_count(3) == 3);
    CHECK(wide.chunk_count(0) == 0);
}

TEST_CASE("thread pool: the work really runs on several threads") {
    ThreadPool pool(3);
    std::mutex m;
    std::set<std::thread::id> ids;
    std::set<int> indices;
    // Tasks that wait for each other: only possible when three threads run them at the same time.
    std::atomic<int> arrived{0};
    pool.run(3, [&](int64_t, int thread) {
        arrived.fetch_add(1);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (arrived.load() < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        std::lock_guard lock(m);
        ids.insert(std::this_thread::get_id());
        indices.insert(thread);
    });
    CHECK(arrived.load() == 3);
    CHECK(ids.size() == 3);
    CHECK(indices == std::set<int>{0, 1, 2});
}

TEST_CASE("thread pool: an exception from a task reaches the caller, and the pool stays usable") {
    ThreadPool pool(2);
    for (int round = 0; round < 20; ++round) {
        std::atomic<int> ran{0};
        CHECK_THROWS_WITH_AS(pool.run(50,
                                      [&](int64_t task, int) {
                                          ran.fetch_add(1);
                                          if (task == 17) throw std::runtime_error("task 17 failed");
                                      }),
                             "task 17 failed", std::runtime_error);
        CHECK(ran.load() >= 1);
        CHECK(ran.load() <= 50);
        const auto counts = task_counts(pool, 33);
        CHECK(std::accumulate(counts.begin(), counts.end(), 0) == 33);
    }
    ThreadPool serial(1);
    CHECK_THROWS_AS(serial.run(3, [](int64_t, int) { throw std::logic_error("x"); }), std::logic_error);
}

TEST_CASE("thread pool: a nested run() executes serially on the calling task's thread") {
    ThreadPool pool(3);
    std::vector<std::atomic<int>> hits(5 * 7);
    pool.run(5, [&](int64_t outer, int thread) {
        const auto me = std::this_thread::get_id();
        pool.run(7, [&](int64_t inner, int inner_thread) {
            CHECK(std::this_thread::get_id() == me);
            CHECK(inner_thread == 0);
            hits[size_t(outer * 7 + inner)].fetch_add(1);
        });
        (void)thread;
    });
    for (auto& h : hits) CHECK(h.load() == 1);
}

TEST_CASE("thread pool: many short jobs in a row, and callers on several threads") {
    ThreadPool pool(2, {.spin_us = 0});  // no spinning: every job goes through the futex sleep and wake
    int64_t total = 0;
    for (int job = 0; job < 2000; ++job) {
        std::atomic<int64_t> sum{0};
        pool.run(job % 5 + 1, [&](int64_t task, int) { sum.fetch_add(task + 1); });
        const int64_t n = job % 5 + 1;
        CHECK(sum.load() == n * (n + 1) / 2);
        total += sum.load();
    }
    CHECK(total > 0);

    // Two outside threads share one pool: their jobs are serialised, none is lost.
    ThreadPool shared(2);
    std::atomic<int64_t> count{0};
    std::vector<std::thread> callers;
    for (int c = 0; c < 2; ++c)
        callers.emplace_back([&] {
            for (int job = 0; job < 200; ++job) shared.run(3, [&](int64_t, int) { count.fetch_add(1); });
        });
    for (auto& t : callers) t.join();
    CHECK(count.load() == 2 * 200 * 3);
}

TEST_CASE("thread pool: a worker sleeping between jobs wakes for the next one") {
    ThreadPool pool(2, {.spin_us = 10});
    for (int round = 0; round < 3; ++round) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the worker is asleep by now
        std::atomic<int> arrived{0};
        // Both tasks must run at once, so the sleeping worker has to wake up and take one.
        pool.run(2, [&](int64_t, int) {
            arrived.fetch_add(1);
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline)
                std::this_thread::yield();
        });
        CHECK(arrived.load() == 2);
    }
}

TEST_CASE("thread pool: too many tasks is a clear error") {
    ThreadPool pool(2);
    CHECK_THROWS_AS(pool.run(int64_t(1) << 32, [](int64_t, int) {}), kinfer::UsageError);
}
