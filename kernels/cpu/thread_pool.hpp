#pragma once
// A pool of persistent worker threads for the CPU kernels: the threads are created once and stay alive
// between operations, so starting a parallel op costs a store and (only when a worker sleeps) one futex
// wake, not a thread creation or an OpenMP region.
//
// Use:
//     kinfer::cpu::ThreadPool pool(4);                  // 4 threads in all: the caller + 3 workers
//     pool.run(n_tasks, [&](int64_t task, int thread) { ... });
//     pool.parallel_for(n_rows, [&](int64_t begin, int64_t end, int thread) { rows [begin, end) });
//
// - run() returns when every task has run exactly once. The calling thread works too (thread index 0;
//   workers are 1 .. size()-1, stable, so per-thread scratch buffers can be indexed by it).
// - Tasks are claimed dynamically, one at a time, so a thread the OS has descheduled (a busy machine) or
//   that started late only means the others take more tasks; the caller never waits for a worker that has
//   not claimed anything. parallel_for() splits a range into about kChunksPerThread chunks per thread of
//   near-equal size (any count, divisible by the thread count or not): small enough that a thread the OS
//   preempts holds back little work.
// - Waiting spins only briefly (Options::spin_us, checking the clock, yielding the core between rounds of
//   polling), then sleeps on a futex: workers between ops and the caller waiting for the last task do not
//   burn a core that another process needs.
// - The first exception a task throws is rethrown by run() after all claimed tasks have finished; the
//   tasks not yet started are skipped.
// - A run() from inside a task (nested) executes its tasks serially on that thread. run() calls from
//   several outside threads at once are serialised (one job at a time). Nothing allocates per run().
// - The function is passed by reference and called through one indirect call per task (not per element):
//   give each task a meaningful amount of work (thousands of multiply-adds at least).
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace kinfer::cpu {

// The thread count used when none is given: OMP_NUM_THREADS when set to a positive number (the variable
// users of OpenMP programs already know), else the CPUs this process may run on (its affinity mask, so
// `taskset -c 0` means one).
int default_thread_count();

class ThreadPool {
  public:
    struct Options {
        // How long a waiting thread polls before it sleeps. Ops of one forward step follow each other
        // within microseconds, so a short spin keeps their dispatch cheap; longer gaps cost a futex wake.
        int spin_us = 50;
    };
    static constexpr int64_t kChunksPerThread = 8;

    // n_threads in all, counting the calling thread; <= 0 means default_thread_count().
    explicit ThreadPool(int n_threads = 0) : ThreadPool(n_threads, Options{}) {}
    ThreadPool(int n_threads, Options options);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Calls fn(task, thread) for every task in [0, n_tasks) (n_tasks < 2^31), in parallel.
    template <class F>
    void run(int64_t n_tasks, F&& fn) {
        using Fn = std::remove_reference_t<F>;
        run_erased(
            n_tasks, [](void* f, int64_t task, int thread) { (*static_cast<Fn*>(f))(task, thread); },
            const_cast<void*>(static_cast<const void*>(&fn)));
    }

    // Calls fn(begin, end, thread) on consecutive non-empty chunks that together cover [0, n) once.
    // Chunks hold at least min_chunk items (unless n is smaller), and start at multiples of `align` (e.g.
    // the rows a kernel processes together; only the last chunk may hold a partial group).
    template <class F>
    void parallel_for(int64_t n, F&& fn, int64_t min_chunk = 1, int64_t align = 1) {
        if (n <= 0) return;
        align = align < 1 ? 1 : align;
        const int64_t groups = (n + align - 1) / align;
        const int64_t n_chunks = chunk_count(groups, (min_chunk + align - 1) / align);
        run(n_chunks, [&](int64_t c, int thread) {
            const int64_t begin = groups * c / n_chunks * align, end = groups * (c + 1) / n_chunks * align;
            fn(begin, end < n ? end : n, thread);
        });
    }

    // How many chunks parallel_for() makes of n items (or groups of `align` items).
    int64_t chunk_count(int64_t n, int64_t min_chunk = 1) const;

  private:
    using TaskFn = void (*)(void*, int64_t, int);
    void run_erased(int64_t n_tasks, TaskFn call, void* ctx);
    void worker_main(int thread);
    // Claims and runs tasks of job `gen` until none is left; returns how many this thread finished.
    void work_on(uint32_t gen, int thread);
    void run_task(int64_t task, int thread);
    void wait_for_done(uint32_t n_tasks);

    int n_threads_;
    Options options_;
    std::vector<std::thread> workers_;
    std::mutex run_mutex_;  // one job at a time

    // The job. `job_` packs (generation << 32 | tasks not yet claimed): a claim is one CAS that also checks
    // the generation, so a worker that wakes late can never take a task of a newer job. call_/ctx_/n_tasks_
    // are written before the generation is published and read only by a thread holding a claim.
    std::atomic<uint64_t> job_{0};
    std::atomic<uint32_t> job_seq_{0};  // the generation again, as a 32-bit futex word for sleeping workers
    std::atomic<uint32_t> sleepers_{0};
    TaskFn call_ = nullptr;
    void* ctx_ = nullptr;
    uint32_t n_tasks_ = 0;
    std::atomic<uint32_t> done_{0};  // tasks of the current job finished (futex word of the waiting caller)
    std::atomic<uint32_t> caller_sleeping_{0};
    std::atomic<bool> failed_{false};
    std::mutex error_mutex_;
    std::exception_ptr error_;
    std::atomic<bool> stop_{false};
};

// fn(begin, end, thread) over [0, n): through pool->parallel_for() when there is a pool of several threads
// and `parallel` holds, else in one call on this thread (no pool, one thread, or too little work to share).
template <class F>
void parallel_range(ThreadPool* pool, bool parallel, int64_t n, F&& fn, int64_t min_chunk = 1,
                    int64_t align = 1) {
    if (n <= 0) return;
    if (pool && parallel && pool->size() > 1)
        pool->parallel_for(n, fn, min_chunk, align);
    else
        fn(int64_t(0), n, 0);
}

}  // namespace kinfer::cpu
