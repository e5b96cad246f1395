#pragma once
// Reads the user's lines for `infer chat`: with line editing and history (libedit) when stdin is a
// terminal and libedit was found at build time, else plain lines from stdin (scripted input, pipes).
#include <optional>
#include <string>

namespace kinfer::cli {

class LineReader {
  public:
    LineReader();
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    // The next line without its newline; nullopt at end of input (Ctrl-D). The prompt is shown (on stderr)
    // only when stdin is a terminal. A read cut short by Ctrl-C returns "".
    std::optional<std::string> read(const std::string& prompt);
    bool interactive() const { return interactive_; }

  private:
    bool interactive_;
    bool use_editline_;
};

}  // namespace kinfer::cli
