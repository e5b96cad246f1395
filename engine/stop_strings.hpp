#pragma once
// Stop strings over streamed text. Text that might be the start of a stop string is held back until it
// is known not to be; at a match the text is cut right before it; at the end, whatever is still held
// is flushed. The same matcher serves streaming and non-streaming generation, so both give the same text.
#include <string>
#include <string_view>
#include <vector>

namespace kinfer::engine {

class StopStringMatcher {
  public:
    explicit StopStringMatcher(std::vector<std::string> stops = {});

    // Adds decoded text; returns the part that is now safe to show. Once a stop string is found, the
    // returned text ends right before it, stopped() becomes true, and later calls return "".
    std::string push(std::string_view text);
    // At the end of generation: the text still held back (a partial match that never completed).
    std::string flush();

    bool stopped() const { return stopped_; }
    const std::string& matched() const { return matched_; }  // the stop string that matched

  private:
    std::vector<std::string> stops_;
    std::string pending_;
    bool stopped_ = false;
    std::string matched_;
};

}  // namespace kinfer::engine
