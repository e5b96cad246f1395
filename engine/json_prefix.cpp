#include "engine/json_prefix.hpp"

namespace kinfer::engine {
namespace {

bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}
bool is_hex(unsigned char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

// Whitespace between tokens, as llama.cpp's JSON grammar has it: one space, or a newline and at most
// kMaxIndent spaces or tabs (spaces_: 0 none yet, 1 + n after a newline and n indent bytes, kClosed after a
// space).
bool JsonPrefix::whitespace(unsigned char c) {
    constexpr uint8_t kClosed = 255;
    if (spaces_ == 0) {
        spaces_ = c == ' ' ? kClosed : 1;
        return c == ' ' || c == '\n';
    }
    if (spaces_ == kClosed || spaces_ > kMaxIndent || (c != ' ' && c != '\t')) return false;
    ++spaces_;
    return true;
}

bool JsonPrefix::open(bool object) {
    if (depth_ == kMaxDepth) return false;
    if (object)
        objects_ |= uint64_t(1) << depth_;
    else
        objects_ &= ~(uint64_t(1) << depth_);
    ++depth_;
    state_ = object ? State::KeyOrClose : State::ValueOrClose;
    return true;
}

bool JsonPrefix::close(bool object) {
    if (depth_ == 0 || ((objects_ >> (depth_ - 1)) & 1) != uint64_t(object)) return false;
    --depth_;
    state_ = depth_ == 0 ? State::Done : State::AfterValue;
    return true;
}

// The first byte of a value (whitespace already skipped).
bool JsonPrefix::value_start(unsigned char c) {
    switch (c) {
        case '{':
            return open(true);
        case '[':
            return open(false);
        case '"':
            state_ = State::String, key_ = false;
            return true;
        case '-':
            state_ = State::Minus;
            return true;
        case '0':
            state_ = State::Zero;
            return true;
        case 't':
            state_ = State::Literal, literal_ = "rue";
            return true;
        case 'f':
            state_ = State::Literal, literal_ = "alse";
            return true;
        case 'n':
            state_ = State::Literal, literal_ = "ull";
            return true;
        default:
            if (!is_digit(c)) return false;
            state_ = State::Int;
            return true;
    }
}

// A byte after a complete value: whitespace, ',' or the bracket that closes the innermost container.
bool JsonPrefix::after_value(unsigned char c) {
    state_ = State::AfterValue;
    if (is_space(c)) return whitespace(c);
    const bool object = (objects_ >> (depth_ - 1)) & 1;
    if (c == ',') {
        state_ = object ? State::Key : State::Value;
        return true;
    }
    if (c == '}' || c == ']') return close(c == '}');
    return false;
}

bool JsonPrefix::push(unsigned char c) {
    const bool space = is_space(c);
    if (!space && state_ != State::String && state_ != State::Escape && state_ != State::Unicode) spaces_ = 0;
    switch (state_) {
        case State::Start:
            return c == '{' && open(true);
        case State::KeyOrClose:
            if (c == '}') return close(true);
            [[fallthrough]];
        case State::Key:
            if (space) return whitespace(c);
            if (c != '"') return false;
            state_ = State::String, key_ = true;
            return true;
        case State::Colon:
            if (space) return whitespace(c);
            if (c != ':') return false;
            state_ = State::Value;
            return true;
        case State::ValueOrClose:
            if (c == ']') return close(false);
            [[fallthrough]];
        case State::Value:
            if (space) return whitespace(c);
            return value_start(c);
        case State::AfterValue:
            return after_value(c);
        case State::String:
            if (c == '"') {
                if (key_) {
                    state_ = State::Colon;
                    return true;
                }
                state_ = State::AfterValue;
                return true;
            }
            if (c == '\\') state_ = State::Escape;
            return c >= 0x20;
        case State::Escape:
            if (c == 'u') {
                state_ = State::Unicode, hex_left_ = 4;
                return true;
            }
            state_ = State::String;
            return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
                   c == 't';
        case State::Unicode:
            if (!is_hex(c)) return false;
            if (--hex_left_ == 0) state_ = State::String;
            return true;
        case State::Minus:
            if (c == '0') {
                state_ = State::Zero;
                return true;
            }
            if (!is_digit(c)) return false;
            state_ = State::Int;
            return true;
        case State::Zero:
        case State::Int:
            if (state_ == State::Int && is_digit(c)) return true;
            if (c == '.') {
                state_ = State::Dot;
                return true;
            }
            if (c == 'e' || c == 'E') {
                state_ = State::Exp;
                return true;
            }
            return after_value(c);
        case State::Dot:
            if (!is_digit(c)) return false;
            state_ = State::Frac;
            return true;
        case State::Frac:
            if (is_digit(c)) return true;
            if (c == 'e' || c == 'E') {
                state_ = State::Exp;
                return true;
            }
            return after_value(c);
        case State::Exp:
            if (c == '+' || c == '-') {
                state_ = State::ExpSign;
                return true;
            }
            [[fallthrough]];
        case State::ExpSign:
            if (!is_digit(c)) return false;
            state_ = State::ExpDigits;
            return true;
        case State::ExpDigits:
            if (is_digit(c)) return true;
            return after_value(c);
        case State::Literal:
            if (c != static_cast<unsigned char>(*literal_)) return false;
            if (*++literal_ == '\0') state_ = State::AfterValue;
            return true;
        case State::Done:
            return false;
    }
    return false;
}

}  // namespace kinfer::engine
