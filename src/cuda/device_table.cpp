#include "cuda/device_table.hpp"

#include <algorithm>

#include "cuda/cuda_check.hpp"
#include "cuda/upload_rows.hpp"
#include "io/half_float.hpp"
#include "packed16.cuh"

namespace embgeom {
namespace {

namespace kn = kernels;

kn::Half16 half_format(HeldFormat f) {
    return f == HeldFormat::kBf16 ? kn::Half16::kBf16 : kn::Half16::kFp16;
}

// Fills the pieces of source, in row order, into two page-locked buffers in turn and hands each
// to send(first, count, staged), which enqueues what reads it on s; filling one buffer overlaps
// the work enqueued from the other. send returns false to stop early. Returns when the work is
// done.
template <class Send>
void for_each_staged_piece(CudaResources& res, RowSource& source, std::int64_t piece, Send&& send) {
    const std::int64_t rows = source.rows(), cols = source.cols();
    const cudaStream_t s = res.compute_stream();
    PinnedBuffer<float> stage[2] = {PinnedBuffer<float>(static_cast<std::size_t>(piece * cols)),
                                    PinnedBuffer<float>(rows > piece ? piece * cols : 0)};
    CudaEvent sent[2];
    // A read that throws leaves transfers in flight from the page-locked buffers: they finish
    // before the buffers are freed.
    struct DrainOnThrow {
        cudaStream_t s;
        bool done = false;
        ~DrainOnThrow() {
            if (!done) (void)cudaStreamSynchronize(s);
        }
    } drain{s};
    int p = 0;
    for (std::int64_t first = 0; first < rows; first += piece, ++p) {
        const std::int64_t count = std::min(piece, rows - first);
        const int b = p % 2;
        if (p >= 2) sent[b].synchronize();  // the work of piece p - 2 has left stage[b]
        float* const staged = stage[b].data();
        if (const float* resident = source.resident_rows(first, count)) {
            stage_rows(MatrixView<const float>(resident, count, cols), staged);
        } else {
            source.read_rows(first, count, staged);
        }
        if (!send(first, count, staged)) break;
        sent[b].record(s);
    }
    drain.done = true;
    EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s));
}

std::int64_t piece_rows(const RowSource& source, std::size_t piece_bytes) {
    return std::clamp<std::int64_t>(static_cast<std::int64_t>(piece_bytes / sizeof(float)) /
                                        std::max<std::int64_t>(source.cols(), 1),
                                    1, std::max<std::int64_t>(source.rows(), 1));
}

// The 16-bit format the first values suggest: bfloat16 when each is the upper half of its
// float32 bits, else float16 when each comes back from float16 with its bits, else float32. Only
// a guess for the table: the device proves it for every value.
HeldFormat guess_format(const float* v, std::int64_t n) {
    bool bf16 = true, fp16 = true;
    for (std::int64_t e = 0; e < n && (bf16 || fp16); ++e) {
        const std::uint32_t u = io::float_to_bits(v[e]);
        bf16 = bf16 && (u & 0xFFFFu) == 0;
        fp16 = fp16 && io::float_to_bits(io::half_to_float(io::float_to_half(v[e]))) == u;
    }
    return bf16 ? HeldFormat::kBf16 : fp16 ? HeldFormat::kFp16 : HeldFormat::kFloat32;
}

}  // namespace

const char* to_string(HeldFormat f) {
    switch (f) {
        case HeldFormat::kBf16:
            return "bfloat16";
        case HeldFormat::kFp16:
            return "float16";
        default:
            return "float32";
    }
}

void upload_table(CudaResources& res, RowSource& source, float* dst, std::size_t piece_bytes) {
    const std::int64_t cols = source.cols();
    if (source.rows() <= 0 || cols <= 0) return;
    DeviceScope scope(res.device());
    const cudaStream_t s = res.compute_stream();
    for_each_staged_piece(res, source, piece_rows(source, piece_bytes),
                          [&](std::int64_t first, std::int64_t count, const float* staged) {
                              EMBGEOM_CUDA_TRY(cudaMemcpyAsync(dst + first * cols, staged,
                                                               sizeof(float) * count * cols,
                                                               cudaMemcpyHostToDevice, s));
                              return true;
                          });
}

DeviceTable::DeviceTable(const RowSource& source, int device, HeldFormat format)
    : source_(&source),
      device_(device),
      rows_(source.rows()),
      cols_(source.cols()),
      format_(format) {}

void DeviceTable::copy_rows(std::int64_t first, std::int64_t count, float* dst,
                            cudaStream_t s) const {
    if (count <= 0 || cols_ <= 0) return;
    if (format_ == HeldFormat::kFloat32) {
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(dst, data32_.data() + first * cols_,
                                         sizeof(float) * count * cols_, cudaMemcpyDeviceToDevice,
                                         s));
        return;
    }
    kn::launch_unpack16(data16_.data() + first * cols_, count * cols_, half_format(format_), dst,
                        s);
    EMBGEOM_CHECK_LAUNCH(s);
}

std::unique_ptr<DeviceTable> hold_on_device(CudaResources& res, RowSource& source,
                                            const HoldRequest& request) {
    const std::int64_t rows = source.rows(), cols = source.cols();
    DeviceScope scope(res.device());
    const cudaStream_t s = res.compute_stream();
    const std::int64_t piece = piece_rows(source, request.piece_bytes);
    if (rows <= 0 || cols <= 0)  // nothing to read or hold
        return std::unique_ptr<DeviceTable>(
            new DeviceTable(source, res.device(), HeldFormat::kFloat32));

    // The format is chosen from the first piece once it is read. A float32 copy takes every
    // piece as it is; a 16-bit one takes it as float32 into a device buffer and packs it from
    // there, each value checked.
    std::unique_ptr<DeviceTable> table;
    DeviceBuffer<float> piece_dev;
    DeviceBuffer<unsigned> inexact(1);
    EMBGEOM_CUDA_TRY(cudaMemsetAsync(inexact.data(), 0, inexact.bytes(), s));
    for_each_staged_piece(
        res, source, piece, [&](std::int64_t first, std::int64_t count, const float* staged) {
            if (!table) {
                const HeldFormat f =
                    guess_format(staged, std::min(count * cols, request.sample_values));
                if (f == HeldFormat::kFloat32 && !request.allow_float32) return false;
                table = std::unique_ptr<DeviceTable>(new DeviceTable(source, res.device(), f));
                if (f == HeldFormat::kFloat32) {
                    table->data32_ = DeviceBuffer<float>(static_cast<std::size_t>(rows * cols));
                } else {
                    table->data16_ =
                        DeviceBuffer<std::uint16_t>(static_cast<std::size_t>(rows * cols));
                    piece_dev = DeviceBuffer<float>(static_cast<std::size_t>(piece * cols));
                }
            }
            const bool as_float32 = table->format_ == HeldFormat::kFloat32;
            EMBGEOM_CUDA_TRY(cudaMemcpyAsync(
                as_float32 ? table->data32_.data() + first * cols : piece_dev.data(), staged,
                sizeof(float) * count * cols, cudaMemcpyHostToDevice, s));
            if (!as_float32) {
                kn::launch_pack16(piece_dev.data(), count * cols, half_format(table->format_),
                                  table->data16_.data() + first * cols, inexact.data(), s);
                EMBGEOM_CHECK_LAUNCH(s);
            }
            return true;
        });
    if (!table || table->format_ == HeldFormat::kFloat32) return table;
    unsigned flag = 0;
    EMBGEOM_CUDA_TRY(
        cudaMemcpyAsync(&flag, inexact.data(), sizeof flag, cudaMemcpyDeviceToHost, s));
    EMBGEOM_CUDA_TRY(cudaStreamSynchronize(s));
    if (flag == 0) return table;
    // A value past the guess's sample needs float32: the 16-bit copy goes first, so that the two
    // are never held together, and the table crosses again.
    table.reset();
    piece_dev = DeviceBuffer<float>();
    if (!request.allow_float32) return nullptr;
    auto t =
        std::unique_ptr<DeviceTable>(new DeviceTable(source, res.device(), HeldFormat::kFloat32));
    t->data32_ = DeviceBuffer<float>(static_cast<std::size_t>(rows * cols));
    upload_table(res, source, t->data32_.data(), request.piece_bytes);
    return t;
}

}  // namespace embgeom
