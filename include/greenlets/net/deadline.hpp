// `deadline`: when a socket call gives up with `timeout_error`. The last argument of
// every blocking socket call; a duration counts from the call, a time point is absolute.
//
//   std::size_t n = sock.read_some(buf, sizeof buf, 2s);          // at most 2 s from now
//   sock.write_all(reply, greenlets::deadline(start + 100ms));     // or by a fixed time
#ifndef GREENLETS_NET_DEADLINE_HPP
#define GREENLETS_NET_DEADLINE_HPP

#include <chrono>

#include "greenlets/hub/hub.hpp"

namespace greenlets {

/// When a blocking socket call gives up: never (the default), a span of time after the
/// call starts, or a fixed `steady_clock` time point.
///
/// A call that runs out of time throws `timeout_error`; an enclosing `timeout` scope
/// applies as well, whichever comes first. The span covers the whole call (all the
/// reads of `read_exact`, the name lookup and every address tried by `connect`).
/// Python: the `timeout` of `socket.settimeout(t)` / `create_connection(addr, t)`.
class deadline {
 public:
  /// No deadline: the call waits as long as it takes (or as a `timeout` scope allows).
  constexpr deadline() noexcept = default;

  /// A deadline `d` after now (read when the call starts).
  template <class Rep, class Period>
  deadline(std::chrono::duration<Rep, Period> d)  // NOLINT(google-explicit-constructor)
      : span_(std::chrono::duration_cast<duration>(d)), kind_(kind::span) {}

  /// A deadline at `tp`.
  deadline(time_point tp) noexcept  // NOLINT(google-explicit-constructor)
      : at_(tp), kind_(kind::at) {}

  /// True unless this is "no deadline".
  explicit operator bool() const noexcept { return kind_ != kind::none; }

  /// The time point, for a call starting now; meaningless without a deadline.
  time_point from_now() const noexcept {
    return kind_ == kind::span ? std::chrono::steady_clock::now() + span_ : at_;
  }

 private:
  enum class kind : unsigned char { none, span, at };
  time_point at_{};
  duration span_{};
  kind kind_ = kind::none;
};

}  // namespace greenlets

#endif  // GREENLETS_NET_DEADLINE_HPP
