// Tokenizer: llama.cpp's own SPM test vectors, our multilingual corpus (expected ids made with llama.cpp),
// round trips, special tokens, byte fallback, streaming decode, UTF-8 helpers and error handling.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gguf/gguf_file.hpp"
#include "gguf/gguf_writer.hpp"
#include "kinfer/error.hpp"
#include "tests/infer_cli.hpp"
#include "tokenizer/streaming_decoder.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

using namespace kinfer;
using namespace kinfer::tokenizer;
namespace fs = std::filesystem;

namespace {

const std::string kShared = KINFER_DATA_DIR;
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

// What decode(encode(s)) gives back: s itself, except that U+2581 (SentencePiece's space marker) comes back
// as a space. That one is inherent: a U+2581 in the input yields the same ids as a space, in llama.cpp and in
// SentencePiece alike, so no decoder can tell them apart.
std::string expected_round_trip(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size();) {
        if (s.compare(i, 3, "\xE2\x96\x81") == 0) {
            out += ' ';
            i += 3;
        } else {
            out += s[i++];
        }
    }
    return out;
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
        FAIL("committed test data missing: " << base << "");
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

namespace {

struct Vocabs {
    std::optional<gguf::GgufFile> mistral_file, llama_file;
    std::optional<Tokenizer> mistral, llama;
};

// Loaded once: the tests below share them (Tokenizer is immutable).
const Vocabs& vocabs() {
    static const Vocabs v = [] {
        Vocabs r;
        const std::string m = kShared + "/vocab/mistral-v0.3-vocab.gguf";
        const std::string l = kShared + "/vocab/ggml-vocab-llama-spm.gguf";
        if (fs::exists(m)) {
            r.mistral_file.emplace(gguf::GgufFile::open(m));
            r.mistral.emplace(Tokenizer::from_gguf(*r.mistral_file));
        }
        if (fs::exists(l)) {
            r.llama_file.emplace(gguf::GgufFile::open(l));
            r.llama.emplace(Tokenizer::from_gguf(*r.llama_file));
        }
        return r;
    }();
    return v;
}

#define REQUIRE_MISTRAL()                                                              \
    if (!vocabs().mistral) {                                                           \
        FAIL("committed test data missing: " << kShared << "/vocab/mistral-v0.3-vocab.gguf not found"); \
        return;                                                                        \
    }                                                                                  \
    const Tokenizer& tok = *vocabs().mistral

}  // namespace

TEST_CASE("tokenizer: hard multilingual corpus matches llama.cpp on Mistral v0.3 (special tokens as text)") {
    REQUIRE_MISTRAL();
    const auto cases = read_vectors(kFixtures + "/corpus.inp", kFixtures + "/corpus.mistral-v0.3.out");
    CHECK(cases.size() >= 100);
    CHECK(check_vectors(tok, cases, false) == 0);
}

TEST_CASE("tokenizer: hard multilingual corpus matches llama.cpp on Mistral v0.3 (special tokens parsed)") {
    REQUIRE_MISTRAL();
    const auto cases =
        read_vectors(kFixtures + "/corpus.inp", kFixtures + "/corpus.mistral-v0.3.special.out");
    CHECK(check_vectors(tok, cases, true) == 0);
}

TEST_CASE("tokenizer: hard multilingual corpus matches llama.cpp on the Llama SPM vocabulary") {
    if (!vocabs().llama) {
        FAIL("committed test data missing: ggml-vocab-llama-spm.gguf not found");
        return;
    }
    const auto cases = read_vectors(kFixtures + "/corpus.inp", kFixtures + "/corpus.llama-spm.out");
    CHECK(check_vectors(*vocabs().llama, cases, false) == 0);
}

TEST_CASE("tokenizer: decode(encode(s)) == s for every corpus string, with and without BOS") {
    // (U+2581 excepted: see expected_round_trip; the corpus has one such case to pin the behaviour down.)
    REQUIRE_MISTRAL();
    const auto cases = read_vectors(kFixtures + "/corpus.inp", kFixtures + "/corpus.mistral-v0.3.out");
    int bad = 0;
    for (const auto& c : cases) {
        REQUIRE(is_valid_utf8(c.text));
        for (bool bos : {false, true}) {
            const auto ids = tok.encode(c.text, bos, false);
            const std::string back = tok.decode(ids);
            const std::string want = expected_round_trip(c.text);
            if (back != want) {
                ++bad;
                MESSAGE("round trip failed for \"" << show(c.text) << "\" (bos " << bos << "): \""
                                                   << show(back) << "\"");
            }
            // Streaming, one token at a time, gives the same text.
            StreamingDecoder sd(tok, StreamingOptions{false, true});
            std::string streamed;
            for (int32_t id : ids) {
                const std::string part = sd.push(id);
                CHECK(is_valid_utf8(part));
                streamed += part;
            }
            streamed += sd.finish();
            if (streamed != want) {
                ++bad;
                MESSAGE("streamed decode differs for \"" << show(c.text) << "\"");
            }
        }
    }
    CHECK(bad == 0);
}

TEST_CASE("tokenizer: round trip on random valid UTF-8 (all planes, controls, spaces)") {
    REQUIRE_MISTRAL();
    std::mt19937 rng(1234);
    auto append_cp = [](std::string& s, uint32_t cp) {
        if (cp < 0x80) {
            s += char(cp);
        } else if (cp < 0x800) {
            s += char(0xC0 | (cp >> 6));
            s += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            s += char(0xE0 | (cp >> 12));
            s += char(0x80 | ((cp >> 6) & 0x3F));
            s += char(0x80 | (cp & 0x3F));
        } else {
            s += char(0xF0 | (cp >> 18));
            s += char(0x80 | ((cp >> 12) & 0x3F));
            s += char(0x80 | ((cp >> 6) & 0x3F));
            s += char(0x80 | (cp & 0x3F));
        }
    };
    for (int t = 0; t < 300; ++t) {
        std::string s;
        const int len = int(rng() % 40);
        for (int k = 0; k < len; ++k) {
            uint32_t cp;
            switch (rng() % 6) {
                case 0:
                    cp = rng() % 0x80;
                    break;  // ASCII incl. controls
                case 1:
                    cp = ' ';
                    break;  // runs of spaces
                case 2:
                    cp = 0x4E00 + rng() % 0x5200;
                    break;  // CJK
                case 3:
                    cp = 0x80 + rng() % (0xD800 - 0x80);
                    break;  // BMP below surrogates
                case 4:
                    cp = 0xE000 + rng() % 0x2000;
                    break;  // BMP above surrogates
                default:
                    cp = 0x10000 + rng() % 0x100000;
                    break;  // supplementary planes
            }
            append_cp(s, cp);
        }
        REQUIRE(is_valid_utf8(s));
        const auto ids = tok.encode(s, true, false);
        CHECK_MESSAGE(tok.decode(ids) == expected_round_trip(s), "input: " << show(s));
        for (int32_t id : ids) CHECK(tok.valid(id));
    }
}

TEST_CASE("tokenizer: random bytes and special-token fragments never break encode or decode") {
    REQUIRE_MISTRAL();
    std::mt19937 rng(99);
    const std::vector<std::string> bits = {"[INST]",   "[/INST]",  "<s>", "</s>", "<unk>",        "[",
                                           "<",        " ",        "  ",  "\n",   "\xE2\x96\x81", "\xE4",
                                           "\xB8\xAD", "\xF0\x9F", "a",   "中",   "\r\n",         "\t"};
    for (int t = 0; t < 500; ++t) {
        std::string s;
        const int len = int(rng() % 24);
        for (int k = 0; k < len; ++k) {
            if (rng() % 3 == 0)
                s += char(rng() % 256);
            else
                s += bits[rng() % bits.size()];
        }
        for (bool special : {false, true}) {
            const auto ids = tok.encode(s, true, special);
            for (int32_t id : ids) REQUIRE(tok.valid(id));
            const std::string back = tok.decode(ids, DecodeOptions{special, true});
            StreamingDecoder sd(tok, StreamingOptions{special, true});
            std::string streamed;
            for (int32_t id : ids) streamed += sd.push(id);
            streamed += sd.finish();
            CHECK(is_valid_utf8(streamed));
            CHECK(streamed == to_valid_utf8(back));
            // Without special parsing, valid UTF-8 round-trips exactly (special-token look-alikes included).
            if (!special && is_valid_utf8(s))
                CHECK_MESSAGE(back == expected_round_trip(s), "input: " << show(s));
        }
    }
}

TEST_CASE("tokenizer: encode basics on Mistral v0.3") {
    REQUIRE_MISTRAL();
    CHECK(tok.n_vocab() == 32768);
    CHECK(tok.bos_id() == 1);
    CHECK(tok.eos_id() == 2);
    CHECK(tok.unk_id() == 0);
    CHECK(tok.add_bos());
    CHECK_FALSE(tok.add_eos());
    CHECK(tok.add_space_prefix());
    CHECK(tok.model_name() == "llama");
    CHECK(tok.token_text(1) == "<s>");
    CHECK(tok.token_text(3) == "[INST]");
    CHECK(tok.token_id("[/INST]") == 4);
    CHECK(tok.token_id("no such token") == -1);

    // BOS only when asked; empty text gives nothing else.
    CHECK(tok.encode("", false, false).empty());
    CHECK(tok.encode("", true, false) == std::vector<int32_t>{1});
    const auto hello = tok.encode("Hello world", false, false);
    CHECK(hello == std::vector<int32_t>{23325, 2294});  // "▁Hello" "▁world"
    auto with_bos = tok.encode("Hello world", true, false);
    CHECK(with_bos.front() == 1);
    CHECK(std::vector<int32_t>(with_bos.begin() + 1, with_bos.end()) == hello);

    // EOS through the options overload; output is appended.
    std::vector<int32_t> out{42};
    tok.encode("Hello world", EncodeOptions{true, true, false}, out);
    CHECK(out == std::vector<int32_t>{42, 1, 23325, 2294, 2});

    // Special tokens: text unless parsed; a text fragment after a special token gets the space prefix again.
    CHECK(tok.encode("[INST] Hello</s>", false, true) == std::vector<int32_t>{3, 29473, 23325, 2});
    const auto as_text = tok.encode("[INST] Hello</s>", false, false);
    CHECK(std::find(as_text.begin(), as_text.end(), 3) == as_text.end());
    CHECK(std::find(as_text.begin(), as_text.end(), 2) == as_text.end());

    // Byte fallback: a character with no token becomes its UTF-8 bytes as <0xNN> tokens (771 + byte).
    const auto nul = tok.encode(std::string_view("a\0b", 3), false, false);
    CHECK(nul == std::vector<int32_t>{1032, 771, 29494});
    CHECK(tok.is_byte(771));
    CHECK(tok.piece(771) == std::string_view("\0", 1));
}

TEST_CASE("tokenizer: invalid UTF-8 input falls back to byte tokens and decodes to the same bytes") {
    REQUIRE_MISTRAL();
    const std::vector<std::string> inputs = {
        "\xFF",         "a\xC3",           "\xE4\xB8",
        "\xE4\xB8z",    "\x80\x80\x80",    "\xF4\x90\x80\x80",
        "\xED\xA0\x80", "ok \xC0\xAF end", std::string("\xF0\x9F\x98", 3) + "x"};
    for (const auto& s : inputs) {
        const auto ids = tok.encode(s, true, false);
        for (int32_t id : ids) CHECK(tok.valid(id));
        CHECK_MESSAGE(tok.decode(ids) == s, "input: " << show(s));
        // Streaming never emits invalid UTF-8, and matches to_valid_utf8 of the bytes.
        StreamingDecoder sd(tok, StreamingOptions{false, true});
        std::string streamed;
        for (int32_t id : ids) streamed += sd.push(id);
        streamed += sd.finish();
        CHECK(is_valid_utf8(streamed));
        CHECK(streamed == to_valid_utf8(s));
    }
}

TEST_CASE("tokenizer: decode options and pieces") {
    REQUIRE_MISTRAL();
    const auto ids = tok.encode("[INST] Hi[/INST]", true, true);
    CHECK(ids.front() == 1);
    CHECK(tok.decode(ids) == " Hi");  // control tokens render as nothing; the space after [INST] is text
    CHECK(tok.decode(ids, DecodeOptions{true, true}) == "<s>[INST]  Hi[/INST]");
    CHECK(tok.decode(tok.encode("Hi", false, false), DecodeOptions{false, false}) == " Hi");
    CHECK(tok.piece(2).empty());
    CHECK(tok.piece(2, true) == "</s>");
    CHECK(tok.token_text(23325) == "\xE2\x96\x81Hello");
    CHECK(tok.piece(23325) == " Hello");
    CHECK(tok.is_eog(2));
    CHECK_FALSE(tok.is_eog(1));
    CHECK_FALSE(tok.is_eog(-5));
    CHECK(tok.is_control(3));
    CHECK_THROWS_AS(tok.decode(std::vector<int32_t>{1, 32768}), UsageError);
    CHECK_THROWS_AS(tok.token_text(-1), UsageError);
}

TEST_CASE("tokenizer: shared by several threads, results identical") {
    REQUIRE_MISTRAL();
    const std::string text = "多线程 tokenization 🧵 test, with [INST] markers [/INST] and more text.";
    const auto want = tok.encode(text, true, true);
    std::vector<std::thread> threads;
    std::atomic<int> bad{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int k = 0; k < 200; ++k)
                if (tok.encode(text, true, true) != want) ++bad;
        });
    for (auto& th : threads) th.join();
    CHECK(bad == 0);
}

TEST_CASE("streaming decoder: holds split characters back and never emits half a character") {
    REQUIRE_MISTRAL();
    // 中 = E4 B8 AD, fed as three byte tokens (771 + byte).
    StreamingDecoder sd(tok);
    CHECK(sd.push(771 + 0xE4).empty());
    CHECK(sd.pending_bytes() == 1);
    CHECK(sd.push(771 + 0xB8).empty());
    CHECK(sd.push(771 + 0xAD) == "中");
    CHECK(sd.pending_bytes() == 0);
    // Text after a held prefix that cannot continue it: U+FFFD for the prefix, then the text.
    CHECK(sd.push(771 + 0xE4).empty());
    CHECK(sd.push(23325) == "\xEF\xBF\xBD Hello");
    // A stray continuation byte is replaced at once.
    CHECK(sd.push(771 + 0x80) == "\xEF\xBF\xBD");
    // An incomplete character at the end becomes U+FFFD; finish() resets.
    CHECK(sd.push(771 + 0xF0).empty());
    CHECK(sd.push(771 + 0x9F).empty());
    CHECK(sd.finish() == "\xEF\xBF\xBD");
    CHECK(sd.finish().empty());
    // Default: the first token's space is kept (generated text follows a prompt).
    CHECK(sd.push(23325) == " Hello");
    StreamingDecoder strip(tok, StreamingOptions{false, true});
    CHECK(strip.push(23325) == "Hello");
    CHECK(strip.push(23325) == " Hello");
    // Control tokens: nothing, unless rendered.
    CHECK(strip.push(2).empty());
    StreamingDecoder special(tok, StreamingOptions{true, false});
    CHECK(special.push(2) == "</s>");
    CHECK_THROWS_AS(special.push(40000), UsageError);
}

TEST_CASE("utf8: validation offsets and repair") {
    CHECK(find_invalid_utf8("") == kUtf8Npos);
    CHECK(find_invalid_utf8("plain ascii text, long enough for the fast path") == kUtf8Npos);
    CHECK(find_invalid_utf8("中文 😀 é") == kUtf8Npos);
    CHECK(find_invalid_utf8("abc\xFF") == 3);
    CHECK(find_invalid_utf8("0123456789\x80") == 10);
    CHECK(find_invalid_utf8("ab\xC3") == 2);                    // truncated
    CHECK(find_invalid_utf8("ab\xC0\xAF") == 2);                // overlong
    CHECK(find_invalid_utf8("\xE0\x80\xAF") == 0);              // overlong 3-byte
    CHECK(find_invalid_utf8("x\xED\xA0\x80") == 1);             // surrogate
    CHECK(find_invalid_utf8("xy\xF4\x90\x80\x80") == 2);        // above U+10FFFF
    CHECK(find_invalid_utf8("\xF4\x8F\xBF\xBF") == kUtf8Npos);  // U+10FFFF itself
    CHECK(find_invalid_utf8(std::string_view("a\0b", 3)) == kUtf8Npos);
    // Maximal subparts: E4 B8 is one subpart (one U+FFFD); F5 and each 80 are one each.
    CHECK(to_valid_utf8("a\xE4\xB8z") == "a\xEF\xBF\xBDz");
    CHECK(to_valid_utf8("\xF5\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(to_valid_utf8("\xF0\x9F\x98") == "\xEF\xBF\xBD");
    CHECK(to_valid_utf8("ok") == "ok");
}

namespace {

// A tiny SPM vocabulary written to memory, for cases the real files do not cover.
struct TinyVocab {
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    std::string model = "llama";
    bool with_bytes = true;

    std::vector<uint8_t> bytes() const {
        gguf::GgufWriter w;
        w.add_string("general.architecture", "llama");
        w.add_string("tokenizer.ggml.model", model);
        w.add_strings("tokenizer.ggml.tokens", tokens);
        w.add_f32_array("tokenizer.ggml.scores", scores);
        w.add_i32_array("tokenizer.ggml.token_type", types);
        return w.to_bytes({});
    }
};

TinyVocab tiny(bool with_bytes) {
    TinyVocab v;
    auto add = [&](std::string t, float s, int32_t type) {
        v.tokens.push_back(std::move(t));
        v.scores.push_back(s);
        v.types.push_back(type);
    };
    add("<unk>", 0, kTypeUnknown);
    add("<s>", 0, kTypeControl);
    add("</s>", 0, kTypeControl);
    if (with_bytes)
        for (int b = 0; b < 256; ++b) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "<0x%02X>", b);
            add(buf, 0, kTypeByte);
        }
    add("\xE2\x96\x81", -1, kTypeNormal);
    add("a", -2, kTypeNormal);
    add("b", -2, kTypeNormal);
    add("ab", -3, kTypeNormal);
    add("\xE2\x96\x81"
        "ab",
        -4, kTypeNormal);
    add("ba", -1.5f, kTypeNormal);  // outscores "ab", so in "aba" the right pair merges first
    return v;
}

}  // namespace

TEST_CASE("tokenizer: merges follow scores, ties go left; unknown token without byte tokens") {
    {
        const TinyVocab v = tiny(true);
        const auto f = gguf::GgufFile::from_bytes(v.bytes());
        const Tokenizer tok = Tokenizer::from_gguf(f);
        const int32_t sp = tok.token_id("\xE2\x96\x81"), a = tok.token_id("a"), b = tok.token_id("b"),
                      ba = tok.token_id("ba"),
                      spab = tok.token_id(
                          "\xE2\x96\x81"
                          "ab");
        // "▁ab": ▁+a? not a token; a+b = "ab" (-3) then ▁+ab = "▁ab" (-4).
        CHECK(tok.encode("ab", false, false) == std::vector<int32_t>{spab});
        // "▁aba": "ba" (-1.5) beats "ab" (-3): ▁ a [ba] -> no "aba"/"▁a" tokens -> ▁ a ba
        CHECK(tok.encode("aba", false, false) == std::vector<int32_t>{sp, a, ba});
        // "bb": no "bb" token: ▁ b b
        CHECK(tok.encode("bb", false, false) == std::vector<int32_t>{sp, b, b});
        // Unknown characters go to bytes.
        CHECK(tok.encode("c", false, false) == std::vector<int32_t>{sp, 3 + 'c'});
        CHECK(tok.decode(tok.encode("c ab", true, false)) == "c ab");
    }
    {
        const TinyVocab v = tiny(false);
        const auto f = gguf::GgufFile::from_bytes(v.bytes());
        const Tokenizer tok = Tokenizer::from_gguf(f);
        // No byte tokens: each byte of an unknown character becomes <unk>, as many as there are bytes.
        CHECK(tok.encode("中", false, false) == std::vector<int32_t>{tok.token_id("\xE2\x96\x81"), 0, 0, 0});
        // With special parsing, "<unk>" in text is the unknown token too.
        CHECK(tok.encode("<unk>", false, true) == std::vector<int32_t>{0});
    }
}

TEST_CASE("tokenizer: unsupported or malformed tokenizer metadata is a clear error") {
    {
        TinyVocab v = tiny(true);
        v.model = "gpt2";
        const auto f = gguf::GgufFile::from_bytes(v.bytes(), "nemo.gguf");
        try {
            (void)Tokenizer::from_gguf(f);
            FAIL("gpt2 accepted");
        } catch (const FormatError& e) {
            const std::string msg = e.what();
            CHECK(msg.find("nemo.gguf") != std::string::npos);
            CHECK(msg.find("gpt2") != std::string::npos);
            CHECK(msg.find("not supported") != std::string::npos);
        }
    }
    {
        TinyVocab v = tiny(true);
        v.model = "bert";
        const auto f = gguf::GgufFile::from_bytes(v.bytes());
        CHECK_THROWS_AS((void)Tokenizer::from_gguf(f), FormatError);
    }
    {
        gguf::GgufWriter w;
        w.add_string("general.architecture", "llama");
        const auto f = gguf::GgufFile::from_bytes(w.to_bytes({}), "weights-only.gguf");
        CHECK_THROWS_WITH_AS((void)Tokenizer::from_gguf(f), doctest::Contains("tokenizer.ggml.model"),
                             FormatError);
    }
    {
        TinyVocab v = tiny(true);
        v.scores.resize(10);  // fewer scores than tokens
        const auto f = gguf::GgufFile::from_bytes(v.bytes());
        CHECK_THROWS_WITH_AS((void)Tokenizer::from_gguf(f), doctest::Contains("tokenizer.ggml.scores"),
                             FormatError);
    }
    {
        TinyVocab v = tiny(true);
        v.tokens[5] = v.tokens[6];  // duplicate text
        const auto f = gguf::GgufFile::from_bytes(v.bytes());
        CHECK_THROWS_WITH_AS((void)Tokenizer::from_gguf(f), doctest::Contains("same text"), FormatError);
    }
    {
        gguf::GgufWriter w;
        w.add_string("tokenizer.ggml.model", "llama");
        w.add_i32_array("tokenizer.ggml.tokens", std::vector<int32_t>{1, 2});
        const auto f = gguf::GgufFile::from_bytes(w.to_bytes({}));
        CHECK_THROWS_AS((void)Tokenizer::from_gguf(f), FormatError);
    }
    {
        // Out-of-range special ids keep the default and are reported as warnings.
        const TinyVocab v = tiny(true);
        gguf::GgufWriter w;
        w.add_string("tokenizer.ggml.model", "llama");
        w.add_strings("tokenizer.ggml.tokens", v.tokens);
        w.add_u32("tokenizer.ggml.eos_token_id", 999999);
        w.add_bool("tokenizer.ggml.add_bos_token", false);
        const auto f = gguf::GgufFile::from_bytes(w.to_bytes({}));
        const Tokenizer tok = Tokenizer::from_gguf(f);
        CHECK(tok.eos_id() == 2);
        CHECK_FALSE(tok.add_bos());
        REQUIRE(tok.warnings().size() == 1);
        CHECK(tok.warnings()[0].find("eos_token_id") != std::string::npos);
    }
}

namespace {

struct RunResult {
    int status;
    std::string out;
};

// Runs the infer binary; stdout (followed by stderr if `merge_stderr`) captured.
RunResult run_infer(const std::string& args, bool merge_stderr = false) {
    const kinfer_test::CliResult r = kinfer_test::run_infer_cli(args);
    return {r.status, merge_stderr ? r.out + r.err : r.out};
}

std::string temp_file(const std::string& name, std::string_view content) {
    const fs::path p = fs::temp_directory_path() / ("kinfer_tok_" + std::to_string(::getpid()) + "_" + name);
    std::ofstream(p, std::ios::binary).write(content.data(), std::streamsize(content.size()));
    return p.string();
}

std::string json_ids(const std::vector<int32_t>& ids) {
    std::string s = "[";
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
    return s + "]\n";
}

}  // namespace

TEST_CASE("infer tokenize: ids, pieces, BOS and special tokens on a vocabulary-only file") {
    REQUIRE_MISTRAL();
    const std::string m = "tokenize -m '" + kShared + "/vocab/mistral-v0.3-vocab.gguf' ";
    CHECK(run_infer(m + "-p 'Hello world' --ids").out == "[1, 23325, 2294]\n");
    CHECK(run_infer(m + "-p 'Hello world' --ids --no-bos").out == "[23325, 2294]\n");
    CHECK(run_infer(m + "-p '[INST] Hello</s>' --ids --no-bos --special").out == "[3, 29473, 23325, 2]\n");
    CHECK(run_infer(m + "-p '' --ids").out == "[1]\n");
    CHECK(run_infer(m + "-p 'Hello world'").out ==
          "1\t\"<s>\"\n23325\t\"\xE2\x96\x81Hello\"\n2294\t\"\xE2\x96\x81world\"\n");
    CHECK(run_infer(m + "-p 'Hello world' --pieces").out == run_infer(m + "-p 'Hello world'").out);

    // -f reads bytes as they are; the ids equal the library's (which the corpus test ties to llama.cpp).
    const std::string text = "你好，世界！\r\n\tTabs and emoji 👨‍👩‍👧‍👦\n";
    const std::string path = temp_file("zh.txt", text);
    CHECK(run_infer(m + "-f '" + path + "' --ids").out == json_ids(tok.encode(text, true, false)));
    CHECK(run_infer(m + "-f - --ids --no-bos < '" + path + "'").out ==
          json_ids(tok.encode(text, false, false)));
    fs::remove(path);
}

TEST_CASE("infer tokenize: invalid UTF-8 names the byte offset unless --lossy; usage errors") {
    REQUIRE_MISTRAL();
    const std::string m = "tokenize -m '" + kShared + "/vocab/mistral-v0.3-vocab.gguf' ";
    const std::string path = temp_file("bad.txt",
                                       "abc\xFF"
                                       "def");
    const RunResult bad = run_infer(m + "-f '" + path + "' --ids", true);
    CHECK(bad.status == 1);
    CHECK(bad.out.find("byte offset 3") != std::string::npos);
    CHECK(bad.out.find("--lossy") != std::string::npos);
    const RunResult lossy = run_infer(m + "-f '" + path + "' --ids --lossy");
    CHECK(lossy.status == 0);
    CHECK(lossy.out == json_ids(tok.encode("abc\xEF\xBF\xBD"
                                           "def",
                                           true, false)));
    fs::remove(path);

    CHECK(run_infer("tokenize -p hi").status == 2);  // no model
    CHECK(run_infer(m).status == 2);                 // no text
    CHECK(run_infer(m + "-p a -f b").status == 2);   // both
    CHECK(run_infer(m + "-p a --ids --pieces").status == 2);
    CHECK(run_infer(m + "-p a --bogus").status == 2);
    CHECK(run_infer("tokenize -m /nonexistent.gguf -p a").status == 1);
    CHECK(run_infer(m + "--help").out.find("--special") != std::string::npos);
}

TEST_CASE("infer tokenize: an unsupported tokenizer model is a clear error, not a crash") {
    gguf::GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_strings("tokenizer.ggml.tokens", std::vector<std::string>{"a", "b"});
    const std::string path =
        (fs::temp_directory_path() / ("kinfer_tok_" + std::to_string(::getpid()) + "_gpt2.gguf")).string();
    w.open(path);
    w.finish();
    const RunResult r = run_infer("tokenize -m '" + path + "' -p hi", true);
    fs::remove(path);
    CHECK(r.status == 1);
    CHECK(r.out.find("gpt2") != std::string::npos);
    CHECK(r.out.find("not supported") != std::string::npos);
}
