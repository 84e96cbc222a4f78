#include "cli/commands.hpp"
#include "pipeline/analyze_job.hpp"

namespace embgeom {

int run_analyze_command(const CliState& st, std::ostream& out) {
    run_analyze(st.analyze, out);
    return 0;
}

}  // namespace embgeom
