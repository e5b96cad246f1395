// `infer synth`: writes a Llama/Mistral-architecture GGUF with seeded random weights.
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "filetools/synth_model.hpp"
#include "gguf/gguf_file.hpp"
#include "tools/infer/args.hpp"
#include "tools/infer/commands.hpp"
#include "tools/infer/tensor_progress.hpp"
#include "tools/infer/user_text.hpp"

namespace kinfer::cli {
namespace {

constexpr const char* kDefaultVocab = KINFER_DATA_DIR "/vocab/mistral-v0.3-vocab.gguf";

std::string help_text() {
    const SynthParams t = synth_preset("tiny"), m = synth_preset("mistral-7b");
    char presets[512];
    std::snprintf(
        presets, sizeof presets,
        "  tiny        n_embd %u, %u layers, %u heads, %u KV heads, n_ff %u, ctx %u, rope base %g\n"
        "              (about 14 MB as Q4_K_M with a 32768-token vocabulary)\n"
        "  mistral-7b  n_embd %u, %u layers, %u heads, %u KV heads, n_ff %u, ctx %u, rope base %g:\n"
        "              the tensor table of Mistral-7B-v0.3 (4.37 GB as Q4_K_M)\n",
        t.n_embd, t.n_layer, t.n_head, t.n_head_kv, t.n_ff, t.n_ctx, double(t.rope_base), m.n_embd, m.n_layer,
        m.n_head, m.n_head_kv, m.n_ff, m.n_ctx, double(m.rope_base));
    return std::string(
               "usage: infer synth -o OUT.gguf [--preset NAME] [--type TYPE] [--seed N] [--vocab FILE|none]\n"
               "                   [hyperparameter flags] [--dry-run] [--quiet]\n\n"
               "Writes a Llama/Mistral-architecture GGUF with seeded random weights, for tests and "
               "benchmarks\n"
               "where no real model can be had. Tensor names, shapes and types are those of a real model of "
               "the\n"
               "same shape quantized by llama.cpp (the same recipes as `infer quantize`), and the file loads "
               "in\n"
               "llama.cpp. The same flags and seed give a byte-identical file. The model is written tensor "
               "by\n"
               "tensor (never held in memory), quantizing rows in parallel.\n\n"
               "Weights: every row is drawn from its own counter-based stream keyed by (seed, tensor name, "
               "row),\n"
               "approximately normal (a sum of four uniforms, bounded at 3.5 sigma). Scales are chosen so "
               "that\n"
               "activations stay in a sane range through all layers, as in a trained model:\n"
               "  token_embd          sigma 0.5 (so that the context, through the layers, weighs as much as "
               "the token)\n"
               "  *_norm              1 +- 0.1 (not all ones, so a kernel that ignores them is caught)\n"
               "  attn_q, attn_k      sigma 1.5/sqrt(n_embd) (attention scores with stddev ~2)\n"
               "  attn_v, ffn_gate, ffn_up   sigma 1/sqrt(n_embd) (variance preserving)\n"
               "  attn_output         sigma 1/sqrt(n_embd) / sqrt(2 n_layer) } residual branches: the "
               "stream\n"
               "  ffn_down            sigma 1/sqrt(n_ff) / sqrt(2 n_layer)   } grows only slowly with depth\n"
               "  output              sigma 3/sqrt(n_embd) times exp(0.5 N(0,1)) per row: logits with "
               "stddev ~3\n"
               "                      and a spread of token frequencies, so the top-1 token is rarely a near "
               "tie\n\n"
               "Presets (flags below override them):\n") +
           presets +
           "\nOptions:\n"
           "  -o, --output FILE   where to write (required unless --dry-run)\n"
           "  --preset NAME       tiny (default) or mistral-7b\n"
           "  --type TYPE         file type, as for `infer quantize` (default Q4_K_M); F32 also works\n"
           "  --seed N            random seed (default 0)\n"
           "  --vocab FILE|none   copy the tokenizer.* keys from FILE (default " +
           kDefaultVocab +
           ");\n"
           "                      none: a built-in byte-fallback vocabulary of --n-vocab tokens (>= 259)\n"
           "  --name TEXT         general.name\n"
           "  --n-embd N  --n-layer N  --n-head N  --n-head-kv N  --n-ff N\n"
           "  --n-vocab N         must match the vocabulary file's size, if one is used\n"
           "  --ctx N             llama.context_length\n"
           "  --rope-base X       llama.rope.freq_base\n"
           "  --rope-dim N        llama.rope.dimension_count (default: the head size)\n"
           "  --eps X             llama.attention.layer_norm_rms_epsilon\n"
           "  --dry-run           print the tensor table and sizes, write nothing\n"
           "  --quiet             no per-tensor lines\n";
}

struct Overrides {
    std::optional<std::string> name;
    std::optional<uint32_t> n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx, n_rot;
    std::optional<float> rope_base, eps;
};

}  // namespace

int cmd_synth(int argc, char** argv) {
    ArgReader args("synth", argc, argv);
    std::string preset = "tiny", out, vocab_path = kDefaultVocab, type_name_arg = "Q4_K_M";
    uint64_t seed = 0;
    bool quiet = false, dry_run = false;
    Overrides o;
    const auto u32 = [&args](int64_t lo = 1) {
        return static_cast<uint32_t>(args.int_value(lo, UINT32_MAX));
    };
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(help_text().c_str(), stdout);
            return 0;
        } else if (args.is("-o", "--output")) {
            out = args.value();
        } else if (args.is("--preset")) {
            preset = args.value();
        } else if (args.is("--type")) {
            type_name_arg = args.value();
        } else if (args.is("--seed")) {
            seed = static_cast<uint64_t>(args.int_value(0, INT64_MAX));
        } else if (args.is("--vocab")) {
            vocab_path = args.value();
        } else if (args.is("--name")) {
            o.name = args.value();
            require_utf8(*o.name, "--name");  // GGUF strings are UTF-8
        } else if (args.is("--n-embd")) {
            o.n_embd = u32();
        } else if (args.is("--n-layer")) {
            o.n_layer = u32();
        } else if (args.is("--n-head")) {
            o.n_head = u32();
        } else if (args.is("--n-head-kv")) {
            o.n_head_kv = u32();
        } else if (args.is("--n-ff")) {
            o.n_ff = u32();
        } else if (args.is("--n-vocab")) {
            o.n_vocab = u32();
        } else if (args.is("--ctx")) {
            o.n_ctx = u32();
        } else if (args.is("--rope-dim")) {
            o.n_rot = u32(0);
        } else if (args.is("--rope-base")) {
            o.rope_base = static_cast<float>(args.float_value());
        } else if (args.is("--eps")) {
            o.eps = static_cast<float>(args.float_value());
        } else if (args.is("--quiet", "-q")) {
            quiet = true;
        } else if (args.is("--dry-run")) {
            dry_run = true;
        } else {
            args.unknown();
        }
    }
    if (out.empty() && !dry_run) throw UsageError("needs -o OUT.gguf (see --help)");

    SynthParams p = synth_preset(preset);
    const FileTypeInfo* ftype = find_file_type(type_name_arg);
    if (!ftype) throw UsageError("unknown --type '" + type_name_arg + "' (known: " + file_type_names() + ")");
    p.file_type = ftype->id;
    p.seed = seed;
    if (o.name) p.name = *o.name;
    if (o.n_embd) p.n_embd = *o.n_embd;
    if (o.n_layer) p.n_layer = *o.n_layer;
    if (o.n_head) p.n_head = *o.n_head;
    if (o.n_head_kv) p.n_head_kv = *o.n_head_kv;
    if (o.n_ff) p.n_ff = *o.n_ff;
    if (o.n_vocab) p.n_vocab = *o.n_vocab;
    if (o.n_ctx) p.n_ctx = *o.n_ctx;
    if (o.n_rot) p.n_rot = *o.n_rot;
    if (o.rope_base) p.rope_base = *o.rope_base;
    if (o.eps) p.norm_eps = *o.eps;
    p.validate();

    std::optional<gguf::GgufFile> vocab;
    if (vocab_path != "none") {
        if (!std::filesystem::exists(vocab_path))
            throw UsageError("vocabulary file " + vocab_path +
                             " not found (pass --vocab FILE, or --vocab none)");
        vocab.emplace(gguf::GgufFile::open(vocab_path));
    }

    if (dry_run) {
        const uint32_t n_vocab = synth_vocab_size(p, vocab ? &*vocab : nullptr);
        const auto tensors = plan_synth_tensors(p, n_vocab);
        uint64_t bytes = 0, elems = 0;
        for (size_t i = 0; i < tensors.size(); ++i) {
            const auto& t = tensors[i];
            const uint64_t n = t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
            const uint64_t b = n / type_traits(t.type).block_elems * type_traits(t.type).block_bytes;
            bytes += b;
            elems += n;
            std::printf("%4zu %-32s %-5s %-14s %12" PRIu64 "\n", i, t.name.c_str(), type_name(t.type),
                        format_shape(t.ne, t.n_dims).c_str(), b);
        }
        std::printf("%zu tensors, %" PRIu64 " parameters, %" PRIu64
                    " bytes of tensor data, %.4f bits per weight\n",
                    tensors.size(), elems, bytes, 8.0 * double(bytes) / double(elems));
        return 0;
    }

    const auto t0 = std::chrono::steady_clock::now();
    TensorProgressPrinter printer(/*show_from=*/false, quiet);
    const SynthSummary s = write_synth_model(p, vocab ? &*vocab : nullptr, out, std::ref(printer));
    printer.clear_bar();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s: %s %s, seed %" PRIu64 ", %zu tensors, %" PRIu64 " parameters, n_vocab %u\n", out.c_str(),
                preset.c_str(), ftype->name, seed, s.n_tensors, s.n_elements, s.n_vocab);
    std::printf("  file size %" PRIu64 " bytes (%.2f GB), %.2f bits per weight, %.1f s\n", s.file_bytes,
                double(s.file_bytes) / 1e9, 8.0 * double(s.tensor_bytes) / double(s.n_elements), seconds);
    return 0;
}

}  // namespace kinfer::cli
