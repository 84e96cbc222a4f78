#pragma once
// Where row blocks come from. The pipeline and the backends read tables only through this
// interface, so an HDF5 file, an in-memory table and (later) a rank's share look the same.
#include <cstdint>
#include <string>
#include <vector>

#include "embgeom/matrix_view.hpp"

namespace embgeom {

/// A V x d table of float32 rows that can be read in row blocks, in any order, any number of times.
class RowSource {
  public:
    virtual ~RowSource() = default;
    virtual std::int64_t rows() const = 0;
    virtual std::int64_t cols() const = 0;
    /// Copies rows [first, first + count) as float32 into out (row-major, leading dim cols()).
    /// @throws InputError on a read failure (names the file and dataset).
    virtual void read_rows(std::int64_t first, std::int64_t count, float* out) = 0;
    /// Human-readable origin ("file.h5:/emb"), used in messages.
    virtual std::string describe() const = 0;
    /// Rows [first, first + count) where they already lie in memory as float32 (row-major,
    /// leading dim cols()), valid while the source lives; nullptr when they must be copied with
    /// read_rows. Lets passes over a cached table skip a copy and its buffer.
    virtual const float* resident_rows(std::int64_t first, std::int64_t count) const {
        (void)first;
        (void)count;
        return nullptr;
    }
};

/// A RowSource over a table already in memory (tests, synthesized tables, small inputs).
class MemoryRowSource final : public RowSource {
  public:
    explicit MemoryRowSource(MatrixView<const float> table, std::string name = "memory")
        : table_(table), name_(std::move(name)) {}
    std::int64_t rows() const override { return table_.rows; }
    std::int64_t cols() const override { return table_.cols; }
    void read_rows(std::int64_t first, std::int64_t count, float* out) override;
    std::string describe() const override { return name_; }
    /// Rows are resident when the view is dense (leading dimension = cols).
    const float* resident_rows(std::int64_t first, std::int64_t count) const override;

  private:
    MatrixView<const float> table_;
    std::string name_;
};

}  // namespace embgeom
