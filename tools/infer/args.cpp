#include "tools/infer/args.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace kinfer::cli {

ArgReader::ArgReader(std::string command, int argc, char** argv) : command_(std::move(command)) {
    for (int k = 0; k < argc; ++k) args_.emplace_back(argv[k]);
}

bool ArgReader::next() {
    // "--json=1" on a flag that takes no value would otherwise be read as plain "--json".
    if (has_inline_ && !inline_used_)
        throw UsageError(command_ + ": option " + flag_ + " takes no value (got '" + cur_ + "')");
    if (i_ >= args_.size()) return false;
    cur_ = args_[i_++];
    has_inline_ = false;
    inline_used_ = false;
    flag_ = cur_;
    if (cur_.size() > 2 && cur_.rfind("--", 0) == 0) {
        const size_t eq = cur_.find('=');
        if (eq != std::string::npos) {
            flag_ = cur_.substr(0, eq);
            inline_value_ = cur_.substr(eq + 1);
            has_inline_ = true;
        }
    }
    return true;
}

bool ArgReader::is(std::string_view a, std::string_view b) {
    return flag_ == a || (!b.empty() && flag_ == b);
}

bool ArgReader::is_positional() const {
    return cur_.empty() || cur_[0] != '-' || cur_ == "-";
}

std::string ArgReader::value() {
    if (has_inline_) {
        inline_used_ = true;
        return inline_value_;
    }
    if (i_ >= args_.size()) throw UsageError(command_ + ": option " + flag_ + " needs a value");
    return args_[i_++];
}

int64_t ArgReader::int_value(int64_t min, int64_t max) {
    const std::string v = value();
    int64_t x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (p != v.data() + v.size() || (ec != std::errc() && ec != std::errc::result_out_of_range))
        throw UsageError(command_ + ": option " + flag_ + " wants an integer, got '" + v + "'");
    if (ec == std::errc::result_out_of_range || x < min || x > max)
        throw UsageError(command_ + ": option " + flag_ + " must be in [" + std::to_string(min) + ", " +
                         std::to_string(max) + "], got " + v);
    return x;
}

double ArgReader::float_value() {
    const std::string v = value();
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(x))
        throw UsageError(command_ + ": option " + flag_ + " wants a number, got '" + v + "'");
    return x;
}

void ArgReader::unknown() const {
    if (is_positional()) throw UsageError(command_ + ": unexpected argument '" + cur_ + "' (see --help)");
    throw UsageError(command_ + ": unknown option '" + flag_ + "' (see --help)");
}

}  // namespace kinfer::cli
