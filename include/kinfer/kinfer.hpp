#pragma once
// kinfer: run Llama/Mistral GGUF models from C++.
//
//     #include <kinfer/kinfer.hpp>
//
//     kinfer::Model model = kinfer::Model::load("mistral-7b-instruct-v0.3.Q4_K_M.gguf", {.threads = 8});
//     kinfer::Session session(model);
//     kinfer::GenerateOptions opts;
//     opts.max_tokens = 128;
//     session.generate(model.chat_prompt({{"user", "Why is the sky blue?"}}), opts,
//                      [](std::string_view text) { std::cout << text << std::flush; return true; });
//
// Ownership and threads
// - Model is a cheap, copyable handle to an immutable loaded model (the GGUF file stays memory-mapped;
//   weights are never copied). Copies share it; it lives as long as any copy or Session uses it.
// - Session is one conversation: its own KV cache and buffers. A Session is used by one thread at a time;
//   any number of Sessions on one Model may run at the same time on different threads.
// - Nothing here uses globals, prints to stdout, or exits the process: errors are exceptions derived from
//   kinfer::Error (FormatError for bad model files, UsageError for bad arguments); warnings go to
//   ModelOptions::log when one is given.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kinfer/error.hpp"
#include "kinfer/export.hpp"
#include "kinfer/options.hpp"

namespace kinfer {

enum class Device { Cpu, Cuda };
enum class KvType { F16, F32 };  // storage of the KV cache: F16 halves its memory

struct ModelOptions {
    Device device = Device::Cpu;
    int threads = 0;   // CPU threads used by each session; 0: all cores (or OMP_NUM_THREADS)
    int n_ctx = 4096;  // context of new sessions, in tokens; capped at the model's own
    KvType kv_type = KvType::F16;
    std::string chat_template;  // template family to use instead of the file's ("" = the file's)
    std::function<void(std::string_view)> log;  // receives warnings (one line each); null: silent
    // Reports slow preparation at load (a GPU upload, weight repacking): a stage name and the fraction
    // done, ending with 1.0 for each stage. Null: nothing reported.
    std::function<void(std::string_view stage, double fraction)> progress;
    uint64_t memory_limit = 0;  // bytes the weights may take on the device; 0: the device's memory
};

class KINFER_API Model {
  public:
    // Loads a GGUF model. Throws Error if the file cannot be read, FormatError if it is not a GGUF file or
    // not a supported model (the message names the file and the key or tensor at fault).
    static Model load(const std::string& path, const ModelOptions& options = {});

    // ---- text <-> tokens ----
    // Token ids of `text`. add_bos: prepend BOS if the model wants one. parse_special: text such as
    // "[INST]" or "</s>" becomes those control tokens (only for trusted text). Throws UsageError when the
    // text is not valid UTF-8 or the model file has no tokenizer.
    std::vector<int32_t> tokenize(std::string_view text, bool add_bos = true,
                                  bool parse_special = false) const;
    std::string detokenize(std::span<const int32_t> ids) const;
    std::string token_text(int32_t id) const;  // the vocabulary entry ("▁Hello", "</s>")

    // ---- chat ----
    // The conversation rendered with the model's chat template, ready to be tokenized.
    std::string apply_chat_template(std::span<const ChatMessage> messages,
                                    bool add_generation_prompt = true) const;
    // The same, tokenized with exactly one BOS token (whether or not the template writes one).
    std::vector<int32_t> chat_prompt(std::span<const ChatMessage> messages,
                                     bool add_generation_prompt = true) const;
    std::vector<int32_t> chat_prompt(std::initializer_list<ChatMessage> messages) const {
        return chat_prompt(std::span<const ChatMessage>(messages.begin(), messages.size()));
    }
    std::string chat_template_name() const;
    bool has_chat_template() const;  // the file names a template (or one was chosen in ModelOptions)

    // ---- facts ----
    int n_vocab() const;
    int n_ctx_train() const;  // the context the model was trained with
    int n_ctx() const;        // the context new sessions get (ModelOptions::n_ctx, capped)
    int n_embd() const;
    int n_layer() const;
    int32_t bos_id() const;  // -1 if none
    int32_t eos_id() const;
    bool is_end_of_generation(int32_t id) const;
    std::string description() const;  // e.g. "llama, 32 layers, n_embd 4096, q4_K/q6_K, 4.37 GB"
    std::string backend() const;      // what runs it, e.g. "cpu (avx512, 2 threads)"
    const ModelOptions& options() const;

    ~Model();
    Model(const Model&);
    Model& operator=(const Model&);
    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;

  private:
    struct Impl;
    explicit Model(std::shared_ptr<const Impl> impl);
    std::shared_ptr<const Impl> impl_;
    friend class Session;
    friend class BatchDecoder;
    friend struct ModelAccess;  // the library's own parts (src/model_access.hpp)
};

class KINFER_API Session {
  public:
    // A session with the model's context size (ModelOptions::n_ctx), or `n_ctx` tokens (capped).
    explicit Session(const Model& model);
    Session(const Model& model, int n_ctx);

    // ---- low level: tokens in, logits out ----
    // Evaluates `tokens` after those already in the context. Returns the logits of the last one
    // (n_vocab floats) or, with all_logits, of every one (tokens.size() rows of n_vocab). The span is
    // valid until the session changes. Throws UsageError when the tokens do not fit in the context or an
    // id is outside the vocabulary (the session is then unchanged).
    std::span<const float> feed(std::span<const int32_t> tokens, bool all_logits = false);
    // The last token's logits (empty before the first feed and after truncate/reset). After generate(),
    // which may keep only the best few candidates of each step, the last token is evaluated again once.
    std::span<const float> logits() const;
    // Samples from logits() with `options` (penalties look at tokens()). The random generator is seeded
    // from options.seed when the options change, and keeps its state across calls otherwise.
    int32_t sample(const SamplerOptions& options);

    // ---- high level ----
    // Evaluates the prompt (reusing the longest prefix of it already in this session's cache), then
    // generates, calling on_text with each piece of text as it is final. The text prompt is tokenized as
    // is with a BOS token (no chat template; use Model::chat_prompt for that).
    GenerateResult generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                            const TextCallback& on_text = {});
    GenerateResult generate(std::string_view prompt, const GenerateOptions& options,
                            const TextCallback& on_text = {});
    GenerateResult generate(std::initializer_list<int32_t> prompt, const GenerateOptions& options,
                            const TextCallback& on_text = {}) {
        return generate(std::span<const int32_t>(prompt.begin(), prompt.size()), options, on_text);
    }
    // One chat turn: renders the whole conversation (ending with the user's message) with the template,
    // generates the assistant's answer (without the leading space of its first token). Earlier turns
    // still in the cache are not evaluated again.
    GenerateResult chat(std::span<const ChatMessage> messages, const GenerateOptions& options,
                        const TextCallback& on_text = {});

    // ---- state ----
    std::span<const int32_t> tokens() const;  // the tokens in the context, in order
    int n_past() const;                       // how many
    int n_ctx() const;
    void truncate(int n);  // keep only the first n tokens (the cache of those is kept)
    void reset();          // empty the context
    const Model& model() const;

    ~Session();
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    friend class BatchDecoder;
};

// New tokens for one session, for BatchDecoder::decode.
struct BatchInput {
    Session* session;
    std::span<const int32_t> tokens;  // evaluated after what the session holds (at least one)
};

// Steps several sessions of one model together: their new tokens go through the model in one forward step,
// so each weight is read once for all of them. Decoding is memory-bound, so k sequences decoded together
// cost about what one does (how a server serves many clients from one model). Use it from one thread at a
// time; the sessions must not be used elsewhere during decode().
//
//     kinfer::BatchDecoder batch(model);
//     batch.decode({{&alice, alice_prompt}, {&bob, {next_bob_token}}});
//     int32_t a = alice.sample(options), b = bob.sample(options);   // each session's logits() are its own
class KINFER_API BatchDecoder {
  public:
    // Steps of at most max_tokens tokens in all (a longer input is spread over several steps).
    explicit BatchDecoder(const Model& model, int max_tokens = 512);

    // Evaluates each input's tokens after what its session holds; afterwards each session's logits() are
    // those of its last new token. Throws UsageError, changing no session, when a session appears twice,
    // belongs to another model, or an input is empty, has an id outside the vocabulary or does not fit.
    void decode(std::span<const BatchInput> inputs);
    void decode(std::initializer_list<BatchInput> inputs) {
        decode(std::span<const BatchInput>(inputs.begin(), inputs.size()));
    }

    ~BatchDecoder();
    BatchDecoder(BatchDecoder&&) noexcept;
    BatchDecoder& operator=(BatchDecoder&&) noexcept;
    BatchDecoder(const BatchDecoder&) = delete;
    BatchDecoder& operator=(const BatchDecoder&) = delete;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace kinfer
