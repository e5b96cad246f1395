#pragma once
// Line editing on a terminal for `infer chat`, built on libedit (when it was found at build time). It reads
// the terminal's bytes itself and decodes them as UTF-8, so that: any character can be typed, and moves and
// deletes as one (Backspace, arrows); bytes that are not UTF-8 show as U+FFFD and are reported instead of
// being dropped without a word (libedit's own reader drops them); text pasted into a terminal with bracketed
// paste (xterm, GNOME, kitty, iTerm2, tmux, Windows Terminal, ...) is inserted whole, newlines included, and
// is sent when Enter is pressed.
#include <atomic>
#include <memory>
#include <string>

namespace kinfer::cli {

class LineEditor {
  public:
    struct Line {
        enum class Status { Text, End, Interrupted };
        Status status = Status::End;
        std::string text;   // Text: the line without its newline (pasted newlines stay)
        int bad_byte = -1;  // Text: the first byte that was not UTF-8 (shown as U+FFFD), or -1
    };

    // Null when the build has no libedit. LC_CTYPE must already be a UTF-8 locale (use_utf8_ctype).
    // `interrupted` is the Ctrl-C flag: a read it cuts short returns Interrupted.
    static std::unique_ptr<LineEditor> create(const std::atomic<bool>& interrupted);
    ~LineEditor();
    LineEditor(const LineEditor&) = delete;
    LineEditor& operator=(const LineEditor&) = delete;

    Line read(const std::string& prompt);
    void add_history(const std::string& text);  // up/down recall it

    struct Impl;

  private:
    explicit LineEditor(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace kinfer::cli
