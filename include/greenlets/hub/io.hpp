// Waiting for a file descriptor to become readable or writable, cooperatively: the
// task blocks, the hub's epoll set watches the fd, other tasks run meanwhile.
//
//   int fds[2]; pipe(fds);
//   greenlets::spawn([&] { greenlets::wait_readable(fds[0]); read(fds[0], buf, 1); });
#ifndef GREENLETS_HUB_IO_HPP
#define GREENLETS_HUB_IO_HPP

#include <chrono>
#include <exception>
#include <string>

#include "greenlets/hub/hub.hpp"

namespace greenlets {

namespace detail {

inline bool wait_fd(int fd, bool write, const char* op, const time_point* until) {
  loop& l = loop::local();
  waiter w(l.current_ctx(op), op);
  l.wait_fd(w, fd, write, op, until);
  return !w.timed_out;
}

}  // namespace detail

/// Waits until `fd` is readable (or has hung up or failed).
///
/// One task at a time may wait to read a given fd. Call `cancel_wait(fd)` before
/// closing an fd another task waits on.
/// Python: `gevent.socket.wait_read(fd)`.
/// Throws: `error` if another task already waits to read `fd`, if epoll cannot watch
/// it (a regular file, a closed fd), or if `cancel_wait(fd)` ran meanwhile.
inline void wait_readable(int fd) { (void)detail::wait_fd(fd, false, "wait_readable", nullptr); }

/// Waits at most `d` for `fd` to become readable; true if it did.
///
/// Python: `gevent.socket.wait_read(fd, timeout)`.
inline bool wait_readable_for(int fd, duration d) {
  const time_point tp = std::chrono::steady_clock::now() + d;
  return detail::wait_fd(fd, false, "wait_readable_for", &tp);
}

/// Waits until `fd` is writable (or has hung up or failed).
///
/// Python: `gevent.socket.wait_write(fd)`.
/// Throws: as `wait_readable`, for writing.
inline void wait_writable(int fd) { (void)detail::wait_fd(fd, true, "wait_writable", nullptr); }

/// Waits at most `d` for `fd` to become writable; true if it did.
///
/// Python: `gevent.socket.wait_write(fd, timeout)`.
inline bool wait_writable_for(int fd, duration d) {
  const time_point tp = std::chrono::steady_clock::now() + d;
  return detail::wait_fd(fd, true, "wait_writable_for", &tp);
}

/// Wakes the tasks waiting on `fd` (both directions) with an `error` saying the fd is
/// being closed; call it before closing an fd other tasks may wait on.
///
/// Python: `gevent.hub.cancel_wait(watcher)` (what closing a gevent socket does).
inline void cancel_wait(int fd) {
  detail::loop& l = detail::loop::local();
  l.cancel_fd(fd, std::make_exception_ptr(error("greenlets: wait on fd " + std::to_string(fd) +
                                                " cancelled: the fd is being closed")));
}

}  // namespace greenlets

#endif  // GREENLETS_HUB_IO_HPP
