#pragma once
// Row blocks of a RowSource for a pass over the table: a pointer into the source where its rows
// are already in memory (a cached table), else a copy in one buffer allocated on first need. A
// pass over a cached 2 GiB table then neither copies it nor touches a fresh 1 GiB buffer.
#include <algorithm>
#include <cstdint>

#include "core/large_host_buffer.hpp"
#include "embgeom/errors.hpp"
#include "embgeom/row_source.hpp"

namespace embgeom {

class RowBlockReader {
  public:
    /// max_rows: the largest count read() will be asked for.
    RowBlockReader(RowSource& source, std::int64_t max_rows)
        : source_(source), max_rows_(std::max<std::int64_t>(max_rows, 1)) {}

    /// Rows [first, first + count), row-major with leading dimension cols(); valid until the next
    /// call. @throws InputError from the source's read.
    const float* read(std::int64_t first, std::int64_t count) {
        EMBGEOM_EXPECTS(count <= max_rows_, "row block larger than the reader's buffer");
        if (const float* rows = source_.resident_rows(first, count)) return rows;
        if (!buffer_.data())
            buffer_ = LargeHostBuffer<float>(
                static_cast<std::size_t>(max_rows_) * static_cast<std::size_t>(source_.cols()),
                "a row block");
        source_.read_rows(first, count, buffer_.data());
        return buffer_.data();
    }

  private:
    RowSource& source_;
    std::int64_t max_rows_;
    LargeHostBuffer<float> buffer_;
};

}  // namespace embgeom
