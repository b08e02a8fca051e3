// `tcp_socket`: a TCP connection whose blocking calls wait cooperatively in the hub,
// and `connect`, which opens one (IPv4 or IPv6, a host name or an address).
//
//   greenlets::tcp_socket s = greenlets::connect("localhost", 8080, 5s);
//   s.write_all("hello\n");
//   std::string reply = s.read_line();                  // "HELLO\n", or "" at the end
#ifndef GREENLETS_NET_TCP_SOCKET_HPP
#define GREENLETS_NET_TCP_SOCKET_HPP

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "greenlets/detail/net_socket.hpp"
#include "greenlets/detail/sys.hpp"
#include "greenlets/net/deadline.hpp"
#include "greenlets/net/endpoint.hpp"
#include "greenlets/net/errors.hpp"

namespace greenlets {

/// Which directions `tcp_socket::shutdown` ends.
///
/// Python: `socket.SHUT_RD`, `SHUT_WR`, `SHUT_RDWR`.
enum class shutdown_type {
  receive,  ///< no more reading (`SHUT_RD`)
  send,     ///< no more writing: the peer reads the end of the stream (`SHUT_WR`)
  both      ///< both (`SHUT_RDWR`)
};

/// A connected TCP socket (IPv4 or IPv6) on a non-blocking fd, owned (move-only).
///
/// Its blocking calls wait in the calling thread's hub, so other tasks run meanwhile;
/// each takes a `deadline` last (none by default) and honours an enclosing `timeout`
/// scope. One task at a time may wait to read it and one to write it. Closing it (or
/// destroying it) wakes those waiters with `std::system_error(EBADF)`; killing a
/// waiting task wakes it as any blocking call. It belongs to the thread that made it:
/// to hand it to another thread's hub, `release()` the fd there and adopt it with
/// `tcp_socket(fd)` on the other thread.
/// Python: `gevent.socket.socket` (SOCK_STREAM).
/// Throws (every call): `std::system_error` with the errno, named
/// "greenlets: <op> <peer>: <reason>" (a reset is ECONNRESET, writing to a closed peer
/// EPIPE: no SIGPIPE is ever raised); `timeout_error` when the deadline or a
/// `timeout` scope runs out; `error` for a second waiter in the same direction or a
/// call from another thread; `std::system_error(EBADF)` on a closed socket.
class tcp_socket {
 public:
  /// A socket that is not open.
  tcp_socket() noexcept = default;

  /// Adopts `fd`, a connected stream socket, and makes it non-blocking; the socket
  /// belongs to the calling thread's hub from now on.
  ///
  /// Python: `gevent.socket.socket(fileno=fd)`.
  /// Throws: `std::system_error` if `fd` is not valid.
  explicit tcp_socket(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              "greenlets: tcp_socket: cannot adopt fd " + std::to_string(fd));
    }
    state_ = std::make_unique<detail::socket_state>(fd, "socket");
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      state_->peer = endpoint(reinterpret_cast<sockaddr*>(&a), len);
    }
  }

  /// Takes `other`'s socket; `other` is left not open.
  tcp_socket(tcp_socket&& other) noexcept = default;
  /// Closes this socket (as `close()`), then takes `other`'s.
  tcp_socket& operator=(tcp_socket&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  /// Closes the socket, waking its waiters (as `close()`).
  ~tcp_socket() { reset(); }

  /// True until `close()` or `release()`.
  bool is_open() const noexcept { return state_ && state_->fd >= 0; }

  /// The fd, or -1 when not open. Do not wait on it with `wait_readable`: the socket's
  /// own calls do that.
  ///
  /// Python: `sock.fileno()`.
  int native_handle() const noexcept { return is_open() ? state_->fd : -1; }

  /// The other end's address (as when connected; kept after a reset).
  ///
  /// Python: `sock.getpeername()`.
  endpoint peer_endpoint() const { return state_ ? state_->peer : endpoint(); }

  /// This end's address.
  ///
  /// Python: `sock.getsockname()`.
  /// Throws: `std::system_error` if the socket is not open.
  endpoint local_endpoint() const {
    detail::socket_state& s = detail::open_state(state_, "local_endpoint", "socket");
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      detail::throw_system(errno, "local_endpoint", s.peer);
    }
    return endpoint(reinterpret_cast<sockaddr*>(&a), len);
  }

  /// Connects this socket, not open yet, to `host` (a name, looked up with
  /// `getaddrinfo` on a worker thread, or an IPv4 or IPv6 address) and `port`, trying
  /// each address in turn. Another task may `close()` the socket meanwhile: this call
  /// then throws `std::system_error(EBADF)`.
  ///
  /// Python: `sock.connect((host, port))`; `create_connection` tries every address.
  /// Throws: `std::system_error` with the last address's errno ("greenlets: connect
  /// [::1]:80: Connection refused"); `error` if the name does not resolve or the socket
  /// is open already; `timeout_error` at the deadline (which covers the lookup and
  /// every address). After a deadline, a timeout or a kill the socket is closed.
  void connect(std::string_view host, std::uint16_t port, deadline dl = {}) {
    if (is_open()) throw error("greenlets: connect: the socket is open already");
    const time_point until = dl ? dl.from_now() : time_point{};
    const time_point* up = dl ? &until : nullptr;
    const std::vector<endpoint> addrs = detail::resolve_host(host, port, false, up);
    std::exception_ptr last;
    for (const endpoint& a : addrs) {
      const int fd = detail::sys::socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) detail::throw_system(errno, "connect", a);
      state_ = std::make_unique<detail::socket_state>(fd, "socket");
      detail::socket_state& s = *state_;
      s.peer = a;
      int rc;
      do {
        rc = detail::sys::connect(fd, a.data(), a.size());
      } while (rc != 0 && errno == EINTR);
      int err = rc == 0 ? 0 : errno;
      if (err == EINPROGRESS) {
        s.writable = false;
        try {
          detail::wait_ready(s, true, "connect", up);
        } catch (const std::system_error&) {
          throw;  // closed by another task, which may have destroyed the socket too
        } catch (...) {
          // A deadline, a timeout scope or a kill: the half-made connection is of no
          // use, and the socket is left closed, ready for another connect.
          reset();
          throw;
        }
        socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
      if (err == 0) {
        s.writable = true;
        return;
      }
      reset();
      try {
        detail::throw_system(err, "connect", a);
      } catch (const std::system_error&) {
        last = std::current_exception();
      }
    }
    std::rethrow_exception(last);
  }

  /// Reads what is available, at least one byte, at most `n`; waits if nothing is.
  /// Returns 0 at the end of the stream (the peer closed or shut down its side).
  ///
  /// Bytes `read_until` buffered come first.
  /// Python: `sock.recv_into(buf, n)` / `sock.recv(n)`.
  std::size_t read_some(void* buf, std::size_t n, deadline dl = {}) {
    detail::socket_state& s = reading(state_, "read_some");
    if (s.buffered() != 0) return take_buffered(s, buf, n);
    return receive(s, buf, n, dl, "read_some");
  }

  /// Reads exactly `n` bytes.
  ///
  /// Python: no single call (`recv` in a loop); asyncio's `readexactly(n)`.
  /// Throws: `incomplete_read` if the stream ends first (the bytes read are in `buf`).
  void read_exact(void* buf, std::size_t n, deadline dl = {}) {
    detail::socket_state& s = reading(state_, "read_exact");
    auto* p = static_cast<char*>(buf);
    std::size_t got = s.buffered() != 0 ? take_buffered(s, p, n) : 0;
    if (got == n) return;
    const time_point until = dl ? dl.from_now() : time_point{};
    const deadline fixed = dl ? deadline(until) : deadline();
    while (got < n) {
      const std::size_t r = receive(s, p + got, n - got, fixed, "read_exact");
      if (r == 0) {
        throw incomplete_read(detail::describe("read_exact", s.peer) + ": the stream ended after " +
                                  std::to_string(got) + " of " + std::to_string(n) + " bytes",
                              got);
      }
      got += r;
    }
  }

  /// Reads up to and including the first `delim`; the bytes after it stay buffered for
  /// the next read. At the end of the stream, returns what is left without a
  /// delimiter (empty when nothing is).
  ///
  /// Python: `sock.makefile().readline()` generalised; asyncio's `readuntil(delim)`.
  /// Throws: `limit_exceeded` if `max` bytes come without `delim` (they stay buffered);
  /// `error` if `delim` is empty.
  std::string read_until(std::string_view delim, std::size_t max = 65536, deadline dl = {}) {
    detail::socket_state& s = reading(state_, "read_until");
    if (delim.empty()) throw error("greenlets: read_until: the delimiter is empty");
    const time_point until = dl ? dl.from_now() : time_point{};
    const time_point* up = dl ? &until : nullptr;
    std::size_t scanned = 0;  // bytes of the buffer known to hold no delimiter start
    for (;;) {
      const std::string_view have(s.in.data() + s.begin, s.buffered());
      const std::size_t at = have.find(delim, scanned);
      if (at != std::string_view::npos && at + delim.size() <= max) {
        std::string line(have.substr(0, at + delim.size()));
        consume(s, line.size());
        return line;
      }
      if (have.size() >= max) {
        throw limit_exceeded(detail::describe("read_until", s.peer) + ": no delimiter in " +
                             std::to_string(max) + " bytes");
      }
      scanned = have.size() >= delim.size() ? have.size() - delim.size() + 1 : 0;
      // Wait before growing the buffer, never while it holds room not yet read into: a
      // waiter woken by close() must not touch the socket again (it may be gone).
      if (!s.readable) detail::wait_ready(s, false, "read_until", up);
      if (s.begin != 0) {
        s.in.erase(s.in.begin(), s.in.begin() + static_cast<std::ptrdiff_t>(s.begin));
        s.begin = 0;
      }
      const std::size_t old = s.in.size();
      const std::size_t room = std::max<std::size_t>(4096, std::min<std::size_t>(max - old, 65536));
      s.in.resize(old + room);
      const ssize_t r = try_receive(s, s.in.data() + old, room);
      s.in.resize(old + (r > 0 ? static_cast<std::size_t>(r) : 0));
      if (r < 0) {
        if (r == -EAGAIN) continue;
        detail::throw_system(static_cast<int>(-r), "read_until", s.peer);
      }
      if (r == 0) {
        std::string rest(s.in.begin(), s.in.end());
        s.in.clear();
        return rest;
      }
    }
  }

  /// Reads one line, up to and including "\n" (see `read_until`); "" at the end.
  ///
  /// Python: `sock.makefile().readline()`.
  std::string read_line(std::size_t max = 65536, deadline dl = {}) {
    return read_until("\n", max, dl);
  }

  /// Writes what it can of `buf`, at least one byte; waits until it can write any.
  ///
  /// Python: `sock.send(data)`.
  std::size_t write_some(const void* buf, std::size_t n, deadline dl = {}) {
    detail::socket_state& s = detail::open_state(state_, "write_some", "socket");
    return transmit(s, buf, n, dl, "write_some");
  }

  /// Writes all `n` bytes of `buf`, waiting as often as needed.
  ///
  /// Python: `sock.sendall(data)`.
  void write_all(const void* buf, std::size_t n, deadline dl = {}) {
    detail::socket_state& s = detail::open_state(state_, "write_all", "socket");
    const auto* p = static_cast<const char*>(buf);
    std::size_t done = transmit(s, p, n, dl, "write_all");
    if (done == n) return;
    const deadline fixed = dl ? deadline(dl.from_now()) : deadline();
    while (done < n) done += transmit(s, p + done, n - done, fixed, "write_all");
  }

  /// Writes all of `text`.
  ///
  /// Python: `sock.sendall(data)`.
  void write_all(std::string_view text, deadline dl = {}) {
    write_all(text.data(), text.size(), dl);
  }

  /// Ends one or both directions: after `send`, the peer reads the end of the stream.
  ///
  /// Python: `sock.shutdown(how)`.
  void shutdown(shutdown_type how) {
    detail::socket_state& s = detail::open_state(state_, "shutdown", "socket");
    const int h = how == shutdown_type::receive ? SHUT_RD
                  : how == shutdown_type::send  ? SHUT_WR
                                                : SHUT_RDWR;
    if (::shutdown(s.fd, h) != 0) detail::throw_system(errno, "shutdown", s.peer);
  }

  /// Closes the socket. Tasks waiting on it wake with `std::system_error(EBADF)`.
  /// Closing a closed socket does nothing.
  ///
  /// Python: `sock.close()`.
  /// Throws: `error` from another thread.
  void close() {
    if (!is_open()) return;
    detail::check_thread("close", state_->owner);
    detail::close_state(*state_, "close");
  }

  /// Gives up the fd without closing it: the socket is no longer open, and the caller
  /// owns the fd (to adopt it with `tcp_socket(fd)` on another thread, for one).
  ///
  /// Python: `sock.detach()`.
  /// Throws: `error` from another thread, or while a task waits on the socket.
  int release() {
    detail::socket_state& s = detail::open_state(state_, "release", "socket");
    if (s.reader != nullptr || s.writer != nullptr) {
      throw error(detail::describe("release", s.peer) + ": a task is waiting on the socket");
    }
    if (s.registered) ::epoll_ctl(s.l->epoll_handle(), EPOLL_CTL_DEL, s.fd, nullptr);
    const int fd = s.fd;
    state_.reset();
    return fd;
  }

  /// Turns Nagle's algorithm off (true) or on: small writes go out at once.
  ///
  /// Python: `sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)`.
  void set_no_delay(bool on) {
    detail::socket_state& s = detail::open_state(state_, "set_no_delay", "socket");
    detail::set_option(s, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "set_no_delay");
  }

  /// Turns TCP keep-alive probes on or off; with `idle` set, the first probe goes after
  /// that many seconds of silence.
  ///
  /// Python: `sock.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)` (and `TCP_KEEPIDLE`).
  void set_keep_alive(bool on, int idle_seconds = 0) {
    detail::socket_state& s = detail::open_state(state_, "set_keep_alive", "socket");
    detail::set_option(s, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0, "set_keep_alive");
    if (on && idle_seconds > 0) {
      detail::set_option(s, IPPROTO_TCP, TCP_KEEPIDLE, idle_seconds, "set_keep_alive");
    }
  }

 private:
  friend class tcp_listener;

  explicit tcp_socket(std::unique_ptr<detail::socket_state> s) noexcept : state_(std::move(s)) {}

  void reset() noexcept {
    if (state_) detail::close_state(*state_, "close");
    state_.reset();
  }

  // The state for a read: the buffer belongs to the one task reading at a time, so a
  // read while another task waits to read is the second waiter's error at once.
  static detail::socket_state& reading(const std::unique_ptr<detail::socket_state>& st,
                                       const char* op) {
    detail::socket_state& s = detail::open_state(st, op, "socket");
    if (GREENLETS_UNLIKELY(s.reader != nullptr)) detail::throw_busy(s, false, op);
    return s;
  }

  static std::size_t take_buffered(detail::socket_state& s, void* buf, std::size_t n) noexcept {
    const std::size_t k = std::min(n, s.buffered());
    if (k != 0) std::memcpy(buf, s.in.data() + s.begin, k);
    consume(s, k);
    return k;
  }

  static void consume(detail::socket_state& s, std::size_t k) noexcept {
    s.begin += k;
    if (s.begin == s.in.size()) {
      s.in.clear();
      s.begin = 0;
    }
  }

  // One recv without waiting: the bytes read, 0 at the end of the stream, or -errno
  // (-EAGAIN when drained; the hint is kept up to date).
  static ssize_t try_receive(detail::socket_state& s, void* buf, std::size_t n) noexcept {
    for (;;) {
      const ssize_t r = detail::sys::recv(s.fd, buf, n, 0);
      if (r > 0) {
        // A short read drained the queue: the next read waits for the next event.
        if (static_cast<std::size_t>(r) < n) s.readable = false;
        return r;
      }
      if (r == 0) return 0;
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        s.readable = false;
        return -EAGAIN;
      }
      return -err;
    }
  }

  // One recv, waiting first while the socket is known to be drained.
  static std::size_t receive(detail::socket_state& s, void* buf, std::size_t n, const deadline& dl,
                             const char* op) {
    if (n == 0) return 0;
    time_point until{};
    bool have_until = false;
    for (;;) {
      if (s.readable) {
        const ssize_t r = try_receive(s, buf, n);
        if (r >= 0) return static_cast<std::size_t>(r);
        if (r != -EAGAIN) detail::throw_system(static_cast<int>(-r), op, s.peer);
      }
      if (dl && !have_until) {
        until = dl.from_now();
        have_until = true;
      }
      detail::wait_ready(s, false, op, have_until ? &until : nullptr);
    }
  }

  static std::size_t transmit(detail::socket_state& s, const void* buf, std::size_t n,
                              const deadline& dl, const char* op) {
    if (n == 0) return 0;
    time_point until{};
    bool have_until = false;
    for (;;) {
      if (s.writable) {
        const ssize_t r = detail::sys::send(s.fd, buf, n, MSG_NOSIGNAL);
        if (r >= 0) {
          if (static_cast<std::size_t>(r) < n) s.writable = false;
          return static_cast<std::size_t>(r);
        }
        const int err = errno;
        if (err == EINTR) continue;
        if (err != EAGAIN && err != EWOULDBLOCK) detail::throw_system(err, op, s.peer);
        s.writable = false;
      }
      if (dl && !have_until) {
        until = dl.from_now();
        have_until = true;
      }
      detail::wait_ready(s, true, op, have_until ? &until : nullptr);
    }
  }

  std::unique_ptr<detail::socket_state> state_;
};

/// Opens a TCP connection to `host` and `port`: `tcp_socket::connect` on a new socket.
///
/// Python: `gevent.socket.create_connection((host, port), timeout)`.
inline tcp_socket connect(std::string_view host, std::uint16_t port, deadline dl = {}) {
  tcp_socket s;
  s.connect(host, port, dl);
  return s;
}

}  // namespace greenlets

#endif  // GREENLETS_NET_TCP_SOCKET_HPP
