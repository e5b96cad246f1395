#include "engine/stop_strings.hpp"

#include <algorithm>

namespace kinfer::engine {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) {
    for (auto& s : stops)
        if (!s.empty()) stops_.push_back(std::move(s));
}

std::string StopStringMatcher::push(std::string_view text) {
    if (stopped_) return {};
    pending_ += text;

    // The earliest complete match wins (the longest stop string on a tie at the same position).
    size_t best = std::string::npos;
    for (const auto& s : stops_) {
        const size_t at = pending_.find(s);
        if (at == std::string::npos) continue;
        if (best == std::string::npos || at < best || (at == best && s.size() > matched_.size())) {
            best = at;
            matched_ = s;
        }
    }
    if (best != std::string::npos) {
        std::string out = pending_.substr(0, best);
        pending_.clear();
        stopped_ = true;
        return out;
    }

    // Hold back the longest suffix of the pending text that begins some stop string.
    size_t hold = 0;
    for (const auto& s : stops_) {
        const size_t max_len = std::min(s.size() - 1, pending_.size());
        for (size_t len = max_len; len > hold; --len) {
            if (std::string_view(pending_).substr(pending_.size() - len) ==
                std::string_view(s).substr(0, len)) {
                hold = len;
                break;
            }
        }
    }
    std::string out = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return out;
}

std::string StopStringMatcher::flush() {
    std::string out;
    out.swap(pending_);
    return out;
}

}  // namespace kinfer::engine
