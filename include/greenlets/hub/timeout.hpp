// `timeout`: a scope that makes the blocking calls inside it throw `timeout_error`
// once its time is up, and `with_timeout`, which turns that into an empty optional.
//
//   greenlets::timeout t(50ms);
//   try { q.get(); } catch (const greenlets::timeout_error&) { if (!t.expired()) throw; }
//
//   std::optional<int> v = greenlets::with_timeout(50ms, [&] { return q.get(); });
#ifndef GREENLETS_HUB_TIMEOUT_HPP
#define GREENLETS_HUB_TIMEOUT_HPP

#include <chrono>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

#include "greenlets/hub/hub.hpp"

namespace greenlets {

/// A deadline for the blocking calls of the calling greenlet while the scope lives.
///
/// Armed at construction (the clock is read then). When the time is up, the blocking
/// call the greenlet is in, or its next one inside the scope, throws `timeout_error`,
/// once. A greenlet that computes without blocking is never interrupted. With nested
/// scopes, the one whose time ran out first is the one thrown, and `expired()` tells
/// which. Leaving the scope disarms it. Allocates nothing unless it fires.
/// Python: `with gevent.Timeout(seconds):`.
class timeout {
 public:
  /// Arms a timeout of `d` for the calling greenlet, from now.
  ///
  /// Throws: `error` inside the hub.
  explicit timeout(duration d) : loop_(&detail::loop::local()) {
    timer_.ctx = &loop_->current_ctx("timeout");
    timer_.length = d;
    timer_.when = std::chrono::steady_clock::now() + d;
    owner_ = std::this_thread::get_id();
    loop_->push_timeout(timer_);
  }
  timeout(const timeout&) = delete;
  timeout& operator=(const timeout&) = delete;

  /// Disarms the timeout.
  ~timeout() { loop_->pop_timeout(timer_); }

  /// Disarms the timeout now: later blocking calls in the scope are unaffected by it.
  ///
  /// Python: `t.cancel()`.
  /// Throws: `error` from another thread.
  void cancel() {
    detail::check_thread("timeout::cancel", owner_);
    loop_->disarm(timer_);
  }

  /// True once this scope's time ran out (whether or not it was thrown yet).
  ///
  /// Python: `t is the caught exception` / `not t.pending` after it fired.
  bool expired() const noexcept { return timer_.expired; }

 private:
  detail::loop* loop_;
  detail::timeout_timer timer_;
  std::thread::id owner_;
};

/// Calls `f()` inside a `timeout(d)` scope; an empty optional if that scope expired.
///
/// A `timeout_error` from an enclosing scope passes through. For `f` returning void,
/// the result is `std::optional<std::monostate>`-like: `bool` (true if `f` finished).
/// Python: `gevent.with_timeout(seconds, f, timeout_value=None)`.
template <class F>
auto with_timeout(duration d, F&& f) {
  using R = std::invoke_result_t<F&>;
  using out = std::conditional_t<std::is_void_v<R>, bool, std::optional<R>>;
  timeout t(d);
  try {
    if constexpr (std::is_void_v<R>) {
      f();
      return out(true);
    } else {
      return out(f());
    }
  } catch (const timeout_error&) {
    if (!t.expired()) throw;
    return out{};
  }
}

}  // namespace greenlets

#endif  // GREENLETS_HUB_TIMEOUT_HPP
