#include "tokenizer/vocab.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

#include "gguf/gguf_file.hpp"
#include "kinfer/error.hpp"

namespace kinfer::tokenizer {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

// Tokens that end a turn, recognised by their text because converters do not always record them in metadata
// (the same list llama.cpp keeps). They become end-of-generation tokens and are treated as control tokens.
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\xEF\xBD\x9C"
    "end\xE2\x96\x81"
    "of\xE2\x96\x81"
    "sentence\xEF\xBD\x9C>",
    "[e~[",
};
// Fill-in-the-middle markers (Code Llama's "▁<PRE>" among them): control tokens; pad/repo/file-separator
// markers also end generation.
constexpr std::string_view kFimControlTexts[] = {
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<PRE>",
    "\xE2\x96\x81<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<SUF>",
    "\xE2\x96\x81<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<MID>",
    "\xE2\x96\x81<MID>",
    "<|code_middle|>",
    "<|middle|>",
};
constexpr std::string_view kFimEogTexts[] = {
    "<|fim_pad|>",   "<fim-pad>",  "<fim_pad>", "<PAD>",      "[PAD]",        "<|fim_repo|>",
    "<|repo_name|>", "<fim-repo>", "<REPO>",    "<reponame>", "<|file_sep|>",
};

std::string where(const gguf::GgufFile& f, std::string_view key) {
    return f.path() + ": " + std::string(key);
}

uint8_t attr_from_type(int32_t t) {
    switch (t) {
        case kTypeNormal:
            return kAttrNormal;
        case kTypeUnknown:
            return kAttrUnknown;
        case kTypeControl:
            return kAttrControl;
        case kTypeUserDefined:
            return kAttrUserDefined;
        case kTypeUnused:
            return kAttrUnused;
        case kTypeByte:
            return kAttrByte;
        default:
            return kAttrUndefined;
    }
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// The byte a "<0xNN>" token stands for, or -1.
int byte_of_token_text(std::string_view t) {
    if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
    const int hi = hex_value(t[3]), lo = hex_value(t[4]);
    return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

}  // namespace

Vocab::Vocab(const gguf::GgufFile& file) {
    // ---- which tokenizer ----
    const gguf::Value* mv = file.find("tokenizer.ggml.model");
    if (!mv) throw FormatError(file.path() + ": no tokenizer.ggml.model: the file carries no tokenizer");
    if (!mv->is_string()) throw FormatError(where(file, "tokenizer.ggml.model") + " is not a string");
    model_name = std::string(mv->as_string());
    if (model_name == "llama") {
        model = TokenizerModel::kSpm;
    } else if (model_name == "gpt2") {
        throw FormatError(
            where(file, "tokenizer.ggml.model") +
            " = \"gpt2\": GPT-2 style byte-level BPE (Llama 3, Mistral Nemo, ...) is not supported "
            "yet; supported: \"llama\" (SentencePiece BPE)");
    } else {
        throw FormatError(where(file, "tokenizer.ggml.model") + " = \"" + model_name +
                          "\" is not supported; supported: \"llama\" (SentencePiece BPE)");
    }

    // ---- tokens, scores, types ----
    const gguf::Array& toks = file.get_array("tokenizer.ggml.tokens");
    if (toks.type != gguf::ValueType::STRING)
        throw FormatError(where(file, "tokenizer.ggml.tokens") + " is not an array of strings");
    if (toks.count == 0) throw FormatError(where(file, "tokenizer.ggml.tokens") + " is empty");
    if (toks.count > uint64_t(std::numeric_limits<int32_t>::max()))
        throw FormatError(where(file, "tokenizer.ggml.tokens") + " has too many entries");
    n_tokens = static_cast<int32_t>(toks.count);
    const size_t n = toks.count;

    const gguf::Array* score_arr = nullptr;
    if (const gguf::Value* v = file.find("tokenizer.ggml.scores")) {
        if (!v->is_array() ||
            (v->as_array().type != gguf::ValueType::F32 && v->as_array().type != gguf::ValueType::I32))
            throw FormatError(where(file, "tokenizer.ggml.scores") + " is not an array of f32 or i32");
        score_arr = &v->as_array();
        if (score_arr->count < n)
            throw FormatError(where(file, "tokenizer.ggml.scores") + " has " +
                              std::to_string(score_arr->count) + " entries for " + std::to_string(n) +
                              " tokens");
    }
    const gguf::Array* type_arr = nullptr;
    if (const gguf::Value* v = file.find("tokenizer.ggml.token_type")) {
        if (!v->is_array() || v->as_array().type != gguf::ValueType::I32)
            throw FormatError(where(file, "tokenizer.ggml.token_type") + " is not an array of i32");
        type_arr = &v->as_array();
        if (type_arr->count < n)
            throw FormatError(where(file, "tokenizer.ggml.token_type") + " has " +
                              std::to_string(type_arr->count) + " entries for " + std::to_string(n) +
                              " tokens");
    }

    // Token texts into one arena; empty texts get a placeholder, as llama.cpp does, so that every token has a
    // distinct non-empty text.
    std::vector<std::string> placeholders(n);
    size_t arena_size = 0;
    for (size_t i = 0; i < n; ++i) {
        if (toks.string_at(i).empty()) {
            placeholders[i] = "[EMPTY_" + std::to_string(i) + "]";
            warnings.push_back("token " + std::to_string(i) + " has an empty text; using " + placeholders[i]);
        }
        arena_size += placeholders[i].empty() ? toks.string_at(i).size() : placeholders[i].size();
    }
    text_arena_.reserve(arena_size);
    std::vector<size_t> starts(n);
    for (size_t i = 0; i < n; ++i) {
        starts[i] = text_arena_.size();
        text_arena_ += placeholders[i].empty() ? toks.string_at(i) : std::string_view(placeholders[i]);
    }
    texts.resize(n);
    scores.resize(n);
    attrs.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const size_t end = i + 1 < n ? starts[i + 1] : text_arena_.size();
        texts[i] = std::string_view(text_arena_).substr(starts[i], end - starts[i]);
        max_token_len = std::max(max_token_len, texts[i].size());
        float s = score_arr ? score_arr->scalar_at<float>(i) : 0.0f;
        if (std::isnan(s)) s = -std::numeric_limits<float>::infinity();  // keep the merge order well defined
        scores[i] = s;
        attrs[i] = type_arr ? attr_from_type(type_arr->scalar_at<int32_t>(i)) : uint8_t(kAttrNormal);
    }
    words_independent = true;
    for (const std::string_view t : texts) {
        size_t run = 0;
        while (t.compare(run, kSpace.size(), kSpace) == 0) run += kSpace.size();
        if (t.find(kSpace, run) != std::string_view::npos) {
            words_independent = false;
            break;
        }
    }
    if (const int32_t dup = index.build(texts); dup >= 0) {
        for (size_t i = 0; i < n; ++i)
            if (i != size_t(dup) && texts[i] == texts[dup])
                throw FormatError(where(file, "tokenizer.ggml.tokens") + ": tokens " + std::to_string(dup) +
                                  " and " + std::to_string(i) + " have the same text");
    }

    // ---- special ids and flags ----
    auto in_range = [&](int64_t id) { return id >= 0 && id < n_tokens; };
    // SentencePiece defaults (llama.cpp's for "llama"), dropped when the vocabulary is too small for them.
    bos_id = in_range(1) ? 1 : -1;
    eos_id = in_range(2) ? 2 : -1;
    unk_id = 0;
    add_bos = true;
    add_eos = false;
    add_space_prefix = true;
    auto read_id = [&](std::string_view key, int32_t& id) {
        const gguf::Value* v = file.find(key);
        if (!v) return;
        if (!v->is_integer()) throw FormatError(where(file, key) + " is not an integer");
        const bool negative = v->type() != gguf::ValueType::U64 && v->as_i64() < 0;
        if (negative || v->as_u64() >= uint64_t(n_tokens)) {
            warnings.push_back(std::string(key) + " = " +
                               (negative ? std::to_string(v->as_i64()) : std::to_string(v->as_u64())) +
                               " is outside the vocabulary; using " + std::to_string(id));
            return;
        }
        id = static_cast<int32_t>(v->as_u64());
    };
    read_id("tokenizer.ggml.bos_token_id", bos_id);
    read_id("tokenizer.ggml.eos_token_id", eos_id);
    read_id("tokenizer.ggml.unknown_token_id", unk_id);
    read_id("tokenizer.ggml.padding_token_id", pad_id);
    read_id("tokenizer.ggml.eot_token_id", eot_id);
    read_id("tokenizer.ggml.eom_token_id", eom_id);
    add_bos = file.get_or<bool>("tokenizer.ggml.add_bos_token", add_bos);
    add_eos = file.get_or<bool>("tokenizer.ggml.add_eos_token", add_eos);
    add_space_prefix = file.get_or<bool>("tokenizer.ggml.add_space_prefix", add_space_prefix);

    // ---- end-of-generation set ----
    eog.assign(n, 0);
    auto mark = [&](std::string_view text, bool is_eog) {
        const int32_t id = index.find(text);
        if (id < 0) return;
        attrs[id] |= kAttrControl;
        if (is_eog) eog[id] = 1;
    };
    for (std::string_view t : kEogTexts) mark(t, true);
    for (std::string_view t : kFimControlTexts) mark(t, false);
    for (std::string_view t : kFimEogTexts) mark(t, true);
    for (int32_t id : {eos_id, eot_id, eom_id})
        if (id >= 0) eog[id] = 1;

    // ---- byte fallback: "<0xNN>", else a token whose text is that single byte ----
    for (int b = 0; b < 256; ++b) {
        char buf[7];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        int32_t id = index.find(buf);
        if (id < 0) id = index.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
        byte_tokens[b] = id;
    }

    // ---- decoded pieces ----
    piece_arena_.reserve(arena_size);
    std::vector<size_t> piece_starts(n + 1);
    for (size_t i = 0; i < n; ++i) {
        piece_starts[i] = piece_arena_.size();
        const uint8_t a = attrs[i];
        const std::string_view t = texts[i];
        if (a & (kAttrUnknown | kAttrControl)) {
            // rendered only on request (special tokens), from texts[]
        } else if (a & kAttrUserDefined) {
            piece_arena_ += t;
        } else if (a & kAttrNormal) {
            for (size_t k = 0; k < t.size();) {
                if (t.compare(k, kSpace.size(), kSpace) == 0) {
                    piece_arena_ += ' ';
                    k += kSpace.size();
                } else {
                    piece_arena_ += t[k++];
                }
            }
        } else if (a & kAttrByte) {
            const int b = byte_of_token_text(t);
            if (b >= 0)
                piece_arena_ += static_cast<char>(b);
            else
                piece_arena_ += t;  // a byte token without a byte-shaped text: show what it says
        }
        // undefined / unused: nothing, as in llama.cpp
    }
    piece_starts[n] = piece_arena_.size();
    pieces.resize(n);
    for (size_t i = 0; i < n; ++i)
        pieces[i] =
            std::string_view(piece_arena_).substr(piece_starts[i], piece_starts[i + 1] - piece_starts[i]);

    // ---- special tokens split out of text before encoding ----
    std::vector<int32_t> special_ids;
    std::vector<uint8_t> always(n, 0);
    for (size_t i = 0; i < n; ++i) {
        if (attrs[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) special_ids.push_back(int32_t(i));
        // user-defined tokens are split out even without special parsing, unless also control/unknown
        if ((attrs[i] & kAttrUserDefined) && !(attrs[i] & (kAttrControl | kAttrUnknown))) always[i] = 1;
    }
    specials.build(special_ids, texts, always);
}

}  // namespace kinfer::tokenizer
