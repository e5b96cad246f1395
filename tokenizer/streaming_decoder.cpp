#include "tokenizer/streaming_decoder.hpp"

#include "tokenizer/utf8.hpp"

namespace kinfer::tokenizer {

StreamingDecoder::StreamingDecoder(const Tokenizer& tok, StreamingOptions options)
    : tok_(&tok), options_(options) {}

std::string StreamingDecoder::push(int32_t id) {
    std::string out;
    push(id, out);
    return out;
}

void StreamingDecoder::push(int32_t id, std::string& out) {
    std::string_view piece = tok_->piece(id, options_.render_special);
    if (piece.empty()) return;
    if (at_start_) {
        at_start_ = false;
        if (options_.strip_leading_space && tok_->add_space_prefix() && piece[0] == ' ')
            piece.remove_prefix(1);
    }
    feed(piece, out);
}

void StreamingDecoder::feed(std::string_view bytes, std::string& out) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t n = bytes.size();
    size_t i = 0;
    // First complete (or give up on) the character held back from earlier tokens.
    while (n_pending_ > 0 && i < n) {
        pending_[n_pending_++] = bytes[i++];
        const Utf8Step st = utf8_step(reinterpret_cast<const uint8_t*>(pending_), n_pending_);
        if (st.kind == Utf8Step::kIncomplete) continue;
        if (st.kind == Utf8Step::kValid) {
            out.append(pending_, n_pending_);
        } else {
            // The byte just added cannot continue the held prefix: the prefix is one ill-formed subpart, and
            // that byte starts afresh.
            out += kReplacementChar;
            --i;
        }
        n_pending_ = 0;
    }
    while (i < n) {
        const Utf8Step st = utf8_step(p + i, n - i);
        if (st.kind == Utf8Step::kValid) {
            out.append(bytes.data() + i, st.length);
        } else if (st.kind == Utf8Step::kInvalid) {
            out += kReplacementChar;
        } else {
            for (uint32_t k = 0; k < st.length; ++k) pending_[n_pending_++] = bytes[i + k];
        }
        i += st.length;
    }
}

std::string StreamingDecoder::finish() {
    std::string out;
    finish(out);
    return out;
}

void StreamingDecoder::finish(std::string& out) {
    if (n_pending_ > 0) out += kReplacementChar;
    reset();
}

void StreamingDecoder::reset() {
    n_pending_ = 0;
    at_start_ = true;
}

}  // namespace kinfer::tokenizer
