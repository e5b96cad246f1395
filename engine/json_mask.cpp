#include "engine/json_mask.hpp"

#include <cmath>

#include "tokenizer/tokenizer.hpp"

namespace kinfer::engine {

JsonMask::JsonMask(const tokenizer::Tokenizer& tok) {
    const int32_t n = tok.n_vocab();
    offsets_.reserve(size_t(n) + 1);
    kind_.reserve(size_t(n));
    offsets_.push_back(0);
    for (int32_t id = 0; id < n; ++id) {
        // Control tokens decode to nothing (the reply's text never holds them), so they are never allowed;
        // nor are end-of-generation tokens, whatever their text: the object ends the reply.
        const std::string_view piece =
            tok.is_control(id) || tok.is_eog(id) ? std::string_view() : tok.piece(id);
        bytes_ += piece;
        offsets_.push_back(uint32_t(bytes_.size()));
        bool safe = !piece.empty();
        for (const char ch : piece) {
            const auto c = static_cast<unsigned char>(ch);
            safe = safe && c >= 0x20 && c != '"' && c != '\\';
        }
        kind_.push_back(piece.empty() ? kNone : safe ? kStringSafe : kOther);
    }
}

int64_t JsonMask::apply(const JsonPrefix& state, std::span<float> logits) const {
    int64_t left = 0;
    const bool in_string = state.in_plain_string();
    for (size_t id = 0; id < logits.size() && id < kind_.size(); ++id) {
        bool ok = false;
        if (kind_[id] == kStringSafe && in_string) {
            ok = true;
        } else if (kind_[id] != kNone && !state.complete()) {
            JsonPrefix next = state;
            ok = next.push(bytes(int32_t(id)));
        }
        if (ok)
            ++left;
        else
            logits[id] = -INFINITY;
    }
    for (size_t id = kind_.size(); id < logits.size(); ++id) logits[id] = -INFINITY;
    return left;
}

}  // namespace kinfer::engine
