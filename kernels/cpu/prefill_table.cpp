#include "kernels/cpu/prefill_table.hpp"

namespace kinfer::cpu {

const MatmulPath* prefill_path(GgmlType type, Isa isa) {
    switch (isa) {
        case Isa::Avx512:
            return prefill::prefill_path_avx512(type);
        case Isa::Avx2:
            return prefill::prefill_path_avx2(type);
        case Isa::Portable:
            return nullptr;
    }
    return nullptr;
}

}  // namespace kinfer::cpu
