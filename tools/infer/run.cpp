// `infer run` (also plain `infer -m MODEL -p PROMPT`): one completion, streamed to stdout.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "tools/infer/args.hpp"
#include "tools/infer/commands.hpp"
#include "tools/infer/interrupt.hpp"
#include "tools/infer/model_flags.hpp"
#include "tools/infer/user_text.hpp"

namespace kinfer::cli {
namespace {

std::string help_text() {
    return std::string(
               "usage: infer [run] -m MODEL (-p PROMPT | -f FILE) [options]\n\n"
               "Generates a completion of the prompt and streams it to stdout as it is produced (whole "
               "UTF-8\n"
               "characters only). stdout carries nothing but the model's text; timings (load time, prompt "
               "and\n"
               "generation tokens/s) go to stderr. Never interactive: stdin is read only for -f -.\n\n"
               "Prompt:\n"
               "  -p, --prompt TEXT     the prompt\n"
               "  -f, --file FILE       read the prompt from FILE (- for stdin); a UTF-8 byte order\n"
               "                        mark at its start is dropped\n"
               "  --raw                 use the prompt as is: no chat template (control-token texts such as\n"
               "                        [INST] are still recognised, and BOS is added unless the text "
               "starts\n"
               "                        with it)\n"
               "By default the prompt becomes the user message of the model's chat template (with --system "
               "as\n"
               "the system message) when the file has a template or --chat-template names one; a model\n"
               "without a template gets the raw prompt. The prompt, --system and --stop texts must be\n"
               "UTF-8 (any language); --verbose echoes them on stderr as JSON strings, as the model\n"
               "gets them.\n\n") +
           model_flags_help() + "\n" + kGenerationFlagsHelp + "\n" + kLogFlagsHelp +
           "\nExit status: 0 on success (also when the context filled up: a message says so on stderr);\n"
           "1 when the model cannot be used (missing, not GGUF, unsupported architecture or tensor type);\n"
           "2 for bad usage (unknown flag, prompt not valid UTF-8 or longer than the context); 130 when\n"
           "interrupted with Ctrl-C (a second Ctrl-C ends at once). Errors are one line on stderr.\n\n"
           "examples:\n"
           "  infer -m mistral.gguf -p \"Write a haiku about bandwidth\" -n 64 --temp 0\n"
           "  infer run -m mistral.gguf -f question.txt --system \"Answer briefly.\" --seed 42\n"
           "  infer -m base-model.gguf -p \"The capital of France is\" --raw -n 8 --stop .\n";
}

std::string read_prompt_file(const std::string& path) {
    std::ostringstream ss;
    if (path == "-") {
        ss << std::cin.rdbuf();
        return ss.str();
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot read prompt file '" + path + "': " + std::strerror(errno));
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

int cmd_run(int argc, char** argv) {
    ArgReader args("run", argc, argv);
    ModelFlags mf;
    GenerationFlags gf;
    std::string prompt, prompt_file;
    bool have_prompt = false;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(help_text().c_str(), stdout);
            return 0;
        } else if (parse_model_flag(args, mf) || parse_generation_flag(args, gf)) {
        } else if (args.is("-p", "--prompt")) {
            prompt = args.value();
            have_prompt = true;
        } else if (args.is("-f", "--file")) {
            prompt_file = args.value();
        } else if (args.is("--raw")) {
            gf.raw = true;
        } else {
            args.unknown();
        }
    }
    if (have_prompt && !prompt_file.empty()) throw UsageError("give the prompt with -p or -f, not both");
    if (!have_prompt && prompt_file.empty()) throw UsageError("missing -p PROMPT or -f FILE (see --help)");
    if (gf.raw && !gf.system.empty())
        throw UsageError("--system needs the chat template; it does not go with --raw");
    if (!prompt_file.empty()) prompt = without_bom(read_prompt_file(prompt_file));
    require_utf8(prompt, !have_prompt ? (prompt_file == "-" ? std::string("the prompt on stdin (-f -)")
                                                            : "the prompt file " + prompt_file)
                                      : "the prompt (-p)");
    require_utf8(gf.system, "--system");
    for (const std::string& stop : gf.options.stop) require_utf8(stop, "--stop " + quoted(stop));
    finish_flags(mf, &gf);

    double load_seconds = 0;
    const Model model = load_model(mf, &load_seconds);
    const bool templated =
        !gf.raw && (model.has_chat_template() || !mf.options.chat_template.empty() || !gf.system.empty());
    std::vector<ChatMessage> messages;
    if (!gf.system.empty()) messages.push_back({"system", gf.system});
    messages.push_back({"user", prompt});
    const std::vector<int32_t> tokens =
        templated ? model.chat_prompt(messages) : model.tokenize(prompt, true, true);
    if (mf.verbose) {
        if (!gf.system.empty()) log_line("system: " + quoted(gf.system));
        log_line((templated ? "user: " : "text: ") + quoted(prompt));
        if (!gf.options.stop.empty()) log_line("stop: " + quoted_list(gf.options.stop));
        log_line("prompt: " + std::to_string(tokens.size()) + " tokens" +
                 (templated ? ", chat template " + model.chat_template_name() : ", raw"));
        log_line("seed: " + std::to_string(gf.options.sampling.seed));
    }

    gf.options.interrupt = &install_interrupt_handler();
    Session session(model);
    bool wrote_text = false;
    const auto print = [&wrote_text](std::string_view text) {
        wrote_text = wrote_text || !text.empty();
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return true;
    };
    // Templated: the model's answer, as chat gives it; raw: the continuation of the text, leading space kept.
    const GenerateResult r =
        templated ? session.chat(messages, gf.options, print) : session.generate(tokens, gf.options, print);
    const bool stdout_tty = ::isatty(STDOUT_FILENO);
    if (stdout_tty) std::fputc('\n', stdout);
    std::fflush(stdout);
    // stdout carries only model text; when it is redirected the logs start on their own line of the terminal.
    if (!stdout_tty && wrote_text && !mf.quiet && ::isatty(STDERR_FILENO)) std::fputc('\n', stderr);

    if (!mf.quiet) {
        if (r.stop_reason == StopReason::ContextFull) log_line("infer: " + r.message);
        if (r.stop_reason == StopReason::Interrupted) log_line("infer: interrupted");
        if (mf.verbose) log_line(std::string("stop: ") + to_string(r.stop_reason));
        print_timings(r, load_seconds, model.backend());
    }
    return r.stop_reason == StopReason::Interrupted ? 130 : 0;
}

}  // namespace kinfer::cli
