// JSON mode: the byte grammar (engine/json_prefix.hpp) against nlohmann::json, a parser nobody here wrote,
// and the token mask built on it (engine/json_mask.hpp) on the Mistral vocabulary.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/json_mask.hpp"
#include "engine/json_prefix.hpp"
#include "gguf/gguf_file.hpp"
#include "tokenizer/tokenizer.hpp"

using kinfer::engine::JsonMask;
using kinfer::engine::JsonPrefix;

namespace {

// How far `s` gets: the number of bytes accepted (s.size() when all), and whether the object is complete.
struct Fed {
    size_t accepted;
    bool complete;
};
Fed feed(const std::string& s) {
    JsonPrefix p;
    for (size_t i = 0; i < s.size(); ++i) {
        if (p.complete()) return {i, true};  // nothing may follow
        if (!p.push(static_cast<unsigned char>(s[i]))) return {i, false};
    }
    return {s.size(), p.complete()};
}

// A random JSON object of nesting at most `depth`, as nlohmann's compact dump writes it.
nlohmann::json random_value(std::mt19937& rng, int depth);
nlohmann::json random_object(std::mt19937& rng, int depth) {
    nlohmann::json o = nlohmann::json::object();
    const int n = int(rng() % 4);
    for (int i = 0; i < n; ++i)
        o[std::string(1 + rng() % 3, char('a' + rng() % 26))] = random_value(rng, depth - 1);
    return o;
}
nlohmann::json random_value(std::mt19937& rng, int depth) {
    switch (depth <= 0 ? rng() % 6 : rng() % 8) {
        case 0:
            return nullptr;
        case 1:
            return bool(rng() % 2);
        case 2:
            return int64_t(rng() % 2000) - 1000;
        case 3:
            return std::ldexp(double(int64_t(rng() % 20000) - 10000), int(rng() % 40) - 20);
        case 4: {
            static const char* const strings[] = {"s", "\"\\/", "\b\f\n\r\t\x01", " é", "🙂中文", "a b"};
            return std::string(strings[rng() % 6]);
        }
        case 5:
            return "";
        case 6: {
            nlohmann::json a = nlohmann::json::array();
            for (int i = 0, n = int(rng() % 4); i < n; ++i) a.push_back(random_value(rng, depth - 1));
            return a;
        }
        default:
            return random_object(rng, depth);
    }
}

}  // namespace

TEST_CASE("json mode: every prefix of an object is accepted, complete only at its end") {
    const std::vector<std::string> docs = {
        "{}",
        R"({"a":1})",
        R"({"a": [1, 2.5e-3, -0, 0.5E+10, true, false, null, "x\n\u00e9\"\\\/"], "b": {"c": {}}, "d": []})",
        "{\n  \"name\": \"kinfer\",\n  \"list\": [\n    1,\n\t2\n  ]\n}",
        R"({"é🙂": "中文"})",
    };
    for (const std::string& d : docs) {
        CAPTURE(d);
        CHECK(nlohmann::json::accept(d));
        JsonPrefix p;
        for (size_t i = 0; i < d.size(); ++i) {
            CHECK_FALSE(p.complete());
            REQUIRE(p.push(static_cast<unsigned char>(d[i])));
        }
        CHECK(p.complete());
        CHECK_FALSE(JsonPrefix(p).push('}'));
        CHECK_FALSE(JsonPrefix(p).push(' '));
    }
    std::mt19937 rng(7);
    for (int i = 0; i < 2000; ++i) {
        const std::string d = random_object(rng, 4).dump();
        CAPTURE(d);
        const Fed f = feed(d);
        CHECK(f.accepted == d.size());
        CHECK(f.complete);
    }
}

TEST_CASE("json mode: bytes that cannot continue an object are refused where they break it") {
    // (text, bytes accepted before the refusal)
    const std::vector<std::pair<std::string, size_t>> bad = {
        {"[]", 0},
        {" {}", 0},
        {"x", 0},
        {R"({"a" 1})", 5},
        {R"({"a":01})", 6},
        {R"({"a":1.})", 7},
        {R"({"a":-})", 6},
        {R"({"a":tru})", 8},
        {R"({"a":1,})", 7},
        {"{,}", 1},
        {R"({"a":[1}})", 7},
        {R"({"a":"\q"})", 7},
        {"{\"a\":\"\x01\"}", 6},
        {R"({"a":  1})", 6},
        {R"({"a":"\u12G4"})", 10},
        {R"({1:2})", 1},
        {"{\"a\":\r1}", 5},
        {R"({"a":1}})", 7},
    };
    for (const auto& [text, at] : bad) {
        CAPTURE(text);
        const Fed f = feed(text);
        CHECK(f.accepted == at);
        const bool whole = f.accepted == text.size() && f.complete;
        CHECK_FALSE(whole);
    }
    // Indentation: a newline and at most 20 spaces or tabs.
    CHECK(feed("{\n" + std::string(20, ' ') + "}").complete);
    CHECK(feed("{\n" + std::string(21, ' ') + "}").accepted == 22);
    // Nesting: 64 levels, not 65.
    std::string deep = "{\"a\":";
    for (int i = 1; i < JsonPrefix::kMaxDepth; ++i) deep += "[";
    CHECK(feed(deep).accepted == deep.size());
    CHECK(feed(deep + "[").accepted == deep.size());
}

TEST_CASE("json mode: whatever the grammar accepts in full is an object nlohmann parses") {
    // Random strings over JSON's own alphabet: each one the grammar accepts as complete must parse, and each
    // valid object (nlohmann) without whitespace must be accepted in full.
    const std::string alphabet = "{}[]\":,-+.0123456789eEtruefalsn\\u ab";
    std::mt19937 rng(11);
    int complete = 0;
    for (int i = 0; i < 200000; ++i) {
        std::string s = "{";
        for (int n = int(rng() % 12); n > 0; --n) s += alphabet[rng() % alphabet.size()];
        if (rng() % 2) s += "}";
        const Fed f = feed(s);
        const bool parses = nlohmann::json::accept(s);
        if (f.accepted == s.size() && f.complete) {
            ++complete;
            CAPTURE(s);
            CHECK(parses);
            CHECK(nlohmann::json::parse(s).is_object());
        }
        if (parses && s.find(' ') == std::string::npos) {
            CAPTURE(s);
            CHECK(f.accepted == s.size());
            CHECK(f.complete);
        }
    }
    CHECK(complete > 20);  // the alphabet does produce objects
}

TEST_CASE("json mode: the token mask keeps exactly the tokens that continue the object") {
    const auto file =
        kinfer::gguf::GgufFile::open(std::string(KINFER_DATA_DIR) + "/vocab/mistral-v0.3-vocab.gguf");
    const auto tok = kinfer::tokenizer::Tokenizer::from_gguf(file);
    const JsonMask mask(tok);
    for (const std::string prefix :
         {"", "{", R"({"key)", R"({"key":)", R"({"key": [1, tr)", R"({"n": 12)", R"({"n": [1, "x"])",
          R"({"a":"\)", R"({"a":"\u12)", "{\n  ", R"({"a":"x"})"}) {
        CAPTURE(prefix);
        JsonPrefix state;
        REQUIRE(state.push(prefix));
        std::vector<float> logits(size_t(tok.n_vocab()), 1.0f);
        const int64_t left = mask.apply(state, logits);
        int64_t finite = 0;
        for (int32_t id = 0; id < tok.n_vocab(); ++id) {
            const bool kept = logits[size_t(id)] == 1.0f;
            finite += kept;
            JsonPrefix next = state;
            const bool continues = !tok.is_control(id) && !tok.is_eog(id) && !tok.piece(id).empty() &&
                                   !state.complete() && next.push(tok.piece(id));
            if (kept != continues) {
                CAPTURE(id);
                CAPTURE(std::string(tok.piece(id)));
                CHECK(kept == continues);
            }
        }
        CHECK(left == finite);
        if (state.complete())
            CHECK(left == 0);
        else
            CHECK(left > 0);
    }
}
