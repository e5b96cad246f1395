#pragma once
// Line editing (libedit) decodes and draws typed characters with the C library's LC_CTYPE locale. A program
// starts in the "C" locale, where every non-ASCII byte is dropped, so `infer chat` must pick a UTF-8 one.
#include <string>

namespace kinfer::cli {

struct Utf8Locale {
    bool ok = false;   // LC_CTYPE is now a UTF-8 locale
    std::string note;  // a line for stderr ("" if there is nothing to say)
};

// Sets LC_CTYPE to the user's locale (LC_ALL / LC_CTYPE / LANG) when that is UTF-8; otherwise (unset, C,
// POSIX, another character set) to C.UTF-8 or another installed UTF-8 locale. Only LC_CTYPE changes: numbers
// keep printing the same way.
Utf8Locale use_utf8_ctype();

}  // namespace kinfer::cli
