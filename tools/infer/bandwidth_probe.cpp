#include "tools/infer/bandwidth_probe.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "kernels/cpu/thread_pool.hpp"
#include "kinfer/error.hpp"

namespace kinfer::cli {
namespace {

// Four times the last-level cache (virtual machines may report the whole host's), at least 512 MiB, at
// most an eighth of the memory.
uint64_t default_buffer_bytes() {
    uint64_t bytes = uint64_t(512) << 20;
#ifdef _SC_LEVEL3_CACHE_SIZE
    if (const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE); l3 > 0) bytes = std::max(bytes, 4 * uint64_t(l3));
#endif
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) bytes = std::min(bytes, uint64_t(pages) * uint64_t(page) / 8);
    return bytes;
}

// Anonymous memory in huge pages where the kernel allows: far fewer page faults when it is first written.
struct Mapping {
    void* p = MAP_FAILED;
    size_t n = 0;
    explicit Mapping(size_t bytes) : n(bytes) {
        p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw Error("read probe: cannot map " + std::to_string(n) + " bytes");
#ifdef MADV_HUGEPAGE
        madvise(p, n, MADV_HUGEPAGE);
#endif
    }
    ~Mapping() {
        munmap(p, n);
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
};

// Sums the words of [p, p + n): eight independent accumulators so the loop is limited by loads, not by
// the add chain; the compiler vectorises it.
uint64_t sum_words(const uint64_t* p, size_t n) {
    uint64_t acc[8] = {};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) acc[k] += p[i + k];
    for (; i < n; ++i) acc[0] += p[i];
    uint64_t s = 0;
    for (uint64_t a : acc) s += a;
    return s;
}

}  // namespace

BandwidthResult measure_read_bandwidth(int threads, uint64_t buffer_bytes, int passes) {
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (buffer_bytes == 0) buffer_bytes = default_buffer_bytes();
    const size_t n_words = buffer_bytes / sizeof(uint64_t);
    const Mapping mapping(n_words * sizeof(uint64_t));
    auto* const buffer = static_cast<uint64_t*>(mapping.p);
    cpu::ThreadPool pool(threads);
    // Each thread first touches what it will mostly read (pages land on its memory node), in chunks of
    // 2 MiB so that the split does not depend on the thread count.
    const int64_t chunk_words = int64_t(2) << 20 >> 3;
    const int64_t n_chunks = (int64_t(n_words) + chunk_words - 1) / chunk_words;
    const auto chunk = [&](int64_t c) {
        const size_t begin = size_t(c * chunk_words);
        return std::pair{begin, std::min(n_words, begin + size_t(chunk_words))};
    };
    pool.parallel_for(n_chunks, [&](int64_t b, int64_t e, int) {
        for (int64_t c = b; c < e; ++c) {
            const auto [lo, hi] = chunk(c);
            for (size_t i = lo; i < hi; ++i) buffer[i] = i;
        }
    });
    double best = 1e300;
    std::atomic<uint64_t> sink{0};
    for (int pass = 0; pass < std::max(passes, 1); ++pass) {
        const auto t0 = std::chrono::steady_clock::now();
        pool.parallel_for(n_chunks, [&](int64_t b, int64_t e, int) {
            uint64_t s = 0;
            for (int64_t c = b; c < e; ++c) {
                const auto [lo, hi] = chunk(c);
                s += sum_words(buffer + lo, hi - lo);
            }
            sink.fetch_add(s, std::memory_order_relaxed);  // keeps the reads from being optimised away
        });
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return {double(n_words * sizeof(uint64_t)) / best / 1e9, threads, n_words * sizeof(uint64_t)};
}

}  // namespace kinfer::cli
