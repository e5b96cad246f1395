// A development probe of the staged tensor-core products (KINFER_MMA_PROBE=FILE, read once; off by default):
// where a block's time goes inside a real decode step, which the CUPTI timeline (one duration per launch)
// cannot say. Each block of a probed launch writes one record into a ring in device memory: the launch's
// number (the host counts the probed launches, so a graph's replays repeat their numbers every step), its
// block and SM, the global time at its start and end, and clock64 marks after its start: the wait for the
// previous kernel, each chunk in place and computed, the sums stored. At exit the ring goes to FILE;
// scripts/dev/mma_probe.py reads it. The probe is a separate instantiation of the kernel (kProbe), so that
// the kernels of a normal run carry none of it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace kinfer::cuda {

struct MmaProbeRec {
    uint32_t launch, block, smid, n_chunks;
    uint64_t start_ns, end_ns;  // %globaltimer
    // Cycles after the start: [0] the wait returned, [1 + 2c] chunk c in place, [2 + 2c] chunk c computed
    // (chunks past 14 are not marked), [kProbeStored] the sums stored.
    uint32_t clk[32];
};
constexpr int kProbeStored = 31;
constexpr int kProbeRecs = 1 << 16;  // a power of two: a slot is the low bits of the block's number

namespace {
__device__ MmaProbeRec* g_probe_ring;

__device__ __forceinline__ uint64_t global_ns() {
    uint64_t t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}

// Thread 0's record of its block (others hold null and do nothing). The slot is the launch's first slot (the
// host counts the blocks of every probed launch) plus the block, so that no atomic delays the block and a
// graph's replays overwrite their own records: the ring holds the last step.
struct ProbeMarks {
    MmaProbeRec* r = nullptr;
    long long t0 = 0;
    __device__ __forceinline__ void begin(uint32_t launch, uint32_t first_slot, int n_items) {
        if (threadIdx.x != 0 || g_probe_ring == nullptr) return;
        t0 = clock64();
        r = g_probe_ring + ((first_slot + blockIdx.x) & (kProbeRecs - 1));
        uint32_t smid;
        asm volatile("mov.u32 %0, %smid;" : "=r"(smid));
        r->launch = launch, r->block = blockIdx.x, r->smid = smid, r->n_chunks = uint32_t(n_items);
        r->start_ns = global_ns();
    }
    __device__ __forceinline__ void mark(int i) const {
        if (r != nullptr && i < kProbeStored) r->clk[i] = uint32_t(clock64() - t0);
    }
    __device__ __forceinline__ void end() const {
        if (r == nullptr) return;
        r->clk[kProbeStored] = uint32_t(clock64() - t0);
        r->end_ns = global_ns();
    }
};
}  // namespace

}  // namespace kinfer::cuda
