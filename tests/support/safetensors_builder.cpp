#include "tests/support/safetensors_builder.hpp"

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "kernels/fp16.hpp"

namespace kinfer::test {

StTensor st_tensor(std::string name, std::string dtype, std::vector<uint64_t> shape,
                   const std::vector<float>& values) {
    StTensor t{std::move(name), dtype, std::move(shape), {}};
    for (float v : values) {
        if (dtype == "F32") {
            uint8_t b[4];
            std::memcpy(b, &v, 4);
            t.bytes.insert(t.bytes.end(), b, b + 4);
        } else {
            const uint16_t h = dtype == "F16" ? fp32_to_fp16(v) : fp32_to_bf16(v);
            t.bytes.push_back(uint8_t(h & 0xff));
            t.bytes.push_back(uint8_t(h >> 8));
        }
    }
    return t;
}

std::vector<uint8_t> safetensors_raw(const std::string& header, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> out(8);
    const uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

std::vector<uint8_t> safetensors_bytes(const std::vector<StTensor>& tensors) {
    std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
    std::vector<uint8_t> data;
    for (const auto& t : tensors) {
        header += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
        for (size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
        header += "],\"data_offsets\":[" + std::to_string(data.size()) + "," +
                  std::to_string(data.size() + t.bytes.size()) + "]}";
        data.insert(data.end(), t.bytes.begin(), t.bytes.end());
    }
    header += "}";
    while ((8 + header.size()) % 8) header += ' ';
    return safetensors_raw(header, data);
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!f) throw std::runtime_error("cannot write " + path);
}

void write_file(const std::string& path, const std::string& text) {
    write_file(path, std::vector<uint8_t>(text.begin(), text.end()));
}

}  // namespace kinfer::test
