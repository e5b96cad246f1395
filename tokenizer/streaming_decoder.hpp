#pragma once
// Turns generated tokens into text as they arrive, never emitting half a UTF-8 character: a character split
// across byte tokens (<0xE4><0xB8><0xAD> for 中) is held back until it completes. Output is always valid
// UTF-8: bytes that can never form a character become U+FFFD at once (one per maximal ill-formed subpart),
// and finish() turns a character left incomplete at the end into U+FFFD.
//
// One decoder per stream (not thread-safe); the Tokenizer it reads must outlive it. Holds at most 3 bytes.
#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.hpp"

namespace kinfer::tokenizer {

struct StreamingOptions {
    bool render_special = false;       // show control tokens as their text instead of nothing
    bool strip_leading_space = false;  // drop one space at the very start of the stream (see below)
};

class StreamingDecoder {
  public:
    // Defaults suit generated text that follows a prompt: the model's first token "▁Hello" prints " Hello",
    // as llama.cpp prints it. Set strip_leading_space when the stream starts a text of its own (then the
    // output equals Tokenizer::decode of the same ids).
    explicit StreamingDecoder(const Tokenizer& tok, StreamingOptions options = {});

    // The text that became complete with this token (often empty or one character). Throws UsageError for an
    // id outside the vocabulary.
    std::string push(int32_t id);
    // Same, appended to `out` (no allocation when `out` has room).
    void push(int32_t id, std::string& out);
    // Flushes what is held back (as U+FFFD: it can no longer complete) and resets for a new stream.
    std::string finish();
    void finish(std::string& out);
    // Forgets held bytes without output and restarts the stream.
    void reset();

    size_t pending_bytes() const { return n_pending_; }

  private:
    void feed(std::string_view bytes, std::string& out);

    const Tokenizer* tok_;
    StreamingOptions options_;
    char pending_[4] = {};
    size_t n_pending_ = 0;
    bool at_start_ = true;
};

}  // namespace kinfer::tokenizer
