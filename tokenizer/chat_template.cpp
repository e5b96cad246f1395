#include "tokenizer/chat_template.hpp"

#include <array>

#include "gguf/gguf_file.hpp"
#include "kinfer/error.hpp"

namespace kinfer::tokenizer {
namespace {

using Family = ChatTemplate::Family;

struct Named {
    std::string_view name;
    Family family;
};
constexpr std::array<Named, 8> kFamilies = {{
    {"mistral-v3", Family::kMistralV3},
    {"mistral-v1", Family::kMistralV1},
    {"llama2", Family::kLlama2},
    {"llama2-sys", Family::kLlama2Sys},
    {"llama2-sys-bos", Family::kLlama2SysBos},
    {"llama2-sys-strip", Family::kLlama2SysStrip},
    {"chatml", Family::kChatml},
    {"zephyr", Family::kZephyr},
}};

bool contains(std::string_view s, std::string_view part) {
    return s.find(part) != std::string_view::npos;
}

// C's isspace in the "C" locale: what llama.cpp's built-in templates trim.
bool is_ascii_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

std::string trim_ascii(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && is_ascii_space(s[b])) ++b;
    while (e > b && is_ascii_space(s[e - 1])) --e;
    return std::string(s.substr(b, e - b));
}

// Python's str.isspace() for one code point: what Jinja's `trim` filter (str.strip) removes.
bool is_python_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

// Decodes the (valid) UTF-8 character starting at s[i]; returns its length, or 0 if ill-formed there.
size_t decode_at(std::string_view s, size_t i, uint32_t& cp) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return 0;
    cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
        if ((b(i + k) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3F);
    }
    return len;
}

std::string trim_python(std::string_view s) {
    size_t b = 0;
    while (b < s.size()) {
        uint32_t cp;
        const size_t len = decode_at(s, b, cp);
        if (len == 0 || !is_python_space(cp)) break;
        b += len;
    }
    size_t e = s.size();
    while (e > b) {
        // step back to the start of the last character
        size_t start = e - 1;
        while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && e - start < 4) --start;
        uint32_t cp;
        if (decode_at(s, start, cp) != e - start || !is_python_space(cp)) break;
        e = start;
    }
    return std::string(s.substr(b, e - b));
}

// The Hugging Face Mistral-7B-Instruct-v0.3 template (the one in mistral-v0.3-vocab.gguf), minus bos_token.
std::string apply_mistral_v3(std::span<const ChatMessage> msgs) {
    std::string out;
    const bool has_system = !msgs.empty() && msgs[0].role == "system";
    const auto loop = has_system ? msgs.subspan(1) : msgs;
    for (size_t i = 0; i < loop.size(); ++i) {
        const ChatMessage& m = loop[i];
        if ((m.role == "user") != (i % 2 == 0))
            throw UsageError(
                "chat template mistral-v3: after the optional system message, conversation roles must "
                "alternate "
                "user/assistant/user/assistant/...");
        if (m.role == "user") {
            out += "[INST] ";
            if (i + 1 == loop.size() && has_system) {
                out += msgs[0].content;
                out += "\n\n";
            }
            out += m.content;
            out += "[/INST]";
        } else if (m.role == "assistant") {
            out += ' ';
            out += trim_python(m.content);
            out += "</s>";
        } else {
            throw UsageError(
                "chat template mistral-v3: only user and assistant roles are supported, with the exception "
                "of an "
                "initial optional system message (got '" +
                m.role + "')");
        }
    }
    return out;
}

// llama.cpp's "mistral-v1": " [INST] ", system text + "\n\n" where it appears.
std::string apply_mistral_v1(std::span<const ChatMessage> msgs) {
    std::string out;
    bool in_turn = false;
    for (const ChatMessage& m : msgs) {
        if (!in_turn) {
            out += " [INST] ";
            in_turn = true;
        }
        if (m.role == "system") {
            out += m.content + "\n\n";
        } else if (m.role == "user") {
            out += m.content + " [/INST]";
        } else {
            out += " " + m.content + "</s>";
            in_turn = false;
        }
    }
    return out;
}

// llama.cpp's Llama 2 family: the first "[INST] " opens the conversation; later turns reopen it.
std::string apply_llama2(std::span<const ChatMessage> msgs, Family f) {
    const bool sys_block = f != Family::kLlama2;
    const bool bos_inside = f == Family::kLlama2SysBos;
    const bool strip = f == Family::kLlama2SysStrip;
    std::string out = "[INST] ";
    bool in_turn = true;
    for (const ChatMessage& m : msgs) {
        const std::string content = strip ? trim_ascii(m.content) : m.content;
        if (!in_turn) {
            out += bos_inside ? "<s>[INST] " : "[INST] ";
            in_turn = true;
        }
        if (m.role == "system") {
            out += sys_block ? "<<SYS>>\n" + content + "\n<</SYS>>\n\n" : content + "\n";
        } else if (m.role == "user") {
            out += content + " [/INST]";
        } else {
            out += content + "</s>";
            in_turn = false;
        }
    }
    return out;
}

std::string apply_chatml(std::span<const ChatMessage> msgs, bool gen) {
    std::string out;
    for (const ChatMessage& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    if (gen) out += "<|im_start|>assistant\n";
    return out;
}

std::string apply_zephyr(std::span<const ChatMessage> msgs, bool gen) {
    std::string out;
    for (const ChatMessage& m : msgs) out += "<|" + m.role + "|>\n" + m.content + "<|endoftext|>\n";
    if (gen) out += "<|assistant|>\n";
    return out;
}

}  // namespace

std::string_view ChatTemplate::detect(std::string_view t) {
    for (const auto& f : kFamilies)
        if (t == f.name) return f.name;
    if (contains(t, "<|im_start|>")) {
        // Phi-4 and SmolVLM use <|im_start|> with other layouts.
        if (contains(t, "<|im_sep|>") || contains(t, "<end_of_utterance>")) return {};
        return "chatml";
    }
    if (t.starts_with("mistral") || contains(t, "[INST]")) {
        if (contains(t, "[SYSTEM_PROMPT]")) return {};  // Mistral v7: not supported
        if (contains(t, "' [INST] ' + system_message")) return "mistral-v1";
        if (contains(t, "[AVAILABLE_TOOLS]")) {  // Mistral's official tool-calling templates
            if (contains(t, " [INST]")) return "mistral-v1";
            if (contains(t, "\"[INST]\"")) return {};  // v3-tekken (Mistral Nemo): not supported
            return "mistral-v3";
        }
        // The Hugging Face v0.3 template folds the system message into the last user turn.
        if (contains(t, "loop.last and system_message")) return "mistral-v3";
        if (contains(t, "content.strip()")) return "llama2-sys-strip";
        if (contains(t, "bos_token + '[INST]")) return "llama2-sys-bos";
        if (contains(t, "<<SYS>>")) return "llama2-sys";
        return "llama2";
    }
    // Phi-3 also has <|user|>, but ends turns with <|end|>.
    if (contains(t, "<|user|>") && contains(t, "<|endoftext|>") && !contains(t, "<|end|>")) return "zephyr";
    return {};
}

std::string ChatTemplate::known_names() {
    std::string s;
    for (const auto& f : kFamilies) s += (s.empty() ? "" : ", ") + std::string(f.name);
    return s;
}

ChatTemplate ChatTemplate::by_name(std::string_view name) {
    for (const auto& f : kFamilies)
        if (name == f.name) return ChatTemplate(f.family);
    throw UsageError("unknown chat template '" + std::string(name) + "'; known: " + known_names());
}

ChatTemplate ChatTemplate::from_gguf(const gguf::GgufFile& file, std::string_view override_name,
                                     std::string* warning) {
    if (warning) warning->clear();
    if (!override_name.empty()) return by_name(override_name);
    const gguf::Value* v = file.find("tokenizer.chat_template");
    std::string why;
    if (!v) {
        why = file.path() + " has no tokenizer.chat_template";
    } else if (!v->is_string()) {
        why = file.path() + ": tokenizer.chat_template is not a string";
    } else {
        const std::string_view name = detect(v->as_string());
        if (!name.empty()) return by_name(name);
        why = file.path() + ": tokenizer.chat_template is not one of the template families kinfer knows";
    }
    if (warning)
        *warning = why + "; using " + std::string(kDefaultName) +
                   " (choose with --chat-template NAME: " + known_names() + ")";
    return by_name(kDefaultName);
}

std::string_view ChatTemplate::name() const {
    for (const auto& f : kFamilies)
        if (f.family == family_) return f.name;
    return {};
}

std::string ChatTemplate::apply(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
    switch (family_) {
        case Family::kMistralV3:
            return apply_mistral_v3(messages);
        case Family::kMistralV1:
            return apply_mistral_v1(messages);
        case Family::kLlama2:
        case Family::kLlama2Sys:
        case Family::kLlama2SysBos:
        case Family::kLlama2SysStrip:
            return apply_llama2(messages, family_);
        case Family::kChatml:
            return apply_chatml(messages, add_generation_prompt);
        case Family::kZephyr:
            return apply_zephyr(messages, add_generation_prompt);
    }
    return {};
}

}  // namespace kinfer::tokenizer
