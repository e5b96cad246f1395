#include "tools/infer/line_reader.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "tools/infer/user_text.hpp"
#include "tools/infer/utf8_locale.hpp"

namespace kinfer::cli {

LineReader::LineReader(const std::atomic<bool>& interrupted)
    : interrupted_(interrupted), interactive_(::isatty(STDIN_FILENO) == 1) {
    if (!interactive_) return;
    const Utf8Locale locale = use_utf8_ctype();
    note_ = locale.note;
    if (locale.ok) editor_ = LineEditor::create(interrupted);
}

LineReader::~LineReader() = default;

UserInput LineReader::read() {
    UserInput input;
    if (end_pending_) return input;
    bool first = true;
    for (;;) {
        RawLine line = read_line(first ? "> " : "... ");
        if (line.kind == UserInput::Kind::Interrupted) return {UserInput::Kind::Interrupted, "", ""};
        if (line.kind == UserInput::Kind::End) {
            if (first) return input;
            end_pending_ = true;  // send what was written so far
            break;
        }
        if (input.problem.empty()) input.problem = line.problem;
        const bool continued = !line.text.empty() && line.text.back() == '\\';
        if (continued) line.text.pop_back();
        input.text += line.text;
        first = false;
        if (!continued) break;
        input.text += '\n';
    }
    input.kind = UserInput::Kind::Message;
    if (editor_ && input.problem.empty()) editor_->add_history(input.text);
    return input;
}

LineReader::RawLine LineReader::read_line(const std::string& prompt) {
    if (!editor_) return read_plain_line(prompt);
    const LineEditor::Line line = editor_->read(prompt);
    RawLine out;
    switch (line.status) {
        case LineEditor::Line::Status::End:
            out.kind = UserInput::Kind::End;
            break;
        case LineEditor::Line::Status::Interrupted:
            out.kind = UserInput::Kind::Interrupted;
            break;
        case LineEditor::Line::Status::Text:
            out.kind = UserInput::Kind::Message;
            out.text = line.text;
            if (line.bad_byte >= 0) {
                char byte[8];
                std::snprintf(byte, sizeof byte, "0x%02X", line.bad_byte);
                out.problem = std::string("the terminal sent a byte that is not UTF-8 (") + byte +
                              ", shown as \xEF\xBF\xBD); set its character encoding to UTF-8";
            }
            break;
    }
    return out;
}

LineReader::RawLine LineReader::read_plain_line(const std::string& prompt) {
    if (interactive_) {
        std::fputs(prompt.c_str(), stderr);
        std::fflush(stderr);
    }
    // Plain stdio: a read interrupted by a signal (Ctrl-C) gives Interrupted; end of input gives End.
    RawLine out;
    for (;;) {
        errno = 0;
        const int c = std::fgetc(stdin);
        if (c == EOF) {
            std::clearerr(stdin);
            if (errno == EINTR && interrupted_.load()) {
                out.kind = UserInput::Kind::Interrupted;
                return out;
            }
            if (errno == EINTR) continue;
            if (out.text.empty()) return out;  // End
            break;                             // a last line without a newline
        }
        if (c == '\n') break;
        out.text.push_back(static_cast<char>(c));
    }
    ++line_number_;
    if (!out.text.empty() && out.text.back() == '\r') out.text.pop_back();
    out.kind = UserInput::Kind::Message;
    if (const std::string problem = utf8_problem(out.text); !problem.empty())
        out.problem =
            (interactive_ ? std::string("the line") : "input line " + std::to_string(line_number_)) +
            " is not valid UTF-8 (" + problem + ")";
    return out;
}

}  // namespace kinfer::cli
