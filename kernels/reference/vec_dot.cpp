#include "kernels/reference/vec_dot.hpp"

#include <string>

#include "kinfer/error.hpp"
#include "kernels/reference/type_kernels.hpp"

namespace kinfer::ref {

float vec_dot(const TypeTraits& type, const void* row, const float* x, int64_t n) {
    if (ref::dequantize_fn(type) == nullptr)
        throw UsageError(std::string("vec_dot: cannot read tensor type ") + type.name);
    if (n < 0 || n % type.block_elems != 0)
        throw UsageError("vec_dot: " + std::to_string(n) + " elements is not a whole number of " + type.name +
                         " blocks (" + std::to_string(type.block_elems) + " each)");
    // Dequantize a chunk at a time into a stack buffer: 256 is a multiple of every block size.
    constexpr int64_t kChunk = 256;
    float buf[kChunk];
    const auto* bytes = static_cast<const uint8_t*>(row);
    double sum = 0;
    for (int64_t start = 0; start < n; start += kChunk) {
        const int64_t len = n - start < kChunk ? n - start : kChunk;
        ref::dequantize_fn(type)(bytes + row_bytes(type, static_cast<uint64_t>(start)), buf, len);
        for (int64_t i = 0; i < len; ++i)
            sum += static_cast<double>(buf[i]) * static_cast<double>(x[start + i]);
    }
    return static_cast<float>(sum);
}

}  // namespace kinfer::ref
