#pragma once
// Deterministic test data for the quantizer tests. The generator uses only integer ops and exactly rounded
// IEEE double operations (+, -, exact products, /, sqrt, and an explicit fma where a multiply feeds an add,
// so compiler contraction cannot change it): it gives the same floats on every machine. The dev program
// scripts/dev/llamacpp_quant_rmse.c repeats it bit for bit to measure llama.cpp on the same data.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace quant_test {

constexpr int64_t kRows = 16;
constexpr int64_t kRowLen = 4096;

inline uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

inline double uniform01(uint64_t& state) {
    return static_cast<double>(splitmix64(state) >> 11) * 0x1p-53;
}

// Approximately standard normal: Irwin-Hall sum of 12 uniforms (mean 6, variance 1), no libm needed.
inline double normal(uint64_t& state) {
    double s = 0;
    for (int k = 0; k < 12; ++k) s += uniform01(state);
    return s - 6.0;
}

inline std::vector<float> gaussian(int64_t n, uint64_t seed) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = static_cast<float>(normal(seed));
    return x;
}

// Heavy-tailed: Student-t with 3 degrees of freedom, z / sqrt(chi2_3 / 3).
inline std::vector<float> student_t3(int64_t n, uint64_t seed) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) {
        const double z = normal(seed);
        double c = 0;
        for (int k = 0; k < 3; ++k) {
            const double g = normal(seed);
            c = std::fma(g, g, c);  // explicit: the result must not depend on the compiler's contraction
        }
        if (c < 1e-300) c = 1e-300;
        v = static_cast<float>(z / std::sqrt(c / 3.0));
    }
    return x;
}

// FNV-1a over the little-endian bytes of the floats, as 16 hex digits.
inline std::string hash_hex(const std::vector<float>& x) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (float v : x) {
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        for (int k = 0; k < 4; ++k) {
            h ^= (bits >> (8 * k)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

inline double rmse(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        s += d * d;
    }
    return std::sqrt(s / static_cast<double>(a.size()));
}

}  // namespace quant_test
