// `infer inspect FILE [--json]`: the header, every metadata key, the tensor table and per-type totals.
#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "gguf/gguf_file.hpp"
#include "tools/infer/args.hpp"
#include "tools/infer/commands.hpp"

namespace kinfer::cli {
namespace {

const char* kHelp =
    "usage: infer inspect FILE.gguf [--json] [--max-items N]\n\n"
    "Prints the GGUF version, every metadata key with its type and value (long arrays show their first\n"
    "items and their length), one line per tensor (index, name, type, shape [ne0, ne1, ne2, ne3] with ne0\n"
    "the row length, bytes, data offset), then bytes per tensor type and the file's bits per weight.\n"
    "A malformed file is reported with the field and file offset at fault, and exit status 1.\n\n"
    "  --json          one JSON document instead of text\n"
    "  --max-items N   array items shown before abbreviating (default 8; 0 = all)\n";

struct TypeTotal {
    uint64_t tensors = 0, elements = 0, bytes = 0;
    double bits_per_weight() const { return elements ? 8.0 * double(bytes) / double(elements) : 0.0; }
};

// All four sizes, as llama.cpp's gguf dump shows them.
std::string all_dims(const gguf::TensorView& t) {
    return gguf::shape_string(t.ne);
}

using nlohmann::ordered_json;

ordered_json float_json(double x, bool is_f32) {
    if (!std::isfinite(x)) return nullptr;  // JSON has no inf / nan
    if (!is_f32) return x;
    // The fewest digits that read back to the same float: 0.1f is shown as 0.1, not 0.10000000149011612.
    char buf[32];
    const auto end = std::to_chars(buf, buf + sizeof buf - 1, float(x)).ptr;
    *end = '\0';
    return std::strtod(buf, nullptr);
}

ordered_json value_json(const gguf::Value& v, size_t max_items);

// Element i of an array, whatever its element type.
ordered_json array_item(const gguf::Array& a, uint64_t i, size_t max_items) {
    switch (a.type) {
        case gguf::ValueType::STRING:
        case gguf::ValueType::ARRAY:
            return value_json(a.items[i], max_items);
        case gguf::ValueType::BOOL:
            return a.scalar_at<bool>(i);
        case gguf::ValueType::F32:
        case gguf::ValueType::F64:
            return float_json(a.scalar_at<double>(i), a.type == gguf::ValueType::F32);
        case gguf::ValueType::U64:
            return a.scalar_at<uint64_t>(i);
        default:
            return a.scalar_at<int64_t>(i);
    }
}

// A metadata value as JSON; arrays longer than max_items (> 0) end with a "... N more" string.
ordered_json value_json(const gguf::Value& v, size_t max_items) {
    switch (v.type()) {
        case gguf::ValueType::ARRAY: {
            const gguf::Array& a = v.as_array();
            const uint64_t shown = max_items == 0 ? a.count : std::min<uint64_t>(a.count, max_items);
            ordered_json out = ordered_json::array();
            for (uint64_t i = 0; i < shown; ++i) out.push_back(array_item(a, i, max_items));
            if (shown < a.count) out.push_back("... " + std::to_string(a.count - shown) + " more");
            return out;
        }
        case gguf::ValueType::STRING:
            return std::string(v.as_string());  // invalid UTF-8 becomes U+FFFD when dumped
        case gguf::ValueType::BOOL:
            return std::get<bool>(v.v);
        case gguf::ValueType::F32:
        case gguf::ValueType::F64:
            return float_json(v.as_f64(), v.type() == gguf::ValueType::F32);
        case gguf::ValueType::U64:
            return v.as_u64();
        default:
            return v.as_i64();
    }
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
    ArgReader args("inspect", argc, argv);
    std::string path;
    bool json = false;
    size_t max_items = 8;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(kHelp, stdout);
            return 0;
        } else if (args.is("--json")) {
            json = true;
        } else if (args.is("--max-items")) {
            max_items = static_cast<size_t>(args.int_value(0, INT32_MAX));
        } else if (args.is_positional() && path.empty()) {
            path = args.current();
        } else {
            args.unknown();
        }
    }
    if (path.empty()) throw UsageError("missing FILE (see --help)");

    const gguf::GgufFile file = gguf::GgufFile::open(path);
    std::map<std::string, TypeTotal> totals;
    uint64_t total_elems = 0, total_bytes = 0;
    for (const auto& t : file.tensors()) {
        auto& tt = totals[t.type->name];
        ++tt.tensors;
        tt.elements += t.n_elements();
        tt.bytes += t.n_bytes;
        total_elems += t.n_elements();
        total_bytes += t.n_bytes;
    }
    const double bpw = total_elems ? 8.0 * double(total_bytes) / double(total_elems) : 0.0;

    if (json) {
        // Keys in the order of the text output (ordered_json); long arrays abbreviated as in the text.
        const auto rounded4 = [](double x) { return std::round(x * 1e4) / 1e4; };
        ordered_json doc = {{"path", path},
                            {"version", file.version()},
                            {"file_size", file.file_size()},
                            {"alignment", file.alignment()},
                            {"data_offset", file.data_offset()}};
        ordered_json metadata = ordered_json::array();
        for (const auto& kv : file.metadata()) {
            std::string type = gguf::value_type_name(kv.value.type());
            ordered_json entry = {{"key", kv.key}};
            if (kv.value.is_array()) {
                type += "[" + std::string(gguf::value_type_name(kv.value.as_array().type)) + "]";
                entry["type"] = type;
                entry["count"] = kv.value.as_array().count;
            } else {
                entry["type"] = type;
            }
            entry["value"] = value_json(kv.value, max_items);
            metadata.push_back(std::move(entry));
        }
        doc["metadata"] = std::move(metadata);
        ordered_json tensors = ordered_json::array();
        size_t i = 0;
        for (const auto& t : file.tensors())
            tensors.push_back({{"index", i++},
                               {"name", t.name},
                               {"type", t.type->name},
                               {"shape", t.ne},
                               {"bytes", t.n_bytes},
                               {"offset", t.offset},
                               {"file_offset", file.data_offset() + t.offset}});
        doc["tensors"] = std::move(tensors);
        ordered_json by_type = ordered_json::object();
        for (const auto& [name, tt] : totals)
            by_type[name] = {{"tensors", tt.tensors},
                             {"elements", tt.elements},
                             {"bytes", tt.bytes},
                             {"bits_per_weight", rounded4(tt.bits_per_weight())}};
        doc["totals"] = std::move(by_type);
        doc["tensor_count"] = file.tensors().size();
        doc["parameters"] = total_elems;
        doc["tensor_bytes"] = total_bytes;
        doc["bits_per_weight"] = rounded4(bpw);
        const std::string out = doc.dump(2, ' ', false, ordered_json::error_handler_t::replace) + "\n";
        std::fputs(out.c_str(), stdout);
        return 0;
    }

    std::printf("%s: GGUF v%u, %zu metadata keys, %zu tensors, %" PRIu64
                " bytes, alignment %u, data at %" PRIu64 "\n",
                path.c_str(), file.version(), file.metadata().size(), file.tensors().size(), file.file_size(),
                file.alignment(), file.data_offset());
    std::printf("\nmetadata:\n");
    size_t i = 0;
    for (const auto& kv : file.metadata()) {
        std::string type = gguf::value_type_name(kv.value.type());
        if (kv.value.is_array())
            type += "[" + std::string(gguf::value_type_name(kv.value.as_array().type)) + "," +
                    std::to_string(kv.value.as_array().count) + "]";
        std::printf("  %3zu: %-42s %-18s = %s\n", i++, gguf::escape_for_display(kv.key).c_str(), type.c_str(),
                    gguf::to_display_string(kv.value, max_items).c_str());
    }
    if (!file.tensors().empty()) {
        std::printf(
            "\ntensors: index, name, type, shape [ne0 (row length), ne1, ne2, ne3], bytes, file offset\n");
        i = 0;
        for (const auto& t : file.tensors())
            std::printf("  %4zu: %-32s %-6s %-28s %12" PRIu64 " bytes  @ %" PRIu64 "\n", i++,
                        gguf::escape_for_display(t.name).c_str(), t.type->name, all_dims(t).c_str(),
                        t.n_bytes, file.data_offset() + t.offset);
        std::printf("\ntotals by type:\n");
        for (const auto& [name, tt] : totals)
            std::printf("  %-7s %4" PRIu64 " tensors %14" PRIu64 " elements %14" PRIu64
                        " bytes (%.2f MiB) %8.4f bits per weight\n",
                        name.c_str(), tt.tensors, tt.elements, tt.bytes, double(tt.bytes) / (1 << 20),
                        tt.bits_per_weight());
    }
    std::printf("\n%zu tensors, %" PRIu64 " parameters, %" PRIu64
                " bytes of tensor data, %.4f bits per weight\n",
                file.tensors().size(), total_elems, total_bytes, bpw);
    return 0;
}

}  // namespace kinfer::cli
