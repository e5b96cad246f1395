#pragma once
// UTF-8 validation and repair. Validation is strict (RFC 3629): no overlong forms, no surrogates, nothing
// above U+10FFFF. Repair replaces each "maximal subpart" of an ill-formed sequence with one U+FFFD, the
// practice the Unicode standard recommends (and what browsers and Python do), so results are predictable.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kinfer::tokenizer {

inline constexpr size_t kUtf8Npos = static_cast<size_t>(-1);
inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// One step of decoding at the start of a byte range.
struct Utf8Step {
    enum Kind : uint8_t {
        kValid,       // `length` bytes form one well-formed character
        kInvalid,     // `length` bytes (>= 1) are a maximal ill-formed subpart: replace them with one U+FFFD
        kIncomplete,  // all `length` bytes are a well-formed prefix cut short by the end of the range
    };
    Kind kind;
    uint32_t length;
};

// Classifies the bytes at the start of [p, p + n); n must be > 0.
Utf8Step utf8_step(const uint8_t* p, size_t n);

// Offset of the first byte of the first ill-formed (or truncated) sequence, or kUtf8Npos if `s` is valid.
size_t find_invalid_utf8(std::string_view s);
inline bool is_valid_utf8(std::string_view s) {
    return find_invalid_utf8(s) == kUtf8Npos;
}

// `s` with every maximal ill-formed subpart (a truncated tail included) replaced by U+FFFD.
std::string to_valid_utf8(std::string_view s);

// Number of bytes llama.cpp's tokenizers give the character starting with `lead`, judged by its high bits
// only (1 for ASCII and stray continuation bytes, 2, 3 or 4 for lead bytes); the SPM tokenizer splits text
// into symbols this way, valid or not.
inline size_t utf8_len_from_lead(uint8_t lead) {
    static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLen[lead >> 4];
}

}  // namespace kinfer::tokenizer
