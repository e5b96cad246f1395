// GGUF blocks -> the device records of kernels/cuda/repacked.hpp. Each packer first reads a record's codes
// (unsigned, one per element) and scales out of the GGUF blocks with the formulas of the scalar reference,
// then writes them in the device layout, so the two layouts meet only in these few lines per type.
#include "kernels/cuda/repack.hpp"

#include <cstring>
#include <vector>

#include "kernels/blocks.hpp"
#include "kernels/cuda/repacked.hpp"
#include "kinfer/error.hpp"

namespace kinfer::cuda {
namespace {

using namespace repacked;

// ---- writing the bit planes
// --------------------------------------------------------------------------------

// 16 bytes: byte i = code[i] | code[16 + i] << 4 (codes' low nibbles).
void put_nibbles(const uint8_t* codes, uint8_t* dst) {
    for (int i = 0; i < 16; ++i) dst[i] = static_cast<uint8_t>((codes[i] & 15) | (codes[16 + i] & 15) << 4);
}
// 32 bits: bit 8m + 2k + h = bit `bit` of the code of element 16h + 4k + m.
void put_extra_bits(const uint8_t* codes, int bit, uint8_t* dst) {
    uint32_t w = 0;
    for (int e = 0; e < 32; ++e) {
        const int h = e / 16, k = (e % 16) / 4, m = e % 4;
        w |= static_cast<uint32_t>((codes[e] >> bit) & 1) << (8 * m + 2 * k + h);
    }
    std::memcpy(dst, &w, 4);
}
// 8 bytes, word h: bits 8m + 2k .. +1 = bits `bit`, bit+1 of the code of element 16h + 4k + m.
void put_two_bits(const uint8_t* codes, int bit, uint8_t* dst) {
    for (int h = 0; h < 2; ++h) {
        uint32_t w = 0;
        for (int i = 0; i < 16; ++i) {
            const int k = i / 4, m = i % 4;
            w |= static_cast<uint32_t>((codes[16 * h + i] >> bit) & 3) << (8 * m + 2 * k);
        }
        std::memcpy(dst + 4 * h, &w, 4);
    }
}
void put_u16(uint8_t* dst, uint16_t v) {
    std::memcpy(dst, &v, 2);
}

// ---- per type: one record (256 elements) from its GGUF blocks ---------------------------------------------
// `n_blocks` is how many source blocks the record holds (fewer than 8 for the last record of a row of a
// 32-element type); the record was zero-filled.

void pack_q4_0(const uint8_t* src, int n_blocks, uint8_t* rec, uint8_t*) {
    for (int j = 0; j < n_blocks; ++j) {
        BlockQ4_0 b;
        std::memcpy(&b, src + j * sizeof b, sizeof b);
        put_u16(rec + 2 * j, b.d);
        std::memcpy(rec + 16 + 16 * j, b.qs, 16);
    }
}

void pack_q4_1(const uint8_t* src, int n_blocks, uint8_t* rec, uint8_t*) {
    for (int j = 0; j < n_blocks; ++j) {
        BlockQ4_1 b;
        std::memcpy(&b, src + j * sizeof b, sizeof b);
        put_u16(rec + 2 * j, b.d);
        put_u16(rec + 16 + 2 * j, b.m);
        std::memcpy(rec + 32 + 16 * j, b.qs, 16);
    }
}

// Codes of a Q5_0/Q5_1 block: low nibble | bit j of qh << 4.
void q5_codes(const uint8_t* qs, const uint8_t* qh_bytes, uint8_t codes[32]) {
    uint32_t qh;
    std::memcpy(&qh, qh_bytes, 4);
    for (int i = 0; i < 16; ++i) {
        codes[i] = static_cast<uint8_t>((qs[i] & 15) | ((qh >> i) & 1) << 4);
        codes[16 + i] = static_cast<uint8_t>((qs[i] >> 4) | ((qh >> (16 + i)) & 1) << 4);
    }
}

void pack_q5_0(const uint8_t* src, int n_blocks, uint8_t* rec, uint8_t*) {
    for (int j = 0; j < n_blocks; ++j) {
        BlockQ5_0 b;
        std::memcpy(&b, src + j * sizeof b, sizeof b);
        uint8_t codes[32];
        q5_codes(b.qs, b.qh, codes);
        put_u16(rec + 2 * j, b.d);
        put_extra_bits(codes, 4, rec + 16 + 4 * j);
        put_nibbles(codes, rec + 48 + 16 * j);
    }
}

void pack_q5_1(const uint8_t* src, int n_blocks, uint8_t* rec, uint8_t*) {
    for (int j = 0; j < n_blocks; ++j) {
        BlockQ5_1 b;
        std::memcpy(&b, src + j * sizeof b, sizeof b);
        uint8_t codes[32];
        q5_codes(b.qs, b.qh, codes);
        put_u16(rec + 2 * j, b.d);
        put_u16(rec + 16 + 2 * j, b.m);
        put_extra_bits(codes, 4, rec + 32 + 4 * j);
        put_nibbles(codes, rec + 64 + 16 * j);
    }
}

void pack_q8_0(const uint8_t* src, int n_blocks, uint8_t* rec, uint8_t*) {
    for (int j = 0; j < n_blocks; ++j) {
        BlockQ8_0 b;
        std::memcpy(&b, src + j * sizeof b, sizeof b);
        put_u16(rec + 2 * j, b.d);
        for (int i = 0; i < 32; ++i) rec[16 + 32 * j + i] = static_cast<uint8_t>(b.qs[i] + 128);
    }
}

// Q2_K / Q3_K low 2 bits of element e: byte 32 * (e / 128) + e % 32 of qs, bits 2 * ((e % 128) / 32).
int kquant_low2(const uint8_t* qs, int e) {
    return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

void pack_q2_k(const uint8_t* src, int, uint8_t* rec, uint8_t* tail) {
    BlockQ2_K b;
    std::memcpy(&b, src, sizeof b);
    uint8_t codes[256];
    for (int e = 0; e < 256; ++e) codes[e] = static_cast<uint8_t>(kquant_low2(b.qs, e));
    std::memcpy(rec, b.scales, 16);
    for (int j = 0; j < 8; ++j) put_two_bits(codes + 32 * j, 0, rec + 16 + 8 * j);
    put_u16(tail, b.d);
    put_u16(tail + 2, b.dmin);
}

void pack_q3_k(const uint8_t* src, int, uint8_t* rec, uint8_t*) {
    BlockQ3_K b;
    std::memcpy(&b, src, sizeof b);
    uint8_t codes[256];
    for (int e = 0; e < 256; ++e)
        codes[e] = static_cast<uint8_t>(kquant_low2(b.qs, e) | ((b.hmask[e % 32] >> (e / 32)) & 1) << 2);
    uint32_t hi = 0;
    for (int g = 0; g < 16; ++g) {
        const int code = unpack_scale_q3_k(g, b.scales) + 32;  // 0..63
        rec[g / 2] = static_cast<uint8_t>(rec[g / 2] | (code & 15) << (4 * (g % 2)));
        hi |= static_cast<uint32_t>(code >> 4) << (2 * g);
    }
    std::memcpy(rec + 8, &hi, 4);
    put_u16(rec + 12, b.d);
    for (int j = 0; j < 8; ++j) {
        put_two_bits(codes + 32 * j, 0, rec + 16 + 8 * j);
        put_extra_bits(codes + 32 * j, 2, rec + 80 + 4 * j);
    }
}

// Q4_K / Q5_K meta: d, dmin, then byte 4 + j = scale j (6 bits) | top 2 bits of min j << 6, and min j's
// low nibble at bits 4j of the last word (the layout kquant_scale_min decodes in a few instructions).
void put_kquant_meta(uint16_t d, uint16_t dmin, const uint8_t* scales, uint8_t* rec) {
    put_u16(rec, d);
    put_u16(rec + 2, dmin);
    uint32_t low_mins = 0;
    for (int j = 0; j < 8; ++j) {
        uint8_t sc = 0, mn = 0;
        unpack_scale_min_k4(j, scales, sc, mn);
        rec[4 + j] = static_cast<uint8_t>(sc | (mn >> 4) << 6);
        low_mins |= static_cast<uint32_t>(mn & 15) << (4 * j);
    }
    std::memcpy(rec + 12, &low_mins, 4);
}

// Q4_K / Q5_K low nibble of element e: byte 32 * (e / 64) + e % 32, high nibble when (e / 32) is odd.
int kquant_nibble(const uint8_t* qs, int e) {
    return (qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 15;
}

void pack_q4_k(const uint8_t* src, int, uint8_t* rec, uint8_t*) {
    BlockQ4_K b;
    std::memcpy(&b, src, sizeof b);
    uint8_t codes[256];
    for (int e = 0; e < 256; ++e) codes[e] = static_cast<uint8_t>(kquant_nibble(b.qs, e));
    put_kquant_meta(b.d, b.dmin, b.scales, rec);
    for (int j = 0; j < 8; ++j) put_nibbles(codes + 32 * j, rec + 16 + 16 * j);
}

void pack_q5_k(const uint8_t* src, int, uint8_t* rec, uint8_t*) {
    BlockQ5_K b;
    std::memcpy(&b, src, sizeof b);
    uint8_t codes[256];
    for (int e = 0; e < 256; ++e)
        codes[e] = static_cast<uint8_t>(kquant_nibble(b.qs, e) | ((b.qh[e % 32] >> (e / 32)) & 1) << 4);
    put_kquant_meta(b.d, b.dmin, b.scales, rec);
    for (int j = 0; j < 8; ++j) {
        put_extra_bits(codes + 32 * j, 4, rec + 16 + 4 * j);
        put_nibbles(codes + 32 * j, rec + 48 + 16 * j);
    }
}

void pack_q6_k(const uint8_t* src, int, uint8_t* rec, uint8_t* tail) {
    BlockQ6_K b;
    std::memcpy(&b, src, sizeof b);
    uint8_t codes[256];
    for (int e = 0; e < 256; ++e) {
        const int half = e / 128, s = (e % 128) / 32, l = e % 32;
        const int low = (b.ql[64 * half + 32 * (s & 1) + l] >> (4 * (s >> 1))) & 15;
        const int high = (b.qh[32 * half + l] >> (2 * s)) & 3;
        codes[e] = static_cast<uint8_t>(low | high << 4);
    }
    std::memcpy(rec, b.scales, 16);
    for (int j = 0; j < 8; ++j) {
        put_nibbles(codes + 32 * j, rec + 16 + 16 * j);
        put_two_bits(codes + 32 * j, 4, rec + 144 + 8 * j);
    }
    put_u16(tail, b.d);
}

using PackFn = void (*)(const uint8_t* src, int n_blocks, uint8_t* rec, uint8_t* tail);

struct Packer {
    PackFn pack = nullptr;  // null: float type, copied element by element
    int record = 0, tail = 0;
};

Packer packer(GgmlType type) {
    Packer p;
    with_layout(type, [&](auto layout) {
        using L = decltype(layout);
        p.record = L::kRecord;
        p.tail = L::kTail;
    });
    switch (type) {
        case GgmlType::Q4_0:
            p.pack = pack_q4_0;
            break;
        case GgmlType::Q4_1:
            p.pack = pack_q4_1;
            break;
        case GgmlType::Q5_0:
            p.pack = pack_q5_0;
            break;
        case GgmlType::Q5_1:
            p.pack = pack_q5_1;
            break;
        case GgmlType::Q8_0:
            p.pack = pack_q8_0;
            break;
        case GgmlType::Q2_K:
            p.pack = pack_q2_k;
            break;
        case GgmlType::Q3_K:
            p.pack = pack_q3_k;
            break;
        case GgmlType::Q4_K:
            p.pack = pack_q4_k;
            break;
        case GgmlType::Q5_K:
            p.pack = pack_q5_k;
            break;
        case GgmlType::Q6_K:
            p.pack = pack_q6_k;
            break;
        default:
            break;
    }
    return p;
}

}  // namespace

bool has_device_layout(GgmlType type) {
    return with_layout(type, [](auto) {});
}

uint64_t repacked_row_bytes(const TypeTraits& type, int64_t cols, const std::string& what) {
    if (!has_device_layout(type.type))
        throw UsageError(what + ": tensor type " + type.name + " is not supported by the CUDA backend");
    if (cols <= 0 || cols % 32 != 0 || cols % type.block_elems != 0)
        throw UsageError(what + ": rows of " + std::to_string(cols) + " " + type.name +
                         " elements; the CUDA backend needs a multiple of 32 (and of the block size)");
    const Packer p = packer(type.type);
    const int64_t n_records = (cols + kRecordElems - 1) / kRecordElems;
    return static_cast<uint64_t>((n_records * (p.record + p.tail) + 15) / 16 * 16);
}

void repack_rows(const TypeTraits& type, const void* src, int64_t n_rows, int64_t cols, void* dst,
                 const std::string& what) {
    const uint64_t out_row = repacked_row_bytes(type, cols, what);
    const uint64_t in_row = row_bytes(type, static_cast<uint64_t>(cols));
    const Packer p = packer(type.type);
    const int64_t n_records = (cols + kRecordElems - 1) / kRecordElems;
    const int64_t blocks_per_record = kRecordElems / type.block_elems;
    const int64_t n_blocks = cols / type.block_elems;
    const auto* in = static_cast<const uint8_t*>(src);
    auto* out = static_cast<uint8_t*>(dst);
#pragma omp parallel for schedule(static) if (n_rows * cols >= (int64_t(1) << 20))
    for (int64_t r = 0; r < n_rows; ++r) {
        const uint8_t* row_in = in + static_cast<uint64_t>(r) * in_row;
        uint8_t* row_out = out + static_cast<uint64_t>(r) * out_row;
        std::memset(row_out, 0, out_row);
        if (p.pack == nullptr) {  // float types: the record is the values, in order
            std::memcpy(row_out, row_in, in_row);
            continue;
        }
        for (int64_t rec = 0; rec < n_records; ++rec) {
            const int64_t first = rec * blocks_per_record;
            const int64_t count = n_blocks - first < blocks_per_record ? n_blocks - first : blocks_per_record;
            p.pack(row_in + first * type.block_bytes, static_cast<int>(count), row_out + rec * p.record,
                   row_out + n_records * p.record + rec * p.tail);
        }
    }
}

void dequantize_repacked_row(GgmlType type, const void* row, int64_t cols, float* out) {
    const int64_t n_groups = cols / kGroupElems;
    const int64_t n_records = (cols + kRecordElems - 1) / kRecordElems;
    with_layout(type, [&](auto layout) {
        using L = decltype(layout);
        typename L::G grp;
        for (int64_t g = 0; g < n_groups; ++g) {
            L::load(static_cast<const uint8_t*>(row), static_cast<int>(n_records), static_cast<int>(g), grp);
            for (int h = 0; h < 2; ++h) {
                float v[16];
                L::values(grp, h, v);
                for (int i = 0; i < 16; ++i) out[g * 32 + 16 * h + i] = grp.a[h] * v[i] + grp.b[h];
            }
        }
    });
}

}  // namespace kinfer::cuda
