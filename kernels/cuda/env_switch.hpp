#pragma once
// Switches of the CUDA paths read from the environment, for side-by-side comparisons on the device
// (KINFER_PDL, KINFER_FUSED_*, KINFER_MATVEC_*, ...). Callers keep the value in a function-local static, so
// each is read once.
#include <cstdlib>

namespace kinfer::cuda {

// On unless the variable starts with '0'.
inline bool env_on(const char* name) {
    const char* e = std::getenv(name);
    return !(e && e[0] == '0');
}

// The variable as an integer, `fallback` when unset.
inline int env_int(const char* name, int fallback) {
    const char* e = std::getenv(name);
    return e ? std::atoi(e) : fallback;
}

}  // namespace kinfer::cuda
