#include "convert/hf_tokenizer.hpp"

#include <filesystem>
#include <unordered_map>

#include "convert/json_file.hpp"
#include "kinfer/error.hpp"

namespace kinfer::convert {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

bool is_byte_piece(const std::string& s) {
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
    return s.size() == 6 && s.compare(0, 3, "<0x") == 0 && hex(s[3]) && hex(s[4]) && s[5] == '>';
}

// tokenizer_config.json writes special tokens as "<s>" or as {"content": "<s>", ...}.
std::optional<std::string> token_content(const json& cfg, const char* key) {
    if (!cfg.contains(key)) return std::nullopt;
    const json& v = cfg[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
        return v["content"].get<std::string>();
    return std::nullopt;
}

// Whether the post-processor's single-sequence template puts `content` first (add_bos) or last (add_eos).
std::optional<bool> template_adds(const json& tok, const std::string& content, bool first) {
    if (!tok.contains("post_processor") || !tok["post_processor"].is_object()) return std::nullopt;
    const json& pp = tok["post_processor"];
    if (pp.value("type", "") != "TemplateProcessing" || !pp.contains("single") || !pp["single"].is_array())
        return std::nullopt;
    const json& single = pp["single"];
    if (single.empty()) return false;
    const json& item = first ? single.front() : single.back();
    return item.contains("SpecialToken") && item["SpecialToken"].is_object() &&
           item["SpecialToken"].value("id", "") == content;
}

// SentencePiece prepends U+2581 to the text unless told not to: a Prepend normalizer (legacy tokenizers) or
// a Metaspace pre-tokenizer with prepend_scheme first/always (newer ones) says it does.
bool adds_space_prefix(const json& tok) {
    const auto scan = [](const json& node, auto&& self) -> bool {
        if (!node.is_object()) return false;
        const std::string type = node.value("type", "");
        if (type == "Prepend" && node.value("prepend", "") == "\u2581") return true;
        if (type == "Metaspace") {
            if (node.contains("prepend_scheme") && node["prepend_scheme"].is_string())
                return node["prepend_scheme"] != "never";
            return node.value("add_prefix_space", true);
        }
        for (const char* list : {"normalizers", "pretokenizers"})
            if (node.contains(list) && node[list].is_array())
                for (const auto& child : node[list])
                    if (self(child, self)) return true;
        return false;
    };
    return scan(tok.value("normalizer", json()), scan) || scan(tok.value("pre_tokenizer", json()), scan);
}

}  // namespace

GgufVocab read_hf_tokenizer(const std::string& model_dir, uint32_t n_vocab, std::optional<int64_t> config_bos,
                            std::optional<int64_t> config_eos) {
    const fs::path dir(model_dir);
    const std::string tok_path = (dir / "tokenizer.json").string();
    if (!fs::exists(tok_path))
        throw FormatError(model_dir +
                          ": no tokenizer.json (a tokenizer.model alone is not supported: load and "
                          "save the tokenizer with transformers to write tokenizer.json)");
    const json tok = read_json_file(tok_path);
    const auto fail = [&](const std::string& what) -> void { throw FormatError(tok_path + ": " + what); };
    if (!tok.is_object() || !tok.contains("model") || !tok["model"].is_object()) fail("no \"model\" object");
    const json& model = tok["model"];
    const std::string type = model.value("type", "");
    if (type != "BPE")
        fail("model type \"" + type + "\" is not supported (kinfer converts SentencePiece-style BPE)");
    if (!model.value("byte_fallback", false))
        fail(
            "a BPE without byte_fallback (byte-level BPE as in Llama 3 or GPT-2) is not supported; kinfer "
            "converts SentencePiece-style BPE with byte fallback (Llama 2, Mistral)");
    if (!model.contains("vocab") || !model["vocab"].is_object()) fail("model.vocab is not an object");

    GgufVocab v;
    std::vector<bool> filled(n_vocab, false);
    std::unordered_map<std::string, uint32_t> ids;
    const auto put = [&](const std::string& piece, const json& id_json, TokenType ttype, const char* where) {
        if (!id_json.is_number_unsigned())
            fail(std::string(where) + " '" + piece + "' has id " + id_json.dump());
        const uint64_t id = id_json.get<uint64_t>();
        if (id >= n_vocab)
            fail(std::string(where) + " '" + piece + "' has id " + std::to_string(id) +
                 ", but the model has " + std::to_string(n_vocab) + " embedding rows");
        if (filled[id] && v.tokens[id] != piece)
            fail("id " + std::to_string(id) + " is both '" + v.tokens[id] + "' and '" + piece + "'");
        if (!filled[id]) {
            v.tokens[id] = piece;
            filled[id] = true;
        }
        v.types[id] = int32_t(ttype);
        ids.emplace(piece, uint32_t(id));
    };
    v.tokens.resize(n_vocab);
    v.scores.assign(n_vocab, 0.0f);
    v.types.assign(n_vocab, int32_t(TokenType::Unused));
    const std::string unk =
        model.value("unk_token", json()).is_string() ? model["unk_token"].get<std::string>() : "";
    for (const auto& [piece, id] : model["vocab"].items())
        put(piece, id,
            piece == unk           ? TokenType::Unknown
            : is_byte_piece(piece) ? TokenType::Byte
                                   : TokenType::Normal,
            "model.vocab piece");
    if (tok.contains("added_tokens") && tok["added_tokens"].is_array()) {
        for (const auto& a : tok["added_tokens"]) {
            if (!a.is_object() || !a.contains("content") || !a["content"].is_string() || !a.contains("id"))
                fail("an added_tokens entry lacks content or id");
            const std::string content = a["content"].get<std::string>();
            const TokenType tt = content == unk              ? TokenType::Unknown
                                 : a.value("special", false) ? TokenType::Control
                                                             : TokenType::UserDefined;
            put(content, a["id"], tt, "added token");
        }
    }
    for (uint32_t i = 0; i < n_vocab; ++i)
        if (!filled[i]) v.tokens[i] = "[PAD" + std::to_string(i) + "]";

    // Scores: a piece made by merge number r scores -r, the first merge highest. Normal pieces no merge
    // makes (single characters) score below every merge result; they never compete with merges.
    std::vector<bool> scored(n_vocab, false);
    uint64_t rank = 0;
    if (model.contains("merges")) {
        if (!model["merges"].is_array()) fail("model.merges is not an array");
        for (const auto& m : model["merges"]) {
            std::string merged;
            if (m.is_string()) {  // "a b" (tokenizers < 0.20)
                const std::string s = m.get<std::string>();
                const size_t sp = s.find(' ');
                if (sp == std::string::npos) fail("merge \"" + s + "\" is not two pieces");
                merged = s.substr(0, sp) + s.substr(sp + 1);
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
                merged = m[0].get<std::string>() + m[1].get<std::string>();
            } else {
                fail("merge " + m.dump() + " is neither \"a b\" nor [\"a\", \"b\"]");
            }
            const auto it = ids.find(merged);
            if (it == ids.end())
                fail("merge " + m.dump() + " makes '" + merged + "', which is not in the vocabulary");
            if (!scored[it->second]) {
                v.scores[it->second] = -float(rank);
                scored[it->second] = true;
            }
            ++rank;
        }
    }
    for (uint32_t i = 0; i < n_vocab; ++i)
        if (!scored[i] && v.types[i] == int32_t(TokenType::Normal)) v.scores[i] = -float(rank + i);

    // Special ids and flags: tokenizer_config.json first, then tokenizer.json's post-processor, then
    // config.json.
    const fs::path cfg_path = dir / "tokenizer_config.json";
    const json cfg = fs::exists(cfg_path) ? read_json_file(cfg_path.string()) : json::object();
    const auto id_of = [&](const char* key, std::optional<int64_t> fallback) -> std::optional<uint32_t> {
        if (const auto content = token_content(cfg, key)) {
            const auto it = ids.find(*content);
            if (it == ids.end())
                throw FormatError(cfg_path.string() + ": " + key + " '" + *content +
                                  "' is not in the vocabulary");
            return it->second;
        }
        if (fallback && *fallback >= 0 && *fallback < int64_t(n_vocab)) return uint32_t(*fallback);
        return std::nullopt;
    };
    v.bos_id = id_of("bos_token", config_bos);
    v.eos_id = id_of("eos_token", config_eos);
    v.pad_id = id_of("pad_token", std::nullopt);
    if (!unk.empty() && ids.count(unk)) v.unk_id = ids[unk];
    const JsonFields cf(cfg, cfg_path.string());
    const auto bos_text = v.bos_id ? v.tokens[*v.bos_id] : std::string();
    const auto eos_text = v.eos_id ? v.tokens[*v.eos_id] : std::string();
    v.add_bos = cf.has("add_bos_token") ? cf.boolean("add_bos_token", true)
                                        : template_adds(tok, bos_text, true).value_or(true);
    v.add_eos = cf.has("add_eos_token") ? cf.boolean("add_eos_token", false)
                                        : template_adds(tok, eos_text, false).value_or(false);
    v.add_space_prefix = adds_space_prefix(tok);

    // The chat template: transformers >= 4.47 saves it as chat_template.jinja, older ones inside
    // tokenizer_config.json (a string, or a list of named templates of which "default" is the one).
    const fs::path jinja = dir / "chat_template.jinja";
    if (fs::exists(jinja)) {
        v.chat_template = read_text_file(jinja.string());
    } else if (cfg.contains("chat_template")) {
        const json& t = cfg["chat_template"];
        if (t.is_string()) {
            v.chat_template = t.get<std::string>();
        } else if (t.is_array()) {
            for (const auto& named : t)
                if (named.is_object() && named.value("name", "") == "default" && named.contains("template") &&
                    named["template"].is_string())
                    v.chat_template = named["template"].get<std::string>();
        } else if (!t.is_null()) {
            cf.fail("chat_template", "is neither a string nor a list of named templates");
        }
    }
    return v;
}

}  // namespace kinfer::convert
