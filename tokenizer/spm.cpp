#include "tokenizer/spm.hpp"

#include <algorithm>

#include "kinfer/error.hpp"
#include "tokenizer/utf8.hpp"

namespace kinfer::tokenizer {
namespace {

// Heap order: higher score first, then the leftmost pair (llama.cpp's order, which decides ties).
struct LowerPriority {
    bool operator()(const SpmScratch::Bigram& a, const SpmScratch::Bigram& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

void emit_bytes(const Vocab& vocab, std::string_view bytes, std::vector<int32_t>& out) {
    for (char c : bytes) {
        int32_t id = vocab.byte_tokens[static_cast<uint8_t>(c)];
        if (id < 0) id = vocab.unk_id;
        out.push_back(id);
    }
}

}  // namespace

namespace {

// Merges within text[begin, end) (whole symbols) and appends the resulting tokens.
void encode_segment(const Vocab& vocab, std::string_view text, uint32_t begin, uint32_t end,
                    SpmScratch& scratch, std::vector<int32_t>& out) {
    auto& sym = scratch.symbols;
    auto& heap = scratch.heap;
    sym.clear();
    heap.clear();

    const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
    for (uint32_t off = begin; off < end;) {
        const uint32_t len =
            std::min<uint32_t>(static_cast<uint32_t>(utf8_len_from_lead(bytes[off])), end - off);
        const int32_t i = static_cast<int32_t>(sym.size());
        sym.push_back({i - 1, off + len == end ? -1 : i + 1, off, len, -1});
        off += len;
    }

    const size_t max_len = vocab.max_token_len;
    auto candidate = [&](int32_t left, int32_t right, SpmScratch::Bigram& b) {
        if (left < 0 || right < 0) return false;
        const uint32_t n = sym[left].n + sym[right].n;
        if (n > max_len) return false;
        const int32_t id = vocab.index.find(text.substr(sym[left].start, n));
        if (id < 0) return false;
        b = {vocab.scores[id], left, right, n, id};
        return true;
    };

    SpmScratch::Bigram b;
    for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i)
        if (candidate(i - 1, i, b)) heap.push_back(b);
    std::make_heap(heap.begin(), heap.end(), LowerPriority{});

    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), LowerPriority{});
        const SpmScratch::Bigram top = heap.back();
        heap.pop_back();
        auto& l = sym[top.left];
        auto& r = sym[top.right];
        if (l.n == 0 || r.n == 0 || l.n + r.n != top.size) continue;  // one side changed since it was queued
        l.n += r.n;
        l.id = top.id;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) sym[r.next].prev = top.left;
        if (candidate(l.prev, top.left, b)) {
            heap.push_back(b);
            std::push_heap(heap.begin(), heap.end(), LowerPriority{});
        }
        if (candidate(top.left, l.next, b)) {
            heap.push_back(b);
            std::push_heap(heap.begin(), heap.end(), LowerPriority{});
        }
    }

    // Every merged symbol is a token by construction; a single character may not be: then its bytes.
    for (int32_t i = 0; i != -1; i = sym[i].next) {
        const auto& s = sym[i];
        const std::string_view piece = text.substr(s.start, s.n);
        const int32_t id = s.id >= 0 ? s.id : vocab.index.find(piece);
        if (id >= 0)
            out.push_back(id);
        else
            emit_bytes(vocab, piece, out);
    }
}

}  // namespace

void spm_encode(const Vocab& vocab, std::string_view text, SpmScratch& scratch, std::vector<int32_t>& out) {
    if (text.empty()) return;
    if (text.size() > UINT32_MAX) throw UsageError("text fragment too long to tokenize (over 4 GiB)");
    const uint32_t size = static_cast<uint32_t>(text.size());
    if (!vocab.words_independent) {
        encode_segment(vocab, text, 0, size, scratch, out);
        return;
    }
    // Cut before every U+2581 symbol that follows another symbol: no token can span such a cut (see
    // Vocab::words_independent), so the words merge independently, each with a small, cache-resident heap,
    // and the result is the same as merging the whole text at once.
    const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
    uint32_t begin = 0;
    bool prev_space = false;
    for (uint32_t off = 0; off < size;) {
        const uint32_t len =
            std::min<uint32_t>(static_cast<uint32_t>(utf8_len_from_lead(bytes[off])), size - off);
        const bool space = len == 3 && bytes[off] == 0xE2 && bytes[off + 1] == 0x96 && bytes[off + 2] == 0x81;
        if (space && !prev_space && off > begin) {
            encode_segment(vocab, text, begin, off, scratch, out);
            begin = off;
        }
        prev_space = space;
        off += len;
    }
    encode_segment(vocab, text, begin, size, scratch, out);
}

}  // namespace kinfer::tokenizer
