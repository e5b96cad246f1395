#include "tests/support/golden_fixture.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "kinfer/error.hpp"

namespace kinfer::testing {
namespace {

std::vector<std::pair<int32_t, double>> read_pairs(std::istringstream& in, const std::string& stop) {
    std::vector<std::pair<int32_t, double>> out;
    std::string item;
    while (in >> item && item != stop) {
        const auto colon = item.find(':');
        if (colon == std::string::npos) throw Error("expected ID:LOGIT, got '" + item + "'");
        out.emplace_back(std::stoi(item.substr(0, colon)), std::stod(item.substr(colon + 1)));
    }
    return out;
}

std::vector<int32_t> read_ids(std::istringstream& in) {
    std::vector<int32_t> out;
    int32_t id;
    while (in >> id) out.push_back(id);
    return out;
}

GoldenPrompt& find_prompt(GoldenFixture& f, const std::string& name) {
    for (auto& p : f.prompts)
        if (p.name == name) return p;
    throw Error("prompt '" + name + "' used before its 'prompt' line");
}

}  // namespace

std::vector<int32_t> GoldenPrompt::sequence() const {
    std::vector<int32_t> seq = tokens;
    if (!greedy.empty()) seq.insert(seq.end(), greedy.begin(), greedy.end() - 1);
    return seq;
}

uint64_t model_checksum(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open " + path);
    std::vector<char> buf(1 << 20);  // a multiple of 8
    uint64_t sum = 0, index = 0;
    while (in) {
        in.read(buf.data(), std::streamsize(buf.size()));
        const auto got = size_t(in.gcount());
        std::fill(buf.begin() + std::ptrdiff_t(got), buf.begin() + std::ptrdiff_t((got + 7) / 8 * 8), 0);
        for (size_t i = 0; i < got; i += 8) {
            uint64_t w = 0;
            for (int b = 7; b >= 0; --b) w = (w << 8) | uint8_t(buf[i + size_t(b)]);
            sum += ++index * w;
        }
    }
    return sum;
}

GoldenFixture load_golden_fixture(const std::string& path) {
    std::ifstream file(path);
    if (!file) throw Error("cannot open golden fixture " + path);
    GoldenFixture f;
    f.path = path;
    std::string line;
    for (int line_no = 1; std::getline(file, line); ++line_no) {
        if (line.empty() || line[0] == '#') continue;
        try {
            std::istringstream in(line);
            std::string key;
            in >> key;
            if (key == "synth") {
                std::getline(in >> std::ws, f.synth_args);
            } else if (key == "type") {
                in >> f.type;
            } else if (key == "model_bytes") {
                in >> f.model_bytes;
            } else if (key == "model_checksum") {
                in >> f.model_checksum;
            } else if (key == "n_vocab") {
                in >> f.n_vocab;
            } else if (key == "llama_max_rel_err") {
                in >> f.llama_max_rel_err;
            } else if (key == "prompt") {
                GoldenPrompt p;
                in >> p.name;
                p.tokens = read_ids(in);
                f.prompts.push_back(std::move(p));
            } else if (key == "greedy") {
                std::string name;
                in >> name;
                find_prompt(f, name).greedy = read_ids(in);
            } else if (key == "pos") {
                std::string name, word;
                GoldenPosition pos;
                in >> name >> pos.index >> pos.llama_rel_err >> word;
                if (word != "llama") throw Error("expected 'llama'");
                pos.llama_top = read_pairs(in, "ref");
                pos.ref_top = read_pairs(in, "");
                find_prompt(f, name).positions.push_back(std::move(pos));
            } else {
                throw Error("unknown key '" + key + "'");
            }
            if (in.fail() && !in.eof()) throw Error("malformed values");
        } catch (const std::exception& e) {
            throw Error(path + ":" + std::to_string(line_no) + ": " + e.what());
        }
    }
    if (f.synth_args.empty() || f.type.empty() || f.n_vocab <= 0 || f.prompts.empty())
        throw Error(path + ": incomplete golden fixture (synth, type, n_vocab and prompts are required)");
    for (const auto& p : f.prompts)
        if (p.positions.size() != p.sequence().size() || p.tokens.empty())
            throw Error(path + ": prompt " + p.name + " has " + std::to_string(p.positions.size()) +
                        " positions for a sequence of " + std::to_string(p.sequence().size()));
    return f;
}

}  // namespace kinfer::testing
