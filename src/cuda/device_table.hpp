#pragma once
// The raw rows of one table in device memory, for the job's whole length (Backend::hold_table on
// CUDA). Without it every pass over the table (norms and sums, distances, the all-pairs engine's
// load, CSLS) copies it from the host again: three or more PCIe crossings of a 2 GB table where
// the all-pairs GEMMs of a Llama-3-size table take 0.1 s. With it the table crosses once, and the
// passes read it at device-memory speed.
#include <cstdint>

#include "cuda/cuda_resources.hpp"
#include "cuda/device_buffer.hpp"
#include "embgeom/row_source.hpp"

namespace embgeom {

/// Copies every row of source (float32, as read_rows gives them) to dst, [rows, cols] row-major
/// on res's device: in pieces of at most 64 MiB through two page-locked buffers, so that filling
/// one (a parallel copy from rows already in memory, else read_rows) overlaps the transfer of the
/// other. Returns when the copy is done.
/// @throws InputError when source fails to read, ResourceError when memory runs out.
void upload_table(CudaResources& res, RowSource& source, float* dst);

class DeviceTable {
  public:
    /// Copies every row of source to res's device (upload_table).
    /// @throws InputError when source fails to read, ResourceError when memory runs out.
    DeviceTable(CudaResources& res, RowSource& source);

    const RowSource& source() const noexcept { return *source_; }
    int device() const noexcept { return device_; }
    std::int64_t rows() const noexcept { return rows_; }
    std::int64_t cols() const noexcept { return cols_; }
    /// Row r of the table on the device (row-major, leading dimension cols()).
    const float* row(std::int64_t r) const noexcept { return data_.data() + r * cols_; }

    /// Device bytes a DeviceTable of a rows x cols table holds.
    static std::uint64_t bytes(std::int64_t rows, std::int64_t cols) {
        return static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols) * sizeof(float);
    }

  private:
    const RowSource* source_;
    int device_;
    std::int64_t rows_, cols_;
    DeviceBuffer<float> data_;
};

}  // namespace embgeom
