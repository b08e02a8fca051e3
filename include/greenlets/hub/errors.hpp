// The hub's exceptions: `loop_exit` when a blocking call could never return, and
// `timeout_error` when a `timeout` scope expires at a blocking call.
//
//   try { greenlets::event().wait(); }               // nothing could ever set it
//   catch (const greenlets::loop_exit& e) { std::cerr << e.what() << '\n'; }
#ifndef GREENLETS_HUB_ERRORS_HPP
#define GREENLETS_HUB_ERRORS_HPP

#include <string>

#include "greenlets/error.hpp"

namespace greenlets {

/// Thrown into a greenlet blocked in the hub when nothing could ever wake it: no task
/// is ready and no timer, fd wait, `run_in_thread` call or post is pending.
///
/// Python: `gevent.exceptions.LoopExit` ("This operation would block forever").
struct loop_exit : error {
  /// Builds the exception with the complete message `what`.
  explicit loop_exit(const std::string& what) : error(what) {}
};

/// Thrown at a blocking call inside a `timeout` scope whose time has run out.
///
/// `timeout::expired()` tells which of several nested scopes it was.
/// Python: `gevent.Timeout`.
struct timeout_error : error {
  /// Builds the exception with the complete message `what`.
  explicit timeout_error(const std::string& what) : error(what) {}
};

}  // namespace greenlets

#endif  // GREENLETS_HUB_ERRORS_HPP
