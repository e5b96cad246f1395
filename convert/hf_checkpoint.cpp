#include "convert/hf_checkpoint.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

#include "convert/json_file.hpp"
#include "kinfer/error.hpp"

namespace kinfer::convert {

namespace fs = std::filesystem;

HfCheckpoint HfCheckpoint::open(const std::string& model_dir) {
    const fs::path dir(model_dir);
    std::vector<std::string> shard_names;
    std::map<std::string, std::string> weight_map;  // tensor -> shard, when an index exists
    const fs::path index = dir / "model.safetensors.index.json";
    if (fs::exists(index)) {
        const auto j = read_json_file(index.string());
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
            throw FormatError(index.string() + ": no \"weight_map\" object");
        for (const auto& [name, file] : j["weight_map"].items()) {
            if (!file.is_string())
                throw FormatError(index.string() + ": weight_map entry '" + name + "' is not a file name");
            const std::string f = file.get<std::string>();
            if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
                throw FormatError(index.string() + ": weight_map entry '" + name + "' names '" + f +
                                  "', not a file in the model folder");
            weight_map[name] = f;
            if (std::find(shard_names.begin(), shard_names.end(), f) == shard_names.end())
                shard_names.push_back(f);
        }
        std::sort(shard_names.begin(), shard_names.end());
    } else if (fs::exists(dir / "model.safetensors")) {
        shard_names.push_back("model.safetensors");
    } else {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir, ec))
            if (e.path().extension() == ".safetensors") shard_names.push_back(e.path().filename().string());
        if (ec) throw Error(model_dir + ": cannot read the folder: " + ec.message());
        std::sort(shard_names.begin(), shard_names.end());
    }
    if (shard_names.empty())
        throw FormatError(model_dir +
                          ": no *.safetensors weights (PyTorch .bin checkpoints are not supported; "
                          "save with safe_serialization=True)");

    HfCheckpoint c;
    for (const auto& name : shard_names)
        c.files_.push_back(safetensors::SafetensorsFile::open((dir / name).string()));
    for (size_t i = 0; i < c.files_.size(); ++i) {
        for (const auto& t : c.files_[i].tensors()) {
            const auto [it, inserted] = c.tensors_.emplace(t.name, std::make_pair(i, &t));
            if (!inserted)
                throw FormatError(c.files_[i].path() + ": tensor '" + t.name + "' is also in " +
                                  c.files_[it->second.first].path());
        }
    }
    for (const auto& [name, file] : weight_map) {
        const auto it = c.tensors_.find(name);
        if (it == c.tensors_.end() || fs::path(c.files_[it->second.first].path()).filename() != file)
            throw FormatError(index.string() + ": tensor '" + name + "' is not in " + file);
    }
    if (!weight_map.empty())
        for (const auto& [name, where] : c.tensors_)
            if (!weight_map.count(name))
                throw FormatError(c.files_[where.first].path() + ": tensor '" + name + "' is missing from " +
                                  index.string());
    return c;
}

const safetensors::Tensor* HfCheckpoint::find(std::string_view name) const {
    const auto it = tensors_.find(std::string(name));
    return it == tensors_.end() ? nullptr : it->second.second;
}

const std::string& HfCheckpoint::file_of(std::string_view name) const {
    static const std::string none = "<no file>";
    const auto it = tensors_.find(std::string(name));
    return it == tensors_.end() ? none : files_[it->second.first].path();
}

std::vector<std::string> HfCheckpoint::names() const {
    std::vector<std::string> v;
    for (const auto& [name, where] : tensors_) v.push_back(name);
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace kinfer::convert
