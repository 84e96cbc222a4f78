#include <iomanip>
#include <sstream>

#include "cli/commands.hpp"
#include "io/table_reader.hpp"

namespace embgeom {
namespace {

template <class T>
std::string join(const std::vector<T>& v, const char* sep) {
    std::ostringstream s;
    for (std::size_t i = 0; i < v.size(); ++i) s << (i ? sep : "") << v[i];
    return s.str();
}

}  // namespace

int run_inspect_command(const CliState& st, std::ostream& out) {
    const std::vector<DatasetInfo> all = list_datasets(st.inspect_file);
    out << st.inspect_file << ": " << all.size() << " datasets\n";
    out << std::left << std::setw(32) << "  dataset" << std::setw(18) << "shape" << std::setw(24)
        << "type" << std::setw(28) << "layout" << "use as\n";
    for (const DatasetInfo& d : all) {
        std::string layout = d.layout;
        if (!d.chunk.empty()) layout += " [" + join(d.chunk, "x") + "]";
        if (!d.filters.empty()) layout += " " + join(d.filters, "+");
        const bool vector = d.shape.size() == 1 && d.type.rfind("float", 0) == 0;
        const char* use = d.usable_as_table   ? "--dataset"
                          : d.usable_as_vocab ? "--vocab"
                          : vector            ? "--bias-dataset"
                                              : "";
        out << "  " << std::setw(30) << d.path << std::setw(18) << ("[" + join(d.shape, ", ") + "]")
            << std::setw(24) << d.type << std::setw(28) << layout << use << "\n";
    }
    return 0;
}

}  // namespace embgeom
