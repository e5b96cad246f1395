#pragma once
// JSON mode: which tokens may come next so that the reply stays one JSON object (JsonPrefix), as a mask on
// a step's logits. Built once per vocabulary: each token's bytes, and whether they can sit inside a string
// as they are (most of a vocabulary), which spares simulating those while a string is open.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/json_prefix.hpp"

namespace kinfer::tokenizer {
class Tokenizer;
}

namespace kinfer::engine {

class JsonMask {
  public:
    explicit JsonMask(const tokenizer::Tokenizer& tok);

    // Sets to -infinity the logits of every token whose bytes cannot follow `state` (control tokens, which
    // add no bytes, and end-of-generation tokens included: the caller ends the reply once the object is
    // complete). Returns how many tokens are left.
    int64_t apply(const JsonPrefix& state, std::span<float> logits) const;

    // The bytes token `id` adds to the reply (what JsonPrefix::push is given).
    std::string_view bytes(int32_t id) const {
        return std::string_view(bytes_).substr(offsets_[size_t(id)],
                                               offsets_[size_t(id) + 1] - offsets_[size_t(id)]);
    }

  private:
    static constexpr size_t kMaxWalk = 64;  // bytes of a token the sorted walk keeps states for
    enum Kind : uint8_t { kNone, kStringSafe, kOther };
    std::string bytes_;              // every token's bytes, one after another
    std::vector<uint32_t> offsets_;  // token i's are [offsets_[i], offsets_[i + 1])
    std::vector<uint8_t> kind_;
    std::vector<int32_t> sorted_;   // the tokens with bytes, in byte order
    std::vector<uint16_t> common_;  // sorted_[i]'s common prefix with sorted_[i - 1] (at most kMaxWalk)
};

}  // namespace kinfer::engine
