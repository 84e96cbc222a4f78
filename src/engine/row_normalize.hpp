#pragma once
// Row normalisation and the row-mean identity of the all-pairs engine, one definition for every
// backend so that the normalised rows (the GEMM inputs) are the same bits everywhere. Host-only.
#include <cstdint>

namespace embgeom::engine {

/// out = (x - center) / ||x - center||, the difference and the norm in float64, the quotient
/// rounded to float32. A row with zero norm (e.g. equal to the center) becomes the zero vector:
/// its cosine with every row is then 0, by convention, rather than NaN.
/// @param[in] x [d]; @param[in] center [d] or nullptr for none; @param[out] out [d].
/// @return the norm: 0 for a zero row, non-finite when x holds a non-finite value.
double normalize_row(const float* x, const double* center, std::int64_t d, float* out);

/// sum_k xhat[k] * s[k] in float64, k ascending (a fixed order, so every caller agrees bitwise).
double dot_with_sum(const float* xhat, const double* s, std::int64_t d);

/// Mean cosine of row i to the other n_valid - 1 valid rows, from the identity
/// (x^_i . S - self_i) / (n_valid - 1) with S the float64 sum of all normalised valid rows and
/// self_i = x^_i . x^_i taken as 1 (0 for a zero row). NaN when n_valid < 2.
double row_mean_identity(double xhat_dot_sum, bool zero_row, std::int64_t n_valid);

}  // namespace embgeom::engine
