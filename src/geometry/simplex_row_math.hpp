#pragma once
// Per-row float64 kernels of the simplex analyses. Each result depends on its row alone and is
// summed in a fixed order (four interleaved partial sums, combined as (s0 + s1) + (s2 + s3)), so
// it is the same for any block size and thread count.
#include <cmath>
#include <cstdint>
#include <vector>

namespace embgeom::simplex_detail {

/// sum_j (x_j - c_j)^2 (x float32 or float64).
template <class T>
inline double squared_distance(const T* x, const double* c, std::int64_t d) {
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    std::int64_t j = 0;
    for (; j + 4 <= d; j += 4)
        for (int l = 0; l < 4; ++l) {
            const double t = static_cast<double>(x[j + l]) - c[j + l];
            s[l] += t * t;
        }
    for (; j < d; ++j) {
        const double t = static_cast<double>(x[j]) - c[j];
        s[0] += t * t;
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/// sum_j q_j (x_j - a_j).
inline double dot_of_difference(const float* x, const double* a, const double* q, std::int64_t d) {
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    std::int64_t j = 0;
    for (; j + 4 <= d; j += 4)
        for (int l = 0; l < 4; ++l) s[l] += q[j + l] * (static_cast<double>(x[j + l]) - a[j + l]);
    for (; j < d; ++j) s[0] += q[j] * (static_cast<double>(x[j]) - a[j]);
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/// sum_j u_j v_j (float64 vectors).
inline double dot(const double* u, const double* v, std::int64_t d) {
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    std::int64_t j = 0;
    for (; j + 4 <= d; j += 4)
        for (int l = 0; l < 4; ++l) s[l] += u[j + l] * v[j + l];
    for (; j < d; ++j) s[0] += u[j] * v[j];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/// Gram-Schmidt of w [d] against the orthonormal rows of basis ([n][d]), run twice ("twice is
/// enough": Giraud, Langou & Rozloznik 2005) so w ends orthogonal to working precision.
/// coeff[i] (if given, [n]) receives the total component of w along basis[i]. Returns ||w||.
inline double orthogonalize_twice(std::vector<double>& w,
                                  const std::vector<std::vector<double>>& basis,
                                  double* coeff = nullptr) {
    const std::int64_t d = static_cast<std::int64_t>(w.size());
    for (std::size_t i = 0; i < basis.size(); ++i)
        if (coeff) coeff[i] = 0.0;
    for (int pass = 0; pass < 2; ++pass)
        for (std::size_t i = 0; i < basis.size(); ++i) {
            const double c = dot(basis[i].data(), w.data(), d);
            for (std::int64_t j = 0; j < d; ++j) w[j] -= c * basis[i][j];
            if (coeff) coeff[i] += c;
        }
    return std::sqrt(dot(w.data(), w.data(), d));
}

}  // namespace embgeom::simplex_detail
