// `infer tokenize -m MODEL.gguf (-p TEXT | -f FILE) [--ids | --pieces] [--no-bos] [--special] [--lossy]`
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include "gguf/gguf_file.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"
#include "tools/infer/args.hpp"
#include "tools/infer/commands.hpp"
#include "tools/infer/user_text.hpp"

namespace kinfer::cli {
namespace {

const char* kHelp =
    "usage: infer tokenize -m MODEL.gguf (-p TEXT | -f FILE) [--ids | --pieces] [--no-bos] [--special] "
    "[--lossy]\n\n"
    "Tokenizes text with the model's own tokenizer (from its GGUF metadata; vocabulary-only files work), "
    "the\n"
    "way llama.cpp does.\n\n"
    "  -m, --model FILE   the GGUF file\n"
    "  -p, --prompt TEXT  the text to tokenize\n"
    "  -f, --file FILE    read the text from FILE ('-' for standard input), bytes as they are\n"
    "  --ids              print one JSON array of token ids: [1, 23325, 2294]\n"
    "  --pieces           print one token per line: id, a tab, the token's vocabulary text as a JSON string\n"
    "                     (\"\\u2581\" is SentencePiece's space) (default)\n"
    "  --no-bos           do not add the BOS token the model asks for (tokenizer.ggml.add_bos_token)\n"
    "  --special          turn special-token texts such as [INST] or </s> into their tokens (as chat\n"
    "                     templates need); without it they are tokenized as plain text\n"
    "  --lossy            replace invalid UTF-8 with U+FFFD instead of failing\n\n"
    "Invalid UTF-8 input is an error that names the byte offset (exit status 1), unless --lossy.\n";

std::string read_input(const std::string& path) {
    std::ostringstream ss;
    if (path == "-") {
        ss << std::cin.rdbuf();
        return ss.str();
    }
    // An ifstream opens a directory without complaint and then reads nothing: check first.
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a text file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
    ss << in.rdbuf();
    if (in.bad()) throw Error("cannot read " + path);
    return ss.str();
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
    ArgReader args("tokenize", argc, argv);
    std::string model, prompt, file;
    bool have_prompt = false, ids = false, pieces = false, no_bos = false, special = false, lossy = false;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(kHelp, stdout);
            return 0;
        } else if (args.is("-m", "--model")) {
            model = args.value();
        } else if (args.is("-p", "--prompt")) {
            prompt = args.value();
            have_prompt = true;
        } else if (args.is("-f", "--file")) {
            file = args.value();
        } else if (args.is("--ids")) {
            ids = true;
        } else if (args.is("--pieces")) {
            pieces = true;
        } else if (args.is("--no-bos")) {
            no_bos = true;
        } else if (args.is("--special")) {
            special = true;
        } else if (args.is("--lossy")) {
            lossy = true;
        } else {
            args.unknown();
        }
    }
    if (model.empty()) throw UsageError("missing -m MODEL.gguf (see --help)");
    if (have_prompt == !file.empty())
        throw UsageError("give exactly one of -p TEXT and -f FILE (see --help)");
    if (ids && pieces) throw UsageError("--ids and --pieces exclude each other");

    std::string text = have_prompt ? prompt : read_input(file);
    if (const size_t bad = tokenizer::find_invalid_utf8(text); bad != tokenizer::kUtf8Npos) {
        if (!lossy)
            throw FormatError((have_prompt ? std::string("the prompt") : file) +
                              " is not valid UTF-8: byte offset " + std::to_string(bad) +
                              " (use --lossy to replace invalid bytes with U+FFFD)");
        text = tokenizer::to_valid_utf8(text);
    }

    const gguf::GgufFile gguf_file = gguf::GgufFile::open(model);
    const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(gguf_file);
    for (const std::string& w : tok.warnings())
        std::fprintf(stderr, "infer tokenize: warning: %s\n", w.c_str());

    std::vector<int32_t> out;
    tok.encode(text, tokenizer::EncodeOptions{!no_bos && tok.add_bos(), tok.add_eos(), special}, out);

    std::string s;
    if (ids) {
        s = "[";
        for (size_t i = 0; i < out.size(); ++i) s += (i ? ", " : "") + std::to_string(out[i]);
        s += "]\n";
    } else {
        for (int32_t id : out) s += std::to_string(id) + "\t" + cli::quoted(tok.token_text(id)) + "\n";
    }
    std::fwrite(s.data(), 1, s.size(), stdout);
    return 0;
}

}  // namespace kinfer::cli
