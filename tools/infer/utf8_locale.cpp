#include "tools/infer/utf8_locale.hpp"

#include <langinfo.h>
#include <strings.h>

#include <clocale>

namespace kinfer::cli {
namespace {

bool codeset_is_utf8() {
    const char* codeset = nl_langinfo(CODESET);
    return codeset && (strcasecmp(codeset, "UTF-8") == 0 || strcasecmp(codeset, "utf8") == 0);
}

}  // namespace

Utf8Locale use_utf8_ctype() {
    const char* users = std::setlocale(LC_CTYPE, "");
    if (users && codeset_is_utf8()) return {true, ""};
    // The C/POSIX locale (ASCII) is what an unset LANG gives, usually in front of a UTF-8 terminal: take
    // UTF-8 quietly. A locale with another character set is a choice the user made: say that we differ.
    const std::string codeset = users ? nl_langinfo(CODESET) : "";
    const bool other_charset = users && codeset != "ANSI_X3.4-1968";
    for (const char* name : {"C.UTF-8", "C.utf8", "en_US.UTF-8", "en_US.utf8"}) {
        if (std::setlocale(LC_CTYPE, name) && codeset_is_utf8()) {
            if (!other_charset) return {true, ""};
            return {true, "note: the locale's character set is " + codeset +
                              "; infer chat reads and writes UTF-8 (set the terminal to UTF-8)"};
        }
    }
    std::setlocale(LC_CTYPE, "C");
    return {false,
            "note: no UTF-8 locale is installed (tried C.UTF-8 and en_US.UTF-8), so line editing is off; "
            "install one (Debian: the locales package) to edit lines and recall them with the arrow keys"};
}

}  // namespace kinfer::cli
