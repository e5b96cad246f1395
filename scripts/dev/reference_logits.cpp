// Dev-only probe: the float64 reference's top logits at the last positions of a token sequence, to settle
// who is right where kinfer and llama.cpp pick different tokens (fullsize_check.sh). Not part of the build;
// compile by hand against the library:
//   c++ -O2 -std=c++20 -fopenmp -I. -Iinclude scripts/dev/reference_logits.cpp \
//       tests/support/reference_forward.cpp build/libkinfer_internal.a -o /tmp/reference_logits
//   /tmp/reference_logits MODEL.gguf 1,1183,2339,... [FROM]
// prints, for each position from FROM (default: the last) to the end, the reference's top 3 tokens, the
// gap between the first two as a fraction of the spread, and the next token of the sequence when there is
// one (so that a greedy sequence can be checked: `next` must be the top-1 at every position).
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf_file.hpp"
#include "tests/support/reference_forward.hpp"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s MODEL.gguf ID,ID,... [FROM]\n", argv[0]);
        return 2;
    }
    std::vector<int32_t> tokens;
    std::stringstream list(argv[2]);
    for (std::string item; std::getline(list, item, ',');) tokens.push_back(std::stoi(item));
    const int64_t n = int64_t(tokens.size());
    const int64_t from = argc > 3 ? std::stoll(argv[3]) : n - 1;
    std::vector<int64_t> rows;
    for (int64_t i = from; i < n; ++i) rows.push_back(i);
    const auto file = kinfer::gguf::GgufFile::open(argv[1]);
    const kinfer::testing::ReferenceForward ref(file);
    const auto all = ref.logits(tokens, rows);
    int bad = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
        const auto& l = all[r];
        std::vector<int32_t> order(l.size());
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + 3, order.end(),
                          [&](int32_t a, int32_t b) { return l[a] > l[b]; });
        const auto [lo, hi] = std::minmax_element(l.begin(), l.end());
        std::printf("position %lld: top %d:%.5f %d:%.5f %d:%.5f, gap %.2e of the spread", (long long)rows[r],
                    order[0], l[order[0]], order[1], l[order[1]], order[2], l[order[2]],
                    (l[order[0]] - l[order[1]]) / (*hi - *lo));
        if (rows[r] + 1 < n) {
            const int32_t next = tokens[size_t(rows[r] + 1)];
            std::printf("; next %d (%s)", next, next == order[0] ? "top-1" : "NOT top-1");
            bad += next != order[0];
        }
        std::printf("\n");
    }
    return bad ? 1 : 0;
}
