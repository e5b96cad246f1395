// The CPU thread pool (kernels/cpu/thread_pool.hpp) against an OpenMP parallel for:
// - dispatch: an op with no work, one task per thread: what starting and joining a parallel op costs;
// - stream: a memory-bound op (summing 64 MiB of floats in chunks, like a decode matvec), bytes/s.
// Arguments: the thread count. Compare 1 and 2 threads while another process is running to check that the
// pool's waits do not steal the cores (2 threads must never be slower than 1).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <vector>

#include "kernels/cpu/thread_pool.hpp"

namespace {

using kinfer::cpu::ThreadPool;

void BM_PoolDispatch(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    ThreadPool pool(threads);
    for (auto _ : state) pool.run(threads, [](int64_t task, int) { benchmark::DoNotOptimize(task); });
}

void BM_OmpDispatch(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int task = 0; task < threads; ++task) benchmark::DoNotOptimize(task);
    }
}

constexpr int64_t kStreamFloats = int64_t(16) << 20;  // 64 MiB: more than the caches

const std::vector<float>& stream_data() {
    static const std::vector<float> data(kStreamFloats, 1.0f);
    return data;
}

float sum_range(const float* p, int64_t n) {
    float acc[16] = {};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; ++k) acc[k] += p[i + k];
    float s = 0;
    for (; i < n; ++i) s += p[i];
    for (float a : acc) s += a;
    return s;
}

void BM_PoolStream(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    ThreadPool pool(threads);
    const float* data = stream_data().data();
    std::vector<float> partial(size_t(threads) * 16);  // one cache line per thread
    for (auto _ : state) {
        pool.parallel_for(kStreamFloats, [&](int64_t b, int64_t e, int t) {
            partial[size_t(t) * 16] += sum_range(data + b, e - b);
        });
        benchmark::DoNotOptimize(partial.data());
    }
    state.SetBytesProcessed(state.iterations() * kStreamFloats * int64_t(sizeof(float)));
}

void BM_OmpStream(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    const float* data = stream_data().data();
    std::vector<float> partial(size_t(threads) * 16);
    const int64_t n_chunks = threads * ThreadPool::kChunksPerThread;  // the same chunks as the pool's
    for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
        for (int64_t c = 0; c < n_chunks; ++c) {
            const int64_t b = kStreamFloats * c / n_chunks, e = kStreamFloats * (c + 1) / n_chunks;
            partial[size_t(omp_get_thread_num()) * 16] += sum_range(data + b, e - b);
        }
        benchmark::DoNotOptimize(partial.data());
    }
    state.SetBytesProcessed(state.iterations() * kStreamFloats * int64_t(sizeof(float)));
}

// The decode pattern: many ops in a row, each a 1 MiB slice (about 50 us on one core), as a token's matvecs.
constexpr int64_t kOpFloats = int64_t(1) << 18;

void BM_PoolOps(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    ThreadPool pool(threads);
    const float* data = stream_data().data();
    std::vector<float> partial(size_t(threads) * 16);
    for (auto _ : state) {
        for (int64_t op = 0; op < kStreamFloats / kOpFloats; ++op)
            pool.parallel_for(kOpFloats, [&](int64_t b, int64_t e, int t) {
                partial[size_t(t) * 16] += sum_range(data + op * kOpFloats + b, e - b);
            });
        benchmark::DoNotOptimize(partial.data());
    }
    state.SetBytesProcessed(state.iterations() * kStreamFloats * int64_t(sizeof(float)));
}

void BM_OmpOps(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    const float* data = stream_data().data();
    std::vector<float> partial(size_t(threads) * 16);
    const int64_t n_chunks = threads * ThreadPool::kChunksPerThread;
    for (auto _ : state) {
        for (int64_t op = 0; op < kStreamFloats / kOpFloats; ++op) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
            for (int64_t c = 0; c < n_chunks; ++c) {
                const int64_t b = kOpFloats * c / n_chunks, e = kOpFloats * (c + 1) / n_chunks;
                partial[size_t(omp_get_thread_num()) * 16] += sum_range(data + op * kOpFloats + b, e - b);
            }
        }
        benchmark::DoNotOptimize(partial.data());
    }
    state.SetBytesProcessed(state.iterations() * kStreamFloats * int64_t(sizeof(float)));
}

BENCHMARK(BM_PoolDispatch)->Arg(1)->Arg(2)->Arg(4)->UseRealTime();
BENCHMARK(BM_OmpDispatch)->Arg(1)->Arg(2)->Arg(4)->UseRealTime();
BENCHMARK(BM_PoolStream)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(BM_OmpStream)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(BM_PoolOps)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(BM_OmpOps)->Arg(1)->Arg(2)->UseRealTime();

}  // namespace
