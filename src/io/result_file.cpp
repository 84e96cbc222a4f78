#include "io/result_file.hpp"

#include <fcntl.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "embgeom/errors.hpp"
#include "io/half_float.hpp"
#include "io/hdf5_handle.hpp"
#include "io/matrix_chunks.hpp"
#include "io/unfinished_files.hpp"

namespace embgeom {

using namespace io;

namespace {

constexpr std::int64_t kChunkSide = 256;  // chunks of a chunked matrix: 256 x 256 cells

// Element types as stored in the result file: fixed little-endian so files are identical on every
// host; HDF5 converts from the native memory types (a no-op on x86-64 and aarch64).
DatatypeHandle make_vlen_utf8() {
    DatatypeHandle t(H5Tcopy(H5T_C_S1));
    if (t && (H5Tset_size(t.get(), H5T_VARIABLE) < 0 || H5Tset_cset(t.get(), H5T_CSET_UTF8) < 0))
        t.reset();
    return t;
}

// A little-endian 16-bit float with the sign at bit 15 and the mantissa at bit 0. HDF5 1.10 has
// no predefined 16-bit float; h5py builds its float16 this way, and io::classify_float16 reads
// both layouts back.
DatatypeHandle make_float16_le(std::size_t epos, std::size_t esize, std::size_t msize,
                               std::size_t ebias) {
    DatatypeHandle t(H5Tcopy(H5T_IEEE_F32LE));
    if (t && (H5Tset_fields(t.get(), 15, epos, esize, 0, msize) < 0 ||
              H5Tset_size(t.get(), 2) < 0 || H5Tset_ebias(t.get(), ebias) < 0))
        t.reset();
    return t;
}

/// The file type of stored floats (the memory side is converted by us, so it is the same type).
DatatypeHandle make_stored_type(StoredFloat t) {
    switch (t) {
        case StoredFloat::kFloat16: return make_float16_le(10, 5, 10, 15);  // IEEE binary16
        case StoredFloat::kBFloat16: return make_float16_le(7, 8, 7, 127);  // top half of binary32
        case StoredFloat::kFloat32: break;
    }
    return DatatypeHandle(H5Tcopy(H5T_IEEE_F32LE));
}

std::string parent_dir(const std::string& path) {
    const std::size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
    const std::size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool fsync_path(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::fsync(fd) == 0;
    return ::close(fd) == 0 && ok;
}

struct OutlierMem {
    std::int64_t token_id;
    const char* token;
    double score;
    double zscore;
};

struct PairMem {
    std::int64_t token_id_a;
    std::int64_t token_id_b;
    const char* token_a;
    const char* token_b;
    double cosine;
};

}  // namespace

namespace io {

/// State of one block-written matrix, shared by its sink and the file so that commit() and the
/// file's destructor can close the dataset even while the caller still holds the sink.
struct BlockMatrixState {
    std::string file_path;  // the result file's final path, for messages
    std::string path;
    DatasetHandle dataset;
    DataspaceHandle file_space;
    DatatypeHandle type;  // as stored; also the memory type of the packed block
    StoredFloat stored = StoredFloat::kFloat32;
    std::int64_t rows = 0, cols = 0;
    bool mirror = false;  // square symmetric: every off-diagonal tile is written transposed too
    // A chunked matrix: its chunks are assembled, compressed and written whole by the threads
    // that hand the tiles over (io/matrix_chunks.hpp). Null for a contiguous table.
    std::unique_ptr<ChunkAssembler> chunks;

    // Tiles are packed into the stored type by the threads that hand them over, each in a buffer
    // of its own taken from here, and only their writes take turns (HDF5 is not thread-safe).
    struct Packed {
        std::vector<float> f32;
        std::vector<std::uint16_t> f16;
    };
    std::unique_ptr<Packed> take_buffer() {
        const std::lock_guard<std::mutex> lock(pool_mutex);
        if (pool.empty()) return std::make_unique<Packed>();
        std::unique_ptr<Packed> b = std::move(pool.back());
        pool.pop_back();
        return b;
    }
    void give_back(std::unique_ptr<Packed> b) {
        const std::lock_guard<std::mutex> lock(pool_mutex);
        pool.push_back(std::move(b));
    }
    std::mutex pool_mutex;
    std::vector<std::unique_ptr<Packed>> pool;

    // Under hdf5_mutex(): the file's commit or close may have closed the dataset.
    void check_open() const {
        if (!dataset)
            throw ResourceError(file_path + ": cannot write " + path +
                                " (the result file was already committed or closed)");
    }
    [[noreturn]] void fail_at(std::int64_t r0, std::int64_t c0) const {
        throw ResourceError(file_path + ": failed writing " + path + " at [" + std::to_string(r0) +
                            ", " + std::to_string(c0) + "]");
    }

    // Writes rows x cols values in the stored type (row pitch ld) at (r0, c0) through HDF5's
    // type conversion, chunk cache and filters; one thread at a time.
    void write_block(std::int64_t r0, std::int64_t c0, std::int64_t rows, std::int64_t cols,
                     const void* values, std::int64_t ld) {
        const std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
        silence_hdf5_errors();
        check_open();
        const bool half = stored != StoredFloat::kFloat32;
        const hsize_t start[2] = {static_cast<hsize_t>(r0), static_cast<hsize_t>(c0)};
        const hsize_t extent[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
        const hsize_t pitched[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(ld)};
        const hsize_t origin[2] = {0, 0};
        DataspaceHandle mem(H5Screate_simple(2, pitched, nullptr));
        const bool ok = mem &&
                        (ld == cols || H5Sselect_hyperslab(mem.get(), H5S_SELECT_SET, origin,
                                                           nullptr, extent, nullptr) >= 0) &&
                        H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr,
                                            extent, nullptr) >= 0 &&
                        H5Dwrite(dataset.get(), half ? type.get() : H5T_NATIVE_FLOAT, mem.get(),
                                 file_space.get(), H5P_DEFAULT, values) >= 0;
        if (!ok) fail_at(r0, c0);
    }

    // Stores one chunk, already encoded as the dataset's filters would (filter mask 0: all of
    // them applied), whose first cell is (r0, c0).
    void write_chunk(std::int64_t r0, std::int64_t c0, const void* bytes, std::size_t size) {
        const std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
        silence_hdf5_errors();
        check_open();
        const hsize_t offset[2] = {static_cast<hsize_t>(r0), static_cast<hsize_t>(c0)};
        if (H5Dwrite_chunk(dataset.get(), H5P_DEFAULT, 0, offset, size, bytes) < 0) fail_at(r0, c0);
    }
};

}  // namespace io

struct ResultFile::Impl {
    std::string final_path;   // as the caller named it, for messages
    std::string target_path;  // what the finished file is renamed onto (a link followed)
    std::string dir;
    std::string temp_path;
    FileHandle file;
    PlistHandle lcpl;  // creates missing intermediate groups
    DatatypeHandle vlen_utf8;
    std::vector<std::weak_ptr<BlockMatrixState>> matrices;
    bool committed = false;
    // The temporary file, removed by a stopping signal until it is committed or removed.
    std::unique_ptr<UnfinishedFile> unfinished;

    [[noreturn]] void fail(const std::string& path) const {
        throw ResourceError(final_path + ": failed writing " + path);
    }
    hid_t fid(const std::string& path) const {
        if (!file)
            throw ResourceError(final_path + ": cannot write " + path +
                                " (file already committed or closed)");
        return file.get();
    }
    void write_dataset(const std::string& path, hid_t file_type, hid_t mem_type, int rank,
                       const hsize_t* dims, const void* data);
    hid_t open_or_create_object(const std::string& object, ObjectHandle& holder);
    void close_matrices();
    bool close_file();
};

namespace {

class BlockMatrixSink final : public MatrixSink {
  public:
    explicit BlockMatrixSink(std::shared_ptr<BlockMatrixState> st) : st_(std::move(st)) {}

    bool takes_tiles_concurrently() const override { return true; }
    bool stores_float16() const override { return st_->stored == StoredFloat::kFloat16; }

    void write_tile(std::int64_t row0, std::int64_t col0, MatrixView<const float> tile) override {
        BlockMatrixState& s = *st_;
        {
            const std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
            s.check_open();
        }
        EMBGEOM_EXPECTS(row0 >= 0 && col0 >= 0 && tile.rows >= 0 && tile.cols >= 0 &&
                            row0 + tile.rows <= s.rows && col0 + tile.cols <= s.cols &&
                            tile.ld >= tile.cols,
                        "matrix tile inside the dataset");
        if (tile.rows == 0 || tile.cols == 0) return;
        std::unique_ptr<BlockMatrixState::Packed> buffer = s.take_buffer();
        const bool team = is_large(tile) && !omp_in_parallel();
        // A float32 tile is already what the file stores: it is written as it is (a contiguous
        // dataset takes it dense only; the chunk assembler takes any row pitch).
        if (s.stored == StoredFloat::kFloat32 && (s.chunks || tile.ld == tile.cols)) {
            put(row0, col0, tile.rows, tile.cols, tile.data, tile.ld, team);
        } else {
            put(row0, col0, tile.rows, tile.cols, pack(tile, false, team, *buffer), tile.cols,
                team);
        }
        if (s.mirror && row0 != col0)
            put(col0, row0, tile.cols, tile.rows, pack(tile, true, team, *buffer), tile.rows, team);
        s.give_back(std::move(buffer));
    }

  private:
    static bool is_large(MatrixView<const float> tile) {
        return tile.rows * tile.cols >= (std::int64_t{1} << 20);
    }

    void put(std::int64_t r0, std::int64_t c0, std::int64_t rows, std::int64_t cols,
             const void* values, std::int64_t ld, bool team) {
        if (st_->chunks)
            st_->chunks->put(r0, c0, rows, cols, values, ld, team);
        else
            st_->write_block(r0, c0, rows, cols, values, ld);
    }

    // The tile (or its transpose) contiguous in the stored element type; returns its values.
    const void* pack(MatrixView<const float> tile, bool transpose, bool team,
                     BlockMatrixState::Packed& out) const {
        const std::size_t count = static_cast<std::size_t>(tile.rows * tile.cols);
        switch (st_->stored) {
            case StoredFloat::kFloat32:
                out.f32.resize(count);
                pack_as(tile, transpose, team, out.f32.data(), [](float v) { return v; });
                return out.f32.data();
            case StoredFloat::kBFloat16:
                out.f16.resize(count);
                // Lambdas, not the functions' addresses: the conversion inlines into the loop.
                pack_as(tile, transpose, team, out.f16.data(),
                        [](float v) { return float_to_bfloat16(v); });
                return out.f16.data();
            case StoredFloat::kFloat16:
                out.f16.resize(count);
                pack_as(tile, transpose, team, out.f16.data(),
                        [](float v) { return float_to_half(v); });
                return out.f16.data();
        }
        return nullptr;
    }
    // The transpose goes in 32 x 32 blocks, so that both sides stay in cache. A large tile handed
    // over by a thread outside any parallel region (the CUDA engine's: 8192^2 values; an MPI job's
    // rank 0 receiving every rank's) is packed by a team of threads; inside the CPU engine's
    // threads each packs its own tile alone. Each value is converted apart: the same bits.
    template <class T, class Convert>
    static void pack_as(MatrixView<const float> tile, bool transpose, bool team, T* out,
                        Convert convert) {
        if (!transpose) {
#pragma omp parallel for schedule(static) if (team)
            for (std::int64_t r = 0; r < tile.rows; ++r) {
                const float* in = tile.row(r);
                T* o = out + r * tile.cols;
                for (std::int64_t c = 0; c < tile.cols; ++c) o[c] = convert(in[c]);
            }
            return;
        }
        constexpr std::int64_t kBlock = 32;
        const std::int64_t rows = tile.cols, cols = tile.rows;  // of the transpose
#pragma omp parallel for schedule(static) if (team)
        for (std::int64_t r0 = 0; r0 < rows; r0 += kBlock)
            for (std::int64_t c0 = 0; c0 < cols; c0 += kBlock)
                for (std::int64_t r = r0; r < std::min(rows, r0 + kBlock); ++r)
                    for (std::int64_t c = c0; c < std::min(cols, c0 + kBlock); ++c)
                        out[r * cols + c] = convert(tile.data[c * tile.ld + r]);
    }

    std::shared_ptr<BlockMatrixState> st_;
};

// The square matrix of a discarded file: tiles are checked against its extent, then dropped.
class DroppedMatrixSink final : public MatrixSink {
  public:
    explicit DroppedMatrixSink(std::int64_t n) : n_(n) {}
    bool takes_tiles_concurrently() const override { return true; }
    void write_tile(std::int64_t row0, std::int64_t col0, MatrixView<const float> tile) override {
        EMBGEOM_EXPECTS(row0 >= 0 && col0 >= 0 && row0 + tile.rows <= n_ && col0 + tile.cols <= n_,
                        "matrix tile inside the dataset");
    }

  private:
    std::int64_t n_;
};

}  // namespace

ResultFile::ResultFile(const std::string& final_path, ResultFileMode mode)
    : impl_(std::make_unique<Impl>()) {
    silence_hdf5_errors();
    Impl& m = *impl_;
    m.final_path = final_path;
    if (mode == ResultFileMode::kDiscard) {
        // HDF5's core driver without a backing store: the same writes, in memory, then dropped.
        PlistHandle fapl(H5Pcreate(H5P_FILE_ACCESS));
        if (!fapl || H5Pset_fapl_core(fapl.get(), 1 << 20, 0) < 0)
            throw ResourceError("cannot set up an in-memory HDF5 file for " + final_path);
        m.file = FileHandle(H5Fcreate(("embgeom-discarded-" + std::to_string(::getpid())).c_str(),
                                      H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
        if (!m.file) throw ResourceError("cannot create an in-memory HDF5 file for " + final_path);
        init_write_properties();
        return;
    }
    // The finished file is renamed onto its path. A symbolic link there is followed, so that the
    // file it names is replaced and the link stays (renaming onto the link would replace the
    // link itself: as root, /dev/stdout's).
    struct stat st;
    m.target_path = final_path;
    if (::lstat(final_path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
        std::unique_ptr<char, decltype(&std::free)> resolved(
            ::realpath(final_path.c_str(), nullptr), &std::free);
        if (!resolved)
            throw ResourceError("cannot write " + final_path +
                                ": it is a symbolic link that names no file (" +
                                std::strerror(errno) + ")");
        m.target_path = resolved.get();
    }
    m.dir = parent_dir(m.target_path);
    const std::string base = base_name(m.target_path);
    if (base.empty() || base == "." || base == "..")
        throw ResourceError("cannot write " + final_path + ": not a file name");
    if (::stat(m.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw ResourceError("cannot write " + final_path + ": folder " + m.dir + " does not exist");
    if (::access(m.dir.c_str(), W_OK | X_OK) != 0)
        throw ResourceError("cannot write " + final_path + ": folder " + m.dir +
                            " is not writable");
    if (::stat(m.target_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        throw ResourceError("cannot write " + final_path + ": it is a folder");
    // A device, pipe or socket would be replaced by a regular file: refused.
    if (::stat(m.target_path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        throw ResourceError("cannot write " + final_path +
                            ": it is not a regular file (a device, pipe or socket); an HDF5 "
                            "result needs a file path");
    m.temp_path = m.dir + "/." + base + ".tmp." + std::to_string(::getpid());
    m.unfinished = std::make_unique<UnfinishedFile>(m.temp_path, final_path);

    PlistHandle fapl(H5Pcreate(H5P_FILE_ACCESS));
    if (fapl) {
        H5Pset_file_locking(fapl.get(), true, true);
        // Closing the file closes anything still open in it, so commit() never renames a file
        // that HDF5 still holds.
        H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
        // A matrix tile's rows are segments of the matrix's rows, apart in the file, so HDF5's
        // 64 KiB sieve buffer cannot gather them; segments longer than the buffer are written
        // straight from the tile. Measured (bench/matrix_write_rate, 16384^2 float32 in 8192^2
        // tiles, 4 alternating rounds on 2 cores): 1.25-1.81 s with 4 KiB, 1.64-2.54 s with
        // the default; 1024^2 tiles (4 KiB segments) the same either way.
        H5Pset_sieve_buf_size(fapl.get(), 4096);
    }
    m.file = FileHandle(H5Fcreate(m.temp_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT,
                                  fapl ? fapl.get() : H5P_DEFAULT));
    if (!m.file) {
        ::unlink(m.temp_path.c_str());
        throw ResourceError("cannot write " + final_path + ": cannot create a file in folder " +
                            m.dir + " (not writable or full?)");
    }
    init_write_properties();
}

void ResultFile::init_write_properties() {
    Impl& m = *impl_;
    m.lcpl = PlistHandle(H5Pcreate(H5P_LINK_CREATE));
    m.vlen_utf8 = make_vlen_utf8();
    if (!m.lcpl || H5Pset_create_intermediate_group(m.lcpl.get(), 1) < 0 ||
        H5Pset_char_encoding(m.lcpl.get(), H5T_CSET_UTF8) < 0 || !m.vlen_utf8) {
        m.close_file();
        if (!m.temp_path.empty()) ::unlink(m.temp_path.c_str());
        throw ResourceError("cannot write " + m.final_path + ": HDF5 property setup failed");
    }
}

ResultFile::~ResultFile() {
    if (!impl_ || impl_->committed) return;
    impl_->close_matrices();
    impl_->close_file();
    if (!impl_->temp_path.empty()) ::unlink(impl_->temp_path.c_str());
}

const std::string& ResultFile::final_path() const { return impl_->final_path; }

void ResultFile::Impl::close_matrices() {
    for (auto& w : matrices)
        if (auto s = w.lock()) {
            s->file_space.reset();
            s->type.reset();
            s->dataset.reset();
        }
    matrices.clear();
}

bool ResultFile::Impl::close_file() {
    vlen_utf8.reset();
    lcpl.reset();
    return file.close();
}

void ResultFile::Impl::write_dataset(const std::string& path, hid_t file_type, hid_t mem_type,
                                     int rank, const hsize_t* dims, const void* data) {
    silence_hdf5_errors();
    const hid_t f = fid(path);
    DataspaceHandle space(H5Screate_simple(rank, dims, nullptr));
    if (!space) fail(path);
    DatasetHandle ds(
        H5Dcreate2(f, path.c_str(), file_type, space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
    if (!ds) fail(path);
    hsize_t total = 1;
    for (int i = 0; i < rank; ++i) total *= dims[i];
    // A zero-length dataset has nothing to write, and H5Dwrite rejects a null buffer.
    if (total > 0 && H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        fail(path);
    if (!ds.close()) fail(path);
}

void ResultFile::write(const std::string& path, const std::vector<float>& v) {
    const hsize_t dims[1] = {v.size()};
    impl_->write_dataset(path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dims, v.data());
}

void ResultFile::write(const std::string& path, const std::vector<double>& v) {
    const hsize_t dims[1] = {v.size()};
    impl_->write_dataset(path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dims, v.data());
}

void ResultFile::write(const std::string& path, const std::vector<std::int64_t>& v) {
    const hsize_t dims[1] = {v.size()};
    impl_->write_dataset(path, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, dims, v.data());
}

void ResultFile::write(const std::string& path, const std::vector<std::int32_t>& v) {
    const hsize_t dims[1] = {v.size()};
    impl_->write_dataset(path, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, v.data());
}

void ResultFile::write_strings(const std::string& path, const std::vector<std::string>& v) {
    std::vector<const char*> ptrs;
    ptrs.reserve(v.size());
    for (const std::string& s : v) ptrs.push_back(s.c_str());
    const hsize_t dims[1] = {v.size()};
    impl_->fid(path);
    impl_->write_dataset(path, impl_->vlen_utf8.get(), impl_->vlen_utf8.get(), 1, dims,
                         ptrs.data());
}

void ResultFile::write_matrix(const std::string& path, const float* data, std::int64_t rows,
                              std::int64_t cols) {
    EMBGEOM_EXPECTS(rows >= 0 && cols >= 0 && (data || rows * cols == 0), "matrix shape");
    const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
    impl_->write_dataset(path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, data);
}

void ResultFile::write_matrix(const std::string& path, const std::int64_t* data, std::int64_t rows,
                              std::int64_t cols) {
    EMBGEOM_EXPECTS(rows >= 0 && cols >= 0 && (data || rows * cols == 0), "matrix shape");
    const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
    impl_->write_dataset(path, H5T_STD_I64LE, H5T_NATIVE_INT64, 2, dims, data);
}

hid_t ResultFile::Impl::open_or_create_object(const std::string& object, ObjectHandle& holder) {
    const hid_t f = fid(object);
    const std::string path = normalize_path(object);
    if (path == "/") {
        holder = ObjectHandle(H5Oopen(f, "/", H5P_DEFAULT));
        if (!holder) fail(path);
        return holder.get();
    }
    // H5Lexists errors (rather than saying no) when a parent group is missing.
    bool exists = true;
    for (std::size_t pos = 0; exists && pos != std::string::npos;) {
        pos = path.find('/', pos + 1);
        exists = H5Lexists(f, path.substr(0, pos).c_str(), H5P_DEFAULT) > 0;
    }
    if (exists) {
        holder = ObjectHandle(H5Oopen(f, path.c_str(), H5P_DEFAULT));
    } else {
        GroupHandle g(H5Gcreate2(f, path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
        if (g) holder = ObjectHandle(H5Oopen(f, path.c_str(), H5P_DEFAULT));
    }
    if (!holder) fail(path);
    return holder.get();
}

namespace {

// Replaces attribute name on obj with a scalar of file_type written from value (mem_type).
bool put_attribute(hid_t obj, const std::string& name, hid_t file_type, hid_t mem_type,
                   const void* value) {
    if (H5Aexists(obj, name.c_str()) > 0 && H5Adelete(obj, name.c_str()) < 0) return false;
    DataspaceHandle scalar(H5Screate(H5S_SCALAR));
    PlistHandle acpl(H5Pcreate(H5P_ATTRIBUTE_CREATE));
    if (!scalar || !acpl || H5Pset_char_encoding(acpl.get(), H5T_CSET_UTF8) < 0) return false;
    AttributeHandle a(
        H5Acreate2(obj, name.c_str(), file_type, scalar.get(), acpl.get(), H5P_DEFAULT));
    return a && H5Awrite(a.get(), mem_type, value) >= 0 && a.close();
}

}  // namespace

void ResultFile::set_attribute(const std::string& object, const std::string& name,
                               const std::string& v) {
    silence_hdf5_errors();
    ObjectHandle obj;
    const hid_t o = impl_->open_or_create_object(object, obj);
    const char* p = v.c_str();
    if (!put_attribute(o, name, impl_->vlen_utf8.get(), impl_->vlen_utf8.get(), &p))
        impl_->fail(normalize_path(object) + " attribute " + name);
}

void ResultFile::set_attribute(const std::string& object, const std::string& name, double v) {
    silence_hdf5_errors();
    ObjectHandle obj;
    const hid_t o = impl_->open_or_create_object(object, obj);
    if (!put_attribute(o, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v))
        impl_->fail(normalize_path(object) + " attribute " + name);
}

void ResultFile::set_attribute(const std::string& object, const std::string& name, std::int64_t v) {
    silence_hdf5_errors();
    ObjectHandle obj;
    const hid_t o = impl_->open_or_create_object(object, obj);
    if (!put_attribute(o, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v))
        impl_->fail(normalize_path(object) + " attribute " + name);
}

void ResultFile::write_outliers(const std::string& path, const std::vector<OutlierRow>& rows) {
    silence_hdf5_errors();
    impl_->fid(path);
    const hid_t str = impl_->vlen_utf8.get();
    const std::size_t ssize = H5Tget_size(str);
    // Memory layout follows the C struct; the file layout is packed little-endian.
    DatatypeHandle mem(H5Tcreate(H5T_COMPOUND, sizeof(OutlierMem)));
    DatatypeHandle file(H5Tcreate(H5T_COMPOUND, 8 + ssize + 8 + 8));
    const bool ok =
        mem && file &&
        H5Tinsert(mem.get(), "token_id", offsetof(OutlierMem, token_id), H5T_NATIVE_INT64) >= 0 &&
        H5Tinsert(mem.get(), "token", offsetof(OutlierMem, token), str) >= 0 &&
        H5Tinsert(mem.get(), "score", offsetof(OutlierMem, score), H5T_NATIVE_DOUBLE) >= 0 &&
        H5Tinsert(mem.get(), "zscore", offsetof(OutlierMem, zscore), H5T_NATIVE_DOUBLE) >= 0 &&
        H5Tinsert(file.get(), "token_id", 0, H5T_STD_I64LE) >= 0 &&
        H5Tinsert(file.get(), "token", 8, str) >= 0 &&
        H5Tinsert(file.get(), "score", 8 + ssize, H5T_IEEE_F64LE) >= 0 &&
        H5Tinsert(file.get(), "zscore", 16 + ssize, H5T_IEEE_F64LE) >= 0;
    if (!ok) impl_->fail(path);
    std::vector<OutlierMem> buf;
    buf.reserve(rows.size());
    for (const OutlierRow& r : rows)
        buf.push_back({r.token_id, r.token.c_str(), r.score, r.zscore});
    const hsize_t dims[1] = {rows.size()};
    impl_->write_dataset(path, file.get(), mem.get(), 1, dims, buf.data());
}

void ResultFile::write_pairs(const std::string& path, const std::vector<PairRow>& rows) {
    silence_hdf5_errors();
    impl_->fid(path);
    const hid_t str = impl_->vlen_utf8.get();
    const std::size_t ssize = H5Tget_size(str);
    DatatypeHandle mem(H5Tcreate(H5T_COMPOUND, sizeof(PairMem)));
    DatatypeHandle file(H5Tcreate(H5T_COMPOUND, 16 + 2 * ssize + 8));
    const bool ok =
        mem && file &&
        H5Tinsert(mem.get(), "token_id_a", offsetof(PairMem, token_id_a), H5T_NATIVE_INT64) >= 0 &&
        H5Tinsert(mem.get(), "token_id_b", offsetof(PairMem, token_id_b), H5T_NATIVE_INT64) >= 0 &&
        H5Tinsert(mem.get(), "token_a", offsetof(PairMem, token_a), str) >= 0 &&
        H5Tinsert(mem.get(), "token_b", offsetof(PairMem, token_b), str) >= 0 &&
        H5Tinsert(mem.get(), "cosine", offsetof(PairMem, cosine), H5T_NATIVE_DOUBLE) >= 0 &&
        H5Tinsert(file.get(), "token_id_a", 0, H5T_STD_I64LE) >= 0 &&
        H5Tinsert(file.get(), "token_id_b", 8, H5T_STD_I64LE) >= 0 &&
        H5Tinsert(file.get(), "token_a", 16, str) >= 0 &&
        H5Tinsert(file.get(), "token_b", 16 + ssize, str) >= 0 &&
        H5Tinsert(file.get(), "cosine", 16 + 2 * ssize, H5T_IEEE_F64LE) >= 0;
    if (!ok) impl_->fail(path);
    std::vector<PairMem> buf;
    buf.reserve(rows.size());
    for (const PairRow& r : rows)
        buf.push_back({r.token_id_a, r.token_id_b, r.token_a.c_str(), r.token_b.c_str(), r.cosine});
    const hsize_t dims[1] = {rows.size()};
    impl_->write_dataset(path, file.get(), mem.get(), 1, dims, buf.data());
}

std::unique_ptr<MatrixSink> ResultFile::create_square_matrix(const std::string& path,
                                                             std::int64_t n, MatrixDtype dtype,
                                                             int gzip_level,
                                                             std::size_t waiting_chunk_budget) {
    EMBGEOM_EXPECTS(n >= 0 && gzip_level >= 0 && gzip_level <= 9, "matrix size and gzip level");
    if (impl_->file && impl_->temp_path.empty()) return std::make_unique<DroppedMatrixSink>(n);
    return create_block_matrix(
        path, n, n, dtype == MatrixDtype::kFloat16 ? StoredFloat::kFloat16 : StoredFloat::kFloat32,
        gzip_level, true, waiting_chunk_budget);
}

std::unique_ptr<MatrixSink> ResultFile::create_table(const std::string& path, std::int64_t rows,
                                                     std::int64_t cols, StoredFloat stored) {
    EMBGEOM_EXPECTS(rows >= 0 && cols >= 0, "table size");
    return create_block_matrix(path, rows, cols, stored, -1, false, 0);
}

std::unique_ptr<MatrixSink> ResultFile::create_block_matrix(const std::string& path,
                                                            std::int64_t rows, std::int64_t cols,
                                                            StoredFloat stored, int gzip_level,
                                                            bool mirror,
                                                            std::size_t waiting_chunk_budget) {
    silence_hdf5_errors();
    Impl& m = *impl_;
    const hid_t f = m.fid(path);
    auto st = std::make_shared<BlockMatrixState>();
    st->file_path = m.final_path;
    st->path = path;
    st->rows = rows;
    st->cols = cols;
    st->stored = stored;
    st->mirror = mirror;
    st->type = make_stored_type(stored);
    if (!st->type) m.fail(path);
    const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
    DataspaceHandle space(H5Screate_simple(2, dims, nullptr));
    PlistHandle dcpl(H5Pcreate(H5P_DATASET_CREATE));
    if (!space || !dcpl) m.fail(path);
    PlistHandle dapl(H5Pcreate(H5P_DATASET_ACCESS));
    if (gzip_level < 0) {
        // Contiguous, written in row blocks: every element is written, so no fill first.
        if (H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER) < 0) m.fail(path);
    } else if (rows > 0 && cols > 0) {
        // 256 x 256 chunks (128-256 KiB): small enough that the chunks a tile edge cuts (which
        // wait for their other pieces) hold little memory, large enough for gzip to work well
        // and for a row band to read quickly. A zero-sized matrix cannot be chunked (chunks must
        // be non-empty and fit).
        const hsize_t chunk[2] = {static_cast<hsize_t>(std::min(rows, kChunkSide)),
                                  static_cast<hsize_t>(std::min(cols, kChunkSide))};
        if (H5Pset_chunk(dcpl.get(), 2, chunk) < 0) m.fail(path);
        if (gzip_level > 0 && (H5Pset_shuffle(dcpl.get()) < 0 ||
                               H5Pset_deflate(dcpl.get(), static_cast<unsigned>(gzip_level)) < 0))
            m.fail(path);
        // HDF5's chunk cache only sees the pieces of cut chunks past the waiting budget (see
        // ChunkAssembler); such a chunk may be read back and re-compressed for each piece unless
        // it stays cached until its last piece. w0 = 1: full chunks leave the cache first.
        const std::uint64_t esize = stored == StoredFloat::kFloat32 ? 4 : 2;
        const std::uint64_t chunk_bytes = 256ull * 256ull * esize;
        const std::uint64_t cache = std::clamp<std::uint64_t>(
            2ull * static_cast<std::uint64_t>(std::max(rows, cols)) * 256ull * esize,
            4 * chunk_bytes, 64ull << 20);
        if (dapl) H5Pset_chunk_cache(dapl.get(), next_prime(100 * cache / chunk_bytes), cache, 1.0);
    }
    st->dataset = DatasetHandle(H5Dcreate2(f, path.c_str(), st->type.get(), space.get(),
                                           m.lcpl.get(), dcpl.get(),
                                           dapl ? dapl.get() : H5P_DEFAULT));
    if (!st->dataset) m.fail(path);
    st->file_space = DataspaceHandle(H5Dget_space(st->dataset.get()));
    if (!st->file_space) m.fail(path);
    if (gzip_level >= 0 && rows > 0 && cols > 0) {
        ChunkLayout layout;
        layout.rows = rows;
        layout.cols = cols;
        layout.chunk_rows = std::min<std::int64_t>(rows, kChunkSide);
        layout.chunk_cols = std::min<std::int64_t>(cols, kChunkSide);
        layout.esize = stored == StoredFloat::kFloat32 ? 4 : 2;
        layout.gzip_level = gzip_level;
        // The state owns the assembler, so a plain pointer to it outlives the callbacks.
        BlockMatrixState* state = st.get();
        st->chunks = std::make_unique<ChunkAssembler>(
            layout, waiting_chunk_budget,
            [state](std::int64_t r0, std::int64_t c0, const void* bytes, std::size_t size) {
                state->write_chunk(r0, c0, bytes, size);
            },
            [state](std::int64_t r0, std::int64_t c0, std::int64_t nr, std::int64_t nc,
                    const void* values,
                    std::int64_t ld) { state->write_block(r0, c0, nr, nc, values, ld); });
    }
    m.matrices.erase(std::remove_if(m.matrices.begin(), m.matrices.end(),
                                    [](const auto& w) { return w.expired(); }),
                     m.matrices.end());
    m.matrices.push_back(st);
    return std::make_unique<BlockMatrixSink>(std::move(st));
}

void ResultFile::commit() {
    silence_hdf5_errors();
    Impl& m = *impl_;
    if (m.committed) throw ResourceError(m.final_path + ": already committed");
    if (!m.file) throw ResourceError(m.final_path + ": result file is closed");
    const auto fail = [&](const std::string& what) {
        m.close_matrices();
        m.close_file();
        ::unlink(m.temp_path.c_str());
        throw ResourceError("cannot write " + m.final_path + ": " + what);
    };
    // Chunks still waiting for pieces exist only if a writer broke the each-cell-once contract;
    // they are written as they are rather than lost.
    for (auto& w : m.matrices)
        if (auto st = w.lock(); st && st->chunks) {
            try {
                st->chunks->finish();
            } catch (const std::exception& e) {
                fail(std::string("finishing ") + st->path + " failed: " + e.what());
            }
        }
    m.close_matrices();
    if (m.temp_path.empty()) {  // a discarded file (ResultFileMode::kDiscard): nothing to keep
        m.close_file();
        m.committed = true;
        return;
    }
    if (H5Fflush(m.file.get(), H5F_SCOPE_GLOBAL) < 0)
        fail("flushing the HDF5 file failed (disk full?)");
    if (!m.close_file()) fail("closing the HDF5 file failed (disk full?)");
    if (!fsync_path(m.temp_path, O_RDONLY))
        fail(std::string("fsync of the temporary file failed (") + std::strerror(errno) + ")");
    if (::rename(m.temp_path.c_str(), m.target_path.c_str()) != 0)
        fail(std::string("rename onto the final path failed (") + std::strerror(errno) + ")");
    m.committed = true;
    m.unfinished.reset();
    // The rename is durable only once the folder entry is on disk. Some filesystems refuse to
    // fsync a folder; the data itself is already safe, so that is not an error.
    (void)fsync_path(m.dir, O_RDONLY | O_DIRECTORY);
}

}  // namespace embgeom
