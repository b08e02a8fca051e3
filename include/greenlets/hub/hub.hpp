// `hub`: this thread's event loop, and the calls that wait on it directly: `sleep`
// and `wait`.
//
//   greenlets::spawn([] { greenlets::sleep(10ms); std::cout << "later\n"; });
//   std::cout << "first\n";
//   greenlets::wait();                      // runs the loop until nothing is left
#ifndef GREENLETS_HUB_HUB_HPP
#define GREENLETS_HUB_HUB_HPP

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include "greenlets/detail/hub_loop.hpp"
#include "greenlets/hub/errors.hpp"

namespace greenlets {

/// A span of time for the hub's calls; any `std::chrono::duration` converts.
using duration = std::chrono::steady_clock::duration;
/// A point in time for the hub's `_until` calls.
using time_point = std::chrono::steady_clock::time_point;

/// This thread's hub: the greenlet running its event loop (epoll, timers, an eventfd
/// for wake-ups from other threads, worker threads for `run_in_thread`).
///
/// Created on first use; blocking calls switch to it and it switches back when the
/// thing waited for is ready. Destroyed when the thread exits, unwinding the tasks
/// still suspended.
/// Python: `gevent.hub.Hub`.
class hub {
 public:
  /// The calling thread's hub, created on first use.
  ///
  /// Python: `gevent.get_hub()`.
  static hub& current() {
    thread_local hub h(detail::loop::local());
    return h;
  }

  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  /// Runs `f()` in this hub's thread, inside the hub, soon. Any thread may call it.
  ///
  /// `f` must not block (it runs in the hub itself; blocking there is an `error`); to
  /// run blocking code, spawn a task from `f`. An exception `f` throws goes to the
  /// unraisable handler. A post counts as pending work: it keeps `loop_exit` away.
  /// The hub's thread must not have exited (a hub lives as long as its thread).
  /// Python: `hub.loop.run_callback_threadsafe(f)`.
  template <class F>
  void post(F&& f) {
    loop().post(std::function<void()>(std::forward<F>(f)));
  }

  /// How many worker threads `run_in_thread` may use (default 10).
  ///
  /// Python: `hub.threadpool_size`.
  std::size_t thread_pool_size() const noexcept { return loop().worker_count(); }

  /// Sets how many worker threads `run_in_thread` may use; at least 1.
  ///
  /// Python: `hub.threadpool_size = n`.
  /// Throws: `error` for 0, or when called from another thread.
  void set_thread_pool_size(std::size_t n) {
    detail::check_thread("hub::set_thread_pool_size", loop().owner());
    loop().set_worker_count(n);
  }

  /// The greenlet running the loop; tasks have it as parent.
  greenlet handle() const noexcept { return loop().hub_greenlet(); }

 private:
  explicit hub(detail::loop& l) noexcept : loop_(&l) {}
  detail::loop& loop() noexcept { return *loop_; }
  const detail::loop& loop() const noexcept { return *loop_; }

  detail::loop* loop_;
};

/// Suspends the calling greenlet for `d`, letting others run.
///
/// `sleep(0s)` (or less) yields: every other task ready now runs once first, FIFO, and
/// the loop polls fds and timers before this one resumes.
/// Python: `gevent.sleep(seconds)`.
/// Throws: `error` inside the hub; `timeout_error` from an expired `timeout` scope;
/// `greenlet_exit` (or what `kill` sent) if the task is killed meanwhile.
inline void sleep(duration d) {
  detail::loop& l = detail::loop::local();
  detail::waiter w(l.current_ctx("sleep"), "sleep");
  if (d <= duration::zero()) {
    l.wake(w);
    l.block(w);
  } else {
    l.block_until(w, std::chrono::steady_clock::now() + d);
  }
}

/// Runs the loop until nothing is left to do: no ready task, timer, fd wait, pending
/// `run_in_thread` call or post. Tasks blocked for ever do not keep it waiting.
///
/// Python: `gevent.wait()`.
/// Throws: `error` inside the hub.
inline void wait() {
  detail::loop& l = detail::loop::local();
  detail::waiter w(l.current_ctx("wait"), "wait");
  l.wait_idle(w);
}

}  // namespace greenlets

#endif  // GREENLETS_HUB_HUB_HPP
