#include "filetools/gguf_quantize.hpp"

#include <filesystem>

#include "gguf/gguf_file.hpp"
#include "gguf/gguf_writer.hpp"
#include "kernels/reference/type_kernels.hpp"
#include "kinfer/error.hpp"

namespace kinfer {
namespace {

bool is_float_type(GgmlType t) {
    return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
}

bool is_split_key(std::string_view k) {
    return k == "split.no" || k == "split.count" || k == "split.tensors.count";
}

}  // namespace

std::vector<TensorTypeChoice> plan_quantize(const gguf::GgufFile& in, FileType ftype) {
    std::vector<RecipeTensor> tensors;
    tensors.reserve(in.tensors().size());
    for (const auto& t : in.tensors()) {
        if (!is_float_type(t.type->type))
            throw FormatError(
                in.path() + ": tensor '" + std::string(t.name) + "' is already " + t.type->name +
                "; quantize takes models with F32, F16 or BF16 weights (requantizing loses accuracy "
                "and is not supported)");
        tensors.push_back({std::string(t.name), t.ne, t.type->type});
    }
    return plan_tensor_types(ftype, RecipeModel::from_gguf(in), tensors);
}

QuantizeSummary quantize_gguf(const gguf::GgufFile& in, const std::string& out_path, FileType ftype,
                              const ProgressFn& progress) {
    const auto plan = plan_quantize(in, ftype);
    std::error_code ec;
    if (std::filesystem::equivalent(in.path(), out_path, ec))
        throw UsageError("the output " + out_path + " is the input file");

    gguf::GgufWriter w;
    bool wrote_version = false, wrote_ftype = false;
    // keys keep their place; the two that change are replaced in place or added at the end, as llama.cpp does
    for (const auto& kv : in.metadata()) {
        if (is_split_key(kv.key)) continue;
        if (kv.key == "general.quantization_version") {
            w.add_u32(kv.key, 2);
            wrote_version = true;
        } else if (kv.key == "general.file_type") {
            w.add_u32(kv.key, static_cast<uint32_t>(ftype));
            wrote_ftype = true;
        } else {
            w.add_value(kv.key, kv.value);
        }
    }
    if (!wrote_version) w.add_u32("general.quantization_version", 2);
    if (!wrote_ftype) w.add_u32("general.file_type", static_cast<uint32_t>(ftype));

    QuantizeSummary sum;
    sum.n_tensors = in.tensors().size();
    for (size_t i = 0; i < plan.size(); ++i) {
        const auto& t = in.tensors()[i];
        w.add_tensor(t.name, plan[i].type, std::span<const uint64_t>(t.ne.data(), t.n_dims));
        sum.n_elements += t.n_elements();
        sum.in_tensor_bytes += t.n_bytes;
        sum.out_tensor_bytes += w.tensor_bytes(i);
        sum.n_fallback += plan[i].wanted ? 1 : 0;
    }

    sum.out_file_bytes = write_model_file(w, out_path, [&](gguf::GgufWriter& out) {
        TensorProgress ev;
        for (size_t i = 0; i < plan.size(); ++i) {
            const auto& t = in.tensors()[i];
            const TypeTraits& dst = type_traits(plan[i].type);
            ev.index = i;
            ev.count = plan.size();
            ev.name = t.name;
            ev.ne = t.ne;
            ev.n_dims = t.n_dims;
            ev.from = t.type->type;
            ev.to = dst.type;
            ev.wanted = plan[i].wanted;
            ev.in_bytes = t.n_bytes;
            ev.out_bytes = out.tensor_bytes(i);
            ev.out_bytes_total = sum.out_tensor_bytes;
            ev.finished = false;
            ev.fraction_done = 0;
            if (dst.type == t.type->type) {
                out.write_tensor_data({t.data, t.n_bytes});  // same type: the bytes as they are
                report_tensor_written(ev, progress);
                continue;
            }
            const TypeTraits& src = *t.type;
            const uint64_t row_len = t.ne[0], src_row = t.row_bytes();
            const auto fill = [&](uint64_t row, float* values) {
                ref::dequantize_fn(src)(t.data + row * src_row, values, static_cast<int64_t>(row_len));
            };
            stream_tensor_rows_reporting(out, dst, row_len, t.n_rows(), fill, ev, progress);
        }
    });
    return sum;
}

}  // namespace kinfer
