// `infer`: one binary, one subcommand per file in this folder. This file only dispatches and turns
// exceptions into one line on stderr: exit 1 for errors, 2 for bad usage.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "kinfer/error.hpp"
#include "tools/infer/commands.hpp"

namespace {

struct Command {
    const char* name;
    int (*run)(int, char**);
    const char* summary;
};

const Command kCommands[] = {
    {"run", kinfer::cli::cmd_run, "generate a completion, streamed to stdout (the default command)"},
    {"chat", kinfer::cli::cmd_chat, "interactive chat with an instruct model"},
    {"logits", kinfer::cli::cmd_logits, "write the logits of a token sequence (debugging, checks)"},
    {"inspect", kinfer::cli::cmd_inspect, "print a GGUF file's metadata and tensor table"},
    {"quantize", kinfer::cli::cmd_quantize,
     "convert an F32/F16/BF16 model to Q4_0 ... Q6_K, Q4_K_M, F16, BF16"},
    {"perplexity", kinfer::cli::cmd_perplexity, "perplexity of a text, KL-divergence against a base model"},
    {"convert", kinfer::cli::cmd_convert, "convert a Hugging Face Mistral/Llama checkpoint to GGUF"},
    {"synth", kinfer::cli::cmd_synth, "write a Llama/Mistral GGUF with seeded random weights"},
    {"tokenize", kinfer::cli::cmd_tokenize, "text to token ids with a model's tokenizer"},
    {"bench", kinfer::cli::cmd_bench, "tokens per second (prompt, generation), as llama-bench measures them"},
    {"serve", kinfer::cli::cmd_serve, "an OpenAI-compatible HTTP server with continuous batching"},
};

void print_usage(FILE* out) {
    std::fprintf(out,
                 "usage: infer <command> [options]   (infer <command> --help for details)\n"
                 "       infer -m MODEL -p PROMPT [options]   (the same as infer run ...)\n\n"
                 "kinfer runs quantized Llama/Mistral GGUF models on CPU and CUDA.\n\ncommands:\n");
    for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const std::string_view name = argv[1];
    if (name == "-h" || name == "--help" || name == "help") {
        print_usage(stdout);
        return 0;
    }
    // `infer -m MODEL -p PROMPT ...` (flags first, no command) means `infer run ...`.
    const bool implicit_run = name.size() > 1 && name[0] == '-';
    for (const auto& c : kCommands) {
        if (implicit_run ? std::string_view(c.name) != "run" : name != c.name) continue;
        try {
            return implicit_run ? c.run(argc - 1, argv + 1) : c.run(argc - 2, argv + 2);
        } catch (const kinfer::UsageError& e) {
            // ArgReader's messages already start with "<command>: "; say it once.
            std::string_view msg = e.what();
            const std::string prefix = std::string(c.name) + ": ";
            if (msg.substr(0, prefix.size()) == prefix) msg.remove_prefix(prefix.size());
            std::fprintf(stderr, "infer %s: %.*s\n", c.name, int(msg.size()), msg.data());
            return 2;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "infer %s: error: %s\n", c.name, e.what());
            return 1;
        }
    }
    std::fprintf(stderr, "infer: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
