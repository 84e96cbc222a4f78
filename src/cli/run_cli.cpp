#include <CLI/CLI.hpp>
#include <iostream>
#include <sstream>
#include <string>

#include "cli/cli.hpp"
#include "cli/commands.hpp"
#include "embgeom/errors.hpp"
#include "io/unfinished_files.hpp"
#include "scaleout/job_ranks.hpp"
#include "scaleout/launcher_env.hpp"

namespace embgeom {

namespace {

// Prints the error and returns its exit code. In an MPI job of several ranks every rank first
// agrees on the failure (unless it was agreed already), so that no rank waits for a failed one,
// and only rank 0 prints the agreed error.
int report_error(ExitCode code, const std::string& message, bool agreed) {
    const scaleout::JobRanks& ranks = scaleout::job_ranks();
    std::string text = message;
    if (ranks.several() && !agreed) try {
            scaleout::agree(code, message);
        } catch (const scaleout::RanksAgreedError& e) {
            code = e.code();
            text = e.what();
        }
    // One write of the whole line: copies started side by side (each a job of one rank) share
    // the stream, and lines written in parts interleave there.
    if (ranks.root()) std::cerr << ("embgeom: error: " + text + "\n") << std::flush;
    return static_cast<int>(code);
}

// Runs the chosen subcommand. An MPI job of several ranks runs analyze only, and every rank
// then agrees that all succeeded before it reports success.
int run_subcommand(CLI::App& app, CliState& st) {
    const scaleout::JobRanks& ranks = scaleout::job_ranks();
    // Copies a launcher started that did not become one job (a launcher of another MPI than the
    // build's) would each run the whole job and race to write the same output.
    const std::string apart = scaleout::copies_apart_error(scaleout::copies_the_launcher_started(),
                                                           ranks.size, scaleout::mpi_library_version());
    if (!apart.empty()) throw UsageError(apart);
    // srun without an MPI plugin sets no launcher variable: its copies may be alone by design.
    const std::string srun_apart = scaleout::srun_copies_apart_notice(ranks.size);
    if (!srun_apart.empty() && app.got_subcommand("analyze"))
        std::cerr << ("embgeom: note: " + srun_apart + "\n") << std::flush;
    if (ranks.several() && !app.got_subcommand("analyze"))
        throw UsageError("only `embgeom analyze` runs as an MPI job of several ranks (this one has " +
                         std::to_string(ranks.size) + "); run the other commands without mpiexec");
    // The log and the summary are rank 0's; the other ranks' would repeat them.
    std::ostringstream quiet;
    std::ostream& out = ranks.root() ? std::cout : quiet;
    int code = static_cast<int>(ExitCode::kUsage);
    if (app.got_subcommand("analyze")) code = run_analyze_command(st, out);
    else if (app.got_subcommand("synth")) code = run_synth_command(st, out);
    else if (app.got_subcommand("inspect")) code = run_inspect_command(st, out);
    else if (app.got_subcommand("demo")) code = run_demo_command(st, out);
    else if (app.got_subcommand("devices")) code = run_devices_command(st, out);
    if (ranks.several()) scaleout::agree();
    return code;
}

}  // namespace

int run_cli(int argc, char** argv) {
    remove_unfinished_files_on_signals();
    CLI::App app("embgeom: the geometry of embedding tables (norms, centroid, all-pairs cosines, "
                 "outliers), on CUDA or the CPU");
    CliState st;
    build_cli(app, st);
    try {
        try {
            parse_cli(app, st, std::vector<std::string>(argv + 1, argv + argc));
        } catch (const CLI::ParseError& e) {
            if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
            return report_error(ExitCode::kUsage, std::string(e.what()) + " (see embgeom --help)",
                                false);
        }
        return run_subcommand(app, st);
    } catch (const scaleout::RanksAgreedError& e) {
        return report_error(e.code(), e.what(), true);
    } catch (...) {
        const Failure f = failure_of(std::current_exception());
        return report_error(f.code, f.message, false);
    }
}

}  // namespace embgeom
