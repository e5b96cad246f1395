// `infer inspect`: runs the real binary on writer-made files and checks its text output, that its --json
// output is one valid JSON document of the documented shape (checked with a small parser below: no JSON
// library), and its exit status for corrupt files (1) and bad usage (2).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf_file.hpp"
#include "gguf/gguf_writer.hpp"
#include "kinfer/error.hpp"
#include "tests/infer_cli.hpp"

using namespace kinfer;
using namespace kinfer::gguf;

namespace {

// ---- running the binary ----------------------------------------------------------------------------------
using RunResult = kinfer_test::CliResult;

std::filesystem::path temp_path(const std::string& name) {
    return std::filesystem::temp_directory_path() /
           ("kinfer_inspect_test_" + std::to_string(::getpid()) + "_" + name);
}

RunResult run_infer(const std::string& args) {
    return kinfer_test::run_infer_cli(args);
}

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> lines;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
}

// The one line containing every part, or "" (reported by the caller's CHECK).
std::string line_with(const std::string& text, std::initializer_list<std::string> parts) {
    for (const auto& l : lines_of(text)) {
        bool all = true;
        for (const auto& p : parts) all = all && l.find(p) != std::string::npos;
        if (all) return l;
    }
    return "";
}

// ---- a minimal JSON parser (RFC 8259 syntax; numbers as double) ------------------------------------------
struct Json {
    enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
    bool b = false;
    double num = 0;
    std::string str;
    std::vector<Json> arr;
    std::vector<std::pair<std::string, Json>> obj;

    const Json& operator[](const std::string& key) const {
        for (const auto& [k, v] : obj)
            if (k == key) return v;
        throw std::runtime_error("JSON: no key '" + key + "'");
    }
    bool has(const std::string& key) const {
        for (const auto& kv : obj)
            if (kv.first == key) return true;
        return false;
    }
};

class JsonParser {
  public:
    explicit JsonParser(const std::string& s) : s_(s) {}
    Json document() {
        Json v = value();
        ws();
        if (i_ != s_.size()) fail("trailing characters");
        return v;
    }

  private:
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("JSON: " + what + " at " + std::to_string(i_));
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
    }
    bool eat(char c) {
        ws();
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!eat(c)) fail(std::string("expected '") + c + "'");
    }
    bool literal(const char* word) {
        const std::string w = word;
        if (s_.compare(i_, w.size(), w) == 0) {
            i_ += w.size();
            return true;
        }
        return false;
    }
    static void put_utf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xc0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += char(0xe0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        } else {
            out += char(0xf0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3f));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        }
    }
    uint32_t hex4() {
        if (i_ + 4 > s_.size()) fail("short \\u escape");
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = s_[i_++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= uint32_t(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= uint32_t(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= uint32_t(c - 'A' + 10);
            else
                fail("bad hex digit");
        }
        return v;
    }
    std::string string() {
        expect('"');
        std::string out;
        while (true) {
            if (i_ >= s_.size()) fail("unterminated string");
            const unsigned char c = static_cast<unsigned char>(s_[i_++]);
            if (c == '"') return out;
            if (c < 0x20) fail("raw control character in string");
            if (c != '\\') {
                out += char(c);
                continue;
            }
            if (i_ >= s_.size()) fail("unterminated escape");
            const char e = s_[i_++];
            switch (e) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u':
                    put_utf8(out, hex4());
                    break;  // surrogate pairs are not needed here
                default:
                    fail("bad escape");
            }
        }
    }
    Json value() {
        ws();
        Json v;
        if (i_ >= s_.size()) fail("unexpected end");
        const char c = s_[i_];
        if (c == '{') {
            ++i_;
            v.kind = Json::Object;
            if (eat('}')) return v;
            do {
                ws();
                std::string k = string();
                expect(':');
                v.obj.emplace_back(std::move(k), value());
            } while (eat(','));
            expect('}');
        } else if (c == '[') {
            ++i_;
            v.kind = Json::Array;
            if (eat(']')) return v;
            do v.arr.push_back(value());
            while (eat(','));
            expect(']');
        } else if (c == '"') {
            v.kind = Json::String;
            v.str = string();
        } else if (literal("true")) {
            v.kind = Json::Bool;
            v.b = true;
        } else if (literal("false")) {
            v.kind = Json::Bool;
        } else if (literal("null")) {
            v.kind = Json::Null;
        } else {
            // -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
            const size_t start = i_;
            auto digits = [&] {
                const size_t d = i_;
                while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
                if (i_ == d) fail("expected digits");
            };
            if (s_[i_] == '-') ++i_;
            if (i_ < s_.size() && s_[i_] == '0')
                ++i_;
            else
                digits();
            if (i_ < s_.size() && s_[i_] == '.') ++i_, digits();
            if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
                ++i_;
                if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
                digits();
            }
            v.kind = Json::Number;
            v.num = std::strtod(s_.substr(start, i_ - start).c_str(), nullptr);
        }
        return v;
    }

    const std::string& s_;
    size_t i_ = 0;
};

Json parse_json(const std::string& s) {
    return JsonParser(s).document();
}

// ---- the file under inspection ---------------------------------------------------------------------------
struct TestFile {
    std::filesystem::path path;
    std::vector<uint8_t> bytes;
    ~TestFile() { std::filesystem::remove(path); }
};

std::unique_ptr<TestFile> write_test_file() {
    auto tf = std::make_unique<TestFile>();
    tf->path = temp_path("model.gguf");
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_u32("llama.block_count", 2);
    w.add_f32("llama.rope.freq_base", 10000.f);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    static const char kTricky[] = "q\"b\\s\nnl\x01 \xff end";
    w.add_string("test.tricky", std::string(kTricky, sizeof kTricky - 1));
    std::vector<std::string> tokens;
    for (int i = 0; i < 20; ++i) tokens.push_back("tok" + std::to_string(i));
    w.add_strings("tokenizer.ggml.tokens", tokens);
    const uint64_t a[] = {8, 4};
    const uint64_t b[] = {64, 3};
    w.add_tensor("token_embd.weight", GgmlType::F32, a);
    w.add_tensor("blk.0.attn_q.weight", GgmlType::Q8_0, b);
    const std::vector<uint8_t> da(w.tensor_bytes(0), 1), db(w.tensor_bytes(1), 2);
    tf->bytes = w.to_bytes({da, db});
    std::ofstream out(tf->path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(tf->bytes.data()), std::streamsize(tf->bytes.size()));
    return tf;
}

}  // namespace

TEST_CASE("inspect: text output lists header, metadata, tensors and totals") {
    const auto tf = write_test_file();
    const GgufFile f = GgufFile::from_bytes(tf->bytes);  // expected offsets
    const RunResult r = run_infer("inspect '" + tf->path.string() + "'");
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());

    CHECK(lines_of(r.out).at(0) == tf->path.string() + ": GGUF v3, 6 metadata keys, 2 tensors, " +
                                       std::to_string(tf->bytes.size()) + " bytes, alignment 32, data at " +
                                       std::to_string(f.data_offset()));
    CHECK(line_with(r.out, {"0: general.architecture", "string", "= \"llama\""}) != "");
    CHECK(line_with(r.out, {"1: llama.block_count", "u32", "= 2"}) != "");
    CHECK(line_with(r.out, {"llama.rope.freq_base", "f32", "= 10000"}) != "");
    CHECK(line_with(r.out, {"tokenizer.ggml.add_bos_token", "bool", "= true"}) != "");
    // Control characters are escaped, so the value stays on its line.
    CHECK(line_with(r.out, {"test.tricky", "\"q\"b\\s\\nnl\\x01 "}) != "");
    // A long array: its element type and count, the first items, then the count again.
    CHECK(line_with(r.out,
                    {"tokenizer.ggml.tokens", "array[string,20]",
                     "= [\"tok0\", \"tok1\", \"tok2\", \"tok3\", \"tok4\", \"tok5\", \"tok6\", \"tok7\", "
                     "... (20 items)]"}) != "");

    const uint64_t off0 = f.data_offset() + f.tensors()[0].offset;
    const uint64_t off1 = f.data_offset() + f.tensors()[1].offset;
    CHECK(line_with(r.out, {"0: token_embd.weight", " f32 ", "[8, 4, 1, 1]", " 128 bytes",
                            "@ " + std::to_string(off0)}) != "");
    CHECK(line_with(r.out, {"1: blk.0.attn_q.weight", " q8_0 ", "[64, 3, 1, 1]", " 204 bytes",
                            "@ " + std::to_string(off1)}) != "");
    CHECK(line_with(r.out, {"f32", "1 tensors", "32 elements", "128 bytes", "32.0000 bits per weight"}) !=
          "");
    CHECK(line_with(r.out, {"q8_0", "1 tensors", "192 elements", "204 bytes", "8.5000 bits per weight"}) !=
          "");
    // (128 + 204) bytes * 8 / 224 elements
    CHECK(line_with(r.out,
                    {"2 tensors, 224 parameters, 332 bytes of tensor data, 11.8571 bits per weight"}) != "");

    const RunResult all = run_infer("inspect --max-items 0 '" + tf->path.string() + "'");
    CHECK(all.status == 0);
    CHECK(line_with(all.out, {"tokenizer.ggml.tokens", "\"tok19\"]"}) != "");
}

TEST_CASE("inspect: --json prints one JSON document with the same content") {
    const auto tf = write_test_file();
    const GgufFile f = GgufFile::from_bytes(tf->bytes);
    const RunResult r = run_infer("inspect --json '" + tf->path.string() + "'");
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    REQUIRE(r.status == 0);
    Json j;
    REQUIRE_NOTHROW(j = parse_json(r.out));
    REQUIRE(j.kind == Json::Object);
    CHECK(j["path"].str == tf->path.string());
    CHECK(j["version"].num == 3);
    CHECK(j["file_size"].num == double(tf->bytes.size()));
    CHECK(j["alignment"].num == 32);
    CHECK(j["data_offset"].num == double(f.data_offset()));

    const Json& md = j["metadata"];
    REQUIRE(md.kind == Json::Array);
    REQUIRE(md.arr.size() == 6);
    CHECK(md.arr[0]["key"].str == "general.architecture");
    CHECK(md.arr[0]["type"].str == "string");
    CHECK(md.arr[0]["value"].str == "llama");
    CHECK(md.arr[1]["value"].num == 2);
    CHECK(md.arr[2]["value"].num == 10000);
    CHECK(md.arr[3]["value"].kind == Json::Bool);
    CHECK(md.arr[3]["value"].b);
    // Quotes, backslashes and control characters survive; the invalid UTF-8 byte becomes U+FFFD.
    CHECK(md.arr[4]["value"].str == "q\"b\\s\nnl\x01 \xef\xbf\xbd end");
    const Json& tokens = md.arr[5];
    CHECK(tokens["type"].str == "array[string]");
    CHECK(tokens["count"].num == 20);
    REQUIRE(tokens["value"].kind == Json::Array);
    CHECK(tokens["value"].arr.size() == 9);  // 8 items and the "... 12 more" marker
    CHECK(tokens["value"].arr[7].str == "tok7");

    const Json& ts = j["tensors"];
    REQUIRE(ts.kind == Json::Array);
    REQUIRE(ts.arr.size() == 2);
    CHECK(ts.arr[1]["index"].num == 1);
    CHECK(ts.arr[1]["name"].str == "blk.0.attn_q.weight");
    CHECK(ts.arr[1]["type"].str == "q8_0");
    REQUIRE(ts.arr[1]["shape"].arr.size() == 4);
    CHECK(ts.arr[1]["shape"].arr[0].num == 64);
    CHECK(ts.arr[1]["shape"].arr[1].num == 3);
    CHECK(ts.arr[1]["shape"].arr[3].num == 1);
    CHECK(ts.arr[1]["bytes"].num == 204);
    CHECK(ts.arr[1]["offset"].num == double(f.tensors()[1].offset));
    CHECK(ts.arr[1]["file_offset"].num == double(f.data_offset() + f.tensors()[1].offset));

    CHECK(j["totals"]["q8_0"]["bytes"].num == 204);
    CHECK(j["totals"]["q8_0"]["bits_per_weight"].num == 8.5);
    CHECK(j["totals"]["f32"]["elements"].num == 32);
    CHECK(j["tensor_count"].num == 2);
    CHECK(j["parameters"].num == 224);
    CHECK(j["tensor_bytes"].num == 332);
    CHECK(j["bits_per_weight"].num == doctest::Approx(332.0 * 8 / 224).epsilon(1e-4));

    const RunResult all = run_infer("inspect --json --max-items=0 '" + tf->path.string() + "'");
    REQUIRE(all.status == 0);
    const Json full = parse_json(all.out);
    CHECK(full["metadata"].arr[5]["value"].arr.size() == 20);
    CHECK(full["metadata"].arr[5]["value"].arr[19].str == "tok19");
}

TEST_CASE("inspect: a real vocabulary file gives valid JSON") {
    const std::string path = KINFER_DATA_DIR "/vocab/mistral-v0.3-vocab.gguf";
    if (!std::filesystem::exists(path)) {
        FAIL("committed test data missing: " << path << " is missing");
        return;
    }
    const RunResult r = run_infer("inspect --json --max-items 0 '" + path + "'");
    REQUIRE(r.status == 0);
    Json j;
    REQUIRE_NOTHROW(j = parse_json(r.out));
    bool found = false;
    for (const Json& kv : j["metadata"].arr)
        if (kv["key"].str == "tokenizer.ggml.tokens") {
            found = true;
            CHECK(kv["value"].arr.size() == 32768);
            CHECK(kv["value"].arr[1].str == "<s>");
        }
    CHECK(found);
}

TEST_CASE("inspect: corrupt files exit 1 with the reader's error; bad usage exits 2") {
    const auto tf = write_test_file();
    const GgufFile f = GgufFile::from_bytes(tf->bytes);
    {
        // Cut the file inside the last tensor's data.
        const auto cut = temp_path("cut.gguf");
        std::ofstream(cut, std::ios::binary)
            .write(reinterpret_cast<const char*>(tf->bytes.data()), std::streamsize(f.data_offset() + 200));
        const RunResult r = run_infer("inspect '" + cut.string() + "'");
        std::filesystem::remove(cut);
        CHECK(r.status == 1);
        CHECK(r.out.empty());
        CHECK(r.err.find("infer inspect: error: " + cut.string() + ": invalid GGUF at offset") == 0);
        CHECK(r.err.find("tensor 'blk.0.attn_q.weight' data") != std::string::npos);
        CHECK(r.err.find("runs past the end of the file") != std::string::npos);
    }
    {
        const auto bad = temp_path("bad.gguf");
        static const char kBad[] = "GGUF\x09\0\0\0 and then nothing useful";
        std::ofstream(bad, std::ios::binary).write(kBad, sizeof kBad - 1);
        const RunResult r = run_infer("inspect --json '" + bad.string() + "'");
        std::filesystem::remove(bad);
        CHECK(r.status == 1);
        CHECK(r.out.empty());
        CHECK(r.err.find("unsupported GGUF version 9") != std::string::npos);
    }
    const RunResult missing = run_infer("inspect /nonexistent/model.gguf");
    CHECK(missing.status == 1);
    CHECK(missing.err.find("/nonexistent/model.gguf: cannot open") != std::string::npos);

    const RunResult flag = run_infer("inspect --frobnicate '" + tf->path.string() + "'");
    CHECK(flag.status == 2);
    CHECK(flag.err.find("--frobnicate") != std::string::npos);
    CHECK(run_infer("inspect").status == 2);
    CHECK(run_infer("inspect --max-items -1 '" + tf->path.string() + "'").status == 2);
    const RunResult help = run_infer("inspect --help");
    CHECK(help.status == 0);
    CHECK(help.out.find("usage: infer inspect") == 0);
}

TEST_CASE("inspect: --json writes f32 values in the fewest digits that read back to the same float") {
    const std::string path = KINFER_SOURCE_DIR "/models/kjv-q8_0.gguf";
    REQUIRE_MESSAGE(std::filesystem::exists(path), "the demo model is missing: " << path);
    const RunResult r = run_infer("inspect --json '" + path + "'");
    REQUIRE(r.status == 0);
    // rms_norm_eps 1e-5 as a float is 9.99999975e-06; its shortest exact form is 1e-05.
    CHECK(r.out.find("\"key\": \"llama.attention.layer_norm_rms_epsilon\",\n      \"type\": \"f32\",\n"
                     "      \"value\": 1e-05\n") != std::string::npos);
}
