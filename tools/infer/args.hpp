#pragma once
// Minimal command-line reader shared by every subcommand: each subcommand loops over its arguments and
// asks "is this flag X?"; unknown flags become UsageError (exit status 2).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kinfer/error.hpp"

namespace kinfer::cli {

class ArgReader {
  public:
    ArgReader(std::string command, int argc, char** argv);

    // Advances to the next argument; false at the end.
    bool next();
    // True if the current argument is one of the given flag spellings ("--json" or "--ctx=512" style).
    bool is(std::string_view a, std::string_view b = {});
    bool is_help() { return is("-h", "--help"); }
    bool is_positional() const;
    const std::string& current() const { return cur_; }

    // The value of the current flag (next argument, or text after '='). Throws UsageError if missing.
    std::string value();
    int64_t int_value(int64_t min, int64_t max);
    double float_value();
    [[noreturn]] void unknown() const;

  private:
    std::string command_;
    std::vector<std::string> args_;
    size_t i_ = 0;
    std::string cur_;
    std::string flag_;
    std::string inline_value_;
    bool has_inline_ = false;
    bool inline_used_ = false;  // value() consumed the "=..." part
};

}  // namespace kinfer::cli
