// `infer run`, `infer chat`, `infer logits` as users run them: the real binary, its stdout, stderr and
// exit status.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/json_prefix.hpp"
#include "kernels/cuda/cuda_info.hpp"
#include "kinfer/kinfer.hpp"
#include "tests/tiny_llama.hpp"

namespace {

struct Output {
    int status = -1;
    std::string out, err;
    int err_lines() const { return int(std::count(err.begin(), err.end(), '\n')); }
};

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs infer with `args`; stdin from `input` (a file holding it) or /dev/null. A timeout guards
// against a command that would wait on stdin.
Output infer(const std::vector<std::string>& args, const std::string* input = nullptr) {
    const std::string out = kinfer::test::temp_path("out"), err = kinfer::test::temp_path("err");
    std::string in = "/dev/null";
    if (input) {
        in = kinfer::test::temp_path("in");
        std::ofstream(in, std::ios::binary) << *input;
    }
    // One thread: the suite runs on small shared CI machines, where more threads only oversubscribe.
    std::string cmd = "OMP_NUM_THREADS=1 timeout 120 " + quote(KINFER_INFER_BIN);
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " <" + quote(in) + " >" + quote(out) + " 2>" + quote(err);
    const int rc = std::system(cmd.c_str());
    Output o;
    o.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    o.out = slurp(out);
    o.err = slurp(err);
    std::remove(out.c_str());
    std::remove(err.c_str());
    if (input) std::remove(in.c_str());
    return o;
}

#define REQUIRE_MODEL_FILE(path)                                                 \
    const std::string& path = kinfer::test::vocab_model_path();                  \
    if (path.empty()) {                                                          \
        FAIL("committed test data missing: data/vocab/mistral-v0.3-vocab.gguf"); \
        return;                                                                  \
    }

// What the library generates for the same request (the CLI must print exactly this).
std::string api_completion(const std::string& path, const std::string& prompt, int n, bool raw,
                           std::vector<std::pair<int32_t, float>> logit_bias = {}) {
    kinfer::ModelOptions mo;
    mo.threads = 1;
    const kinfer::Model model = kinfer::Model::load(path, mo);
    kinfer::Session s(model);
    kinfer::GenerateOptions g;
    g.max_tokens = n;
    g.sampling.temperature = 0;
    g.sampling.logit_bias = std::move(logit_bias);
    if (raw) return s.generate(model.tokenize(prompt, true, true), g).text;
    return s.chat(std::vector<kinfer::ChatMessage>{{"user", prompt}}, g).text;
}

}  // namespace

TEST_CASE("cli: infer run streams only model text to stdout, timings to stderr") {
    REQUIRE_MODEL_FILE(path);
    const Output o = infer({"-m", path, "-p", "Tell me a story", "-n", "12", "--temp", "0", "-t", "1"});
    CHECK(o.status == 0);
    CHECK(o.out == api_completion(path, "Tell me a story", 12, false));
    CHECK(o.err.find("load:") != std::string::npos);
    CHECK(o.err.find("prompt:") != std::string::npos);
    CHECK(o.err.find("generate: 12 tokens") != std::string::npos);
    CHECK(o.out.find("tokens/s") == std::string::npos);

    // `run` spelled out, --raw, --quiet
    const Output raw =
        infer({"run", "-m", path, "-p", "Tell me a story", "-n", "12", "--temp", "0", "--raw", "--quiet"});
    CHECK(raw.status == 0);
    CHECK(raw.err.empty());
    CHECK(raw.out == api_completion(path, "Tell me a story", 12, true));

    // -f reads the prompt from a file
    const std::string prompt_file = kinfer::test::temp_path("prompt.txt");
    std::ofstream(prompt_file) << "Tell me a story";
    const Output f = infer({"-m", path, "-f", prompt_file, "-n", "12", "--temp", "0", "--quiet"});
    std::remove(prompt_file.c_str());
    CHECK(f.out == o.out);
}

TEST_CASE("cli: seeds, stop strings, verbose") {
    REQUIRE_MODEL_FILE(path);
    const std::vector<std::string> sampled = {"-m",    path,     "-p",  "Hi there", "-n",  "16",
                                              "--raw", "--temp", "1.0", "--seed",   "123", "--quiet"};
    const Output a = infer(sampled), b = infer(sampled);
    CHECK(a.status == 0);
    CHECK(a.out == b.out);

    const Output full = infer({"-m", path, "-p", "Hi there", "--raw", "-n", "20", "--temp", "0", "--quiet"});
    REQUIRE(full.out.size() > 6);
    const std::string stop = full.out.substr(full.out.size() / 2, 2);
    const Output cut =
        infer({"-m", path, "-p", "Hi there", "--raw", "-n", "20", "--temp", "0", "--quiet", "--stop", stop});
    CHECK(cut.status == 0);
    CHECK(cut.out == full.out.substr(0, full.out.find(stop)));

    const Output v = infer({"-m", path, "-p", "Hi", "-n", "2", "--verbose", "--seed", "9"});
    CHECK(v.err.find("seed: 9") != std::string::npos);
    CHECK(v.err.find("chat template mistral-v3") != std::string::npos);
    CHECK(v.err.find("model: ") != std::string::npos);
}

TEST_CASE("cli: --logit-bias as llama.cpp's: ID+X, ID-X, ID-inf") {
    REQUIRE_MODEL_FILE(path);
    const auto run = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = {"-m", path, "-p",     "Hi there", "--raw",
                                         "-n", "6",  "--temp", "0",        "--quiet"};
        args.insert(args.end(), extra.begin(), extra.end());
        return infer(args);
    };
    const Output plain = run({});
    REQUIRE(plain.status == 0);
    REQUIRE(plain.out == api_completion(path, "Hi there", 6, true));
    // The first greedy token banned: the text the API gives with the same ban, and not the plain one.
    kinfer::ModelOptions mo;
    mo.threads = 1;
    const kinfer::Model model = kinfer::Model::load(path, mo);
    kinfer::Session s(model);
    const auto logits = s.feed(model.tokenize("Hi there", true, true));
    const int32_t first = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    const Output banned = run({"--logit-bias", std::to_string(first) + "-inf"});
    CHECK(banned.status == 0);
    CHECK(banned.out != plain.out);
    CHECK(banned.out == api_completion(path, "Hi there", 6, true, {{first, -INFINITY}}));
    // A large bias: that token every time; two flags add up (7+500, 7-400: +100 left, the same text as
    // 7+100).
    const Output forced = run({"-l", "1783+1000"});
    CHECK(forced.out == api_completion(path, "Hi there", 6, true, {{1783, 1000.0f}}));
    CHECK(forced.out != plain.out);
    const Output two = run({"-l", "1783+1500", "--logit-bias", "1783-500"});
    CHECK(two.out == forced.out);
    for (const char* bad : {"1783", "+5", "x+1", "1783+", "1783+1e3", "1783*2", "1783+inf", "99999999+1"}) {
        CAPTURE(bad);
        const Output o = run({"--logit-bias", bad});
        CHECK(o.status == 2);
        CHECK(o.out.empty());
        CHECK(o.err.find("logit") != std::string::npos);
    }
}

TEST_CASE("cli: --json keeps the reply one JSON object, as the library's JSON mode") {
    REQUIRE_MODEL_FILE(path);
    kinfer::ModelOptions mo;
    mo.threads = 1;
    const kinfer::Model model = kinfer::Model::load(path, mo);
    // The id of the token whose text is exactly `text` (after another token: no word-start space).
    const auto token = [&](const char* text) {
        const int32_t id = model.tokenize(std::string("a") + text).back();
        REQUIRE(model.detokenize(std::vector<int32_t>{id}) == text);
        return std::to_string(id);
    };
    const auto run = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = {"-m", path, "-p",     "Hi there", "--raw",
                                         "-n", "30", "--temp", "0",        "--quiet"};
        args.insert(args.end(), extra.begin(), extra.end());
        return infer(args);
    };
    // This random model left alone: a prefix of an object, the library's text for the same request.
    const Output free = run({"--json"});
    CHECK(free.status == 0);
    REQUIRE_FALSE(free.out.empty());
    CHECK(free.out[0] == '{');
    kinfer::engine::JsonPrefix p;
    CHECK(p.push(free.out));
    kinfer::Session s(model);
    kinfer::GenerateOptions g;
    g.max_tokens = 30;
    g.sampling.temperature = 0;
    g.json_object = true;
    std::string streamed;
    const kinfer::GenerateResult r =
        s.generate(model.tokenize("Hi there", true, true), g, [&](std::string_view t) {
            streamed += t;
            return true;
        });
    CHECK(free.out == r.text);
    CHECK(streamed == r.text);
    // Biases steer it through a whole object, which ends the reply: '"' wherever it fits, then ':', '}', '{'.
    const Output whole = run({"--json", "-l", token("{") + "+50", "-l", token("\"") + "+100", "-l",
                              token(":") + "+90", "-l", token("}") + "+80"});
    CHECK(whole.status == 0);
    CHECK(whole.out == R"({"":""})");
    // Without --json the same biases make no object.
    CHECK(run({"-l", token("{") + "+50", "-l", token("}") + "+100"}).out != "{}");
    CHECK(run({"--json", "-l", token("{") + "+50", "-l", token("}") + "+100"}).out == "{}");
}

TEST_CASE("cli: a full context stops with a message, --context-shift goes on") {
    REQUIRE_MODEL_FILE(path);
    const Output o = infer({"-m", path, "-p", "Hi", "--raw", "-n", "100", "--ctx", "24", "--temp", "0"});
    CHECK(o.status == 0);
    CHECK(o.err.find("context full (24 tokens)") != std::string::npos);
    CHECK(o.err.find("--context-shift") != std::string::npos);
    const Output s =
        infer({"-m", path, "-p", "Hi", "--raw", "-n", "60", "--ctx", "24", "--temp", "0", "--context-shift"});
    CHECK(s.status == 0);
    CHECK(s.err.find("context full") == std::string::npos);
    CHECK(s.err.find("generate: 60 tokens") != std::string::npos);
}

TEST_CASE("cli: errors are one line on stderr with a non-zero status") {
    const std::string not_gguf = kinfer::test::temp_path("not.gguf");
    std::ofstream(not_gguf) << "plain text, not a model";
    struct Case {
        std::vector<std::string> args;
        int status;
        std::string needle;
    };
    std::vector<Case> cases = {
        {{"-m", "/nonexistent/model.gguf", "-p", "hi"}, 1, "cannot open"},
        {{"-m", not_gguf, "-p", "hi"}, 1, "not a GGUF file"},
        {{"run", "-m", not_gguf}, 2, "missing -p PROMPT"},
        {{"-m", not_gguf, "-p", "hi", "--frobnicate"}, 2, "unknown option '--frobnicate'"},
        {{"-m", not_gguf, "-p", "hi", "--temp", "warm"}, 2, "wants a number"},
        {{"-m", not_gguf, "-p", "hi", "--device", "tpu"}, 2, "--device must be cpu or cuda"},
        {{"logits", "-m", not_gguf, "--tokens", "1,x"}, 2, "not a token id"},
        {{"chat", "-m", not_gguf, "extra"}, 2, "unexpected argument 'extra'"},
        {{"nonsense"}, 2, "unknown command"},
    };
    const std::string& path = kinfer::test::vocab_model_path();
    if (!path.empty()) {
        cases.push_back({{"-m", path, "-p", "bad \xff byte"}, 2, "not valid UTF-8"});
        cases.push_back({{"-m", path, "-p", "a prompt that is too long for this context", "--ctx", "4"},
                         2,
                         "longer than the context of 4 tokens"});
        if (kinfer::cuda::query_devices().count == 0)  // CI has no GPU; on a GPU machine this runs
            cases.push_back({{"-m", path, "-p", "hi", "--device", "cuda"}, 1, "use --device cpu"});
        cases.push_back({{"-m", path, "-p", "hi", "--chat-template", "nope"}, 2, "nope"});
    }
    const std::string gpt2 = kinfer::test::temp_path("gpt2.gguf");
    kinfer::test::TinyLlamaSpec spec;
    spec.arch = "gpt2";
    kinfer::test::write_tiny_llama(spec, gpt2);
    cases.push_back({{"-m", gpt2, "-p", "hi"}, 1, "unsupported architecture 'gpt2'"});
    const std::string iq4 = kinfer::test::temp_path("iq4.gguf");
    spec = {};
    spec.weight_type = kinfer::GgmlType::IQ4_NL;
    spec.n_ff = 64;
    kinfer::test::write_tiny_llama(spec, iq4);
    cases.push_back({{"-m", iq4, "-p", "hi"}, 1, "blk.0.attn_q.weight has type iq4_nl"});

    for (const auto& c : cases) {
        CAPTURE(c.args);
        const Output o = infer(c.args);
        CHECK(o.status == c.status);
        CHECK(o.out.empty());
        CHECK(o.err_lines() == (c.needle == "unknown command" ? o.err_lines() : 1));
        CHECK(o.err.find(c.needle) != std::string::npos);
    }
    std::remove(not_gguf.c_str());
    std::remove(gpt2.c_str());
    std::remove(iq4.c_str());
}

TEST_CASE("cli: run never reads stdin; help texts") {
    REQUIRE_MODEL_FILE(path);
    // stdin is a pipe that never ends: run must not wait on it (the timeout would kill it: status != 0)
    const std::string cmd = "yes | OMP_NUM_THREADS=1 timeout 60 " + quote(KINFER_INFER_BIN) + " -m " +
                            quote(path) + " -p hi -n 2 --quiet > /dev/null";
    CHECK(std::system(cmd.c_str()) == 0);

    for (const char* sub : {"run", "chat", "logits"}) {
        const Output h = infer({sub, "--help"});
        CHECK(h.status == 0);
        CHECK(h.out.find("usage: infer") != std::string::npos);
        CHECK(h.out.size() > 600);
    }
    const Output top = infer({"--help"});
    CHECK(top.out.find("chat") != std::string::npos);
    CHECK(top.out.find("logits") != std::string::npos);
}

TEST_CASE("cli: infer chat with scripted input keeps the conversation") {
    REQUIRE_MODEL_FILE(path);
    const std::string input = "Hello there\n\nWhat did I say?\nbye\nthis line is never read\n";
    const Output o = infer({"chat", "-m", path, "--temp", "0", "-n", "8", "-t", "1"}, &input);
    CHECK(o.status == 0);
    CHECK(o.err.empty());  // no banner, prompts or timings when stdin is not a terminal
    // one reply per user line, each on its own line
    REQUIRE(std::count(o.out.begin(), o.out.end(), '\n') == 2);

    // the same conversation through the library
    kinfer::ModelOptions mo;
    mo.threads = 1;
    const kinfer::Model model = kinfer::Model::load(path, mo);
    kinfer::Session s(model);
    kinfer::GenerateOptions g;
    g.max_tokens = 8;
    g.sampling.temperature = 0;
    std::vector<kinfer::ChatMessage> h = {{"user", "Hello there"}};
    const auto r1 = s.chat(h, g);
    h.push_back({"assistant", r1.text});
    h.push_back({"user", "What did I say?"});
    const auto r2 = s.chat(h, g);
    CHECK(o.out == r1.text + "\n" + r2.text + "\n");

    // end of input without an exit command; --verbose shows the cache reuse
    const std::string two = "one\ntwo\n";
    const Output v = infer({"chat", "-m", path, "--temp", "0", "-n", "4", "--verbose"}, &two);
    CHECK(v.status == 0);
    CHECK(v.err.find("cached)") != std::string::npos);
}

TEST_CASE("cli: infer logits writes raw float32 or JSON") {
    REQUIRE_MODEL_FILE(path);
    const std::string out = kinfer::test::temp_path("logits.f32");
    const Output o =
        infer({"logits", "-m", path, "--tokens", "1,1014,1032", "--all", "-o", out, "--kv-type", "f32"});
    CHECK(o.status == 0);
    const std::string bytes = slurp(out);
    std::remove(out.c_str());
    REQUIRE(bytes.size() == 3 * 32768 * 4);

    kinfer::ModelOptions mo;
    mo.kv_type = kinfer::KvType::F32;
    const kinfer::Model model = kinfer::Model::load(path, mo);
    kinfer::Session s(model, 3);
    const auto want = s.feed(std::vector<int32_t>{1, 1014, 1032}, true);
    CHECK(std::memcmp(bytes.data(), want.data(), bytes.size()) == 0);

    const Output j = infer({"logits", "-m", path, "--tokens", "1,1014,1032", "--json", "--kv-type", "f32"});
    CHECK(j.status == 0);
    const auto doc = nlohmann::json::parse(j.out);
    CHECK(doc.size() == 3);
    CHECK(j.out.rfind("{\"n_vocab\":32768,\"tokens\":[1,1014,1032],\"logits\":[[", 0) == 0);
    CHECK(doc["n_vocab"] == 32768);
    CHECK(doc["tokens"] == std::vector<int>{1, 1014, 1032});
    REQUIRE(doc["logits"].size() == 1);  // the last position only
    REQUIRE(doc["logits"][0].size() == 32768);
    // every value reads back to exactly the float the model computed
    bool exact = true;
    for (size_t i = 0; i < 32768; ++i)
        exact = exact && float(doc["logits"][0][i].get<double>()) == want[2 * 32768 + i];
    CHECK(exact);
}

TEST_CASE("cli: infer logits --batch N steps the tokens; --compare measures the error against a reference") {
    REQUIRE_MODEL_FILE(path);
    const std::string one_step = kinfer::test::temp_path("logits-one.f32");
    const std::string tokens = "1,1014,1032,1040,1050,1060,1070";
    REQUIRE(infer({"logits", "-m", path, "--tokens", tokens, "--all", "-o", one_step, "--quiet"}).status ==
            0);
    // --batch 1 is the decode path: the same logits within float tolerance (7 rows, all of them compared).
    const Output d =
        infer({"logits", "-m", path, "--tokens", tokens, "--all", "--batch", "1", "--compare", one_step});
    CHECK(d.status == 0);
    CHECK(d.out.find("over 7 positions; top-1 same at 7/7") != std::string::npos);
    const size_t at = d.out.find("max rel err ", d.out.rfind("\nmax rel err") + 1);
    REQUIRE(at != std::string::npos);
    CHECK(std::strtod(d.out.c_str() + at + 12, nullptr) < 1e-4);
    // --batch 3 without --all: only the last position, still the same.
    const std::string last = kinfer::test::temp_path("logits-last.f32");
    REQUIRE(infer({"logits", "-m", path, "--tokens", tokens, "--batch", "3", "-o", last, "--quiet"}).status ==
            0);
    CHECK(slurp(last).size() == 32768 * 4);
    CHECK(slurp(last) == slurp(one_step).substr(6 * 32768 * 4));
    // A reference of the wrong shape is an error that says what it expected.
    const Output bad = infer({"logits", "-m", path, "--tokens", "1,2", "--all", "--compare", one_step});
    CHECK(bad.status != 0);
    CHECK(bad.err.find("expected 65536 (2 x 32768)") != std::string::npos);
    std::remove(one_step.c_str());
    std::remove(last.c_str());
}

TEST_CASE("cli: Ctrl-C stops a chat reply, not the session") {
    REQUIRE_MODEL_FILE(path);
    // Replies never end here (no token limit; the context shifts), so only SIGINT stops them. The first
    // SIGINT arrives during the first reply; the second line is read afterwards and its reply is interrupted
    // by the second SIGINT; then stdin ends and chat exits normally.
    const std::string err = kinfer::test::temp_path("chat-err");
    const std::string script = "(printf 'one\\n'; sleep 3; printf 'two\\n') | OMP_NUM_THREADS=1 " +
                               quote(KINFER_INFER_BIN) + " chat -m " + quote(path) +
                               " -n -1 --ctx 64 --context-shift --temp 0 > /dev/null 2> " + quote(err) +
                               " & pid=$!; sleep 2; kill -INT $pid; sleep 3; kill -INT $pid; wait $pid";
    const int rc = std::system(("timeout 60 sh -c " + quote(script)).c_str());
    const std::string log = slurp(err);
    std::remove(err.c_str());
    CHECK(WIFEXITED(rc));
    CHECK(WEXITSTATUS(rc) == 0);
    size_t n = 0;
    for (size_t at = log.find("[interrupted]"); at != std::string::npos;
         at = log.find("[interrupted]", at + 1))
        ++n;
    CHECK(n == 2);
}
