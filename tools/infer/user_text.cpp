#include "tools/infer/user_text.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "kinfer/error.hpp"
#include "tokenizer/utf8.hpp"

namespace kinfer::cli {

std::string utf8_problem(std::string_view text) {
    const size_t bad = tokenizer::find_invalid_utf8(text);
    if (bad == tokenizer::kUtf8Npos) return "";
    char buf[64];
    std::snprintf(buf, sizeof buf, "byte 0x%02X at offset %zu", static_cast<unsigned char>(text[bad]), bad);
    return buf;
}

void require_utf8(std::string_view text, const std::string& what) {
    if (const std::string problem = utf8_problem(text); !problem.empty())
        throw UsageError(what + " is not valid UTF-8 (" + problem + ")");
}

std::string without_bom(std::string text) {
    if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
    return text;
}

size_t count_characters(std::string_view text) {
    size_t n = 0;
    for (const char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return n;
}

std::string quoted(std::string_view text) {
    // UTF-8 kept as is; bytes that are not UTF-8 become U+FFFD instead of an exception.
    return nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string quoted_list(const std::vector<std::string>& texts) {
    std::string out = "[";  // ", " between items, as a person reads it
    for (size_t i = 0; i < texts.size(); ++i) out += (i ? ", " : "") + cli::quoted(texts[i]);
    return out + "]";
}

}  // namespace kinfer::cli
