#pragma once
#include <cstdint>

namespace embgeom {

/// Non-owning view of a row-major matrix: element (r, c) lives at data[r * ld + c].
template <class T>
struct MatrixView {
    T* data = nullptr;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::int64_t ld = 0;  ///< elements between the starts of consecutive rows (>= cols)

    MatrixView() = default;
    MatrixView(T* d, std::int64_t r, std::int64_t c) : data(d), rows(r), cols(c), ld(c) {}
    MatrixView(T* d, std::int64_t r, std::int64_t c, std::int64_t l)
        : data(d), rows(r), cols(c), ld(l) {}
    /// Implicit view-to-const conversion.
    template <class U>
    MatrixView(const MatrixView<U>& o) : data(o.data), rows(o.rows), cols(o.cols), ld(o.ld) {}

    T* row(std::int64_t r) const { return data + r * ld; }
    /// Rows [first, first + count) as a view.
    MatrixView slice_rows(std::int64_t first, std::int64_t count) const {
        return MatrixView(data + first * ld, count, cols, ld);
    }
};

}  // namespace embgeom
