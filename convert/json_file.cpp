#include "convert/json_file.hpp"

#include <fstream>
#include <sstream>

#include "kinfer/error.hpp"

namespace kinfer::convert {

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

nlohmann::json read_json_file(const std::string& path) {
    const std::string text = read_text_file(path);
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw FormatError(path + ": not valid JSON: " + e.what());
    }
}

void JsonFields::fail(const std::string& key, const std::string& what) const {
    throw FormatError(file_ + ": " + key + " " + what);
}

uint32_t JsonFields::count(const std::string& key, std::optional<uint32_t> fallback, uint64_t max) const {
    if (!has(key)) {
        if (fallback) return *fallback;
        fail(key, "is missing");
    }
    const auto& v = j_.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() <= 0 || uint64_t(v.get<int64_t>()) > max)
        fail(key, "is " + v.dump() + ", not an integer in 1.." + std::to_string(max));
    return static_cast<uint32_t>(v.get<int64_t>());
}

double JsonFields::number(const std::string& key, std::optional<double> fallback) const {
    if (!has(key)) {
        if (fallback) return *fallback;
        fail(key, "is missing");
    }
    const auto& v = j_.at(key);
    if (!v.is_number()) fail(key, "is " + v.dump() + ", not a number");
    return v.get<double>();
}

bool JsonFields::boolean(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    const auto& v = j_.at(key);
    if (!v.is_boolean()) fail(key, "is " + v.dump() + ", not true or false");
    return v.get<bool>();
}

std::string JsonFields::string(const std::string& key, std::optional<std::string> fallback) const {
    if (!has(key)) {
        if (fallback) return *fallback;
        fail(key, "is missing");
    }
    const auto& v = j_.at(key);
    if (!v.is_string()) fail(key, "is " + v.dump() + ", not a string");
    return v.get<std::string>();
}

}  // namespace kinfer::convert
