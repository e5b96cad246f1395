#pragma once
// GGUF metadata values as read from a file. Strings and numeric arrays are views into the file's bytes (which
// the owning GgufFile keeps alive), so reading metadata never copies or allocates in proportion to what a
// header merely claims.
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kinfer::gguf {

// On-disk value type codes (gguf_type in the spec). The variant below uses the same order.
enum class ValueType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};

const char* value_type_name(ValueType t);  // "u8", "string", "array", ...
// Size in bytes of a fixed-size scalar type; 0 for STRING and ARRAY.
size_t scalar_size(ValueType t);

struct Value;

// An array value. Scalar elements stay packed in `raw` (little-endian, as in the file); strings and nested
// arrays are decoded into `items`.
struct Array {
    ValueType type = ValueType::U8;
    uint64_t count = 0;
    std::span<const uint8_t> raw;  // scalar element types only
    std::vector<Value> items;      // STRING or ARRAY element types only

    // Element i of a scalar array, converted to T (numeric types only; bounds-checked by the caller).
    template <class T>
    T scalar_at(uint64_t i) const;
    std::string_view string_at(uint64_t i) const;
};

struct Value {
    std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string_view, Array,
                 uint64_t, int64_t, double>
        v;

    ValueType type() const { return static_cast<ValueType>(v.index()); }
    bool is_integer() const;
    bool is_number() const;  // integer or float
    bool is_string() const { return type() == ValueType::STRING; }
    bool is_array() const { return type() == ValueType::ARRAY; }
    // Integer value widened; only valid when is_integer() (bool counts as not an integer).
    int64_t as_i64() const;
    uint64_t as_u64() const;
    double as_f64() const;  // any number
    std::string_view as_string() const { return std::get<std::string_view>(v); }
    const Array& as_array() const { return std::get<Array>(v); }
};

// Human-readable rendering for inspect: strings quoted, arrays abbreviated after `max_items`.
std::string to_display_string(const Value& value, size_t max_items = 8);
// JSON rendering (strings escaped; arrays abbreviated after `max_items`, 0 = no limit).
std::string to_json(const Value& value, size_t max_items = 0);
// s with control characters escaped (\n, \t, \xNN), for one-line text output of keys and names.
std::string escape_for_display(std::string_view s);
// A JSON string literal for s (quotes included).
std::string json_string(std::string_view s);

template <class T>
T Array::scalar_at(uint64_t i) const {
    const uint8_t* p = raw.data() + i * scalar_size(type);
    auto load = [p]<class U>(U*) {
        U u;
        std::memcpy(&u, p, sizeof(U));
        return static_cast<T>(u);
    };
    switch (type) {
        case ValueType::U8:
            return load(static_cast<uint8_t*>(nullptr));
        case ValueType::I8:
            return load(static_cast<int8_t*>(nullptr));
        case ValueType::U16:
            return load(static_cast<uint16_t*>(nullptr));
        case ValueType::I16:
            return load(static_cast<int16_t*>(nullptr));
        case ValueType::U32:
            return load(static_cast<uint32_t*>(nullptr));
        case ValueType::I32:
            return load(static_cast<int32_t*>(nullptr));
        case ValueType::F32:
            return load(static_cast<float*>(nullptr));
        case ValueType::BOOL:
            return static_cast<T>(*p != 0);
        case ValueType::U64:
            return load(static_cast<uint64_t*>(nullptr));
        case ValueType::I64:
            return load(static_cast<int64_t*>(nullptr));
        case ValueType::F64:
            return load(static_cast<double*>(nullptr));
        default:
            return T{};
    }
}

inline std::string_view Array::string_at(uint64_t i) const {
    return items[i].as_string();
}

}  // namespace kinfer::gguf
