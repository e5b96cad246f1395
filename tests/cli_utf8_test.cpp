// Non-ASCII text through every way `infer` takes text from the user: -p, -f (file and stdin), --system,
// --stop, the chat template's messages, chat's piped lines, `infer tokenize -p/-f`. Each test sends Chinese
// text and emoji through the real binary and checks what the model got (the --verbose echo, the prompt's
// token count, the token ids) and what it answered against the library fed the same strings directly.
// Interactive chat in a terminal is tests/chat_terminal_test.py.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/gguf_value.hpp"
#include "kinfer/kinfer.hpp"
#include "tests/infer_cli.hpp"
#include "tests/tiny_llama.hpp"  // temp_path

namespace {

const std::string kPoem = "你好，请扮演一位诗人🙂 写一首关于秋天的诗🍂";
const std::string kSystem = "你是一位诗人🌸，只用中文回答。";
const std::string kMixed = "Grüße, こんにちは 😀 and 中文";

using kinfer_test::CliResult;

// Runs infer with `args` (each one quoted for the shell), stdin from `input` or /dev/null.
CliResult run(const std::vector<std::string>& args, const std::string* input = nullptr) {
    std::string line;
    for (const auto& a : args) line += " " + kinfer_test::shell_quote(a);
    std::string in = "/dev/null";
    if (input) {
        in = kinfer::test::temp_path("stdin");
        std::ofstream(in, std::ios::binary) << *input;
    }
    const CliResult r = kinfer_test::run_infer_cli(line + " <" + kinfer_test::shell_quote(in),
                                                   "OMP_NUM_THREADS=1 timeout 120");
    if (input) std::remove(in.c_str());
    return r;
}

bool has(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::string json(const std::string& s) {
    return kinfer::gguf::json_string(s);
}

std::string trim(const std::string& s) {  // as infer chat trims messages and replies
    const size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// A small model with the Mistral vocabulary and chat template whose random weights write varied text in
// many scripts (tiny_llama's vocab model mostly echoes control tokens in chat, giving empty replies): made
// once per test run with `infer synth`, removed at exit. "" if that fails.
const std::string& chat_model_path() {
    struct File {
        std::string path;
        ~File() {
            if (!path.empty()) std::remove(path.c_str());
        }
    };
    static const File file = [] {
        File f{kinfer::test::temp_path("synth-chat.gguf")};
        const CliResult r = kinfer_test::run_infer_cli(
            "synth -o " + kinfer_test::shell_quote(f.path) + " --preset tiny --vocab " +
            kinfer_test::shell_quote(std::string(KINFER_DATA_DIR) + "/vocab/mistral-v0.3-vocab.gguf") +
            " --n-embd 64 --n-layer 2 --n-ff 128 --type Q8_0 --quiet");
        if (r.status != 0) f.path.clear();
        return f;
    }();
    return file.path;
}

kinfer::Model load(const std::string& chat_template = "") {
    kinfer::ModelOptions o;
    o.threads = 1;
    o.chat_template = chat_template;
    return kinfer::Model::load(chat_model_path(), o);
}

kinfer::GenerateOptions greedy(int n) {
    kinfer::GenerateOptions g;
    g.max_tokens = n;
    g.sampling.temperature = 0;
    return g;
}

// The library's reply; never empty, or the comparisons with the CLI would prove nothing.
std::string chat_reply(const kinfer::Model& model, const std::vector<kinfer::ChatMessage>& messages, int n) {
    kinfer::Session s(model);
    const std::string reply = s.chat(messages, greedy(n)).text;
    CHECK(!reply.empty());
    return reply;
}

#define REQUIRE_CHAT_MODEL()                                                      \
    if (chat_model_path().empty()) {                                              \
        FAIL("infer synth could not make the test model (data/vocab/ missing?)"); \
        return;                                                                   \
    }                                                                             \
    const std::string path = chat_model_path()

}  // namespace

TEST_CASE("utf8: -p with Chinese and emoji reaches the model intact, templated and raw") {
    REQUIRE_CHAT_MODEL();
    const kinfer::Model model = load();
    const CliResult t = run({"-m", path, "-p", kPoem, "-n", "8", "--temp", "0", "--verbose"});
    CHECK(t.status == 0);
    CHECK(has(t.err, "user: " + json(kPoem) + "\n"));
    CHECK(has(t.err, "prompt: " + std::to_string(model.chat_prompt({{"user", kPoem}}).size()) + " tokens"));
    CHECK(t.out == chat_reply(model, {{"user", kPoem}}, 8));

    const CliResult r = run({"-m", path, "-p", kMixed, "-n", "8", "--temp", "0", "--verbose", "--raw"});
    CHECK(r.status == 0);
    CHECK(has(r.err, "text: " + json(kMixed) + "\n"));
    const std::vector<int32_t> ids = model.tokenize(kMixed, true, true);
    CHECK(has(r.err, "prompt: " + std::to_string(ids.size()) + " tokens, raw"));
    kinfer::Session s(model);
    CHECK(r.out == s.generate(ids, greedy(8)).text);
    CHECK(!r.out.empty());
}

TEST_CASE("utf8: -f reads the prompt file's text intact, from a file or stdin, without a byte order mark") {
    REQUIRE_CHAT_MODEL();
    const kinfer::Model model = load();
    const std::string text = kPoem + "\n" + kMixed + "\n";
    const std::string want = chat_reply(model, {{"user", text}}, 8);
    const std::string file = kinfer::test::temp_path("prompt.txt");
    for (const std::string& bytes : {text, "\xEF\xBB\xBF" + text}) {
        CAPTURE(bytes.size());
        std::ofstream(file, std::ios::binary) << bytes;
        const CliResult f = run({"-m", path, "-f", file, "-n", "8", "--temp", "0", "--verbose"});
        CHECK(f.status == 0);
        CHECK(has(f.err, "user: " + json(text) + "\n"));
        CHECK(f.out == want);
        const CliResult in = run({"-m", path, "-f", "-", "-n", "8", "--temp", "0", "--verbose"}, &bytes);
        CHECK(in.status == 0);
        CHECK(has(in.err, "user: " + json(text) + "\n"));
        CHECK(in.out == want);
    }
    std::remove(file.c_str());
}

TEST_CASE("utf8: --system and the user message go through each chat template intact") {
    REQUIRE_CHAT_MODEL();
    for (const std::string tmpl : {"", "chatml", "llama2-sys", "zephyr"}) {
        CAPTURE(tmpl);
        const kinfer::Model model = load(tmpl);
        const std::vector<kinfer::ChatMessage> messages = {{"system", kSystem}, {"user", kPoem}};
        std::vector<std::string> args = {"-m", path, "-p",     kPoem, "--system", kSystem,
                                         "-n", "8",  "--temp", "0",   "--verbose"};
        if (!tmpl.empty()) args.insert(args.end(), {"--chat-template", tmpl});
        const CliResult o = run(args);
        CHECK(o.status == 0);
        CHECK(has(o.err, "system: " + json(kSystem) + "\n"));
        CHECK(has(o.err, "user: " + json(kPoem) + "\n"));
        // The rendered template holds both texts byte for byte, and the CLI's prompt has its token count.
        const std::string rendered = model.apply_chat_template(messages);
        CHECK(has(rendered, kSystem));
        CHECK(has(rendered, kPoem));
        CHECK(has(o.err, "prompt: " + std::to_string(model.chat_prompt(messages).size()) + " tokens"));
        CHECK(o.out == chat_reply(model, messages, 8));
    }
}

TEST_CASE("utf8: --stop with Chinese text and emoji cuts the reply right before it") {
    REQUIRE_CHAT_MODEL();
    const kinfer::Model model = load();
    // A sampled reply (seeded: the CLI draws the same tokens) with a non-ASCII character after its start,
    // a CJK one where some seed gives one (this random model mostly writes Latin and Cyrillic).
    kinfer::GenerateOptions g;
    g.max_tokens = 48;
    g.sampling.temperature = 1.0f;
    std::string full, stop;
    uint64_t seed = 0;
    for (const bool want_cjk : {true, false}) {
        for (seed = 0; seed < 32 && stop.empty(); ++seed) {
            g.sampling.seed = seed;
            kinfer::Session s(model);
            full = s.chat(std::vector<kinfer::ChatMessage>{{"user", kPoem}}, g).text;
            for (size_t i = 1; i < full.size() && stop.empty(); ++i) {
                const auto b = static_cast<unsigned char>(full[i]);
                const size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
                if (n == 0 || i + n > full.size()) continue;
                if (!want_cjk || (b >= 0xE3 && b <= 0xE9)) stop = full.substr(i, n);  // U+3000..U+9FFF
            }
        }
        if (!stop.empty()) break;
    }
    REQUIRE_MESSAGE(!stop.empty(), "no seed gave a reply with a non-ASCII character");
    --seed;
    const size_t cut = full.find(stop);
    REQUIRE(full.substr(0, cut + stop.size()).find("停止") == std::string::npos);
    REQUIRE(full.substr(0, cut + stop.size()).find("🙂") == std::string::npos);
    const CliResult o =
        run({"-m", path, "-p", kPoem, "-n", "48", "--temp", "1", "--seed", std::to_string(seed), "--stop",
             "🙂", "--stop", "停止", "--stop", stop, "--verbose"});
    CHECK(o.status == 0);
    CHECK(has(o.err, "stop: [" + json("🙂") + ", " + json("停止") + ", " + json(stop) + "]\n"));
    CHECK(o.out == full.substr(0, cut));
    CHECK(has(o.err, "stop: stop string"));
    g.stop = {"🙂", "停止", stop};
    kinfer::Session s(model);
    CHECK(o.out == s.chat(std::vector<kinfer::ChatMessage>{{"user", kPoem}}, g).text);
}

TEST_CASE("utf8: piped chat messages and --system reach the model intact; continued lines join") {
    REQUIRE_CHAT_MODEL();
    const kinfer::Model model = load();
    const std::string input = kPoem + "\n" + kMixed + " \\\n第二行 🙂\n";
    const CliResult o =
        run({"chat", "-m", path, "--system", kSystem, "--temp", "0", "-n", "6", "--verbose"}, &input);
    CHECK(o.status == 0);
    CHECK(has(o.err, "system: " + json(kSystem) + "\n"));

    std::vector<kinfer::ChatMessage> history = {{"system", kSystem}};
    std::string replies;
    for (const std::string& text : {kPoem, kMixed + " \n第二行 🙂"}) {
        history.push_back({"user", text});
        const size_t n_prompt = model.chat_prompt(history).size();
        CHECK(has(o.err, "user: " + json(text) + " ("));
        CHECK(has(o.err, "the prompt is " + std::to_string(n_prompt) + " tokens)"));
        const std::string reply = chat_reply(model, history, 6);
        replies += reply + "\n";
        history.push_back({"assistant", trim(reply)});
    }
    CHECK(o.out == replies);
}

TEST_CASE("utf8: a piped chat line that is not UTF-8 is reported and not sent; the chat goes on") {
    REQUIRE_CHAT_MODEL();
    const kinfer::Model model = load();
    const std::string input = "ok 好\nbad \xE9 byte\n再见 👋\n";
    const CliResult o = run({"chat", "-m", path, "--temp", "0", "-n", "6"}, &input);
    CHECK(o.status == 0);
    CHECK(o.err == "infer chat: message not sent: input line 2 is not valid UTF-8 (byte 0xE9 at offset 4)\n");
    std::vector<kinfer::ChatMessage> history;
    std::string replies;
    for (const std::string& text : {"ok 好", "再见 👋"}) {
        history.push_back({"user", text});
        const std::string reply = chat_reply(model, history, 6);
        replies += reply + "\n";
        history.push_back({"assistant", trim(reply)});
    }
    CHECK(o.out == replies);
}

TEST_CASE("utf8: text flags and prompt files that are not UTF-8 are usage errors that say which") {
    REQUIRE_CHAT_MODEL();
    const std::string bad_file = kinfer::test::temp_path("bad.txt");
    std::ofstream(bad_file, std::ios::binary) << "caf\xE9";
    struct Case {
        std::vector<std::string> args;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"-m", path, "-p", "hi \xFF"}, "the prompt (-p) is not valid UTF-8 (byte 0xFF at offset 3)"},
        {{"-m", path, "-f", bad_file},
         "the prompt file " + bad_file + " is not valid UTF-8 (byte 0xE9 at offset 3)"},
        {{"-m", path, "-p", "hi", "--system", "\xC3("},
         "--system is not valid UTF-8 (byte 0xC3 at offset 0)"},
        {{"-m", path, "-p", "hi", "--stop", "a\xF0\x9F"}, "is not valid UTF-8 (byte 0xF0 at offset 1)"},
        {{"chat", "-m", path, "--system", "\xFE"}, "--system is not valid UTF-8 (byte 0xFE at offset 0)"},
        {{"tokenize", "-m", path, "-p", "x\xFF"}, "the prompt is not valid UTF-8: byte offset 1"},
        {{"synth", "-o", bad_file + ".gguf", "--name", "\xFF"},
         "--name is not valid UTF-8 (byte 0xFF at offset 0)"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.message);
        const CliResult o = run(c.args);
        CHECK(o.status == (c.args[0] == "tokenize" ? 1 : 2));
        CHECK(o.out.empty());
        CHECK(has(o.err, c.message));
        CHECK(std::count(o.err.begin(), o.err.end(), '\n') == 1);
    }
    std::remove(bad_file.c_str());
}

TEST_CASE("utf8: infer tokenize -p and -f give the library's ids for Chinese text and emoji") {
    REQUIRE_CHAT_MODEL();
    const kinfer::Model model = load();
    const std::string file = kinfer::test::temp_path("tokenize.txt");
    for (const std::string& text : {kPoem, kMixed, kSystem + "\n" + kPoem}) {
        CAPTURE(text);
        std::string want = "[";
        for (int32_t id : model.tokenize(text, true, false))
            want += (want.size() > 1 ? ", " : "") + std::to_string(id);
        want += "]\n";
        const CliResult p = run({"tokenize", "-m", path, "-p", text, "--ids"});
        CHECK(p.status == 0);
        CHECK(p.out == want);
        std::ofstream(file, std::ios::binary) << text;
        const CliResult f = run({"tokenize", "-m", path, "-f", file, "--ids"});
        CHECK(f.status == 0);
        CHECK(f.out == want);
    }
    std::remove(file.c_str());
}

TEST_CASE("utf8: infer synth --name writes Chinese text and emoji intact into general.name") {
    const std::string file = kinfer::test::temp_path("named.gguf");
    const std::string name = "诗人模型 🙂 v1";
    const CliResult w = run({"synth", "-o", file, "--vocab", "none", "--n-vocab", "300", "--n-embd", "32",
                             "--n-layer", "1", "--n-ff", "32", "--type", "F32", "--name", name, "--quiet"});
    CHECK(w.status == 0);
    const CliResult i = run({"inspect", file, "--json"});
    CHECK(i.status == 0);
    CHECK(has(i.out, json(name)));
    std::remove(file.c_str());
}
