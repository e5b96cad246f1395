// The CUDA kernels against the scalar references, on random data with odd sizes, every type the GPU reads.
// The repacking (host code) is checked on every build with CUDA; the kernels run where a GPU is present and
// skip with a message elsewhere (CI has nvcc but no GPU).
#include <doctest/doctest.h>

#if KINFER_WITH_CUDA

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "engine/top_candidates.hpp"
#include "gguf/ggml_type.hpp"
#include "kernels/cpu/simple_ops.hpp"
#include "kernels/cuda/cuda_info.hpp"
#include "kernels/cuda/kernels.hpp"
#include "kernels/cuda/repack.hpp"
#include "kernels/cuda/repacked.hpp"
#include "kernels/fp16.hpp"
#include "kernels/reference/type_kernels.hpp"
#include "kinfer/error.hpp"
#include "tests/cuda_test_data.hpp"

using namespace kinfer;

TEST_CASE("cuda repack: every type's device layout dequantizes exactly as the reference") {
    std::mt19937 rng(11);
    for (const GgmlType type : cuda_test::kDeviceTypes) {
        const TypeTraits& t = type_traits(type);
        // An odd number of rows; for 32-element types a last record that is only partly used.
        const int64_t cols = t.block_elems == 256 ? 768 : 352;
        const int64_t rows = 3;
        CAPTURE(t.name);
        const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
        const uint64_t rb = cuda::repacked_row_bytes(t, cols, "test");
        CHECK(rb % 16 == 0);
        std::vector<uint8_t> packed(rb * rows);
        cuda::repack_rows(t, gguf.data(), rows, cols, packed.data(), "test");
        for (int64_t r = 0; r < rows; ++r) {
            std::vector<float> want(cols), got(cols);
            ref::dequantize_fn(t)(gguf.data() + r * row_bytes(t, cols), want.data(), cols);
            cuda::dequantize_repacked_row(type, packed.data() + r * rb, cols, got.data());
            float max_abs = 0;
            for (float w : want) max_abs = std::max(max_abs, std::fabs(w));
            int bad = 0;
            for (int64_t i = 0; i < cols; ++i)
                if (!(std::fabs(got[i] - want[i]) <= 3e-5f * max_abs) && ++bad <= 3)
                    MESSAGE("row " << r << " element " << i << ": want " << want[i] << " got " << got[i]);
            CHECK(bad == 0);
        }
    }
}

// Two random rows of type t, `cols` wide, in the device layout (host memory).
static std::vector<uint8_t> two_packed_rows(const TypeTraits& t, int64_t cols, std::mt19937& rng) {
    const std::vector<uint8_t> gguf = cuda_test::random_rows(t, 2, cols, rng);
    std::vector<uint8_t> packed(cuda::repacked_row_bytes(t, cols, "test") * 2);
    cuda::repack_rows(t, gguf.data(), 2, cols, packed.data(), "test");
    return packed;
}

TEST_CASE(
    "cuda repack: a quad's word and step loads (the tensor-core path) give the group loads' codes and "
    "scales") {
    std::mt19937 rng(12);
    int checked_types = 0;
    for (const GgmlType type : cuda_test::kDeviceTypes) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        const int64_t cols = t.block_elems == 256 ? 768 : 352, rows = 2;
        const uint64_t rb = cuda::repacked_row_bytes(t, cols, "test");
        const std::vector<uint8_t> packed = two_packed_rows(t, cols, rng);
        cuda::repacked::with_layout(type, [&](auto layout) {
            using L = decltype(layout);
            if constexpr (requires(const uint8_t* r, cuda::repacked::QuadWord& o) {
                              L::load_quad(r, 0, 0, 0, o);
                          }) {
                ++checked_types;
                const int n_records = int((cols + 255) / 256);
                int bad = 0, bad_step = 0;
                for (int64_t r = 0; r < rows; ++r)
                    for (int g = 0; g < int(cols / 32); ++g) {
                        const uint8_t* row = packed.data() + r * rb;
                        typename L::G grp;
                        L::load(row, n_records, g, grp);
                        for (int q = 0; q < 4; ++q) {
                            cuda::repacked::QuadWord w;
                            L::load_quad(row, n_records, g, q, w);
                            for (int h = 0; h < 2; ++h) {
                                uint32_t c[4];
                                L::codes(grp, h, c);
                                if (c[q] != w.c[h] || grp.a[h] != w.a[h] || grp.b[h] != w.b[h]) ++bad;
                            }
                            // The step loads of the batch kernel: the same word from the group's step.
                            constexpr int S = L::kQuadStep;
                            typename L::QuadRaw raw;
                            cuda::repacked::load_quads<L>(row, n_records, g - g % S, q, raw);
                            L::quad_prepare(raw);
                            cuda::repacked::QuadWord s;
                            cuda::repacked::quad_word<L>(raw, g % S, q, (g - g % S) % 8, s);
                            for (int h = 0; h < 2; ++h)
                                if (s.c[h] != w.c[h] || s.a[h] != w.a[h] || s.b[h] != w.b[h]) ++bad_step;
                        }
                    }
                CHECK(bad == 0);
                CHECK(bad_step == 0);
            }
        });
    }
    CHECK(checked_types == 5);  // Q4_0, Q8_0, Q4_K, Q5_K, Q6_K
}

TEST_CASE(
    "cuda repack: a record's pair loads (shared scale word) and one-scale layouts match the group loads") {
    std::mt19937 rng(13);
    int pair_types = 0, one_scale_types = 0;
    for (const GgmlType type : cuda_test::kDeviceTypes) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        const int64_t cols = t.block_elems == 256 ? 768 : 352, rows = 2;
        const uint64_t rb = cuda::repacked_row_bytes(t, cols, "test");
        const std::vector<uint8_t> packed = two_packed_rows(t, cols, rng);
        const int n_records = int((cols + 255) / 256);
        cuda::repacked::with_layout(type, [&](auto layout) {
            using L = decltype(layout);
            int bad = 0;
            for (int64_t r = 0; r < rows; ++r)
                for (int g = 0; g < int(cols / 32); ++g) {
                    const uint8_t* row = packed.data() + r * rb;
                    typename L::G grp{};  // zeroed: memcmp below sees the fields a layout leaves
                    L::load(row, n_records, g, grp);
                    if constexpr (requires { L::kOneScale; }) {  // both halves share a and b
                        if (grp.a[0] != grp.a[1] || grp.b[0] != grp.b[1]) ++bad;
                    }
                    if constexpr (requires(typename L::G & o) { L::load_pair(row, 0, 0, o, o); }) {
                        if (g % 8 >= 4) continue;
                        typename L::G p{}, p4{}, grp4{};
                        L::load_pair(row, n_records, g, p, p4);
                        L::load(row, n_records, g + 4, grp4);
                        if (std::memcmp(&p, &grp, sizeof p) != 0 || std::memcmp(&p4, &grp4, sizeof p4) != 0)
                            ++bad;
                    }
                }
            CHECK(bad == 0);
            if constexpr (requires { L::kOneScale; }) ++one_scale_types;
            if constexpr (requires(typename L::G & o) { L::load_pair(nullptr, 0, 0, o, o); }) ++pair_types;
        });
    }
    CHECK(pair_types == 2);       // Q4_K, Q5_K
    CHECK(one_scale_types >= 4);  // Q4_0, Q8_0, Q4_K, Q5_K at least
}

TEST_CASE("cuda repack: unsupported types and shapes are refused with the tensor's name") {
    CHECK_THROWS_WITH_AS(cuda::repacked_row_bytes(type_traits(GgmlType::IQ2_XS), 256, "blk.0.attn_q.weight"),
                         doctest::Contains("blk.0.attn_q.weight"), UsageError);
    CHECK_THROWS_WITH_AS(cuda::repacked_row_bytes(type_traits(GgmlType::F16), 100, "output.weight"),
                         doctest::Contains("multiple of 32"), UsageError);
}

namespace {

bool have_gpu() {
    const cuda::DeviceInfo info = cuda::query_devices();
    if (info.count == 0) MESSAGE("skipping GPU test: " << info.reason);
    return info.count > 0;
}

template <class T>
cuda::DeviceBuffer to_device(const std::vector<T>& v) {
    cuda::DeviceBuffer b(v.size() * sizeof(T), "test data");
    cuda::copy_to_device(b.data(), v.data(), v.size() * sizeof(T));
    return b;
}

template <class T>
std::vector<T> to_host(const cuda::DeviceBuffer& b, size_t n) {
    std::vector<T> v(n);
    cuda::copy_to_host(v.data(), b.data(), n * sizeof(T));
    return v;
}

// Output buffers start as NaN so that an element a kernel fails to write shows up.
cuda::DeviceBuffer poisoned(size_t n_floats) {
    return to_device(std::vector<float>(n_floats, NAN));
}

// x (n_tok rows of cols) on the device in matvec's prepared layout (the raw copy is freed by cudaFree, which
// waits for the device).
cuda::DeviceBuffer prepared_activation(const std::vector<float>& x, int n_tok, int64_t cols) {
    cuda::DeviceBuffer xd = to_device(x);
    cuda::DeviceBuffer xp = poisoned(size_t(n_tok) * cuda::activation_floats(cols));
    cuda::prepare_activation(xd.as<float>(), n_tok, cols, xp.as<float>(), nullptr);
    return xp;
}

std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale = 1.0f) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

struct UploadedMatrix {
    cuda::DeviceBuffer mem;
    cuda::DeviceMatrix m;
};

UploadedMatrix upload(const TypeTraits& t, const std::vector<uint8_t>& gguf, int64_t rows, int64_t cols) {
    UploadedMatrix u;
    u.mem = cuda::DeviceBuffer(cuda::device_matrix_bytes(t, rows, cols, "test"), "test matrix");
    u.m = cuda::upload_matrix(t, gguf.data(), rows, cols, u.mem.data(), "test");
    return u;
}

// Checks a product out[t * stride + r] against the double-precision reference dot product; the error bound
// is relative to sum |w_i x_i| (the scale the rounding errors live on). Returns the largest relative error.
double check_product(const TypeTraits& t, const std::vector<uint8_t>& gguf, int64_t rows, int64_t cols,
                     const std::vector<float>& x, int n_tok, const std::vector<float>& out, int64_t stride,
                     double tolerance) {
    double worst = 0;
    int bad = 0;
    std::vector<float> w(cols);
    for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* row = gguf.data() + r * row_bytes(t, cols);
        ref::dequantize_fn(t)(row, w.data(), cols);
        for (int tok = 0; tok < n_tok; ++tok) {
            const float* xt = x.data() + tok * cols;
            double want = 0, mag = 0;
            for (int64_t i = 0; i < cols; ++i) {
                want += double(w[i]) * double(xt[i]);
                mag += std::fabs(double(w[i]) * double(xt[i]));
            }
            const double got = out[tok * stride + r];
            const double rel = std::fabs(got - want) / (mag + 1e-30);
            worst = std::max(worst, std::isnan(got) ? 1e9 : rel);
            if (!(rel <= tolerance) && ++bad <= 3)
                MESSAGE(t.name << " row " << r << " token " << tok << ": want " << want << " got " << got);
        }
    }
    CHECK(bad == 0);
    return worst;
}

// A random matrix of t (rows x cols) times n_tok random activations for each n_tok, on the device against the
// double reference (outputs at the stride of the rows).
void check_random_product(const TypeTraits& t, int64_t rows, int64_t cols, std::initializer_list<int> n_toks,
                          std::mt19937& rng) {
    const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
    UploadedMatrix w = upload(t, gguf, rows, cols);
    for (const int n_tok : n_toks) {
        CAPTURE(n_tok);
        const std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
        const cuda::DeviceBuffer xp = prepared_activation(x, n_tok, cols);
        cuda::DeviceBuffer od = poisoned(size_t(n_tok) * rows);
        cuda::matvec(w.m, xp.as<float>(), n_tok, od.as<float>(), rows, nullptr);
        check_product(t, gguf, rows, cols, x, n_tok, to_host<float>(od, size_t(n_tok) * rows), rows, 1e-4);
    }
}

}  // namespace

TEST_CASE("cuda matvec: every type, 1..16 tokens, odd sizes, against the double reference") {
    if (!have_gpu()) return;
    std::mt19937 rng(5);
    for (const GgmlType type : cuda_test::kDeviceTypes) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        // Odd row counts (blocks with rows past the end) and, for 32-element types, a partial last record.
        const int64_t cols = t.block_elems == 256 ? 1280 : 1312;
        const int64_t rows = 37;
        const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
        UploadedMatrix w = upload(t, gguf, rows, cols);
        double worst = 0;
        for (int n_tok : {1, 2, 3, 5, 8, 13, 16}) {
            const std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
            cuda::DeviceBuffer xd = to_device(x);
            cuda::DeviceBuffer xp = poisoned(size_t(n_tok) * cuda::activation_floats(cols));
            cuda::prepare_activation(xd.as<float>(), n_tok, cols, xp.as<float>(), nullptr);
            const int64_t stride = rows + 3;  // outputs at a stride wider than the rows
            cuda::DeviceBuffer od = poisoned(size_t(n_tok) * stride);
            cuda::matvec(w.m, xp.as<float>(), n_tok, od.as<float>(), stride, nullptr);
            const std::vector<float> out = to_host<float>(od, size_t(n_tok) * stride);
            worst = std::max(worst, check_product(t, gguf, rows, cols, x, n_tok, out, stride, 1e-4));
        }
        MESSAGE(t.name << ": largest error / sum|w x| = " << worst);
    }
}

// Batches on the tensor-core path (matvec_mma_kernel): it takes rows of whole 32-group chunks only, which the
// odd widths above never are. Two and three chunks (the double buffer's both halves, and an odd count), rows
// past the end of a block, 3-16 tokens (KINFER_MATVEC_MMA=2 sends 3-4 and every type's 5-8 there too). The
// 70-row launches take 16-row blocks (at most one 32-row block per SM: mma_rows16); the launches of 8 200
// rows take 32-row blocks, their last one 8 rows past the end (KINFER_MMA_ROWS=16 or 32 forces either
// everywhere).
TEST_CASE(
    "cuda matvec: batches on the tensor-core path (whole 32-group chunks) against the double reference") {
    if (!have_gpu()) return;
    std::mt19937 rng(17);
    for (const GgmlType type : cuda_test::kDeviceTypes) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        for (const int64_t cols : {2048, 3072}) {
            CAPTURE(cols);
            const int64_t rows = 70;
            const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
            UploadedMatrix w = upload(t, gguf, rows, cols);
            for (int n_tok : {3, 5, 8, 9, 16}) {
                CAPTURE(n_tok);
                const std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
                const cuda::DeviceBuffer xp = prepared_activation(x, n_tok, cols);
                const int64_t stride = rows + 5;
                cuda::DeviceBuffer od = poisoned(size_t(n_tok) * stride);
                cuda::matvec(w.m, xp.as<float>(), n_tok, od.as<float>(), stride, nullptr);
                const std::vector<float> out = to_host<float>(od, size_t(n_tok) * stride);
                check_product(t, gguf, rows, cols, x, n_tok, out, stride, 1e-4);
                // The residual add (wo and down of a batch) is the same sums added to the rows, bit for bit.
                const std::vector<float> resid = random_floats(size_t(n_tok) * stride, rng, 4.0f);
                cuda::DeviceBuffer acc = to_device(resid);
                cuda::matvec_add(w.m, xp.as<float>(), n_tok, acc.as<float>(), stride, nullptr);
                const std::vector<float> got = to_host<float>(acc, resid.size());
                int differ = 0;
                for (int tok = 0; tok < n_tok; ++tok)
                    for (int64_t r = 0; r < rows; ++r) {
                        const size_t i = size_t(tok * stride + r);
                        if (!(got[i] == resid[i] + out[i])) ++differ;
                    }
                CHECK(differ == 0);
            }
        }
    }
    for (const GgmlType type : {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::Q4_0}) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        const int64_t cols = 1024, rows = 8200;
        check_random_product(t, rows, cols, {5, 16}, rng);
    }
    // Q4_K_M's wq/wk/wv: two Q4_K matrices and a Q6_K one in one launch (blocks of either layout).
    const TypeTraits& t4 = type_traits(GgmlType::Q4_K);
    const TypeTraits& t6 = type_traits(GgmlType::Q6_K);
    const int64_t cols = 2048;
    const int64_t n_rows[3] = {64, 40, 40};
    std::vector<std::vector<uint8_t>> gguf;
    std::vector<UploadedMatrix> m;
    for (int i = 0; i < 3; ++i) {
        const TypeTraits& t = i < 2 ? t4 : t6;
        gguf.push_back(cuda_test::random_rows(t, n_rows[i], cols, rng));
        m.push_back(upload(t, gguf.back(), n_rows[i], cols));
    }
    for (int n_tok : {8, 16}) {
        CAPTURE(n_tok);
        const std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
        const cuda::DeviceBuffer xp = prepared_activation(x, n_tok, cols);
        std::vector<cuda::DeviceBuffer> od;
        cuda::MatvecOut outs[3];
        for (int i = 0; i < 3; ++i) {
            od.push_back(poisoned(size_t(n_tok) * n_rows[i]));
            outs[i] = {&m[size_t(i)].m, od.back().as<float>(), n_rows[i]};
        }
        cuda::matvecs(outs, 3, xp.as<float>(), n_tok, nullptr);
        for (int i = 0; i < 3; ++i)
            check_product(i < 2 ? t4 : t6, gguf[size_t(i)], n_rows[i], cols, x, n_tok,
                          to_host<float>(od[size_t(i)], size_t(n_tok) * n_rows[i]), n_rows[i], 1e-4);
    }
}

// Launches of more tiles than an H200's SMs hold at once (2 x 132 blocks of 8 warps: several rounds of
// blocks), each block starting at chunk (block % chunks) (mma_rotate; KINFER_MMA_ROTATE=0 starts all at
// chunk 0): two and three chunks per row, a partial last tile, and two matrices in one launch (as gate and
// up).
TEST_CASE("cuda matvec: tensor-core launches of many tiles against the double reference") {
    if (!have_gpu()) return;
    std::mt19937 rng(29);
    for (const GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K}) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        // Q4_K: 32-row tiles, 282 of them (the last 8 rows past the end); Q6_K: 16-row tiles, 313.
        const int64_t cols = 2048, rows = type == GgmlType::Q4_K ? 9000 : 5000;
        check_random_product(t, rows, cols, {5, 16}, rng);
    }
    // Two Q4_K matrices in one launch (as gate and up): 282 32-row tiles each, three chunks per row.
    const TypeTraits& t = type_traits(GgmlType::Q4_K);
    const int64_t cols = 3072, rows = 9000;
    std::vector<std::vector<uint8_t>> gguf;
    std::vector<UploadedMatrix> m;
    for (int i = 0; i < 2; ++i) {
        gguf.push_back(cuda_test::random_rows(t, rows, cols, rng));
        m.push_back(upload(t, gguf.back(), rows, cols));
    }
    const int n_tok = 8;
    const std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
    const cuda::DeviceBuffer xp = prepared_activation(x, n_tok, cols);
    std::vector<cuda::DeviceBuffer> od;
    cuda::MatvecOut outs[2];
    for (int i = 0; i < 2; ++i) {
        od.push_back(poisoned(size_t(n_tok) * rows));
        outs[i] = {&m[size_t(i)].m, od.back().as<float>(), rows};
    }
    cuda::matvecs(outs, 2, xp.as<float>(), n_tok, nullptr);
    for (int i = 0; i < 2; ++i)
        check_product(t, gguf[size_t(i)], rows, cols, x, n_tok,
                      to_host<float>(od[size_t(i)], size_t(n_tok) * rows), rows, 1e-4);
}

// The decode rule of the foundation issue for the batches on the tensor cores (Q4_K's take the fp16 form):
// their error against the exact product at most half of what llama.cpp's batched decode leaves, whose
// activation is one int8 term per 32 values with an fp16 scale (q8_1), here simulated on the same rows and
// activations (with a few large values, as real activations have).
TEST_CASE("cuda matvec: the tensor-core batches' error is at most half of a single int8 term's (llama.cpp)") {
    if (!have_gpu()) return;
    std::mt19937 rng(23);
    for (const GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        const int64_t cols = 4096, rows = 96;
        const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
        UploadedMatrix w = upload(t, gguf, rows, cols);
        std::vector<float> wf(size_t(rows * cols));
        for (int64_t r = 0; r < rows; ++r)
            ref::dequantize_fn(t)(gguf.data() + r * row_bytes(t, cols), wf.data() + r * cols, cols);
        for (int n_tok : {8, 16}) {
            CAPTURE(n_tok);
            std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
            std::uniform_int_distribution<size_t> pick(0, x.size() - 1);
            for (int i = 0; i < 40; ++i) x[pick(rng)] *= 20.0f;
            // llama.cpp's activation: per 32 values q = round(x / d), d = max|x| / 127 kept as fp16.
            std::vector<float> x8(x.size());
            for (size_t g = 0; g < x.size(); g += 32) {
                float amax = 0;
                for (size_t i = g; i < g + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
                const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
                const float dh = fp16_to_fp32(fp32_to_fp16(d));
                for (size_t i = g; i < g + 32; ++i) x8[i] = std::round(x[i] * id) * dh;
            }
            const cuda::DeviceBuffer xp = prepared_activation(x, n_tok, cols);
            cuda::DeviceBuffer od = poisoned(size_t(n_tok) * rows);
            cuda::matvec(w.m, xp.as<float>(), n_tok, od.as<float>(), rows, nullptr);
            const std::vector<float> out = to_host<float>(od, size_t(n_tok) * rows);
            double ours = 0, theirs = 0;  // sums of squared errors
            for (int64_t r = 0; r < rows; ++r)
                for (int tok = 0; tok < n_tok; ++tok) {
                    double exact = 0, q8 = 0;
                    for (int64_t i = 0; i < cols; ++i) {
                        const double wi = wf[size_t(r * cols + i)];
                        exact += wi * x[size_t(tok * cols + i)];
                        q8 += wi * x8[size_t(tok * cols + i)];
                    }
                    ours += std::pow(out[size_t(tok * rows + r)] - exact, 2);
                    theirs += std::pow(q8 - exact, 2);
                }
            MESSAGE(t.name << " x" << n_tok << ": rms error " << std::sqrt(ours / double(rows * n_tok))
                           << ", a single int8 term's " << std::sqrt(theirs / double(rows * n_tok)));
            CHECK(ours <= 0.25 * theirs);  // squared: at most half
        }
    }
}

// Rows wider than one step of the block (2 x 64 groups): the loop over steps, a partial last step, and for
// KINFER_MATVEC_VARIANT 4/5 the pipelined hand-over from one row set to the next.
TEST_CASE("cuda matvec: one and two tokens, wide rows, against the double reference") {
    if (!have_gpu()) return;
    std::mt19937 rng(11);
    for (const GgmlType type : cuda_test::kDeviceTypes) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        const int64_t cols =
            t.block_elems == 256 ? 8448 : 8480;  // 264 / 265 groups: 3 steps, the last partial
        const int64_t rows = 45;
        const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
        UploadedMatrix w = upload(t, gguf, rows, cols);
        for (int n_tok : {1, 2}) {
            const std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
            cuda::DeviceBuffer xd = to_device(x);
            cuda::DeviceBuffer xp = poisoned(size_t(n_tok) * cuda::activation_floats(cols));
            cuda::prepare_activation(xd.as<float>(), n_tok, cols, xp.as<float>(), nullptr);
            cuda::DeviceBuffer od = poisoned(size_t(n_tok) * rows);
            cuda::matvec(w.m, xp.as<float>(), n_tok, od.as<float>(), rows, nullptr);
            const std::vector<float> out = to_host<float>(od, size_t(n_tok) * rows);
            check_product(t, gguf, rows, cols, x, n_tok, out, rows, 1e-4);
        }
    }
}

TEST_CASE("cuda matvec_add: the residual add in the epilogue equals product then add, bit for bit") {
    if (!have_gpu()) return;
    std::mt19937 rng(21);
    for (const GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::F16}) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        const int64_t cols = t.block_elems == 256 ? 1280 : 1312, rows = 37;
        const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
        UploadedMatrix w = upload(t, gguf, rows, cols);
        for (int n_tok : {1, 3, 16}) {
            CAPTURE(n_tok);
            const std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
            const std::vector<float> resid = random_floats(size_t(n_tok) * rows, rng, 4.0f);
            cuda::DeviceBuffer xd = to_device(x);
            cuda::DeviceBuffer xp = poisoned(size_t(n_tok) * cuda::activation_floats(cols));
            cuda::prepare_activation(xd.as<float>(), n_tok, cols, xp.as<float>(), nullptr);
            cuda::DeviceBuffer prod = poisoned(size_t(n_tok) * rows), acc = to_device(resid);
            cuda::matvec(w.m, xp.as<float>(), n_tok, prod.as<float>(), rows, nullptr);
            cuda::matvec_add(w.m, xp.as<float>(), n_tok, acc.as<float>(), rows, nullptr);
            const std::vector<float> p = to_host<float>(prod, resid.size()),
                                     got = to_host<float>(acc, resid.size());
            int differ = 0;
            for (size_t i = 0; i < got.size(); ++i)
                if (!(got[i] == resid[i] + p[i])) ++differ;
            CHECK(differ == 0);
        }
    }
}

TEST_CASE(
    "cuda matvec_add_norm: the residual add and the next norm's input in one launch, as add, norm, product") {
    if (!have_gpu()) return;
    std::mt19937 rng(23);
    const float eps = 1e-5f;
    for (const GgmlType type :
         {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q5_K, GgmlType::Q4_0}) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        // W: 160 rows = 5 blocks of 32 outputs; the product after the norm in Q8_0 (its K = 160 is not a
        // whole K-quant block). Products with roles read such inputs in the backend tests.
        const int64_t cols = t.block_elems == 256 ? 1280 : 1312, rows = 160;
        const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
        UploadedMatrix w = upload(t, gguf, rows, cols);
        REQUIRE(cuda::matvec_add_norm_supports(w.m));
        const TypeTraits& tc = type_traits(GgmlType::Q8_0);
        const int64_t c_rows = 37;
        const std::vector<uint8_t> c_gguf = cuda_test::random_rows(tc, c_rows, rows, rng);
        UploadedMatrix c = upload(tc, c_gguf, c_rows, rows);

        const std::vector<float> a = random_floats(size_t(cols), rng);
        const std::vector<float> resid = random_floats(size_t(rows), rng, 4.0f);
        std::vector<float> norm_w = random_floats(size_t(rows), rng);
        cuda::DeviceBuffer ad = to_device(a), nd = to_device(norm_w);
        cuda::DeviceBuffer ap = poisoned(size_t(cuda::activation_floats(cols)));
        cuda::prepare_activation(ad.as<float>(), 1, cols, ap.as<float>(), nullptr);

        // Separate: x += W a, then the norm (with its prepared rows), then C xn.
        cuda::DeviceBuffer x1 = to_device(resid), xn = poisoned(size_t(rows));
        cuda::DeviceBuffer p1 = poisoned(size_t(cuda::activation_floats(rows))),
                           y1 = poisoned(size_t(c_rows));
        cuda::matvec_add(w.m, ap.as<float>(), 1, x1.as<float>(), rows, nullptr);
        cuda::rmsnorm(x1.as<float>(), nullptr, nd.as<float>(), eps, 1, int(rows), xn.as<float>(),
                      p1.as<float>(), nullptr);
        cuda::matvec(c.m, p1.as<float>(), 1, y1.as<float>(), c_rows, nullptr);
        // Fused: one launch for the add and the norm's input, the scale in the consumer's epilogue.
        cuda::DeviceBuffer x2 = to_device(resid), ssq = poisoned(size_t(rows / 32));
        cuda::DeviceBuffer p2 = poisoned(size_t(cuda::activation_floats(rows))),
                           y2 = poisoned(size_t(c_rows));
        cuda::matvec_add_norm(w.m, ap.as<float>(), x2.as<float>(), nd.as<float>(), p2.as<float>(),
                              ssq.as<float>(), nullptr);
        const cuda::MatvecOut o{&c.m, y2.as<float>(), c_rows};
        cuda::matvecs(&o, 1, p2.as<float>(), 1, nullptr, cuda::RowNorm{ssq.as<float>(), eps, int(rows)});

        // The residual row: the same bits as matvec_add.
        CHECK(to_host<float>(x2, size_t(rows)) == to_host<float>(x1, size_t(rows)));
        // The products, fused and separate: against the double reference of C times the norm of the new x,
        // each within the bound of every matvec test (the two paths round the activation differently: they
        // differ by that much, not bit for bit).
        const std::vector<float> x = to_host<float>(x1, size_t(rows));
        double ss = 0;
        for (float v : x) ss += double(v) * v;
        const double scale = 1.0 / std::sqrt(ss / double(rows) + eps);
        std::vector<float> xnorm(x.size());
        for (size_t i = 0; i < xnorm.size(); ++i) xnorm[i] = float(double(x[i]) * scale * norm_w[i]);
        const std::vector<float> got = to_host<float>(y2, size_t(c_rows)),
                                 want = to_host<float>(y1, size_t(c_rows));
        const double fused = check_product(tc, c_gguf, c_rows, rows, xnorm, 1, got, c_rows, 1e-4);
        const double separate = check_product(tc, c_gguf, c_rows, rows, xnorm, 1, want, c_rows, 1e-4);
        MESSAGE(t.name << ": largest error / sum|w x| fused " << fused << ", separate " << separate);
    }
    // Shapes it does not take: rows not a multiple of 32, float weights.
    const TypeTraits& t = type_traits(GgmlType::Q4_K);
    UploadedMatrix a = upload(t, cuda_test::random_rows(t, 37, 256, rng), 37, 256);
    CHECK_FALSE(cuda::matvec_add_norm_supports(a.m));
    const TypeTraits& th = type_traits(GgmlType::F16);
    UploadedMatrix h = upload(th, cuda_test::random_rows(th, 64, 256, rng), 64, 256);
    CHECK_FALSE(cuda::matvec_add_norm_supports(h.m));
}

TEST_CASE("cuda matvec_swiglu: gate/up with SwiGLU and the prepared output, as the separate kernels") {
    if (!have_gpu()) return;
    std::mt19937 rng(11);
    for (const GgmlType type :
         {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q5_K, GgmlType::Q4_0}) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        const int64_t cols = t.block_elems == 256 ? 1280 : 1312, rows = 96;
        const std::vector<uint8_t> g_rows = cuda_test::random_rows(t, rows, cols, rng);
        const std::vector<uint8_t> u_rows = cuda_test::random_rows(t, rows, cols, rng);
        UploadedMatrix g = upload(t, g_rows, rows, cols), u = upload(t, u_rows, rows, cols);
        REQUIRE(cuda::matvec_swiglu_supports(g.m, u.m));
        cuda::DeviceBuffer counters(sizeof(int) * size_t(rows / 32), "counters");
        cuda::zero_device(counters.data(), counters.bytes());
        for (int n_tok : {1, 2, 3, 5, 16}) {
            CAPTURE(n_tok);
            const std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
            cuda::DeviceBuffer xd = to_device(x);
            cuda::DeviceBuffer xp = poisoned(size_t(n_tok) * cuda::activation_floats(cols));
            cuda::prepare_activation(xd.as<float>(), n_tok, cols, xp.as<float>(), nullptr);
            // Reference: the two products, then SwiGLU and the preparation as kernels of their own.
            cuda::DeviceBuffer gd = poisoned(size_t(n_tok) * rows), ud = poisoned(size_t(n_tok) * rows);
            const cuda::MatvecOut outs[2] = {{&g.m, gd.as<float>(), rows}, {&u.m, ud.as<float>(), rows}};
            cuda::matvecs(outs, 2, xp.as<float>(), n_tok, nullptr);
            cuda::swiglu(gd.as<float>(), ud.as<float>(), n_tok, rows, gd.as<float>(), nullptr, nullptr);
            const size_t pf = size_t(n_tok) * cuda::activation_floats(rows);
            cuda::DeviceBuffer pref = poisoned(pf), pd = poisoned(pf), od = poisoned(size_t(n_tok) * rows);
            cuda::prepare_activation(gd.as<float>(), n_tok, rows, pref.as<float>(), nullptr);
            for (int rep = 0; rep < 2; ++rep)  // the counters are left zero for the next call
                cuda::matvec_swiglu(g.m, u.m, xp.as<float>(), n_tok, od.as<float>(), rows, pd.as<float>(),
                                    counters.as<int>(), nullptr);
            const std::vector<float> want = to_host<float>(gd, size_t(n_tok) * rows),
                                     got = to_host<float>(od, size_t(n_tok) * rows);
            // Up to 2 tokens both run the same dp4a sums; from 3 the separate products may take the
            // tensor-core path (KINFER_MATVEC_MMA), whose sums differ by float rounding: there within 1e-3 of
            // the largest output.
            float largest = 0;
            for (float v : want) largest = std::max(largest, std::fabs(v));
            int bad = 0;
            for (size_t i = 0; i < want.size(); ++i) {
                const float tol = n_tok <= 2 ? 1e-6f * (1 + std::fabs(want[i])) : 1e-3f * largest;
                if (!(std::fabs(got[i] - want[i]) <= tol)) ++bad;
            }
            CHECK(bad == 0);
            // The prepared copy is what prepare_activation makes of the output (exactly, when equal).
            if (bad == 0 && got == want) {
                const std::vector<float> p1 = to_host<float>(pd, pf), p2 = to_host<float>(pref, pf);
                int differ = 0;
                for (size_t i = 0; i < p1.size(); ++i)
                    if (!(p1[i] == p2[i]) && !(std::isnan(p1[i]) && std::isnan(p2[i]))) ++differ;
                CHECK(differ == 0);
            }
            CHECK(to_host<int>(counters, size_t(rows / 32)) == std::vector<int>(size_t(rows / 32), 0));
        }
    }
    // Shapes it does not take: rows not a multiple of 32, mixed types.
    const TypeTraits& t = type_traits(GgmlType::Q4_K);
    std::mt19937 rng2(12);
    UploadedMatrix a = upload(t, cuda_test::random_rows(t, 37, 256, rng2), 37, 256);
    CHECK_FALSE(cuda::matvec_swiglu_supports(a.m, a.m));
    const TypeTraits& t6 = type_traits(GgmlType::Q6_K);
    UploadedMatrix b = upload(t, cuda_test::random_rows(t, 64, 256, rng2), 64, 256);
    UploadedMatrix c = upload(t6, cuda_test::random_rows(t6, 64, 256, rng2), 64, 256);
    CHECK_FALSE(cuda::matvec_swiglu_supports(b.m, c.m));
}

TEST_CASE(
    "cuda matvec_swiglu_pairs: batches' gate/up with SwiGLU, the fp16 part prepared as prepare_group does") {
    if (!have_gpu()) return;
    std::mt19937 rng(14);
    const TypeTraits& t = type_traits(GgmlType::Q4_K);
    const int64_t cols = 2048, rows = 224;  // 14 blocks of 16 outputs, 7 groups (prepare_activation: 32s)
    const std::vector<uint8_t> g_rows = cuda_test::random_rows(t, rows, cols, rng);
    const std::vector<uint8_t> u_rows = cuda_test::random_rows(t, rows, cols, rng);
    UploadedMatrix g = upload(t, g_rows, rows, cols), u = upload(t, u_rows, rows, cols);
    // The fp16 part of a token's prepared activation (activation_layout.cuh): values at byte 6.5 F, 64 per
    // group, then the two float sums per group at byte 8.5 F (F = cols rounded up to 1024).
    const int64_t padded = (rows + 1023) / 1024 * 1024, stride = cuda::activation_floats(rows);
    const int64_t value_float0 = 13 * padded / 8, sum_float0 = 17 * padded / 8, n_groups = rows / 32;
    const char* off = std::getenv("KINFER_SWIGLU_PAIRS");
    if (off && std::string(off) == "0") {
        CHECK_FALSE(cuda::matvec_swiglu_pairs_supports(g.m, u.m, 8));
        return;
    }
    for (int n_tok : {5, 8, 13, 16}) {
        CAPTURE(n_tok);
        REQUIRE(cuda::matvec_swiglu_pairs_supports(g.m, u.m, n_tok));
        const std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
        const cuda::DeviceBuffer xp = prepared_activation(x, n_tok, cols);
        // Reference: the two products, then the SwiGLU kernel.
        cuda::DeviceBuffer gd = poisoned(size_t(n_tok) * rows), ud = poisoned(size_t(n_tok) * rows);
        const cuda::MatvecOut outs[2] = {{&g.m, gd.as<float>(), rows}, {&u.m, ud.as<float>(), rows}};
        cuda::matvecs(outs, 2, xp.as<float>(), n_tok, nullptr);
        cuda::swiglu(gd.as<float>(), ud.as<float>(), n_tok, rows, gd.as<float>(), nullptr, nullptr);
        cuda::DeviceBuffer od = poisoned(size_t(n_tok) * rows), pd = poisoned(size_t(n_tok) * stride);
        cuda::matvec_swiglu_pairs(g.m, u.m, xp.as<float>(), n_tok, od.as<float>(), rows, pd.as<float>(),
                                  nullptr);
        const std::vector<float> want = to_host<float>(gd, size_t(n_tok) * rows),
                                 got = to_host<float>(od, size_t(n_tok) * rows);
        // The same products summed in another chunk order (a block's rotation follows its index).
        float largest = 0;
        for (float v : want) largest = std::max(largest, std::fabs(v));
        int bad = 0;
        for (size_t i = 0; i < want.size(); ++i)
            if (!(std::fabs(got[i] - want[i]) <= 1e-4f * largest) && ++bad <= 3)
                MESSAGE("output " << i << ": want " << want[i] << " got " << got[i]);
        CHECK(bad == 0);
        // The fp16 part is, bit for bit, what prepare_group makes of the pair's own outputs.
        cuda::DeviceBuffer od2 = to_device(got), pref = poisoned(size_t(n_tok) * stride);
        cuda::prepare_activation(od2.as<float>(), n_tok, rows, pref.as<float>(), nullptr);
        const std::vector<float> p1 = to_host<float>(pd, size_t(n_tok) * stride),
                                 p2 = to_host<float>(pref, size_t(n_tok) * stride);
        int differ = 0, checked = 0;
        for (int tok = 0; tok < n_tok; ++tok) {
            const float* a = p1.data() + tok * stride;
            const float* b = p2.data() + tok * stride;
            for (int64_t i = 0; i < n_groups * 16; ++i, ++checked)  // 32 fp16 values: 16 floats' bits
                if (std::memcmp(a + value_float0 + i, b + value_float0 + i, 4) != 0) ++differ;
            for (int64_t i = 0; i < n_groups * 2; ++i, ++checked)
                if (std::memcmp(a + sum_float0 + i, b + sum_float0 + i, 4) != 0) ++differ;
        }
        CHECK(checked > 0);
        CHECK(differ == 0);
    }
    // What it does not take: too few tokens, another type, rows not a multiple of 16, a width the chunks do
    // not divide.
    CHECK_FALSE(cuda::matvec_swiglu_pairs_supports(g.m, u.m, 4));
    CHECK_FALSE(cuda::matvec_swiglu_pairs_supports(g.m, u.m, 1));
    const TypeTraits& t6 = type_traits(GgmlType::Q6_K);
    UploadedMatrix a = upload(t6, cuda_test::random_rows(t6, 64, 1024, rng), 64, 1024);
    CHECK_FALSE(cuda::matvec_swiglu_pairs_supports(a.m, a.m, 8));
    UploadedMatrix b = upload(t, cuda_test::random_rows(t, 40, 1024, rng), 40, 1024);
    CHECK_FALSE(cuda::matvec_swiglu_pairs_supports(b.m, b.m, 8));
    UploadedMatrix c = upload(t, cuda_test::random_rows(t, 64, 1280, rng), 64, 1280);
    CHECK_FALSE(cuda::matvec_swiglu_pairs_supports(c.m, c.m, 8));
    // Which products read only that part: Q4_K and Q6_K batches of 5-16 tokens.
    CHECK(cuda::matvec_reads_half_form(g.m, 8));
    CHECK(cuda::matvec_reads_half_form(a.m, 16));
    CHECK_FALSE(cuda::matvec_reads_half_form(g.m, 4));
    CHECK_FALSE(cuda::matvec_reads_half_form(c.m, 8));
    const TypeTraits& t8 = type_traits(GgmlType::Q8_0);
    UploadedMatrix d = upload(t8, cuda_test::random_rows(t8, 64, 1024, rng), 64, 1024);
    CHECK_FALSE(cuda::matvec_reads_half_form(d.m, 8));
}

TEST_CASE(
    "cuda matvecs_rope_kv: wq/wk/wv with RoPE and the KV store in the epilogue, as the separate kernels") {
    if (!have_gpu()) return;
    std::mt19937 rng(13);
    const TypeTraits& t4 = type_traits(GgmlType::Q4_K);
    const TypeTraits& t6 = type_traits(GgmlType::Q6_K);
    const int64_t cols = 1280;
    for (const int n_rot : {64, 32}) {  // whole heads rotated, and only part of each
        CAPTURE(n_rot);
        const cuda::AttentionShape shape{6, 2, 64, n_rot};
        REQUIRE(cuda::matvecs_rope_kv_supports(shape));
        const int q_dim = shape.n_head * shape.head_dim, kv_dim = shape.n_head_kv * shape.head_dim;
        // wq, wk as Q4_K and wv as Q6_K: two launches, as in Q4_K_M files.
        UploadedMatrix wq = upload(t4, cuda_test::random_rows(t4, q_dim, cols, rng), q_dim, cols);
        UploadedMatrix wk = upload(t4, cuda_test::random_rows(t4, kv_dim, cols, rng), kv_dim, cols);
        UploadedMatrix wv = upload(t6, cuda_test::random_rows(t6, kv_dim, cols, rng), kv_dim, cols);
        std::vector<double> inv_freq(size_t(n_rot / 2));
        for (size_t i = 0; i < inv_freq.size(); ++i)
            inv_freq[i] = std::pow(10000.0, -2.0 * double(i) / n_rot);
        cuda::DeviceBuffer fd = to_device(inv_freq);
        const int n_layer = 2, n_ctx = 40, layer = 1;
        const size_t cache_elems = size_t(n_layer) * n_ctx * kv_dim;
        for (const int n_tok : {1, 3, 16}) {
            CAPTURE(n_tok);
            // Two caches per path (fused, reference), the tokens alternating between two sequences.
            std::vector<cuda::DeviceBuffer> caches;
            for (int i = 0; i < 8; ++i)
                caches.push_back(to_device(std::vector<uint16_t>(cache_elems, 0x7e00)));
            std::vector<cuda::KvRow> rows_f, rows_r;
            for (int t = 0; t < n_tok; ++t) {
                const int seq = t % 2;
                cuda::KvRow r;
                r.layer_elems = int64_t(n_ctx) * kv_dim;
                r.pos = 3 + 7 * seq + t;
                r.k = caches[size_t(2 * seq)].as<uint16_t>(),
                r.v = caches[size_t(2 * seq + 1)].as<uint16_t>();
                rows_f.push_back(r);
                r.k = caches[size_t(4 + 2 * seq)].as<uint16_t>(),
                r.v = caches[size_t(5 + 2 * seq)].as<uint16_t>();
                rows_r.push_back(r);
            }
            cuda::DeviceBuffer rf = to_device(rows_f), rr = to_device(rows_r);
            const std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
            cuda::DeviceBuffer xd = to_device(x);
            cuda::DeviceBuffer xp = poisoned(size_t(n_tok) * cuda::activation_floats(cols));
            cuda::prepare_activation(xd.as<float>(), n_tok, cols, xp.as<float>(), nullptr);
            // Reference: the products, then rope_kv_store.
            cuda::DeviceBuffer qr = poisoned(size_t(n_tok) * q_dim), kr = poisoned(size_t(n_tok) * kv_dim),
                               vr = poisoned(size_t(n_tok) * kv_dim);
            const cuda::MatvecOut ref[3] = {{&wq.m, qr.as<float>(), q_dim},
                                            {&wk.m, kr.as<float>(), kv_dim},
                                            {&wv.m, vr.as<float>(), kv_dim}};
            cuda::matvecs(ref, 3, xp.as<float>(), n_tok, nullptr);
            cuda::rope_kv_store(qr.as<float>(), kr.as<float>(), vr.as<float>(), rr.as<cuda::KvRow>(), n_tok,
                                layer, shape, fd.as<double>(), nullptr);
            cuda::DeviceBuffer qf = poisoned(size_t(n_tok) * q_dim), kf = poisoned(size_t(n_tok) * kv_dim),
                               vf = poisoned(size_t(n_tok) * kv_dim);
            const cuda::MatvecOut fused[3] = {{&wq.m, qf.as<float>(), q_dim},
                                              {&wk.m, kf.as<float>(), kv_dim},
                                              {&wv.m, vf.as<float>(), kv_dim}};
            cuda::matvecs_rope_kv(fused, xp.as<float>(), n_tok, rf.as<cuda::KvRow>(), layer, shape,
                                  fd.as<double>(), nullptr);
            const std::vector<float> q1 = to_host<float>(qf, size_t(n_tok) * q_dim),
                                     q2 = to_host<float>(qr, size_t(n_tok) * q_dim);
            int bad_q = 0;
            for (size_t i = 0; i < q1.size(); ++i)
                if (!(std::fabs(q1[i] - q2[i]) <= 1e-5f * (1 + std::fabs(q2[i])))) ++bad_q;
            CHECK(bad_q == 0);
            // The caches: every element equal (up to a rounding tie of the rotation for k), untouched rows
            // too.
            int bad_kv = 0;
            for (int i = 0; i < 4; ++i) {
                const std::vector<uint16_t> a = to_host<uint16_t>(caches[size_t(i)], cache_elems),
                                            b = to_host<uint16_t>(caches[size_t(4 + i)], cache_elems);
                for (size_t j = 0; j < a.size(); ++j)
                    if (a[j] != b[j] && !(i % 2 == 0 && std::fabs(fp16_to_fp32(a[j]) - fp16_to_fp32(b[j])) <=
                                                            1e-3f * (1 + std::fabs(fp16_to_fp32(b[j])))))
                        ++bad_kv;
            }
            CHECK(bad_kv == 0);
        }
    }
    CHECK_FALSE(cuda::matvecs_rope_kv_supports(cuda::AttentionShape{4, 2, 63, 62}));
}

TEST_CASE("cuda matmul: prefill through fp16 tiles and cuBLAS, against the double reference") {
    if (!have_gpu()) return;
    std::mt19937 rng(6);
    for (const GgmlType type :
         {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q5_0, GgmlType::F32}) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        const int64_t cols = 768, rows = 45;
        for (const int n_tok : {37, 3}) {  // the cuBLAS path, and matmul's own matvec path
            const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
            UploadedMatrix w = upload(t, gguf, rows, cols);
            const std::vector<float> x = random_floats(size_t(n_tok) * cols, rng);
            cuda::DeviceBuffer xd = to_device(x);
            cuda::DeviceBuffer od = poisoned(size_t(n_tok) * rows);
            cuda::DeviceBuffer scratch(cuda::matmul_scratch_bytes(cols, n_tok), "scratch");
            cuda::matmul(w.m, xd.as<float>(), n_tok, od.as<float>(), rows, {scratch.data(), scratch.bytes()},
                         nullptr);
            const std::vector<float> out = to_host<float>(od, size_t(n_tok) * rows);
            // fp16 weights and activations: 11 significant bits each.
            const double worst = check_product(t, gguf, rows, cols, x, n_tok, out, rows, 2e-3);
            MESSAGE(t.name << " " << n_tok << " tokens: largest error / sum|w x| = " << worst);
        }
    }
}

TEST_CASE("cuda embed: table rows of every type, as the reference dequantizes them") {
    if (!have_gpu()) return;
    std::mt19937 rng(7);
    for (const GgmlType type : cuda_test::kDeviceTypes) {
        const TypeTraits& t = type_traits(type);
        CAPTURE(t.name);
        const int64_t cols = t.block_elems == 256 ? 512 : 352, rows = 11;
        const std::vector<uint8_t> gguf = cuda_test::random_rows(t, rows, cols, rng);
        UploadedMatrix w = upload(t, gguf, rows, cols);
        const std::vector<int32_t> ids = {3, 0, 10, 3, 7};
        cuda::DeviceBuffer idd = to_device(ids);
        cuda::DeviceBuffer od = poisoned(ids.size() * cols);
        cuda::embed(w.m, idd.as<int32_t>(), int(ids.size()), od.as<float>(), nullptr);
        const std::vector<float> out = to_host<float>(od, ids.size() * cols);
        int bad = 0;
        std::vector<float> want(cols);
        for (size_t i = 0; i < ids.size(); ++i) {
            ref::dequantize_fn(t)(gguf.data() + ids[i] * row_bytes(t, cols), want.data(), cols);
            float max_abs = 0;
            for (float v : want) max_abs = std::max(max_abs, std::fabs(v));
            for (int64_t j = 0; j < cols; ++j)
                if (!(std::fabs(out[i * cols + j] - want[j]) <= 3e-5f * max_abs)) ++bad;
        }
        CHECK(bad == 0);
    }
}

TEST_CASE("cuda small ops: rmsnorm (with residual), swiglu, add against the CPU kernels") {
    if (!have_gpu()) return;
    std::mt19937 rng(8);
    const int n_rows = 5, n = 1312;  // a multiple of 32 (matvec's groups), not of 1024 (the layout's chunks)
    const std::vector<float> x = random_floats(size_t(n_rows) * n, rng, 3.0f);
    const std::vector<float> y = random_floats(size_t(n_rows) * n, rng);
    const std::vector<float> w = random_floats(n, rng);
    auto close = [](const std::vector<float>& a, const std::vector<float>& b, float tol) {
        int bad = 0;
        for (size_t i = 0; i < a.size(); ++i)
            if (!(std::fabs(a[i] - b[i]) <= tol * (1.0f + std::fabs(b[i])))) ++bad;
        return bad;
    };
    // rmsnorm with the residual fused: x <- x + y, out = norm(x)
    std::vector<float> xy(x.size());
    for (size_t i = 0; i < x.size(); ++i) xy[i] = x[i] + y[i];
    std::vector<float> want(x.size());
    cpu::rmsnorm(xy.data(), w.data(), 1e-5f, n_rows, n, want.data(), nullptr);
    cuda::DeviceBuffer xd = to_device(x), yd = to_device(y), wd = to_device(w);
    cuda::DeviceBuffer od = poisoned(x.size());
    const size_t prepared_floats = size_t(n_rows) * cuda::activation_floats(n);
    cuda::DeviceBuffer pd = poisoned(prepared_floats), pref = poisoned(prepared_floats);
    cuda::rmsnorm(xd.as<float>(), yd.as<float>(), wd.as<float>(), 1e-5f, n_rows, n, od.as<float>(),
                  pd.as<float>(), nullptr);
    CHECK(close(to_host<float>(od, x.size()), want, 1e-5f) == 0);
    // The prepared copy is what prepare_activation makes of the output (padding aside).
    cuda::prepare_activation(od.as<float>(), n_rows, n, pref.as<float>(), nullptr);
    const std::vector<float> p1 = to_host<float>(pd, prepared_floats),
                             p2 = to_host<float>(pref, prepared_floats);
    int differ = 0;
    for (size_t i = 0; i < p1.size(); ++i)
        if (!(p1[i] == p2[i]) && !(std::isnan(p1[i]) && std::isnan(p2[i]))) ++differ;
    CHECK(differ == 0);
    CHECK(close(to_host<float>(xd, x.size()), xy, 0.0f) == 0);
    // Without a residual (the decode step's many-block kernel, a partial last slice of 1312 = 5 x 256 + 32):
    // x untouched, out and its prepared copy as above.
    cpu::rmsnorm(x.data(), w.data(), 1e-5f, n_rows, n, want.data(), nullptr);
    cuda::DeviceBuffer xd2 = to_device(x), od2 = poisoned(x.size()), pd2 = poisoned(prepared_floats);
    cuda::rmsnorm(xd2.as<float>(), nullptr, wd.as<float>(), 1e-5f, n_rows, n, od2.as<float>(),
                  pd2.as<float>(), nullptr);
    CHECK(close(to_host<float>(od2, x.size()), want, 1e-5f) == 0);
    CHECK(close(to_host<float>(xd2, x.size()), x, 0.0f) == 0);
    cuda::prepare_activation(od2.as<float>(), n_rows, n, pref.as<float>(), nullptr);
    const std::vector<float> q1 = to_host<float>(pd2, prepared_floats),
                             q2 = to_host<float>(pref, prepared_floats);
    differ = 0;
    for (size_t i = 0; i < q1.size(); ++i)
        if (!(q1[i] == q2[i]) && !(std::isnan(q1[i]) && std::isnan(q2[i]))) ++differ;
    CHECK(differ == 0);
    // swiglu
    cpu::swiglu(x.data(), y.data(), int64_t(x.size()), want.data(), nullptr);
    cuda::DeviceBuffer gd = to_device(x);
    cuda::swiglu(gd.as<float>(), yd.as<float>(), n_rows, n, gd.as<float>(), nullptr, nullptr);
    CHECK(close(to_host<float>(gd, x.size()), want, 1e-5f) == 0);
    // add
    cuda::DeviceBuffer ad = to_device(x);
    cuda::add(ad.as<float>(), yd.as<float>(), int64_t(x.size()), nullptr);
    CHECK(close(to_host<float>(ad, x.size()), xy, 0.0f) == 0);
}

TEST_CASE("cuda rope + KV store and attention: several sequences, GQA, windows, against the CPU kernels") {
    if (!have_gpu()) return;
    std::mt19937 rng(9);
    // 4 query heads per KV head (the grouped kernel) and 2 (the per-head kernel).
    struct Case {
        int head_dim, n_head, n_head_kv;
    };
    for (const Case c : {Case{64, 8, 2}, Case{128, 8, 2}, Case{32, 8, 2}, Case{128, 6, 3}, Case{64, 6, 3}}) {
        const int head_dim = c.head_dim;
        CAPTURE(head_dim);
        CAPTURE(c.n_head_kv);
        cuda::AttentionShape shape{c.n_head, c.n_head_kv, head_dim, head_dim == 32 ? 16 : head_dim};
        const int n_layer = 2, n_ctx = 3600, kv_dim = shape.n_head_kv * head_dim,
                  q_dim = shape.n_head * head_dim;
        const int layer = 1;
        std::vector<double> inv_freq(shape.n_rot / 2);
        for (size_t i = 0; i < inv_freq.size(); ++i)
            inv_freq[i] = std::pow(10000.0, -2.0 * double(i) / shape.n_rot);
        // Three sequences with their own caches; their histories are random fp16 rows already in the cache.
        // The long one gives the grouped kernel's blocks ranges of several batches, the short one a block
        // with one partial batch.
        struct Seq {
            int n_past, window;
            std::vector<uint16_t> k, v;  // [n_layer][n_ctx][kv_dim]
        };
        std::vector<Seq> seqs = {{3500, 0, {}, {}}, {5, 0, {}, {}}, {300, 100, {}, {}}};
        for (Seq& s : seqs) {
            const std::vector<float> kf = random_floats(size_t(n_layer) * n_ctx * kv_dim, rng);
            const std::vector<float> vf = random_floats(size_t(n_layer) * n_ctx * kv_dim, rng);
            for (float f : kf) s.k.push_back(fp32_to_fp16(f));
            for (float f : vf) s.v.push_back(fp32_to_fp16(f));
        }
        std::vector<cuda::DeviceBuffer> kd, vd;
        for (Seq& s : seqs) kd.push_back(to_device(s.k)), vd.push_back(to_device(s.v));
        // The step: 2 tokens of seq 0, 1 of seq 1, 3 of seq 2 (a prefill chunk with a sliding window).
        const std::vector<int> tok_seq = {0, 0, 1, 2, 2, 2};
        const int n_tok = int(tok_seq.size());
        std::vector<cuda::KvRow> rows;
        std::vector<int> next(seqs.size());
        for (size_t i = 0; i < seqs.size(); ++i) next[i] = seqs[i].n_past;
        for (int s : tok_seq) {
            cuda::KvRow r;
            r.k = kd[s].as<uint16_t>();
            r.v = vd[s].as<uint16_t>();
            r.layer_elems = int64_t(n_ctx) * kv_dim;
            r.pos = next[s]++;
            r.first = seqs[s].window > 0 ? std::max(0, r.pos - seqs[s].window + 1) : 0;
            rows.push_back(r);
        }
        const std::vector<float> q = random_floats(size_t(n_tok) * q_dim, rng);
        const std::vector<float> k = random_floats(size_t(n_tok) * kv_dim, rng);
        const std::vector<float> v = random_floats(size_t(n_tok) * kv_dim, rng);
        cuda::DeviceBuffer qd = to_device(q), knew = to_device(k), vnew = to_device(v), rd = to_device(rows);
        cuda::DeviceBuffer fd = to_device(inv_freq);
        cuda::rope_kv_store(qd.as<float>(), knew.as<float>(), vnew.as<float>(), rd.as<cuda::KvRow>(), n_tok,
                            layer, shape, fd.as<double>(), nullptr);
        const int max_kv = n_ctx;
        cuda::DeviceBuffer scratch(
            sizeof(float) * std::max<size_t>(1, cuda::attention_scratch_floats(shape, n_tok, max_kv)),
            "scratch");
        cuda::DeviceBuffer counters(sizeof(int) * cuda::attention_counters(shape, n_tok), "counters");
        cuda::zero_device(counters.data(), counters.bytes());
        cuda::DeviceBuffer od = poisoned(size_t(n_tok) * q_dim);
        const size_t prepared_floats = size_t(n_tok) * cuda::activation_floats(q_dim);
        cuda::DeviceBuffer pd = poisoned(prepared_floats), pref = poisoned(prepared_floats);
        const float scale = 1.0f / std::sqrt(float(head_dim));
        // Twice on the same counters: the merge leaves them zero for the next call.
        for (int rep = 0; rep < 2; ++rep)
            cuda::attention(qd.as<float>(), rd.as<cuda::KvRow>(), n_tok, layer, shape, scale, max_kv,
                            od.as<float>(), pd.as<float>(), scratch.as<float>(), counters.as<int>(), nullptr);
        CHECK(cuda::attention_scratch_floats(shape, n_tok, max_kv) > 0);  // the merge path ran
        CHECK(to_host<int>(counters, cuda::attention_counters(shape, n_tok)) ==
              std::vector<int>(cuda::attention_counters(shape, n_tok), 0));
        const std::vector<float> q_rot = to_host<float>(qd, q.size());
        const std::vector<float> out = to_host<float>(od, q.size());
        // The prepared copy is what prepare_activation makes of the output.
        cuda::prepare_activation(od.as<float>(), n_tok, q_dim, pref.as<float>(), nullptr);
        {
            const std::vector<float> p1 = to_host<float>(pd, prepared_floats),
                                     p2 = to_host<float>(pref, prepared_floats);
            int differ = 0;
            for (size_t i = 0; i < p1.size(); ++i)
                if (!(p1[i] == p2[i]) && !(std::isnan(p1[i]) && std::isnan(p2[i]))) ++differ;
            CHECK(differ == 0);
        }
        // One split (a short context): token 2 (sequence 1, 6 positions) alone.
        cuda::DeviceBuffer od1 = poisoned(size_t(q_dim));
        cuda::attention(qd.as<float>() + 2 * q_dim, rd.as<cuda::KvRow>() + 2, 1, layer, shape, scale,
                        rows[2].pos + 1, od1.as<float>(), nullptr, scratch.as<float>(), counters.as<int>(),
                        nullptr);
        const std::vector<float> out1 = to_host<float>(od1, size_t(q_dim));
        int differ1 = 0;
        for (int i = 0; i < q_dim; ++i)
            if (!(std::fabs(out1[i] - out[2 * q_dim + i]) <= 1e-5f * (1 + std::fabs(out[2 * q_dim + i]))))
                ++differ1;
        CHECK(differ1 == 0);
        // The same step launched for a 4096-position context (as a decode graph is, for every depth): each
        // row's splits follow its own length, the launch's extra splits do nothing, the counters end at zero.
        {
            const int big_kv = 4096;
            cuda::DeviceBuffer scratch_big(
                sizeof(float) * std::max<size_t>(1, cuda::attention_scratch_floats(shape, n_tok, big_kv)),
                "scratch");
            cuda::DeviceBuffer odb = poisoned(size_t(n_tok) * q_dim);
            for (int rep = 0; rep < 2; ++rep)
                cuda::attention(qd.as<float>(), rd.as<cuda::KvRow>(), n_tok, layer, shape, scale, big_kv,
                                odb.as<float>(), nullptr, scratch_big.as<float>(), counters.as<int>(),
                                nullptr);
            CHECK(to_host<int>(counters, cuda::attention_counters(shape, n_tok)) ==
                  std::vector<int>(cuda::attention_counters(shape, n_tok), 0));
            const std::vector<float> outb = to_host<float>(odb, q.size());
            int differ_big = 0;
            for (size_t i = 0; i < outb.size(); ++i)
                if (!(std::fabs(outb[i] - out[i]) <= 1e-5f * (1 + std::fabs(out[i])))) ++differ_big;
            CHECK(differ_big == 0);
        }

        // CPU: rotate, store into host copies of the caches, attend row by row.
        int bad_q = 0, bad_kv = 0, bad_out = 0;
        for (int t = 0; t < n_tok; ++t) {
            Seq& s = seqs[tok_seq[t]];
            std::vector<float> qt(q.begin() + t * q_dim, q.begin() + (t + 1) * q_dim);
            std::vector<float> kt(k.begin() + t * kv_dim, k.begin() + (t + 1) * kv_dim);
            const int64_t pos = rows[t].pos;
            cpu::rope(qt.data(), 1, q_dim, shape.n_head, head_dim, shape.n_rot, inv_freq.data(), &pos,
                      nullptr);
            cpu::rope(kt.data(), 1, kv_dim, shape.n_head_kv, head_dim, shape.n_rot, inv_freq.data(), &pos,
                      nullptr);
            for (int i = 0; i < q_dim; ++i)
                if (!(std::fabs(q_rot[t * q_dim + i] - qt[i]) <= 1e-5f * (1 + std::fabs(qt[i])))) ++bad_q;
            const size_t off = (size_t(layer) * n_ctx + rows[t].pos) * kv_dim;
            for (int i = 0; i < kv_dim; ++i) {
                s.k[off + i] = fp32_to_fp16(kt[i]);
                s.v[off + i] = fp32_to_fp16(v[t * kv_dim + i]);
            }
        }
        // The device caches now hold what the CPU stored (bit for bit, up to a rounding tie of the rotation).
        for (size_t i = 0; i < seqs.size(); ++i) {
            const std::vector<uint16_t> kdev = to_host<uint16_t>(kd[i], seqs[i].k.size());
            const std::vector<uint16_t> vdev = to_host<uint16_t>(vd[i], seqs[i].v.size());
            for (size_t j = 0; j < kdev.size(); ++j) {
                if (std::fabs(fp16_to_fp32(kdev[j]) - fp16_to_fp32(seqs[i].k[j])) >
                    1e-3f * (1 + std::fabs(fp16_to_fp32(seqs[i].k[j]))))
                    ++bad_kv;
                if (vdev[j] != seqs[i].v[j]) ++bad_kv;
            }
        }
        std::vector<float> want(q_dim), scores(n_ctx);
        for (int t = 0; t < n_tok; ++t) {
            const Seq& s = seqs[tok_seq[t]];
            const int64_t window = s.window;
            // cpu::attention attends positions up to pos0 + t for query t: one query at pos0 = pos.
            cpu::attention_reference(q_rot.data() + t * q_dim, 1, rows[t].pos,
                                     s.k.data() + size_t(layer) * n_ctx * kv_dim,
                                     s.v.data() + size_t(layer) * n_ctx * kv_dim, true, shape.n_head,
                                     shape.n_head_kv, head_dim, scale, window, want.data(), scores.data());
            for (int i = 0; i < q_dim; ++i)
                if (!(std::fabs(out[t * q_dim + i] - want[i]) <= 2e-4f * (1 + std::fabs(want[i])))) {
                    if (++bad_out <= 3)
                        MESSAGE("token " << t << " dim " << i << ": want " << want[i] << " got "
                                         << out[t * q_dim + i]);
                }
        }
        CHECK(bad_q == 0);
        CHECK(bad_kv == 0);
        CHECK(bad_out == 0);
    }
}

TEST_CASE("cuda memory: a model that does not fit is refused with the sizes") {
    if (!have_gpu()) return;
    CHECK_THROWS_WITH_AS(cuda::ensure_fits(uint64_t(1) << 50, "model test.gguf"),
                         doctest::Contains("model test.gguf needs 1048576.00 GiB"), Error);
    CHECK_NOTHROW(cuda::ensure_fits(uint64_t(1) << 20, "a little"));
}

TEST_CASE("cuda top_k_select: the host select's candidates, ties to the lower id, NaN last") {
    if (!have_gpu()) return;
    std::mt19937 rng(17);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const int64_t n_vocab : {int64_t(300), int64_t(32768), int64_t(5003)})
        for (const int levels : {0, 5, 300})  // continuous, few values (huge ties), many ties
            for (const int k : {1, 7, 40, 256}) {
                CAPTURE(n_vocab);
                CAPTURE(levels);
                CAPTURE(k);
                const int rows = 3;
                std::vector<float> logits(size_t(rows * n_vocab));
                std::normal_distribution<float> normal(0.0f, 4.0f);
                std::uniform_int_distribution<int> level(0, std::max(levels, 1) - 1);
                for (float& x : logits) x = levels > 0 ? float(level(rng)) * 0.25f - 8.0f : normal(rng);
                // specials in every row: NaN of both signs, infinities, signed zeros
                std::uniform_int_distribution<int64_t> at(0, n_vocab - 1);
                const float specials[] = {nan, -nan, INFINITY, -INFINITY, 0.0f, -0.0f};
                for (int r = 0; r < rows; ++r)
                    for (int i = 0; i < 12; ++i)
                        logits[size_t(r * n_vocab + at(rng))] = specials[size_t(i) % std::size(specials)];
                if (k == 1) logits[size_t(n_vocab)] = nan;  // row 1 starts with NaN
                cuda::DeviceBuffer dev(sizeof(float) * logits.size(), "test logits");
                cuda::DeviceBuffer out(sizeof(engine::TopCandidate) * size_t(rows * k), "test candidates");
                cuda::copy_to_device(dev.data(), logits.data(), sizeof(float) * logits.size());
                cuda::top_k_select(dev.as<float>(), rows, n_vocab, k, out.data(), nullptr);
                std::vector<engine::TopCandidate> got(size_t(rows * k)), want(static_cast<size_t>(k));
                cuda::copy_to_host(got.data(), out.data(), sizeof(engine::TopCandidate) * got.size());
                for (int r = 0; r < rows; ++r) {
                    CAPTURE(r);
                    const std::span<engine::TopCandidate> g(got.data() + r * k, size_t(k));
                    engine::sort_candidates(g);
                    engine::select_top({logits.data() + r * n_vocab, size_t(n_vocab)}, k, want);
                    for (int i = 0; i < k; ++i) {
                        REQUIRE(g[size_t(i)].id == want[size_t(i)].id);
                        REQUIRE(std::memcmp(&g[size_t(i)].logit, &want[size_t(i)].logit, 4) == 0);
                    }
                }
            }
}

#endif  // KINFER_WITH_CUDA
