#include "io/hdf5_handle.hpp"

#include <sstream>

namespace embgeom::io {

namespace {

// HDF5 closes whatever is still open when the process exits (its atexit handler). A result file
// whose close failed (the disk filled while it flushed) stays half-closed in HDF5's tables, and
// 1.10's handler then crashes on it (H5F__close_cb): a clean "one line, exit 4" became a
// segmentation fault after the line. embgeom closes or removes every file it writes before it
// exits, so the handler has nothing to do; H5dont_atexit must come before any other HDF5 call,
// hence a static initialiser.
const bool kNoHdf5AtExit = [] {
    H5dont_atexit();
    return true;
}();

}  // namespace

std::recursive_mutex& hdf5_mutex() {
    static std::recursive_mutex m;
    return m;
}

void silence_hdf5_errors() noexcept {
    thread_local bool done = false;
    if (done) return;
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
}

namespace {

struct FloatFields {
    std::size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0, ebias = 0, precision = 0;
    int offset = -1;
    bool ok = false;
};

FloatFields float_fields(hid_t type) noexcept {
    FloatFields f;
    if (H5Tget_class(type) != H5T_FLOAT) return f;
    if (H5Tget_fields(type, &f.spos, &f.epos, &f.esize, &f.mpos, &f.msize) < 0) return f;
    f.ebias = H5Tget_ebias(type);
    f.precision = H5Tget_precision(type);
    f.offset = H5Tget_offset(type);
    const H5T_order_t order = H5Tget_order(type);
    // Implied leading mantissa bit and a plain byte order: anything else (VAX order, explicit
    // mantissa bit) is not a layout our converters or HDF5's fast paths understand.
    f.ok =
        H5Tget_norm(type) == H5T_NORM_IMPLIED && (order == H5T_ORDER_LE || order == H5T_ORDER_BE);
    return f;
}

}  // namespace

Float16Kind classify_float16(hid_t type) noexcept {
    if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != 2) return Float16Kind::kNone;
    const FloatFields f = float_fields(type);
    if (!f.ok || f.precision != 16 || f.offset != 0 || f.spos != 15 || f.mpos != 0)
        return Float16Kind::kNone;
    if (f.epos == 10 && f.esize == 5 && f.msize == 10 && f.ebias == 15) return Float16Kind::kHalf;
    if (f.epos == 7 && f.esize == 8 && f.msize == 7 && f.ebias == 127)
        return Float16Kind::kBFloat16;
    return Float16Kind::kNone;
}

bool is_ieee_float(hid_t type, std::size_t size) noexcept {
    if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != size) return false;
    const FloatFields f = float_fields(type);
    if (!f.ok || f.offset != 0 || f.mpos != 0) return false;
    if (size == 4)
        return f.precision == 32 && f.spos == 31 && f.epos == 23 && f.esize == 8 && f.msize == 23 &&
               f.ebias == 127;
    if (size == 8)
        return f.precision == 64 && f.spos == 63 && f.epos == 52 && f.esize == 11 &&
               f.msize == 52 && f.ebias == 1023;
    return false;
}

std::string type_name(hid_t type) {
    const std::size_t size = H5Tget_size(type);
    switch (H5Tget_class(type)) {
        case H5T_INTEGER: {
            const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
            if (size == 1 || size == 2 || size == 4 || size == 8)
                return (is_signed ? "int" : "uint") + std::to_string(size * 8);
            return "other";
        }
        case H5T_FLOAT:
            if (size == 2) {
                const Float16Kind k = classify_float16(type);
                if (k == Float16Kind::kHalf) return "float16";
                if (k == Float16Kind::kBFloat16) return "bfloat16";
                return "other";
            }
            if (is_ieee_float(type, 4)) return "float32";
            if (is_ieee_float(type, 8)) return "float64";
            return "other";
        case H5T_STRING: {
            const htri_t vlen = H5Tis_variable_str(type);
            const char* cset = H5Tget_cset(type) == H5T_CSET_UTF8 ? "utf-8" : "ascii";
            if (vlen > 0) return std::string("string(vlen, ") + cset + ")";
            if (vlen == 0) return "string(fixed " + std::to_string(size) + ", " + cset + ")";
            return "other";
        }
        case H5T_COMPOUND: return "compound";
        default: return "other";
    }
}

std::string normalize_path(const std::string& name) {
    std::string out;
    std::size_t i = 0;
    while (i < name.size()) {
        while (i < name.size() && name[i] == '/') ++i;
        const std::size_t j = name.find('/', i);
        const std::size_t end = j == std::string::npos ? name.size() : j;
        if (end > i) out += "/" + name.substr(i, end - i);
        i = end;
    }
    return out.empty() ? "/" : out;
}

std::size_t next_prime(std::size_t n) {
    for (;; ++n) {
        bool prime = n >= 2;
        for (std::size_t d = 2; d * d <= n && prime; ++d) prime = n % d != 0;
        if (prime) return n;
    }
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
    std::ostringstream s;
    s << "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    s << "]";
    return s.str();
}

}  // namespace embgeom::io
