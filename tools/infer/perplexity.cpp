// `infer perplexity -m MODEL -f TEXT`: perplexity as llama.cpp's llama-perplexity computes it, and the
// KL-divergence of a (quantized) model against a base model's saved logits.
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "quality/perplexity.hpp"
#include "tools/infer/args.hpp"
#include "tools/infer/commands.hpp"
#include "tools/infer/model_flags.hpp"

namespace kinfer::cli {
namespace {

const char* const kHelp =
    "usage: infer perplexity -m MODEL -f TEXT [--ctx 512] [--chunks N] [--batch N]\n"
    "       infer perplexity -m BASE.gguf -f TEXT --kl-divergence-base LOGITS    (save the base)\n"
    "       infer perplexity -m QUANT.gguf --kl-divergence-base LOGITS --kl-divergence\n\n"
    "Perplexity exactly as llama.cpp's llama-perplexity defines it: TEXT is tokenized once (with BOS)\n"
    "and cut into non-overlapping chunks of --ctx tokens; each chunk is evaluated from an empty context\n"
    "with its first token replaced by BOS, and only its second half is scored, so every scored token\n"
    "sees at least ctx/2 tokens before it. Prints [chunk]running-PPL on stderr as it goes and\n"
    "\"Final estimate: PPL = X +/- U\" on stdout (U: the standard error of the mean NLL, times PPL).\n\n"
    "  -f, --file TEXT             the text (UTF-8)\n"
    "  --ctx N                     tokens per chunk (default 512); the text needs at least 2N tokens\n"
    "  --chunks N                  score only the first N chunks (default: all)\n"
    "  --batch N                   tokens per forward call (default: the whole chunk)\n"
    "  --kl-divergence-base FILE   without --kl-divergence: also save the model's log-probabilities of\n"
    "                              every scored token to FILE (llama.cpp's format, about\n"
    "                              2 * n_vocab bytes per token); with it: read them\n"
    "  --kl-divergence             compare the model with the base saved in FILE (same chunks and\n"
    "                              tokens; -f is not needed): per chunk PPL, ln(PPL(Q)/PPL(base)),\n"
    "                              mean KL-divergence and how often the top token is the same, then\n"
    "                              totals with uncertainties, KLD percentiles and PPL(Q)-PPL(base)\n\n";

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int cmd_perplexity(int argc, char** argv) {
    ArgReader args("perplexity", argc, argv);
    ModelFlags mf;
    mf.options.n_ctx = 512;
    std::string text_path, base_path;
    int max_chunks = -1, n_batch = 0;
    bool kld = false;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs((std::string(kHelp) + model_flags_help()).c_str(), stdout);
            return 0;
        } else if (args.is("--chat-template")) {
            args.unknown();
        } else if (parse_model_flag(args, mf)) {
        } else if (args.is("-f", "--file")) {
            text_path = args.value();
        } else if (args.is("--chunks")) {
            max_chunks = int(args.int_value(1, 1 << 30));
        } else if (args.is("--batch", "-b")) {
            n_batch = int(args.int_value(1, 1 << 24));
        } else if (args.is("--kl-divergence-base")) {
            base_path = args.value();
        } else if (args.is("--kl-divergence")) {
            kld = true;
        } else {
            args.unknown();
        }
    }
    if (kld && base_path.empty()) throw UsageError("--kl-divergence needs --kl-divergence-base FILE");
    if (!kld && text_path.empty()) throw UsageError("needs -f TEXT (see --help)");
    // With --kl-divergence the chunks are the base run's: its context size decides.
    std::unique_ptr<quality::BaseLogitsReader> base;
    if (kld) {
        base = std::make_unique<quality::BaseLogitsReader>(base_path);
        if (mf.ctx_given && mf.options.n_ctx != base->plan().n_ctx && !mf.quiet)
            log_line("note: --ctx is ignored; " + base_path + " was made with chunks of " +
                     std::to_string(base->plan().n_ctx) + " tokens");
        mf.options.n_ctx = base->plan().n_ctx;
    }
    const int n_ctx = mf.options.n_ctx;
    finish_flags(mf, nullptr);
    const Model model = load_model(mf);
    const int n_vocab = model.n_vocab();
    const int32_t bos =
        quality::chunk_bos(model);  // llama.cpp starts every chunk with BOS when the model adds one

    // Either the chunks of the text, or those of the base run.
    quality::ChunkPlan plan;
    if (kld) {
        if (base->n_vocab() != n_vocab)
            throw FormatError(base_path + ": saved with a vocabulary of " + std::to_string(base->n_vocab()) +
                              " tokens, but " + mf.path + " has " + std::to_string(n_vocab));
        plan = base->plan();
        if (max_chunks > 0 && max_chunks < plan.n_chunk) plan.n_chunk = max_chunks;
    } else {
        const std::vector<int32_t> tokens = model.tokenize(read_text(text_path), /*add_bos=*/true);
        plan = quality::plan_chunks(tokens, n_ctx, max_chunks);
    }
    if (plan.n_ctx > model.n_ctx())
        throw UsageError("chunks of " + std::to_string(plan.n_ctx) +
                         " tokens do not fit in the model's context of " + std::to_string(model.n_ctx()) +
                         " (the model was trained with " + std::to_string(model.n_ctx_train()) + ")");
    std::unique_ptr<quality::BaseLogitsWriter> writer;
    if (!kld && !base_path.empty())
        writer = std::make_unique<quality::BaseLogitsWriter>(base_path, plan, n_vocab);

    const int rows = quality::scored_per_chunk(plan.n_ctx);
    if (!mf.quiet)
        log_line("perplexity: " + std::to_string(plan.n_chunk) + " chunks of " + std::to_string(plan.n_ctx) +
                 " tokens, " + std::to_string(rows) + " scored per chunk" +
                 (kld      ? ", against " + base_path
                  : writer ? ", saving log-probs to " + base_path
                           : ""));
    Session session(model, plan.n_ctx);
    quality::NllStats nll;
    quality::KldStats kl;
    const double t0 = now_seconds();
    const auto progress = [&](int c) {
        if (mf.quiet) return;
        if (c == 0) {
            const double per = now_seconds() - t0;
            std::fprintf(stderr, "perplexity: %.2f s per chunk, about %.1f s in all\n", per,
                         per * plan.n_chunk);
            if (kld)
                std::fprintf(stderr,
                             "chunk        PPL       ln(PPL(Q)/PPL(base))   KL-divergence    same top\n");
        }
        if (kld) {
            std::fprintf(stderr, "%5d %10.4f   %10.5f ± %8.5f   %8.5f ± %7.5f   %6.2f%%\n", c + 1,
                         kl.nll.ppl(), kl.ln_ppl_ratio(), kl.ln_ppl_ratio_uncertainty(), kl.mean_kld(),
                         kl.kld_uncertainty(), 100.0 * kl.same_top_fraction());
        } else {
            std::fprintf(stderr, "[%d]%.4f,", c + 1, nll.ppl());
            if (c + 1 == plan.n_chunk) std::fputc('\n', stderr);
        }
        std::fflush(stderr);
    };
    if (kld)
        quality::compare_chunks(session, plan, n_batch, bos, *base, kl, progress);
    else
        quality::score_chunks(session, plan, n_batch, bos, nll, writer.get(), progress);
    if (writer) writer->finish();

    if (!kld) {
        std::printf("Final estimate: PPL = %.4f +/- %.5f\n", nll.ppl(), nll.ppl_uncertainty());
        std::printf("  %" PRIu64 " tokens scored in %d chunks of %d, %.1f s\n", nll.count, plan.n_chunk,
                    plan.n_ctx, now_seconds() - t0);
        return 0;
    }
    const double ppl_q = kl.nll.ppl(), ppl_b = kl.nll_base.ppl();
    std::printf("Mean PPL(Q)               : %10.6f\n", ppl_q);
    std::printf("Mean PPL(base)            : %10.6f\n", ppl_b);
    std::printf("Mean ln(PPL(Q)/PPL(base)) : %10.6f ± %10.6f\n", kl.ln_ppl_ratio(),
                kl.ln_ppl_ratio_uncertainty());
    std::printf("Mean PPL(Q)-PPL(base)     : %10.6f ± %10.6f\n", kl.ppl_diff(), kl.ppl_diff_uncertainty());
    std::printf("Mean    KLD: %10.6f ± %10.6f\n", kl.mean_kld(), kl.kld_uncertainty());
    std::printf("Maximum KLD: %10.6f\n", kl.kld_percentile(1.0));
    std::printf("99.0%%   KLD: %10.6f\n", kl.kld_percentile(0.99));
    std::printf("Median  KLD: %10.6f\n", kl.kld_percentile(0.5));
    std::printf("RMS Δp     : %6.3f %%\n", 100.0 * kl.rms_p_diff());
    std::printf("Same top p : %6.3f %%\n", 100.0 * kl.same_top_fraction());
    std::printf("  %" PRIu64 " tokens scored in %d chunks of %d, %.1f s\n", kl.count, plan.n_chunk,
                plan.n_ctx, now_seconds() - t0);
    return 0;
}

}  // namespace kinfer::cli
