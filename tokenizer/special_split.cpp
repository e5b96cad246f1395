#include "tokenizer/special_split.hpp"

#include <algorithm>
#include <map>
#include <numeric>

namespace kinfer::tokenizer {

void SpecialSplitter::build(const std::vector<int32_t>& ids, const std::vector<std::string_view>& texts,
                            const std::vector<uint8_t>& always) {
    by_rank_ = ids;
    std::stable_sort(by_rank_.begin(), by_rank_.end(),
                     [&](int32_t a, int32_t b) { return texts[a].size() > texts[b].size(); });
    text_.clear();
    always_.clear();
    any_always_ = false;
    for (int32_t id : by_rank_) {
        text_.push_back(texts[id]);
        always_.push_back(always[id]);
        any_always_ |= always[id] != 0;
    }

    // Build a pointer trie, then flatten it into arrays (edges of a node contiguous and sorted by byte).
    struct TmpNode {
        int32_t rank = -1;
        std::map<uint8_t, uint32_t> kids;
    };
    std::vector<TmpNode> tmp(1);
    first_byte_.fill(false);
    for (uint32_t r = 0; r < text_.size(); ++r) {
        const std::string_view t = text_[r];
        if (t.empty()) continue;
        first_byte_[static_cast<uint8_t>(t[0])] = true;
        uint32_t n = 0;
        for (char c : t) {
            const uint8_t b = static_cast<uint8_t>(c);
            auto it = tmp[n].kids.find(b);
            if (it == tmp[n].kids.end()) {
                tmp.emplace_back();
                it = tmp[n].kids.emplace(b, static_cast<uint32_t>(tmp.size() - 1)).first;
            }
            n = it->second;
        }
        if (tmp[n].rank < 0)
            tmp[n].rank = static_cast<int32_t>(r);  // duplicates cannot happen (unique texts)
    }
    nodes_.assign(tmp.size(), Node{});
    edges_.clear();
    for (size_t n = 0; n < tmp.size(); ++n) {
        nodes_[n].rank = tmp[n].rank;
        nodes_[n].first_edge = static_cast<uint32_t>(edges_.size());
        nodes_[n].n_edges = static_cast<uint32_t>(tmp[n].kids.size());
        for (const auto& [b, c] : tmp[n].kids) edges_.push_back(Edge{b, c});
    }
}

uint32_t SpecialSplitter::child(uint32_t node, uint8_t byte) const {
    const Node& n = nodes_[node];
    const Edge* lo = edges_.data() + n.first_edge;
    const Edge* hi = lo + n.n_edges;
    const Edge* e = std::lower_bound(lo, hi, byte, [](const Edge& x, uint8_t b) { return x.byte < b; });
    return (e != hi && e->byte == byte) ? e->child : 0;  // 0 (the root) means "no edge"
}

void SpecialSplitter::split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const {
    out.clear();
    if (text.empty()) return;
    out.push_back(Fragment{-1, 0, static_cast<uint32_t>(text.size())});
    if (by_rank_.empty() || (!parse_special && !any_always_)) return;

    // Which special tokens occur anywhere in the text?
    std::vector<uint8_t> present(by_rank_.size(), 0);
    bool any = false;
    const auto* p = reinterpret_cast<const uint8_t*>(text.data());
    for (size_t i = 0; i < text.size(); ++i) {
        if (!first_byte_[p[i]]) continue;
        uint32_t node = 0;
        for (size_t j = i; j < text.size(); ++j) {
            node = child(node, p[j]);
            if (node == 0) break;
            const int32_t r = nodes_[node].rank;
            if (r >= 0 && (parse_special || always_[r])) {
                present[r] = 1;
                any = true;
            }
        }
    }
    if (!any) return;

    // Split by each occurring token in priority order.
    std::vector<Fragment> next;
    for (size_t r = 0; r < by_rank_.size(); ++r) {
        const std::string_view tok = text_[r];
        if (!present[r] || tok.empty()) continue;
        next.clear();
        for (const Fragment& f : out) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            size_t base = f.offset;
            const size_t end = size_t(f.offset) + f.length;
            while (base < end) {
                const size_t m = text.substr(0, end).find(tok, base);
                if (m == std::string_view::npos) {
                    next.push_back(Fragment{-1, uint32_t(base), uint32_t(end - base)});
                    break;
                }
                if (m > base) next.push_back(Fragment{-1, uint32_t(base), uint32_t(m - base)});
                next.push_back(Fragment{by_rank_[r], 0, 0});
                base = m + tok.size();
            }
        }
        out.swap(next);
    }
}

}  // namespace kinfer::tokenizer
