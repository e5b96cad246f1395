#include "filetools/row_stream.hpp"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <future>
#include <memory>
#include <vector>

#include "kernels/reference/type_kernels.hpp"
#include "kinfer/error.hpp"

namespace kinfer {
void stream_tensor_rows(gguf::GgufWriter& writer, const TypeTraits& dst, uint64_t row_len, uint64_t n_rows,
                        const RowFill& fill, const RowsDone& rows_done, uint64_t chunk_bytes) {
    convert_rows(
        dst, row_len, n_rows, fill,
        [&writer](uint64_t, std::span<const uint8_t> bytes) { writer.write_tensor_chunk(bytes); }, rows_done,
        chunk_bytes);
}

void convert_rows(const TypeTraits& dst, uint64_t row_len, uint64_t n_rows, const RowFill& fill,
                  const ChunkSink& sink, const RowsDone& rows_done, uint64_t chunk_bytes) {
    if (!ref::quantize_fn(dst))
        throw Error(std::string("kinfer cannot write tensors of type ") + dst.name + " yet");
    if (row_len == 0 || row_len % dst.block_elems != 0)
        throw Error("row length " + std::to_string(row_len) + " does not split into " + dst.name +
                    " blocks of " + std::to_string(dst.block_elems));
    const uint64_t out_row = row_bytes(dst, row_len);
    const uint64_t rows_per_chunk = std::max<uint64_t>(1, std::min<uint64_t>(n_rows, chunk_bytes / out_row));

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
                    ref::quantize_fn(dst)(row.get(), buf.data() + static_cast<uint64_t>(r) * out_row,
                                          static_cast<int64_t>(row_len));
                } catch (...) {
#pragma omp critical(kinfer_row_stream_error)
                    if (!error) error = std::current_exception();
                }
            }
        }
        if (pending.valid()) pending.get();
        if (error) std::rethrow_exception(error);
        pending = std::async(std::launch::async, [&sink, &buf, first] { sink(first, buf); });
        cur ^= 1;
        if (rows_done) {
            // report once the chunk is on its way; the count is what has been computed
            rows_done(first + count);
        }
    }
    if (pending.valid()) pending.get();
}

void stream_tensor_rows_reporting(gguf::GgufWriter& writer, const TypeTraits& dst, uint64_t row_len,
                                  uint64_t n_rows, const RowFill& fill, TensorProgress& ev,
                                  const ProgressFn& progress) {
    const uint64_t before = ev.out_bytes_done;
    const auto on_rows = [&](uint64_t rows) {
        if (!progress || rows == n_rows) return;  // the last chunk is reported as the finished tensor
        ev.fraction_done = double(rows) / double(n_rows);
        ev.out_bytes_done = before + uint64_t(ev.fraction_done * double(ev.out_bytes));
        progress(ev);
    };
    stream_tensor_rows(writer, dst, row_len, n_rows, fill, on_rows);
    ev.out_bytes_done = before;
    report_tensor_written(ev, progress);
}

void report_tensor_written(TensorProgress& ev, const ProgressFn& progress) {
    ev.out_bytes_done += ev.out_bytes;
    ev.fraction_done = 1;
    ev.finished = true;
    if (progress) progress(ev);
}

uint64_t write_model_file(gguf::GgufWriter& writer, const std::string& path,
                          const std::function<void(gguf::GgufWriter&)>& write_tensors) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw UsageError(path + " is a directory");
    const std::string part = path + ".part";
    try {
        writer.open(part);
        write_tensors(writer);
        writer.finish();
        std::filesystem::rename(part, path);
    } catch (...) {
        std::filesystem::remove(part, ec);
        throw;
    }
    return std::filesystem::file_size(path);
}

}  // namespace kinfer
