#include "kernels/reference/type_kernels.hpp"

#include "kernels/reference/float_rows.hpp"
#include "kernels/reference/quant_rows.hpp"

namespace kinfer::ref {
namespace {

struct Entry {
    GgmlType type;
    DequantizeRowFn dequantize;
    QuantizeRowFn quantize;
};

constexpr Entry kKernels[] = {
    {GgmlType::F32, dequantize_row_f32, quantize_row_f32},
    {GgmlType::F16, dequantize_row_f16, quantize_row_f16},
    {GgmlType::BF16, dequantize_row_bf16, quantize_row_bf16},
    {GgmlType::Q4_0, dequantize_row_q4_0, quantize_row_q4_0},
    {GgmlType::Q4_1, dequantize_row_q4_1, quantize_row_q4_1},
    {GgmlType::Q5_0, dequantize_row_q5_0, quantize_row_q5_0},
    {GgmlType::Q5_1, dequantize_row_q5_1, quantize_row_q5_1},
    {GgmlType::Q8_0, dequantize_row_q8_0, quantize_row_q8_0},
    {GgmlType::Q2_K, dequantize_row_q2_k, quantize_row_q2_k},
    {GgmlType::Q3_K, dequantize_row_q3_k, quantize_row_q3_k},
    {GgmlType::Q4_K, dequantize_row_q4_k, quantize_row_q4_k},
    {GgmlType::Q5_K, dequantize_row_q5_k, quantize_row_q5_k},
    {GgmlType::Q6_K, dequantize_row_q6_k, quantize_row_q6_k},
    {GgmlType::Q8_K, dequantize_row_q8_k, quantize_row_q8_k},
};

const Entry* find(GgmlType type) {
    for (const Entry& e : kKernels)
        if (e.type == type) return &e;
    return nullptr;
}

}  // namespace

DequantizeRowFn dequantize_fn(GgmlType type) {
    const Entry* e = find(type);
    return e ? e->dequantize : nullptr;
}

QuantizeRowFn quantize_fn(GgmlType type) {
    const Entry* e = find(type);
    return e ? e->quantize : nullptr;
}

}  // namespace kinfer::ref
