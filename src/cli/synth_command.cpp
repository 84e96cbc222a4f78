#include "cli/commands.hpp"
#include "core/cpu_affinity.hpp"
#include "core/openmp_threads.hpp"
#include "synth/synth.hpp"

namespace embgeom {

int run_synth_command(const CliState& st, std::ostream& out) {
    // A thread per core this process may use, a CPU quota counted (OpenMP's default ignores it).
    const OpenMpThreads threads(default_thread_count());
    const SynthTable t = synthesize(st.synth);
    write_synth_file(t, st.synth, st.synth_output);
    out << "embgeom synth: wrote " << st.synth_output << ": /embeddings [" << t.rows << ", "
        << t.dims << "] " << to_string(st.synth.dtype) << " (" << to_string(st.synth.kind)
        << ", seed " << st.synth.seed << "), /vocab, /bias";
    if (st.synth.kind == SynthKind::kTrained)
        out << ", /truth/undertrained (" << t.undertrained.size()
            << " tokens), /truth/duplicate_pairs (" << t.duplicate_pairs.size() / 2 << " pairs)";
    out << "\n";
    return 0;
}

}  // namespace embgeom
