#pragma once
// Per-group scale searches of the k-quant quantizers (the same searches ggml's imatrix-free
// quantize_row_*_ref use, so that quality matches llama-quantize). Each picks integer codes L for a small
// group of values and returns the float scale; the caller then quantizes the scales themselves.
#include <cstdint>

namespace kinfer::ref {

// Asymmetric fit x ~= scale * L - min_out with L in [0, nmax] and min_out >= 0 (min is never above zero).
// Starts from the min/max grid, then tries nstep+1 grid widths (nmax + rmin + rdelta*k) / (max - min),
// solving weighted least squares for (scale, min) on each candidate code assignment, and keeps the one with
// the smallest weighted error (|e| if abs_error, else e^2). Used by Q2_K, Q4_K and Q5_K. n <= 32.
float fit_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* min_out,
                    float rmin, float rdelta, int nstep, bool abs_error);

// Symmetric fit x ~= scale * (L - nmax) with L in [0, 2*nmax - 1], minimising sum x^2 * e^2 over 19 candidate
// grids around nmax / absmax. Used by Q6_K. n <= 32. Returns 0 (and L = 0) for an all-(near-)zero group.
float fit_scale_symmetric(int n, int nmax, const float* x, int8_t* L);

// Symmetric fit as above with L in [0, 2*nmax - 1], refined by coordinate descent on the weighted (x^2)
// squared error, up to 5 sweeps. Used by Q3_K. n <= 32. Returns 0 (and L = 0) for an all-(near-)zero group.
float fit_scale_q3(int n, int nmax, const float* x, int8_t* L);

}  // namespace kinfer::ref
