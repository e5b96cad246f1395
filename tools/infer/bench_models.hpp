#pragma once
// The model files of `infer bench --all-types`: one synthetic model per file type, with the tensor table of a
// real model (`infer synth --preset mistral-7b --type T`), written once to a cache directory and reused.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kinfer::cli {

// The file types --all-types measures: the common llama.cpp quantizations, from 2 to 16 bits.
const std::vector<std::string>& all_bench_types();

// $XDG_CACHE_HOME/kinfer/bench, else ~/.cache/kinfer/bench, else ./bench-models.
std::string default_bench_dir();

// How the synthetic models are made: `infer synth --preset PRESET --type T --vocab VOCAB` with seed 0.
struct BenchSynthSpec {
    std::string dir;
    std::string preset = "mistral-7b";
    std::string vocab;          // a vocabulary GGUF, or "none": a built-in byte-level one of n_vocab tokens
    bool default_vocab = true;  // `vocab` is the one `infer synth` uses by default
    uint32_t n_vocab = 32768;   // with vocab "none"
};

// The cached file of a type: DIR/PRESET-TYPE.gguf (byte for byte what `infer synth` writes with the same
// preset, type and the default vocabulary), DIR/PRESET-bytes<N>-TYPE.gguf with --vocab none and
// DIR/PRESET-<vocab file name>-TYPE.gguf with another vocabulary.
std::string bench_model_path(const BenchSynthSpec& spec, std::string_view type);

// Returns the cached file, synthesising it first when missing (progress on stderr; written under another
// name and renamed when complete, so an interrupted run leaves no file that looks cached). Checks the free
// disk space before writing.
std::string ensure_bench_model(const BenchSynthSpec& spec, const std::string& type, bool quiet);

}  // namespace kinfer::cli
