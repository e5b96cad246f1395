// Dev-only: measures the RMSE of llama.cpp's imatrix-free reference quantizers (ggml's quantize_row_*_ref,
// what llama-quantize uses without --imatrix) on the test data of tests/quant_test_data.hpp, generated here
// bit for bit the same way. Prints tests/fixtures/quant/llamacpp_rmse.txt; with a path argument it also
// writes ggml's quantized bytes of the first kBytesValues values of each data set there
// (llamacpp_quantized.bin: b"KQQX", u32 version 1, u32 values per entry, u32 entries, then per entry u32 ggml
// type id, u32 data set (0 gaussian, 1 student_t3), u32 byte count, bytes). See make_quant_rmse_table.sh.
// Only calls ggml's public, exported functions; never built by kinfer's build or CI.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"

// Exported by libggml-base (declared in ggml's internal ggml-quants.h with typed block pointers).
#define DECLARE(t)                                                   \
    void quantize_row_##t##_ref(const float* x, void* y, int64_t k); \
    void dequantize_row_##t(const void* x, float* y, int64_t k);
DECLARE(q4_0)
DECLARE(q4_1)
DECLARE(q5_0)
DECLARE(q5_1)
DECLARE(q8_0)
DECLARE(q2_K)
DECLARE(q3_K)
DECLARE(q4_K)
DECLARE(q5_K)
DECLARE(q6_K)
DECLARE(q8_K)

typedef void (*quantize_fn)(const float*, void*, int64_t);
typedef void (*dequantize_fn)(const void*, float*, int64_t);

static const struct {
    const char* name;
    enum ggml_type type;
    quantize_fn quantize;
    dequantize_fn dequantize;
} kTypes[] = {
#define ENTRY(t, T) \
    { #t, GGML_TYPE_##T, quantize_row_##t##_ref, dequantize_row_##t }
    ENTRY(q4_0, Q4_0), ENTRY(q4_1, Q4_1), ENTRY(q5_0, Q5_0), ENTRY(q5_1, Q5_1),
    ENTRY(q8_0, Q8_0), ENTRY(q2_K, Q2_K), ENTRY(q3_K, Q3_K), ENTRY(q4_K, Q4_K),
    ENTRY(q5_K, Q5_K), ENTRY(q6_K, Q6_K), ENTRY(q8_K, Q8_K),
};

enum { kRows = 16, kRowLen = 4096, kN = kRows * kRowLen, kBytesValues = 2048 };

static void put_u32(FILE* f, uint32_t v) {
    const unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                                (unsigned char)(v >> 24)};
    fwrite(b, 1, 4, f);
}

// ---- the generator of tests/quant_test_data.hpp, line for line ----
static uint64_t splitmix64(uint64_t* state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double uniform01(uint64_t* state) {
    return (double)(splitmix64(state) >> 11) * 0x1p-53;
}
static double normal(uint64_t* state) {
    double s = 0;
    for (int k = 0; k < 12; ++k) s += uniform01(state);
    return s - 6.0;
}
static void gaussian(float* x, int64_t n, uint64_t seed) {
    for (int64_t i = 0; i < n; ++i) x[i] = (float)normal(&seed);
}
static void student_t3(float* x, int64_t n, uint64_t seed) {
    for (int64_t i = 0; i < n; ++i) {
        const double z = normal(&seed);
        double c = 0;
        for (int k = 0; k < 3; ++k) {
            const double g = normal(&seed);
            c = fma(g, g, c);
        }
        if (c < 1e-300) c = 1e-300;
        x[i] = (float)(z / sqrt(c / 3.0));
    }
}
static uint64_t fnv1a(const float* x, int64_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t i = 0; i < n; ++i) {
        uint32_t bits;
        memcpy(&bits, &x[i], 4);
        for (int k = 0; k < 4; ++k) {
            h ^= (bits >> (8 * k)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

int main(int argc, char** argv) {
    static float data[2][kN], out[kN];
    const char* dists[2] = {"gaussian", "student_t3"};
    gaussian(data[0], kN, 1);
    student_t3(data[1], kN, 2);

    printf("# RMSE of llama.cpp's quantize_row_*_ref -> dequantize_row_* on %d x %d values per data set.\n",
           kRows, kRowLen);
    printf("# Regenerate: scripts/dev/make_quant_rmse_table.sh (dev-only; needs a llama.cpp build).\n");
    for (int d = 0; d < 2; ++d) printf("data %s %016llx\n", dists[d], (unsigned long long)fnv1a(data[d], kN));

    const size_t n_types = sizeof kTypes / sizeof kTypes[0];
    void* q = malloc(ggml_row_size(GGML_TYPE_F32, kN));
    if (argc > 1) {
        FILE* f = fopen(argv[1], "wb");
        if (!f) return 1;
        fwrite("KQQX", 1, 4, f);
        put_u32(f, 1);
        put_u32(f, kBytesValues);
        put_u32(f, (uint32_t)(2 * n_types));
        for (size_t t = 0; t < n_types; ++t) {
            for (int d = 0; d < 2; ++d) {
                const size_t size = ggml_row_size(kTypes[t].type, kBytesValues);
                kTypes[t].quantize(data[d], q, kBytesValues);
                put_u32(f, (uint32_t)kTypes[t].type);
                put_u32(f, (uint32_t)d);
                put_u32(f, (uint32_t)size);
                fwrite(q, 1, size, f);
            }
        }
        fclose(f);
    }
    for (size_t t = 0; t < n_types; ++t) {
        const double bpw =
            8.0 * (double)ggml_type_size(kTypes[t].type) / (double)ggml_blck_size(kTypes[t].type);
        for (int d = 0; d < 2; ++d) {
            const size_t row_size = ggml_row_size(kTypes[t].type, kRowLen);
            for (int r = 0; r < kRows; ++r) {
                kTypes[t].quantize(data[d] + (int64_t)r * kRowLen, (char*)q + r * row_size, kRowLen);
                kTypes[t].dequantize((char*)q + r * row_size, out + (int64_t)r * kRowLen, kRowLen);
            }
            double s = 0;
            for (int64_t i = 0; i < kN; ++i) {
                const double e = (double)data[d][i] - (double)out[i];
                s += e * e;
            }
            printf("rmse %s %s %.9g  # %.4g bits/weight\n", kTypes[t].name, dists[d], sqrt(s / kN), bpw);
        }
    }
    free(q);
    return 0;
}
