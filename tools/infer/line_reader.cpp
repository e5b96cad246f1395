#include "tools/infer/line_reader.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#if defined(KINFER_HAVE_LIBEDIT)
#include <editline/readline.h>
#endif

namespace kinfer::cli {

LineReader::LineReader() : interactive_(::isatty(STDIN_FILENO) == 1) {
#if defined(KINFER_HAVE_LIBEDIT)
    use_editline_ = interactive_;
    if (use_editline_) {
        rl_outstream = stderr;  // prompt and echo on stderr: stdout carries only the model's text
        using_history();
    }
#else
    use_editline_ = false;
#endif
}

LineReader::~LineReader() = default;

std::optional<std::string> LineReader::read(const std::string& prompt) {
#if defined(KINFER_HAVE_LIBEDIT)
    if (use_editline_) {
        char* line = readline(prompt.c_str());
        if (!line) return std::nullopt;
        std::string s(line);
        std::free(line);
        if (!s.empty()) add_history(s.c_str());
        return s;
    }
#endif
    if (interactive_) {
        std::fputs(prompt.c_str(), stderr);
        std::fflush(stderr);
    }
    // Plain stdio: a read interrupted by a signal (Ctrl-C) gives an empty line; end of input gives nullopt.
    std::string s;
    for (;;) {
        errno = 0;
        const int c = std::fgetc(stdin);
        if (c == EOF) {
            if (errno == EINTR) {
                std::clearerr(stdin);
                return std::string();
            }
            if (s.empty()) return std::nullopt;
            return s;
        }
        if (c == '\n') {
            if (!s.empty() && s.back() == '\r') s.pop_back();
            return s;
        }
        s.push_back(static_cast<char>(c));
    }
}

}  // namespace kinfer::cli
