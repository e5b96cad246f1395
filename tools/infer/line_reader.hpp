#pragma once
// Reads the user's messages for `infer chat`: with line editing and history (line_editor.hpp) when stdin is
// a terminal, else plain lines from stdin (scripted input, pipes). Either way a line that ends with a
// backslash continues on the next one, and text that is not valid UTF-8 is reported, never passed on.
#include <atomic>
#include <memory>
#include <string>

#include "tools/infer/line_editor.hpp"

namespace kinfer::cli {

struct UserInput {
    enum class Kind { Message, End, Interrupted };
    Kind kind = Kind::End;
    std::string text;     // Message: the lines, joined with '\n' where a backslash continued them
    std::string problem;  // Message: non-empty when the text is not valid UTF-8 (a sentence saying where);
                          // the text must then not be sent
};

class LineReader {
  public:
    // `interrupted` is the Ctrl-C flag (interrupt.hpp). On a terminal this picks a UTF-8 LC_CTYPE locale.
    explicit LineReader(const std::atomic<bool>& interrupted);
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    // The next message. End at end of input (Ctrl-D); Interrupted when Ctrl-C cut the reading short.
    UserInput read();
    bool interactive() const { return interactive_; }
    // A line for stderr about how input is read (a locale problem), "" if all is well.
    const std::string& note() const { return note_; }

  private:
    struct RawLine {
        UserInput::Kind kind = UserInput::Kind::End;
        std::string text;
        std::string problem;
    };
    RawLine read_line(const std::string& prompt);
    RawLine read_plain_line(const std::string& prompt);

    const std::atomic<bool>& interrupted_;
    bool interactive_;
    std::unique_ptr<LineEditor> editor_;  // null: plain reading
    std::string note_;
    long line_number_ = 0;      // of plain input, for messages
    bool end_pending_ = false;  // end of input came inside a continued message: report it next time
};

}  // namespace kinfer::cli
