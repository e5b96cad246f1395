// Each output row's k best logits, selected where the logits are: a decode step copies k (id, logit) pairs
// per row back to the host instead of the vocabulary. One block per row. k = 1 is a block argmax; larger k
// a radix select on the logits as order-preserving uint32 keys (four 8-bit digits, most significant first)
// finds the k-th largest key T, then one ordered pass over the ids writes every key above T and the lowest
// ids of those equal to T, so the choice at the threshold is deterministic. The order among the k is left
// to the host (a sort of k pairs).
#include <cuda_runtime.h>
#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/kernels.hpp"

namespace kinfer::cuda {
namespace {

constexpr int kThreads = 512;

// Larger key = ranks first. -0 counts as +0 (they compare equal, so ties go by id); NaN is below everything.
__device__ __forceinline__ uint32_t order_key(float x) {
    if (x != x) return 0u;
    if (x == 0.0f) return 0x80000000u;  // the key of +0
    const uint32_t b = __float_as_uint(x);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

struct Pair {
    int32_t id;
    float logit;
};

__global__ void __launch_bounds__(kThreads)
    argmax_kernel(const float* __restrict__ logits, int64_t n_vocab, Pair* __restrict__ out) {
    const float* row = logits + int64_t(blockIdx.x) * n_vocab;
    // Highest key, then lowest id: the largest (key << 32 | ~id).
    unsigned long long best = 0;
    for (int64_t i = threadIdx.x; i < n_vocab; i += kThreads) {
        const unsigned long long v =
            (static_cast<unsigned long long>(order_key(row[i])) << 32) | (0xFFFFFFFFu - uint32_t(i));
        best = v > best ? v : best;
    }
    for (int o = 16; o > 0; o >>= 1) {
        const unsigned long long other = __shfl_xor_sync(0xFFFFFFFFu, best, o);
        best = other > best ? other : best;
    }
    __shared__ unsigned long long warp_best[kThreads / 32];
    if (threadIdx.x % 32 == 0) warp_best[threadIdx.x / 32] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < kThreads / 32; ++w) best = warp_best[w] > best ? warp_best[w] : best;
        const int32_t id = int32_t(0xFFFFFFFFu - uint32_t(best & 0xFFFFFFFFull));
        out[blockIdx.x] = {id, row[id]};
    }
}

__global__ void __launch_bounds__(kThreads)
    select_kernel(const float* __restrict__ logits, int64_t n_vocab, int k, Pair* __restrict__ out) {
    const float* row = logits + int64_t(blockIdx.x) * n_vocab;
    Pair* dst = out + int64_t(blockIdx.x) * k;
    __shared__ unsigned int hist[256];
    __shared__ uint32_t s_prefix;
    __shared__ int s_remaining;

    // ---- radix select of the k-th largest key: prefix holds its digits found so far.
    uint32_t prefix = 0, mask = 0;
    int remaining = k;  // how many of the keys matching `prefix` are still wanted
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int d = threadIdx.x; d < 256; d += kThreads) hist[d] = 0;
        __syncthreads();
        // Logits crowd into few digits (the top one is sign and exponent): one atomic per distinct digit
        // of a warp, with its count. Every lane of a warp runs every iteration (kThreads % 32 == 0).
        for (int64_t base = 0; base < n_vocab; base += kThreads) {
            const int64_t i = base + threadIdx.x;
            const uint32_t key = i < n_vocab ? order_key(row[i]) : 0u;
            const uint32_t digit = i < n_vocab && (key & mask) == prefix ? (key >> shift) & 0xFFu : 256u;
            const unsigned peers = __match_any_sync(0xFFFFFFFFu, digit);
            if (digit < 256u && (threadIdx.x % 32) == unsigned(__ffs(peers) - 1))
                atomicAdd(&hist[digit], unsigned(__popc(peers)));
        }
        __syncthreads();
        if (threadIdx.x < 32) {
            // Lane l owns digits 8l .. 8l + 7. A suffix sum over the lanes gives the keys above each lane's
            // digits; the lane where `remaining` falls walks its digits from the top.
            const int lane = threadIdx.x;
            unsigned int own = 0;
            for (int j = 0; j < 8; ++j) own += hist[lane * 8 + j];
            unsigned int suffix = own;  // keys in lanes >= lane
            for (int o = 1; o < 32; o <<= 1) {
                const unsigned int v = __shfl_down_sync(0xFFFFFFFFu, suffix, o);
                if (lane + o < 32) suffix += v;
            }
            unsigned int above = suffix - own;
            if (above < unsigned(remaining) && unsigned(remaining) <= suffix) {
                for (int j = 7; j >= 0; --j) {
                    const unsigned int n = hist[lane * 8 + j];
                    if (above + n >= unsigned(remaining)) {
                        s_prefix = prefix | (uint32_t(lane * 8 + j) << shift);
                        s_remaining = remaining - int(above);
                        break;
                    }
                    above += n;
                }
            }
        }
        __syncthreads();
        prefix = s_prefix;
        remaining = s_remaining;
        mask |= 0xFFu << shift;
        __syncthreads();  // hist and the shared results are rewritten by the next digit
    }

    // ---- collect, in id order: every key above the threshold, and the first `remaining` equal to it.
    const uint32_t threshold = prefix;
    const int n_above = k - remaining;
    using Scan = cub::BlockScan<int, kThreads>;
    __shared__ typename Scan::TempStorage scan_storage;
    int above_done = 0, equal_done = 0;  // over earlier tiles
    for (int64_t base = 0; base < n_vocab; base += kThreads) {
        const int64_t i = base + threadIdx.x;
        const float x = i < n_vocab ? row[i] : 0.0f;
        const uint32_t key = i < n_vocab ? order_key(x) : 0u;
        const bool is_above = i < n_vocab && key > threshold;
        const bool is_equal = i < n_vocab && key == threshold;
        // Both counts in one scan: above in the low 16 bits, equal in the high (a tile holds < 2^16).
        int rank, total;
        Scan(scan_storage).ExclusiveSum(int(is_above) | (int(is_equal) << 16), rank, total);
        if (is_above) dst[above_done + (rank & 0xFFFF)] = {int32_t(i), x};
        if (is_equal) {
            const int e = equal_done + (rank >> 16);
            if (e < remaining) dst[n_above + e] = {int32_t(i), x};
        }
        above_done += total & 0xFFFF;
        equal_done += total >> 16;
        __syncthreads();  // scan_storage is reused by the next tile
        if (above_done == n_above && equal_done >= remaining) break;  // the same in every thread
    }
}

}  // namespace

void top_k_select(const float* logits_dev, int rows, int64_t n_vocab, int k, void* out_dev, Stream stream) {
    if (rows <= 0) return;
    auto* out = static_cast<Pair*>(out_dev);
    if (k == 1)
        argmax_kernel<<<rows, kThreads, 0, as_stream(stream)>>>(logits_dev, n_vocab, out);
    else
        select_kernel<<<rows, kThreads, 0, as_stream(stream)>>>(logits_dev, n_vocab, k, out);
    check_launch("top_k_select");
}

}  // namespace kinfer::cuda
