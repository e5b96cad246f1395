// Picks the decode kernels of a weight type for an instruction-set level (see decode_table.hpp).
#include "kernels/cpu/decode_table.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

namespace kinfer::cpu {

bool float_decode_forced() {
    static const bool forced = [] {
        const char* env = std::getenv("KINFER_CPU_DECODE");
        return env && std::strcmp(env, "float") == 0;
    }();
    return forced;
}

bool gfni_enabled() {
#if defined(__x86_64__)
    static const bool on = [] {
        const char* env = std::getenv("KINFER_GFNI");
        __builtin_cpu_init();
        return !(env && env[0] == '0') && __builtin_cpu_supports("gfni");
    }();
    return on;
#else
    return false;
#endif
}

std::string decode_path_name(Isa isa) {
    return std::string(isa_name(isa)) + (isa >= Isa::Avx512 && gfni_enabled() ? "+gfni" : "");
}

const MatmulPath* decode_path(GgmlType type, Isa isa) {
    if (!float_decode_forced())
        if (const MatmulPath* p = decode_path_i8x2(type, isa)) return p;
    return decode_path_float(type, isa);
}

const MatmulPath* decode_path_i8x2(GgmlType type, Isa isa) {
#if defined(__x86_64__)
    if (isa >= Isa::Avx512) {
        if (const MatmulPath* p = decode_path_i8x2p_avx512(type, gfni_enabled())) return p;
        if (const MatmulPath* p = decode_path_i8x2b_avx512(type, gfni_enabled())) return p;
        return decode_path_i8x2_avx512(type);
    }
    if (isa >= Isa::Avx2) return decode_path_i8x2p_avx2(type);
#else
    (void)type;
    (void)isa;
#endif
    return nullptr;
}

const MatmulPath* decode_path_float(GgmlType type, Isa isa) {
#if defined(__x86_64__)
    if (isa >= Isa::Avx512)
        if (const MatmulPath* p = decode_path_avx512(type)) return p;
    if (isa >= Isa::Avx2)
        if (const MatmulPath* p = decode_path_avx2(type)) return p;
#else
    (void)type;
    (void)isa;
#endif
    return nullptr;
}

const MatmulPath* decode_path_int16(GgmlType type, Isa isa) {
#if defined(__x86_64__)
    if (isa >= Isa::Avx512)
        if (const MatmulPath* p = decode_path_int16_avx512(type)) return p;
    if (isa >= Isa::Avx2)
        if (const MatmulPath* p = decode_path_int16_avx2(type)) return p;
#else
    (void)type;
    (void)isa;
#endif
    return nullptr;
}

}  // namespace kinfer::cpu
