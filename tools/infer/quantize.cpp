// `infer quantize IN.gguf OUT.gguf TYPE`: converts a model with float weights to a quantized file type.
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <string>

#include "filetools/gguf_quantize.hpp"
#include "gguf/gguf_file.hpp"
#include "tools/infer/args.hpp"
#include "tools/infer/commands.hpp"
#include "tools/infer/tensor_progress.hpp"

namespace kinfer::cli {
namespace {

std::string help_text() {
    const std::string types = file_type_help();
    return "usage: infer quantize IN.gguf OUT.gguf TYPE [--quiet]\n"
           "       infer quantize --dry-run IN.gguf [OUT.gguf] TYPE\n\n"
           "Converts a model whose weights are F32, F16 or BF16 to TYPE. Every metadata key is copied;\n"
           "general.file_type is set to llama.cpp's id for TYPE and general.quantization_version to 2.\n"
           "Which tensor gets which type follows llama.cpp's recipes (src/llama-quant.cpp) for the llama\n"
           "architecture, so the result matches llama-quantize's tensor for tensor: 1-D tensors and norms\n"
           "keep their type, output.weight gets q6_K in the quantized types (q8_0 for Q8_0), and the\n"
           "_S/_M/_L mixes give attn_v, ffn_down and attn_output more bits on some layers. A tensor whose\n"
           "rows do not split into whole blocks of its type falls back to a wider type (q4_K -> q5_0,\n"
           "q6_K -> q8_0, ..., else f16), with a line saying so. Already-quantized inputs are refused.\n\n"
           "Progress (one line per tensor) goes to stderr; the summary (size, bits per weight) to stdout.\n\n"
           "TYPE (case-insensitive; Q3_K, Q4_K, Q5_K mean the _M mixes):\n" +
           types +
           "\n  --quiet     no per-tensor lines\n"
           "  --dry-run   print each tensor's planned type and the total size; write nothing\n";
}

}  // namespace

int cmd_quantize(int argc, char** argv) {
    ArgReader args("quantize", argc, argv);
    std::string positional[3];
    int n_pos = 0;
    bool quiet = false, dry_run = false;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(help_text().c_str(), stdout);
            return 0;
        } else if (args.is("--quiet", "-q")) {
            quiet = true;
        } else if (args.is("--dry-run")) {
            dry_run = true;
        } else if (args.is_positional() && n_pos < 3) {
            positional[n_pos++] = args.current();
        } else {
            args.unknown();
        }
    }
    // --dry-run needs no output path: IN TYPE
    if (dry_run && n_pos == 2) positional[2] = positional[1];
    if (n_pos < (dry_run ? 2 : 3)) throw UsageError("needs IN.gguf OUT.gguf TYPE (see --help)");
    const FileTypeInfo* ftype = find_file_type(positional[2]);
    if (!ftype) throw UsageError("unknown TYPE '" + positional[2] + "' (known: " + file_type_names() + ")");

    if (dry_run) {
        const gguf::GgufFile in = gguf::GgufFile::open(positional[0]);
        const auto plan = plan_quantize(in, ftype->id);
        uint64_t bytes = 0, elems = 0;
        for (size_t i = 0; i < plan.size(); ++i) {
            const auto& t = in.tensors()[i];
            const TypeTraits& to = type_traits(plan[i].type);
            bytes += row_bytes(to, t.ne[0]) * t.n_rows();
            elems += t.n_elements();
            std::printf("%4zu %-32s %-5s -> %-5s %-14s%s%s\n", i, std::string(t.name).c_str(), t.type->name,
                        to.name, format_shape(t.ne, t.n_dims).c_str(),
                        plan[i].wanted ? "  fallback from " : "",
                        plan[i].wanted ? type_name(*plan[i].wanted) : "");
        }
        std::printf("%zu tensors, %" PRIu64 " bytes of tensor data, %.4f bits per weight\n", plan.size(),
                    bytes, elems ? 8.0 * double(bytes) / double(elems) : 0.0);
        return 0;
    }

    const auto t0 = std::chrono::steady_clock::now();
    const gguf::GgufFile in = gguf::GgufFile::open(positional[0]);
    TensorProgressPrinter printer(/*show_from=*/true, quiet);
    const QuantizeSummary s = quantize_gguf(in, positional[1], ftype->id, std::ref(printer));
    printer.clear_bar();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    const double bpw = s.n_elements ? 8.0 * double(s.out_tensor_bytes) / double(s.n_elements) : 0.0;
    const double bpw_in = s.n_elements ? 8.0 * double(s.in_tensor_bytes) / double(s.n_elements) : 0.0;
    std::printf("%s: %s, %zu tensors, %" PRIu64 " parameters\n", positional[1].c_str(), ftype->name,
                s.n_tensors, s.n_elements);
    std::printf("  tensor data %s (%.2f bpw) -> %s (%.2f bits per weight)\n",
                format_bytes(s.in_tensor_bytes).c_str(), bpw_in, format_bytes(s.out_tensor_bytes).c_str(),
                bpw);
    std::printf("  file size %" PRIu64 " bytes (%.2f GB), %.1f s\n", s.out_file_bytes,
                double(s.out_file_bytes) / 1e9, seconds);
    if (s.n_fallback)
        std::printf(
            "  %zu of %zu tensors fell back to a wider type (rows not a multiple of the block size)\n",
            s.n_fallback, s.n_tensors);
    return 0;
}

}  // namespace kinfer::cli
