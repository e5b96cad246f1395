// infer perplexity / quality/perplexity: llama-perplexity's definition checked against an independent
// computation from Session::feed logits; KL-divergence of a model against itself is 0 and grows with
// coarser quantization; the base-logits file round-trips and hostile ones are refused.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "convert/hf_to_gguf.hpp"
#include "kinfer/kinfer.hpp"
#include "quality/perplexity.hpp"
#include "tests/infer_cli.hpp"
#include "tests/support/safetensors_builder.hpp"
#include "tests/tiny_llama.hpp"

using namespace kinfer;
using kinfer_test::ScratchDir;

namespace {

// Genesis 1:1-13 (King James Version, public domain).
const char* const kText =
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; and "
    "darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And "
    "God "
    "said, Let there be light: and there was light. And God saw the light, that it was good: and God divided "
    "the light from the darkness. And God called the light Day, and the darkness he called Night. And the "
    "evening and the morning were the first day. And God said, Let there be a firmament in the midst of the "
    "waters, and let it divide the waters from the waters. And God made the firmament, and divided the "
    "waters "
    "which were under the firmament from the waters which were above the firmament: and it was so. And God "
    "called the firmament Heaven. And the evening and the morning were the second day.";

// The hf_tiny fixture converted once per run (F32, Q8_0, Q4_0), removed at exit.
struct Models {
    ScratchDir dir{"ppl_models"};
    std::string f32 = (dir / "f32.gguf").string(), q8 = (dir / "q8.gguf").string(),
                q4 = (dir / "q4.gguf").string();
    Models() {
        const std::string src = std::string(KINFER_SOURCE_DIR) + "/tests/fixtures/hf_tiny";
        for (auto [path, type] : {std::pair{f32, FileType::ALL_F32}, std::pair{q8, FileType::MOSTLY_Q8_0},
                                  std::pair{q4, FileType::MOSTLY_Q4_0}}) {
            convert::ConvertOptions o;
            o.ftype = type;
            convert::convert_hf_to_gguf(src, path, o);
        }
    }
};
const Models& models() {
    static const Models m;
    return m;
}

Model load(const std::string& path) {
    ModelOptions o;
    o.threads = 1;
    o.kv_type = KvType::F32;
    return Model::load(path, o);
}

}  // namespace

TEST_CASE("perplexity: exp(mean NLL) over the second half of each BOS-led chunk, as computed independently") {
    const Model model = load(models().f32);
    const std::vector<int32_t> tokens = model.tokenize(kText, true);
    REQUIRE(tokens.size() > 200);
    const int n_ctx = 32, n_vocab = model.n_vocab();
    const auto plan = quality::plan_chunks(tokens, n_ctx);
    CHECK(plan.n_chunk == int(tokens.size() / 32));
    CHECK(plan.first == 16);
    CHECK(quality::scored_per_chunk(n_ctx) == 15);

    Session session(model, n_ctx);
    std::vector<float> rows;
    quality::NllStats stats, batched;
    for (int c = 0; c < plan.n_chunk; ++c) {
        quality::chunk_logits(session, plan, c, 0, model.bos_id(), rows);
        for (int r = 0; r < 15; ++r)
            stats.add(quality::token_nll(rows.data() + size_t(r) * n_vocab, n_vocab,
                                         plan.tokens[c * 32 + 16 + r + 1]));
        quality::chunk_logits(session, plan, c, 5, model.bos_id(), rows);  // forward calls of 5 tokens
        for (int r = 0; r < 15; ++r)
            batched.add(quality::token_nll(rows.data() + size_t(r) * n_vocab, n_vocab,
                                           plan.tokens[c * 32 + 16 + r + 1]));
    }

    // Independently: each chunk from scratch with BOS first, all logits, log-sum-exp in long double.
    long double nll = 0;
    int count = 0;
    for (int c = 0; c < plan.n_chunk; ++c) {
        std::vector<int32_t> chunk(tokens.begin() + c * 32, tokens.begin() + (c + 1) * 32);
        chunk[0] = model.bos_id();
        Session fresh(model, 32);
        const auto logits = fresh.feed(chunk, true);
        for (int pos = 16; pos <= 30; ++pos) {
            const float* row = logits.data() + size_t(pos) * n_vocab;
            long double sum = 0;
            for (int k = 0; k < n_vocab; ++k) sum += std::exp((long double)row[k]);
            nll += std::log(sum) - row[chunk[pos + 1]];
            ++count;
        }
    }
    const double ppl_ref = double(std::exp(nll / count));
    CHECK(stats.count == uint64_t(count));
    CHECK(stats.ppl() == doctest::Approx(ppl_ref).epsilon(1e-6));
    CHECK(batched.ppl() == doctest::Approx(ppl_ref).epsilon(1e-4));
    CHECK(stats.ppl() > 1.0);
    CHECK(stats.ppl_uncertainty() > 0.0);
    CHECK(stats.ppl_uncertainty() < stats.ppl());

    CHECK(quality::plan_chunks(tokens, 32, 3).n_chunk == 3);
    CHECK_THROWS_WITH_AS(
        quality::plan_chunks(std::span(tokens).first(63), 32),
        "the text tokenizes to only 63 tokens; perplexity with a context of 32 needs at least 64",
        UsageError);
}

TEST_CASE("perplexity: KL-divergence of a model against itself is 0, against quantized files > 0") {
    ScratchDir dir("ppl_kld");
    const std::string base_path = (dir / "base.bin").string();
    const Model base = load(models().f32);
    const int n_vocab = base.n_vocab(), nv = quality::log_prob_row_u16s(n_vocab);
    const auto plan = quality::plan_chunks(base.tokenize(kText, true), 32);
    {
        quality::BaseLogitsWriter w(base_path, plan, n_vocab);
        Session s(base, 32);
        std::vector<float> rows;
        std::vector<uint16_t> packed(size_t(15) * nv);
        for (int c = 0; c < plan.n_chunk; ++c) {
            quality::chunk_logits(s, plan, c, 0, base.bos_id(), rows);
            for (int r = 0; r < 15; ++r) {
                const float* row = rows.data() + size_t(r) * n_vocab;
                const int32_t tok = plan.tokens[c * 32 + 17 + r];
                CHECK(quality::compress_log_probs(row, n_vocab, tok, packed.data() + size_t(r) * nv) ==
                      doctest::Approx(quality::token_nll(row, n_vocab, tok)).epsilon(1e-5));
            }
            w.write_chunk(packed);
        }
        w.finish();
    }
    CHECK(std::filesystem::file_size(base_path) ==
          20 + plan.tokens.size() * 4 + size_t(plan.n_chunk) * 15 * size_t(nv) * 2);

    const auto kld_of = [&](const std::string& model_path) {
        quality::BaseLogitsReader reader(base_path);
        CHECK(reader.plan().tokens == plan.tokens);
        CHECK(reader.n_vocab() == n_vocab);
        const Model m = load(model_path);
        Session s(m, 32);
        std::vector<float> rows;
        quality::KldStats k;
        for (int c = 0; c < reader.plan().n_chunk; ++c) {
            quality::chunk_logits(s, reader.plan(), c, 0, m.bos_id(), rows);
            const auto b = reader.read_chunk();
            for (int r = 0; r < 15; ++r)
                k.add(rows.data() + size_t(r) * n_vocab, b.data() + size_t(r) * nv, n_vocab,
                      reader.plan().tokens[c * 32 + 17 + r]);
        }
        CHECK_THROWS_AS(reader.read_chunk(), Error);
        return k;
    };
    const auto self = kld_of(models().f32);
    INFO("self KLD " << self.mean_kld());
    CHECK(std::fabs(self.mean_kld()) < 2e-4);  // the base's 16-bit log-probs are exact to 1.2e-4
    CHECK(self.same_top_fraction() == 1.0);
    CHECK(std::fabs(self.ln_ppl_ratio()) < 2e-4);
    CHECK(self.count == uint64_t(plan.n_chunk) * 15);

    const auto q8 = kld_of(models().q8);
    const auto q4 = kld_of(models().q4);
    INFO("q8_0 KLD " << q8.mean_kld() << ", q4_0 KLD " << q4.mean_kld());
    CHECK(q8.mean_kld() > 10 * std::fabs(self.mean_kld()));
    CHECK(q4.mean_kld() > 2 * q8.mean_kld());
    CHECK(q4.same_top_fraction() < 1.0);
    CHECK(q4.kld_percentile(1.0) >= q4.kld_percentile(0.5));
    CHECK(q4.rms_p_diff() > 0);
}

TEST_CASE("perplexity: hostile base-logits files give FormatError naming the file") {
    ScratchDir dir("ppl_bad");
    const auto path = (dir / "b.bin").string();
    const auto error_of = [&](const std::vector<uint8_t>& bytes) -> std::string {
        kinfer::test::write_file(path, bytes);
        try {
            quality::BaseLogitsReader r(path);
        } catch (const FormatError& e) {
            return e.what();
        }
        return "<accepted>";
    };
    const auto header = [](uint32_t n_ctx, int32_t n_vocab, int32_t n_chunk) {
        std::vector<uint8_t> b(20);
        std::memcpy(b.data(), "_logits_", 8);
        std::memcpy(b.data() + 8, &n_ctx, 4);
        std::memcpy(b.data() + 12, &n_vocab, 4);
        std::memcpy(b.data() + 16, &n_chunk, 4);
        return b;
    };
    // A valid file: n_ctx 4 (1 scored row), n_vocab 3 (row of 8 uint16), 1 chunk.
    auto good = header(4, 3, 1);
    for (int32_t t : {1, 2, 0, 2}) {
        good.resize(good.size() + 4);
        std::memcpy(good.data() + good.size() - 4, &t, 4);
    }
    good.resize(good.size() + 16, 0);
    CHECK(error_of(good) == "<accepted>");
    auto m = good;
    m[0] = 'X';
    CHECK(error_of(m).find(path + ": not a base-logits file") == 0);
    CHECK(error_of(std::vector<uint8_t>(good.begin(), good.end() - 1))
              .find("needs 52 bytes, the file has 51") != std::string::npos);
    CHECK(error_of(header(4, 0, 1)).find("vocabulary size 0") != std::string::npos);
    CHECK(error_of(header(2, 3, 1)).find("context size 2") != std::string::npos);
    CHECK(error_of(header(4, 3, -5)).find("chunk count -5") != std::string::npos);
    CHECK(error_of(header(1u << 24, 1 << 24, 1 << 30)).find("the file has 20") != std::string::npos);
    m = good;
    m[20] = 7;  // token 0 = 7, outside a vocabulary of 3
    CHECK(error_of(m).find("token 0 is 7, outside the vocabulary") != std::string::npos);
    CHECK(error_of({}).find("no \"_logits_\" header") != std::string::npos);
}

TEST_CASE("perplexity: the CLI prints llama.cpp's final estimate and the KL-divergence report") {
    ScratchDir dir("ppl_cli");
    const auto text = dir / "gen.txt", base = dir / "base.bin";
    kinfer::test::write_file(text.string(), std::string(kText));
    const auto q = kinfer_test::shell_quote;
    auto r = kinfer_test::run_infer_cli("perplexity -m " + q(models().f32) + " -f " + q(text) +
                                        " --ctx 32 --kv-type f32 -t 1 --kl-divergence-base " + q(base));
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.rfind("Final estimate: PPL = ", 0) == 0);
    CHECK(r.err.find("[1]") != std::string::npos);
    CHECK(std::filesystem::exists(base));
    const double ppl = std::stod(r.out.substr(22));
    const Model model = load(models().f32);
    const auto plan = quality::plan_chunks(model.tokenize(kText, true), 32);
    Session s(model, 32);
    std::vector<float> rows;
    quality::NllStats st;
    for (int c = 0; c < plan.n_chunk; ++c) {
        quality::chunk_logits(s, plan, c, 0, model.bos_id(), rows);
        for (int k = 0; k < 15; ++k)
            st.add(quality::token_nll(rows.data() + size_t(k) * model.n_vocab(), model.n_vocab(),
                                      plan.tokens[c * 32 + 17 + k]));
    }
    CHECK(ppl == doctest::Approx(st.ppl()).epsilon(1e-4));

    r = kinfer_test::run_infer_cli("perplexity -m " + q(models().q8) +
                                   " --kl-divergence --kl-divergence-base " + q(base) + " -t 1");
    CHECK(r.status == 0);
    CHECK(r.out.find("Mean    KLD:") != std::string::npos);
    CHECK(r.out.find("Same top p :") != std::string::npos);
    r = kinfer_test::run_infer_cli("perplexity -m " + q(models().q8) + " --kl-divergence");
    CHECK(r.status == 2);
    CHECK(r.err.find("--kl-divergence needs --kl-divergence-base FILE") != std::string::npos);
    r = kinfer_test::run_infer_cli("perplexity -m " + q(models().f32) + " -f " + q(text) + " --ctx 512");
    CHECK(r.status == 2);
    CHECK(r.err.find("tokens") != std::string::npos);
}

TEST_CASE("perplexity: infer bench --perplexity adds PPL, KLD against the most precise file and same top") {
    ScratchDir dir("ppl_bench");
    const auto text = dir / "gen.txt";
    kinfer::test::write_file(text.string(), std::string(kText));
    const auto q = kinfer_test::shell_quote;
    const std::string speed = " -p 4 -n 2 -r 1 --no-warmup --no-bandwidth -t 1";
    auto r = kinfer_test::run_infer_cli("bench -m " + q(models().q8) + " -m " + q(models().f32) + " -m " +
                                        q(models().q4) + " --perplexity " + q(text) + " --ctx 32" + speed +
                                        " -o json");
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.err.find("KL-divergence base: F32") != std::string::npos);  // progress on stderr
    const auto rows = nlohmann::json::parse(r.out);
    REQUIRE(rows.size() == 6);  // 3 models x (pp4, tg2)
    std::map<std::string, nlohmann::json> by_type;
    for (const auto& row : rows) {
        CHECK(row["kl_base"] == models().f32);  // the F32 file: the most bits per weight, wherever listed
        CHECK(row["ppl_ctx"] == 32);
        by_type[row["file_type"].get<std::string>()] = row;
    }
    REQUIRE(by_type.size() == 3);
    const auto& f32 = by_type["F32"];
    const auto& q8 = by_type["Q8_0"];
    const auto& q4 = by_type["Q4_0"];
    // The base: KLD 0 and the same top token by definition; its PPL is what `infer perplexity` prints.
    CHECK(f32["kld"] == 0.0);
    CHECK(f32["same_top_pct"] == 100.0);
    r = kinfer_test::run_infer_cli("perplexity -m " + q(models().f32) + " -f " + q(text) + " --ctx 32 -t 1");
    REQUIRE(r.status == 0);
    CHECK(f32["ppl"].get<double>() == doctest::Approx(std::stod(r.out.substr(22))).epsilon(1e-5));
    CHECK(f32["ppl_tokens"] == f32["ppl_chunks"].get<int>() * 15);
    // Quantized files: a KLD that grows with coarser types (hf_tiny is a random model with 16-wide heads:
    // Q4_0 moves it a lot, KLD about 0.5 and the same top token a third of the time).
    INFO("q8_0 KLD " << q8["kld"] << ", q4_0 KLD " << q4["kld"]);
    CHECK(q8["kld"].get<double>() > 1e-6);
    CHECK(q4["kld"].get<double>() > 2 * q8["kld"].get<double>());
    CHECK(q4["kld"].get<double>() < 2.0);
    CHECK(q4["same_top_pct"].get<double>() < 100.0);
    CHECK(q4["same_top_pct"].get<double>() > 20.0);
    CHECK(q8["ppl"].get<double>() != f32["ppl"].get<double>());

    // A file against itself (a copy as --kl-base): KLD 0 within the 16-bit log-prob packing, same top 100%.
    const auto copy = dir / "copy.gguf";
    std::filesystem::copy_file(models().f32, copy);
    r = kinfer_test::run_infer_cli("bench -m " + q(models().f32) + " --kl-base " + q(copy) +
                                   " --perplexity " + q(text) + " --ctx 32" + speed);
    REQUIRE(r.status == 0);
    const std::string head =
        "| type | size | bits/weight | PPL | KLD vs F32 | same top | threads | pp4 t/s |";
    CHECK(r.out.find(head) != std::string::npos);
    const size_t row = r.out.find("\n| F32 |", r.out.find(head));
    REQUIRE(row != std::string::npos);
    const std::string line = r.out.substr(row + 1, r.out.find('\n', row + 1) - row - 1);
    INFO(line);
    std::vector<std::string> cells;
    for (size_t a = 1, b; (b = line.find('|', a)) != std::string::npos; a = b + 1)
        cells.push_back(line.substr(a + 1, b - a - 2));
    REQUIRE(cells.size() >= 7);
    CHECK(std::fabs(std::stod(cells[4])) < 2e-4);  // KLD
    CHECK(cells[5] == "100.00 %");
    CHECK(std::stod(cells[3]) == doctest::Approx(f32["ppl"].get<double>()).epsilon(1e-3));

    // Bad arguments: clear one-line errors before anything is measured.
    const auto m = " -m " + q(models().f32);
    struct Case {
        std::string args, message;
        int status;
    };
    kinfer::test::TinyLlamaSpec other;  // another vocabulary
    other.n_ctx_train = 64;
    const auto other_path = (dir / "other.gguf").string();
    kinfer::test::write_tiny_llama(other, other_path);
    for (const Case& c : std::vector<Case>{
             {m + " --ctx 32", "--ctx goes with --perplexity TEXT", 2},
             {m + " --kl-base " + q(copy), "--kl-base goes with --perplexity TEXT", 2},
             {" --all-types --perplexity " + q(text), "--perplexity needs real models", 2},
             {m + " --perplexity " + q(text) + " --ctx 200", "needs at least 400", 2},
             {m + " --perplexity " + q(dir / "none.txt"), "none.txt: cannot open", 1},
             {m + " -m " + q(other_path) + " --perplexity " + q(text) + " --ctx 32",
              "other.gguf: its vocabulary has 96 tokens", 1},
         }) {
        CAPTURE(c.args);
        r = kinfer_test::run_infer_cli("bench" + c.args + speed);
        CHECK(r.status == c.status);
        CHECK(r.out.empty());
        CHECK_MESSAGE(r.err.find(c.message) != std::string::npos, r.err);
    }
}
