#pragma once
// Reading the JSON files of a Hugging Face model folder, with errors that name the file and the key.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace kinfer::convert {

// Parses `path`. Throws Error if it cannot be read, FormatError (naming the file) if it is not JSON.
nlohmann::json read_json_file(const std::string& path);
std::string read_text_file(const std::string& path);

// Typed access to one key of a JSON object, for messages "FILE: KEY ...".
class JsonFields {
  public:
    JsonFields(const nlohmann::json& object, std::string file) : j_(object), file_(std::move(file)) {}

    bool has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }
    // A positive integer no larger than `max`; `fallback` when absent or null (throws when absent and no
    // fallback is given).
    uint32_t count(const std::string& key, std::optional<uint32_t> fallback = {},
                   uint64_t max = 1u << 30) const;
    double number(const std::string& key, std::optional<double> fallback = {}) const;
    bool boolean(const std::string& key, bool fallback) const;
    std::string string(const std::string& key, std::optional<std::string> fallback = {}) const;
    [[noreturn]] void fail(const std::string& key, const std::string& what) const;
    const std::string& file() const { return file_; }

  private:
    const nlohmann::json& j_;
    std::string file_;
};

}  // namespace kinfer::convert
