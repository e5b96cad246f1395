#pragma once
// Text -> token id lookup for the tokenizer's inner loop: an open-addressing hash table over views of the
// vocabulary's own text arena. Lookups take a string_view and never allocate (std::unordered_map<std::string>
// would build a std::string per query, which is what makes naive tokenizers slow).
#include <cstdint>
#include <string_view>
#include <vector>

namespace kinfer::tokenizer {

class TokenIndex {
  public:
    // `texts[i]` is token i's text; the views must outlive the index. Returns the id of an earlier token
    // with the same text when a duplicate is found (the index is then incomplete), else -1.
    int32_t build(const std::vector<std::string_view>& texts);

    int32_t find(std::string_view text) const {
        if (slots_.empty()) return -1;
        const uint64_t h = hash(text);
        const uint32_t tag = static_cast<uint32_t>(h >> 32);
        for (size_t i = static_cast<size_t>(h) & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.id < 0) return -1;
            if (s.tag == tag && (*texts_)[s.id] == text) return s.id;
        }
    }

    static uint64_t hash(std::string_view s);

  private:
    struct Slot {
        uint32_t tag;
        int32_t id;  // -1: empty
    };
    std::vector<Slot> slots_;
    size_t mask_ = 0;
    const std::vector<std::string_view>* texts_ = nullptr;
};

}  // namespace kinfer::tokenizer
