#pragma once
// Chat templates: a list of {role, content} messages -> the prompt text a model was trained on. GGUF files
// carry their template as Jinja source (`tokenizer.chat_template`); instead of running Jinja we recognise the
// template's family from telltale fragments of that source, and render the family in C++.
//
// Families (names as llama.cpp's llama_chat_apply_template knows them, and what --chat-template accepts):
//   mistral-v3        "[INST] user[/INST] answer</s>[INST] ...": exactly what the Hugging Face
//   Mistral-7B-Instruct
//                     v0.3 template renders: the system prompt goes in front of the LAST user message (and is
//                     dropped when the conversation ends with an answer); answers are trimmed; roles must
//                     alternate user/assistant after an optional first system message (else UsageError).
//                     (llama.cpp's built-in "mistral-v3" puts the system prompt in the first turn instead;
//                     both agree whenever there is no system prompt or one user turn.)
//   mistral-v1        " [INST] user [/INST] answer</s>", system prompt at its place followed by "\n\n".
//   llama2            "[INST] user [/INST]answer</s>", system text + "\n" at its place;
//   llama2-sys        the same with "<<SYS>>\n...\n<</SYS>>\n\n"; llama2-sys-bos adds "<s>" before each later
//                     "[INST]"; llama2-sys-strip also trims every message (Meta's Llama 2 chat template).
//   chatml            "<|im_start|>role\ncontent<|im_end|>\n"
//   zephyr            "<|role|>\ncontent<|endoftext|>\n"
// chatml and zephyr end with the assistant header when add_generation_prompt is set; the [INST] families need
// no header (the model answers after "[/INST]") and ignore the flag.
//
// BOS: apply() never starts with the BOS text (the file's Mistral template begins with `bos_token`; we leave
// it out). Tokenize the result with add_bos = Tokenizer::add_bos() and parse_special = true: that gives
// exactly one BOS, and the same ids as the template's own text tokenized without adding BOS. Texts of special
// tokens inside the prompt ("</s>" between turns, "<s>" for llama2-sys-bos) are meant to be parsed as special
// tokens.
#include <span>
#include <string>
#include <string_view>

namespace kinfer::gguf {
class GgufFile;
}

namespace kinfer::tokenizer {

struct ChatMessage {
    std::string role;  // "system", "user", "assistant" (chatml/zephyr pass any role through)
    std::string content;
};

class ChatTemplate {
  public:
    enum class Family {
        kMistralV3,
        kMistralV1,
        kLlama2,
        kLlama2Sys,
        kLlama2SysBos,
        kLlama2SysStrip,
        kChatml,
        kZephyr,
    };
    static constexpr std::string_view kDefaultName = "chatml";  // llama.cpp's fallback as well

    // The template for a model: `override_name` if non-empty (UsageError if unknown), else the family of the
    // file's tokenizer.chat_template. A missing or unrecognised template falls back to kDefaultName and says
    // so in *warning (if given; set to "" otherwise).
    static ChatTemplate from_gguf(const gguf::GgufFile& file, std::string_view override_name,
                                  std::string* warning);
    // By family name (see above); throws UsageError listing the known names.
    static ChatTemplate by_name(std::string_view name);
    // The family name for Jinja template source (or a family name itself), or "" if not recognised.
    static std::string_view detect(std::string_view template_text);
    // Known names, comma-separated (for help and error messages).
    static std::string known_names();

    // Renders the conversation. Throws UsageError where the family's template raises an error (mistral-v3:
    // roles not alternating, a role other than system/user/assistant).
    std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt) const;
    std::string_view name() const;
    Family family() const { return family_; }

  private:
    explicit ChatTemplate(Family f) : family_(f) {}
    Family family_;
};

}  // namespace kinfer::tokenizer
