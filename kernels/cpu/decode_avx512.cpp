// The decode kernels (decode_kernels.inl) compiled for AVX512; this file alone is built with
// -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c (CMakeLists.txt), and only runs where
// detected_isa() allows it.
#include "kernels/cpu/decode_table.hpp"

#if defined(__x86_64__)
#include "kernels/cpu/decode_simd_avx512.hpp"
// after the vocabulary:
#include "kernels/cpu/decode_kernels.inl"

namespace kinfer::cpu {

const MatmulPath* decode_path_avx512(GgmlType type) {
    return path_for(type);
}
const MatmulPath* decode_path_int16_avx512(GgmlType type) {
    return int16_path_for(type);
}

}  // namespace kinfer::cpu
#endif
