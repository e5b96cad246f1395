#include "gguf/ggml_type.hpp"

#include <array>
#include <cctype>

namespace kinfer {
namespace {

constexpr uint32_t QK_K = 256;

const std::array kTypes = {
    TypeTraits{GgmlType::F32, "f32", 1, 4},
    TypeTraits{GgmlType::F16, "f16", 1, 2},
    TypeTraits{GgmlType::Q4_0, "q4_0", 32, 2 + 16},
    TypeTraits{GgmlType::Q4_1, "q4_1", 32, 2 + 2 + 16},
    TypeTraits{GgmlType::Q5_0, "q5_0", 32, 2 + 4 + 16},
    TypeTraits{GgmlType::Q5_1, "q5_1", 32, 2 + 2 + 4 + 16},
    TypeTraits{GgmlType::Q8_0, "q8_0", 32, 2 + 32},
    TypeTraits{GgmlType::Q8_1, "q8_1", 32, 2 + 2 + 32},
    TypeTraits{GgmlType::Q2_K, "q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4},
    TypeTraits{GgmlType::Q3_K, "q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12},
    TypeTraits{GgmlType::Q4_K, "q4_K", QK_K, 2 + 2 + QK_K / 2 + 12},
    TypeTraits{GgmlType::Q5_K, "q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12},
    TypeTraits{GgmlType::Q6_K, "q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16},
    TypeTraits{GgmlType::Q8_K, "q8_K", QK_K, 4 + QK_K + QK_K / 8},
    TypeTraits{GgmlType::IQ2_XXS, "iq2_xxs", QK_K, 2 + QK_K / 4},
    TypeTraits{GgmlType::IQ2_XS, "iq2_xs", QK_K, 2 + QK_K / 4 + QK_K / 32},
    TypeTraits{GgmlType::IQ3_XXS, "iq3_xxs", QK_K, 2 + QK_K / 4 + QK_K / 8},
    TypeTraits{GgmlType::IQ1_S, "iq1_s", QK_K, 2 + QK_K / 8 + QK_K / 16},
    TypeTraits{GgmlType::IQ4_NL, "iq4_nl", 32, 2 + 16},
    TypeTraits{GgmlType::IQ3_S, "iq3_s", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4},
    TypeTraits{GgmlType::IQ2_S, "iq2_s", QK_K, 2 + QK_K / 4 + QK_K / 16},
    TypeTraits{GgmlType::IQ4_XS, "iq4_xs", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64},
    TypeTraits{GgmlType::I8, "i8", 1, 1},
    TypeTraits{GgmlType::I16, "i16", 1, 2},
    TypeTraits{GgmlType::I32, "i32", 1, 4},
    TypeTraits{GgmlType::I64, "i64", 1, 8},
    TypeTraits{GgmlType::F64, "f64", 1, 8},
    TypeTraits{GgmlType::IQ1_M, "iq1_m", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32},
    TypeTraits{GgmlType::BF16, "bf16", 1, 2},
    TypeTraits{GgmlType::TQ1_0, "tq1_0", QK_K, 2 + 4 * 13},
    TypeTraits{GgmlType::TQ2_0, "tq2_0", QK_K, 2 + 64},
    TypeTraits{GgmlType::MXFP4, "mxfp4", 32, 1 + 16},
    TypeTraits{GgmlType::NVFP4, "nvfp4", 64, 4 + 32},
    TypeTraits{GgmlType::Q1_0, "q1_0", 128, 2 + 16},
    TypeTraits{GgmlType::Q2_0, "q2_0", 64, 2 + 16},
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
