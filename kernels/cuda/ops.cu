// The small per-token ops of a llama layer: embedding rows, RMSNorm (with the residual add fused in),
// SwiGLU, residual add, and RoPE fused with the fp16 KV-cache store.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>

#include "kernels/cuda/activation_layout.cuh"
#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/env_switch.hpp"
#include "kernels/cuda/kernels.hpp"
#include "kernels/cuda/repacked.hpp"

namespace kinfer::cuda {
namespace {

using namespace repacked;

// One block per token, threads over the row's 32-element groups.
template <class L>
__global__ void embed_kernel(const uint8_t* __restrict__ table, int64_t row_bytes, int n_groups,
                             int n_records, const int32_t* __restrict__ ids, float* __restrict__ out) {
    const int t = blockIdx.x;
    const uint8_t* row = table + static_cast<int64_t>(ids[t]) * row_bytes;
    float* o = out + static_cast<int64_t>(t) * n_groups * kGroupElems;
    for (int g = threadIdx.x; g < n_groups; g += blockDim.x) {
        typename L::G grp;
        L::load(row, n_records, g, grp);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float v[16];
            L::values(grp, h, v);
#pragma unroll
            for (int i = 0; i < 16; ++i) o[g * kGroupElems + 16 * h + i] = fmaf(grp.a[h], v[i], grp.b[h]);
        }
    }
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024).
__device__ float block_sum(float v) {
    __shared__ float warp_sums[32];
    __shared__ float total;
    v = warp_sum(v);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < int(blockDim.x / 32) ? warp_sums[lane] : 0.0f;
        s = warp_sum(s);
        if (lane == 0) total = s;
    }
    __syncthreads();
    return total;
}

__global__ void rmsnorm_kernel(float* __restrict__ x, const float* __restrict__ residual,
                               const float* __restrict__ w, float eps, int n, float* out, float* prepared,
                               int64_t prepared_stride) {
    wait_for_producer();
    float* xr = x + static_cast<int64_t>(blockIdx.x) * n;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = xr[i];
        if (residual) {
            v += residual[static_cast<int64_t>(blockIdx.x) * n + i];
            xr[i] = v;
        }
        ss = fmaf(v, v, ss);
    }
    const float scale = rsqrtf(block_sum(ss) / float(n) + eps);
    float* o = out + static_cast<int64_t>(blockIdx.x) * n;
    float* pr = prepared ? prepared + blockIdx.x * prepared_stride : nullptr;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = (xr[i] * scale) * w[i];
        o[i] = v;
        if (pr) prepare_group(v, i / 32, n, pr);  // n % 32 == 0: whole warps per group
    }
}

// The same with the row in registers (n <= kPer * 1024): every load of the row is issued at once and x is
// read once. The loop version above runs one block per token with a serial chain of global loads per element
// and measured 20 µs per call on an H200 at n = 4096 (two calls per layer: a third of a decode step); this
// one needs one load latency.
template <int kPer>
__global__ void __launch_bounds__(1024)
    rmsnorm_rows_kernel(float* x, const float* __restrict__ residual, const float* __restrict__ w, float eps,
                        int n, float* out, float* prepared, int64_t prepared_stride) {
    wait_for_producer();
    const int64_t row = blockIdx.x;
    float* xr = x + row * n;
    const float* rr = residual ? residual + row * n : nullptr;
    float v[kPer], wv[kPer];
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
        const int i = threadIdx.x + k * blockDim.x;
        v[k] = 0.0f;
        wv[k] = 0.0f;
        if (i < n) {
            v[k] = xr[i] + (rr ? rr[i] : 0.0f);
            wv[k] = w[i];
            ss = fmaf(v[k], v[k], ss);
        }
    }
    if (rr) {
#pragma unroll
        for (int k = 0; k < kPer; ++k) {
            const int i = threadIdx.x + k * blockDim.x;
            if (i < n) xr[i] = v[k];
        }
    }
    const float scale = rsqrtf(block_sum(ss) / float(n) + eps);
    float* o = out + row * n;
    float* pr = prepared ? prepared + row * prepared_stride : nullptr;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < n) {  // whole warps: blockDim and n (when prepared) are multiples of 32
            const float r = (v[k] * scale) * wv[k];
            o[i] = r;
            if (pr) prepare_group(r, i / 32, n, pr);
        }
    }
}

// Many blocks per row, for a row without a residual to add (the decode step adds it in the producing
// product's epilogue, matvec_add): block b of row t writes elements [256 b, 256 b + 256), one group of 32 per
// warp, and computes the row's sum of squares itself. Every block sums the same elements in the same order,
// so all of them get the same scale, and x is only read, so no block sees another's writes. The one-block
// kernel above is one SM's serial chain (load, reduce over 32 warps, prepare 4 groups per warp, store):
// ~5 us per call in the decode step, 65 calls per token. (One token now runs two of them per step: the other
// norms are prepared in the epilogue of the product before them, matvec_add_norm.)
constexpr int kNormSlice = 256;
__global__ void __launch_bounds__(kNormSlice)
    rmsnorm_slices_kernel(const float* __restrict__ x, const float* __restrict__ w, float eps, int n,
                          float* out, float* prepared, int64_t prepared_stride) {
    wait_for_producer();
    const int64_t row = blockIdx.y;
    const float* xr = x + row * n;
    float ss = 0.0f;
    const int n4 = n / 4;  // n % 32 == 0
#pragma unroll 4
    for (int i = threadIdx.x; i < n4; i += kNormSlice) {
        const float4 f = reinterpret_cast<const float4*>(xr)[i];
        ss = fmaf(f.x, f.x, ss);
        ss = fmaf(f.y, f.y, ss);
        ss = fmaf(f.z, f.z, ss);
        ss = fmaf(f.w, f.w, ss);
    }
    const int e = blockIdx.x * kNormSlice + threadIdx.x;
    const float v = e < n ? xr[e] : 0.0f;
    const float wv = e < n ? w[e] : 0.0f;
    const float scale = rsqrtf(block_sum(ss) / float(n) + eps);
    if (e >= n) return;  // whole warps (n % 32 == 0), after the block's last barrier
    const float r = (v * scale) * wv;
    out[row * n + e] = r;
    if (prepared) prepare_group(r, e / 32, n, prepared + row * prepared_stride);
}

__global__ void swiglu_kernel(const float* gate, const float* __restrict__ up, int64_t n, int64_t cols,
                              float* out, float* prepared, int64_t prepared_stride) {
    wait_for_producer();
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        const float g = gate[i];
        const float v = g / (1.0f + __expf(-g)) * up[i];
        out[i] = v;
        if (prepared) prepare_group(v, (i % cols) / 32, cols, prepared + (i / cols) * prepared_stride);
    }
}

__global__ void add_kernel(float* x, const float* __restrict__ y, int64_t n) {
    wait_for_producer();
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        x[i] += y[i];
}

// One block per token. The angles of the token's position are computed once (double, as the CPU does) into
// shared memory; then threads go over the (head, pair) of q and k, and over v.
__global__ void rope_kv_kernel(float* __restrict__ q, const float* __restrict__ k,
                               const float* __restrict__ v, const KvRow* __restrict__ rows, int layer,
                               int n_head, int n_head_kv, int head_dim, int n_rot,
                               const double* __restrict__ inv_freq) {
    extern __shared__ float cs[];  // cos[n_rot / 2], sin[n_rot / 2]
    wait_for_producer();
    const int t = blockIdx.x;
    const KvRow row = rows[t];
    const int n_pairs = n_rot / 2, half_dim = head_dim / 2;
    for (int i = threadIdx.x; i < n_pairs; i += blockDim.x) {
        double s, c;
        sincos(double(row.pos) * inv_freq[i], &s, &c);
        cs[i] = float(c);
        cs[n_pairs + i] = float(s);
    }
    __syncthreads();
    const int kv_dim = n_head_kv * head_dim;
    float* qt = q + static_cast<int64_t>(t) * n_head * head_dim;
    const float* kt = k + static_cast<int64_t>(t) * kv_dim;
    const float* vt = v + static_cast<int64_t>(t) * kv_dim;
    const int64_t cache_off =
        static_cast<int64_t>(layer) * row.layer_elems + static_cast<int64_t>(row.pos) * kv_dim;
    __half2* kc = reinterpret_cast<__half2*>(row.k + cache_off);
    __half2* vc = reinterpret_cast<__half2*>(row.v + cache_off);
    const int q_pairs = n_head * half_dim, k_pairs = n_head_kv * half_dim;
    for (int j = threadIdx.x; j < q_pairs + k_pairs; j += blockDim.x) {
        const bool is_q = j < q_pairs;
        const int jj = is_q ? j : j - q_pairs;
        const int i = jj % half_dim;
        const float2 in =
            is_q ? reinterpret_cast<const float2*>(qt)[jj] : reinterpret_cast<const float2*>(kt)[jj];
        float2 r = in;
        if (i < n_pairs) {
            const float c = cs[i], s = cs[n_pairs + i];
            r.x = in.x * c - in.y * s;
            r.y = in.x * s + in.y * c;
        }
        if (is_q)
            reinterpret_cast<float2*>(qt)[jj] = r;
        else
            kc[jj] = __floats2half2_rn(r.x, r.y);
    }
    for (int j = threadIdx.x; j < k_pairs; j += blockDim.x) {
        const float2 in = reinterpret_cast<const float2*>(vt)[j];
        vc[j] = __floats2half2_rn(in.x, in.y);
    }
}

__global__ void gather_kernel(const float* __restrict__ x, const int32_t* __restrict__ rows, int64_t cols,
                              float* __restrict__ out) {
    const float* src = x + static_cast<int64_t>(rows[blockIdx.x]) * cols;
    float* dst = out + static_cast<int64_t>(blockIdx.x) * cols;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) dst[i] = src[i];
}

// One block per key row; the delta's angles once per block.
__global__ void rope_shift_kernel(__half2* k, int64_t row_stride, int n_head_kv, int head_dim, int n_rot,
                                  const double* __restrict__ inv_freq, int64_t delta) {
    extern __shared__ float cs[];
    const int n_pairs = n_rot / 2, half_dim = head_dim / 2;
    for (int i = threadIdx.x; i < n_pairs; i += blockDim.x) {
        double s, c;
        sincos(double(delta) * inv_freq[i], &s, &c);
        cs[i] = float(c);
        cs[n_pairs + i] = float(s);
    }
    __syncthreads();
    __half2* row = k + blockIdx.x * (row_stride / 2);
    for (int j = threadIdx.x; j < n_head_kv * half_dim; j += blockDim.x) {
        const int i = j % half_dim;
        if (i >= n_pairs) continue;
        const float2 in = __half22float2(row[j]);
        const float c = cs[i], s = cs[n_pairs + i];
        row[j] = __floats2half2_rn(in.x * c - in.y * s, in.x * s + in.y * c);
    }
}

unsigned elementwise_blocks(int64_t n) {
    return static_cast<unsigned>(std::min<int64_t>(ceil_div<int64_t>(n, 256), 132 * 16));
}

// The many-block RMSNorm unless KINFER_NORM_SLICES=0 (read once; comparisons).
bool rmsnorm_slices() {
    static const bool on = env_on("KINFER_NORM_SLICES");
    return on;
}

}  // namespace

void embed(const DeviceMatrix& table, const int32_t* ids_dev, int n_tokens, float* out_dev, Stream stream) {
    if (n_tokens <= 0) return;
    const int n_groups = static_cast<int>(table.cols / kGroupElems);
    const int n_records = static_cast<int>(ceil_div<int64_t>(table.cols, kRecordElems));
    with_layout(table.type, [&](auto layout) {
        using L = decltype(layout);
        embed_kernel<L><<<n_tokens, 128, 0, as_stream(stream)>>>(static_cast<const uint8_t*>(table.data),
                                                                 int64_t(table.row_bytes), n_groups,
                                                                 n_records, ids_dev, out_dev);
    });
    check_launch("embed");
}

void rmsnorm(float* x_dev, const float* residual_dev, const float* w_dev, float eps, int n_rows, int n,
             float* out_dev, float* prepared_dev, Stream stream) {
    if (n_rows <= 0) return;
    if (prepared_dev && n % 32 != 0)
        throw Error("internal error: rmsnorm prepared for matvec needs n % 32 == 0");
    const cudaStream_t st = as_stream(stream);
    if (!residual_dev && n % 32 == 0 && out_dev != x_dev && rmsnorm_slices()) {
        launch_kernel(rmsnorm_slices_kernel,
                      dim3(unsigned((n + kNormSlice - 1) / kNormSlice), unsigned(n_rows)), kNormSlice, 0, st,
                      x_dev, w_dev, eps, n, out_dev, prepared_dev, activation_floats(n));
    } else if (n <= 4 * 1024)
        launch_kernel(rmsnorm_rows_kernel<4>, n_rows, 1024, 0, st, x_dev, residual_dev, w_dev, eps, n,
                      out_dev, prepared_dev, activation_floats(n));
    else if (n <= 8 * 1024)
        launch_kernel(rmsnorm_rows_kernel<8>, n_rows, 1024, 0, st, x_dev, residual_dev, w_dev, eps, n,
                      out_dev, prepared_dev, activation_floats(n));
    else if (n <= 16 * 1024)
        launch_kernel(rmsnorm_rows_kernel<16>, n_rows, 1024, 0, st, x_dev, residual_dev, w_dev, eps, n,
                      out_dev, prepared_dev, activation_floats(n));
    else
        launch_kernel(rmsnorm_kernel, n_rows, 256, 0, st, x_dev, residual_dev, w_dev, eps, n, out_dev,
                      prepared_dev, activation_floats(n));
    check_launch("rmsnorm");
}

void swiglu(const float* gate_dev, const float* up_dev, int n_rows, int64_t cols, float* out_dev,
            float* prepared_dev, Stream stream) {
    const int64_t n = int64_t(n_rows) * cols;
    if (n <= 0) return;
    if (prepared_dev && cols % 32 != 0)
        throw Error("internal error: swiglu prepared for matvec needs cols % 32 == 0");
    launch_kernel(swiglu_kernel, elementwise_blocks(n), 256, 0, as_stream(stream), gate_dev, up_dev, n, cols,
                  out_dev, prepared_dev, activation_floats(cols));
    check_launch("swiglu");
}

void gather_rows(const float* x_dev, const int32_t* rows_dev, int n, int64_t cols, float* out_dev,
                 Stream stream) {
    if (n <= 0) return;
    gather_kernel<<<n, 1024, 0, as_stream(stream)>>>(x_dev, rows_dev, cols, out_dev);
    check_launch("gather_rows");
}

void rope_shift_keys(uint16_t* k_dev, int64_t n_rows, int64_t row_stride, const AttentionShape& shape,
                     const double* inv_freq_dev, int64_t delta, Stream stream) {
    if (n_rows <= 0) return;
    rope_shift_kernel<<<static_cast<unsigned>(n_rows), 128, sizeof(float) * size_t(shape.n_rot),
                        as_stream(stream)>>>(reinterpret_cast<__half2*>(k_dev), row_stride, shape.n_head_kv,
                                             shape.head_dim, shape.n_rot, inv_freq_dev, delta);
    check_launch("rope_shift_keys");
}

void add(float* x_dev, const float* y_dev, int64_t n, Stream stream) {
    if (n <= 0) return;
    launch_kernel(add_kernel, elementwise_blocks(n), 256, 0, as_stream(stream), x_dev, y_dev, n);
    check_launch("add");
}

void rope_kv_store(float* q_dev, const float* k_dev, const float* v_dev, const KvRow* rows_dev, int n_tokens,
                   int layer, const AttentionShape& shape, const double* inv_freq_dev, Stream stream) {
    if (n_tokens <= 0) return;
    const size_t shared = sizeof(float) * size_t(shape.n_rot);
    launch_kernel(rope_kv_kernel, n_tokens, 1024, shared, as_stream(stream), q_dev, k_dev, v_dev, rows_dev,
                  layer, shape.n_head, shape.n_head_kv, shape.head_dim, shape.n_rot, inv_freq_dev);
    check_launch("rope_kv_store");
}

}  // namespace kinfer::cuda
