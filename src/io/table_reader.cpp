#include "io/table_reader.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

#include "embgeom/errors.hpp"
#include "io/half_float.hpp"
#include "io/input_file.hpp"

namespace embgeom {

using namespace io;

const char* to_string(StoredDtype t) {
    switch (t) {
        case StoredDtype::kFloat16: return "float16";
        case StoredDtype::kBFloat16: return "bfloat16";
        case StoredDtype::kFloat32: return "float32";
        case StoredDtype::kFloat64: return "float64";
    }
    return "?";
}

namespace {

// A chunk cache that holds at least one band of chunks spanning every column: row-block reads
// then decompress each chunk once, even when block edges cut through chunks. A chunk bigger
// than the cache would be decompressed anew on every read touching it. The band is capped so a
// hostile chunk shape cannot make us reserve unbounded memory.
PlistHandle make_table_dapl(hid_t dataset, std::int64_t cols, std::uint64_t cache_bytes) {
    PlistHandle dapl(H5Pcreate(H5P_DATASET_ACCESS));
    PlistHandle dcpl(H5Dget_create_plist(dataset));
    DatatypeHandle type(H5Dget_type(dataset));
    if (!dapl || !dcpl || !type || H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return dapl;
    hsize_t chunk[2] = {0, 0};
    if (H5Pget_chunk(dcpl.get(), 2, chunk) != 2 || chunk[0] == 0 || chunk[1] == 0) return dapl;
    const std::uint64_t chunk_bytes = chunk[0] * chunk[1] * H5Tget_size(type.get());
    const std::uint64_t chunks_per_band =
        (static_cast<std::uint64_t>(cols) + chunk[1] - 1) / chunk[1];
    constexpr std::uint64_t kMaxBand = 1ull << 30;
    const std::uint64_t band = std::min(chunk_bytes * chunks_per_band, kMaxBand);
    const std::uint64_t nbytes = std::max<std::uint64_t>(cache_bytes, band);
    const std::uint64_t fit =
        std::max<std::uint64_t>(1, nbytes / std::max<std::uint64_t>(chunk_bytes, 1));
    // ~100 slots per cached chunk keeps hash collisions (which evict) rare.
    const std::size_t nslots = next_prime(std::clamp<std::uint64_t>(fit * 100, 521, 1000003));
    H5Pset_chunk_cache(dapl.get(), nslots, nbytes, H5D_CHUNK_CACHE_W0_DEFAULT);
    return dapl;
}

[[noreturn]] void dataset_error(const std::string& file, const std::string& path,
                                const std::string& problem) {
    throw InputError(file + ":" + path + " " + problem);
}

}  // namespace

/// A read-only file mapping (RAII).
struct FileMapping {
    void* base = MAP_FAILED;
    std::size_t length = 0;
    FileMapping() = default;
    FileMapping(const FileMapping&) = delete;
    FileMapping& operator=(const FileMapping&) = delete;
    ~FileMapping() {
        if (base != MAP_FAILED) ::munmap(base, length);
    }
};

struct Hdf5TableReader::Impl {
    std::string file;
    std::string path;
    FileHandle fid;  // declared before the dataset: destroyed after it
    DatasetHandle did;
    DataspaceHandle file_space;
    DatatypeHandle half_mem_type;  // 16-bit types: the file type in native byte order
    StoredDtype dtype = StoredDtype::kFloat32;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    bool mapping_tried = false;
    FileMapping mapping;
    const float* mapped = nullptr;
};

Hdf5TableReader::Hdf5TableReader(const std::string& file, const std::string& dataset,
                                 std::uint64_t chunk_cache_bytes)
    : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.file = file;
    m.path = normalize_path(dataset);
    m.fid = open_input_file(file);
    {
        DatasetHandle probe = open_input_dataset(m.fid.get(), file, m.path, DatasetUse::kTable);
        const std::string problem = table_problem(probe.get(), &m.dtype);
        if (!problem.empty()) dataset_error(file, m.path, problem);
        DataspaceHandle space(H5Dget_space(probe.get()));
        const std::vector<std::int64_t> dims = dataspace_dims(space.get());
        m.rows = dims[0];
        m.cols = dims[1];
        PlistHandle dapl = make_table_dapl(probe.get(), m.cols, chunk_cache_bytes);
        probe.reset();
        m.did =
            DatasetHandle(H5Dopen2(m.fid.get(), m.path.c_str(), dapl ? dapl.get() : H5P_DEFAULT));
    }
    if (!m.did) dataset_error(file, m.path, "cannot be opened (corrupt dataset header?)");
    m.file_space = DataspaceHandle(H5Dget_space(m.did.get()));
    if (!m.file_space) dataset_error(file, m.path, "has an unreadable dataspace (corrupt?)");
    if (m.dtype == StoredDtype::kFloat16 || m.dtype == StoredDtype::kBFloat16) {
        // Same bit layout as the file, host byte order: HDF5 only swaps bytes (if needed) and we
        // widen the raw 16-bit patterns ourselves.
        DatatypeHandle ftype(H5Dget_type(m.did.get()));
        m.half_mem_type = DatatypeHandle(ftype ? H5Tcopy(ftype.get()) : H5I_INVALID_HID);
        if (!m.half_mem_type ||
            H5Tset_order(m.half_mem_type.get(), H5Tget_order(H5T_NATIVE_UINT16)) < 0)
            dataset_error(file, m.path, "has a 16-bit float type HDF5 cannot copy (corrupt?)");
    }
}

Hdf5TableReader::~Hdf5TableReader() = default;

namespace {

// The conditions under which the stored bytes are the float32 rows as used, at H5Dget_offset.
bool stored_as_used(hid_t fid, hid_t did) {
    PlistHandle dcpl(H5Dget_create_plist(did));
    if (!dcpl || H5Pget_layout(dcpl.get()) != H5D_CONTIGUOUS || H5Pget_nfilters(dcpl.get()) != 0 ||
        H5Pget_external_count(dcpl.get()) != 0)
        return false;
    DatatypeHandle type(H5Dget_type(did));
    if (!type || H5Tequal(type.get(), H5T_NATIVE_FLOAT) <= 0 || H5Tget_size(H5T_NATIVE_FLOAT) != 4)
        return false;
    PlistHandle fcpl(H5Fget_create_plist(fid));
    hsize_t userblock = 1;
    if (!fcpl || H5Pget_userblock(fcpl.get(), &userblock) < 0 || userblock != 0) return false;
    PlistHandle fapl(H5Fget_access_plist(fid));
    return fapl && H5Pget_driver(fapl.get()) == H5FD_SEC2;
}

}  // namespace

const float* Hdf5TableReader::mapped_rows() {
    Impl& m = *impl_;
    if (m.mapping_tried) return m.mapped;
    m.mapping_tried = true;
    std::lock_guard<std::recursive_mutex> hdf5(io::hdf5_mutex());
    if (!stored_as_used(m.fid.get(), m.did.get())) return nullptr;
    const haddr_t offset = H5Dget_offset(m.did.get());
    const std::uint64_t bytes = std::uint64_t(m.rows) * std::uint64_t(m.cols) * sizeof(float);
    if (offset == HADDR_UNDEF || offset % alignof(float) != 0 || bytes == 0) return nullptr;
    const int fd = ::open(m.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nullptr;
    struct stat st;
    const long page = ::sysconf(_SC_PAGESIZE);
    if (::fstat(fd, &st) != 0 || page <= 0 || std::uint64_t(st.st_size) < offset + bytes) {
        ::close(fd);
        return nullptr;
    }
    const std::uint64_t start = offset / std::uint64_t(page) * std::uint64_t(page);
    FileMapping map;
    map.length = static_cast<std::size_t>(offset + bytes - start);
    map.base = ::mmap(nullptr, map.length, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
    ::close(fd);  // the mapping keeps the file open
    if (map.base == MAP_FAILED) return nullptr;
    (void)::madvise(map.base, map.length, MADV_WILLNEED);  // read ahead when the file is cold
    const float* rows =
        reinterpret_cast<const float*>(static_cast<const char*>(map.base) + (offset - start));
    // The first and the last row, as HDF5 reads them: a wrong offset never goes unnoticed.
    std::vector<float> check(static_cast<std::size_t>(m.cols));
    const std::size_t row_bytes = sizeof(float) * static_cast<std::size_t>(m.cols);
    for (const std::int64_t r : {std::int64_t{0}, m.rows - 1}) {
        read_rows(r, 1, check.data());
        if (std::memcmp(check.data(), rows + r * m.cols, row_bytes) != 0) return nullptr;
    }
    std::swap(m.mapping.base, map.base);
    std::swap(m.mapping.length, map.length);
    m.mapped = rows;
    return m.mapped;
}

std::int64_t Hdf5TableReader::rows() const { return impl_->rows; }
std::int64_t Hdf5TableReader::cols() const { return impl_->cols; }
StoredDtype Hdf5TableReader::stored_dtype() const { return impl_->dtype; }
std::string Hdf5TableReader::describe() const { return impl_->file + ":" + impl_->path; }

void Hdf5TableReader::read_rows(std::int64_t first, std::int64_t count, float* out) {
    Impl& m = *impl_;
    EMBGEOM_EXPECTS(first >= 0 && count >= 0 && first <= m.rows && count <= m.rows - first,
                    "row range inside the table");
    if (count == 0) return;
    EMBGEOM_EXPECTS(out != nullptr, "output buffer");
    const std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    silence_hdf5_errors();
    const auto fail = [&] {
        throw InputError(describe() + ": read failed at rows " + std::to_string(first) + ".." +
                         std::to_string(first + count - 1) + " (corrupt data?)");
    };
    const hsize_t start[2] = {static_cast<hsize_t>(first), 0};
    const hsize_t extent[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(m.cols)};
    if (H5Sselect_hyperslab(m.file_space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr) <
        0)
        fail();
    DataspaceHandle mem_space(H5Screate_simple(2, extent, nullptr));
    if (!mem_space) fail();

    if (!m.half_mem_type) {
        // float32 and float64: HDF5 converts (byte order, and double -> float with overflow to
        // inf).
        if (H5Dread(m.did.get(), H5T_NATIVE_FLOAT, mem_space.get(), m.file_space.get(), H5P_DEFAULT,
                    out) < 0)
            fail();
        return;
    }
    // Read the 16-bit patterns into the front half of out, then widen in place from the back:
    // float i (bytes 4i..4i+3) only overwrites patterns 2i and 2i+1, which were already used.
    if (H5Dread(m.did.get(), m.half_mem_type.get(), mem_space.get(), m.file_space.get(),
                H5P_DEFAULT, out) < 0)
        fail();
    const std::size_t n = static_cast<std::size_t>(count) * static_cast<std::size_t>(m.cols);
    unsigned char* bytes = reinterpret_cast<unsigned char*>(out);
    const bool bf16 = m.dtype == StoredDtype::kBFloat16;
    for (std::size_t i = n; i-- > 0;) {
        std::uint16_t h;
        std::memcpy(&h, bytes + 2 * i, sizeof h);
        const float f = bf16 ? bfloat16_to_float(h) : half_to_float(h);
        std::memcpy(bytes + 4 * i, &f, sizeof f);
    }
}

std::vector<double> read_vector(const std::string& file, const std::string& dataset,
                                std::int64_t expected_len) {
    const std::string path = normalize_path(dataset);
    FileHandle f = open_input_file(file);
    DatasetHandle ds = open_input_dataset(f.get(), file, path, DatasetUse::kVector);
    DatatypeHandle type(H5Dget_type(ds.get()));
    DataspaceHandle space(H5Dget_space(ds.get()));
    if (!type || !space) dataset_error(file, path, "has an unreadable type or shape (corrupt?)");
    if (H5Tget_class(type.get()) != H5T_FLOAT)
        dataset_error(file, path,
                      "has type " + type_name(type.get()) + ", expected a float vector");
    const std::vector<std::int64_t> dims = dataspace_dims(space.get());
    std::int64_t n = -1;
    if (dims.size() == 1)
        n = dims[0];
    else if (dims.size() == 2 && dims[0] == 1)
        n = dims[1];
    else if (dims.size() == 2 && dims[1] == 1)
        n = dims[0];
    if (n < 0 || (expected_len >= 0 && n != expected_len)) {
        const std::string want =
            expected_len >= 0 ? "[" + std::to_string(expected_len) + "] (the table's dimension)"
                              : "a 1-D vector";
        dataset_error(file, path, "has shape " + shape_string(dims) + ", expected " + want);
    }
    const std::string storage = storage_problem(ds.get());
    if (!storage.empty()) dataset_error(file, path, storage);
    std::vector<double> v(static_cast<std::size_t>(n));
    // Any float layout (16-bit ones included) converts exactly to double in HDF5's soft path.
    if (n > 0 && H5Dread(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
        dataset_error(file, path, "read failed (corrupt data?)");
    return v;
}

namespace {

// Frees what H5Dread allocated for variable-length strings, whatever happens after the read.
struct VlenReclaim {
    hid_t type;
    hid_t space;
    std::vector<char*>* buf;
    ~VlenReclaim() { H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf->data()); }
};

std::string trim_fixed(const char* p, std::size_t size, H5T_str_t pad) {
    if (pad == H5T_STR_SPACEPAD) {
        std::size_t n = size;
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0')) --n;
        return std::string(p, n);
    }
    // Null-terminated and null-padded: the string ends at the first NUL (or fills the field).
    const void* nul = std::memchr(p, '\0', size);
    return std::string(p, nul ? static_cast<const char*>(nul) - p : size);
}

}  // namespace

std::vector<std::string> read_string_dataset(const std::string& file, const std::string& dataset) {
    const std::string path = normalize_path(dataset);
    FileHandle f = open_input_file(file);
    DatasetHandle ds = open_input_dataset(f.get(), file, path, DatasetUse::kStrings);
    DatatypeHandle type(H5Dget_type(ds.get()));
    DataspaceHandle space(H5Dget_space(ds.get()));
    if (!type || !space) dataset_error(file, path, "has an unreadable type or shape (corrupt?)");
    if (H5Tget_class(type.get()) != H5T_STRING)
        dataset_error(
            file, path,
            "has type " + type_name(type.get()) + ", expected strings (one token per row)");
    const std::vector<std::int64_t> dims = dataspace_dims(space.get());
    if (dims.size() != 1)
        dataset_error(file, path,
                      "has shape " + shape_string(dims) + ", expected a 1-D list of strings");
    const H5T_cset_t cset = H5Tget_cset(type.get());
    if (cset != H5T_CSET_ASCII && cset != H5T_CSET_UTF8)
        dataset_error(file, path, "has a string encoding other than ASCII or UTF-8");
    const std::string storage = storage_problem(ds.get());
    if (!storage.empty()) dataset_error(file, path, storage);

    // A hostile header can claim any length; n * size must not overflow the buffer size below.
    constexpr std::int64_t kMaxStrings = std::int64_t{1} << 36;
    const std::size_t size = H5Tget_size(type.get());
    if (dims[0] < 0 || dims[0] > kMaxStrings || size == 0 || size > (std::size_t{1} << 20))
        dataset_error(file, path, "has an impossible size (corrupt?)");
    const std::size_t n = static_cast<std::size_t>(dims[0]);
    std::vector<std::string> out;
    if (n == 0) return out;
    out.reserve(n);
    const htri_t vlen = H5Tis_variable_str(type.get());
    if (vlen < 0) dataset_error(file, path, "has an unreadable string type (corrupt?)");
    if (vlen > 0) {
        DatatypeHandle mem(H5Tcopy(H5T_C_S1));
        if (!mem || H5Tset_size(mem.get(), H5T_VARIABLE) < 0 || H5Tset_cset(mem.get(), cset) < 0)
            dataset_error(file, path, "cannot be read (HDF5 type setup failed)");
        std::vector<char*> buf(n, nullptr);
        // Before the read: a read that fails half-way may already have allocated some strings.
        VlenReclaim reclaim{mem.get(), space.get(), &buf};
        if (H5Dread(ds.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
            dataset_error(file, path, "read failed (corrupt data?)");
        for (char* s : buf) out.emplace_back(s ? s : "");
        return out;
    }
    const H5T_str_t pad = H5Tget_strpad(type.get());
    DatatypeHandle mem(H5Tcopy(type.get()));
    std::vector<char> raw(n * size);
    if (!mem || H5Dread(ds.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0)
        dataset_error(file, path, "read failed (corrupt data?)");
    for (std::size_t i = 0; i < n; ++i) out.push_back(trim_fixed(raw.data() + i * size, size, pad));
    return out;
}

std::vector<std::string> read_vocab_file(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            throw InputError(path + ": no such vocabulary file");
        throw InputError(path + ": cannot access vocabulary file (" + std::strerror(errno) + ")");
    }
    if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a folder, not a vocabulary file");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw InputError(path + ": cannot read vocabulary file (" + std::strerror(errno) + ")");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw InputError(path + ": read failed");
    std::string text = ss.str();
    // Editors on Windows like to start UTF-8 files with a byte-order mark; it is not part of
    // the first token.
    if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
    std::vector<std::string> tokens;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        std::size_t end = nl;
        if (end > pos && text[end - 1] == '\r') --end;
        tokens.emplace_back(text, pos, end - pos);
        pos = nl + 1;
    }
    return tokens;
}

}  // namespace embgeom
