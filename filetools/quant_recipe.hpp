#pragma once
// Which ggml type each tensor of a model gets for a given file type ("Q4_K_M", ...). The decisions follow
// llama.cpp's quantizer (src/llama-quant.cpp) for the llama architecture, so that a file we write has the
// same tensor types as theirs, tensor for tensor: 1-D tensors and norms keep their type, the output matrix
// gets more bits, and the _S/_M/_L mixes give attn_v / ffn_down / attn_output more bits on some layers. Rows
// whose length does not fit the chosen type's block fall back to a wider type as llama.cpp does.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/ggml_type.hpp"

namespace kinfer::gguf {
class GgufFile;
}

namespace kinfer {

// llama.cpp's llama_ftype ids, as written to general.file_type. Only the ones kinfer can produce.
enum class FileType : uint32_t {
    ALL_F32 = 0,
    MOSTLY_F16 = 1,
    MOSTLY_Q4_0 = 2,
    MOSTLY_Q4_1 = 3,
    MOSTLY_Q8_0 = 7,
    MOSTLY_Q5_0 = 8,
    MOSTLY_Q5_1 = 9,
    MOSTLY_Q2_K = 10,
    MOSTLY_Q3_K_S = 11,
    MOSTLY_Q3_K_M = 12,
    MOSTLY_Q3_K_L = 13,
    MOSTLY_Q4_K_S = 14,
    MOSTLY_Q4_K_M = 15,
    MOSTLY_Q5_K_S = 16,
    MOSTLY_Q5_K_M = 17,
    MOSTLY_Q6_K = 18,
    MOSTLY_BF16 = 32,
};

struct FileTypeInfo {
    FileType id;
    const char* name;     // the spelling users type: "Q4_K_M"
    GgmlType base_type;   // what most 2-D weights get
    const char* summary;  // one line for --help
};

// Every file type kinfer writes, in the order --help lists them.
std::span<const FileTypeInfo> file_types();
// Case-insensitive lookup by name; also accepts llama-quantize's aliases Q3_K, Q4_K, Q5_K (= the _M mixes).
// Null if unknown.
const FileTypeInfo* find_file_type(std::string_view name);
const FileTypeInfo& file_type_info(FileType id);
// A comma-separated list of the accepted names, for messages.
std::string file_type_names();

// The hyperparameters the recipe looks at.
struct RecipeModel {
    std::string arch = "llama";
    uint32_t n_layer = 0;
    uint32_t n_head = 0;
    uint32_t n_head_kv = 0;
    uint32_t n_expert = 0;

    // Reads them from a GGUF file's "<arch>.*" keys. Throws FormatError naming the key if one is missing.
    static RecipeModel from_gguf(const gguf::GgufFile& file);
};

// One tensor as the recipe sees it. ne[0] is the row length.
struct RecipeTensor {
    std::string name;
    std::array<uint64_t, 4> ne{1, 1, 1, 1};
    GgmlType type = GgmlType::F32;  // its type in the input
};

struct TensorTypeChoice {
    GgmlType type;  // what to write
    // Set when the recipe's choice did not fit the row length and `type` is the fallback.
    std::optional<GgmlType> wanted;
};

// True for tensors llama.cpp would ever convert: 2-D (or more) weights other than norms.
bool tensor_is_quantizable(const RecipeTensor& t);

// Chooses the type of every tensor (result in the order of `tensors`). The counters llama.cpp keeps (the
// how-many-th attn_v / ffn_down is this) are taken over the tensors in llama.cpp's visiting order (by layer
// number, then name), so the result does not depend on the order of the input file.
std::vector<TensorTypeChoice> plan_tensor_types(FileType ftype, const RecipeModel& model,
                                                std::span<const RecipeTensor> tensors);

}  // namespace kinfer
