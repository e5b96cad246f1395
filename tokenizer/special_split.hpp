#pragma once
// Splits text into raw-text fragments and special tokens written literally ("[INST]", "</s>", ...), with
// llama.cpp's semantics: special tokens are tried longest first; each one splits every remaining text
// fragment at its non-overlapping leftmost occurrences. Control and unknown tokens take part only when the
// caller asks to parse special tokens; user-defined tokens always do (as in Hugging Face tokenizers).
//
// llama.cpp scans the whole text once per special token (770 of them in Mistral's vocabulary). We first find,
// in one pass with a trie, which special tokens occur at all, then run the same splitting with only those:
// a token that does not occur in the text cannot occur in any fragment of it, so the result is identical.
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace kinfer::tokenizer {

struct Fragment {
    int32_t token;    // >= 0: this special token; -1: raw text
    uint32_t offset;  // raw text: byte range in the input
    uint32_t length;
};

class SpecialSplitter {
  public:
    // `ids` are the special tokens and `texts` every token's text; `always` flags the ids that are split out
    // even when special parsing is off (user-defined tokens).
    void build(const std::vector<int32_t>& ids, const std::vector<std::string_view>& texts,
               const std::vector<uint8_t>& always);

    // Replaces `out` with the fragments of `text` (whose size must fit in 32 bits).
    void split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

  private:
    struct Node {
        int32_t rank = -1;  // the special token (by priority rank) that ends here, if any
        uint32_t first_edge = 0, n_edges = 0;
    };
    struct Edge {
        uint8_t byte;
        uint32_t child;
    };
    uint32_t child(uint32_t node, uint8_t byte) const;

    std::vector<int32_t> by_rank_;        // special token ids, longest text first (ties: lower id first)
    std::vector<std::string_view> text_;  // by rank
    std::vector<uint8_t> always_;         // by rank
    bool any_always_ = false;
    std::vector<Node> nodes_;
    std::vector<Edge> edges_;
    std::array<bool, 256> first_byte_{};
};

}  // namespace kinfer::tokenizer
