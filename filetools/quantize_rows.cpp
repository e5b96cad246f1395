#include "filetools/quantize_rows.hpp"

#include <algorithm>
#include <string>

#include "filetools/row_stream.hpp"
#include "kernels/reference/type_kernels.hpp"
#include "kinfer/error.hpp"

namespace kinfer {
namespace {

void check_shape(const TypeTraits& type, const char* what, int64_t n_rows, int64_t row_len) {
    if (n_rows < 0 || row_len < 0 || row_len % type.block_elems != 0)
        throw UsageError(std::string(what) + ": rows of " + std::to_string(row_len) + " elements (" +
                         std::to_string(n_rows) + " rows) do not split into " + type.name + " blocks of " +
                         std::to_string(type.block_elems));
}

// Blocks never straddle rows, so the tensor is one long run of blocks and can be cut anywhere between them:
// that keeps all cores busy even for a single huge row. Chunks of about 16K elements amortise the scheduling.
constexpr int64_t kChunkElems = 16384;

template <typename Fn>
void for_each_chunk(const TypeTraits& type, int64_t n_elems, Fn&& fn) {
    const int64_t chunk = kChunkElems / type.block_elems > 0
                              ? kChunkElems / type.block_elems * type.block_elems
                              : type.block_elems;
    const int64_t n_chunks = (n_elems + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1) if (n_chunks > 1)
    for (int64_t c = 0; c < n_chunks; ++c) {
        const int64_t start = c * chunk;
        const int64_t len = n_elems - start < chunk ? n_elems - start : chunk;
        fn(start, len);
    }
}

}  // namespace

void quantize_rows(const TypeTraits& type, const float* in, void* out, int64_t n_rows, int64_t row_len) {
    if (ref::quantize_fn(type) == nullptr)
        throw UsageError(std::string("cannot quantize to tensor type ") + type.name);
    check_shape(type, "quantize_rows", n_rows, row_len);
    if (n_rows == 0 || row_len == 0) return;
    // The same driver that writes model files, with memory for source and sink.
    auto* bytes = static_cast<uint8_t*>(out);
    const uint64_t out_row = row_bytes(type, uint64_t(row_len));
    convert_rows(
        type, uint64_t(row_len), uint64_t(n_rows),
        [&](uint64_t r, float* row) { std::copy_n(in + r * uint64_t(row_len), row_len, row); },
        [&](uint64_t first, std::span<const uint8_t> chunk) {
            std::copy(chunk.begin(), chunk.end(), bytes + first * out_row);
        },
        {}, std::max<uint64_t>(out_row, 1u << 20));
}

void dequantize_rows(const TypeTraits& type, const void* in, float* out, int64_t n_rows, int64_t row_len) {
    if (ref::dequantize_fn(type) == nullptr)
        throw UsageError(std::string("cannot read tensor type ") + type.name);
    check_shape(type, "dequantize_rows", n_rows, row_len);
    const auto* bytes = static_cast<const uint8_t*>(in);
    for_each_chunk(type, n_rows * row_len, [&](int64_t start, int64_t len) {
        ref::dequantize_fn(type)(bytes + row_bytes(type, static_cast<uint64_t>(start)), out + start, len);
    });
}

}  // namespace kinfer
