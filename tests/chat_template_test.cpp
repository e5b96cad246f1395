// Chat templates: every family against llama.cpp's llama_chat_apply_template, Mistral v0.3 against its own
// Jinja template (rendered by Jinja2 as transformers does), template recognition and fallbacks.
// Fixtures: tests/fixtures/tokenizer/chat_*.txt, made by scripts/dev/gen_chat_fixtures.sh.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "gguf/gguf_file.hpp"
#include "gguf/gguf_writer.hpp"
#include "kinfer/error.hpp"
#include "tokenizer/chat_template.hpp"
#include "tokenizer/tokenizer.hpp"

using namespace kinfer;
using namespace kinfer::tokenizer;
namespace fs = std::filesystem;

namespace {

const std::string kFixtures = std::string(KINFER_SOURCE_DIR) + "/tests/fixtures/tokenizer";
const std::string kMistralVocab = std::string(KINFER_DATA_DIR) + "/vocab/mistral-v0.3-vocab.gguf";

std::string unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        const char c = s[++i];
        out += c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
    }
    return out;
}

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot open " << path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

using Conversations = std::map<std::string, std::vector<ChatMessage>>;

Conversations read_conversations() {
    Conversations convs;
    std::string current;
    for (const std::string& line : lines_of(kFixtures + "/chat_conversations.txt")) {
        if (line.empty() || line[0] == '#') continue;
        if (line.rfind("=== ", 0) == 0) {
            current = line.substr(4);
            convs[current];
            continue;
        }
        const size_t colon = line.find(": ");
        REQUIRE(colon != std::string::npos);
        convs[current].push_back({line.substr(0, colon), unescape(line.substr(colon + 2))});
    }
    return convs;
}

struct Expected {
    std::string tmpl, conv;
    bool gen;
    std::string text;
};

std::vector<Expected> read_expected(const std::string& file) {
    std::vector<Expected> out;
    for (const std::string& line : lines_of(kFixtures + "/" + file)) {
        std::vector<std::string> f;
        size_t pos = 0;
        for (int k = 0; k < 3; ++k) {
            const size_t tab = line.find('\t', pos);
            REQUIRE(tab != std::string::npos);
            f.push_back(line.substr(pos, tab - pos));
            pos = tab + 1;
        }
        out.push_back({f[0], f[1], f[2] == "1", unescape(line.substr(pos))});
    }
    return out;
}

bool has_system(const std::vector<ChatMessage>& m) {
    return !m.empty() && m[0].role == "system";
}
int user_turns(const std::vector<ChatMessage>& m) {
    int n = 0;
    for (const auto& x : m) n += x.role == "user";
    return n;
}

std::vector<uint8_t> gguf_with_template(const std::string* tmpl) {
    gguf::GgufWriter w;
    w.add_string("general.architecture", "llama");
    if (tmpl) w.add_string("tokenizer.chat_template", *tmpl);
    return w.to_bytes({});
}

}  // namespace

TEST_CASE("chat templates: every family matches llama.cpp's llama_chat_apply_template") {
    const Conversations convs = read_conversations();
    const auto expected = read_expected("chat_expected.llama-cpp.txt");
    REQUIRE(convs.size() >= 10);
    REQUIRE(expected.size() == convs.size() * 2 * 8);
    int compared = 0, mismatches = 0;
    for (const Expected& e : expected) {
        const auto& msgs = convs.at(e.conv);
        // Our mistral-v3 follows the model's own template, which puts the system prompt in the last user
        // turn; llama.cpp's built-in one puts it in the first. They agree without a system prompt, or when
        // the only user message is the last message.
        if (e.tmpl == "mistral-v3" && has_system(msgs) &&
            !(user_turns(msgs) == 1 && msgs.back().role == "user"))
            continue;
        const std::string got = ChatTemplate::by_name(e.tmpl).apply(msgs, e.gen);
        ++compared;
        if (got != e.text) {
            ++mismatches;
            MESSAGE(e.tmpl << " / " << e.conv << " / gen " << e.gen << "\n  want: " << e.text
                           << "\n  got:  " << got);
        }
    }
    CHECK(compared >= int(expected.size()) - 16);
    CHECK(mismatches == 0);
}

TEST_CASE("chat templates: mistral-v3 renders exactly what the Mistral v0.3 file's Jinja template renders") {
    const Conversations convs = read_conversations();
    const auto expected = read_expected("chat_expected.jinja.txt");
    REQUIRE(expected.size() == convs.size() * 2);
    const ChatTemplate t = ChatTemplate::by_name("mistral-v3");
    for (const Expected& e : expected) {
        REQUIRE_MESSAGE(e.text.rfind("<s>", 0) == 0, "Jinja output starts with bos_token: " << e.text);
        // apply() leaves BOS to the tokenizer (see chat_template.hpp).
        CHECK_MESSAGE(t.apply(convs.at(e.conv), e.gen) == e.text.substr(3), e.conv);
    }
}

TEST_CASE("chat templates: prompt tokens carry exactly one BOS and equal the Jinja text's tokens") {
    if (!fs::exists(kMistralVocab)) {
        FAIL("committed test data missing: " << kMistralVocab << " not found");
        return;
    }
    const auto file = gguf::GgufFile::open(kMistralVocab);
    const Tokenizer tok = Tokenizer::from_gguf(file);
    std::string warning;
    const ChatTemplate t = ChatTemplate::from_gguf(file, "", &warning);
    CHECK(t.name() == "mistral-v3");
    CHECK(warning.empty());
    const Conversations convs = read_conversations();
    for (const Expected& e : read_expected("chat_expected.jinja.txt")) {
        const auto ours = tok.encode(t.apply(convs.at(e.conv), e.gen), tok.add_bos(), true);
        const auto theirs = tok.encode(e.text, false, true);  // "<s>" in the text parses to BOS
        CHECK_MESSAGE(ours == theirs, e.conv);
        REQUIRE(ours.size() >= 2);
        CHECK(ours[0] == tok.bos_id());
        CHECK(ours[1] != tok.bos_id());
        CHECK(std::count(ours.begin(), ours.end(), tok.bos_id()) == 1);
    }
}

TEST_CASE("chat templates: no family starts with the BOS text") {
    const Conversations convs = read_conversations();
    for (std::string_view name : {"mistral-v3", "mistral-v1", "llama2", "llama2-sys", "llama2-sys-bos",
                                  "llama2-sys-strip", "chatml", "zephyr"}) {
        const ChatTemplate t = ChatTemplate::by_name(name);
        CHECK(t.name() == name);
        for (const auto& [conv, msgs] : convs) CHECK(t.apply(msgs, true).rfind("<s>", 0) != 0);
    }
}

TEST_CASE("chat templates: mistral-v3 enforces the template's rules and trims like Jinja") {
    const ChatTemplate t = ChatTemplate::by_name("mistral-v3");
    const std::vector<ChatMessage> two_users = {{"user", "a"}, {"user", "b"}};
    CHECK_THROWS_WITH_AS(t.apply(two_users, true), doctest::Contains("alternate"), UsageError);
    const std::vector<ChatMessage> starts_with_assistant = {{"assistant", "a"}};
    CHECK_THROWS_AS(t.apply(starts_with_assistant, true), UsageError);
    const std::vector<ChatMessage> tool = {{"user", "a"}, {"tool", "b"}};
    CHECK_THROWS_AS(t.apply(tool, true), UsageError);
    const std::vector<ChatMessage> late_system = {{"user", "a"}, {"assistant", "b"}, {"system", "c"}};
    CHECK_THROWS_AS(t.apply(late_system, true), UsageError);
    CHECK(t.apply(std::vector<ChatMessage>{}, true).empty());
    CHECK(t.apply(std::vector<ChatMessage>{{"system", "only"}}, true).empty());
    // Jinja's trim is Python's str.strip(): Unicode spaces go too (U+3000, U+00A0), inner ones stay.
    const std::vector<ChatMessage> spaces = {{"user", "q"},
                                             {"assistant", "\xE3\x80\x80 答\xC2\xA0案 \xC2\xA0\n"}};
    CHECK(t.apply(spaces, false) == "[INST] q[/INST] 答\xC2\xA0案</s>");
}

TEST_CASE("chat templates: recognising template sources") {
    // Meta's Llama 2 chat template.
    CHECK(ChatTemplate::detect(
              "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
              "system_message = "
              "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = "
              "false %}"
              "{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != "
              "false %}"
              "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] "
              "%}{% else %}"
              "{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ "
              "bos_token + "
              "'[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + "
              "content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}") == "llama2-sys-strip");
    // Mistral 7B Instruct v0.1.
    CHECK(ChatTemplate::detect(
              "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
              "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
              "'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}") == "llama2");
    CHECK(ChatTemplate::detect("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                               "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}") == "chatml");
    CHECK(ChatTemplate::detect("{{ '<|user|>\\n' + content + '<|endoftext|>' }}") == "zephyr");
    CHECK(ChatTemplate::detect("{{ ' [INST] ' + system_message }} [AVAILABLE_TOOLS]") == "mistral-v1");
    CHECK(ChatTemplate::detect("[INST] x [AVAILABLE_TOOLS]") == "mistral-v3");
    CHECK(ChatTemplate::detect("mistral-v1") == "mistral-v1");
    CHECK(ChatTemplate::detect("[SYSTEM_PROMPT] [INST]").empty());  // v7: not supported
    CHECK(ChatTemplate::detect("{{ messages }}").empty());
    CHECK(ChatTemplate::detect("").empty());

    if (fs::exists(kMistralVocab)) {
        const auto file = gguf::GgufFile::open(kMistralVocab);
        const std::string src = file.get<std::string>("tokenizer.chat_template");
        CHECK(ChatTemplate::detect(src) == "mistral-v3");
    }
}

TEST_CASE("chat templates: override, unknown names and fallback with a warning") {
    const std::string unknown = "{{ messages }}";
    const auto with_unknown = gguf::GgufFile::from_bytes(gguf_with_template(&unknown), "odd.gguf");
    std::string warning;
    ChatTemplate t = ChatTemplate::from_gguf(with_unknown, "", &warning);
    CHECK(t.name() == ChatTemplate::kDefaultName);
    CHECK(warning.find("odd.gguf") != std::string::npos);
    CHECK(warning.find("chatml") != std::string::npos);
    CHECK(warning.find("--chat-template") != std::string::npos);

    const auto without = gguf::GgufFile::from_bytes(gguf_with_template(nullptr), "bare.gguf");
    t = ChatTemplate::from_gguf(without, "", &warning);
    CHECK(t.name() == "chatml");
    CHECK(warning.find("no tokenizer.chat_template") != std::string::npos);
    CHECK_NOTHROW((void)ChatTemplate::from_gguf(without, "", nullptr));

    t = ChatTemplate::from_gguf(with_unknown, "zephyr", &warning);
    CHECK(t.name() == "zephyr");
    CHECK(warning.empty());
    CHECK_THROWS_WITH_AS((void)ChatTemplate::from_gguf(with_unknown, "jinja-magic", &warning),
                         doctest::Contains("mistral-v3"), UsageError);
    CHECK_THROWS_AS((void)ChatTemplate::by_name(""), UsageError);
}
