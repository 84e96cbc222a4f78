#include "io/input_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "embgeom/errors.hpp"

namespace embgeom::io {

namespace {

// Lock when the filesystem supports it, carry on when it does not (NFS, some Lustre mounts):
// HDF5 1.10.8's default fails every open there.
PlistHandle make_input_fapl(bool use_locking) {
    PlistHandle fapl(H5Pcreate(H5P_FILE_ACCESS));
    if (fapl) {
        H5Pset_file_locking(fapl.get(), use_locking, true);
        // A file whose objects are still open elsewhere cannot be closed half-way.
        H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
    }
    return fapl;
}

std::string join_candidates(const std::vector<std::string>& names) {
    constexpr std::size_t kShown = 10;
    std::string s;
    for (std::size_t i = 0; i < names.size() && i < kShown; ++i) s += (i ? ", " : "") + names[i];
    if (names.size() > kShown) s += ", ... (" + std::to_string(names.size() - kShown) + " more)";
    return s;
}

bool fits_use(const DatasetInfo& d, DatasetUse use) {
    switch (use) {
        case DatasetUse::kTable: return d.usable_as_table;
        case DatasetUse::kStrings: return d.usable_as_vocab;
        case DatasetUse::kVector:
            return (d.type == "float16" || d.type == "bfloat16" || d.type == "float32" ||
                    d.type == "float64") &&
                   (d.shape.size() == 1 ||
                    (d.shape.size() == 2 && (d.shape[0] == 1 || d.shape[1] == 1)));
    }
    return false;
}

[[noreturn]] void throw_missing(hid_t file_id, const std::string& file, const std::string& path,
                                DatasetUse use, const std::string& why) {
    std::vector<std::string> names;
    try {
        for (const DatasetInfo& d : collect_datasets(file_id))
            if (fits_use(d, use)) names.push_back(d.path);
    } catch (const std::exception&) {
        // The suggestion list is a courtesy; the missing dataset is the error to report.
    }
    const char* kind = use == DatasetUse::kTable    ? "2-D float"
                       : use == DatasetUse::kVector ? "1-D float"
                                                    : "1-D string";
    std::string msg = file + ": no dataset '" + path + "'" + why;
    if (names.empty())
        msg += std::string(" (this file has no ") + kind + " datasets)";
    else
        msg += std::string(" (") + kind + " datasets in this file: " + join_candidates(names) + ")";
    throw InputError(msg);
}

}  // namespace

FileHandle open_input_file(const std::string& file) {
    silence_hdf5_errors();
    struct stat st;
    if (::stat(file.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) throw InputError(file + ": no such file");
        throw InputError(file + ": cannot access (" + std::strerror(errno) + ")");
    }
    if (S_ISDIR(st.st_mode)) throw InputError(file + ": is a folder, not an HDF5 file");
    if (!S_ISREG(st.st_mode)) throw InputError(file + ": is not a regular file");
    if (::access(file.c_str(), R_OK) != 0)
        throw InputError(file + ": cannot read (" + std::strerror(errno) + ")");
    const htri_t is_hdf5 = H5Fis_hdf5(file.c_str());
    if (is_hdf5 == 0) throw InputError(file + ": not an HDF5 file");

    PlistHandle fapl = make_input_fapl(true);
    if (!fapl) throw InputError(file + ": cannot open (HDF5 could not make a file access list)");
    FileHandle f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, fapl.get()));
    if (f) return f;
    // Tell a file that is locked by its writer apart from a damaged one.
    PlistHandle no_lock = make_input_fapl(false);
    if (no_lock && FileHandle(H5Fopen(file.c_str(), H5F_ACC_RDONLY, no_lock.get())))
        throw InputError(file +
                         ": cannot open (another process holds a lock on it; is it still being "
                         "written?)");
    throw InputError(file + ": cannot open (corrupt or truncated HDF5 file)");
}

DatasetHandle open_input_dataset(hid_t file_id, const std::string& file, const std::string& path,
                                 DatasetUse use, hid_t dapl) {
    silence_hdf5_errors();
    if (path == "/") throw InputError(file + ": '/' is the root group, not a dataset");
    // Walk the path link by link: H5Lexists fails (rather than answering no) when a parent is
    // missing, and this is where external and user-defined links are refused.
    std::size_t pos = 0;
    while (pos != std::string::npos) {
        pos = path.find('/', pos + 1);
        const std::string prefix = path.substr(0, pos);
        if (H5Lexists(file_id, prefix.c_str(), H5P_DEFAULT) <= 0)
            throw_missing(file_id, file, path, use, "");
        H5L_info_t link;
        if (H5Lget_info(file_id, prefix.c_str(), &link, H5P_DEFAULT) < 0)
            throw_missing(file_id, file, path, use, "");
        if (link.type == H5L_TYPE_EXTERNAL)
            throw InputError(file + ":" + prefix +
                             " is an external link to another file; embgeom does not follow "
                             "those (open the target file instead)");
        if (link.type != H5L_TYPE_HARD && link.type != H5L_TYPE_SOFT)
            throw InputError(file + ":" + prefix + " is a user-defined link; not followed");
        H5O_info_t info;
        if (H5Oget_info_by_name2(file_id, prefix.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
            throw_missing(file_id, file, path, use, " (dangling soft link)");
        if (pos != std::string::npos && info.type != H5O_TYPE_GROUP)
            throw_missing(file_id, file, path, use, " (" + prefix + " is not a group)");
        if (pos == std::string::npos) {
            if (info.type == H5O_TYPE_GROUP)
                throw InputError(file + ":" + path + " is a group, not a dataset");
            if (info.type != H5O_TYPE_DATASET)
                throw InputError(file + ":" + path + " is a named datatype, not a dataset");
        }
    }
    DatasetHandle ds(H5Dopen2(file_id, path.c_str(), dapl));
    if (!ds) throw InputError(file + ":" + path + ": cannot open (corrupt dataset header?)");
    return ds;
}

std::string storage_problem(hid_t dataset) {
    PlistHandle dcpl(H5Dget_create_plist(dataset));
    if (!dcpl) return "has an unreadable creation property list (corrupt?)";
    const H5D_layout_t layout = H5Pget_layout(dcpl.get());
    if (layout == H5D_VIRTUAL)
        return "is a virtual dataset (it maps data from other files), which embgeom does not read";
    if (layout < 0) return "has an unknown storage layout (corrupt?)";
    const int external = H5Pget_external_count(dcpl.get());
    if (external != 0) return "keeps its data in external raw files, which embgeom does not read";
    const int nfilters = H5Pget_nfilters(dcpl.get());
    if (nfilters < 0) return "has an unreadable filter pipeline (corrupt?)";
    for (int i = 0; i < nfilters; ++i) {
        unsigned flags = 0, config = 0;
        std::size_t nelmts = 0;
        char name[128] = {0};
        const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags,
                                               &nelmts, nullptr, sizeof name, name, &config);
        if (id < 0) return "has an unreadable filter pipeline (corrupt?)";
        const bool avail = H5Zfilter_avail(id) > 0;
        unsigned info = 0;
        if (!avail || H5Zget_filter_info(id, &info) < 0 ||
            !(info & H5Z_FILTER_CONFIG_DECODE_ENABLED)) {
            const std::string label = name[0] ? std::string("'") + name + "'" : "unnamed";
            return "is compressed with filter " + label + " (id " + std::to_string(id) +
                   "), which this HDF5 library cannot decode (install its plugin and set "
                   "HDF5_PLUGIN_PATH, or rewrite the dataset with gzip)";
        }
    }
    return "";
}

std::vector<std::int64_t> dataspace_dims(hid_t space) {
    const int rank = H5Sget_simple_extent_ndims(space);
    if (rank <= 0) return {};
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    return std::vector<std::int64_t>(dims.begin(), dims.end());
}

std::string table_problem(hid_t dataset, StoredDtype* dtype) {
    DataspaceHandle space(H5Dget_space(dataset));
    if (!space) return "has an unreadable dataspace (corrupt?)";
    const H5S_class_t sclass = H5Sget_simple_extent_type(space.get());
    const int rank = sclass == H5S_SIMPLE ? H5Sget_simple_extent_ndims(space.get()) : 0;
    if (rank != 2)
        return "has rank " + std::to_string(rank) + ", expected a 2-D [tokens, dims] table";
    const std::vector<std::int64_t> dims = dataspace_dims(space.get());

    DatatypeHandle type(H5Dget_type(dataset));
    if (!type) return "has an unreadable datatype (corrupt?)";
    const std::string tname = type_name(type.get());
    StoredDtype dt;
    if (tname == "float16")
        dt = StoredDtype::kFloat16;
    else if (tname == "bfloat16")
        dt = StoredDtype::kBFloat16;
    else if (tname == "float32")
        dt = StoredDtype::kFloat32;
    else if (tname == "float64")
        dt = StoredDtype::kFloat64;
    else
        return "has type " + tname + ", expected float16/bfloat16/float32/float64";

    if (dims[0] == 0) return "has zero rows (shape " + shape_string(dims) + ")";
    if (dims[1] == 0) return "has zero columns (shape " + shape_string(dims) + ")";
    // Row offsets and byte counts are int64 everywhere downstream; hsize_t is wider.
    if (dims[0] < 0 || dims[1] < 0 || dims[1] > (std::int64_t{1} << 40) ||
        dims[0] > (std::int64_t{1} << 60) / dims[1])
        return "has an impossible shape " + shape_string(dims) + " (corrupt?)";

    const std::string storage = storage_problem(dataset);
    if (!storage.empty()) return storage;
    if (dtype) *dtype = dt;
    return "";
}

}  // namespace embgeom::io
