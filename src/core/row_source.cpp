#include "embgeom/row_source.hpp"

#include <cstring>

#include "embgeom/errors.hpp"

namespace embgeom {

void MemoryRowSource::read_rows(std::int64_t first, std::int64_t count, float* out) {
    EMBGEOM_EXPECTS(first >= 0 && count >= 0 && first + count <= table_.rows, "row range");
    for (std::int64_t r = 0; r < count; ++r)
        std::memcpy(out + r * table_.cols, table_.row(first + r), sizeof(float) * table_.cols);
}

}  // namespace embgeom
