#pragma once
// Private to src/io: owning HDF5 handles and helpers shared by the reader, the inspector and the
// result writer. Nothing here is part of the public API.
#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace embgeom::io {

/// Sole owner of one HDF5 identifier; Close is the H5*close function for its kind. Move-only.
/// Library-owned identifiers (H5T_NATIVE_FLOAT, H5P_DEFAULT, ...) are never wrapped.
template <herr_t (*Close)(hid_t)>
class Handle {
  public:
    Handle() = default;
    explicit Handle(hid_t id) noexcept : id_(id) {}
    ~Handle() { reset(); }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
    Handle& operator=(Handle&& o) noexcept {
        if (this != &o) {
            reset();
            id_ = std::exchange(o.id_, H5I_INVALID_HID);
        }
        return *this;
    }

    hid_t get() const noexcept { return id_; }
    bool valid() const noexcept { return id_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    /// Closes now and reports whether HDF5 accepted the close (a file close flushes, so a
    /// writer must check it); the handle is empty afterwards either way.
    bool close() noexcept {
        if (id_ < 0) return true;
        const herr_t st = Close(id_);
        id_ = H5I_INVALID_HID;
        return st >= 0;
    }
    void reset() noexcept { (void)close(); }

  private:
    hid_t id_ = H5I_INVALID_HID;
};

using FileHandle = Handle<H5Fclose>;
using GroupHandle = Handle<H5Gclose>;
using DatasetHandle = Handle<H5Dclose>;
using DataspaceHandle = Handle<H5Sclose>;
using DatatypeHandle = Handle<H5Tclose>;
using PlistHandle = Handle<H5Pclose>;
using AttributeHandle = Handle<H5Aclose>;
using ObjectHandle = Handle<H5Oclose>;  ///< opened with H5Oopen (group, dataset or named type)

/// Turns off HDF5's automatic printing of its error stack for the calling thread. The Debian
/// library is built thread-safe, where that setting is per thread, so every entry point calls
/// this (it is cheap after the first call on a thread). Our own messages replace the stack.
void silence_hdf5_errors() noexcept;

/// Serialises HDF5 calls that may run on different threads at once: Debian's HDF5 is built
/// without thread safety, and a BlockPrefetcher reads a table on a thread of its own while the
/// all-pairs engine may hand matrix tiles to a ResultFile. Held by Hdf5TableReader::read_rows and
/// by the block matrix writer (the only HDF5 calls made while a prefetcher runs).
std::recursive_mutex& hdf5_mutex();

/// Elements of a 16-bit float type as we recognise them by their bit fields.
enum class Float16Kind { kNone, kHalf, kBFloat16 };

/// kHalf for IEEE binary16 (sign 15, exponent 10..14 bias 15, mantissa 0..9), kBFloat16 for
/// the top half of an IEEE binary32 (sign 15, exponent 7..14 bias 127, mantissa 0..6), kNone
/// for any other layout. Either byte order qualifies.
Float16Kind classify_float16(hid_t type) noexcept;

/// True for 4- or 8-byte floats with the IEEE binary32/binary64 layout (either byte order).
bool is_ieee_float(hid_t type, std::size_t size) noexcept;

/// The name `embgeom inspect` and our messages use for a datatype: "float16", "bfloat16",
/// "float32", "float64", "int8".."int64", "uint8".."uint64", "string(fixed N, ascii)",
/// "string(vlen, utf-8)", "compound" or "other".
std::string type_name(hid_t type);

/// "/a/b" for "a/b", "/a/b" and "//a//b/"; "/" for the empty name.
std::string normalize_path(const std::string& name);

/// Smallest prime >= n (HDF5 wants a prime number of chunk-cache hash slots).
std::size_t next_prime(std::size_t n);

/// "[3, 4]"
std::string shape_string(const std::vector<std::int64_t>& shape);

}  // namespace embgeom::io
