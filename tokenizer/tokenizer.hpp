#pragma once
// Text <-> token ids for the GGUF tokenizers kinfer supports: today "llama" (SentencePiece BPE with byte
// fallback: Llama 1/2, Mistral 7B v0.1-v0.3, Mixtral, Code Llama, ...). Encoding reproduces llama.cpp's
// llama_tokenize token for token; see tests/tokenizer_test.cpp for the evidence.
//
// A Tokenizer is immutable after loading and cheap to copy (it shares its vocabulary): every const method may
// be called from several threads at once. Other tokenizer models (e.g. "gpt2", byte-level BPE) are refused
// with a FormatError when loading; a new model plugs in as another TokenizerModel behind the same interface.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.hpp"

namespace kinfer::gguf {
class GgufFile;
}

namespace kinfer::tokenizer {

struct EncodeOptions {
    bool add_bos = false;  // prepend the BOS token (if the vocabulary has one)
    bool add_eos = false;  // append the EOS token (if the vocabulary has one)
    bool parse_special =
        false;  // turn special-token texts ("[INST]", "</s>") into their tokens; off for user text
};

struct DecodeOptions {
    bool render_special = false;      // control/unknown tokens as their text ("</s>") instead of nothing
    bool strip_leading_space = true;  // undo the space the encoder prefixes (only if add_space_prefix)
};

class Tokenizer {
  public:
    // Loads the tokenizer from the file's metadata; tensors are not needed (vocabulary-only files work).
    // Throws FormatError (naming file and key) for missing/malformed metadata or an unsupported model.
    static Tokenizer from_gguf(const gguf::GgufFile& file);

    // Tokens of `text` (any bytes; invalid UTF-8 falls back to byte tokens). `add_bos` prepends BOS (pass
    // add_bos() to follow the file); EOS is never added by this overload. With `parse_special`, special-token
    // texts in `text` become those tokens (use for chat templates, never for untrusted user text).
    std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const;
    // Appends to `out` (reuse it across calls to avoid reallocation).
    void encode(std::string_view text, const EncodeOptions& options, std::vector<int32_t>& out) const;

    // The bytes the ids stand for (byte tokens included; may be invalid UTF-8 if the ids cut a character).
    // Control tokens (BOS, EOS, [INST]...) produce nothing, and the one space the encoder puts in front of
    // the text is removed, so decode(encode(s, ...)) == s for any s without special-token parsing. Throws
    // UsageError for an id outside [0, n_vocab).
    std::string decode(std::span<const int32_t> ids) const { return decode(ids, DecodeOptions{}); }
    std::string decode(std::span<const int32_t> ids, const DecodeOptions& options) const;

    // The bytes one token decodes to (empty for control tokens unless render_special). Throws on a bad id.
    std::string_view piece(int32_t id, bool render_special = false) const;
    // The token's text as stored in the vocabulary ("▁Hello", "<0x0A>", "</s>"). Throws on a bad id.
    std::string_view token_text(int32_t id) const;
    // The id of the token whose vocabulary text is exactly `text`, or -1.
    int32_t token_id(std::string_view text) const { return vocab_->index.find(text); }

    int32_t n_vocab() const { return vocab_->n_tokens; }
    int32_t bos_id() const { return vocab_->bos_id; }  // -1 if none
    int32_t eos_id() const { return vocab_->eos_id; }
    int32_t unk_id() const { return vocab_->unk_id; }
    int32_t pad_id() const { return vocab_->pad_id; }
    bool add_bos() const { return vocab_->add_bos && vocab_->bos_id >= 0; }
    bool add_eos() const { return vocab_->add_eos && vocab_->eos_id >= 0; }
    bool add_space_prefix() const { return vocab_->add_space_prefix; }
    // End-of-generation: EOS, EOT/EOM and the end-of-turn tokens llama.cpp recognises by text.
    bool is_eog(int32_t id) const { return valid(id) && vocab_->eog[id] != 0; }
    bool is_control(int32_t id) const { return valid(id) && (vocab_->attrs[id] & kAttrControl) != 0; }
    bool is_byte(int32_t id) const { return valid(id) && (vocab_->attrs[id] & kAttrByte) != 0; }
    uint8_t attributes(int32_t id) const { return valid(id) ? vocab_->attrs[id] : 0; }  // TokenAttr bits
    float score(int32_t id) const { return valid(id) ? vocab_->scores[id] : 0.0f; }
    const std::string& model_name() const { return vocab_->model_name; }  // tokenizer.ggml.model
    // Recoverable problems met while loading (out-of-range special ids, empty token texts): worth showing.
    const std::vector<std::string>& warnings() const { return vocab_->warnings; }

    bool valid(int32_t id) const { return id >= 0 && id < vocab_->n_tokens; }

  private:
    explicit Tokenizer(std::shared_ptr<const Vocab> v) : vocab_(std::move(v)) {}
    void check_id(int32_t id) const;
    std::shared_ptr<const Vocab> vocab_;
};

}  // namespace kinfer::tokenizer
