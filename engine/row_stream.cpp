#include "engine/row_stream.hpp"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <future>
#include <memory>
#include <vector>

#include "kinfer/error.hpp"

namespace kinfer {
namespace {

// Output bytes per chunk: big enough that a chunk keeps every thread busy, small enough to stay cheap.
constexpr uint64_t kChunkBytes = 32ull << 20;

}  // namespace

void stream_tensor_rows(gguf::GgufWriter& writer, const TypeTraits& dst, uint64_t row_len, uint64_t n_rows,
                        const RowFill& fill, const RowsDone& rows_done) {
    if (!dst.quantize_row)
        throw Error(std::string("kinfer cannot write tensors of type ") + dst.name + " yet");
    if (row_len == 0 || row_len % dst.block_elems != 0)
        throw Error("row length " + std::to_string(row_len) + " does not split into " + dst.name +
                    " blocks of " + std::to_string(dst.block_elems));
    const uint64_t out_row = row_bytes(dst, row_len);
    const uint64_t rows_per_chunk = std::max<uint64_t>(1, std::min<uint64_t>(n_rows, kChunkBytes / out_row));

    std::vector<uint8_t> buffers[2];
    std::future<void> pending;  // the write of the previous chunk
    int cur = 0;
    for (uint64_t first = 0; first < n_rows; first += rows_per_chunk) {
        const uint64_t count = std::min(rows_per_chunk, n_rows - first);
        std::vector<uint8_t>& buf = buffers[cur];
        buf.resize(count * out_row);

        std::exception_ptr error;
#pragma omp parallel
        {
            std::unique_ptr<float[]> row(new float[row_len]);
#pragma omp for schedule(dynamic, 4)
            for (int64_t r = 0; r < static_cast<int64_t>(count); ++r) {
                try {
                    fill(first + static_cast<uint64_t>(r), row.get());
                    dst.quantize_row(row.get(), buf.data() + static_cast<uint64_t>(r) * out_row,
                                     static_cast<int64_t>(row_len));
                } catch (...) {
#pragma omp critical(kinfer_row_stream_error)
                    if (!error) error = std::current_exception();
                }
            }
        }
        if (pending.valid()) pending.get();
        if (error) std::rethrow_exception(error);
        pending = std::async(std::launch::async, [&writer, &buf] { writer.write_tensor_chunk(buf); });
        cur ^= 1;
        if (rows_done) {
            // report once the chunk is on its way; the count is what has been computed
            rows_done(first + count);
        }
    }
    if (pending.valid()) pending.get();
}

}  // namespace kinfer
