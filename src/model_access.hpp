#pragma once
// The engine objects behind a public kinfer::Model, for the library's own parts built on the public types
// (the Scheduler). Not installed: programs outside the library use the public API only.
#include <memory>
#include <string_view>

#include "engine/model.hpp"
#include "engine/session.hpp"
#include "kinfer/kinfer.hpp"
#include "tokenizer/tokenizer.hpp"

namespace kinfer {

struct ModelAccess {
    static const std::shared_ptr<const engine::Model>& engine_model(const Model& m);
    // Throws UsageError when the file has no tokenizer.
    static const tokenizer::Tokenizer& tokenizer(const Model& m);
    static engine::KvType kv_type(const Model& m);
    // Throws UsageError naming `what` and the offset when `text` is not valid UTF-8.
    static void check_utf8(std::string_view text, const char* what);
};

}  // namespace kinfer
