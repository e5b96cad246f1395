#pragma once
// SentencePiece BPE as llama.cpp runs it ("llama" tokenizer model). The text (spaces already escaped to
// U+2581) is split into UTF-8 characters; then, repeatedly, the adjacent pair whose concatenation is the
// highest-scoring vocabulary token is merged (ties: leftmost first). Symbols that are not tokens at the end
// are emitted as byte tokens <0xNN> (byte fallback), or the unknown token if the vocabulary has no byte
// token.
//
// Cost: symbols live in one array as a doubly linked list; candidate merges sit in a binary heap whose stale
// entries are skipped when popped; lookups hash a view of the text. Nothing is allocated per merge: the
// scratch buffers grow once per call (or are reused across calls). Where the vocabulary allows it
// (Vocab::words_independent) the text is merged word by word, which keeps the heap in cache on long texts.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.hpp"

namespace kinfer::tokenizer {

struct SpmScratch {
    struct Symbol {
        int32_t prev, next;
        uint32_t start, n;  // byte range in the text; n == 0 once merged into its left neighbour
        int32_t id;         // token id once known (-1: not looked up yet)
    };
    struct Bigram {
        float score;
        int32_t left, right;
        uint32_t size;  // bytes of the merged text; a mismatch when popped means the entry is stale
        int32_t id;
    };
    std::vector<Symbol> symbols;
    std::vector<Bigram> heap;
    std::string text;  // escaped text of the current fragment
};

// Appends the tokens of `text` (already escaped: spaces as U+2581) to `out`.
void spm_encode(const Vocab& vocab, std::string_view text, SpmScratch& scratch, std::vector<int32_t>& out);

}  // namespace kinfer::tokenizer
