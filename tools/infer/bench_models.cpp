#include "tools/infer/bench_models.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "filetools/synth_model.hpp"
#include "gguf/gguf_file.hpp"
#include "kinfer/error.hpp"
#include "tools/infer/tensor_progress.hpp"

namespace kinfer::cli {

const std::vector<std::string>& all_bench_types() {
    static const std::vector<std::string> types = {"Q2_K",   "Q3_K_M", "Q4_0", "Q4_K_M",
                                                   "Q5_K_M", "Q6_K",   "Q8_0", "F16"};
    return types;
}

std::string default_bench_dir() {
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
        return std::string(xdg) + "/kinfer/bench";
    if (const char* home = std::getenv("HOME"); home && *home)
        return std::string(home) + "/.cache/kinfer/bench";
    return "bench-models";
}

std::string bench_model_path(const BenchSynthSpec& spec, std::string_view type) {
    std::string variant;
    if (spec.vocab == "none")
        variant = "-bytes" + std::to_string(spec.n_vocab);
    else if (!spec.default_vocab)
        variant = "-" + std::filesystem::path(spec.vocab).stem().string();
    return (std::filesystem::path(spec.dir) / (spec.preset + variant + "-" + std::string(type) + ".gguf"))
        .string();
}

std::string ensure_bench_model(const BenchSynthSpec& spec, const std::string& type, bool quiet) {
    const FileTypeInfo* ftype = find_file_type(type);
    if (!ftype) throw UsageError("unknown type '" + type + "' (known: " + file_type_names() + ")");
    const std::string& dir = spec.dir;
    const std::string& preset = spec.preset;
    const std::string& vocab_path = spec.vocab;
    const std::string path = bench_model_path(spec, ftype->name);
    if (std::filesystem::exists(path)) {
        if (!quiet) std::fprintf(stderr, "infer bench: using %s\n", path.c_str());
        return path;
    }
    SynthParams p = synth_preset(preset);
    p.file_type = ftype->id;
    if (vocab_path == "none") p.n_vocab = spec.n_vocab;
    std::optional<gguf::GgufFile> vocab;
    if (vocab_path != "none") {
        if (!std::filesystem::exists(vocab_path))
            throw UsageError("vocabulary file " + vocab_path + " not found (infer bench --vocab FILE)");
        vocab.emplace(gguf::GgufFile::open(vocab_path));
    }
    // The file is written tensor by tensor: check first that it fits, rather than fail near the end.
    uint64_t bytes = vocab ? vocab->file_size() : 0;
    for (const auto& t : plan_synth_tensors(p, synth_vocab_size(p, vocab ? &*vocab : nullptr))) {
        const TypeTraits& tt = type_traits(t.type);
        bytes += t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3] / tt.block_elems * tt.block_bytes;
    }
    std::filesystem::create_directories(dir);
    const uint64_t free_bytes = std::filesystem::space(dir).available;
    if (free_bytes < bytes + (uint64_t(256) << 20))
        throw Error("not enough disk space in " + dir + " for " + path + ": it needs " + format_bytes(bytes) +
                    ", " + format_bytes(free_bytes) + " are free (choose another place with --dir)");

    if (!quiet)
        std::fprintf(stderr, "infer bench: synthesising %s (%s preset, %s, %s)\n", path.c_str(),
                     preset.c_str(), ftype->name, format_bytes(bytes).c_str());
    const bool tty = isatty(STDERR_FILENO) != 0;
    int last_tenth = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const auto progress = [&](const TensorProgress& ev) {
        if (quiet || ev.out_bytes_total == 0) return;
        const double done = double(ev.out_bytes_done) / double(ev.out_bytes_total);
        if (tty) {
            std::fprintf(stderr, "\r\033[K  %s: %3d%%", ftype->name, int(done * 100));
        } else if (int(done * 10) > last_tenth) {  // a line per 10% when stderr is a file or a pipe
            last_tenth = int(done * 10);
            std::fprintf(stderr, "  %s: %d%%\n", ftype->name, last_tenth * 10);
        }
    };
    write_synth_model(p, vocab ? &*vocab : nullptr, path, progress);
    if (!quiet) {
        if (tty) std::fputs("\r\033[K", stderr);
        std::fprintf(stderr, "  %s: written in %.1f s\n", ftype->name,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return path;
}

}  // namespace kinfer::cli
