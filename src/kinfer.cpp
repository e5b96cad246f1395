// The public API (include/kinfer/kinfer.hpp) on top of engine/ and tokenizer/. Thin: the engine uses the
// public option types (include/kinfer/options.hpp) itself; what is here is the prompt-tokenization rules
// (exactly one BOS), UTF-8 checks of user text, and ownership (a Session keeps its Model alive).
#include "kinfer/kinfer.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>

#include "engine/batch_decoder.hpp"
#include "engine/generate.hpp"
#include "engine/model.hpp"
#include "engine/sampler.hpp"
#include "engine/session.hpp"
#include "src/model_access.hpp"
#include "tokenizer/chat_template.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace kinfer {
namespace {

bool same(const SamplerOptions& a, const SamplerOptions& b) {
    return a.temperature == b.temperature && a.top_k == b.top_k && a.top_p == b.top_p && a.min_p == b.min_p &&
           a.repeat_penalty == b.repeat_penalty && a.frequency_penalty == b.frequency_penalty &&
           a.presence_penalty == b.presence_penalty && a.penalty_last_n == b.penalty_last_n &&
           a.seed == b.seed && a.logit_bias == b.logit_bias;
}

void check_utf8(std::string_view text, const char* what) {
    const size_t bad = tokenizer::find_invalid_utf8(text);
    if (bad != tokenizer::kUtf8Npos)
        throw UsageError(std::string(what) + " is not valid UTF-8 (bad byte 0x" +
                         [&] {
                             char b[3];
                             std::snprintf(b, sizeof b, "%02X", static_cast<unsigned char>(text[bad]));
                             return std::string(b);
                         }() +
                         " at byte offset " + std::to_string(bad) + ")");
}

std::string gigabytes(uint64_t bytes) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f GB", double(bytes) / 1e9);
    return b;
}

}  // namespace

const char* to_string(StopReason reason) {
    switch (reason) {
        case StopReason::EndOfGeneration:
            return "end of generation";
        case StopReason::MaxTokens:
            return "token limit";
        case StopReason::StopString:
            return "stop string";
        case StopReason::ContextFull:
            return "context full";
        case StopReason::Interrupted:
            return "interrupted";
        case StopReason::Callback:
            return "stopped by callback";
    }
    return "unknown";
}

// ---- Model ---------------------------------------------------------------------------------------------

struct Model::Impl {
    ModelOptions options;
    std::shared_ptr<const engine::Model> model;
    std::optional<tokenizer::Tokenizer> tok;
    std::optional<tokenizer::ChatTemplate> chat_template;
    bool has_chat_template = false;
    int n_ctx = 0;

    const tokenizer::Tokenizer& tokenizer() const {
        if (!tok)
            throw UsageError(model->file().path() +
                             ": the model file has no tokenizer (tokenizer.ggml.* keys)");
        return *tok;
    }
    const tokenizer::ChatTemplate& templ() const {
        tokenizer();
        return *chat_template;
    }

    // The one place that decides about BOS: add it when asked and the model wants it, unless the text
    // already starts with the BOS token's text and that text is parsed as a special token.
    std::vector<int32_t> tokenize(std::string_view text, bool add_bos, bool parse_special) const {
        const tokenizer::Tokenizer& t = tokenizer();
        check_utf8(text, "text");
        bool bos = add_bos && t.add_bos();
        if (bos && parse_special) {
            const std::string_view bos_text = t.token_text(t.bos_id());
            if (!bos_text.empty() && text.substr(0, bos_text.size()) == bos_text) bos = false;
        }
        return t.encode(text, bos, parse_special);
    }

    std::string render_chat(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
        std::vector<tokenizer::ChatMessage> m;
        m.reserve(messages.size());
        for (const auto& msg : messages) {
            check_utf8(msg.content, ("chat message (" + msg.role + ")").c_str());
            m.push_back({msg.role, msg.content});
        }
        return templ().apply(m, add_generation_prompt);
    }
};

const std::shared_ptr<const engine::Model>& ModelAccess::engine_model(const Model& m) {
    return m.impl_->model;
}
const tokenizer::Tokenizer& ModelAccess::tokenizer(const Model& m) {
    return m.impl_->tokenizer();
}
engine::KvType ModelAccess::kv_type(const Model& m) {
    return m.impl_->options.kv_type == KvType::F32 ? engine::KvType::F32 : engine::KvType::F16;
}
void ModelAccess::check_utf8(std::string_view text, const char* what) {
    kinfer::check_utf8(text, what);
}

Model::Model(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
Model::Model(const Model&) = default;
Model& Model::operator=(const Model&) = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Model Model::load(const std::string& path, const ModelOptions& options) {
    if (options.threads < 0) throw UsageError("threads must be >= 0, got " + std::to_string(options.threads));
    if (options.n_ctx < 1)
        throw UsageError("context size must be >= 1, got " + std::to_string(options.n_ctx));
    auto impl = std::make_shared<Impl>();
    impl->options = options;
    engine::LoadOptions lo;
    lo.device = options.device == Device::Cuda ? engine::Device::Cuda : engine::Device::Cpu;
    lo.n_threads = options.threads;
    lo.memory_limit = options.memory_limit;
    if (options.progress)
        lo.progress = [&options](const char* stage, double fraction) { options.progress(stage, fraction); };
    impl->model = engine::Model::load(path, lo);
    const auto& file = impl->model->file();
    const auto& config = impl->model->config();
    impl->n_ctx = static_cast<int>(std::min<int64_t>(options.n_ctx, config.n_ctx_train));

    if (file.has("tokenizer.ggml.model")) {
        impl->tok = tokenizer::Tokenizer::from_gguf(file);
        if (impl->tok->n_vocab() != config.n_vocab)
            throw FormatError(path + ": the tokenizer has " + std::to_string(impl->tok->n_vocab()) +
                              " tokens but token_embd.weight has " + std::to_string(config.n_vocab) +
                              " rows");
        if (options.log)
            for (const auto& w : impl->tok->warnings()) options.log("tokenizer: " + w);
        std::string warning;
        impl->chat_template = tokenizer::ChatTemplate::from_gguf(file, options.chat_template, &warning);
        impl->has_chat_template = !options.chat_template.empty() || file.has("tokenizer.chat_template");
        if (!warning.empty() && options.log && impl->has_chat_template)
            options.log("chat template: " + warning);
    } else if (!options.chat_template.empty()) {
        tokenizer::ChatTemplate::by_name(options.chat_template);  // still report an unknown name
    }
    return Model(std::move(impl));
}

std::vector<int32_t> Model::tokenize(std::string_view text, bool add_bos, bool parse_special) const {
    return impl_->tokenize(text, add_bos, parse_special);
}

std::string Model::detokenize(std::span<const int32_t> ids) const {
    return impl_->tokenizer().decode(ids);
}

std::string Model::token_text(int32_t id) const {
    return std::string(impl_->tokenizer().token_text(id));
}

std::string Model::apply_chat_template(std::span<const ChatMessage> messages,
                                       bool add_generation_prompt) const {
    return impl_->render_chat(messages, add_generation_prompt);
}

std::vector<int32_t> Model::chat_prompt(std::span<const ChatMessage> messages,
                                        bool add_generation_prompt) const {
    return impl_->tokenize(impl_->render_chat(messages, add_generation_prompt), true, true);
}

std::string Model::chat_template_name() const {
    return std::string(impl_->templ().name());
}
bool Model::has_chat_template() const {
    return impl_->has_chat_template;
}
int Model::n_vocab() const {
    return static_cast<int>(impl_->model->config().n_vocab);
}
int Model::n_ctx_train() const {
    return static_cast<int>(impl_->model->config().n_ctx_train);
}
int Model::n_ctx() const {
    return impl_->n_ctx;
}
int Model::n_embd() const {
    return static_cast<int>(impl_->model->config().n_embd);
}
int Model::n_layer() const {
    return static_cast<int>(impl_->model->config().n_layer);
}
int32_t Model::bos_id() const {
    return impl_->tok ? impl_->tok->bos_id() : -1;
}
int32_t Model::eos_id() const {
    return impl_->tok ? impl_->tok->eos_id() : -1;
}
bool Model::is_end_of_generation(int32_t id) const {
    return impl_->tok && impl_->tok->is_eog(id);
}
std::string Model::backend() const {
    return impl_->model->backend().describe();
}

const ModelOptions& Model::options() const {
    return impl_->options;
}

std::string Model::description() const {
    const auto& c = impl_->model->config();
    std::map<std::string, uint64_t> bytes_by_type;
    for (const auto& t : impl_->model->file().tensors())
        if (t.n_dims >= 2) bytes_by_type[t.type->name] += t.n_bytes;
    std::string types;
    for (const auto& [name, b] : bytes_by_type) types += (types.empty() ? "" : "/") + name;
    std::string d = c.arch + ", " + std::to_string(c.n_layer) + " layers, n_embd " +
                    std::to_string(c.n_embd) + ", " + std::to_string(c.n_head) + "/" +
                    std::to_string(c.n_head_kv) + " heads, vocab " + std::to_string(c.n_vocab) + ", " +
                    types + ", " + gigabytes(impl_->model->file().file_size());
    if (!c.name.empty()) d = c.name + " (" + d + ")";
    return d;
}

// ---- Session -------------------------------------------------------------------------------------------

struct Session::Impl {
    Model model;  // keeps the model alive
    engine::Session session;
    std::optional<engine::Sampler> sampler;
    SamplerOptions sampler_options;

    Impl(const Model& m, int n_ctx)
        : model(m),
          session(m.impl_->model, engine::SessionOptions{.n_ctx = n_ctx,
                                                         .kv_type = m.impl_->options.kv_type == KvType::F32
                                                                        ? engine::KvType::F32
                                                                        : engine::KvType::F16}) {}

    GenerateResult generate(std::span<const int32_t> prompt, const GenerateOptions& o,
                            const TextCallback& cb) {
        for (const auto& s : o.stop) check_utf8(s, "stop string");
        return engine::generate(session, model.impl_->tokenizer(), prompt, o, cb);
    }

    // The last token's logits. generate() may have kept only its best candidates (engine/generate.cpp):
    // then the last token is evaluated again, once, for the caller who asks for logits after it.
    std::span<const float> logits() {
        if (session.logits().empty() && !session.top().empty()) {
            const int32_t last = session.tokens().back();
            session.truncate(session.n_past() - 1);
            session.forward(std::span<const int32_t>(&last, 1));
        }
        return session.logits();
    }
};

Session::Session(const Model& model) : Session(model, model.n_ctx()) {}
Session::Session(const Model& model, int n_ctx) {
    if (n_ctx < 1) throw UsageError("context size must be >= 1, got " + std::to_string(n_ctx));
    impl_ = std::make_unique<Impl>(model, n_ctx);
}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

std::span<const float> Session::feed(std::span<const int32_t> tokens, bool all_logits) {
    return impl_->session.forward(tokens, all_logits);
}

std::span<const float> Session::logits() const {
    return impl_->logits();
}

int32_t Session::sample(const SamplerOptions& options) {
    engine::Session& session = impl_->session;
    if (!impl_->sampler || !same(options, impl_->sampler_options)) {
        impl_->sampler.emplace(options, session.n_vocab());
        impl_->sampler_options = options;
    }
    engine::Sampler& sampler = *impl_->sampler;
    // After generate(), the candidates it kept serve when they are enough for these options.
    const int32_t k = sampler.candidates_needed();
    if (session.logits().empty() && k > 0 && session.top().size() >= size_t(k))
        return sampler.sample(session.top());
    const auto logits = impl_->logits();
    if (logits.empty()) throw UsageError("sample: no logits yet (feed tokens first)");
    return sampler.sample(logits, session.tokens());
}

GenerateResult Session::generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                 const TextCallback& on_text) {
    return impl_->generate(prompt, options, on_text);
}

GenerateResult Session::generate(std::string_view prompt, const GenerateOptions& options,
                                 const TextCallback& on_text) {
    const std::vector<int32_t> tokens = impl_->model.tokenize(prompt, true, true);
    return impl_->generate(tokens, options, on_text);
}

GenerateResult Session::chat(std::span<const ChatMessage> messages, const GenerateOptions& options,
                             const TextCallback& on_text) {
    const std::vector<int32_t> tokens = impl_->model.chat_prompt(messages, true);
    // An answer's first token usually carries the tokenizer's word-start space (" Hello"): not part of
    // the reply.
    bool at_start = true;
    const TextCallback strip = [&](std::string_view piece) {
        if (at_start) {
            const size_t b = piece.find_first_not_of(' ');
            if (b == std::string_view::npos) return true;
            piece.remove_prefix(b);
            at_start = false;
        }
        return on_text ? on_text(piece) : true;
    };
    GenerateResult r = impl_->generate(tokens, options, strip);
    r.text.erase(0, std::min(r.text.size(), r.text.find_first_not_of(' ')));
    return r;
}

std::span<const int32_t> Session::tokens() const {
    return impl_->session.tokens();
}
int Session::n_past() const {
    return static_cast<int>(impl_->session.n_past());
}
int Session::n_ctx() const {
    return static_cast<int>(impl_->session.n_ctx());
}
void Session::truncate(int n) {
    impl_->session.truncate(n);
}
void Session::reset() {
    impl_->session.reset();
}
const Model& Session::model() const {
    return impl_->model;
}

// ---- BatchDecoder --------------------------------------------------------------------------------------

struct BatchDecoder::Impl {
    Model model;  // keeps the model alive
    engine::BatchDecoder decoder;
    std::vector<engine::SequenceInput> inputs;

    Impl(const Model& m, int max_tokens) : model(m), decoder(m.impl_->model, max_tokens) {}
};

BatchDecoder::BatchDecoder(const Model& model, int max_tokens) {
    if (max_tokens < 1) throw UsageError("batch size must be >= 1, got " + std::to_string(max_tokens));
    impl_ = std::make_unique<Impl>(model, max_tokens);
}
BatchDecoder::~BatchDecoder() = default;
BatchDecoder::BatchDecoder(BatchDecoder&&) noexcept = default;
BatchDecoder& BatchDecoder::operator=(BatchDecoder&&) noexcept = default;

void BatchDecoder::decode(std::span<const BatchInput> inputs) {
    impl_->inputs.clear();
    for (size_t i = 0; i < inputs.size(); ++i) {
        Session* s = inputs[i].session;
        if (!s || !s->impl_) throw UsageError("batch: input " + std::to_string(i) + " has no session");
        impl_->inputs.push_back({&s->impl_->session, inputs[i].tokens});
    }
    impl_->decoder.decode(impl_->inputs);
}

}  // namespace kinfer
