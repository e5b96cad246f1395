#pragma once
// Converts a GGUF model with float weights (F32, F16, BF16) to another file type ("Q4_K_M", "F16", ...):
// copies every metadata key, sets general.file_type and general.quantization_version, and writes each tensor
// with the type the recipe (filetools/quant_recipe.hpp) gives it. Streams tensor by tensor from the mapped
// input, so memory use does not grow with the model.
#include <string>
#include <vector>

#include "filetools/quant_recipe.hpp"
#include "filetools/row_stream.hpp"

namespace kinfer::gguf {
class GgufFile;
}

namespace kinfer {

struct QuantizeSummary {
    size_t n_tensors = 0;
    size_t n_fallback = 0;  // tensors whose recipe type did not fit their rows
    uint64_t n_elements = 0;
    uint64_t in_tensor_bytes = 0;
    uint64_t out_tensor_bytes = 0;
    uint64_t out_file_bytes = 0;
};

// The recipe's types for the tensors of `in` (in file order). Throws FormatError if a tensor is not F32, F16
// or BF16 (requantizing is not supported) or the metadata lacks a hyperparameter the recipe needs.
std::vector<TensorTypeChoice> plan_quantize(const gguf::GgufFile& in, FileType ftype);

// Writes `out_path` (via `out_path.part`, renamed at the end). Refuses to overwrite the input.
QuantizeSummary quantize_gguf(const gguf::GgufFile& in, const std::string& out_path, FileType ftype,
                              const ProgressFn& progress = {});

}  // namespace kinfer
