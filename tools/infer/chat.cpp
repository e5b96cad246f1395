// `infer chat`: an interactive conversation. Each turn renders the whole conversation with the chat
// template; the session's KV cache already holds the earlier turns, so only the new part is evaluated.
#include <cstdio>
#include <string>
#include <vector>

#include "tools/infer/args.hpp"
#include "tools/infer/commands.hpp"
#include "tools/infer/interrupt.hpp"
#include "tools/infer/line_reader.hpp"
#include "tools/infer/model_flags.hpp"
#include "tools/infer/user_text.hpp"

namespace kinfer::cli {
namespace {

std::string help_text() {
    return std::string(
               "usage: infer chat -m MODEL [--system TEXT] [options]\n\n"
               "A conversation with an instruct model. Type a message and press Enter; the reply\n"
               "streams to stdout. The conversation is kept: each turn is rendered with the model's\n"
               "chat template and the earlier turns are not evaluated again (their KV cache is reused).\n"
               "  exit, quit, bye, or Ctrl-D   leave\n"
               "  Ctrl-C                       stop the reply being written (the session goes on; a\n"
               "                               second Ctrl-C before the reply stops ends the program);\n"
               "                               at the prompt: drop the line being typed\n"
               "Messages are UTF-8 text in any language. When stdin is a terminal the line can be\n"
               "edited (arrows, Backspace, Home/End; ~/.editrc is read), with history (up/down arrows);\n"
               "the prompt and the echo go to stderr, so stdout holds only the replies, one per turn,\n"
               "each followed by a newline. The terminal must send UTF-8; its locale need not say so\n"
               "(when LANG is unset, C or POSIX, the input is read as UTF-8 all the same).\n"
               "Multi-line messages: text pasted into the terminal arrives whole, newlines included\n"
               "(terminals with bracketed paste: nearly all), and Enter sends it. To type one by hand,\n"
               "end a line with a backslash: the message goes on on the next line (prompt \"... \"). This\n"
               "holds for piped input too.\n"
               "When stdin is not a terminal (a pipe or a file), each input line is a user message and\n"
               "nothing else is printed: scripted conversations work.\n"
               "Input that is not valid UTF-8 is not sent: a note on stderr says where it is, and the\n"
               "chat goes on with the next message.\n"
               "When the conversation outgrows the context, the oldest turns are left out (the system\n"
               "message stays) and a note says so on stderr.\n\n") +
           model_flags_help() + "\n" + kGenerationFlagsHelp + "\n" + kLogFlagsHelp +
           "  (with --verbose, each turn's user text exactly as the model gets it, as a JSON string, its\n"
           "  prompt size in tokens, and the turn's token counts and speed go to stderr)\n\n"
           "example:\n"
           "  infer chat -m mistral-7b-instruct.gguf --system \"You are terse.\" --temp 0.7\n"
           "  printf 'Hi!\\nWhat did I just say?\\n' | infer chat -m mistral-7b-instruct.gguf --temp 0\n";
}

bool is_exit_command(const std::string& line) {
    return line == "exit" || line == "quit" || line == "bye";
}

std::string trim(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

int cmd_chat(int argc, char** argv) {
    ArgReader args("chat", argc, argv);
    ModelFlags mf;
    GenerationFlags gf;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(help_text().c_str(), stdout);
            return 0;
        } else if (parse_model_flag(args, mf) || parse_generation_flag(args, gf)) {
        } else {
            args.unknown();
        }
    }
    require_utf8(gf.system, "--system");
    for (const std::string& stop : gf.options.stop) require_utf8(stop, "--stop " + quoted(stop));
    finish_flags(mf, &gf);
    const Model model = load_model(mf);
    if (!model.has_chat_template() && !mf.quiet)
        log_line("warning: the model names no chat template; using " + model.chat_template_name() +
                 " (choose one with --chat-template)");
    if (mf.verbose) {
        log_line("chat template: " + model.chat_template_name() + ", seed " +
                 std::to_string(gf.options.sampling.seed));
        if (!gf.system.empty()) log_line("system: " + quoted(gf.system));
        if (!gf.options.stop.empty()) log_line("stop: " + quoted_list(gf.options.stop));
    }

    std::atomic<bool>& interrupted = install_interrupt_handler();
    gf.options.interrupt = &interrupted;
    LineReader reader(interrupted);
    if (!reader.note().empty() && !mf.quiet) log_line(reader.note());
    if (reader.interactive() && !mf.quiet)
        log_line("chat with " + model.description() +
                 "\n(exit, quit, bye or Ctrl-D to leave; Ctrl-C stops a reply; a line ending in \\ goes on)");

    Session session(model);
    std::vector<ChatMessage> history;
    if (!gf.system.empty()) history.push_back({"system", gf.system});
    const size_t first_turn = history.size();

    for (;;) {
        const UserInput input = reader.read();
        if (input.kind == UserInput::Kind::Interrupted) {  // Ctrl-C at the prompt: drop the line, ask again
            clear_interrupt();
            if (reader.interactive()) std::fputc('\n', stderr);
            continue;
        }
        if (input.kind == UserInput::Kind::End) {  // Ctrl-D or the end of the script
            if (reader.interactive()) std::fputc('\n', stderr);
            break;
        }
        if (!input.problem.empty()) {
            log_line("infer chat: message not sent: " + input.problem);
            continue;
        }
        const std::string text = trim(input.text);
        if (text.empty()) continue;
        if (is_exit_command(text)) break;

        history.push_back({"user", text});
        std::vector<int32_t> prompt = model.chat_prompt(history);
        size_t dropped = 0;
        while (int64_t(prompt.size()) >= session.n_ctx() && history.size() - first_turn > 1) {
            // Leave out the oldest exchange (user + assistant), keeping the system message.
            history.erase(history.begin() + long(first_turn), history.begin() + long(first_turn) + 2);
            ++dropped;
            prompt = model.chat_prompt(history);
        }
        if (dropped && !mf.quiet)
            log_line("note: the conversation outgrew the context of " + std::to_string(session.n_ctx()) +
                     " tokens; left out the oldest " + std::to_string(dropped) + " exchange(s)");
        if (mf.verbose)
            log_line("user: " + quoted(text) + " (" + std::to_string(count_characters(text)) +
                     " characters, " + std::to_string(text.size()) + " bytes; the prompt is " +
                     std::to_string(prompt.size()) + " tokens)");
        if (int64_t(prompt.size()) >= session.n_ctx()) {
            log_line("infer chat: this message is " + std::to_string(prompt.size()) +
                     " tokens with the template, too long for the context of " +
                     std::to_string(session.n_ctx()) + " tokens (raise --ctx)");
            history.pop_back();
            continue;
        }

        const GenerateResult r = session.chat(history, gf.options, [&](std::string_view piece) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
            return true;
        });
        std::fputc('\n', stdout);
        std::fflush(stdout);
        history.push_back({"assistant", trim(r.text)});

        if (r.stop_reason == StopReason::Interrupted) {
            clear_interrupt();
            if (!mf.quiet) log_line("[interrupted]");
        } else if (r.stop_reason == StopReason::ContextFull && !mf.quiet) {
            log_line("note: " + r.message);
        }
        if (mf.verbose) print_timings(r);
    }
    return 0;
}

}  // namespace kinfer::cli
