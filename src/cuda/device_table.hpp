#pragma once
// The raw rows of one table in device memory, for the job's whole length (Backend::hold_table on
// CUDA). Without it every pass over the table (norms and sums, distances, the all-pairs engine's
// load, CSLS) copies it from the host again: three or more PCIe crossings of a 2 GB table where
// the all-pairs GEMMs of a Llama-3-size table take 0.1 s. With it the table crosses once, and the
// passes read it at device-memory speed.
//
// Where every value is a bfloat16 (or a float16) value, as in a table stored in 16 bits or
// widened to float32 from 16-bit weights, the copy is kept in 16 bits: half the device memory,
// left to the all-pairs engine. Readers get float32 rows either way (copy_rows), with the bits
// the source gives, so no result depends on how the copy is kept.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "cuda/cuda_resources.hpp"
#include "cuda/device_buffer.hpp"
#include "embgeom/row_source.hpp"

namespace embgeom {

/// How a DeviceTable keeps its values.
enum class HeldFormat { kFloat32, kBf16, kFp16 };
const char* to_string(HeldFormat f);  ///< "float32", "bfloat16", "float16"

/// What hold_on_device may do.
struct HoldRequest {
    /// Whether a float32 copy may be made when the values need one; false: hold in 16 bits or
    /// not at all (only the 16-bit copy fits).
    bool allow_float32 = true;
    /// The 16-bit format is guessed from the first this many values (read anyway for the first
    /// piece), then proved on the device for every value; a table the guess was wrong for is
    /// copied again in float32.
    std::int64_t sample_values = std::int64_t{1} << 18;
    /// Rows cross in pieces of at most this many bytes (float32).
    std::size_t piece_bytes = std::size_t{64} << 20;
};

/// Copies every row of source (float32, as read_rows gives them) to dst, [rows, cols] row-major
/// on res's device: in pieces of at most piece_bytes through two page-locked buffers, so that
/// filling one (a parallel copy from rows already in memory, else read_rows) overlaps the
/// transfer of the other. Returns when the copy is done.
/// @throws InputError when source fails to read, ResourceError when memory runs out.
void upload_table(CudaResources& res, RowSource& source, float* dst,
                  std::size_t piece_bytes = HoldRequest{}.piece_bytes);

/// Made by hold_on_device only.
class DeviceTable {
  public:
    const RowSource& source() const noexcept { return *source_; }
    int device() const noexcept { return device_; }
    std::int64_t rows() const noexcept { return rows_; }
    std::int64_t cols() const noexcept { return cols_; }
    HeldFormat format() const noexcept { return format_; }
    /// Device bytes the copy holds.
    std::uint64_t bytes() const { return bytes(rows_, cols_, format_); }

    /// Rows [first, first + count) as float32 (row-major, leading dimension cols()) into dst on
    /// the device: a copy, or the 16-bit values unpacked. Asynchronous on s.
    void copy_rows(std::int64_t first, std::int64_t count, float* dst, cudaStream_t s) const;
    /// Row r where it lies as float32, or nullptr when the copy is kept in 16 bits (copy_rows).
    const float* float_row(std::int64_t r) const noexcept {
        return format_ == HeldFormat::kFloat32 ? data32_.data() + r * cols_ : nullptr;
    }

    /// Device bytes of a rows x cols copy in format.
    static std::uint64_t bytes(std::int64_t rows, std::int64_t cols, HeldFormat format) {
        return static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols) *
               (format == HeldFormat::kFloat32 ? sizeof(float) : sizeof(std::uint16_t));
    }

  private:
    friend std::unique_ptr<DeviceTable> hold_on_device(CudaResources&, RowSource&,
                                                       const HoldRequest&);
    DeviceTable(const RowSource& source, int device, HeldFormat format);

    const RowSource* source_;
    int device_;
    std::int64_t rows_, cols_;
    HeldFormat format_;
    DeviceBuffer<float> data32_;
    DeviceBuffer<std::uint16_t> data16_;
};

/// Copies every row of source to res's device: in 16 bits when its values allow, else in
/// float32 (when the request allows it). Returns nullptr when only a 16-bit copy was allowed
/// and the values need float32.
/// @throws InputError when source fails to read, ResourceError when memory runs out.
std::unique_ptr<DeviceTable> hold_on_device(CudaResources& res, RowSource& source,
                                            const HoldRequest& request = {});

}  // namespace embgeom
