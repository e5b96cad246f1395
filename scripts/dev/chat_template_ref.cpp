// Dev-only reference program (never built by CMake or CI): renders our chat-template test conversations with
// llama.cpp's llama_chat_apply_template, for tests/fixtures/tokenizer/chat_expected.llama-cpp.txt. Built and
// run by scripts/dev/gen_chat_fixtures.sh against a llama.cpp build.
//
//   chat_template_ref CONVERSATIONS.txt TEMPLATE_NAME...        -> expected lines on stdout
//   chat_template_ref --print-template FILE.gguf                -> the file's tokenizer.chat_template
//
// Output lines: "template<TAB>conversation<TAB>add_generation_prompt(0|1)<TAB>rendered text", the text with
// \n \r \t \\ escaped (the format tests/chat_template_test.cpp reads).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gguf.h"
#include "llama.h"

namespace {

struct Message {
    std::string role, content;
};
struct Conversation {
    std::string name;
    std::vector<Message> messages;
};

std::string unescape(const std::string& s) {
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

std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\\')
            out += "\\\\";
        else
            out += c;
    }
    return out;
}

std::vector<Conversation> read_conversations(const char* path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot open %s\n", path);
        std::exit(1);
    }
    std::vector<Conversation> convs;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        if (line.rfind("=== ", 0) == 0) {
            convs.push_back({line.substr(4), {}});
            continue;
        }
        const size_t colon = line.find(": ");
        if (colon == std::string::npos || convs.empty()) {
            std::fprintf(stderr, "bad line: %s\n", line.c_str());
            std::exit(1);
        }
        convs.back().messages.push_back({line.substr(0, colon), unescape(line.substr(colon + 2))});
    }
    return convs;
}

int print_template(const char* path) {
    gguf_init_params params = {true, nullptr};
    gguf_context* ctx = gguf_init_from_file(path, params);
    if (!ctx) return 1;
    const int64_t k = gguf_find_key(ctx, "tokenizer.chat_template");
    if (k < 0) return 1;
    std::fputs(gguf_get_val_str(ctx, k), stdout);
    gguf_free(ctx);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::string(argv[1]) == "--print-template") return print_template(argv[2]);
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s CONVERSATIONS.txt TEMPLATE_NAME...\n", argv[0]);
        return 2;
    }
    const auto convs = read_conversations(argv[1]);
    for (int t = 2; t < argc; ++t) {
        for (const auto& conv : convs) {
            std::vector<llama_chat_message> msgs;
            for (const auto& m : conv.messages) msgs.push_back({m.role.c_str(), m.content.c_str()});
            for (int gen = 0; gen < 2; ++gen) {
                std::vector<char> buf(4096);
                int32_t n =
                    llama_chat_apply_template(argv[t], msgs.data(), msgs.size(), gen, buf.data(), buf.size());
                if (n > int32_t(buf.size())) {
                    buf.resize(n);
                    n = llama_chat_apply_template(argv[t], msgs.data(), msgs.size(), gen, buf.data(),
                                                  buf.size());
                }
                if (n < 0) {
                    std::fprintf(stderr, "llama_chat_apply_template(%s) failed for %s\n", argv[t],
                                 conv.name.c_str());
                    return 1;
                }
                std::printf("%s\t%s\t%d\t%s\n", argv[t], conv.name.c_str(), gen,
                            escape(std::string(buf.data(), n)).c_str());
            }
        }
    }
    return 0;
}
