#include "gguf/gguf_file.hpp"

#include <algorithm>
#include <cstring>
#include <sstream>

namespace kinfer::gguf {

namespace {

// Nested arrays deeper than this are refused: real files use depth 1, and unbounded recursion would let a
// hostile file overflow the stack.
constexpr int kMaxArrayDepth = 8;
// Upper bound on entries reserved from a count read from the file before the entries are parsed. A corrupt
// count in a large file (say 10^9 keys in a 20 GB model) must not turn into a huge allocation up front.
constexpr uint64_t kMaxReserve = 4096;

// Sequential bounds-checked reader over the file's bytes. Every failure names the field and its offset.
class Cursor {
  public:
    Cursor(const uint8_t* base, uint64_t size, const std::string& path)
        : base_(base), size_(size), path_(path) {}

    uint64_t pos() const { return pos_; }
    uint64_t remaining() const { return size_ - pos_; }

    [[noreturn]] void fail(uint64_t at, const std::string& what) const {
        std::ostringstream os;
        os << path_ << ": invalid GGUF at offset " << at << ": " << what;
        throw FormatError(os.str());
    }

    void need(uint64_t n, const char* field) const {
        if (n > remaining()) {
            std::ostringstream os;
            os << "truncated file: " << field << " needs " << n << " bytes, " << remaining() << " left";
            fail(pos_, os.str());
        }
    }

    template <class T>
    T read(const char* field) {
        need(sizeof(T), field);
        T v;
        std::memcpy(&v, base_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    std::string_view read_string(const char* field) {
        const uint64_t at = pos_;
        const uint64_t len = read<uint64_t>(field);
        if (len > remaining()) {
            std::ostringstream os;
            os << field << " length " << len << " exceeds the " << remaining() << " bytes left in the file";
            fail(at, os.str());
        }
        std::string_view s(reinterpret_cast<const char*>(base_ + pos_), len);
        pos_ += len;
        return s;
    }

    std::span<const uint8_t> take(uint64_t n, const char* field) {
        need(n, field);
        std::span<const uint8_t> s(base_ + pos_, n);
        pos_ += n;
        return s;
    }

  private:
    const uint8_t* base_;
    uint64_t size_;
    uint64_t pos_ = 0;
    const std::string& path_;
};

bool valid_value_type(uint32_t t) {
    return t <= static_cast<uint32_t>(ValueType::F64);
}

Value read_value(Cursor& c, ValueType type, int depth);

Array read_array(Cursor& c, int depth) {
    const uint64_t at = c.pos();
    if (depth >= kMaxArrayDepth) c.fail(at, "arrays nested deeper than " + std::to_string(kMaxArrayDepth));
    const uint32_t elem = c.read<uint32_t>("array element type");
    if (!valid_value_type(elem)) c.fail(at, "unknown array element type " + std::to_string(elem));
    Array a;
    a.type = static_cast<ValueType>(elem);
    const uint64_t count_at = c.pos();
    a.count = c.read<uint64_t>("array length");
    const size_t scalar = scalar_size(a.type);
    // Smallest possible encoding of one element: a scalar's size, a string's 8-byte length, an array's
    // 12-byte header. A count the remaining bytes cannot hold is refused before anything is allocated.
    const uint64_t min_elem = scalar ? scalar : (a.type == ValueType::STRING ? 8 : 12);
    if (a.count > c.remaining() / min_elem) {
        std::ostringstream os;
        os << "array length " << a.count << " of " << value_type_name(a.type) << " cannot fit in the "
           << c.remaining() << " bytes left in the file";
        c.fail(count_at, os.str());
    }
    if (scalar) {
        const uint64_t data_at = c.pos();
        a.raw = c.take(a.count * scalar, "array data");
        if (a.type == ValueType::BOOL)
            for (uint64_t i = 0; i < a.raw.size(); ++i)
                if (a.raw[i] > 1)
                    c.fail(data_at + i, "bool array item " + std::to_string(i) + " is " +
                                            std::to_string(a.raw[i]) + ", neither 0 nor 1");
    } else {
        // Reserve only what a small array needs: the count is a claim, and nested arrays could multiply it.
        // Growing as items are actually read keeps memory proportional to the bytes consumed.
        a.items.reserve(std::min<uint64_t>(a.count, kMaxReserve));
        for (uint64_t i = 0; i < a.count; ++i) a.items.push_back(read_value(c, a.type, depth + 1));
    }
    return a;
}

Value read_value(Cursor& c, ValueType type, int depth) {
    Value v;
    switch (type) {
        case ValueType::U8:
            v.v = c.read<uint8_t>("u8 value");
            break;
        case ValueType::I8:
            v.v = c.read<int8_t>("i8 value");
            break;
        case ValueType::U16:
            v.v = c.read<uint16_t>("u16 value");
            break;
        case ValueType::I16:
            v.v = c.read<int16_t>("i16 value");
            break;
        case ValueType::U32:
            v.v = c.read<uint32_t>("u32 value");
            break;
        case ValueType::I32:
            v.v = c.read<int32_t>("i32 value");
            break;
        case ValueType::F32:
            v.v = c.read<float>("f32 value");
            break;
        case ValueType::BOOL: {
            const uint64_t at = c.pos();
            const uint8_t b = c.read<uint8_t>("bool value");
            if (b > 1) c.fail(at, "bool value " + std::to_string(b) + " is neither 0 nor 1");
            v.v = b != 0;
            break;
        }
        case ValueType::STRING:
            v.v = c.read_string("string value");
            break;
        case ValueType::ARRAY:
            v.v = read_array(c, depth);
            break;
        case ValueType::U64:
            v.v = c.read<uint64_t>("u64 value");
            break;
        case ValueType::I64:
            v.v = c.read<int64_t>("i64 value");
            break;
        case ValueType::F64:
            v.v = c.read<double>("f64 value");
            break;
    }
    return v;
}

std::string quoted(std::string_view s) {
    std::string q;
    q.reserve(s.size() + 2);
    q.push_back('\'');
    q.append(s);
    q.push_back('\'');
    return q;
}

}  // namespace

// ---- parsing ---------------------------------------------------------------------------------------------
GgufFile GgufFile::open(const std::string& path) {
    GgufFile f;
    f.path_ = path;
    f.bytes_ = FileBytes::map(path);
    f.parse();
    return f;
}

GgufFile GgufFile::from_bytes(std::span<const uint8_t> bytes, std::string name) {
    GgufFile f;
    f.path_ = std::move(name);
    f.bytes_ = FileBytes::copy(bytes);
    f.parse();
    return f;
}

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

void GgufFile::parse() {
    base_ = bytes_.data();
    size_ = bytes_.size();
    Cursor c(base_, size_, path_);

    const uint32_t magic = c.read<uint32_t>("magic");
    if (magic != kMagic) {
        if (magic == 0x47475546) c.fail(0, "big-endian GGUF files are not supported");
        c.fail(0, "bad magic (not a GGUF file)");
    }
    const uint64_t version_at = c.pos();
    version_ = c.read<uint32_t>("version");
    if (version_ == 1) c.fail(version_at, "GGUF version 1 is not supported (only versions 2 and 3)");
    if (version_ != 2 && version_ != 3) {
        // A big-endian file has a little-endian-looking magic but a byte-swapped version.
        const uint32_t swapped = __builtin_bswap32(version_);
        if (swapped == 2 || swapped == 3) c.fail(version_at, "big-endian GGUF files are not supported");
        c.fail(version_at, "unsupported GGUF version " + std::to_string(version_) + " (only 2 and 3)");
    }
    const uint64_t n_tensors_at = c.pos();
    const uint64_t n_tensors = c.read<uint64_t>("tensor count");
    const uint64_t n_kv_at = c.pos();
    const uint64_t n_kv = c.read<uint64_t>("metadata key/value count");
    // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least
    // 8 + 4 + 8 + 4 + 8 bytes. Counts beyond that are lies, refused before reserving anything.
    if (n_kv > c.remaining() / 13)
        c.fail(n_kv_at, "metadata count " + std::to_string(n_kv) + " cannot fit in the file");
    if (n_tensors > c.remaining() / 32)
        c.fail(n_tensors_at, "tensor count " + std::to_string(n_tensors) + " cannot fit in the file");

    kvs_.reserve(std::min<uint64_t>(n_kv, kMaxReserve));
    for (uint64_t i = 0; i < n_kv; ++i) {
        const uint64_t at = c.pos();
        const std::string_view key = c.read_string("metadata key");
        if (key.empty()) c.fail(at, "empty metadata key");
        const uint64_t type_at = c.pos();
        const uint32_t type = c.read<uint32_t>("metadata value type");
        if (!valid_value_type(type))
            c.fail(type_at, "unknown value type " + std::to_string(type) + " for key " + quoted(key));
        Value v = read_value(c, static_cast<ValueType>(type), 0);
        if (!kv_index_.emplace(key, kvs_.size()).second) c.fail(at, "duplicate metadata key " + quoted(key));
        kvs_.push_back(KeyValue{key, std::move(v), at});
    }

    if (const Value* a = find("general.alignment")) {
        const uint64_t at = kvs_[kv_index_.at("general.alignment")].offset;
        if (a->type() != ValueType::U32) c.fail(at, "general.alignment must be a u32");
        const uint32_t al = std::get<uint32_t>(a->v);
        if (al == 0 || (al & (al - 1)) != 0)
            c.fail(at, "general.alignment " + std::to_string(al) + " is not a power of two");
        alignment_ = al;
    }

    tensors_.reserve(std::min<uint64_t>(n_tensors, kMaxReserve));
    std::vector<uint64_t> offset_field_at;  // file offset of each tensor's data-offset field, for messages
    offset_field_at.reserve(std::min<uint64_t>(n_tensors, kMaxReserve));
    for (uint64_t i = 0; i < n_tensors; ++i) {
        const uint64_t at = c.pos();
        TensorView t;
        t.name = c.read_string("tensor name");
        if (t.name.empty()) c.fail(at, "tensor " + std::to_string(i) + " has an empty name");
        const std::string tname = "tensor " + quoted(t.name);
        if (!tensor_index_.emplace(t.name, tensors_.size()).second)
            c.fail(at, "duplicate tensor name " + quoted(t.name));
        const uint64_t dims_at = c.pos();
        t.n_dims = c.read<uint32_t>("tensor dimension count");
        if (t.n_dims < 1 || t.n_dims > kMaxDims)
            c.fail(dims_at, tname + " has " + std::to_string(t.n_dims) + " dimensions (1 to 4 allowed)");
        uint64_t n_elems = 1;
        for (uint32_t d = 0; d < t.n_dims; ++d) {
            const uint64_t d_at = c.pos();
            const uint64_t ne = c.read<uint64_t>("tensor dimension");
            const std::string field = tname + " ne[" + std::to_string(d) + "]";
            if (ne == 0) c.fail(d_at, field + " is zero");
            if (ne > uint64_t(INT64_MAX) || n_elems > uint64_t(INT64_MAX) / ne)
                c.fail(d_at, field + " = " + std::to_string(ne) + ": element count overflows 64 bits");
            n_elems *= ne;
            t.ne[d] = ne;
        }
        const uint64_t type_at = c.pos();
        const uint32_t type_id = c.read<uint32_t>("tensor type");
        t.type = find_type(type_id);
        if (!t.type) c.fail(type_at, tname + " has unknown ggml type id " + std::to_string(type_id));
        if (t.ne[0] % t.type->block_elems != 0)
            c.fail(dims_at + 4, tname + " row length ne[0] = " + std::to_string(t.ne[0]) +
                                    " is not a multiple of the " + t.type->name + " block size " +
                                    std::to_string(t.type->block_elems));
        const uint64_t n_blocks = n_elems / t.type->block_elems;
        if (n_blocks > UINT64_MAX / t.type->block_bytes)
            c.fail(dims_at, tname + " byte size (" + std::to_string(n_elems) + " " + t.type->name +
                                " elements) overflows 64 bits");
        t.n_bytes = n_blocks * t.type->block_bytes;
        const uint64_t off_at = c.pos();
        t.offset = c.read<uint64_t>("tensor data offset");
        if (t.offset % alignment_ != 0)
            c.fail(off_at, tname + " data offset " + std::to_string(t.offset) +
                               " is not a multiple of the alignment " + std::to_string(alignment_));
        tensors_.push_back(t);
        offset_field_at.push_back(off_at);
    }

    // The data section starts at the next multiple of the alignment after the tensor table. A file without
    // tensors needs no data section, and writers (llama.cpp's included) may omit its padding: then the
    // (empty) data section starts right after the header. data_offset_ <= size_ always holds.
    const uint64_t pad = (alignment_ - c.pos() % alignment_) % alignment_;
    data_offset_ = c.pos() + pad;
    if (data_offset_ > size_) {
        if (!tensors_.empty()) {
            std::ostringstream os;
            os << "truncated file: the tensor data section should start at offset " << data_offset_
               << " (alignment " << alignment_ << ") but the file has " << size_ << " bytes";
            c.fail(c.pos(), os.str());
        }
        data_offset_ = c.pos();
    }
    const uint64_t data_size = size_ - data_offset_;
    for (size_t i = 0; i < tensors_.size(); ++i) {
        TensorView& t = tensors_[i];
        if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
            std::ostringstream os;
            os << "tensor " << quoted(t.name) << " data (" << t.n_bytes << " bytes at data offset "
               << t.offset << ", file offset " << data_offset_ << " + " << t.offset
               << ") runs past the end of the file (" << size_ << " bytes)";
            c.fail(offset_field_at[i], os.str());
        }
        t.data = base_ + data_offset_ + t.offset;
    }
}

// ---- lookups ---------------------------------------------------------------------------------------------
const Value* GgufFile::find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const Array& GgufFile::get_array(std::string_view key) const {
    const Value* v = find(key);
    if (!v) detail::throw_missing_key(path_, key);
    if (!v->is_array()) detail::throw_bad_value(path_, key, "array", *v);
    return v->as_array();
}

const TensorView* GgufFile::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorView& GgufFile::tensor(std::string_view name) const {
    if (const TensorView* t = find_tensor(name)) return *t;
    throw FormatError(path_ + ": missing tensor '" + std::string(name) + "'");
}

namespace detail {
void throw_bad_value(const std::string& path, std::string_view key, const char* wanted, const Value& v) {
    throw FormatError(path + ": metadata key '" + std::string(key) + "' should be " + wanted + ", found " +
                      value_type_name(v.type()) + " " + to_display_string(v, 4));
}
void throw_missing_key(const std::string& path, std::string_view key) {
    throw FormatError(path + ": missing metadata key '" + std::string(key) + "'");
}
}  // namespace detail

std::string shape_string(std::span<const uint64_t> ne) {
    std::string s = "[";
    for (size_t d = 0; d < ne.size(); ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
    return s + "]";
}

}  // namespace kinfer::gguf
