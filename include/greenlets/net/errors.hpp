// The socket layer's own exceptions, beside `std::system_error` (an errno from the
// system) and `timeout_error` (a deadline): `incomplete_read` when the stream ends
// early, `limit_exceeded` when a delimited read finds no delimiter in time.
//
//   try { sock.read_exact(header, 8); }
//   catch (const greenlets::incomplete_read& e) { std::cerr << e.received() << " bytes\n"; }
#ifndef GREENLETS_NET_ERRORS_HPP
#define GREENLETS_NET_ERRORS_HPP

#include <cstddef>
#include <string>

#include "greenlets/error.hpp"

namespace greenlets {

/// Thrown by `read_exact` when the peer closes the stream before enough bytes came.
///
/// Python: `asyncio.IncompleteReadError`.
struct incomplete_read : error {
  /// Builds the exception with the complete message `what` and the count received.
  incomplete_read(const std::string& what, std::size_t received)
      : error(what), received_(received) {}
  /// How many bytes were read before the end of the stream.
  std::size_t received() const noexcept { return received_; }

 private:
  std::size_t received_;
};

/// Thrown by `read_until` / `read_line` when `max` bytes came without the delimiter.
/// The bytes stay buffered: a later read returns them.
///
/// Python: `asyncio.LimitOverrunError`.
struct limit_exceeded : error {
  /// Builds the exception with the complete message `what`.
  explicit limit_exceeded(const std::string& what) : error(what) {}
};

}  // namespace greenlets

#endif  // GREENLETS_NET_ERRORS_HPP
