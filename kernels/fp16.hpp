#pragma once
// IEEE half and bfloat16 <-> float conversions, exact and branch-light (no hardware intrinsics needed).
#include <bit>
#include <cstdint>

namespace kinfer {

inline float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);  // inf / nan (payload kept)
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        // subnormal half: value = mant * 2^-24, exact in float
        const float v = static_cast<float>(mant) * 0x1p-24f;
        bits = sign | std::bit_cast<uint32_t>(v);
    }
    return std::bit_cast<float>(bits);
}

// Round-to-nearest-even, overflow to inf, NaN stays NaN.
inline uint16_t fp32_to_fp16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (abs < 0x38800000u) {
        // result is subnormal or zero: scale so that the half ulp (2^-24) becomes 1.0, then round
        const float a = std::bit_cast<float>(abs);
        const float scaled = a * 0x1p24f;  // exact
        // nearest-even rounding of a float to integer via the 2^23 trick
        const float r = (scaled + 0x1p23f) - 0x1p23f;
        return static_cast<uint16_t>(sign | static_cast<uint32_t>(r));
    }
    const uint32_t mant_rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return static_cast<uint16_t>(sign | ((mant_rounded - (112u << 23)) >> 13));
}

inline float bf16_to_fp32(uint16_t h) {
    return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

// Round-to-nearest-even; NaN is kept quiet (as ggml does).
inline uint16_t fp32_to_bf16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 64);
    return static_cast<uint16_t>((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}

}  // namespace kinfer
