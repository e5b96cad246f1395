// The CUDA kernels against the scalar references, on random data with odd sizes, every type the GPU reads.
// The repacking (host code) is checked on every build with CUDA; the kernels run where a GPU is present and
// skip with a message elsewhere (CI has nvcc but no GPU).
#include <doctest/doctest.h>

#if KINFER_WITH_CUDA

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gguf/ggml_type.hpp"
#include "kernels/cuda/repack.hpp"
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

TEST_CASE("cuda repack: unsupported types and shapes are refused with the tensor's name") {
    CHECK_THROWS_WITH_AS(cuda::repacked_row_bytes(type_traits(GgmlType::IQ2_XS), 256, "blk.0.attn_q.weight"),
                         doctest::Contains("blk.0.attn_q.weight"), UsageError);
    CHECK_THROWS_WITH_AS(cuda::repacked_row_bytes(type_traits(GgmlType::F16), 100, "output.weight"),
                         doctest::Contains("multiple of 32"), UsageError);
}

#endif  // KINFER_WITH_CUDA
