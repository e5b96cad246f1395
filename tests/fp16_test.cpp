// kernels/fp16.hpp: float <-> IEEE half / bfloat16. Every quantizer stores its scales through
// fp32_to_fp16, and F16 / BF16 models are written with these, so they are checked exhaustively against an
// independent oracle: the nearest representable value found by search, compared in double (exact for all
// three formats), ties to the even code.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/fp16.hpp"

using namespace kinfer;

namespace {

// Value of a non-negative, finite half code, computed from the definition (not with fp16_to_fp32).
double half_value(uint16_t h) {
    const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    return exp == 0 ? std::ldexp(double(mant), -24) : std::ldexp(double(1024 + mant), exp - 25);
}

// The correctly rounded half code of a finite float (round to nearest, ties to even, overflow to inf).
uint16_t oracle_fp16(float f) {
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double a = std::fabs(double(f));
    // Largest code whose value is <= a (codes of non-negative halves are ordered like their values).
    uint16_t lo = 0, hi = 0x7bff;
    if (a >= half_value(0x7bff)) {
        lo = 0x7bff;
    } else {
        while (lo < hi) {
            const uint16_t mid = static_cast<uint16_t>((lo + hi + 1) / 2);
            if (half_value(mid) <= a)
                lo = mid;
            else
                hi = static_cast<uint16_t>(mid - 1);
        }
    }
    // The next code up; above 65504 it is inf, which lies one half-ulp step (2^5) past 65504 + 16 = 65520.
    const double up = lo == 0x7bff ? 65536.0 : half_value(static_cast<uint16_t>(lo + 1));
    const double dlo = a - half_value(lo), dup = up - a;
    uint16_t code = lo;
    if (dup < dlo || (dup == dlo && (lo & 1))) code = static_cast<uint16_t>(lo + 1);
    return static_cast<uint16_t>(sign | code);  // lo + 1 == 0x7c00 is inf
}

// The correctly rounded bfloat16 code of a finite float.
uint16_t oracle_bf16(float f) {
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
    const uint32_t abs = bits & 0x7fffffffu;
    const uint16_t lo = static_cast<uint16_t>(abs >> 16);  // truncation: the bf16 at or below |f|
    const double a = double(std::bit_cast<float>(abs));
    const double vlo = double(std::bit_cast<float>(uint32_t(lo) << 16));
    const double vup =
        lo == 0x7f7f ? std::ldexp(1.0, 128) : double(std::bit_cast<float>(uint32_t(lo + 1) << 16));
    const double dlo = a - vlo, dup = vup - a;
    uint16_t code = lo;
    if (dup < dlo || (dup == dlo && (lo & 1))) code = static_cast<uint16_t>(lo + 1);
    return static_cast<uint16_t>(sign | code);
}

// Floats around every representable value of a 16-bit format: the value, the midpoints to its neighbours,
// and the floats just either side of those midpoints (where rounding decisions flip).
std::vector<float> probe_points(double (*value)(uint16_t), uint16_t last) {
    std::vector<float> pts;
    for (uint32_t c = 0; c <= last; ++c) {
        const double v = value(static_cast<uint16_t>(c));
        const double next = c == last ? 2 * v - value(static_cast<uint16_t>(c - 1)) : value(uint16_t(c + 1));
        const float mid = static_cast<float>((v + next) / 2);  // exact: the formats have < 24 bits
        for (float x :
             {static_cast<float>(v), mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
            pts.push_back(x);
            pts.push_back(-x);
        }
    }
    return pts;
}

double bf16_value(uint16_t h) {
    return double(std::bit_cast<float>(uint32_t(h) << 16));
}

}  // namespace

TEST_CASE("fp16: every half converts to float exactly and back to itself") {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const uint16_t code = static_cast<uint16_t>(h);
        const float f = fp16_to_fp32(code);
        if ((code & 0x7c00) == 0x7c00 && (code & 0x3ff)) {
            REQUIRE(std::isnan(f));
            CHECK(std::signbit(f) == bool(code & 0x8000));
            CHECK(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
            continue;
        }
        const double want = (code & 0x7c00) == 0x7c00 ? INFINITY : half_value(code & 0x7fff);
        REQUIRE(std::fabs(double(f)) == want);
        REQUIRE(std::signbit(f) == bool(code & 0x8000));
        REQUIRE(fp32_to_fp16(f) == code);
    }
}

TEST_CASE("fp16: float to half rounds to nearest even, overflows to inf, at every rounding boundary") {
    size_t checked = 0;
    for (float x : probe_points(half_value, 0x7bff)) {
        INFO("x = " << x);
        REQUIRE(fp32_to_fp16(x) == oracle_fp16(x));
        ++checked;
    }
    // Random floats over the whole range that matters (subnormal halves to past the overflow point), and
    // a few far beyond it.
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> log2_mag(-30.0, 17.0);
    for (int i = 0; i < 200000; ++i) {
        const float x = static_cast<float>(std::exp2(log2_mag(rng)) * (rng() & 1 ? -1 : 1));
        INFO("x = " << x);
        REQUIRE(fp32_to_fp16(x) == oracle_fp16(x));
        ++checked;
    }
    for (float x : {65519.996f, 65520.0f, 1e10f, std::numeric_limits<float>::max(), INFINITY, 1e-30f,
                    std::numeric_limits<float>::denorm_min(), 0.0f})
        for (float s : {x, -x})
            CHECK(fp32_to_fp16(s) == oracle_fp16(std::isinf(s) ? std::copysign(1e30f, s) : s));
    CHECK(fp32_to_fp16(65519.996f) == 0x7bff);
    CHECK(fp32_to_fp16(65520.0f) == 0x7c00);
    CHECK(fp32_to_fp16(-0.0f) == 0x8000);
    CHECK(std::isnan(fp16_to_fp32(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()))));
    CHECK(checked == 8 * 0x7c00 + 200000);  // both loops ran in full
}

TEST_CASE("bf16: float to bfloat16 rounds to nearest even at every rounding boundary; NaN stays NaN") {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const uint16_t code = static_cast<uint16_t>(h);
        const float f = bf16_to_fp32(code);
        REQUIRE(std::bit_cast<uint32_t>(f) == uint32_t(code) << 16);
        if (std::isnan(f))
            CHECK(std::isnan(bf16_to_fp32(fp32_to_bf16(f))));
        else
            REQUIRE(fp32_to_bf16(f) == code);
    }
    for (float x : probe_points(bf16_value, 0x7f7f)) {
        INFO("x = " << x);
        REQUIRE(fp32_to_bf16(x) == oracle_bf16(x));
    }
    std::mt19937 rng(7);
    for (int i = 0; i < 200000; ++i) {
        const float x = std::bit_cast<float>(static_cast<uint32_t>(rng()));
        if (!std::isfinite(x)) continue;
        INFO("x = " << x);
        REQUIRE(fp32_to_bf16(x) == oracle_bf16(x));
    }
    CHECK(fp32_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);  // rounds up to inf, as ggml does
    // A signalling NaN whose payload sits in the low bits must not turn into inf.
    CHECK(std::isnan(bf16_to_fp32(fp32_to_bf16(std::bit_cast<float>(0x7f800001u)))));
    CHECK(std::isnan(bf16_to_fp32(fp32_to_bf16(std::bit_cast<float>(0xff800001u)))));
}
