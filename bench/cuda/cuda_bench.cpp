// GPU kernel timings for the CUDA backend (run on the device; prints a table). Each matvec case cycles
// through enough copies of the weight that nothing stays in L2, times with CUDA events over many launches and
// reports the median; GB/s counts the weight bytes read (activations and outputs are < 1% of them).
//
//   kinfer_cuda_bench [--quick] [--matvec-only] [--attention-only]
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gguf/ggml_type.hpp"
#include "kernels/cuda/cuda_info.hpp"
#include "kernels/cuda/kernels.hpp"
#include "tests/cuda_test_data.hpp"

using namespace kinfer;

namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
        std::fprintf(stderr, "CUDA %s: %s\n", what, cudaGetErrorString(e));
        std::exit(1);
    }
}

// Median milliseconds of `reps` timed runs of f (after 2 warm-up runs).
template <class F>
double median_ms(int reps, F&& f) {
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    for (int i = 0; i < 2; ++i) f();
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        cudaEventRecord(a);
        f();
        cudaEventRecord(b);
        check(cudaEventSynchronize(b), "timing");
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        t.push_back(ms);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

double copy_bandwidth() {
    const size_t bytes = size_t(2) << 30;
    void *a, *b;
    check(cudaMalloc(&a, bytes), "malloc");
    check(cudaMalloc(&b, bytes), "malloc");
    cudaMemset(a, 1, bytes);
    const double ms = median_ms(10, [&] { cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice); });
    cudaFree(a);
    cudaFree(b);
    return 2.0 * double(bytes) / (ms * 1e-3) / 1e9;  // read + write
}

struct MatvecResult {
    double gbs[5];
};

void bench_matvec(GgmlType type, int64_t rows, int64_t cols, bool quick) {
    const TypeTraits& t = type_traits(type);
    std::mt19937 rng(1);
    const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
    const uint64_t bytes = cuda::device_matrix_bytes(t, rows, cols, "bench");
    // Enough copies for ~1.5 GB so that L2 (60 MB) holds none of them between uses.
    const int copies = int(std::max<uint64_t>(2, (uint64_t(1536) << 20) / bytes));
    cuda::DeviceBuffer mem(bytes * copies, "bench weights");
    std::vector<cuda::DeviceMatrix> m(copies);
    m[0] = cuda::upload_matrix(t, gguf.data(), rows, cols, mem.data(), "bench");
    for (int c = 1; c < copies; ++c) {
        m[c] = m[0];
        m[c].data = mem.as<uint8_t>() + bytes * c;
        check(cudaMemcpy(const_cast<void*>(m[c].data), m[0].data, bytes, cudaMemcpyDeviceToDevice), "copy");
    }
    std::vector<float> x(size_t(16) * cols);
    for (float& v : x) v = std::normal_distribution<float>(0, 1)(rng);
    cuda::DeviceBuffer xd(x.size() * 4, "x"), od(size_t(16) * rows * 4, "out");
    cuda::DeviceBuffer xp(size_t(16) * cuda::activation_floats(cols) * 4, "x prepared");
    cuda::copy_to_device(xd.data(), x.data(), x.size() * 4);
    cuda::prepare_activation(xd.as<float>(), 16, cols, xp.as<float>(), nullptr);
    std::printf("%-5s %6lldx%-6lld %7.1f MB |", t.name, (long long)rows, (long long)cols,
                double(bytes) / 1e6);
    for (int nt : {1, 2, 4, 8, 16}) {
        if (quick && nt > 1 && nt != 8 && nt != 16) continue;
        const double ms = median_ms(quick ? 5 : 15, [&] {
            for (int c = 0; c < copies; ++c)
                cuda::matvec(m[c], xp.as<float>(), nt, od.as<float>(), rows, nullptr);
        });
        const double us = ms * 1e3 / copies;
        std::printf(" nt=%-2d %7.1f us %6.0f GB/s |", nt, us, double(bytes) / (us * 1e-6) / 1e9);
    }
    std::printf("\n");
}

void bench_prefill(GgmlType type, int64_t rows, int64_t cols, int n_tok) {
    const TypeTraits& t = type_traits(type);
    std::mt19937 rng(2);
    const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
    cuda::DeviceBuffer mem(cuda::device_matrix_bytes(t, rows, cols, "bench"), "bench weights");
    const cuda::DeviceMatrix m = cuda::upload_matrix(t, gguf.data(), rows, cols, mem.data(), "bench");
    std::vector<float> x(size_t(n_tok) * cols);
    for (float& v : x) v = std::normal_distribution<float>(0, 1)(rng);
    cuda::DeviceBuffer xd(x.size() * 4, "x"), od(size_t(n_tok) * rows * 4, "out");
    cuda::copy_to_device(xd.data(), x.data(), x.size() * 4);
    cuda::DeviceBuffer scratch(cuda::matmul_scratch_bytes(cols, n_tok), "scratch");
    const double ms = median_ms(10, [&] {
        cuda::matmul(m, xd.as<float>(), n_tok, od.as<float>(), rows, {scratch.data(), scratch.bytes()},
                     nullptr);
    });
    std::printf("prefill %-5s %lldx%lld x %d tokens: %8.1f us  %6.1f TFLOP/s\n", t.name, (long long)rows,
                (long long)cols, n_tok, ms * 1e3,
                2.0 * double(rows) * double(cols) * n_tok / (ms * 1e-3) / 1e12);
}

void bench_attention(int n_ctx_filled) {
    // Mistral-7B: 32 heads over 8 KV heads of 128; one decode token at position n_ctx_filled - 1.
    cuda::AttentionShape shape{32, 8, 128, 128};
    const int kv_dim = shape.n_head_kv * shape.head_dim;
    const int n_ctx = std::max(n_ctx_filled, 16);
    std::vector<uint16_t> kv(size_t(n_ctx) * kv_dim, 0x3c00);  // 1.0
    cuda::DeviceBuffer k(kv.size() * 2, "k"), v(kv.size() * 2, "v");
    cuda::copy_to_device(k.data(), kv.data(), kv.size() * 2);
    cuda::copy_to_device(v.data(), kv.data(), kv.size() * 2);
    cuda::KvRow row;
    row.k = k.as<uint16_t>();
    row.v = v.as<uint16_t>();
    row.layer_elems = int64_t(n_ctx) * kv_dim;
    row.pos = n_ctx_filled - 1;
    cuda::DeviceBuffer rd(sizeof row, "row"), q(size_t(4) * shape.n_head * 128, "q"),
        o(size_t(4) * shape.n_head * 128, "o");
    cuda::copy_to_device(rd.data(), &row, sizeof row);
    cudaMemset(q.data(), 0, q.bytes());
    cuda::DeviceBuffer scratch(4 * std::max<size_t>(1, cuda::attention_scratch_floats(shape, 1, n_ctx)),
                               "scratch");
    cuda::DeviceBuffer counters(sizeof(int) * cuda::attention_counters(shape, 1), "counters");
    cuda::zero_device(counters.data(), counters.bytes());
    const double ms = median_ms(20, [&] {
        cuda::attention(q.as<float>(), rd.as<cuda::KvRow>(), 1, 0, shape, 0.088f, n_ctx, o.as<float>(),
                        nullptr, scratch.as<float>(), counters.as<int>(), nullptr);
    });
    const double bytes = 2.0 * n_ctx_filled * kv_dim * 2;
    std::printf("attention decode, %5d positions: %7.1f us  %6.0f GB/s (K+V of one layer)\n", n_ctx_filled,
                ms * 1e3, bytes / (ms * 1e-3) / 1e9);
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = false, matvec_only = false, attention_only = false;
    for (int i = 1; i < argc; ++i) {
        quick |= std::strcmp(argv[i], "--quick") == 0;
        matvec_only |= std::strcmp(argv[i], "--matvec-only") == 0;        // Q4_K 14336x4096 alone (profiling)
        attention_only |= std::strcmp(argv[i], "--attention-only") == 0;  // the decode attention lines
    }
    const cuda::DeviceInfo info = cuda::query_devices();
    if (info.count == 0) {
        std::printf("no GPU: %s\n", info.reason.c_str());
        return 0;
    }
    std::printf("GPU: %s (sm_%d%d)\n", info.name.c_str(), info.sm_major, info.sm_minor);
    if (matvec_only) {
        bench_matvec(GgmlType::Q4_K, 14336, 4096, true);
        return 0;
    }
    if (attention_only) {
        for (int n : {512, 1024, 4096, 16384}) bench_attention(n);
        return 0;
    }
    std::printf("device-to-device copy: %.0f GB/s (read + write)\n", copy_bandwidth());
    std::printf("\nmatvec, weight bytes / time:\n");
    for (GgmlType type :
         {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_K, GgmlType::Q2_K,
          GgmlType::Q3_K, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::F16, GgmlType::BF16})
        bench_matvec(type, 14336, 4096, quick);
    for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
        bench_matvec(type, 4096, 4096, quick);
        bench_matvec(type, 4096, 14336, quick);
        bench_matvec(type, 1024, 4096, quick);
    }
    std::printf("\n");
    for (int n : {512, 4096, 16384}) bench_attention(n);
    std::printf("\n");
    for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q8_0}) bench_prefill(type, 14336, 4096, 512);
    return 0;
}
