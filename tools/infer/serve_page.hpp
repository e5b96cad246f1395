#pragma once
// The chat page `infer serve` shows at "/": one self-contained HTML file (inline CSS and JS, no external
// assets, no build step), compiled into the binary.
#include <string_view>

namespace kinfer::cli::serve {

std::string_view chat_page_html();

}  // namespace kinfer::cli::serve
