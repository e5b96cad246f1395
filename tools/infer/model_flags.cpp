#include "tools/infer/model_flags.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "tokenizer/chat_template.hpp"

namespace kinfer::cli {

std::string model_flags_help() {
    return "model:\n"
           "  -m, --model FILE      the GGUF model (default: kinfer's demo model, models/kjv-q8_0.gguf,\n"
           "                        a small model trained on the King James Bible)\n"
           "  --ctx N               context size in tokens (default 4096, capped at the model's own)\n"
           "  --kv-type f16|f32     KV cache storage (default f16)\n"
           "  -t, --threads N       CPU threads (default: all cores, or OMP_NUM_THREADS)\n"
           "  --device cpu|cuda     where to run (default cpu; cuda: the whole model on the first\n"
           "                        NVIDIA GPU)\n"
           "  --chat-template NAME  use this chat template instead of the one the file names; one of\n"
           "                        " +
           tokenizer::ChatTemplate::known_names() + "\n";
}

const char* const kGenerationFlagsHelp =
    "generation:\n"
    "  -n, --n-predict N     generate at most N tokens (default 256; -1: until end of text or context)\n"
    "  --temp T              temperature (default 0.8; 0: greedy, always the most likely token)\n"
    "  --top-k K             sample among the K most likely tokens (default 40; 0: off)\n"
    "  --top-p P             ... the smallest set reaching probability P (default 0.95; 1: off)\n"
    "  --min-p P             ... dropping tokens below P times the top probability (default 0.05; 0: off)\n"
    "  --repeat-penalty X    penalise tokens of the last --repeat-last-n (default 1.0: off)\n"
    "  --repeat-last-n N     penalty window in tokens (default 64; 0: off; -1: whole context)\n"
    "  --frequency-penalty X subtract X per occurrence in the window (default 0)\n"
    "  --presence-penalty X  subtract X once for tokens in the window (default 0)\n"
    "  -l, --logit-bias ID(+|-)X  add X to token ID's logit: 15043+1, 15043-2.5, 15043-inf (never\n"
    "                        that token); repeatable, as llama.cpp's\n"
    "  --seed N              random seed: the same seed gives the same output (default: random, shown\n"
    "                        with --verbose)\n"
    "  --stop TEXT           stop before TEXT appears (repeatable); TEXT is never printed\n"
    "  --json                JSON mode: the reply is one JSON object (tokens that would break it are\n"
    "                        never sampled; it ends as the object closes)\n"
    "  --context-shift       when the context fills up, drop the oldest half of it (after --keep tokens)\n"
    "                        and continue; without it, generation stops with a message\n"
    "  --keep N              tokens after BOS that a context shift keeps (default 0; -1: the whole prompt)\n"
    "  --system TEXT         system prompt (through the chat template)\n"
    "Sampling applies, in order: the logit biases, the penalties, top-k, top-p, min-p, the temperature,\n"
    "a seeded draw.\n";

const char* const kLogFlagsHelp =
    "output:\n"
    "  --verbose             more information on stderr (model, template, seed, token counts)\n"
    "  --quiet               nothing on stderr but errors\n";

void log_line(const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
}

bool parse_model_flag(ArgReader& args, ModelFlags& f) {
    if (args.is("-m", "--model")) {
        f.path = args.value();
    } else if (args.is("--ctx", "-c")) {
        f.options.n_ctx = static_cast<int>(args.int_value(1, 1 << 24));
        f.ctx_given = true;
    } else if (args.is("--kv-type")) {
        const std::string v = args.value();
        if (v == "f16")
            f.options.kv_type = KvType::F16;
        else if (v == "f32")
            f.options.kv_type = KvType::F32;
        else
            throw UsageError("--kv-type must be f16 or f32, got '" + v + "'");
    } else if (args.is("-t", "--threads")) {
        f.options.threads = static_cast<int>(args.int_value(1, 1024));
    } else if (args.is("--device")) {
        const std::string v = args.value();
        if (v == "cpu")
            f.options.device = Device::Cpu;
        else if (v == "cuda")
            f.options.device = Device::Cuda;
        else
            throw UsageError("--device must be cpu or cuda, got '" + v + "'");
    } else if (args.is("--chat-template")) {
        f.options.chat_template = args.value();
    } else if (args.is("--verbose", "-v")) {
        f.verbose = true;
    } else if (args.is("--quiet", "-q")) {
        f.quiet = true;
    } else {
        return false;
    }
    return true;
}

namespace {

// "ID+X", "ID-X" (X a number or inf): the token and the bias added to its logit.
std::pair<int32_t, float> parse_logit_bias(const std::string& v) {
    const size_t sign = v.find_first_of("+-");
    const auto fail = [&] {
        throw UsageError(
            "--logit-bias wants TOKEN_ID+BIAS or TOKEN_ID-BIAS (e.g. 15043+1, 15043-inf), got '" + v + "'");
    };
    if (sign == 0 || sign == std::string::npos || sign + 1 == v.size()) fail();
    const std::string id_text = v.substr(0, sign), bias_text = v.substr(sign + 1);
    if (id_text.size() > 9 || id_text.find_first_not_of("0123456789") != std::string::npos) fail();
    float bias = 0.0f;
    if (bias_text == "inf") {
        bias = INFINITY;
    } else {
        char* end = nullptr;
        bias = std::strtof(bias_text.c_str(), &end);
        if (end != bias_text.c_str() + bias_text.size() || !std::isfinite(bias) ||
            bias_text.find_first_not_of("0123456789.") != std::string::npos)
            fail();
    }
    if (v[sign] == '-') bias = -bias;
    if (bias == INFINITY)
        throw UsageError("--logit-bias: +inf is not a bias (use a large number to favour a token)");
    return {int32_t(std::stol(id_text)), bias};
}

}  // namespace

bool parse_generation_flag(ArgReader& args, GenerationFlags& f) {
    GenerateOptions& g = f.options;
    SamplerOptions& s = g.sampling;
    const auto number = [&](double lo, double hi, const char* what) {
        const double x = args.float_value();
        if (x < lo || x > hi)
            throw UsageError(std::string(what) + " must be in [" + std::to_string(lo) + ", " +
                             std::to_string(hi) + "], got " + std::to_string(x));
        return static_cast<float>(x);
    };
    if (args.is("-n", "--n-predict")) {
        g.max_tokens = static_cast<int>(args.int_value(-1, INT32_MAX));
    } else if (args.is("--temp", "--temperature")) {
        s.temperature = number(0.0, 100.0, "--temp");
    } else if (args.is("--top-k")) {
        s.top_k = static_cast<int32_t>(args.int_value(0, INT32_MAX));
    } else if (args.is("--top-p")) {
        s.top_p = number(1e-6, 1.0, "--top-p");
    } else if (args.is("--min-p")) {
        s.min_p = number(0.0, 1.0, "--min-p");
    } else if (args.is("--repeat-penalty")) {
        s.repeat_penalty = number(1e-3, 100.0, "--repeat-penalty");
    } else if (args.is("--repeat-last-n")) {
        s.penalty_last_n = static_cast<int32_t>(args.int_value(-1, INT32_MAX));
    } else if (args.is("--frequency-penalty")) {
        s.frequency_penalty = number(-100.0, 100.0, "--frequency-penalty");
    } else if (args.is("--presence-penalty")) {
        s.presence_penalty = number(-100.0, 100.0, "--presence-penalty");
    } else if (args.is("-l", "--logit-bias")) {
        s.logit_bias.push_back(parse_logit_bias(args.value()));
    } else if (args.is("--seed", "-s")) {
        s.seed = static_cast<uint64_t>(args.int_value(0, INT64_MAX));
        f.seed_given = true;
    } else if (args.is("--stop")) {
        const std::string v = args.value();
        if (v.empty()) throw UsageError("--stop needs a non-empty text");
        g.stop.push_back(v);
    } else if (args.is("--json")) {
        g.json_object = true;
    } else if (args.is("--context-shift")) {
        g.context_shift = true;
    } else if (args.is("--keep")) {
        g.n_keep = static_cast<int>(args.int_value(-1, INT32_MAX));
    } else if (args.is("--system")) {
        f.system = args.value();
    } else {
        return false;
    }
    return true;
}

void finish_flags(ModelFlags& model, GenerationFlags* gen) {
    if (model.path.empty()) {
        // The demo model that ships with kinfer, so that a first command streams real text.
        model.path = KINFER_DEFAULT_MODEL;
        if (!std::filesystem::exists(model.path))
            throw UsageError("missing -m MODEL (see --help; the demo model " + model.path + " is not there)");
        if (!model.quiet) log_line("no -m given: using the demo model " + model.path);
    }
    if (model.verbose && model.quiet) throw UsageError("--verbose and --quiet do not go together");
    if (!model.quiet)
        model.options.log = [](std::string_view line) { log_line("warning: " + std::string(line)); };
    if (gen && !gen->seed_given) {
        std::random_device rd;
        gen->options.sampling.seed = (uint64_t(rd()) << 32 | rd()) & uint64_t(INT64_MAX);
    }
}

Model load_model(const ModelFlags& flags, double* seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    ModelOptions options = flags.options;
    if (!flags.quiet && isatty(STDERR_FILENO)) {
        // Slow preparation (uploads, repacking) shows a progress line that the next line overwrites.
        options.progress = [](std::string_view stage, double fraction) {
            std::fprintf(stderr, "\r%.*s: %3d%%%s", int(stage.size()), stage.data(),
                         int(fraction * 100 + 0.5), fraction >= 1.0 ? "\n" : "");
            std::fflush(stderr);
        };
    }
    Model model = Model::load(flags.path, options);
    if (seconds) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (flags.verbose) log_line("model: " + model.description());
    if (flags.verbose) log_line("backend: " + model.backend());
    if (flags.ctx_given && flags.options.n_ctx > model.n_ctx_train() && !flags.quiet)
        log_line("warning: --ctx " + std::to_string(flags.options.n_ctx) +
                 " is capped at the model's context of " + std::to_string(model.n_ctx_train()) + " tokens");
    return model;
}

void print_timings(const GenerateResult& r, double load_seconds, const std::string& backend) {
    char line[200];
    if (load_seconds >= 0) {
        std::snprintf(line, sizeof line, "load:     %.2f s%s%s", load_seconds, backend.empty() ? "" : ", ",
                      backend.c_str());
        log_line(line);
    }
    const int evaluated = r.prompt_tokens - r.prompt_cached;
    std::snprintf(line, sizeof line, "prompt:   %d tokens in %.2f s, %.1f tokens/s%s", evaluated,
                  r.prompt_seconds, r.prompt_seconds > 0 ? evaluated / r.prompt_seconds : 0.0,
                  r.prompt_cached ? (" (+" + std::to_string(r.prompt_cached) + " cached)").c_str() : "");
    log_line(line);
    std::snprintf(line, sizeof line, "generate: %d tokens in %.2f s, %.1f tokens/s", r.generated_tokens,
                  r.generate_seconds, r.generate_seconds > 0 ? r.generated_tokens / r.generate_seconds : 0.0);
    log_line(line);
}

}  // namespace kinfer::cli
