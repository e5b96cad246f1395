#pragma once
// Streams one tensor into a GgufWriter row by row: a callback produces each row as floats (converting it from
// the input file, or drawing it at random), the row is converted to the destination type with the type
// table's quantize_row, and finished chunks are written while the next chunk is being computed. Rows are
// processed in parallel (OpenMP); the callback must be safe to call from several threads for different rows.
// Memory stays bounded by two output chunks plus one float row per thread, whatever the tensor's size.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "gguf/ggml_type.hpp"
#include "gguf/gguf_writer.hpp"

namespace kinfer {

// Fills `out` with the `row_len` floats of row `row`.
using RowFill = std::function<void(uint64_t row, float* out)>;
// Called after each written chunk with the number of rows of this tensor written so far.
using RowsDone = std::function<void(uint64_t rows_done)>;

// Output bytes per chunk: enough rows to keep every thread busy, little enough memory to not matter.
constexpr uint64_t kDefaultChunkBytes = 32ull << 20;

// Writes n_rows rows of row_len elements as `dst` to the writer's current tensor, in chunks of about
// `chunk_bytes` of output (at least one row). Throws Error if kinfer has no quantizer for `dst` or the row
// length does not split into whole blocks; an exception from `fill` is rethrown here.
void stream_tensor_rows(gguf::GgufWriter& writer, const TypeTraits& dst, uint64_t row_len, uint64_t n_rows,
                        const RowFill& fill, const RowsDone& rows_done = {},
                        uint64_t chunk_bytes = kDefaultChunkBytes);

// Receives each finished chunk of output rows, in order, on a thread of its own (the next chunk is computed
// meanwhile); `first_row` is the chunk's first row.
using ChunkSink = std::function<void(uint64_t first_row, std::span<const uint8_t> bytes)>;

// The one quantizing driver behind stream_tensor_rows and quantize_rows: rows from `fill`, converted to
// `dst` on all cores, handed to `sink` chunk by chunk.
void convert_rows(const TypeTraits& dst, uint64_t row_len, uint64_t n_rows, const RowFill& fill,
                  const ChunkSink& sink, const RowsDone& rows_done = {},
                  uint64_t chunk_bytes = kDefaultChunkBytes);

// What a model-writing tool reports, once per tensor and (for big tensors) as chunks finish.
struct TensorProgress {
    size_t index = 0;  // 0-based
    size_t count = 0;
    std::string_view name;
    std::array<uint64_t, 4> ne{1, 1, 1, 1};
    uint32_t n_dims = 0;
    GgmlType from = GgmlType::F32;  // the input's type (synth: F32, as drawn)
    GgmlType to = GgmlType::F32;
    std::optional<GgmlType> wanted;  // the recipe's choice when `to` is a fallback
    uint64_t in_bytes = 0;
    uint64_t out_bytes = 0;
    double fraction_done = 0;      // of this tensor
    bool finished = false;         // false: a partial update within the tensor
    uint64_t out_bytes_done = 0;   // of the whole file, tensors finished so far included
    uint64_t out_bytes_total = 0;  // of the whole file
};
using ProgressFn = std::function<void(const TensorProgress&)>;

// stream_tensor_rows for the tensor `ev` describes, reporting through `progress` (may be empty) as chunks are
// written and once more when the tensor is done. On entry ev.out_bytes_done counts the tensors before this
// one; on return it includes this one.
void stream_tensor_rows_reporting(gguf::GgufWriter& writer, const TypeTraits& dst, uint64_t row_len,
                                  uint64_t n_rows, const RowFill& fill, TensorProgress& ev,
                                  const ProgressFn& progress);
// The final report of a tensor written by other means (bytes copied as they are): adds ev.out_bytes to
// ev.out_bytes_done and reports the tensor finished.
void report_tensor_written(TensorProgress& ev, const ProgressFn& progress);

// Writes a model file: opens `writer` (metadata and tensors declared) on `path`.part, runs
// `write_tensors(writer)`, finishes, and renames the result to `path`; on any exception the partial file is
// removed, so a failed run leaves no half-written model behind. A directory at `path` is refused before any
// work is done. Returns the size of the file written.
uint64_t write_model_file(gguf::GgufWriter& writer, const std::string& path,
                          const std::function<void(gguf::GgufWriter&)>& write_tensors);

}  // namespace kinfer
