#include "kernels/quant_types.hpp"

#include <array>
#include <cctype>

#include "kernels/reference/float_rows.hpp"
#include "kernels/reference/quant_rows.hpp"

namespace kinfer {
namespace {

constexpr uint32_t QK_K = 256;

// Function pointers come from kernels/reference; a null entry means "known id, not supported".
const std::array kTypes = {
    TypeTraits{GgmlType::F32, "f32", 1, 4, ref::dequantize_row_f32, ref::quantize_row_f32},
    TypeTraits{GgmlType::F16, "f16", 1, 2, ref::dequantize_row_f16, ref::quantize_row_f16},
    TypeTraits{GgmlType::Q4_0, "q4_0", 32, 2 + 16, ref::dequantize_row_q4_0, ref::quantize_row_q4_0},
    TypeTraits{GgmlType::Q4_1, "q4_1", 32, 2 + 2 + 16, ref::dequantize_row_q4_1, ref::quantize_row_q4_1},
    TypeTraits{GgmlType::Q5_0, "q5_0", 32, 2 + 4 + 16, ref::dequantize_row_q5_0, ref::quantize_row_q5_0},
    TypeTraits{GgmlType::Q5_1, "q5_1", 32, 2 + 2 + 4 + 16, ref::dequantize_row_q5_1, ref::quantize_row_q5_1},
    TypeTraits{GgmlType::Q8_0, "q8_0", 32, 2 + 32, ref::dequantize_row_q8_0, ref::quantize_row_q8_0},
    TypeTraits{GgmlType::Q8_1, "q8_1", 32, 2 + 2 + 32, nullptr, nullptr},
    TypeTraits{GgmlType::Q2_K, "q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4, ref::dequantize_row_q2_k,
               ref::quantize_row_q2_k},
    TypeTraits{GgmlType::Q3_K, "q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12, ref::dequantize_row_q3_k,
               ref::quantize_row_q3_k},
    TypeTraits{GgmlType::Q4_K, "q4_K", QK_K, 2 + 2 + QK_K / 2 + 12, ref::dequantize_row_q4_k,
               ref::quantize_row_q4_k},
    TypeTraits{GgmlType::Q5_K, "q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12, ref::dequantize_row_q5_k,
               ref::quantize_row_q5_k},
    TypeTraits{GgmlType::Q6_K, "q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16, ref::dequantize_row_q6_k,
               ref::quantize_row_q6_k},
    TypeTraits{GgmlType::Q8_K, "q8_K", QK_K, 4 + QK_K + QK_K / 8, ref::dequantize_row_q8_k,
               ref::quantize_row_q8_k},
    TypeTraits{GgmlType::IQ2_XXS, "iq2_xxs", QK_K, 2 + QK_K / 4, nullptr, nullptr},
    TypeTraits{GgmlType::IQ2_XS, "iq2_xs", QK_K, 2 + QK_K / 4 + QK_K / 32, nullptr, nullptr},
    TypeTraits{GgmlType::IQ3_XXS, "iq3_xxs", QK_K, 2 + QK_K / 4 + QK_K / 8, nullptr, nullptr},
    TypeTraits{GgmlType::IQ1_S, "iq1_s", QK_K, 2 + QK_K / 8 + QK_K / 16, nullptr, nullptr},
    TypeTraits{GgmlType::IQ4_NL, "iq4_nl", 32, 2 + 16, nullptr, nullptr},
    TypeTraits{GgmlType::IQ3_S, "iq3_s", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4, nullptr, nullptr},
    TypeTraits{GgmlType::IQ2_S, "iq2_s", QK_K, 2 + QK_K / 4 + QK_K / 16, nullptr, nullptr},
    TypeTraits{GgmlType::IQ4_XS, "iq4_xs", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64, nullptr, nullptr},
    TypeTraits{GgmlType::I8, "i8", 1, 1, nullptr, nullptr},
    TypeTraits{GgmlType::I16, "i16", 1, 2, nullptr, nullptr},
    TypeTraits{GgmlType::I32, "i32", 1, 4, nullptr, nullptr},
    TypeTraits{GgmlType::I64, "i64", 1, 8, nullptr, nullptr},
    TypeTraits{GgmlType::F64, "f64", 1, 8, nullptr, nullptr},
    TypeTraits{GgmlType::IQ1_M, "iq1_m", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32, nullptr, nullptr},
    TypeTraits{GgmlType::BF16, "bf16", 1, 2, ref::dequantize_row_bf16, ref::quantize_row_bf16},
    TypeTraits{GgmlType::TQ1_0, "tq1_0", QK_K, 2 + 4 * 13, nullptr, nullptr},
    TypeTraits{GgmlType::TQ2_0, "tq2_0", QK_K, 2 + 64, nullptr, nullptr},
    TypeTraits{GgmlType::MXFP4, "mxfp4", 32, 1 + 16, nullptr, nullptr},
    TypeTraits{GgmlType::NVFP4, "nvfp4", 64, 4 + 32, nullptr, nullptr},
    TypeTraits{GgmlType::Q1_0, "q1_0", 128, 2 + 16, nullptr, nullptr},
    TypeTraits{GgmlType::Q2_0, "q2_0", 64, 2 + 16, nullptr, nullptr},
};

}  // namespace

const TypeTraits* find_type(uint32_t id) {
    for (const auto& t : kTypes)
        if (static_cast<uint32_t>(t.type) == id) return &t;
    return nullptr;
}

const TypeTraits& type_traits(GgmlType type) {
    return *find_type(static_cast<uint32_t>(type));
}

const TypeTraits* find_type_by_name(std::string_view name) {
    for (const auto& t : kTypes) {
        std::string_view n = t.name;
        if (n.size() != name.size()) continue;
        bool same = true;
        for (size_t i = 0; i < n.size() && same; ++i)
            same = std::tolower(static_cast<unsigned char>(n[i])) ==
                   std::tolower(static_cast<unsigned char>(name[i]));
        if (same) return &t;
    }
    return nullptr;
}

TypeTable all_types() {
    return {kTypes.data(), kTypes.data() + kTypes.size()};
}

}  // namespace kinfer
