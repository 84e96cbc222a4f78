// `embgeom inspect`: what is in an input file, and which datasets the analyzer could use.
#include <algorithm>

#include "embgeom/errors.hpp"
#include "io/input_file.hpp"

namespace embgeom {
namespace io {

namespace {

std::string filter_label(H5Z_filter_t id, const unsigned* cd, std::size_t ncd, const char* name) {
    switch (id) {
        case H5Z_FILTER_DEFLATE:
            return "gzip(" + (ncd > 0 ? std::to_string(cd[0]) : std::string("?")) + ")";
        case H5Z_FILTER_SHUFFLE: return "shuffle";
        case H5Z_FILTER_FLETCHER32: return "fletcher32";
        case H5Z_FILTER_SZIP: return "szip";
        case H5Z_FILTER_NBIT: return "nbit";
        case H5Z_FILTER_SCALEOFFSET: return "scaleoffset";
        default:
            if (name && *name) return name;
            return "filter(" + std::to_string(id) + ")";
    }
}

DatasetInfo describe_dataset(hid_t file_id, const std::string& path) {
    DatasetInfo info;
    info.path = path;
    info.type = "other";
    info.layout = "unreadable";
    DatasetHandle ds(H5Dopen2(file_id, path.c_str(), H5P_DEFAULT));
    if (!ds) return info;

    DataspaceHandle space(H5Dget_space(ds.get()));
    if (space) info.shape = dataspace_dims(space.get());
    DatatypeHandle type(H5Dget_type(ds.get()));
    if (type) info.type = type_name(type.get());

    PlistHandle dcpl(H5Dget_create_plist(ds.get()));
    if (dcpl) {
        switch (H5Pget_layout(dcpl.get())) {
            case H5D_COMPACT: info.layout = "compact"; break;
            case H5D_CONTIGUOUS: info.layout = "contiguous"; break;
            case H5D_CHUNKED: info.layout = "chunked"; break;
            case H5D_VIRTUAL: info.layout = "virtual"; break;
            default: break;
        }
        if (info.layout == "chunked") {
            hsize_t chunk[H5S_MAX_RANK];
            const int n = H5Pget_chunk(dcpl.get(), H5S_MAX_RANK, chunk);
            for (int i = 0; i < n; ++i) info.chunk.push_back(static_cast<std::int64_t>(chunk[i]));
        }
        if (H5Pget_external_count(dcpl.get()) > 0) info.layout += " (external files)";
        const int nfilters = H5Pget_nfilters(dcpl.get());
        for (int i = 0; i < nfilters; ++i) {
            unsigned flags = 0, config = 0, cd[8] = {0};
            std::size_t ncd = 8;
            char name[128] = {0};
            const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags,
                                                   &ncd, cd, sizeof name, name, &config);
            if (id >= 0)
                info.filters.push_back(filter_label(id, cd, std::min<std::size_t>(ncd, 8), name));
        }
    }

    info.usable_as_table = table_problem(ds.get(), nullptr).empty();
    info.usable_as_vocab = info.shape.size() == 1 && type &&
                           H5Tget_class(type.get()) == H5T_STRING &&
                           storage_problem(ds.get()).empty();
    return info;
}

herr_t collect_dataset_path(hid_t, const char* name, const H5O_info_t* info, void* op_data) {
    if (info->type == H5O_TYPE_DATASET && std::string(name) != ".")
        static_cast<std::vector<std::string>*>(op_data)->push_back(std::string("/") + name);
    return 0;
}

}  // namespace

std::vector<DatasetInfo> collect_datasets(hid_t file_id) {
    silence_hdf5_errors();
    std::vector<std::string> paths;
    // H5Ovisit follows hard links only, visits each object once (no cycles), and recurses into a
    // group right after visiting it: depth first, in name order.
    const herr_t st = H5Ovisit2(file_id, H5_INDEX_NAME, H5_ITER_INC, collect_dataset_path, &paths,
                                H5O_INFO_BASIC);
    if (st < 0) throw std::runtime_error("cannot walk the file's groups");
    std::vector<DatasetInfo> out;
    out.reserve(paths.size());
    for (const std::string& p : paths) out.push_back(describe_dataset(file_id, p));
    return out;
}

}  // namespace io

std::vector<DatasetInfo> list_datasets(const std::string& file) {
    io::FileHandle f = io::open_input_file(file);
    try {
        return io::collect_datasets(f.get());
    } catch (const std::runtime_error&) {
        throw InputError(file + ": cannot list its datasets (corrupt group structure?)");
    }
}

}  // namespace embgeom
