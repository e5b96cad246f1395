#include "kernels/reference/kquant_fit.hpp"

#include <cmath>

#include "kernels/reference/quant_math.hpp"

namespace kinfer::ref {
namespace {
// Groups whose largest magnitude is below this are treated as all zero (ggml uses the same threshold).
constexpr float kGroupZero = 1e-15f;
constexpr int kMaxGroup = 32;
}  // namespace

float fit_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* min_out,
                    float rmin, float rdelta, int nstep, bool abs_error) {
    float lo = x[0], hi = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        lo = std::fmin(lo, x[i]);
        hi = std::fmax(hi, x[i]);
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    // The offset only ever moves values up (x = scale*L - min_out with min_out >= 0).
    if (lo > 0) lo = 0;
    if (hi == lo) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *min_out = -lo;
        return 0.0f;
    }

    const auto error_of = [&](const uint8_t* codes, float scale, float offset) {
        float err = 0;
        for (int i = 0; i < n; ++i) {
            const float diff = scale * codes[i] + offset - x[i];
            err += weights[i] * (abs_error ? std::fabs(diff) : diff * diff);
        }
        return err;
    };

    float iscale = nmax / (hi - lo);
    float best_scale = 1 / iscale;
    float best_offset = lo;
    for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(round_clamped(iscale * (x[i] - lo), 0, nmax));
    float best_error = error_of(L, best_scale, best_offset);

    uint8_t trial[kMaxGroup];
    for (int step = 0; step <= nstep; ++step) {
        // The candidate grid is anchored at the best offset found so far (not the raw minimum): once a
        // least-squares fit has moved the offset, later, finer grids start from it.
        iscale = (rmin + rdelta * step + nmax) / (hi - best_offset);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = round_clamped(iscale * (x[i] - best_offset), 0, nmax);
            trial[i] = static_cast<uint8_t>(l);
            sum_l += weights[i] * l;
            sum_l2 += weights[i] * l * l;
            sum_xl += weights[i] * l * x[i];
        }
        // Weighted least squares for x ~= scale * l + offset.
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0)) continue;
        float scale = (sum_w * sum_xl - sum_x * sum_l) / det;
        float offset = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (offset > 0) {  // a positive offset is not representable: refit the scale alone
            offset = 0;
            scale = sum_xl / sum_l2;
        }
        const float err = error_of(trial, scale, offset);
        if (err < best_error) {
            for (int i = 0; i < n; ++i) L[i] = trial[i];
            best_error = err;
            best_scale = scale;
            best_offset = offset;
        }
    }
    *min_out = -best_offset;
    return best_scale;
}

float fit_scale_symmetric(int n, int nmax, const float* x, int8_t* L) {
    const float max = signed_absmax(x, n);
    if (std::fabs(max) < kGroupZero) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    // Codes for one candidate grid, with their weighted sums (weight x^2: large values matter most).
    const auto fit = [&](float iscale, int8_t* codes, float& sum_lx, float& sum_l2) {
        sum_lx = 0;
        sum_l2 = 0;
        for (int i = 0; i < n; ++i) {
            const int l = round_clamped(iscale * x[i], -nmax, nmax - 1);
            codes[i] = static_cast<int8_t>(l + nmax);
            const float w = x[i] * x[i];
            sum_lx += w * x[i] * l;
            sum_l2 += w * l * l;
        }
    };
    float sum_lx, sum_l2;
    fit(-nmax / max, L, sum_lx, sum_l2);
    float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
    float best = scale * sum_lx;  // the error reduction sum_lx^2 / sum_l2 of the optimal scale
    int8_t trial[kMaxGroup];
    for (int k = -9; k <= 9; ++k) {
        if (k == 0) continue;
        fit(-(nmax + 0.1f * k) / max, trial, sum_lx, sum_l2);
        if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
            for (int i = 0; i < n; ++i) L[i] = trial[i];
            scale = sum_lx / sum_l2;
            best = scale * sum_lx;
        }
    }
    return scale;
}

float fit_scale_q3(int n, int nmax, const float* x, int8_t* L) {
    const float max = signed_absmax(x, n);
    if (std::fabs(max) < kGroupZero) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    const float iscale = -nmax / max;
    float sum_lx = 0, sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = round_clamped(iscale * x[i], -nmax, nmax - 1);
        L[i] = static_cast<int8_t>(l);
        const float w = x[i] * x[i];
        sum_lx += w * x[i] * l;
        sum_l2 += w * l * l;
    }
    // Coordinate descent: move one code at a time to its best value given the others, if that improves the
    // fit quality sum_lx^2 / sum_l2 (the error reduction of the optimal scale).
    for (int sweep = 0; sweep < 5; ++sweep) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float lx = sum_lx - w * x[i] * L[i];
            if (!(lx > 0)) continue;
            float l2 = sum_l2 - w * L[i] * L[i];
            const int l = round_clamped(x[i] * l2 / lx, -nmax, nmax - 1);
            if (l == L[i]) continue;
            lx += w * x[i] * l;
            l2 += w * l * l;
            if (l2 > 0 && lx * lx * sum_l2 > sum_lx * sum_lx * l2) {
                L[i] = static_cast<int8_t>(l);
                sum_lx = lx;
                sum_l2 = l2;
                ++changed;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
    return sum_l2 > 0 ? sum_lx / sum_l2 : 0.0f;
}

}  // namespace kinfer::ref
