#pragma once
// Private to src/io: the chunks of a chunked 2-D dataset, assembled from tiles of any shape,
// encoded (HDF5's shuffle + deflate filters, done here with libdeflate) by the threads that hand
// the tiles over, and written whole with H5Dwrite_chunk. Through HDF5's own filter pipeline every
// chunk would be compressed by one thread holding the library's lock: the compressed cosine
// matrix (--matrix-gzip) went at 30 MB/s whatever the cores. No HDF5 call is made here; the
// writer passes in how a chunk reaches the file.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace embgeom::io {

/// The chunk layout of a [rows, cols] dataset of esize-byte elements: chunk_rows x chunk_cols
/// chunks, row-major; chunks at the far edges are stored whole, the cells past the extent 0.
struct ChunkLayout {
    std::int64_t rows = 0, cols = 0;
    std::int64_t chunk_rows = 0, chunk_cols = 0;
    int esize = 0;       ///< 2 or 4
    int gzip_level = 0;  ///< 0: no filters; 1-9: shuffle then deflate at this level
    std::size_t chunk_bytes() const {
        return static_cast<std::size_t>(chunk_rows * chunk_cols) * static_cast<std::size_t>(esize);
    }
};

/// HDF5's shuffle filter: byte b of element i goes to out[b * count + i].
void shuffle_bytes(const std::uint8_t* in, std::size_t count, int esize, std::uint8_t* out);

/// Encodes whole chunks as the dataset's filters would store them (shuffle, then a zlib stream,
/// which HDF5's deflate filter reads); one per thread (libdeflate's compressor is not shared).
class ChunkEncoder {
  public:
    explicit ChunkEncoder(const ChunkLayout& layout);
    ~ChunkEncoder();
    ChunkEncoder(const ChunkEncoder&) = delete;
    ChunkEncoder& operator=(const ChunkEncoder&) = delete;
    /// The bytes to store for one whole chunk (layout.chunk_bytes() of raw values); valid until
    /// the next call. @throws ResourceError if the compressor cannot be made.
    std::pair<const void*, std::size_t> encode(const void* chunk);

  private:
    ChunkLayout layout_;
    struct Compressor;
    std::unique_ptr<Compressor> compressor_;
    std::vector<std::uint8_t> shuffled_, out_;
};

/// Takes blocks of stored values from any number of threads at once and hands each chunk to
/// write_chunk, encoded, when all its cells have arrived. The callers hand every cell over once
/// (the all-pairs engines' tiles partition the matrix), and each chunk is then written once; a
/// tile handed over again (computed twice: the same values) leaves the dataset as it was, never
/// a chunk written with cells missing.
/// A chunk that a block covers whole is encoded from the block directly. A chunk cut by a block's
/// edge waits in memory for its other pieces, up to partial_budget bytes of such chunks; past
/// that, the pieces of further cut chunks go to write_piece (HDF5's chunk cache and filters:
/// slower, never wrong), so memory stays bounded whatever order the tiles come in.
class ChunkAssembler {
  public:
    /// Stores one encoded chunk whose first cell is (row0, col0); called from the thread that
    /// completed it, several at once: it takes the file's lock itself.
    using WriteChunk = std::function<void(std::int64_t row0, std::int64_t col0, const void* bytes,
                                          std::size_t size)>;
    /// Writes rows x cols raw values (row pitch ld elements) at (row0, col0) the ordinary way.
    using WritePiece = std::function<void(std::int64_t row0, std::int64_t col0, std::int64_t rows,
                                          std::int64_t cols, const void* values, std::int64_t ld)>;

    ChunkAssembler(const ChunkLayout& layout, std::size_t partial_budget, WriteChunk write_chunk,
                   WritePiece write_piece);
    ~ChunkAssembler();

    /// rows x cols raw stored values with row pitch ld (elements) for the cells from (row0, col0).
    /// team: encode this block's chunks with an OpenMP team (a caller outside any parallel
    /// region handing over a large tile). Thread-safe. @throws what the writers throw.
    void put(std::int64_t row0, std::int64_t col0, std::int64_t rows, std::int64_t cols,
             const void* values, std::int64_t ld, bool team);

    /// Writes the chunks still waiting for pieces as they are (their missing cells 0). Only
    /// reached when the contract was broken or a job failed part way; a finished matrix has none.
    void finish();

    /// Bytes of chunks waiting for pieces now, and the most there ever were.
    std::size_t waiting_bytes() const;
    std::size_t peak_waiting_bytes() const;
    /// How many pieces went to write_piece: the budget was full, or (a tile handed over twice)
    /// their chunk was written already.
    std::int64_t pieces_past_budget() const;

  private:
    struct Waiting {
        std::vector<std::uint8_t> values;  // the whole chunk, raw
        std::vector<std::uint64_t> have;   // a bit per cell: arrived
        std::int64_t cells_missing = 0;
    };
    struct Piece {
        std::int64_t chunk_row, chunk_col;  // chunk index
        std::int64_t r0, c0, rows, cols;    // cells of the chunk, in dataset coordinates
    };
    struct Worker;
    std::unique_ptr<Worker> take_worker();
    void give_back(std::unique_ptr<Worker> w);
    std::int64_t cells_in_extent(std::int64_t ci, std::int64_t cj) const;
    void encode_and_write(std::int64_t ci, std::int64_t cj, const void* chunk, ChunkEncoder& enc);

    ChunkLayout layout_;
    std::size_t partial_budget_;
    WriteChunk write_chunk_;
    WritePiece write_piece_;
    std::int64_t chunk_grid_cols_ = 0;

    mutable std::mutex mutex_;  // guards the members below
    std::unordered_map<std::int64_t, Waiting> waiting_;
    std::unordered_set<std::int64_t> past_budget_;
    std::vector<bool> written_;  // by chunk: handed to write_chunk (whole or completed)
    std::size_t waiting_bytes_ = 0, peak_waiting_bytes_ = 0;
    std::int64_t pieces_past_budget_ = 0;

    std::mutex workers_mutex_;
    std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace embgeom::io
