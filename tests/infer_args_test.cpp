// Command-line handling shared by every `infer` subcommand (tools/infer/args.cpp), and input checks of the
// subcommands that read files, exercised through the real binary.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gguf/gguf_writer.hpp"
#include "tests/infer_cli.hpp"

using namespace kinfer_test;

namespace {

// A valid GGUF holding only a tiny SentencePiece vocabulary: enough for inspect and tokenize.
std::filesystem::path write_vocab_file(const ScratchDir& dir) {
    kinfer::gguf::GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_strings("tokenizer.ggml.tokens",
                  std::vector<std::string>{"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b",
                                           "\xE2\x96\x81"
                                           "a"});
    const auto path = dir / "vocab.gguf";
    w.open(path.string());
    w.finish();
    return path;
}

}  // namespace

TEST_CASE("infer: a flag that takes no value refuses one given with '='") {
    ScratchDir dir("args_test");
    const auto vocab = shell_quote(write_vocab_file(dir));

    CliResult r = run_infer_cli("inspect --json=1 " + vocab);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(r.err.find("--json takes no value") != std::string::npos);
    // ... also as the last argument, and for every command
    r = run_infer_cli("inspect " + vocab + " --json=no");
    CHECK(r.status == 2);
    CHECK(r.err.find("--json takes no value") != std::string::npos);
    r = run_infer_cli("tokenize -m " + vocab + " -p a --ids=yes");
    CHECK(r.status == 2);
    CHECK(r.err.find("--ids takes no value") != std::string::npos);

    // Flags that do take a value accept both spellings.
    CHECK(run_infer_cli("inspect --json --max-items=2 " + vocab).status == 0);
    CHECK(run_infer_cli("inspect --json --max-items 2 " + vocab).status == 0);
    CHECK(run_infer_cli("tokenize --model=" + vocab + " --prompt=ab --ids").out == "[1, 6, 5]\n");
}

TEST_CASE("infer: integers beyond 64 bits are out of range, not 'not an integer'") {
    ScratchDir dir("args_test");
    const auto vocab = shell_quote(write_vocab_file(dir));
    CliResult r = run_infer_cli("inspect --max-items 99999999999999999999 " + vocab);
    CHECK(r.status == 2);
    CHECK(r.err.find("--max-items must be in [0, ") != std::string::npos);
    r = run_infer_cli("inspect --max-items 12abc " + vocab);
    CHECK(r.status == 2);
    CHECK(r.err.find("--max-items wants an integer, got '12abc'") != std::string::npos);
}

TEST_CASE("infer tokenize: -f with a directory is an error, not an empty text") {
    ScratchDir dir("args_test");
    const auto vocab = shell_quote(write_vocab_file(dir));
    const CliResult r = run_infer_cli("tokenize -m " + vocab + " -f " + shell_quote(dir.path()) + " --ids");
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    CHECK(r.err.find(dir.path().string()) != std::string::npos);
    CHECK(r.err.find("directory") != std::string::npos);
    const CliResult missing = run_infer_cli("tokenize -m " + vocab + " -f " + shell_quote(dir / "nope.txt"));
    CHECK(missing.status == 1);
    CHECK(missing.err.find("nope.txt") != std::string::npos);
}

TEST_CASE("infer quantize / synth: an output path that is a directory is refused before any work") {
    ScratchDir dir("args_test");
    const std::string small =
        "--vocab none --n-vocab 300 --n-embd 64 --n-head 2 --n-head-kv 1 --n-ff 64 --n-layer 1";
    const auto model = dir / "f32.gguf";
    CliResult r = run_infer_cli("synth " + small + " --type F32 --quiet -o " + shell_quote(model));
    REQUIRE_MESSAGE(r.status == 0, r.err);

    r = run_infer_cli("synth " + small + " --quiet -o " + shell_quote(dir.path()));
    CHECK(r.status == 2);
    CHECK(r.err.find("is a directory") != std::string::npos);
    r = run_infer_cli("quantize --quiet " + shell_quote(model) + " " + shell_quote(dir.path()) + " Q8_0");
    CHECK(r.status == 2);
    CHECK(r.err.find("is a directory") != std::string::npos);
    // nothing was left behind
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), {}) == 1);
}
