#include "kernels/cpu/thread_pool.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <string>

#include "kinfer/error.hpp"

#include <cstdlib>

#if defined(__linux__)
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace kinfer::cpu {
namespace {

// The pool whose task this thread is running (null outside tasks): a run() on that same pool from inside a
// task would wait for itself, so it runs serially instead.
thread_local const ThreadPool* tls_running_in = nullptr;

struct RunningIn {
    const ThreadPool* saved;
    explicit RunningIn(const ThreadPool* p) : saved(tls_running_in) { tls_running_in = p; }
    ~RunningIn() { tls_running_in = saved; }
};

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// Sleeps while *word == expected (spurious returns are fine: callers re-check).
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) {
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
#else
    word.wait(expected);
#endif
}

void futex_wake_all(std::atomic<uint32_t>& word) {
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#else
    word.notify_all();
#endif
}

// Polls `ready` for about spin_us microseconds; true as soon as it holds. Between rounds of polling it
// yields: on a machine with more runnable threads than cores, the thread we wait for may be queued behind
// us on this very core.
template <class Ready>
bool spin_until(Ready ready, int spin_us) {
    if (ready()) return true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (ready()) return true;
            cpu_relax();
        }
        if (std::chrono::steady_clock::now() >= deadline) return ready();
        std::this_thread::yield();
    }
}

constexpr uint32_t gen_of(uint64_t job) {
    return static_cast<uint32_t>(job >> 32);
}
constexpr uint32_t left_of(uint64_t job) {
    return static_cast<uint32_t>(job);
}

}  // namespace

int default_thread_count() {
    if (const char* env = std::getenv("OMP_NUM_THREADS")) {
        char* end = nullptr;
        const long n = std::strtol(env, &end, 10);  // "4" or "4,2" (nested levels): the first number
        if (end != env && n > 0 && n <= 4096 && (*end == 0 || *end == ',')) return static_cast<int>(n);
    }
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

ThreadPool::ThreadPool(int n_threads, Options options) : options_(options) {
    if (n_threads <= 0) n_threads = default_thread_count();
    n_threads_ = n_threads;
    workers_.reserve(size_t(n_threads - 1));
    for (int t = 1; t < n_threads; ++t) workers_.emplace_back([this, t] { worker_main(t); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true, std::memory_order_seq_cst);
    // A new generation with no tasks wakes every worker; they see stop_ and leave.
    const uint32_t gen = gen_of(job_.load()) + 1;
    job_.store(uint64_t(gen) << 32, std::memory_order_seq_cst);
    job_seq_.store(gen, std::memory_order_seq_cst);
    futex_wake_all(job_seq_);
    for (auto& w : workers_) w.join();
}

int64_t ThreadPool::chunk_count(int64_t n, int64_t min_chunk) const {
    if (n <= 0) return 0;
    min_chunk = std::max<int64_t>(min_chunk, 1);
    const int64_t want = n_threads_ == 1 ? 1 : int64_t(n_threads_) * kChunksPerThread;
    return std::clamp<int64_t>(std::min(want, n / min_chunk), 1, n);
}

void ThreadPool::run_task(int64_t task, int thread) {
    if (failed_.load(std::memory_order_relaxed)) return;  // an earlier task threw: skip the rest
    try {
        call_(ctx_, task, thread);
    } catch (...) {
        std::lock_guard lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
    }
}

void ThreadPool::work_on(uint32_t gen, int thread) {
    RunningIn scope(this);
    uint64_t job = job_.load(std::memory_order_acquire);
    for (;;) {
        if (gen_of(job) != gen || left_of(job) == 0) return;
        // Claim the next task: succeeds only while the job is still generation `gen`.
        if (!job_.compare_exchange_weak(job, job - 1, std::memory_order_acq_rel, std::memory_order_acquire))
            continue;
        const uint32_t n = n_tasks_;  // stable: our unfinished claim keeps the caller waiting
        run_task(int64_t(n - left_of(job)), thread);
        const uint32_t finished = done_.fetch_add(1, std::memory_order_seq_cst) + 1;
        // After this increment the job may end and its state be reused; only pool members are touched.
        if (finished == n && caller_sleeping_.load(std::memory_order_seq_cst)) futex_wake_all(done_);
        job = job_.load(std::memory_order_acquire);
    }
}

void ThreadPool::worker_main(int thread) {
    uint32_t seen = 0;
    for (;;) {
        const auto new_job = [&] { return gen_of(job_.load(std::memory_order_acquire)) != seen; };
        if (!spin_until(new_job, options_.spin_us)) {
            // Announce the sleep, then re-check (seq_cst on both sides): either the publisher sees a
            // sleeper and wakes us, or we see its new generation and do not sleep.
            sleepers_.fetch_add(1, std::memory_order_seq_cst);
            while (job_seq_.load(std::memory_order_seq_cst) == seen) futex_wait(job_seq_, seen);
            sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        }
        if (stop_.load(std::memory_order_seq_cst)) return;
        seen = gen_of(job_.load(std::memory_order_acquire));
        work_on(seen, thread);
    }
}

void ThreadPool::wait_for_done(uint32_t n_tasks) {
    const auto all_done = [&] { return done_.load(std::memory_order_acquire) == n_tasks; };
    if (spin_until(all_done, options_.spin_us)) return;
    caller_sleeping_.store(1, std::memory_order_seq_cst);
    for (uint32_t d; (d = done_.load(std::memory_order_seq_cst)) != n_tasks;) futex_wait(done_, d);
    caller_sleeping_.store(0, std::memory_order_relaxed);
}

void ThreadPool::run_erased(int64_t n_tasks, TaskFn call, void* ctx) {
    if (n_tasks <= 0) return;
    if (n_tasks > INT32_MAX)
        throw UsageError("ThreadPool::run: " + std::to_string(n_tasks) + " tasks (at most 2^31 - 1)");
    if (n_threads_ == 1 || n_tasks == 1 || tls_running_in == this) {
        // Serial: one thread, one task, or nested inside one of our own tasks.
        RunningIn scope(this);
        for (int64_t t = 0; t < n_tasks; ++t) call(ctx, t, 0);
        return;
    }
    std::lock_guard lock(run_mutex_);
    call_ = call;
    ctx_ = ctx;
    n_tasks_ = static_cast<uint32_t>(n_tasks);
    done_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    const uint32_t gen = gen_of(job_.load(std::memory_order_relaxed)) + 1;
    job_.store(uint64_t(gen) << 32 | uint64_t(n_tasks), std::memory_order_seq_cst);  // publishes the above
    job_seq_.store(gen, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake_all(job_seq_);
    work_on(gen, 0);
    wait_for_done(n_tasks_);
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

}  // namespace kinfer::cpu
