// Dev helper for check_writer_llamacpp.sh (not part of the build): writes GGUF files with kinfer's
// GgufWriter for llama.cpp to read.
//   gguf_writer_check copy SRC.gguf DST.gguf   every metadata key of SRC copied with add_value (no tensors)
//   gguf_writer_check copy-reordered SRC DST   the same in reverse key order, alignment 64
//   gguf_writer_check tensors DST.gguf          an F32 [8, 4] tensor holding 100 + i, and a Q8_0 [64, 2] one
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gguf/gguf_file.hpp"
#include "gguf/gguf_writer.hpp"
#include "kernels/fp16.hpp"

using namespace kinfer;
using namespace kinfer::gguf;

namespace {

// With `reorder`, keys are written in reverse order and with alignment 64, so that the copy's bytes differ
// from the original's (a plain copy of a llama.cpp file is byte-identical).
void copy_metadata(const std::string& src_path, const std::string& dst_path, bool reorder) {
    const GgufFile src = GgufFile::open(src_path);
    GgufWriter w;
    if (reorder) {
        w.set_alignment(64);
        for (auto it = src.metadata().rbegin(); it != src.metadata().rend(); ++it)
            w.add_value(it->key, it->value);
    } else {
        for (const KeyValue& kv : src.metadata()) w.add_value(kv.key, kv.value);
    }
    w.open(dst_path);
    w.finish();
    std::printf("copied %zu keys from %s to %s\n", src.metadata().size(), src_path.c_str(), dst_path.c_str());
}

void write_tensors(const std::string& dst_path) {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_string("general.name", "kinfer writer check");
    w.add_u32("some.parameter.uint32", 0x12345678);
    const uint64_t ne_f32[] = {8, 4};
    const uint64_t ne_q8[] = {64, 2};
    w.add_tensor("tensor_f32", GgmlType::F32, ne_f32);
    w.add_tensor("tensor_q8_0", GgmlType::Q8_0, ne_q8);

    std::vector<float> f(32);
    for (size_t i = 0; i < f.size(); ++i) f[i] = 100.0f + float(i);
    // Q8_0 blocks: an fp16 scale then 32 int8 quants; 2 blocks per row, 2 rows.
    std::vector<uint8_t> q(w.tensor_bytes(1));
    for (size_t b = 0; b < 4; ++b) {
        const uint16_t d = fp32_to_fp16(0.5f * float(b + 1));
        std::memcpy(&q[b * 34], &d, 2);
        for (size_t j = 0; j < 32; ++j) q[b * 34 + 2 + j] = static_cast<uint8_t>(int8_t(int(j) - 16));
    }
    w.open(dst_path);
    w.write_tensor_data({reinterpret_cast<const uint8_t*>(f.data()), f.size() * sizeof(float)});
    w.write_tensor_data(q);
    w.finish();

    const GgufFile check = GgufFile::open(dst_path);
    for (const TensorView& t : check.tensors())
        std::printf("kinfer: tensor %s type %s bytes %llu offset %llu\n", std::string(t.name).c_str(),
                    t.type->name, (unsigned long long)t.n_bytes, (unsigned long long)t.offset);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc == 4 && std::strcmp(argv[1], "copy") == 0)
            copy_metadata(argv[2], argv[3], false);
        else if (argc == 4 && std::strcmp(argv[1], "copy-reordered") == 0)
            copy_metadata(argv[2], argv[3], true);
        else if (argc == 3 && std::strcmp(argv[1], "tensors") == 0)
            write_tensors(argv[2]);
        else {
            std::fprintf(stderr, "usage: gguf_writer_check copy|copy-reordered SRC DST | tensors DST\n");
            return 2;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gguf_writer_check: %s\n", e.what());
        return 1;
    }
    return 0;
}
