#pragma once
// Golden fixtures (tests/fixtures/golden/<type>.txt, written by scripts/dev/make_golden_logits.sh): what
// llama.cpp computed on a synthetic model that `infer synth` regenerates from the recorded arguments, plus
// the top logits of an independent float64 reference (numpy) at every position. See the fixture's header.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kinfer::testing {

struct GoldenPosition {
    int64_t index = 0;         // position in prompt + greedy[:-1]
    double llama_rel_err = 0;  // llama.cpp's max |Δlogit| / (max − min) there, against the numpy reference
    std::vector<std::pair<int32_t, double>> llama_top;  // llama.cpp's largest logits, largest first
    std::vector<std::pair<int32_t, double>> ref_top;    // the numpy float64 reference's, largest first
};

struct GoldenPrompt {
    std::string name;
    std::vector<int32_t> tokens;
    std::vector<int32_t> greedy;  // llama.cpp's greedy continuation
    std::vector<GoldenPosition> positions;

    // The sequence whose positions are recorded: prompt + greedy without its last token.
    std::vector<int32_t> sequence() const;
};

struct GoldenFixture {
    std::string path;
    std::string synth_args;  // arguments of `infer synth` (without -o) that rebuild the model
    std::string type;
    uint64_t model_bytes = 0;     // size of the model synth made (0: not recorded)
    uint64_t model_checksum = 0;  // model_checksum() of it
    int64_t n_vocab = 0;
    double llama_max_rel_err = 0;
    std::vector<GoldenPrompt> prompts;
};

// Sum over the file's little-endian 64-bit words w_i (the last one zero-padded) of (i + 1) * w_i, modulo
// 2^64: cheap, order-sensitive, computed alike by scripts/dev/golden_reference.py.
uint64_t model_checksum(const std::string& path);

// Parses a fixture; throws kinfer::Error naming the file and line on anything malformed.
GoldenFixture load_golden_fixture(const std::string& path);

}  // namespace kinfer::testing
