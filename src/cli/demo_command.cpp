#include <stdlib.h>

#include <algorithm>
#include <cstdlib>

#include "cli/commands.hpp"
#include "embgeom/errors.hpp"
#include "pipeline/analyze_job.hpp"
#include "synth/synth.hpp"

namespace embgeom {

int run_demo_command(const CliState& st, std::ostream& out) {
    std::string dir = st.demo_dir;
    if (dir.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/embgeom-demo-XXXXXX";
        if (!mkdtemp(templ.data())) throw ResourceError("demo: cannot create a folder under " + templ);
        dir = templ;
    }
    SynthSpec spec;
    spec.kind = SynthKind::kTrained;
    spec.rows = st.demo_rows;
    spec.dims = st.demo_dims;
    spec.seed = 20240601;
    const SynthTable table = synthesize(spec);
    const std::string input = dir + "/demo_table.h5";
    write_synth_file(table, spec, input);
    out << "embgeom demo: synthesized a trained-like table (" << table.rows << " x " << table.dims
        << ", " << table.undertrained.size() << " planted under-trained tokens, "
        << table.duplicate_pairs.size() / 2 << " planted near-duplicate pairs) in " << input << "\n";

    AnalyzeConfig cfg;
    cfg.input = input;
    cfg.dataset = "/embeddings";
    cfg.vocab_dataset = "/vocab";
    cfg.bias_dataset = "/bias";
    cfg.output = dir + "/demo_results.h5";
    cfg.threads = st.demo_threads;
    const AnalyzeReport report = run_analyze(cfg, out);

    const std::size_t u = table.undertrained.size();
    std::vector<std::int64_t> top(report.closest_to_centroid.begin(),
                                  report.closest_to_centroid.begin() +
                                      std::min(u, report.closest_to_centroid.size()));
    std::sort(top.begin(), top.end());
    std::size_t found = 0;
    for (std::int64_t id : table.undertrained) found += std::binary_search(top.begin(), top.end(), id);
    out << "embgeom demo: " << found << " of " << u << " planted under-trained tokens rank in the top "
        << u << " of /outliers/closest_to_centroid\n"
        << "  results: " << cfg.output << " (read them with h5py, or `embgeom inspect "
        << cfg.output << "`)\n";
    return found == u ? 0 : static_cast<int>(ExitCode::kRuntime);
}

}  // namespace embgeom
