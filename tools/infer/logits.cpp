// `infer logits`: raw logits for a token sequence, for debugging and for checks against other engines.
#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/infer/args.hpp"
#include "tools/infer/commands.hpp"
#include "tools/infer/model_flags.hpp"

namespace kinfer::cli {
namespace {

const char* kHelp =
    "usage: infer logits -m MODEL (--tokens ID,ID,... | -p TEXT) [--all] [--batch N]\n"
    "                    (-o OUT.f32 | --json | --compare REF.f32) [options]\n\n"
    "Evaluates the tokens and writes the logits: n_vocab float32 values per position, little-endian,\n"
    "positions in order; only the last position unless --all.\n\n"
    "  -m, --model FILE      the GGUF model\n"
    "  --tokens LIST         comma-separated token ids, used exactly as given (no BOS is added)\n"
    "  -p, --prompt TEXT     tokenize TEXT instead (with BOS when the model wants it; control-token\n"
    "                        texts such as [INST] are recognised)\n"
    "  --all                 logits of every position, not only the last\n"
    "  --batch N             evaluate in steps of N tokens (default: all in one step). The kernels a\n"
    "                        step uses depend on its size: --batch 1 is the decode path (one token per\n"
    "                        step, activations kept precise), large steps the prefill path\n"
    "  --compare REF.f32     instead of writing, compare with reference logits of the same shape (e.g.\n"
    "                        a float64 forward pass saved as float32) and print the largest error per\n"
    "                        position relative to the reference's spread (max - min), and the top-1\n"
    "                        agreement\n"
    "  -o, --output FILE     write the raw float32 values to FILE (- for stdout)\n"
    "  --json                print {\"n_vocab\", \"tokens\", \"logits\": [[...], ...]} to stdout instead\n"
    "                        (each value in the fewest digits that read back to the same float)\n"
    "  --ctx N               context size (default: the number of tokens)\n"
    "  --kv-type f16|f32     KV cache storage (default f16)\n"
    "  -t, --threads N       CPU threads\n"
    "  --device cpu|cuda     where to run (default cpu)\n"
    "  --verbose / --quiet   more / no information on stderr\n\n"
    "example:\n"
    "  infer logits -m model.gguf --tokens 1,1014,1032 --all -o logits.f32   # 3 x n_vocab floats\n";

std::vector<int32_t> parse_token_list(const std::string& s) {
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i <= s.size()) {
        const size_t comma = s.find(',', i);
        const std::string item = s.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
        int32_t id = 0;
        const char* b = item.data();
        const char* e = item.data() + item.size();
        while (b < e && *b == ' ') ++b;
        auto [p, ec] = std::from_chars(b, e, id);
        if (item.empty() || ec != std::errc() || p != e || id < 0)
            throw UsageError("--tokens: '" + item +
                             "' is not a token id (want a comma-separated list like 1,2,3)");
        ids.push_back(id);
        if (comma == std::string::npos) break;
        i = comma + 1;
    }
    return ids;
}

// Prints, per position, max |ours - ref| / (max ref - min ref) and whether the top-1 tokens agree.
int compare_logits(std::span<const float> ours, size_t n_vocab, const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error("cannot read '" + path + "': " + std::strerror(errno));
    std::vector<float> ref(ours.size() + 1);
    const size_t n = std::fread(ref.data(), sizeof(float), ref.size(), f);
    std::fclose(f);
    if (n != ours.size())
        throw UsageError("--compare: " + path + " holds " + std::to_string(n) + " floats" +
                         (n > ours.size() ? " or more" : "") + ", expected " + std::to_string(ours.size()) +
                         " (" + std::to_string(ours.size() / n_vocab) + " x " + std::to_string(n_vocab) +
                         ")");
    double worst = 0;
    size_t top1_same = 0;
    const size_t rows = ours.size() / n_vocab;
    for (size_t r = 0; r < rows; ++r) {
        const float* a = ours.data() + r * n_vocab;
        const float* b = ref.data() + r * n_vocab;
        double lo = b[0], hi = b[0], diff = 0;
        size_t ta = 0, tb = 0;
        for (size_t i = 0; i < n_vocab; ++i) {
            lo = std::min(lo, double(b[i]));
            hi = std::max(hi, double(b[i]));
            diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
            if (a[i] > a[ta]) ta = i;
            if (b[i] > b[tb]) tb = i;
        }
        const double err = diff / std::max(hi - lo, 1e-30);
        worst = std::max(worst, err);
        top1_same += ta == tb;
        std::printf("position %zu: max rel err %.3e, top-1 %s\n", r, err, ta == tb ? "same" : "differs");
    }
    std::printf("max rel err %.3e over %zu positions; top-1 same at %zu/%zu\n", worst, rows, top1_same, rows);
    return 0;
}

}  // namespace

int cmd_logits(int argc, char** argv) {
    ArgReader args("logits", argc, argv);
    ModelFlags mf;
    mf.options.n_ctx = 0;
    std::vector<int32_t> tokens;
    std::string prompt, out_path, compare_path;
    bool have_tokens = false, have_prompt = false, all = false, json = false;
    int batch = 0;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(kHelp, stdout);
            return 0;
        } else if (args.is("--chat-template")) {
            args.unknown();
        } else if (parse_model_flag(args, mf)) {
        } else if (args.is("--tokens")) {
            tokens = parse_token_list(args.value());
            have_tokens = true;
        } else if (args.is("-p", "--prompt")) {
            prompt = args.value();
            have_prompt = true;
        } else if (args.is("--all")) {
            all = true;
        } else if (args.is("-o", "--output")) {
            out_path = args.value();
        } else if (args.is("--json")) {
            json = true;
        } else if (args.is("--batch")) {
            batch = int(args.int_value(1, 1 << 20));
        } else if (args.is("--compare")) {
            compare_path = args.value();
        } else {
            args.unknown();
        }
    }
    if (have_tokens == have_prompt)
        throw UsageError("give exactly one of --tokens LIST and -p TEXT (see --help)");
    if (int(json) + int(!out_path.empty()) + int(!compare_path.empty()) != 1)
        throw UsageError("give exactly one of -o FILE, --json and --compare REF.f32 (see --help)");
    if (have_tokens && tokens.empty()) throw UsageError("--tokens: empty list");
    const int requested_ctx = mf.options.n_ctx;
    mf.options.n_ctx = 1 << 24;  // sized below, once the token count is known
    finish_flags(mf, nullptr);

    const Model model = load_model(mf);
    if (have_prompt) tokens = model.tokenize(prompt, true, true);
    if (tokens.empty()) throw UsageError("the prompt gives no tokens");
    const int n_ctx = requested_ctx > 0 ? requested_ctx : static_cast<int>(tokens.size());
    if (int64_t(tokens.size()) > std::min(n_ctx, model.n_ctx_train()))
        throw UsageError(std::to_string(tokens.size()) + " tokens do not fit in the context of " +
                         std::to_string(std::min(n_ctx, model.n_ctx_train())) + " tokens");
    Session session(model, n_ctx);
    const size_t n_vocab = size_t(model.n_vocab());
    std::vector<float> kept;  // the rows asked for, from every step
    const size_t step = batch > 0 ? size_t(batch) : tokens.size();
    for (size_t done = 0; done < tokens.size(); done += step) {
        const auto chunk =
            std::span<const int32_t>(tokens).subspan(done, std::min(step, tokens.size() - done));
        const std::span<const float> l = session.feed(chunk, all);
        if (all)
            kept.insert(kept.end(), l.begin(), l.end());
        else if (done + chunk.size() == tokens.size())
            kept.assign(l.begin(), l.end());
    }
    const std::span<const float> logits = kept;
    const size_t rows = logits.size() / n_vocab;
    if (!compare_path.empty()) return compare_logits(logits, n_vocab, compare_path);
    if (mf.verbose) log_line("logits: " + std::to_string(rows) + " x " + std::to_string(n_vocab));

    if (json) {
        // Numbers as float (not double): each is written in the fewest digits that read back to the same
        // float; keys in the order given; NaN / infinity (a broken model) become null.
        using FloatJson = nlohmann::basic_json<nlohmann::ordered_map, std::vector, std::string, bool, int64_t,
                                               uint64_t, float>;
        FloatJson doc = {{"n_vocab", n_vocab}, {"tokens", tokens}, {"logits", FloatJson::array()}};
        for (size_t r = 0; r < rows; ++r)
            doc["logits"].push_back(std::vector<float>(logits.begin() + ptrdiff_t(r * n_vocab),
                                                       logits.begin() + ptrdiff_t((r + 1) * n_vocab)));
        const std::string out = doc.dump() + "\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
        return 0;
    }
    // Raw little-endian float32 (every platform kinfer builds for is little-endian).
    static_assert(std::endian::native == std::endian::little);
    FILE* f = out_path == "-" ? stdout : std::fopen(out_path.c_str(), "wb");
    if (!f) throw Error("cannot write '" + out_path + "': " + std::strerror(errno));
    const size_t written = std::fwrite(logits.data(), sizeof(float), logits.size(), f);
    const bool ok = written == logits.size() && std::fflush(f) == 0;
    if (f != stdout && std::fclose(f) != 0)
        throw Error("cannot write '" + out_path + "': " + std::strerror(errno));
    if (!ok) throw Error("cannot write '" + out_path + "': " + std::strerror(errno));
    if (!mf.quiet && out_path != "-")
        log_line("wrote " + std::to_string(rows) + " x " + std::to_string(n_vocab) + " float32 logits to " +
                 out_path);
    return 0;
}

}  // namespace kinfer::cli
