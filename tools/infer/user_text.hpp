#pragma once
// Text that the user hands to `infer` (flags, prompt files, typed lines) on its way to the tokenizer: it must
// be valid UTF-8, or the model would silently read something else than what was written.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kinfer::cli {

// "" when `text` is valid UTF-8, else where it is not: "byte 0xE9 at offset 3".
std::string utf8_problem(std::string_view text);
// Throws UsageError "<what> is not valid UTF-8 (byte 0xE9 at offset 3)" unless `text` is valid UTF-8.
void require_utf8(std::string_view text, const std::string& what);
// `text` without a leading UTF-8 byte order mark (editors on Windows write one; it is not part of the text).
std::string without_bom(std::string text);
// Number of Unicode characters (code points) of valid UTF-8 text.
size_t count_characters(std::string_view text);
// `text` as a JSON string, non-ASCII characters as they are: what --verbose shows of the user's text.
std::string quoted(std::string_view text);
std::string quoted_list(const std::vector<std::string>& texts);

}  // namespace kinfer::cli
