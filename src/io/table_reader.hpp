#pragma once
// Reading tables, vectors and vocabularies from HDF5 input files that we treat as untrusted:
// rank, type, sizes, layout and filters are validated before any data is read, and every HDF5
// failure becomes an InputError naming the file and dataset (HDF5's own error stack is silenced).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "embgeom/row_source.hpp"

namespace embgeom {

/// How the elements of a table are stored in the file.
enum class StoredDtype { kFloat16, kBFloat16, kFloat32, kFloat64 };
const char* to_string(StoredDtype t);

/// A 2-D float16/bfloat16/float32/float64 dataset of any layout (contiguous, chunked, compressed),
/// read in row blocks and converted to float32. bfloat16 is recognised as a 16-bit HDF5 float
/// type with an 8-bit exponent and 7-bit mantissa; float16 as IEEE half (5/10).
class Hdf5TableReader final : public RowSource {
  public:
    /// @param[in] chunk_cache_bytes HDF5 chunk cache for this dataset; raised (up to 1 GiB) to
    ///            hold one band of chunks across all columns, so that reading row blocks
    ///            decompresses every chunk once.
    /// @throws InputError: missing file, not HDF5, corrupt, missing dataset, rank != 2,
    ///         non-float type, zero rows or columns, external storage, virtual layout,
    ///         external link, unsupported filter. Messages are one line, "FILE:/dataset ...".
    Hdf5TableReader(const std::string& file, const std::string& dataset,
                    std::uint64_t chunk_cache_bytes = 64ull << 20);
    ~Hdf5TableReader() override;
    Hdf5TableReader(const Hdf5TableReader&) = delete;
    Hdf5TableReader& operator=(const Hdf5TableReader&) = delete;

    std::int64_t rows() const override;
    std::int64_t cols() const override;
    /// Rows [first, first + count) as float32, row-major [count, cols()]. float64 values outside
    /// the float32 range become +-inf. Not thread-safe: use one reader per thread.
    /// @throws InputError "FILE:/ds: read failed at rows a..b (corrupt data?)".
    void read_rows(std::int64_t first, std::int64_t count, float* out) override;
    std::string describe() const override;  ///< "file.h5:/dataset"
    StoredDtype stored_dtype() const;
    /// The whole table where it lies in the file, mapped read-only, when the dataset is stored
    /// exactly as it is used: contiguous, unfiltered, native float32, written, 4-byte aligned, in a
    /// file without a user block opened with HDF5's default driver (first and last rows checked
    /// against an HDF5 read). Row-major [rows(), cols()], valid while the reader lives; nullptr
    /// otherwise (read_rows then converts or decompresses). Why: no read, no private copy, and the
    /// pages are the system's file cache, shared with other readers of the file.
    const float* mapped_rows();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Reads a 1-D float dataset of exactly expected_len elements as float64 (e.g. a bias vector).
/// A [1, n] or [n, 1] 2-D dataset is accepted too, in any float format (16-bit ones included).
/// @param[in] expected_len required length; a negative value accepts any length.
/// @throws InputError naming file, dataset, shape, e.g.
///         "FILE:/bias has shape [5], expected [768] (the table's dimension)".
std::vector<double> read_vector(const std::string& file, const std::string& dataset,
                                std::int64_t expected_len);

/// Reads a 1-D string dataset (fixed or variable length, ASCII or UTF-8).
/// @throws InputError naming the file and dataset.
std::vector<std::string> read_string_dataset(const std::string& file, const std::string& dataset);

/// Reads a text file, one token per line (a trailing newline does not make an extra token;
/// "\r\n" endings are accepted). @throws InputError naming the file.
std::vector<std::string> read_vocab_file(const std::string& path);

/// One dataset as `embgeom inspect` shows it.
struct DatasetInfo {
    std::string path;                  ///< "/group/name"
    std::vector<std::int64_t> shape;
    std::string type;                  ///< "float32", "float16", "bfloat16", "int64", "string(vlen, utf-8)", ...
    std::string layout;                ///< "contiguous", "chunked", "compact"
    std::vector<std::int64_t> chunk;   ///< empty unless chunked
    std::vector<std::string> filters;  ///< e.g. "gzip(4)", "shuffle"
    bool usable_as_table = false;      ///< 2-D float with rows, cols > 0
    bool usable_as_vocab = false;      ///< 1-D string
};

/// Every dataset in the file, depth first in name order. @throws InputError naming the file.
std::vector<DatasetInfo> list_datasets(const std::string& file);

}  // namespace embgeom
