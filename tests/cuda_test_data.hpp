#pragma once
// Random weights for the CUDA tests: quantized types get random bytes (every code, every scale nibble) with
// their fp16 scale fields replaced by finite random values; float types get random values.
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gguf/ggml_type.hpp"
#include "kernels/fp16.hpp"
#include "kernels/reference/type_kernels.hpp"

namespace kinfer::cuda_test {

inline constexpr GgmlType kDeviceTypes[] = {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0,
                                            GgmlType::Q5_K, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_1,
                                            GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::F16,  GgmlType::BF16,
                                            GgmlType::F32};

// Byte offsets of a block's fp16 scale fields.
inline std::vector<int> half_fields(GgmlType type) {
    switch (type) {
        case GgmlType::Q4_0:
        case GgmlType::Q5_0:
        case GgmlType::Q8_0:
            return {0};
        case GgmlType::Q4_1:
        case GgmlType::Q5_1:
        case GgmlType::Q4_K:
        case GgmlType::Q5_K:
            return {0, 2};
        case GgmlType::Q2_K:
            return {80, 82};
        case GgmlType::Q3_K:
            return {108};
        case GgmlType::Q6_K:
            return {208};
        default:
            return {};
    }
}

inline std::vector<uint8_t> random_rows(const TypeTraits& t, int64_t rows, int64_t cols, std::mt19937& rng) {
    std::vector<uint8_t> out(row_bytes(t, static_cast<uint64_t>(cols)) * static_cast<uint64_t>(rows));
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    if (t.block_elems == 1) {
        std::vector<float> x(static_cast<size_t>(rows * cols));
        for (float& v : x) v = uni(rng);
        ref::quantize_fn(t)(x.data(), out.data(), rows * cols);
        return out;
    }
    std::uniform_int_distribution<int> byte(0, 255);
    for (uint8_t& b : out) b = static_cast<uint8_t>(byte(rng));
    const std::vector<int> fields = half_fields(t.type);
    for (size_t blk = 0; blk < out.size() / t.block_bytes; ++blk)
        for (int off : fields) {
            const uint16_t h = fp32_to_fp16(uni(rng) * 0.05f);
            std::memcpy(out.data() + blk * t.block_bytes + off, &h, 2);
        }
    return out;
}

}  // namespace kinfer::cuda_test
