#include "gguf/gguf_value.hpp"

#include <cmath>
#include <cstdio>

namespace kinfer::gguf {

const char* value_type_name(ValueType t) {
    switch (t) {
        case ValueType::U8: return "u8";
        case ValueType::I8: return "i8";
        case ValueType::U16: return "u16";
        case ValueType::I16: return "i16";
        case ValueType::U32: return "u32";
        case ValueType::I32: return "i32";
        case ValueType::F32: return "f32";
        case ValueType::BOOL: return "bool";
        case ValueType::STRING: return "string";
        case ValueType::ARRAY: return "array";
        case ValueType::U64: return "u64";
        case ValueType::I64: return "i64";
        case ValueType::F64: return "f64";
    }
    return "?";
}

size_t scalar_size(ValueType t) {
    switch (t) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::BOOL: return 1;
        case ValueType::U16:
        case ValueType::I16: return 2;
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::F32: return 4;
        case ValueType::U64:
        case ValueType::I64:
        case ValueType::F64: return 8;
        case ValueType::STRING:
        case ValueType::ARRAY: return 0;
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
        case ValueType::I64: return true;
        default: return false;
    }
}

bool Value::is_number() const {
    return is_integer() || type() == ValueType::F32 || type() == ValueType::F64;
}

int64_t Value::as_i64() const {
    return std::visit(
        [](const auto& x) -> int64_t {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_integral_v<T>) return static_cast<int64_t>(x);
            else return 0;
        },
        v);
}

uint64_t Value::as_u64() const {
    return std::visit(
        [](const auto& x) -> uint64_t {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_integral_v<T>) return static_cast<uint64_t>(x);
            else return 0;
        },
        v);
}

double Value::as_f64() const {
    return std::visit(
        [](const auto& x) -> double {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_arithmetic_v<T>) return static_cast<double>(x);
            else return 0.0;
        },
        v);
}

namespace {

std::string json_escape(std::string_view s) {
    std::string out = "\"";
    for (unsigned char ch : s) {
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (ch < 0x20 || ch == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", ch);
                    out += buf;
                } else {
                    out += static_cast<char>(ch);  // UTF-8 passes through (invalid bytes too: caller's data)
                }
        }
    }
    return out + "\"";
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
        case ValueType::BOOL: return std::get<bool>(v.v) ? "true" : "false";
        case ValueType::U64: return std::to_string(v.as_u64());
        case ValueType::F32:
        case ValueType::F64: {
            std::string s = number_string(v.as_f64(), true);
            if (json && !std::isfinite(v.as_f64())) return "null";  // JSON has no inf/nan
            return s;
        }
        default: return std::to_string(v.as_i64());
    }
}

Value array_scalar(const Array& a, uint64_t i) {
    Value v;
    switch (a.type) {
        case ValueType::U8: v.v = a.scalar_at<uint8_t>(i); break;
        case ValueType::I8: v.v = a.scalar_at<int8_t>(i); break;
        case ValueType::U16: v.v = a.scalar_at<uint16_t>(i); break;
        case ValueType::I16: v.v = a.scalar_at<int16_t>(i); break;
        case ValueType::U32: v.v = a.scalar_at<uint32_t>(i); break;
        case ValueType::I32: v.v = a.scalar_at<int32_t>(i); break;
        case ValueType::F32: v.v = a.scalar_at<float>(i); break;
        case ValueType::BOOL: v.v = a.scalar_at<bool>(i); break;
        case ValueType::U64: v.v = a.scalar_at<uint64_t>(i); break;
        case ValueType::I64: v.v = a.scalar_at<int64_t>(i); break;
        case ValueType::F64: v.v = a.scalar_at<double>(i); break;
        default: break;
    }
    return v;
}

std::string render(const Value& value, size_t max_items, bool json) {
    if (value.is_string()) {
        if (json) return json_escape(value.as_string());
        std::string s(value.as_string());
        const size_t limit = 160;
        std::string shown = s.size() > limit ? s.substr(0, limit) : s;
        for (auto& ch : shown)
            if (ch == '\n') ch = ' ';
        return "\"" + shown + (s.size() > limit ? "...\" (" + std::to_string(s.size()) + " bytes)" : "\"");
    }
    if (!value.is_array()) return scalar_string(value, json);
    const Array& a = value.as_array();
    const uint64_t shown = max_items == 0 ? a.count : std::min<uint64_t>(a.count, max_items);
    std::string out = "[";
    for (uint64_t i = 0; i < shown; ++i) {
        if (i) out += ", ";
        out += scalar_size(a.type) ? render(array_scalar(a, i), max_items, json) : render(a.items[i], max_items, json);
    }
    if (shown < a.count) {
        if (json) out += ", \"... " + std::to_string(a.count - shown) + " more\"";
        else out += ", ... (" + std::to_string(a.count) + " items)";
    }
    return out + "]";
}

}  // namespace

std::string to_display_string(const Value& value, size_t max_items) { return render(value, max_items, false); }
std::string to_json(const Value& value, size_t max_items) { return render(value, max_items, true); }
std::string json_string(std::string_view s) { return json_escape(s); }

}  // namespace kinfer::gguf
