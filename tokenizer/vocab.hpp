#pragma once
// The tokenizer's vocabulary as read from GGUF metadata (`tokenizer.ggml.*`): token texts, scores and
// attributes, special token ids and the add_bos / add_eos / add_space_prefix flags, plus the derived tables
// the encoder and decoder need (text index, byte-fallback tokens, decoded pieces, end-of-generation set).
// Immutable once loaded, so one Vocab may serve any number of threads.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/special_split.hpp"
#include "tokenizer/token_index.hpp"

namespace kinfer::gguf {
class GgufFile;
}

namespace kinfer::tokenizer {

// Token attributes, bit flags as llama.cpp models them: a token read as NORMAL may gain CONTROL when its
// text marks it as an end-of-turn token, for instance.
enum TokenAttr : uint8_t {
    kAttrUndefined = 0,
    kAttrUnknown = 1 << 0,
    kAttrUnused = 1 << 1,
    kAttrNormal = 1 << 2,
    kAttrControl = 1 << 3,
    kAttrUserDefined = 1 << 4,
    kAttrByte = 1 << 5,
};

// `tokenizer.ggml.token_type` values (llama_token_type).
enum GgufTokenType : int32_t {
    kTypeUndefined = 0,
    kTypeNormal = 1,
    kTypeUnknown = 2,
    kTypeControl = 3,
    kTypeUserDefined = 4,
    kTypeUnused = 5,
    kTypeByte = 6,
};

enum class TokenizerModel {
    kSpm,  // tokenizer.ggml.model = "llama": SentencePiece BPE with byte fallback
};

class Vocab {
  public:
    // Reads and validates the tokenizer metadata. Throws FormatError naming the file and key for missing or
    // malformed metadata, and for tokenizer models other than "llama" (e.g. "gpt2", which is not supported
    // yet).
    explicit Vocab(const gguf::GgufFile& file);
    Vocab(const Vocab&) = delete;  // the index holds views into this object's own storage
    Vocab& operator=(const Vocab&) = delete;

    TokenizerModel model = TokenizerModel::kSpm;
    std::string model_name;
    int32_t n_tokens = 0;

    std::vector<std::string_view> texts;  // views into text_arena_
    std::vector<float> scores;
    std::vector<uint8_t> attrs;  // TokenAttr bits
    std::vector<std::string_view>
        pieces;                // decoded bytes (control/unknown tokens: empty); views into piece_arena_
    std::vector<uint8_t> eog;  // 1 for end-of-generation tokens
    TokenIndex index;
    SpecialSplitter specials;
    std::array<int32_t, 256>
        byte_tokens{};  // byte -> token for byte fallback, -1 where the vocabulary has none
    size_t max_token_len = 0;
    // True when every U+2581 in every token sits in a run at the token's start (true of Llama's and Mistral's
    // vocabularies). Then no token can contain a non-space character followed by U+2581, so SPM merging never
    // crosses the start of a word and words can be encoded one by one (see spm_encode).
    bool words_independent = false;

    int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1, eot_id = -1, eom_id = -1;
    bool add_bos = false, add_eos = false, add_space_prefix = false;

    std::vector<std::string> warnings;  // recoverable oddities found while loading (bad special ids, ...)

  private:
    std::string text_arena_;
    std::string piece_arena_;
};

}  // namespace kinfer::tokenizer
