#pragma once
// Measures the machine's memory read bandwidth, the ceiling of token generation (which reads every weight
// once per token): several threads stream-read a buffer much larger than the caches, best of a few passes.
#include <cstdint>

namespace kinfer::cli {

struct BandwidthResult {
    double gb_per_s = 0;  // 1e9 bytes per second
    int threads = 0;
    uint64_t buffer_bytes = 0;
};

// buffer_bytes 0: 16 times the last-level cache, at least 512 MiB. threads <= 0: all hardware threads.
BandwidthResult measure_read_bandwidth(int threads = 0, uint64_t buffer_bytes = 0, int passes = 5);

}  // namespace kinfer::cli
