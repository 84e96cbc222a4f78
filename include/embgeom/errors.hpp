#pragma once
// Error types and the documented exit codes. Every failure that reaches the user is one of these,
// carrying a one-line message that names the file, dataset or key at fault.
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

namespace embgeom {

/// Process exit codes (documented in README.md).
enum class ExitCode : int {
    kOk = 0,        ///< success
    kUsage = 2,     ///< bad flag, bad config key or value
    kBadInput = 3,  ///< input file/dataset unusable
    kRuntime = 4,   ///< resources (memory, device, disk) or an internal failure
};

/// Base of every embgeom error: a one-line message plus the exit code it maps to.
class Error : public std::runtime_error {
  public:
    Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ExitCode code() const noexcept { return code_; }

  private:
    ExitCode code_;
};

/// Invalid command line or configuration (exit 2).
class UsageError : public Error {
  public:
    explicit UsageError(const std::string& m) : Error(ExitCode::kUsage, m) {}
};

/// Input that cannot be analysed: missing/corrupt file, bad dataset, bad vocab (exit 3).
class InputError : public Error {
  public:
    explicit InputError(const std::string& m) : Error(ExitCode::kBadInput, m) {}
};

/// Out of memory, unwritable output, device failure, internal error (exit 4).
class ResourceError : public Error {
  public:
    explicit ResourceError(const std::string& m) : Error(ExitCode::kRuntime, m) {}
};

/// Thrown by the CUDA entry points of a build made without CUDA (exit 4).
class NotBuiltWithCuda : public ResourceError {
  public:
    NotBuiltWithCuda()
        : ResourceError("this embgeom was built without CUDA (rebuild with -DEMBGEOM_CUDA=ON)") {}
};

/// What a failure reports: its exit code and its one-line message.
struct Failure {
    ExitCode code = ExitCode::kRuntime;
    std::string message;
};

/// The Failure of a thrown exception, as the CLI reports it: an embgeom Error's own code and
/// message, host memory running out, or any other exception's message with exit code 4.
inline Failure failure_of(const std::exception_ptr& thrown) {
    try {
        std::rethrow_exception(thrown);
    } catch (const Error& e) {
        return {e.code(), e.what()};
    } catch (const std::bad_alloc&) {
        return {ExitCode::kRuntime, "out of host memory (lower --memory-budget or --block-rows)"};
    } catch (const std::exception& e) {
        return {ExitCode::kRuntime, e.what()};
    } catch (...) {
        return {ExitCode::kRuntime, "an unknown error"};
    }
}

}  // namespace embgeom

/// Precondition check at API boundaries; throws ResourceError (an internal contract was broken).
#define EMBGEOM_EXPECTS(cond, msg)                                                         \
    do {                                                                                   \
        if (!(cond))                                                                       \
            throw ::embgeom::ResourceError(std::string("internal check failed: ") + (msg) + \
                                           " (" #cond ")");                                \
    } while (0)
