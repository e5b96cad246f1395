#include "gguf/gguf_writer.hpp"

#include <algorithm>
#include <cstring>

#include "gguf/gguf_file.hpp"
#include "kinfer/error.hpp"

namespace kinfer::gguf {

namespace {

constexpr std::string_view kAlignmentKey = "general.alignment";

// Padding is added in one step: a legal alignment can be as large as 2^31 bytes.
uint64_t round_up(uint64_t n, uint64_t alignment) {
    return (n + alignment - 1) / alignment * alignment;
}

template <class T>
void put(std::vector<uint8_t>& out, T v) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
}

void put_string(std::vector<uint8_t>& out, std::string_view s) {
    put<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}

// A Value built by hand (not read from a file) may be inconsistent; writing it would produce a file that
// does not parse. Checked before any byte is written.
void check_value(std::string_view key, const Value& v, int depth) {
    if (!v.is_array()) return;
    const Array& a = v.as_array();
    const std::string k(key);
    if (depth >= 8) throw UsageError("GGUF writer: key '" + k + "': arrays nested deeper than 8");
    if (static_cast<uint32_t>(a.type) > static_cast<uint32_t>(ValueType::F64))
        throw UsageError("GGUF writer: key '" + k + "': unknown array element type");
    if (const size_t size = scalar_size(a.type)) {
        if (a.raw.size() != a.count * size || !a.items.empty())
            throw UsageError("GGUF writer: key '" + k + "': scalar array holds " +
                             std::to_string(a.raw.size()) + " bytes for " + std::to_string(a.count) +
                             " items");
        if (a.type == ValueType::BOOL)
            for (uint8_t b : a.raw)
                if (b > 1)
                    throw UsageError("GGUF writer: key '" + k + "': bool array byte is neither 0 nor 1");
        return;
    }
    if (a.items.size() != a.count || !a.raw.empty())
        throw UsageError("GGUF writer: key '" + k + "': array count " + std::to_string(a.count) + " but " +
                         std::to_string(a.items.size()) + " items");
    for (const Value& item : a.items) {
        if (item.type() != a.type)
            throw UsageError("GGUF writer: key '" + k + "': array of " + value_type_name(a.type) +
                             " holds a " + value_type_name(item.type()));
        check_value(key, item, depth + 1);
    }
}

void put_value_body(std::vector<uint8_t>& out, const Value& v) {
    switch (v.type()) {
        case ValueType::STRING:
            put_string(out, v.as_string());
            break;
        case ValueType::ARRAY: {
            const Array& a = v.as_array();
            put<uint32_t>(out, static_cast<uint32_t>(a.type));
            put<uint64_t>(out, a.count);
            if (scalar_size(a.type))
                out.insert(out.end(), a.raw.begin(), a.raw.end());
            else
                for (const Value& item : a.items) put_value_body(out, item);
            break;
        }
        case ValueType::BOOL:
            put<uint8_t>(out, std::get<bool>(v.v) ? 1 : 0);
            break;
        default:
            std::visit(
                [&](const auto& x) {
                    using T = std::decay_t<decltype(x)>;
                    if constexpr (std::is_arithmetic_v<T>) put<T>(out, x);
                },
                v.v);
    }
}

}  // namespace

GgufWriter::GgufWriter() = default;

bool GgufWriter::has_key(std::string_view key) const {
    return std::find(keys_.begin(), keys_.end(), key) != keys_.end();
}

void GgufWriter::begin_kv(std::string_view key, ValueType type) {
    if (key.empty()) throw UsageError("GGUF writer: empty metadata key");
    if (has_key(key)) throw UsageError("GGUF writer: duplicate metadata key '" + std::string(key) + "'");
    if (key == kAlignmentKey && type != ValueType::U32)
        throw UsageError("GGUF writer: general.alignment must be a u32 (use set_alignment)");
    if (out_.is_open()) throw UsageError("GGUF writer: metadata added after the header was written");
    keys_.emplace_back(key);
    put_string(kv_bytes_, key);
    put<uint32_t>(kv_bytes_, static_cast<uint32_t>(type));
    ++n_kv_;
}

#define KINFER_SCALAR_ADDER(fn, T, VT)               \
    void GgufWriter::fn(std::string_view key, T v) { \
        begin_kv(key, ValueType::VT);                \
        put<T>(kv_bytes_, v);                        \
    }
KINFER_SCALAR_ADDER(add_u8, uint8_t, U8)
KINFER_SCALAR_ADDER(add_i8, int8_t, I8)
KINFER_SCALAR_ADDER(add_u16, uint16_t, U16)
KINFER_SCALAR_ADDER(add_i16, int16_t, I16)
KINFER_SCALAR_ADDER(add_i32, int32_t, I32)
KINFER_SCALAR_ADDER(add_u64, uint64_t, U64)
KINFER_SCALAR_ADDER(add_i64, int64_t, I64)
KINFER_SCALAR_ADDER(add_f32, float, F32)
KINFER_SCALAR_ADDER(add_f64, double, F64)
#undef KINFER_SCALAR_ADDER

void GgufWriter::add_u32(std::string_view key, uint32_t v) {
    if (key == kAlignmentKey) return set_alignment(v);  // the layout must follow the declared alignment
    begin_kv(key, ValueType::U32);
    put<uint32_t>(kv_bytes_, v);
}

void GgufWriter::add_bool(std::string_view key, bool v) {
    begin_kv(key, ValueType::BOOL);
    put<uint8_t>(kv_bytes_, v ? 1 : 0);
}

void GgufWriter::add_string(std::string_view key, std::string_view v) {
    begin_kv(key, ValueType::STRING);
    put_string(kv_bytes_, v);
}

void GgufWriter::add_strings(std::string_view key, std::span<const std::string> v) {
    begin_kv(key, ValueType::ARRAY);
    put<uint32_t>(kv_bytes_, static_cast<uint32_t>(ValueType::STRING));
    put<uint64_t>(kv_bytes_, v.size());
    for (const auto& s : v) put_string(kv_bytes_, s);
}

void GgufWriter::add_f32_array(std::string_view key, std::span<const float> v) {
    begin_kv(key, ValueType::ARRAY);
    put<uint32_t>(kv_bytes_, static_cast<uint32_t>(ValueType::F32));
    put<uint64_t>(kv_bytes_, v.size());
    for (float x : v) put<float>(kv_bytes_, x);
}

void GgufWriter::add_i32_array(std::string_view key, std::span<const int32_t> v) {
    begin_kv(key, ValueType::ARRAY);
    put<uint32_t>(kv_bytes_, static_cast<uint32_t>(ValueType::I32));
    put<uint64_t>(kv_bytes_, v.size());
    for (int32_t x : v) put<int32_t>(kv_bytes_, x);
}

void GgufWriter::add_value(std::string_view key, const Value& v) {
    if (key == kAlignmentKey && v.type() == ValueType::U32) {
        set_alignment(std::get<uint32_t>(v.v));
        return;
    }
    check_value(key, v, 0);
    begin_kv(key, v.type());
    put_value_body(kv_bytes_, v);
}

void GgufWriter::set_alignment(uint32_t alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        throw UsageError("GGUF writer: alignment " + std::to_string(alignment) + " is not a power of two");
    if (!tensors_.empty()) throw UsageError("GGUF writer: set the alignment before adding tensors");
    begin_kv(kAlignmentKey, ValueType::U32);
    put<uint32_t>(kv_bytes_, alignment);
    alignment_ = alignment;
}

void GgufWriter::add_tensor(std::string_view name, GgmlType type, std::span<const uint64_t> ne) {
    const TypeTraits& t = type_traits(type);
    const std::string n(name);
    if (name.empty()) throw UsageError("GGUF writer: empty tensor name");
    if (ne.empty() || ne.size() > kMaxDims)
        throw UsageError("GGUF writer: tensor '" + n + "' needs 1 to 4 dims");
    if (out_.is_open())
        throw UsageError("GGUF writer: tensor '" + n + "' added after the header was written");
    for (const auto& ti : tensors_)
        if (ti.name == n) throw UsageError("GGUF writer: duplicate tensor '" + n + "'");
    uint64_t n_elems = 1;
    for (uint64_t d : ne) {
        if (d == 0) throw UsageError("GGUF writer: tensor '" + n + "' has a zero dimension");
        if (d > uint64_t(INT64_MAX) || n_elems > uint64_t(INT64_MAX) / d)
            throw UsageError("GGUF writer: tensor '" + n + "' element count overflows 64 bits");
        n_elems *= d;
    }
    if (n_elems / t.block_elems > UINT64_MAX / 2 / t.block_bytes)
        throw UsageError("GGUF writer: tensor '" + n + "' is too large");
    if (ne[0] % t.block_elems != 0)
        throw UsageError("GGUF writer: tensor '" + n + "' row length " + std::to_string(ne[0]) +
                         " is not a multiple of the " + t.name + " block size");
    TensorInfo info{n, type, {ne.begin(), ne.end()}, n_elems / t.block_elems * t.block_bytes, data_size_};
    data_size_ += (info.n_bytes + alignment_ - 1) / alignment_ * alignment_;
    tensors_.push_back(std::move(info));
}

std::vector<uint8_t> GgufWriter::header_bytes() const {
    std::vector<uint8_t> h;
    put<uint32_t>(h, kMagic);
    put<uint32_t>(h, 3);
    put<uint64_t>(h, tensors_.size());
    put<uint64_t>(h, n_kv_);
    h.insert(h.end(), kv_bytes_.begin(), kv_bytes_.end());
    for (const auto& t : tensors_) {
        put_string(h, t.name);
        put<uint32_t>(h, static_cast<uint32_t>(t.ne.size()));
        for (uint64_t d : t.ne) put<uint64_t>(h, d);
        put<uint32_t>(h, static_cast<uint32_t>(t.type));
        put<uint64_t>(h, t.offset);
    }
    h.resize(round_up(h.size(), alignment_), 0);
    return h;
}

void GgufWriter::write_raw(const void* p, size_t n) {
    out_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
    if (!out_) throw Error(path_ + ": write failed");
    written_ += n;
}

void GgufWriter::pad_to_alignment() {
    static const uint8_t zeros[4096] = {};
    uint64_t pad = (alignment_ - written_ % alignment_) % alignment_;
    while (pad) {
        const size_t n = std::min<uint64_t>(pad, sizeof zeros);
        write_raw(zeros, n);
        pad -= n;
    }
}

void GgufWriter::open(const std::string& path) {
    path_ = path;
    out_.open(path, std::ios::binary | std::ios::trunc);
    if (!out_) throw Error(path + ": cannot open for writing");
    const auto h = header_bytes();
    write_raw(h.data(), h.size());
    next_tensor_ = 0;
    tensor_written_ = 0;
}

void GgufWriter::write_tensor_chunk(std::span<const uint8_t> bytes) {
    if (!out_.is_open()) throw UsageError("GGUF writer: open() before writing tensor data");
    if (next_tensor_ >= tensors_.size())
        throw UsageError("GGUF writer: more tensor data than tensors declared");
    const TensorInfo& t = tensors_[next_tensor_];
    if (tensor_written_ + bytes.size() > t.n_bytes)
        throw UsageError("GGUF writer: tensor '" + t.name + "' expects " + std::to_string(t.n_bytes) +
                         " bytes, got more");
    write_raw(bytes.data(), bytes.size());
    tensor_written_ += bytes.size();
    if (tensor_written_ == t.n_bytes) {
        pad_to_alignment();
        ++next_tensor_;
        tensor_written_ = 0;
    }
}

void GgufWriter::write_tensor_data(std::span<const uint8_t> bytes) {
    if (next_tensor_ < tensors_.size() && bytes.size() != tensors_[next_tensor_].n_bytes)
        throw UsageError("GGUF writer: tensor '" + tensors_[next_tensor_].name + "' expects " +
                         std::to_string(tensors_[next_tensor_].n_bytes) + " bytes, got " +
                         std::to_string(bytes.size()));
    write_tensor_chunk(bytes);
}

void GgufWriter::finish() {
    if (next_tensor_ != tensors_.size() || tensor_written_ != 0)
        throw UsageError("GGUF writer: " + path_ + ": data for " +
                         std::to_string(tensors_.size() - next_tensor_) + " tensor(s) was not written");
    out_.close();
    if (!out_) throw Error(path_ + ": close failed");
}

std::vector<uint8_t> GgufWriter::to_bytes(const std::vector<std::span<const uint8_t>>& data) {
    if (data.size() != tensors_.size())
        throw UsageError("GGUF writer: data count does not match tensor count");
    std::vector<uint8_t> out = header_bytes();
    for (size_t i = 0; i < data.size(); ++i) {
        if (data[i].size() != tensors_[i].n_bytes)
            throw UsageError("GGUF writer: tensor '" + tensors_[i].name + "' data has the wrong size");
        out.insert(out.end(), data[i].begin(), data[i].end());
        out.resize(round_up(out.size(), alignment_), 0);
    }
    return out;
}

}  // namespace kinfer::gguf
