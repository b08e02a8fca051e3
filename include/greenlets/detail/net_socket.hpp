// The inside of the socket layer: a socket's state (on the heap, so that a socket moves
// without its epoll registration), the cooperative wait for readiness, the errors.
//
// A socket is registered in its hub's epoll set on its first wait and stays there,
// edge-triggered for both directions, until it is closed: no epoll_ctl per wait. The
// state keeps a readiness hint per direction: cleared when a call finds the kernel's
// queue drained (EAGAIN, or a short read or write), set again by the next epoll event.
// A call with the hint set tries the system call first and waits only on EAGAIN.
#ifndef GREENLETS_DETAIL_NET_SOCKET_HPP
#define GREENLETS_DETAIL_NET_SOCKET_HPP

#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "greenlets/detail/hub_loop.hpp"
#include "greenlets/detail/sys.hpp"
#include "greenlets/hub/errors.hpp"
#include "greenlets/hub/thread_pool.hpp"
#include "greenlets/hub/timeout.hpp"
#include "greenlets/net/deadline.hpp"
#include "greenlets/net/endpoint.hpp"

namespace greenlets::detail {

// A waiter on a socket; `closed` is set when the socket is closed while it waits, after
// which the waiter must not touch the socket again (it may be gone).
struct io_waiter : waiter {
  using waiter::waiter;
  std::exception_ptr closed;
};

struct socket_state : fd_watcher {
  socket_state(int f, const char* what)
      : l(&loop::local()), owner(std::this_thread::get_id()), fd(f), kind(what) {
    on_event = &event;
  }
  socket_state(const socket_state&) = delete;
  socket_state& operator=(const socket_state&) = delete;

  loop* l;
  std::thread::id owner;
  int fd;
  const char* kind;  // "socket" or "listener", for messages
  io_waiter* reader = nullptr;
  io_waiter* writer = nullptr;
  bool readable = true;  // not known to be drained
  bool writable = true;
  bool registered = false;
  endpoint peer;  // the other end; for a listener, its own address
  // What read_until read past its delimiter: bytes [begin, in.size()) of `in`.
  std::vector<char> in;
  std::size_t begin = 0;

  std::size_t buffered() const noexcept { return in.size() - begin; }

  static void event(fd_watcher& w, std::uint32_t ev) noexcept {
    auto& s = static_cast<socket_state&>(w);
    const std::uint32_t bad = EPOLLHUP | EPOLLERR;
    if ((ev & (EPOLLIN | EPOLLRDHUP | bad)) != 0) {
      s.readable = true;
      if (s.reader != nullptr) s.l->wake(*s.reader);
    }
    if ((ev & (EPOLLOUT | bad)) != 0) {
      s.writable = true;
      if (s.writer != nullptr) s.l->wake(*s.writer);
    }
  }
};

inline std::string describe(const char* op, const endpoint& peer) {
  return std::string("greenlets: ") + op + " " + peer.to_string();
}

// std::system_error with the errno, "greenlets: <op> <peer>: <strerror>".
[[noreturn]] GREENLETS_COLD inline void throw_system(int err, const char* op,
                                                     const endpoint& peer) {
  throw std::system_error(err, std::generic_category(), describe(op, peer));
}

[[noreturn]] GREENLETS_COLD inline void throw_not_open(const char* op, const char* kind) {
  throw std::system_error(EBADF, std::generic_category(),
                          std::string("greenlets: ") + op + ": the " + kind + " is not open");
}

[[noreturn]] GREENLETS_COLD inline void throw_deadline(const char* op, const endpoint& peer) {
  throw timeout_error(describe(op, peer) + ": timed out (deadline)");
}

// The state of an open socket used from its own thread.
inline socket_state& open_state(const std::unique_ptr<socket_state>& s, const char* op,
                                const char* kind) {
  if (!s || s->fd < 0) throw_not_open(op, kind);
  check_thread(op, s->owner);
  return *s;
}

inline void watch(socket_state& s, const char* op) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&s)) | fd_watcher_tag;
  if (::epoll_ctl(s.l->epoll_handle(), EPOLL_CTL_ADD, s.fd, &ev) != 0) {
    throw_system(errno, op, s.peer);
  }
  s.registered = true;
}

[[noreturn]] GREENLETS_COLD inline void throw_busy(const socket_state& s, bool write,
                                                   const char* op) {
  throw error(describe(op, s.peer) + ": another task is already waiting to " +
              (write ? "write to" : "read from") + " this " + s.kind);
}

// Waits until the socket is ready in one direction (per the hint); throws
// timeout_error at `until`, whatever the wait was woken with otherwise.
inline void wait_ready(socket_state& s, bool write, const char* op, const time_point* until) {
  loop& l = *s.l;
  io_waiter*& slot = write ? s.writer : s.reader;
  if (GREENLETS_UNLIKELY(slot != nullptr)) throw_busy(s, write, op);
  if (GREENLETS_UNLIKELY(!s.registered)) watch(s, op);
  io_waiter w(l.current_ctx(op), op, &s);
  w.fd = s.fd;
  slot = &w;
  l.add_fd_wait();
  bool in_time = true;
  try {
    in_time = l.block_for(w, until);
  } catch (...) {
    l.remove_fd_wait();
    if (!w.closed) slot = nullptr;
    throw;
  }
  l.remove_fd_wait();
  if (GREENLETS_UNLIKELY(w.closed != nullptr)) std::rethrow_exception(w.closed);
  slot = nullptr;
  if (!in_time) throw_deadline(op, s.peer);
}

// Wakes the socket's waiters with EBADF and closes the fd. From another thread (a
// destructor there) only the fd is closed: the waiters and the loop are not ours. Nor
// once the thread's hub is gone (a socket in a thread_local or static destroyed after
// it): the loop's end unwound every waiter and closed its epoll set.
inline void close_state(socket_state& s, const char* op) noexcept {
  if (s.fd < 0) return;
  if (std::this_thread::get_id() == s.owner && loop::local_if_any() == s.l) {
    if (s.reader != nullptr || s.writer != nullptr) {
      std::exception_ptr e;
      try {
        e = std::make_exception_ptr(std::system_error(
            EBADF, std::generic_category(),
            describe(op, s.peer) + ": the " + s.kind + " was closed while a task waited on it"));
      } catch (...) {
        e = std::current_exception();
      }
      for (io_waiter* w : {s.reader, s.writer}) {
        if (w == nullptr) continue;
        w->closed = e;
        s.l->fail(*w, e);  // a waiter already woken still sees `closed`
      }
      s.reader = s.writer = nullptr;
    }
    // A dup of the fd would keep the registration (and this state's address) alive.
    if (s.registered) ::epoll_ctl(s.l->epoll_handle(), EPOLL_CTL_DEL, s.fd, nullptr);
  }
  sys::close(s.fd);
  s.fd = -1;
  s.registered = false;
}

inline void set_option(socket_state& s, int level, int name, int value, const char* op) {
  if (::setsockopt(s.fd, level, name, &value, sizeof value) != 0) throw_system(errno, op, s.peer);
}

// Resolves `host`: numeric addresses at once, names with getaddrinfo on a worker thread.
inline std::vector<endpoint> resolve_host(std::string_view host, std::uint16_t port, bool passive,
                                          const time_point* until) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const std::string name(host);
  const std::string service = std::to_string(port);
  struct lookup {
    int rc = 0;
    int err = 0;
    std::vector<endpoint> found;
  };
  auto run = [name, service, hints](int extra) {
    lookup r;
    addrinfo h = hints;
    h.ai_flags |= extra;
    addrinfo* res = nullptr;
    r.rc = ::getaddrinfo(name.empty() ? nullptr : name.c_str(), service.c_str(), &h, &res);
    r.err = errno;
    if (r.rc == 0) {
      for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
        if (p->ai_family == AF_INET || p->ai_family == AF_INET6)
          r.found.emplace_back(p->ai_addr, p->ai_addrlen);
      }
      ::freeaddrinfo(res);
    }
    return r;
  };
  lookup r = run(AI_NUMERICHOST);
  if (r.rc == EAI_NONAME && !name.empty()) {
    if (until != nullptr) {
      timeout t(*until - std::chrono::steady_clock::now());
      try {
        r = run_in_thread([run] { return run(0); });
      } catch (const timeout_error&) {
        if (!t.expired()) throw;
        throw timeout_error("greenlets: resolve " + name + ": timed out (deadline)");
      }
    } else {
      r = run_in_thread([run] { return run(0); });
    }
  }
  if (r.rc != 0) {
    const std::string what = "greenlets: resolve " + (name.empty() ? std::string("(any)") : name);
    if (r.rc == EAI_SYSTEM) throw std::system_error(r.err, std::generic_category(), what);
    throw error(what + ": " + ::gai_strerror(r.rc));
  }
  if (r.found.empty()) throw error("greenlets: resolve " + name + ": no IPv4 or IPv6 address");
  return std::move(r.found);
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_NET_SOCKET_HPP
