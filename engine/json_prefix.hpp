#pragma once
// JSON mode's grammar: whether some bytes can still become one JSON object (RFC 8259), read a byte at a
// time. The state is a small copyable value (a nesting stack of bits), so that a sampler can try each
// candidate token's bytes on a copy and keep only the tokens that leave a valid prefix (JsonMask).
//
// Narrower than RFC 8259 where a model could otherwise run on forever without breaking the grammar, as
// llama.cpp's JSON grammar is: the object starts at once (no whitespace before it), whitespace between
// tokens is one space or a newline and at most kMaxIndent spaces or tabs, and nesting is at most kMaxDepth
// deep. Inside strings any byte from 0x20 up is taken as it is (UTF-8 is the decoder's business), control
// bytes never.
#include <cstdint>
#include <string_view>

namespace kinfer::engine {

class JsonPrefix {
  public:
    static constexpr int kMaxDepth = 64;
    static constexpr int kMaxIndent = 20;

    // Feeds bytes; false when they cannot continue a JSON object (the state is then unspecified: try
    // candidates on a copy).
    bool push(std::string_view bytes) {
        for (const char c : bytes)
            if (!push(static_cast<unsigned char>(c))) return false;
        return true;
    }
    bool push(unsigned char c);

    // The top-level object is closed: nothing may follow.
    bool complete() const { return state_ == State::Done; }
    // Inside a string, past any escape: every byte from 0x20 up except '"' and '\' is a valid next byte.
    bool in_plain_string() const { return state_ == State::String; }

  private:
    enum class State : uint8_t {
        Start,         // before the top-level '{'
        KeyOrClose,    // after '{'
        Key,           // after ',' in an object
        Colon,         // after a key
        Value,         // after ':' or ',' in an array
        ValueOrClose,  // after '['
        AfterValue,    // ',' or the closing bracket
        String,        // inside a string
        Escape,        // after '\' in a string
        Unicode,       // in \uXXXX (hex_left digits to go)
        Minus,         // number: after '-'
        Zero,          // number: a leading 0
        Int,           // number: integer digits
        Dot,           // number: after '.'
        Frac,          // number: fraction digits
        Exp,           // number: after 'e'
        ExpSign,       // number: after the exponent's sign
        ExpDigits,     // number: exponent digits
        Literal,       // in true / false / null
        Done,          // the top-level object closed
    };
    bool open(bool object);
    bool close(bool object);
    bool value_start(unsigned char c);
    bool after_value(unsigned char c);
    bool whitespace(unsigned char c);

    State state_ = State::Start;
    bool key_ = false;               // the string being read is an object key
    uint8_t hex_left_ = 0;           // Unicode: hex digits still expected
    uint8_t spaces_ = 0;             // the whitespace run so far (whitespace())
    const char* literal_ = nullptr;  // Literal: what is left of "true", "false" or "null"
    int depth_ = 0;
    uint64_t objects_ = 0;  // bit d: level d is an object (else an array)
};

}  // namespace kinfer::engine
