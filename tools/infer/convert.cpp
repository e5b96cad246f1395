// `infer convert MODEL_DIR OUT.gguf [--type TYPE]`: a Hugging Face Mistral/Llama checkpoint to GGUF.
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <string>

#include "convert/hf_to_gguf.hpp"
#include "tools/infer/args.hpp"
#include "tools/infer/commands.hpp"
#include "tools/infer/tensor_progress.hpp"

namespace kinfer::cli {
namespace {

std::string help_text() {
    const std::string types = file_type_help();
    return "usage: infer convert MODEL_DIR OUT.gguf [--type TYPE] [--name NAME] [--quiet]\n\n"
           "Converts a Hugging Face MistralForCausalLM / LlamaForCausalLM folder to a GGUF file that kinfer\n"
           "and llama.cpp load (architecture \"llama\"). MODEL_DIR holds config.json, the weights\n"
           "(model.safetensors, or shards named by model.safetensors.index.json; F32, F16 or BF16) and\n"
           "tokenizer.json (SentencePiece-style BPE with byte fallback, as Llama 2 and Mistral use) with\n"
           "tokenizer_config.json / chat_template.jinja (special tokens, chat template).\n"
           "config.json may come from any transformers version: rope_theta at the top level or in\n"
           "rope_parameters, head_dim given or implied, torch_dtype or dtype, tied embeddings.\n"
           "Q and K rows are permuted to GGUF's RoPE layout. A quantized TYPE uses the same per-tensor\n"
           "recipe as `infer quantize` (from the exact weights, no intermediate file).\n\n"
           "Progress goes to stderr; the summary to stdout.\n\n"
           "TYPE (default F16):\n" +
           types +
           "\n  --name NAME  general.name (default: the folder's name)\n"
           "  --quiet      no per-tensor lines\n";
}

}  // namespace

int cmd_convert(int argc, char** argv) {
    ArgReader args("convert", argc, argv);
    std::string positional[2];
    int n_pos = 0;
    bool quiet = false;
    convert::ConvertOptions options;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(help_text().c_str(), stdout);
            return 0;
        } else if (args.is("--type", "-t")) {
            const std::string t = args.value();
            const FileTypeInfo* f = find_file_type(t);
            if (!f) throw UsageError("unknown --type '" + t + "' (known: " + file_type_names() + ")");
            options.ftype = f->id;
        } else if (args.is("--name")) {
            options.name = args.value();
        } else if (args.is("--quiet", "-q")) {
            quiet = true;
        } else if (args.is_positional() && n_pos < 2) {
            positional[n_pos++] = args.current();
        } else {
            args.unknown();
        }
    }
    if (n_pos < 2) throw UsageError("needs MODEL_DIR OUT.gguf (see --help)");

    const auto t0 = std::chrono::steady_clock::now();
    TensorProgressPrinter printer(/*show_from=*/true, quiet);
    const convert::ConvertSummary s =
        convert::convert_hf_to_gguf(positional[0], positional[1], options, std::ref(printer));
    printer.clear_bar();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto& c = s.config;
    std::printf("%s: %s, %s, %u layers, n_embd %u, %u heads (%u KV), vocab %u, %zu tensors, %" PRIu64
                " parameters\n",
                positional[1].c_str(), file_type_info(options.ftype).name, c.architecture.c_str(), c.n_layer,
                c.n_embd, c.n_head, c.n_head_kv, c.n_vocab, s.n_tensors, s.n_elements);
    std::printf("  tensor data %s -> %s (%.2f bits per weight), file %" PRIu64 " bytes, %.1f s\n",
                format_bytes(s.in_tensor_bytes).c_str(), format_bytes(s.out_tensor_bytes).c_str(),
                s.n_elements ? 8.0 * double(s.out_tensor_bytes) / double(s.n_elements) : 0.0,
                s.out_file_bytes, seconds);
    if (s.n_fallback)
        std::printf(
            "  %zu of %zu tensors fell back to a wider type (rows not a multiple of the block size)\n",
            s.n_fallback, s.n_tensors);
    return 0;
}

}  // namespace kinfer::cli
