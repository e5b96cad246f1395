#include "safetensors/safetensors_file.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "kernels/fp16.hpp"

namespace kinfer::safetensors {

using nlohmann::json;

namespace {

struct DTypeInfo {
    DType type;
    const char* name;
    size_t size;
};
constexpr std::array<DTypeInfo, 15> kDTypes{{{DType::F64, "F64", 8},
                                             {DType::F32, "F32", 4},
                                             {DType::F16, "F16", 2},
                                             {DType::BF16, "BF16", 2},
                                             {DType::F8_E4M3, "F8_E4M3", 1},
                                             {DType::F8_E5M2, "F8_E5M2", 1},
                                             {DType::I64, "I64", 8},
                                             {DType::I32, "I32", 4},
                                             {DType::I16, "I16", 2},
                                             {DType::I8, "I8", 1},
                                             {DType::U64, "U64", 8},
                                             {DType::U32, "U32", 4},
                                             {DType::U16, "U16", 2},
                                             {DType::U8, "U8", 1},
                                             {DType::BOOL, "BOOL", 1}}};

const DTypeInfo& info(DType t) {
    for (const auto& d : kDTypes)
        if (d.type == t) return d;
    return kDTypes[1];  // unreachable: every enumerator is in the table
}

}  // namespace

const char* dtype_name(DType t) {
    return info(t).name;
}
size_t dtype_size(DType t) {
    return info(t).size;
}
bool is_float_dtype(DType t) {
    return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

float load_element(DType t, const uint8_t* data, uint64_t i) {
    if (t == DType::F32) {
        float f;
        std::memcpy(&f, data + i * 4, 4);
        return f;
    }
    uint16_t h;
    std::memcpy(&h, data + i * 2, 2);
    return t == DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
}

uint64_t Tensor::n_elements() const {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;  // validated not to overflow when the file was opened
    return n;
}

std::string Tensor::shape_string() const {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

namespace {

const DTypeInfo* find_dtype(std::string_view name) {
    for (const auto& d : kDTypes)
        if (name == d.name) return &d;
    return nullptr;
}

// A JSON value as a short string for messages (never the whole of a hostile header).
std::string brief(const json& v) {
    std::string s = v.dump();
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
}

}  // namespace

// ---- parsing
// -------------------------------------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
    SafetensorsFile f;
    f.path_ = path;
    f.bytes_ = FileBytes::map(path);
    f.parse();
    return f;
}

SafetensorsFile SafetensorsFile::from_bytes(std::span<const uint8_t> bytes, std::string name) {
    SafetensorsFile f;
    f.path_ = std::move(name);
    f.bytes_ = FileBytes::copy(bytes);
    f.parse();
    return f;
}

void SafetensorsFile::parse() {
    base_ = bytes_.data();
    size_ = bytes_.size();
    const auto fail = [&](const std::string& what) -> void {
        throw FormatError(path_ + ": invalid safetensors file: " + what);
    };
    if (size_ < 8) fail("only " + std::to_string(size_) + " bytes, less than the 8-byte header length");
    uint64_t header_len;
    std::memcpy(&header_len, base_, 8);
    if (header_len > kMaxHeaderBytes)
        fail("header length " + std::to_string(header_len) + " exceeds the format's limit of " +
             std::to_string(kMaxHeaderBytes) + " bytes");
    if (header_len > size_ - 8)
        fail("header length " + std::to_string(header_len) + " exceeds the " + std::to_string(size_ - 8) +
             " bytes after the length field");
    if (header_len < 2) fail("header of " + std::to_string(header_len) + " bytes cannot hold a JSON object");
    data_offset_ = 8 + header_len;
    const uint64_t data_size = size_ - data_offset_;
    const std::string_view text(reinterpret_cast<const char*>(base_ + 8), header_len);

    // A callback sees every key of the top-level object, so duplicate names (which nlohmann would silently
    // collapse to the last one) are caught.
    // It also drops anything nested deeper than a valid header ever is (top object / entry / shape), so a
    // hostile "[[[[..." cannot make the recursive parts of the JSON library (dump, destruction) overflow
    // the stack.
    std::unordered_set<std::string> seen;
    std::string duplicate;
    bool too_deep = false;
    const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::key && depth == 1 && duplicate.empty()) {
            const std::string& key = parsed.get_ref<const std::string&>();
            if (!seen.insert(key).second) duplicate = key;
        }
        if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
            depth > 3) {
            too_deep = true;
            return false;
        }
        return true;
    };
    json header;
    try {
        header = json::parse(text.begin(), text.end(), on_event);
    } catch (const json::exception& e) {
        fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (too_deep) fail("header nests JSON deeper than a safetensors header has");
    if (!duplicate.empty()) fail("tensor '" + duplicate + "' appears twice in the header");
    if (!header.is_object()) fail("header is " + std::string(header.type_name()) + ", not a JSON object");

    for (const auto& item : header.items()) {
        // named copies, not structured bindings: lambdas below capture them (clang 14 cannot capture
        // bindings)
        const std::string& name = item.key();
        const json& entry = item.value();
        if (name == "__metadata__") {
            if (!entry.is_object()) fail("__metadata__ is not an object of strings");
            for (const auto& [k, v] : entry.items()) {
                if (!v.is_string()) fail("__metadata__ value '" + k + "' is " + brief(v) + ", not a string");
                metadata_[k] = v.get<std::string>();
            }
            continue;
        }
        const auto bad = [&](const std::string& what) { fail("tensor '" + name + "': " + what); };
        if (name.empty()) fail("a tensor has an empty name");
        if (!entry.is_object()) bad("entry is " + brief(entry) + ", not an object");
        for (const auto& [k, v] : entry.items())
            if (k != "dtype" && k != "shape" && k != "data_offsets") bad("unexpected field '" + k + "'");

        Tensor t;
        t.name = name;
        const auto dt = entry.find("dtype");
        if (dt == entry.end() || !dt->is_string()) bad("no dtype string");
        const DTypeInfo* d = find_dtype(dt->get_ref<const std::string&>());
        if (!d) bad("unknown dtype " + brief(*dt));
        t.dtype = d->type;

        const auto sh = entry.find("shape");
        if (sh == entry.end() || !sh->is_array()) bad("no shape array");
        if (sh->size() > kMaxDims)
            bad("shape has " + std::to_string(sh->size()) + " dimensions, more than " +
                std::to_string(kMaxDims));
        uint64_t n_elements = 1;
        for (const json& dim : *sh) {
            if (!dim.is_number_unsigned()) bad("shape " + brief(*sh) + " has an entry that is not a count");
            const uint64_t n = dim.get<uint64_t>();
            if (n != 0 && n_elements > UINT64_MAX / n) bad("shape " + brief(*sh) + " overflows 64 bits");
            n_elements *= n;
            t.shape.push_back(n);
        }
        if (n_elements > UINT64_MAX / d->size) bad("shape " + brief(*sh) + " overflows 64 bits in bytes");

        const auto off = entry.find("data_offsets");
        if (off == entry.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
            !(*off)[1].is_number_unsigned())
            bad("data_offsets is not a pair of byte offsets");
        const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
        if (begin > end)
            bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] run backwards");
        if (end > data_size)
            bad("data_offsets end " + std::to_string(end) + " lies past the " + std::to_string(data_size) +
                " bytes of tensor data");
        if (end - begin != n_elements * d->size)
            bad("holds " + std::to_string(end - begin) + " bytes, but " + d->name + " " + t.shape_string() +
                " needs " + std::to_string(n_elements * d->size));
        t.offset = begin;
        t.n_bytes = end - begin;
        t.data = base_ + data_offset_ + begin;
        tensors_.push_back(std::move(t));
    }

    // The data must be covered exactly once: tensors back to back, no overlap, no hole, nothing after.
    std::sort(tensors_.begin(), tensors_.end(), [](const Tensor& a, const Tensor& b) {
        return a.offset != b.offset ? a.offset < b.offset : a.n_bytes < b.n_bytes;
    });
    uint64_t expected = 0;
    for (size_t i = 0; i < tensors_.size(); ++i) {
        const Tensor& t = tensors_[i];
        if (t.offset < expected)
            fail("tensor '" + t.name + "' (bytes " + std::to_string(t.offset) + ".." +
                 std::to_string(t.offset + t.n_bytes) + ") overlaps tensor '" + tensors_[i - 1].name + "'");
        if (t.offset > expected)
            fail("bytes " + std::to_string(expected) + ".." + std::to_string(t.offset) +
                 " of the data belong to no tensor (before tensor '" + t.name + "')");
        expected = t.offset + t.n_bytes;
    }
    if (expected != data_size)
        fail("the last " + std::to_string(data_size - expected) + " bytes of the data belong to no tensor");
    for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const Tensor* SafetensorsFile::find(std::string_view name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

const Tensor& SafetensorsFile::tensor(std::string_view name) const {
    const Tensor* t = find(name);
    if (!t) throw FormatError(path_ + ": no tensor '" + std::string(name) + "'");
    return *t;
}

}  // namespace kinfer::safetensors
