#include "tokenizer/token_index.hpp"

#include <bit>
#include <cstring>

namespace kinfer::tokenizer {

uint64_t TokenIndex::hash(std::string_view s) {
    // 8 bytes per step with a multiply-xorshift mix; tokens are short, so this is a handful of instructions.
    constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
    const char* p = s.data();
    size_t n = s.size();
    uint64_t h = 0xA0761D6478BD642Full ^ (n * kMul);
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ w) * kMul;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 32;
    return h;
}

int32_t TokenIndex::build(const std::vector<std::string_view>& texts) {
    texts_ = &texts;
    const size_t cap = std::bit_ceil(std::max<size_t>(16, texts.size() * 2));
    slots_.assign(cap, Slot{0, -1});
    mask_ = cap - 1;
    for (size_t id = 0; id < texts.size(); ++id) {
        const uint64_t h = hash(texts[id]);
        const uint32_t tag = static_cast<uint32_t>(h >> 32);
        size_t i = static_cast<size_t>(h) & mask_;
        for (;; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.id < 0) break;
            if (s.tag == tag && texts[s.id] == texts[id]) return s.id;
        }
        slots_[i] = Slot{tag, static_cast<int32_t>(id)};
    }
    return -1;
}

}  // namespace kinfer::tokenizer
