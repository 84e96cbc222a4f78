#include "io/matrix_chunks.hpp"

#include <libdeflate.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <string>

#include "embgeom/errors.hpp"

namespace embgeom::io {

void shuffle_bytes(const std::uint8_t* in, std::size_t count, int esize, std::uint8_t* out) {
    const std::size_t s = static_cast<std::size_t>(esize);
    for (std::size_t b = 0; b < s; ++b) {
        std::uint8_t* o = out + b * count;
        for (std::size_t i = 0; i < count; ++i) o[i] = in[i * s + b];
    }
}

struct ChunkEncoder::Compressor {
    libdeflate_compressor* c = nullptr;
    ~Compressor() { libdeflate_free_compressor(c); }
};

ChunkEncoder::ChunkEncoder(const ChunkLayout& layout)
    : layout_(layout), compressor_(std::make_unique<Compressor>()) {
    if (layout_.gzip_level <= 0) return;
    compressor_->c = libdeflate_alloc_compressor(layout_.gzip_level);
    if (!compressor_->c)
        throw ResourceError("cannot make a deflate compressor of level " +
                            std::to_string(layout_.gzip_level) + " (out of memory?)");
    shuffled_.resize(layout_.chunk_bytes());
    out_.resize(libdeflate_zlib_compress_bound(compressor_->c, layout_.chunk_bytes()));
}

ChunkEncoder::~ChunkEncoder() = default;

std::pair<const void*, std::size_t> ChunkEncoder::encode(const void* chunk) {
    const std::size_t bytes = layout_.chunk_bytes();
    if (layout_.gzip_level <= 0) return {chunk, bytes};
    shuffle_bytes(static_cast<const std::uint8_t*>(chunk), bytes / layout_.esize, layout_.esize,
                  shuffled_.data());
    // A zlib stream (header, deflate, Adler-32): what HDF5's deflate filter writes and inflates.
    const std::size_t n =
        libdeflate_zlib_compress(compressor_->c, shuffled_.data(), bytes, out_.data(), out_.size());
    if (n == 0) throw ResourceError("deflate of a matrix chunk did not fit its worst-case bound");
    return {out_.data(), n};
}

namespace {}  // namespace

/// One thread's tools: an encoder and a whole chunk to assemble into. Kept in a pool, since a
/// compressor at the higher levels is a megabyte to set up and the CPU engine hands over
/// thousands of small tiles.
struct ChunkAssembler::Worker {
    explicit Worker(const ChunkLayout& layout) : encoder(layout), chunk(layout.chunk_bytes()) {}
    ChunkEncoder encoder;
    std::vector<std::uint8_t> chunk;
};

std::unique_ptr<ChunkAssembler::Worker> ChunkAssembler::take_worker() {
    {
        const std::lock_guard<std::mutex> lock(workers_mutex_);
        if (!workers_.empty()) {
            std::unique_ptr<Worker> w = std::move(workers_.back());
            workers_.pop_back();
            return w;
        }
    }
    return std::make_unique<Worker>(layout_);
}

void ChunkAssembler::give_back(std::unique_ptr<Worker> w) {
    const std::lock_guard<std::mutex> lock(workers_mutex_);
    workers_.push_back(std::move(w));
}

ChunkAssembler::ChunkAssembler(const ChunkLayout& layout, std::size_t partial_budget,
                               WriteChunk write_chunk, WritePiece write_piece)
    : layout_(layout),
      partial_budget_(partial_budget),
      write_chunk_(std::move(write_chunk)),
      write_piece_(std::move(write_piece)) {
    EMBGEOM_EXPECTS(layout_.chunk_rows > 0 && layout_.chunk_cols > 0 &&
                        (layout_.esize == 2 || layout_.esize == 4) && layout_.gzip_level >= 0 &&
                        layout_.gzip_level <= 9,
                    "chunk layout");
    chunk_grid_cols_ = (layout_.cols + layout_.chunk_cols - 1) / layout_.chunk_cols;
    written_.assign(static_cast<std::size_t>((layout_.rows + layout_.chunk_rows - 1) /
                                             layout_.chunk_rows * chunk_grid_cols_),
                    false);
}

ChunkAssembler::~ChunkAssembler() = default;

std::int64_t ChunkAssembler::cells_in_extent(std::int64_t ci, std::int64_t cj) const {
    return std::min(layout_.chunk_rows, layout_.rows - ci * layout_.chunk_rows) *
           std::min(layout_.chunk_cols, layout_.cols - cj * layout_.chunk_cols);
}

void ChunkAssembler::encode_and_write(std::int64_t ci, std::int64_t cj, const void* chunk,
                                      ChunkEncoder& enc) {
    const auto [bytes, size] = enc.encode(chunk);
    write_chunk_(ci * layout_.chunk_rows, cj * layout_.chunk_cols, bytes, size);
}

void ChunkAssembler::put(std::int64_t row0, std::int64_t col0, std::int64_t rows, std::int64_t cols,
                         const void* values, std::int64_t ld, bool team) {
    EMBGEOM_EXPECTS(row0 >= 0 && col0 >= 0 && rows >= 0 && cols >= 0 &&
                        row0 + rows <= layout_.rows && col0 + cols <= layout_.cols && ld >= cols,
                    "block inside the chunked dataset");
    if (rows == 0 || cols == 0) return;
    const std::int64_t CR = layout_.chunk_rows, CC = layout_.chunk_cols;
    const std::size_t es = static_cast<std::size_t>(layout_.esize);
    const auto* block = static_cast<const std::uint8_t*>(values);
    // Copies the block's cells of piece p into a whole chunk's raw values.
    const auto copy_piece = [&](const Piece& p, std::uint8_t* chunk) {
        for (std::int64_t r = p.r0; r < p.r0 + p.rows; ++r)
            std::memcpy(chunk + static_cast<std::size_t>((r - p.chunk_row * CR) * CC +
                                                         (p.c0 - p.chunk_col * CC)) *
                                    es,
                        block + static_cast<std::size_t>((r - row0) * ld + (p.c0 - col0)) * es,
                        static_cast<std::size_t>(p.cols) * es);
    };

    std::vector<Piece> whole, cut;
    for (std::int64_t ci = row0 / CR; ci <= (row0 + rows - 1) / CR; ++ci)
        for (std::int64_t cj = col0 / CC; cj <= (col0 + cols - 1) / CC; ++cj) {
            Piece p{ci, cj, std::max(row0, ci * CR), std::max(col0, cj * CC), 0, 0};
            p.rows = std::min({row0 + rows, (ci + 1) * CR, layout_.rows}) - p.r0;
            p.cols = std::min({col0 + cols, (cj + 1) * CC, layout_.cols}) - p.c0;
            (p.rows * p.cols == cells_in_extent(ci, cj) ? whole : cut).push_back(p);
        }

    // Cut chunks: add this block's cells; a chunk whose last cells these were is now whole.
    // Cells are counted once each, and a piece of a chunk already written goes the ordinary way:
    // a tile handed over twice (computed twice) must not complete a chunk before its last cells
    // arrive, nor start a chunk that never completes and is written half empty at the end.
    std::vector<std::pair<Piece, std::vector<std::uint8_t>>> completed;
    std::vector<Piece> past_budget;
    if (!cut.empty() || !whole.empty()) {
        const std::lock_guard<std::mutex> lock(mutex_);
        for (const Piece& p : whole) {
            const std::int64_t key = p.chunk_row * chunk_grid_cols_ + p.chunk_col;
            written_[static_cast<std::size_t>(key)] = true;
            if (const auto it = waiting_.find(key); it != waiting_.end()) {  // superseded
                waiting_.erase(it);
                waiting_bytes_ -= layout_.chunk_bytes();
            }
        }
        for (const Piece& p : cut) {
            const std::int64_t key = p.chunk_row * chunk_grid_cols_ + p.chunk_col;
            if (written_[static_cast<std::size_t>(key)] || past_budget_.count(key)) {
                past_budget.push_back(p);
                continue;
            }
            auto it = waiting_.find(key);
            if (it == waiting_.end()) {
                if (waiting_bytes_ + layout_.chunk_bytes() > partial_budget_) {
                    past_budget_.insert(key);
                    past_budget.push_back(p);
                    continue;
                }
                it = waiting_.emplace(key, Waiting{}).first;
                it->second.values.assign(layout_.chunk_bytes(), 0);
                it->second.have.assign(static_cast<std::size_t>((CR * CC + 63) / 64), 0);
                it->second.cells_missing = cells_in_extent(p.chunk_row, p.chunk_col);
                waiting_bytes_ += layout_.chunk_bytes();
                peak_waiting_bytes_ = std::max(peak_waiting_bytes_, waiting_bytes_);
            }
            Waiting& w = it->second;
            copy_piece(p, w.values.data());
            for (std::int64_t r = p.r0 - p.chunk_row * CR; r < p.r0 + p.rows - p.chunk_row * CR;
                 ++r)
                for (std::int64_t c = p.c0 - p.chunk_col * CC; c < p.c0 + p.cols - p.chunk_col * CC;
                     ++c) {
                    const std::size_t cell = static_cast<std::size_t>(r * CC + c);
                    const std::uint64_t bit = std::uint64_t{1} << (cell % 64);
                    if (!(w.have[cell / 64] & bit)) {
                        w.have[cell / 64] |= bit;
                        --w.cells_missing;
                    }
                }
            if (w.cells_missing == 0) {
                written_[static_cast<std::size_t>(key)] = true;
                completed.emplace_back(p, std::move(w.values));
                waiting_.erase(it);
                waiting_bytes_ -= layout_.chunk_bytes();
            }
        }
    }
    if (!past_budget.empty()) {
        const std::lock_guard<std::mutex> lock(mutex_);
        pieces_past_budget_ += static_cast<std::int64_t>(past_budget.size());
    }
    for (const Piece& p : past_budget)
        write_piece_(p.r0, p.c0, p.rows, p.cols,
                     block + static_cast<std::size_t>((p.r0 - row0) * ld + (p.c0 - col0)) * es, ld);

    // Encoding is the work (deflate: ~100 MB/s a core); the file's lock is taken per chunk only
    // for the write.
    const std::int64_t jobs = static_cast<std::int64_t>(whole.size() + completed.size());
    std::exception_ptr error;
    std::mutex error_mutex;
#pragma omp parallel if (team && jobs > 1)
    {
        std::unique_ptr<Worker> w;
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t j = 0; j < jobs; ++j) {
            try {
                {
                    const std::lock_guard<std::mutex> lock(error_mutex);
                    if (error) continue;
                }
                if (!w) w = take_worker();
                if (j < static_cast<std::int64_t>(whole.size())) {
                    const Piece& p = whole[static_cast<std::size_t>(j)];
                    if (p.rows < CR || p.cols < CC) std::fill(w->chunk.begin(), w->chunk.end(), 0);
                    copy_piece(p, w->chunk.data());
                    encode_and_write(p.chunk_row, p.chunk_col, w->chunk.data(), w->encoder);
                } else {
                    auto& c = completed[static_cast<std::size_t>(j) - whole.size()];
                    encode_and_write(c.first.chunk_row, c.first.chunk_col, c.second.data(),
                                     w->encoder);
                }
            } catch (...) {
                const std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
            }
        }
        if (w) give_back(std::move(w));
    }
    if (error) std::rethrow_exception(error);
}

void ChunkAssembler::finish() {
    std::unordered_map<std::int64_t, Waiting> left;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        left.swap(waiting_);
        waiting_bytes_ = 0;
    }
    if (left.empty()) return;
    ChunkEncoder enc(layout_);
    for (const auto& [key, w] : left)
        encode_and_write(key / chunk_grid_cols_, key % chunk_grid_cols_, w.values.data(), enc);
}

std::size_t ChunkAssembler::waiting_bytes() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return waiting_bytes_;
}

std::size_t ChunkAssembler::peak_waiting_bytes() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return peak_waiting_bytes_;
}

std::int64_t ChunkAssembler::pieces_past_budget() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return pieces_past_budget_;
}

}  // namespace embgeom::io
