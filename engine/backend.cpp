#include "engine/backend.hpp"

#include <unistd.h>

#include <string>

#include "engine/cpu_backend.hpp"
#include "engine/cuda_backend.hpp"
#include "engine/model.hpp"
#include "kinfer/error.hpp"

namespace kinfer::engine {
namespace {

std::string gib(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(1ull << 30));
    return buf;
}

uint64_t physical_memory() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
}

}  // namespace

std::unique_ptr<Backend> create_backend(const Model& model, const LoadProgress& progress) {
    const uint64_t need = model.weight_bytes();
    switch (model.device()) {
        case Device::Cpu: {
            // The weights stay in the mapping, paged in on use: a model larger than memory would "load" and
            // then thrash the disk on every token. Say so at load instead.
            const uint64_t have = model.memory_limit() ? model.memory_limit() : physical_memory();
            if (have && need > have)
                throw Error(model.file().path() + ": the model's weights need " + gib(need) +
                            ", but the cpu has " + gib(have) + " of memory" +
                            (model.memory_limit() ? " (the memory limit given)" : ""));
            auto be = std::make_unique<CpuBackend>(model, cpu::active_isa());
            if (progress) progress("preparing cpu weights", 1.0);
            return be;
        }
        case Device::Cuda:
            return make_cuda_backend(model, progress);
    }
    throw Error("unknown device");
}

}  // namespace kinfer::engine
