#include "tokenizer/tokenizer.hpp"

#include "gguf/gguf_file.hpp"
#include "kinfer/error.hpp"
#include "tokenizer/special_split.hpp"
#include "tokenizer/spm.hpp"

namespace kinfer::tokenizer {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

// `text` with every ' ' written as U+2581, after an optional leading one, into `out`.
void escape_spaces(std::string_view text, bool prefix, std::string& out) {
    out.clear();
    out.reserve(text.size() + text.size() / 4 + 3);
    if (prefix) out += kSpace;
    size_t from = 0;
    for (size_t sp = text.find(' '); sp != std::string_view::npos; sp = text.find(' ', from)) {
        out.append(text.data() + from, sp - from);
        out += kSpace;
        from = sp + 1;
    }
    out.append(text.data() + from, text.size() - from);
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const gguf::GgufFile& file) {
    return Tokenizer(std::make_shared<const Vocab>(file));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
    std::vector<int32_t> out;
    encode(text, EncodeOptions{add_bos, false, parse_special}, out);
    return out;
}

void Tokenizer::encode(std::string_view text, const EncodeOptions& options, std::vector<int32_t>& out) const {
    if (text.size() > UINT32_MAX) throw UsageError("text too long to tokenize (over 4 GiB)");
    const Vocab& v = *vocab_;
    if (options.add_bos && v.bos_id >= 0) out.push_back(v.bos_id);

    std::vector<Fragment> fragments;
    v.specials.split(text, options.parse_special, fragments);
    SpmScratch scratch;
    // SentencePiece sees each run of text as if it started a sentence: a space goes in front of the first
    // text and of every text that follows a special token (llama.cpp's rule, whatever BOS does).
    bool after_special = true;
    for (const Fragment& f : fragments) {
        if (f.token >= 0) {
            out.push_back(f.token);
            after_special = true;
            continue;
        }
        switch (v.model) {
            case TokenizerModel::kSpm:
                escape_spaces(text.substr(f.offset, f.length), v.add_space_prefix && after_special,
                              scratch.text);
                spm_encode(v, scratch.text, scratch, out);
                break;
                // A byte-level BPE model ("gpt2") would pre-split the fragment with its regex and merge by
                // rank here; Vocab refuses such files until then.
        }
        after_special = false;
    }

    if (options.add_eos && v.eos_id >= 0) out.push_back(v.eos_id);
}

void Tokenizer::check_id(int32_t id) const {
    if (!valid(id))
        throw UsageError("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                         std::to_string(vocab_->n_tokens) + ")");
}

std::string_view Tokenizer::token_text(int32_t id) const {
    check_id(id);
    return vocab_->texts[id];
}

std::string_view Tokenizer::piece(int32_t id, bool render_special) const {
    check_id(id);
    if (render_special && (vocab_->attrs[id] & (kAttrControl | kAttrUnknown))) return vocab_->texts[id];
    return vocab_->pieces[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
    std::string out;
    for (int32_t id : ids) out += piece(id, options.render_special);
    if (options.strip_leading_space && vocab_->add_space_prefix && !out.empty() && out[0] == ' ')
        out.erase(0, 1);
    return out;
}

}  // namespace kinfer::tokenizer
