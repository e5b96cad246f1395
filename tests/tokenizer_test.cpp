// Tokenizer: llama.cpp's own SPM test vectors, our multilingual corpus (expected ids made with llama.cpp),
// round trips, special tokens, byte fallback, streaming decode, UTF-8 helpers and error handling.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf_file.hpp"
#include "gguf/gguf_writer.hpp"
#include "kinfer/error.hpp"
#include "tokenizer/streaming_decoder.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

using namespace kinfer;
using namespace kinfer::tokenizer;
namespace fs = std::filesystem;

namespace {

const std::string kShared = KINFER_SHARED_DIR;
const std::string kFixtures = std::string(KINFER_SOURCE_DIR) + "/tests/fixtures/tokenizer";

std::string ids_str(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
    return s;
}

// A printable rendering of a test input for failure messages.
std::string show(std::string_view s) {
    std::string out;
    for (unsigned char c : s.substr(0, 120)) {
        if (c >= 0x20 && c != 0x7F && c != '\\') {
            out += char(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02X", c);
            out += buf;
        }
    }
    if (s.size() > 120) out += "...(" + std::to_string(s.size()) + " bytes)";
    return out;
}

struct Case {
    std::string text;
    std::vector<int32_t> ids;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot open " << path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// llama.cpp's tokenizer test format: inputs separated by "\n__ggml_vocab_test__\n" (the last one followed by
// it too); one line of space-separated expected ids per input.
std::vector<Case> read_vectors(const std::string& inp_path, const std::string& out_path) {
    const std::string raw = read_file(inp_path);
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<Case> cases;
    for (size_t pos = 0; pos < raw.size();) {
        const size_t next = raw.find(sep, pos);
        if (next == std::string::npos) {
            cases.push_back({raw.substr(pos), {}});
            break;
        }
        cases.push_back({raw.substr(pos, next - pos), {}});
        pos = next + sep.size();
    }
    std::istringstream out(read_file(out_path));
    std::string line;
    size_t i = 0;
    while (std::getline(out, line)) {
        REQUIRE_MESSAGE(i < cases.size(), out_path << " has more lines than " << inp_path << " has inputs");
        std::istringstream ls(line);
        for (int32_t id; ls >> id;) cases[i].ids.push_back(id);
        ++i;
    }
    REQUIRE_MESSAGE(i == cases.size(),
                    out_path << " has " << i << " lines for " << cases.size() << " inputs");
    return cases;
}

// Runs every case of a vector file; returns the number of mismatches (each reported).
int check_vectors(const Tokenizer& tok, const std::vector<Case>& cases, bool parse_special) {
    int bad = 0;
    for (const auto& c : cases) {
        const std::vector<int32_t> got = tok.encode(c.text, false, parse_special);
        if (got != c.ids) {
            ++bad;
            MESSAGE("mismatch for \"" << show(c.text) << "\"\n  want " << ids_str(c.ids) << "\n  got  "
                                      << ids_str(got));
        }
    }
    return bad;
}

}  // namespace

TEST_CASE("tokenizer: llama.cpp's SPM test vectors (ggml-vocab-llama-spm) reproduce exactly") {
    const std::string base = kShared + "/vocab/ggml-vocab-llama-spm.gguf";
    if (!fs::exists(base) || !fs::exists(base + ".inp")) {
        MESSAGE("skipped: " << base << " not found (needs ../shared)");
        return;
    }
    const auto file = gguf::GgufFile::open(base);
    const Tokenizer tok = Tokenizer::from_gguf(file);
    CHECK(tok.n_vocab() == 32000);
    CHECK(tok.bos_id() == 1);
    CHECK(tok.eos_id() == 2);
    CHECK(tok.add_bos());
    const auto cases = read_vectors(base + ".inp", base + ".out");
    REQUIRE(cases.size() == 46);
    CHECK(check_vectors(tok, cases, false) == 0);
}
