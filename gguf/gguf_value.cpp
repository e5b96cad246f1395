#include "gguf/gguf_value.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kinfer::gguf {

const char* value_type_name(ValueType t) {
    switch (t) {
        case ValueType::U8:
            return "u8";
        case ValueType::I8:
            return "i8";
        case ValueType::U16:
            return "u16";
        case ValueType::I16:
            return "i16";
        case ValueType::U32:
            return "u32";
        case ValueType::I32:
            return "i32";
        case ValueType::F32:
            return "f32";
        case ValueType::BOOL:
            return "bool";
        case ValueType::STRING:
            return "string";
        case ValueType::ARRAY:
            return "array";
        case ValueType::U64:
            return "u64";
        case ValueType::I64:
            return "i64";
        case ValueType::F64:
            return "f64";
    }
    return "?";
}

size_t scalar_size(ValueType t) {
    switch (t) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::BOOL:
            return 1;
        case ValueType::U16:
        case ValueType::I16:
            return 2;
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::F32:
            return 4;
        case ValueType::U64:
        case ValueType::I64:
        case ValueType::F64:
            return 8;
        case ValueType::STRING:
        case ValueType::ARRAY:
            return 0;
    }
    return 0;
}

bool Value::is_integer() const {
    switch (type()) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::U16:
        case ValueType::I16:
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::U64:
        case ValueType::I64:
            return true;
        default:
            return false;
    }
}

bool Value::is_number() const {
    return is_integer() || type() == ValueType::F32 || type() == ValueType::F64;
}

int64_t Value::as_i64() const {
    return std::visit(
        [](const auto& x) -> int64_t {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_integral_v<T>)
                return static_cast<int64_t>(x);
            else
                return 0;
        },
        v);
}

uint64_t Value::as_u64() const {
    return std::visit(
        [](const auto& x) -> uint64_t {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_integral_v<T>)
                return static_cast<uint64_t>(x);
            else
                return 0;
        },
        v);
}

double Value::as_f64() const {
    return std::visit(
        [](const auto& x) -> double {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_arithmetic_v<T>)
                return static_cast<double>(x);
            else
                return 0.0;
        },
        v);
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if the bytes there are not valid UTF-8
// (overlong forms, surrogates and code points above U+10FFFF count as invalid).
size_t utf8_sequence_length(std::string_view s, size_t i) {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b0 = byte(i);
    if (b0 < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if ((b0 & 0xe0) == 0xc0)
        n = 2, cp = b0 & 0x1f;
    else if ((b0 & 0xf0) == 0xe0)
        n = 3, cp = b0 & 0x0f;
    else if ((b0 & 0xf8) == 0xf0)
        n = 4, cp = b0 & 0x07;
    else
        return 0;
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    static constexpr uint32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

// JSON string literal. Metadata strings are supposed to be UTF-8 but a file may hold anything: invalid
// bytes become U+FFFD so that the document stays valid JSON.
std::string json_escape(std::string_view s) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size();) {
        const unsigned char ch = static_cast<unsigned char>(s[i]);
        switch (ch) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (ch < 0x20 || ch == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", ch);
                    out += buf;
                } else if (const size_t n = utf8_sequence_length(s, i)) {
                    out.append(s.substr(i, n));
                    i += n;
                    continue;
                } else {
                    out += "\\ufffd";
                }
        }
        ++i;
    }
    return out + "\"";
}

// Text rendering of a string: control characters escaped so that a vocabulary entry cannot move the
// terminal's cursor or break inspect's one-line-per-key layout.
std::string display_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (unsigned char ch : s) {
        if (ch == '\n')
            out += "\\n";
        else if (ch == '\t')
            out += "\\t";
        else if (ch == '\r')
            out += "\\r";
        else if (ch < 0x20 || ch == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", ch);
            out += buf;
        } else {
            out += static_cast<char>(ch);
        }
    }
    return out;
}

std::string number_string(double x, bool is_float) {
    if (!is_float) return std::to_string(static_cast<long long>(x));
    if (!std::isfinite(x)) return std::isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf");
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.9g", x);
    return buf;
}

std::string scalar_string(const Value& v, bool json) {
    switch (v.type()) {
        case ValueType::BOOL:
            return std::get<bool>(v.v) ? "true" : "false";
        case ValueType::U64:
            return std::to_string(v.as_u64());
        case ValueType::F32:
        case ValueType::F64: {
            std::string s = number_string(v.as_f64(), true);
            if (json && !std::isfinite(v.as_f64())) return "null";  // JSON has no inf/nan
            return s;
        }
        default:
            return std::to_string(v.as_i64());
    }
}

Value array_scalar(const Array& a, uint64_t i) {
    Value v;
    switch (a.type) {
        case ValueType::U8:
            v.v = a.scalar_at<uint8_t>(i);
            break;
        case ValueType::I8:
            v.v = a.scalar_at<int8_t>(i);
            break;
        case ValueType::U16:
            v.v = a.scalar_at<uint16_t>(i);
            break;
        case ValueType::I16:
            v.v = a.scalar_at<int16_t>(i);
            break;
        case ValueType::U32:
            v.v = a.scalar_at<uint32_t>(i);
            break;
        case ValueType::I32:
            v.v = a.scalar_at<int32_t>(i);
            break;
        case ValueType::F32:
            v.v = a.scalar_at<float>(i);
            break;
        case ValueType::BOOL:
            v.v = a.scalar_at<bool>(i);
            break;
        case ValueType::U64:
            v.v = a.scalar_at<uint64_t>(i);
            break;
        case ValueType::I64:
            v.v = a.scalar_at<int64_t>(i);
            break;
        case ValueType::F64:
            v.v = a.scalar_at<double>(i);
            break;
        default:
            break;
    }
    return v;
}

std::string render(const Value& value, size_t max_items, bool json) {
    if (value.is_string()) {
        if (json) return json_escape(value.as_string());
        const std::string_view s = value.as_string();
        size_t limit = std::min<size_t>(s.size(), 160);
        while (limit < s.size() && limit > 0 && (static_cast<unsigned char>(s[limit]) & 0xc0) == 0x80)
            --limit;  // cut at a UTF-8 character boundary
        const std::string shown = display_escape(s.substr(0, limit));
        return "\"" + shown + (s.size() > limit ? "...\" (" + std::to_string(s.size()) + " bytes)" : "\"");
    }
    if (!value.is_array()) return scalar_string(value, json);
    const Array& a = value.as_array();
    const uint64_t shown = max_items == 0 ? a.count : std::min<uint64_t>(a.count, max_items);
    std::string out = "[";
    for (uint64_t i = 0; i < shown; ++i) {
        if (i) out += ", ";
        out += scalar_size(a.type) ? render(array_scalar(a, i), max_items, json)
                                   : render(a.items[i], max_items, json);
    }
    if (shown < a.count) {
        if (json)
            out += ", \"... " + std::to_string(a.count - shown) + " more\"";
        else
            out += ", ... (" + std::to_string(a.count) + " items)";
    }
    return out + "]";
}

}  // namespace

std::string to_display_string(const Value& value, size_t max_items) {
    return render(value, max_items, false);
}
std::string to_json(const Value& value, size_t max_items) {
    return render(value, max_items, true);
}
std::string json_string(std::string_view s) {
    return json_escape(s);
}
std::string escape_for_display(std::string_view s) {
    return display_escape(s);
}

}  // namespace kinfer::gguf
