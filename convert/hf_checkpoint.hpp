#pragma once
// The weights of a Hugging Face model folder: model.safetensors, or the shards model.safetensors.index.json
// names (any other *.safetensors files when there is neither). Every tensor is found by its name whatever
// shard it is in; a name in two shards, or one the index names but its shard lacks, is a FormatError.
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "safetensors/safetensors_file.hpp"

namespace kinfer::convert {

class HfCheckpoint {
  public:
    static HfCheckpoint open(const std::string& model_dir);

    const safetensors::Tensor* find(std::string_view name) const;
    // The file a tensor is in, for messages.
    const std::string& file_of(std::string_view name) const;
    // Every tensor name, sorted.
    std::vector<std::string> names() const;
    const std::vector<safetensors::SafetensorsFile>& files() const { return files_; }

  private:
    std::vector<safetensors::SafetensorsFile> files_;
    std::unordered_map<std::string, std::pair<size_t, const safetensors::Tensor*>> tensors_;
};

}  // namespace kinfer::convert
