#include "tokenizer/utf8.hpp"

namespace kinfer::tokenizer {

Utf8Step utf8_step(const uint8_t* p, size_t n) {
    const uint8_t b0 = p[0];
    if (b0 < 0x80) return {Utf8Step::kValid, 1};
    uint32_t need = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte (Unicode table 3-7)
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        if (b0 == 0xE0) lo = 0xA0;  // no overlong 3-byte forms
        if (b0 == 0xED) hi = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        if (b0 == 0xF0) lo = 0x90;  // no overlong 4-byte forms
        if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
        return {Utf8Step::kInvalid, 1};  // continuation byte, C0/C1 or F5..FF as a lead
    }
    for (uint32_t i = 1; i < need; ++i) {
        if (i >= n) return {Utf8Step::kIncomplete, i};
        const uint8_t b = p[i];
        const uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) return {Utf8Step::kInvalid, i};
    }
    return {Utf8Step::kValid, need};
}

size_t find_invalid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        // ASCII fast path, 8 bytes at a time.
        while (i + 8 <= n) {
            uint64_t w;
            __builtin_memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (p[i] < 0x80) {
            ++i;
            continue;
        }
        const Utf8Step st = utf8_step(p + i, n - i);
        if (st.kind != Utf8Step::kValid) return i;
        i += st.length;
    }
    return kUtf8Npos;
}

std::string to_valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    size_t i = 0;
    while (i < s.size()) {
        const Utf8Step st = utf8_step(p + i, s.size() - i);
        if (st.kind == Utf8Step::kValid)
            out.append(s.data() + i, st.length);
        else
            out += kReplacementChar;
        i += st.length;
    }
    return out;
}

}  // namespace kinfer::tokenizer
