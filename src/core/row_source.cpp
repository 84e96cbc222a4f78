#include "embgeom/row_source.hpp"

#include <cstring>

#include "embgeom/errors.hpp"

namespace embgeom {

void MemoryRowSource::read_rows(std::int64_t first, std::int64_t count, float* out) {
    EMBGEOM_EXPECTS(first >= 0 && count >= 0 && first + count <= table_.rows, "row range");
    for (std::int64_t r = 0; r < count; ++r)
        std::memcpy(out + r * table_.cols, table_.row(first + r), sizeof(float) * table_.cols);
}

const float* MemoryRowSource::resident_rows(std::int64_t first, std::int64_t count) const {
    EMBGEOM_EXPECTS(first >= 0 && count >= 0 && first + count <= table_.rows, "row range");
    return table_.ld == table_.cols && count > 0 ? table_.row(first) : nullptr;
}

}  // namespace embgeom
