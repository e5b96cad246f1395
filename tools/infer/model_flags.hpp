#pragma once
// Flags shared by `infer run` and `infer chat` (and partly `infer logits`): the model and how to run it,
// sampling and generation limits, and the reporting of timings to stderr.
#include <string>

#include "kinfer/kinfer.hpp"
#include "tools/infer/args.hpp"

namespace kinfer::cli {

struct ModelFlags {
    std::string path;
    ModelOptions options;
    bool verbose = false;
    bool quiet = false;
    bool ctx_given = false;
};

struct GenerationFlags {
    GenerateOptions options;
    bool seed_given = false;
    std::string system;  // --system
    bool raw = false;    // --raw: no chat template
};

// Each returns true when the current argument was one of its flags (and consumes its value).
bool parse_model_flag(ArgReader& args, ModelFlags& flags);
bool parse_generation_flag(ArgReader& args, GenerationFlags& flags);

// Help paragraphs for the flags above.
std::string model_flags_help();
extern const char* const kGenerationFlagsHelp;
extern const char* const kLogFlagsHelp;

// Checks required flags, picks a random seed when none was given, installs the warning logger.
void finish_flags(ModelFlags& model, GenerationFlags* gen);
// Loads the model; *seconds receives the time it took. Prints the description to stderr with --verbose.
Model load_model(const ModelFlags& flags, double* seconds = nullptr);
// "load: S s" (when load_seconds >= 0), "prompt: N tokens in S s, R tokens/s" and "generate: ..." on stderr.
void print_timings(const GenerateResult& r, double load_seconds = -1, const std::string& backend = "");

// Logging to stderr (never stdout).
void log_line(const std::string& line);

}  // namespace kinfer::cli
