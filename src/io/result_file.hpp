#pragma once
// Writing results. Everything goes to a temporary file beside the target, which commit() flushes,
// fsyncs and renames over the target: a failed run leaves no partial file and never touches an
// existing file at the output path.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "embgeom/backend.hpp"
#include "embgeom/config.hpp"

namespace embgeom {

/// How a float dataset is stored: the 16-bit types are rounded to nearest even from float32.
enum class StoredFloat { kFloat32, kFloat16, kBFloat16 };

/// One row of an /outliers/<list> table (HDF5 compound, token as a variable-length UTF-8 string).
struct OutlierRow {
    std::int64_t token_id = 0;
    std::string token;
    double score = 0.0;
    double zscore = 0.0;
};

/// One row of a pair table such as /outliers/near_duplicates.
struct PairRow {
    std::int64_t token_id_a = 0;
    std::int64_t token_id_b = 0;
    std::string token_a;
    std::string token_b;
    double cosine = 0.0;
};

/// kWrite: the file at the final path. kDiscard: every write goes to an HDF5 file in memory that
/// commit() drops, for a process whose results another writes (the MPI ranks other than 0) or
/// nobody keeps (--output /dev/null); its square matrices take tiles and keep nothing (a V x V
/// matrix in memory could be far larger than the machine's).
enum class ResultFileMode { kWrite, kDiscard };

/// Every write throws ResourceError "OUTPUT: failed writing /path" when HDF5 refuses it (the
/// path exists already, the disk is full, ...), and after commit(). Numbers are stored as
/// little-endian IEEE/two's-complement types, strings as variable-length UTF-8.
class ResultFile {
  public:
    /// Creates "<dir>/.<name>.tmp.<pid>" beside final_path (kWrite), or the in-memory file.
    /// @throws ResourceError naming the folder when it does not exist or is not writable.
    explicit ResultFile(const std::string& final_path,
                        ResultFileMode mode = ResultFileMode::kWrite);
    /// Without commit(): closes and deletes the temporary file; the target is untouched.
    ~ResultFile();
    ResultFile(const ResultFile&) = delete;
    ResultFile& operator=(const ResultFile&) = delete;

    // 1-D datasets; intermediate groups in path ("/a/b/c") are created as needed.
    void write(const std::string& path, const std::vector<float>& v);
    void write(const std::string& path, const std::vector<double>& v);
    void write(const std::string& path, const std::vector<std::int64_t>& v);
    void write(const std::string& path, const std::vector<std::int32_t>& v);
    void write_strings(const std::string& path, const std::vector<std::string>& v);  ///< vlen UTF-8
    // 2-D row-major datasets [rows, cols].
    void write_matrix(const std::string& path, const float* data, std::int64_t rows,
                      std::int64_t cols);
    void write_matrix(const std::string& path, const std::int64_t* data, std::int64_t rows,
                      std::int64_t cols);
    // Attributes on a group or dataset (created as a group if it does not exist; "/" = root).
    void set_attribute(const std::string& object, const std::string& name, const std::string& v);
    void set_attribute(const std::string& object, const std::string& name, double v);
    void set_attribute(const std::string& object, const std::string& name, std::int64_t v);
    void write_outliers(const std::string& path, const std::vector<OutlierRow>& rows);
    void write_pairs(const std::string& path, const std::vector<PairRow>& rows);
    /// A chunked [n, n] dataset (float16 as IEEE half, or float32; gzip level 0 = none) that the
    /// all-pairs engine fills tile by tile, each cell once. Valid until commit() or destruction;
    /// afterwards its write_tile throws ResourceError. float16 values are rounded to nearest even
    /// (overflow to +-inf, NaN kept). 256 x 256 chunks, shuffle + deflate when gzip_level > 0.
    /// Takes tiles from several threads at once: each thread packs and compresses the chunks its
    /// tile completes (io/matrix_chunks.hpp), and only the writes of finished chunks take turns.
    /// Chunks cut by a tile edge wait in memory for their other pieces, up to
    /// waiting_chunk_budget bytes; past it HDF5's own chunk cache takes those pieces.
    std::unique_ptr<MatrixSink> create_square_matrix(
        const std::string& path, std::int64_t n, MatrixDtype dtype, int gzip_level,
        std::size_t waiting_chunk_budget = kDefaultWaitingChunkBudget);
    static constexpr std::size_t kDefaultWaitingChunkBudget = std::size_t{256} << 20;
    /// A contiguous [rows, cols] float dataset written in row blocks through write_tile(row0, 0,
    /// block), stored as float32, IEEE float16 or bfloat16 (both rounded to nearest even), e.g.
    /// a synthetic table far larger than one would convert in one piece. Lifetime as above.
    std::unique_ptr<MatrixSink> create_table(const std::string& path, std::int64_t rows,
                                             std::int64_t cols, StoredFloat stored);

    /// Flush, fsync, rename onto the final path. @throws ResourceError on failure (temp removed).
    void commit();
    const std::string& final_path() const;

  private:
    void init_write_properties();
    /// gzip_level < 0: contiguous (no chunks); mirror: write each off-diagonal tile transposed too.
    std::unique_ptr<MatrixSink> create_block_matrix(const std::string& path, std::int64_t rows,
                                                    std::int64_t cols, StoredFloat stored,
                                                    int gzip_level, bool mirror,
                                                    std::size_t waiting_chunk_budget);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace embgeom
