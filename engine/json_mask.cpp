#include "engine/json_mask.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

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
    // The tokens with bytes in byte order, and each one's common prefix with the one before it: walked in
    // this order, tokens that share a refused prefix are refused without reading it again.
    for (int32_t id = 0; id < n; ++id)
        if (kind_[size_t(id)] != kNone) sorted_.push_back(id);
    std::sort(sorted_.begin(), sorted_.end(), [&](int32_t a, int32_t b) {
        const auto ua = [](std::string_view s) {
            return std::basic_string_view<unsigned char>(reinterpret_cast<const unsigned char*>(s.data()),
                                                         s.size());
        };
        return ua(bytes(a)) < ua(bytes(b));
    });
    common_.resize(sorted_.size(), 0);
    for (size_t i = 1; i < sorted_.size(); ++i) {
        const std::string_view a = bytes(sorted_[i - 1]), b = bytes(sorted_[i]);
        size_t k = 0;
        while (k < a.size() && k < b.size() && a[k] == b[k]) ++k;
        common_[i] = uint16_t(std::min<size_t>(k, kMaxWalk));
    }
}

int64_t JsonMask::apply(const JsonPrefix& state, std::span<float> logits) const {
    const size_t n = std::min(logits.size(), kind_.size());
    for (size_t id = n; id < logits.size(); ++id) logits[id] = -INFINITY;
    if (state.complete()) {
        std::fill(logits.begin(), logits.begin() + ptrdiff_t(n), -INFINITY);
        return 0;
    }
    int64_t left = 0;
    if (state.in_plain_string()) {
        // Most tokens stay inside the string as they are; the others are tried one by one.
        for (size_t id = 0; id < n; ++id) {
            bool ok = kind_[id] == kStringSafe;
            if (!ok && kind_[id] == kOther) {
                JsonPrefix next = state;
                ok = next.push(bytes(int32_t(id)));
            }
            if (ok)
                ++left;
            else
                logits[id] = -INFINITY;
        }
        return left;
    }
    // Elsewhere most tokens fail on their first byte or two: walk them in byte order, keeping the states
    // after each byte of the current token (at[d]: after d bytes), so that a token reuses the prefix it
    // shares with the one before, and one refused prefix refuses every token after it that shares it.
    for (size_t id = 0; id < n; ++id)
        if (kind_[id] == kNone) logits[id] = -INFINITY;
    std::array<JsonPrefix, kMaxWalk + 1> at;
    at[0] = state;
    size_t reached = 0;         // at[0 .. reached] hold the current path's states
    size_t refused = SIZE_MAX;  // the path's byte `refused` was refused (SIZE_MAX: none)
    for (size_t i = 0; i < sorted_.size(); ++i) {
        const int32_t id = sorted_[i];
        const std::string_view b = bytes(id);
        const size_t k = i == 0 ? 0 : common_[i];
        bool ok;
        if (refused != SIZE_MAX && k > refused) {
            ok = false;  // shares the refused byte
        } else if (b.size() > kMaxWalk) {
            JsonPrefix next = state;  // longer than the walk keeps: alone, from the start
            ok = next.push(b);
            refused = SIZE_MAX;
            reached = 0;
        } else {
            size_t d = std::min(k, reached);
            refused = SIZE_MAX;
            for (; d < b.size(); ++d) {
                at[d + 1] = at[d];
                if (!at[d + 1].push(static_cast<unsigned char>(b[d]))) {
                    refused = d;
                    break;
                }
            }
            reached = refused == SIZE_MAX ? b.size() : refused;
            ok = refused == SIZE_MAX;
        }
        if (ok)
            ++left;
        else if (size_t(id) < n)
            logits[size_t(id)] = -INFINITY;
    }
    return left;
}

}  // namespace kinfer::engine
