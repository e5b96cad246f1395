#pragma once
// A Hugging Face tokenizer (tokenizer.json, tokenizer_config.json, chat_template.jinja) as the GGUF
// "llama" tokenizer model stores it: SentencePiece-style BPE with byte fallback. Pieces keep their U+2581
// spaces; scores rank the merges (the piece the first merge makes scores highest, as in a SentencePiece
// model, so llama.cpp's and kinfer's score-driven BPE make the same merges); token types mark
// control, byte (<0xXX>), unknown, user-defined and normal pieces.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kinfer::convert {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6
};

struct GgufVocab {
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    std::optional<uint32_t> bos_id, eos_id, unk_id, pad_id;
    bool add_bos = true;
    bool add_eos = false;
    bool add_space_prefix = true;
    std::string chat_template;  // "" if the model has none
};

// Reads the tokenizer of `model_dir` for a model with `n_vocab` embedding rows (ids the tokenizer does not
// use become "[PAD<id>]" unused tokens, as llama.cpp's converter writes them). config_bos / config_eos are
// config.json's ids, used when tokenizer_config.json names no BOS / EOS. Throws FormatError naming the file
// and key for tokenizers kinfer cannot represent (byte-level BPE as in Llama 3, WordPiece, ...).
GgufVocab read_hf_tokenizer(const std::string& model_dir, uint32_t n_vocab, std::optional<int64_t> config_bos,
                            std::optional<int64_t> config_eos);

}  // namespace kinfer::convert
