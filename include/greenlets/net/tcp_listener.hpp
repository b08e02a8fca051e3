// `tcp_listener`: a listening TCP socket whose `accept` waits cooperatively in the hub,
// and `listen`, which opens one on an IPv4 or IPv6 address.
//
//   greenlets::tcp_listener l = greenlets::listen("127.0.0.1", 8080);
//   for (;;) {
//     greenlets::spawn([](greenlets::tcp_socket s) { s.write_all("hi\n"); }, l.accept());
//   }
#ifndef GREENLETS_NET_TCP_LISTENER_HPP
#define GREENLETS_NET_TCP_LISTENER_HPP

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <exception>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "greenlets/detail/net_socket.hpp"
#include "greenlets/detail/sys.hpp"
#include "greenlets/net/deadline.hpp"
#include "greenlets/net/endpoint.hpp"
#include "greenlets/net/tcp_socket.hpp"

namespace greenlets {

/// How `listen` sets up its socket.
struct listen_options {
  /// The kernel's queue of connections not accepted yet.
  ///
  /// Python: `sock.listen(backlog)`.
  int backlog = 128;
  /// `SO_REUSEPORT`: several sockets (one per thread, each with its own hub) may listen
  /// on the same port, and the kernel spreads the connections over them.
  ///
  /// Python: `sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1)`.
  bool reuse_port = false;
};

/// A listening TCP socket (IPv4 or IPv6) on a non-blocking fd, owned (move-only).
///
/// `accept` waits in the calling thread's hub; one task at a time may wait in it.
/// Closing the listener wakes that task with `std::system_error(EBADF)`. It belongs to
/// the thread that made it, as `tcp_socket` does.
/// Python: a listening `gevent.socket.socket`, as `gevent.server.StreamServer` uses.
class tcp_listener {
 public:
  /// A listener that is not open.
  tcp_listener() noexcept = default;
  /// Takes `other`'s socket; `other` is left not open.
  tcp_listener(tcp_listener&& other) noexcept = default;
  /// Closes this listener (as `close()`), then takes `other`'s.
  tcp_listener& operator=(tcp_listener&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  /// Closes the listener, waking a task waiting in `accept` (as `close()`).
  ~tcp_listener() { reset(); }

  /// True until `close()`.
  bool is_open() const noexcept { return state_ && state_->fd >= 0; }

  /// The fd, or -1 when not open.
  ///
  /// Python: `sock.fileno()`.
  int native_handle() const noexcept { return is_open() ? state_->fd : -1; }

  /// The address it listens on (with the port the system chose for port 0).
  ///
  /// Python: `sock.getsockname()`.
  endpoint local_endpoint() const { return state_ ? state_->peer : endpoint(); }

  /// Waits for a connection and returns it, with the peer's address.
  ///
  /// Python: `sock.accept()`.
  /// Throws: `std::system_error` ("greenlets: accept 127.0.0.1:8080: Too many open
  /// files" for EMFILE; the listener stays open and usable); `timeout_error` at the
  /// deadline; `std::system_error(EBADF)` if the listener is closed meanwhile.
  tcp_socket accept(deadline dl = {}) {
    detail::socket_state& s = detail::open_state(state_, "accept", "listener");
    time_point until{};
    bool have_until = false;
    for (;;) {
      if (s.readable) {
        sockaddr_storage a{};
        socklen_t len = sizeof a;
        const int fd = detail::sys::accept4(s.fd, reinterpret_cast<sockaddr*>(&a), &len,
                                            SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
          auto st = std::make_unique<detail::socket_state>(fd, "socket");
          st->peer = endpoint(reinterpret_cast<sockaddr*>(&a), len);
          return tcp_socket(std::move(st));
        }
        const int err = errno;
        // A connection reset before it was accepted is the peer's business, not ours.
        if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
        if (err != EAGAIN && err != EWOULDBLOCK) detail::throw_system(err, "accept", s.peer);
        s.readable = false;
      }
      if (dl && !have_until) {
        until = dl.from_now();
        have_until = true;
      }
      detail::wait_ready(s, false, "accept", have_until ? &until : nullptr);
    }
  }

  /// Closes the listener. A task waiting in `accept` wakes with
  /// `std::system_error(EBADF)`. Closing a closed listener does nothing.
  ///
  /// Python: `sock.close()`.
  /// Throws: `error` from another thread.
  void close() {
    if (!is_open()) return;
    detail::check_thread("close", state_->owner);
    detail::close_state(*state_, "close");
  }

 private:
  friend tcp_listener listen(std::string_view, std::uint16_t, listen_options);

  void reset() noexcept {
    if (state_) detail::close_state(*state_, "close");
    state_.reset();
  }

  std::unique_ptr<detail::socket_state> state_;
};

/// Opens a listener on `host` (an IPv4 or IPv6 address or a name, "" for every
/// address) and `port` (0: the system picks one; `local_endpoint()` tells which), with
/// `SO_REUSEADDR` set.
///
/// Python: `gevent.socket.socket()` + `bind((host, port))` + `listen(backlog)`;
/// gevent's `StreamServer((host, port))` does the same.
/// Throws: `std::system_error` ("greenlets: listen 127.0.0.1:80: Address already in
/// use"); `error` if the name does not resolve.
inline tcp_listener listen(std::string_view host, std::uint16_t port, listen_options opts = {}) {
  const std::vector<endpoint> addrs = detail::resolve_host(host, port, true, nullptr);
  const endpoint& a = addrs.front();
  const int fd = detail::sys::socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) detail::throw_system(errno, "listen", a);
  tcp_listener l;
  l.state_ = std::make_unique<detail::socket_state>(fd, "listener");
  detail::socket_state& s = *l.state_;
  s.peer = a;
  detail::set_option(s, SOL_SOCKET, SO_REUSEADDR, 1, "listen");
  if (opts.reuse_port) detail::set_option(s, SOL_SOCKET, SO_REUSEPORT, 1, "listen");
  if (::bind(fd, a.data(), a.size()) != 0) detail::throw_system(errno, "listen", a);
  if (::listen(fd, opts.backlog) != 0) detail::throw_system(errno, "listen", a);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    s.peer = endpoint(reinterpret_cast<sockaddr*>(&bound), len);
  }
  return l;
}

}  // namespace greenlets

#endif  // GREENLETS_NET_TCP_LISTENER_HPP
