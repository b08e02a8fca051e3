// The patch's implementation: the C library's blocking calls, interposed. Compiled in
// one translation unit of the executable (GREENLETS_PATCH_IMPLEMENTATION); the real
// functions are found once each with dlsym(RTLD_NEXT).
//
// A call takes the cooperative path only on a thread whose hub exists, from a task or
// the main greenlet; anywhere else it is the C library's call, unchanged. On the
// cooperative path a call is first made without blocking (sockets: MSG_DONTWAIT, other
// fds: a zero-time poll). Only when it would block does the patch look at what the
// program asked for: an fd the program made non-blocking gets EAGAIN, as it would
// without the patch; otherwise the task parks on the hub until the fd is ready (or the
// socket's SO_RCVTIMEO/SO_SNDTIMEO passes) and the call is retried.
//
// No exception crosses the C frames: whatever interrupts a parked call (a `timeout`
// scope, a kill, a close) makes it fail with an errno, and the exception waits in the
// task's record for its next blocking point in C++ code (the hub's `block`).
#ifndef GREENLETS_DETAIL_PATCH_IMPL_HPP
#define GREENLETS_DETAIL_PATCH_IMPL_HPP

#if defined(__USE_FORTIFY_LEVEL) && __USE_FORTIFY_LEVEL > 0
#error \
    "greenlets: the patch's translation unit must be built without _FORTIFY_SOURCE (its read, recv and poll are the C library's inline wrappers then)"
#endif

#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "greenlets/detail/sys.hpp"
#include "greenlets/hub/errors.hpp"
#include "greenlets/hub/hub.hpp"
#include "greenlets/hub/thread_pool.hpp"

// The fortified entry points a caller built with _FORTIFY_SOURCE reaches instead.
extern "C" {
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* addr,
                       socklen_t* len);
int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen);
}

namespace greenlets::detail::patch {

// ---- The C library's functions --------------------------------------------------

[[noreturn]] inline void missing(const char* name) noexcept {
  std::fprintf(stderr, "greenlets: patch: dlsym(RTLD_NEXT, \"%s\") found nothing\n", name);
  std::abort();
}

// Resolved on first use (a call may come before static initialisation); a race resolves
// twice to the same address. Out of line, so that the fast path saves no registers.
GREENLETS_NOINLINE GREENLETS_COLD inline void* resolve_slow(std::atomic<void*>& slot,
                                                            const char* name) noexcept {
  void* p = ::dlsym(RTLD_NEXT, name);
  if (p == nullptr) missing(name);
  slot.store(p, std::memory_order_release);
  return p;
}

template <class F>
inline F* resolve(std::atomic<void*>& slot, const char* name) noexcept {
  void* p = slot.load(std::memory_order_acquire);
  if (GREENLETS_UNLIKELY(p == nullptr)) p = resolve_slow(slot, name);
  return reinterpret_cast<F*>(p);
}

// The C library's `name`: real_name()(args...), or, on the paths where every
// instruction counts (the library's own calls), call_real<name_fn>(slot_name, ...).
#define GREENLETS_PATCH_REAL(name, ...)           \
  using name##_fn = __VA_ARGS__;                  \
  inline std::atomic<void*> slot_##name{nullptr}; \
  inline name##_fn* real_##name() noexcept { return resolve<name##_fn>(slot_##name, #name); }

template <class F, class... A>
GREENLETS_NOINLINE GREENLETS_COLD auto call_first(std::atomic<void*>& slot, const char* name,
                                                  A... a) {
  return reinterpret_cast<F*>(resolve_slow(slot, name))(a...);
}

// Both ways out are tail calls: nothing saved, nothing restored.
// Not noexcept (the C library throws nothing): a noexcept caller could not jump.
template <class F, class... A>
inline auto call_real(std::atomic<void*>& slot, const char* name, A... a) {
  void* p = slot.load(std::memory_order_acquire);
  if (GREENLETS_UNLIKELY(p == nullptr)) return call_first<F>(slot, name, a...);
  return reinterpret_cast<F*>(p)(a...);
}

GREENLETS_PATCH_REAL(sleep, unsigned(unsigned))
GREENLETS_PATCH_REAL(usleep, int(useconds_t))
GREENLETS_PATCH_REAL(nanosleep, int(const timespec*, timespec*))
GREENLETS_PATCH_REAL(clock_nanosleep, int(clockid_t, int, const timespec*, timespec*))
GREENLETS_PATCH_REAL(read, ssize_t(int, void*, size_t))
GREENLETS_PATCH_REAL(readv, ssize_t(int, const iovec*, int))
GREENLETS_PATCH_REAL(recv, ssize_t(int, void*, size_t, int))
GREENLETS_PATCH_REAL(recvfrom, ssize_t(int, void*, size_t, int, sockaddr*, socklen_t*))
GREENLETS_PATCH_REAL(recvmsg, ssize_t(int, msghdr*, int))
GREENLETS_PATCH_REAL(write, ssize_t(int, const void*, size_t))
GREENLETS_PATCH_REAL(writev, ssize_t(int, const iovec*, int))
GREENLETS_PATCH_REAL(send, ssize_t(int, const void*, size_t, int))
GREENLETS_PATCH_REAL(sendto, ssize_t(int, const void*, size_t, int, const sockaddr*, socklen_t))
GREENLETS_PATCH_REAL(sendmsg, ssize_t(int, const msghdr*, int))
GREENLETS_PATCH_REAL(accept, int(int, sockaddr*, socklen_t*))
GREENLETS_PATCH_REAL(accept4, int(int, sockaddr*, socklen_t*, int))
GREENLETS_PATCH_REAL(connect, int(int, const sockaddr*, socklen_t))
GREENLETS_PATCH_REAL(poll, int(pollfd*, nfds_t, int))
GREENLETS_PATCH_REAL(select, int(int, fd_set*, fd_set*, fd_set*, timeval*))
GREENLETS_PATCH_REAL(socket, int(int, int, int))
GREENLETS_PATCH_REAL(socketpair, int(int, int, int, int*))
GREENLETS_PATCH_REAL(close, int(int))
GREENLETS_PATCH_REAL(dup, int(int))
GREENLETS_PATCH_REAL(dup2, int(int, int))
GREENLETS_PATCH_REAL(dup3, int(int, int, int))
GREENLETS_PATCH_REAL(fcntl, int(int, int, ...))
GREENLETS_PATCH_REAL(ioctl, int(int, unsigned long, ...))
GREENLETS_PATCH_REAL(setsockopt, int(int, int, int, const void*, socklen_t))
GREENLETS_PATCH_REAL(getaddrinfo, int(const char*, const char*, const addrinfo*, addrinfo**))
GREENLETS_PATCH_REAL(freeaddrinfo, void(addrinfo*))
GREENLETS_PATCH_REAL(__read_chk, ssize_t(int, void*, size_t, size_t))
GREENLETS_PATCH_REAL(__recv_chk, ssize_t(int, void*, size_t, size_t, int))
GREENLETS_PATCH_REAL(__recvfrom_chk,
                     ssize_t(int, void*, size_t, size_t, int, sockaddr*, socklen_t*))
GREENLETS_PATCH_REAL(__poll_chk, int(pollfd*, nfds_t, int, size_t))

#undef GREENLETS_PATCH_REAL

// ---- What the patch knows about each fd (process-wide) ----------------------------
//
// One word per fd: a generation, bumped whenever the number may name a new file (close,
// socket, accept, dup...), whether it is a socket, and, once asked, its blocking mode and
// whether it has SO_RCVTIMEO/SO_SNDTIMEO. Only a hint: a stale "socket" is corrected by
// ENOTSOCK, and the mode is forgotten by every call that changes it (fcntl F_SETFL,
// ioctl FIONBIO, setsockopt).

inline constexpr std::uint64_t kind_unknown = 0;
inline constexpr std::uint64_t kind_socket = 1;
inline constexpr std::uint64_t kind_other = 2;
inline constexpr std::uint64_t kind_mask = 3;
inline constexpr std::uint64_t mode_known = 4;
inline constexpr std::uint64_t mode_nonblock = 8;
inline constexpr std::uint64_t mode_timeo = 16;

inline constexpr int table_size = 1 << 16;
inline std::atomic<std::uint64_t> fd_table[table_size];

inline std::uint64_t info(int fd) noexcept {
  return fd >= 0 && fd < table_size ? fd_table[fd].load(std::memory_order_relaxed) : 0;
}
inline std::uint32_t gen_of(std::uint64_t v) noexcept {
  return static_cast<std::uint32_t>(v >> 32);
}

// The number names a new file: a new generation with `bits`.
inline void renew(int fd, std::uint64_t bits) noexcept {
  if (fd < 0 || fd >= table_size) return;
  std::uint64_t v = fd_table[fd].load(std::memory_order_relaxed);
  while (!fd_table[fd].compare_exchange_weak(v, ((v >> 32) + 1) << 32 | bits,
                                             std::memory_order_relaxed)) {
  }
}

// Sets what `keep` does not mask, unless the generation changed meanwhile.
inline void update(int fd, std::uint64_t seen, std::uint64_t keep, std::uint64_t bits) noexcept {
  if (fd < 0 || fd >= table_size) return;
  fd_table[fd].compare_exchange_strong(seen, (seen & keep) | bits, std::memory_order_relaxed);
}

inline void set_kind(int fd, std::uint64_t kind) noexcept {
  const std::uint64_t v = info(fd);
  if ((v & kind_mask) != kind) update(fd, v, ~(kind_mask | mode_known), kind);
}

inline void forget_mode(int fd) noexcept {
  if (fd < 0 || fd >= table_size) return;
  fd_table[fd].fetch_and(~mode_known, std::memory_order_relaxed);
}

struct fd_mode {
  bool nonblock = false;
  bool timeo = false;
};

// The program's blocking mode for `fd` (asked once per generation).
inline fd_mode mode_of(int fd, bool socket) noexcept {
  const std::uint64_t v = info(fd);
  if ((v & mode_known) != 0) return {(v & mode_nonblock) != 0, (v & mode_timeo) != 0};
  fd_mode m;
  const int fl = real_fcntl()(fd, F_GETFL);
  m.nonblock = fl >= 0 && (fl & O_NONBLOCK) != 0;
  if (socket) {
    for (int opt : {SO_RCVTIMEO, SO_SNDTIMEO}) {
      timeval tv{};
      socklen_t len = sizeof tv;
      if (::getsockopt(fd, SOL_SOCKET, opt, &tv, &len) == 0 && (tv.tv_sec != 0 || tv.tv_usec != 0))
        m.timeo = true;
    }
  }
  update(fd, v, ~(mode_known | mode_nonblock | mode_timeo),
         mode_known | (m.nonblock ? mode_nonblock : 0) | (m.timeo ? mode_timeo : 0));
  return m;
}

// The deadline SO_RCVTIMEO (reading) or SO_SNDTIMEO sets for one call, if any.
inline bool socket_deadline(int fd, bool write, time_point& until) noexcept {
  timeval tv{};
  socklen_t len = sizeof tv;
  if (::getsockopt(fd, SOL_SOCKET, write ? SO_SNDTIMEO : SO_RCVTIMEO, &tv, &len) != 0) return false;
  if (tv.tv_sec == 0 && tv.tv_usec == 0) return false;
  until = std::chrono::steady_clock::now() + std::chrono::seconds(tv.tv_sec) +
          std::chrono::microseconds(tv.tv_usec);
  return true;
}

// ---- Per hub: the fds the patch waited on ------------------------------------------
//
// An fd the patch parks on is registered in the hub's epoll set edge-triggered, both
// directions, and stays there until it is closed: no epoll_ctl per wait (as the
// library's own sockets). A call always tries first and parks only after EAGAIN, so an
// edge that comes after the attempt is never missed.

// A close of the fd another task waits on: its call fails with EBADF.
struct fd_closed : error {
  using error::error;
};

struct fd_watch : fd_watcher {
  loop* l = nullptr;
  int fd = -1;
  std::uint32_t gen = 0;
  bool registered = false;
  waiter* reader = nullptr;
  waiter* writer = nullptr;

  static void event(fd_watcher& w, std::uint32_t ev) noexcept {
    auto& s = static_cast<fd_watch&>(w);
    const std::uint32_t bad = EPOLLHUP | EPOLLERR;
    if (s.reader != nullptr && (ev & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | bad)) != 0)
      s.l->wake(*s.reader);
    if (s.writer != nullptr && (ev & (EPOLLOUT | bad)) != 0) s.l->wake(*s.writer);
  }
};

struct hub_state : loop::extension {
  std::vector<std::unique_ptr<fd_watch>> watches;  // by fd

  fd_watch* find(int fd) noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < watches.size()
               ? watches[static_cast<std::size_t>(fd)].get()
               : nullptr;
  }
};

inline hub_state* state_of(loop& l) noexcept {
  return static_cast<hub_state*>(l.patch_state().get());
}

// The fd's watch, created on first use; null for fds beyond the table or out of memory.
inline fd_watch* watch_of(loop& l, int fd) noexcept {
  if (fd < 0 || fd >= table_size) return nullptr;
  try {
    auto& ext = l.patch_state();
    if (!ext) ext = std::make_unique<hub_state>();
    auto& ws = static_cast<hub_state&>(*ext).watches;
    const auto i = static_cast<std::size_t>(fd);
    if (ws.size() <= i) ws.resize(i + 1);
    if (!ws[i]) {
      ws[i] = std::make_unique<fd_watch>();
      ws[i]->l = &l;
      ws[i]->fd = fd;
      ws[i]->on_event = &fd_watch::event;
    }
    return ws[i].get();
  } catch (...) {
    return nullptr;
  }
}

// Registers the watch for the fd's current generation; false if epoll refuses the fd.
// Sockets come only from calls the patch sees (a new generation each), so a registration
// of the same generation is still there; other fds (pipes, terminals) may be closed and
// made again behind its back (fclose, pclose, pipe, open), so their registration is
// checked at each wait (EPOLL_CTL_MOD fails with ENOENT once it is gone).
inline bool arm(fd_watch& w, bool trust) noexcept {
  const std::uint32_t gen = gen_of(info(w.fd));
  if (w.registered && w.gen == gen && trust) return true;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&w)) | fd_watcher_tag;
  const int ep = w.l->epoll_handle();
  const bool ok = w.registered
                      ? ::epoll_ctl(ep, EPOLL_CTL_MOD, w.fd, &ev) == 0 ||
                            (errno == ENOENT && ::epoll_ctl(ep, EPOLL_CTL_ADD, w.fd, &ev) == 0)
                      : ::epoll_ctl(ep, EPOLL_CTL_ADD, w.fd, &ev) == 0 ||
                            (errno == EEXIST && ::epoll_ctl(ep, EPOLL_CTL_MOD, w.fd, &ev) == 0);
  w.registered = ok;
  w.gen = gen;
  return ok;
}

// Wakes the patch's waiters on `fd` (and the hub's wait_fd waiters) with EBADF and
// drops the registration: `fd` is being closed on this thread.
inline void cancel_waits(loop& l, int fd) noexcept {
  hub_state* hs = state_of(l);
  fd_watch* w = hs != nullptr ? hs->find(fd) : nullptr;
  const bool waited = w != nullptr && (w->reader != nullptr || w->writer != nullptr);
  if (!waited && !l.fd_waiting(fd, false) && !l.fd_waiting(fd, true)) {
    if (w != nullptr && w->registered) {
      ::epoll_ctl(l.epoll_handle(), EPOLL_CTL_DEL, fd, nullptr);
      w->registered = false;
    }
    return;
  }
  std::exception_ptr e;
  try {
    e = std::make_exception_ptr(
        fd_closed("greenlets: fd " + std::to_string(fd) + " was closed while a task waited on it"));
  } catch (...) {
    e = std::current_exception();
  }
  if (w != nullptr) {
    if (w->reader != nullptr) l.fail(*w->reader, e);
    if (w->writer != nullptr && w->writer != w->reader) l.fail(*w->writer, e);
    w->reader = w->writer = nullptr;
    if (w->registered) ::epoll_ctl(l.epoll_handle(), EPOLL_CTL_DEL, fd, nullptr);
    w->registered = false;
  }
  l.cancel_fd(fd, e);
}

// ---- Parking --------------------------------------------------------------------

// The calling greenlet, if the patch makes its calls cooperative: a task or the main
// greenlet of a thread whose hub exists. Reads two thread_local pointers.
struct caller {
  loop* l = nullptr;
  wait_ctx* c = nullptr;
};

inline bool cooperative(caller& k) noexcept {
  loop* l = loop::local_if_any();
  if (GREENLETS_LIKELY(l == nullptr)) return false;
  wait_ctx* c = l->task_or_main_ctx();
  if (c == nullptr) return false;
  k.l = l;
  k.c = c;
  return true;
}

// What a park ended with.
enum : int {
  parked_ready = 0,    // try the call again
  parked_cannot = -1,  // the hub cannot wait for it: make the real (blocking) call
  // else an errno: EAGAIN (the call's own deadline passed), EBADF (closed meanwhile),
  // ETIMEDOUT (a `timeout` scope expired), EINTR (killed, or another exception)
};

// The most recent `timeout` scope of `c` that fired and was thrown.
inline const timeout_timer* fired_scope(const wait_ctx& c) noexcept {
  const timeout_timer* best = nullptr;
  for (const timeout_timer* t = c.timeouts; t != nullptr; t = t->outer) {
    if (t->expired && t->delivered && (best == nullptr || t->fired > best->fired)) best = t;
  }
  return best;
}

// Runs `block()` (which parks the caller in the hub, and may throw) with no exception
// escaping: returns parked_ready, EAGAIN if `block()` returned false (its deadline), or
// the errno for what it threw, which is kept in `c.deferred` for the next blocking point
// in C++ code. While the call is parked, an exception kept earlier stays aside: the C
// code it interrupted may well retry, and must be able to block meanwhile.
template <class Block>
inline int guarded(wait_ctx& c, Block&& block) noexcept {
  std::exception_ptr held = std::move(c.deferred);
  const timeout_timer* held_scope = c.deferred_scope;
  c.deferred = nullptr;
  c.deferred_scope = nullptr;
  int rc = parked_ready;
  std::exception_ptr got;
  const timeout_timer* got_scope = nullptr;
  try {
    rc = block() ? parked_ready : EAGAIN;
  } catch (const fd_closed&) {
    rc = EBADF;
  } catch (const timeout_error&) {
    rc = ETIMEDOUT;
    got = std::current_exception();
    got_scope = fired_scope(c);
  } catch (...) {
    rc = EINTR;
    got = std::current_exception();
  }
  // Nothing was stored meanwhile (block() delivers before it parks). A kill replaces a
  // timeout kept earlier; otherwise the earlier one stays.
  if (!held || (got && got_scope == nullptr && held_scope != nullptr)) {
    c.deferred = std::move(got);
    c.deferred_scope = got_scope;
  } else {
    c.deferred = std::move(held);
    c.deferred_scope = held_scope;
  }
  return rc;
}

// Waits for events on several fds (or one fd another task already waits on in that
// direction) through an epoll set of this call's own, which the hub waits on.
inline int park_set(const caller& k, const pollfd* fds, nfds_t n,
                    const time_point* until) noexcept {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return parked_cannot;
  for (nfds_t i = 0; i < n; ++i) {
    if (fds[i].fd < 0) continue;
    epoll_event ev{};
    const auto e = static_cast<unsigned>(fds[i].events);
    ev.events = ((e & (POLLIN | POLLRDNORM)) != 0 ? EPOLLIN : 0u) |
                ((e & POLLPRI) != 0 ? EPOLLPRI : 0u) |
                ((e & (POLLOUT | POLLWRNORM)) != 0 ? EPOLLOUT : 0u) |
                ((e & POLLRDHUP) != 0 ? EPOLLRDHUP : 0u);
    ev.data.fd = fds[i].fd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fds[i].fd, &ev) != 0 && errno == EEXIST) {
      // The same fd twice in the array: wait for the union of its events.
      for (nfds_t j = 0; j < i; ++j) {
        if (fds[j].fd == fds[i].fd) {
          const auto f = static_cast<unsigned>(fds[j].events);
          ev.events |= ((f & (POLLIN | POLLRDNORM)) != 0 ? EPOLLIN : 0u) |
                       ((f & POLLPRI) != 0 ? EPOLLPRI : 0u) |
                       ((f & (POLLOUT | POLLWRNORM)) != 0 ? EPOLLOUT : 0u) |
                       ((f & POLLRDHUP) != 0 ? EPOLLRDHUP : 0u);
        }
      }
      ::epoll_ctl(ep, EPOLL_CTL_MOD, fds[i].fd, &ev);
    }
    // Other refusals (a regular file) are fds poll() reports ready anyway.
  }
  waiter w(*k.c, "poll (patched)");
  bool refused = false;
  int rc = guarded(*k.c, [&] {
    try {
      k.l->wait_fd(w, ep, false, "poll (patched)", until);
    } catch (const error&) {
      // Before parking (w.fd still -1), only epoll refusing the set throws: that is
      // no exception for the task to keep.
      if (w.fd >= 0) throw;
      refused = true;
    }
    return !w.timed_out;
  });
  if (refused) rc = parked_cannot;
  real_close()(ep);
  return rc;
}

// Parks the caller until `fd` is ready for reading and/or writing, or `until`.
inline int park_fd(const caller& k, int fd, bool read, bool write,
                   const time_point* until) noexcept {
  fd_watch* wt = watch_of(*k.l, fd);
  if (wt == nullptr || (read && wt->reader != nullptr) || (write && wt->writer != nullptr)) {
    // Another task waits on it in that direction (the hub has one slot per direction),
    // or it is beyond the table: an epoll set of this call's own.
    pollfd p{fd, static_cast<short>((read ? POLLIN : 0) | (write ? POLLOUT : 0)), 0};
    return park_set(k, &p, 1, until);
  }
  if (!arm(*wt, (info(fd) & kind_mask) == kind_socket)) return parked_cannot;
  waiter w(*k.c, read ? (write ? "poll (patched)" : "read (patched)") : "write (patched)");
  w.fd = fd;
  if (read) wt->reader = &w;
  if (write) wt->writer = &w;
  k.l->add_fd_wait();
  const int rc = guarded(*k.c, [&] { return k.l->block_for(w, until); });
  k.l->remove_fd_wait();
  if (wt->reader == &w) wt->reader = nullptr;
  if (wt->writer == &w) wt->writer = nullptr;
  return rc;
}

// Parks the caller until `until` (a sleep); 0, or the errno of an interruption.
inline int park_until(const caller& k, time_point until) noexcept {
  waiter w(*k.c, "sleep (patched)");
  const int rc = guarded(*k.c, [&] { return k.l->block_until(w, until); });
  return rc == EAGAIN ? 0 : rc;
}

// A timespec as a duration, at most a century (a sleep for ever, without overflow).
inline std::chrono::nanoseconds to_ns(const timespec& t) noexcept {
  constexpr time_t century = 100LL * 365 * 24 * 3600;
  return std::chrono::seconds(t.tv_sec < century ? t.tv_sec : century) +
         std::chrono::nanoseconds(t.tv_nsec);
}
inline timespec to_timespec(std::chrono::nanoseconds d) noexcept {
  timespec t{};
  t.tv_sec = static_cast<time_t>(d.count() / 1000000000);
  t.tv_nsec = static_cast<long>(d.count() % 1000000000);
  return t;
}

// ---- The calls ------------------------------------------------------------------

inline time_point after(std::chrono::nanoseconds d) noexcept {
  return std::chrono::steady_clock::now() + d;
}

// A socket call made cooperative: `call(extra)` makes it once with `extra` added to its
// flags. Returns what the call returns, errno set as the call set it.
template <class Call>
inline ssize_t socket_call(const caller& k, int fd, bool write, int flags, int saved,
                           Call&& call) noexcept {
  if ((flags & MSG_DONTWAIT) != 0) return call(0);
  time_point until{};
  bool has_until = false;
  bool asked = false;
  for (;;) {
    const ssize_t r = call(MSG_DONTWAIT);
    if (r >= 0) {
      errno = saved;
      return r;
    }
    const int err = errno;
    if (err != EAGAIN && err != EWOULDBLOCK) return r;
    const fd_mode m = mode_of(fd, true);
    if (m.nonblock) {
      errno = err;
      return -1;
    }
    if (m.timeo && !asked) {
      has_until = socket_deadline(fd, write, until);
      asked = true;
    }
    const int rc = park_fd(k, fd, !write, write, has_until ? &until : nullptr);
    if (rc == parked_cannot) {
      errno = saved;
      return call(0);
    }
    if (rc != parked_ready) {
      errno = rc;
      return -1;
    }
  }
}

// A call on an fd that is not a socket: a zero-time poll first, the call once the fd is
// ready (or if the program made it non-blocking).
template <class Call>
inline ssize_t polled_call(const caller& k, int fd, bool write, int saved, Call&& call) noexcept {
  for (;;) {
    pollfd p{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    if (real_poll()(&p, 1, 0) != 0 || mode_of(fd, false).nonblock) {
      errno = saved;
      return call();
    }
    const int rc = park_fd(k, fd, !write, write, nullptr);
    if (rc == parked_cannot) {
      errno = saved;
      return call();
    }
    if (rc != parked_ready) {
      errno = rc;
      return -1;
    }
  }
}

// Repeats `once(done)` until `n` bytes are through, as a blocking stream socket (or
// MSG_WAITALL) does: a short count only if a later part fails or the fd is non-blocking.
template <class Once>
inline ssize_t whole(int fd, std::size_t n, int saved, Once&& once) noexcept {
  std::size_t done = 0;
  for (;;) {
    const ssize_t r = once(done);
    if (r < 0) {
      if (done == 0) return r;
      errno = saved;
      return static_cast<ssize_t>(done);
    }
    done += static_cast<std::size_t>(r);
    if (r == 0 || done >= n || mode_of(fd, true).nonblock) {
      errno = saved;
      return static_cast<ssize_t>(done);
    }
  }
}

// A msghdr's iovecs with the first `skip` bytes dropped.
inline bool skip_iov(const msghdr& in, std::size_t skip, std::vector<iovec>& out,
                     msghdr& m) noexcept {
  try {
    out.clear();
    for (std::size_t i = 0; i < in.msg_iovlen; ++i) {
      iovec v = in.msg_iov[i];
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      v.iov_base = static_cast<char*>(v.iov_base) + skip;
      v.iov_len -= skip;
      skip = 0;
      out.push_back(v);
    }
  } catch (...) {
    return false;
  }
  m = in;
  m.msg_iov = out.data();
  m.msg_iovlen = out.size();
  return true;
}

inline std::size_t iov_bytes(const iovec* v, std::size_t n) noexcept {
  std::size_t total = 0;
  for (std::size_t i = 0; i < n; ++i) total += v[i].iov_len;
  return total;
}

// sendmsg/recvmsg on a socket, whole for a send (or MSG_WAITALL).
inline ssize_t msg_call(const caller& k, int fd, bool write, const msghdr* msg, int flags,
                        int saved) noexcept {
  auto once = [&](const msghdr* m) {
    return socket_call(k, fd, write, flags, saved, [&](int extra) {
      return write ? real_sendmsg()(fd, m, flags | extra)
                   : real_recvmsg()(fd, const_cast<msghdr*>(m), flags | extra);
    });
  };
  if ((flags & MSG_DONTWAIT) != 0 || (!write && (flags & MSG_WAITALL) == 0)) return once(msg);
  const std::size_t n = iov_bytes(msg->msg_iov, msg->msg_iovlen);
  std::vector<iovec> rest;
  msghdr part{};
  return whole(fd, n, saved, [&](std::size_t done) -> ssize_t {
    if (done == 0) return once(msg);
    if (!skip_iov(*msg, done, rest, part)) return -1;
    part.msg_control = nullptr;  // ancillary data goes with the first part only
    part.msg_controllen = 0;
    return once(&part);
  });
}

inline std::uint64_t kind_of(int fd) noexcept { return info(fd) & kind_mask; }

// Tries a socket call on an fd of unknown kind: true if it is a socket (and `r` holds
// the call's result), false (errno restored) if it is not.
template <class Call>
inline bool as_socket(int fd, int saved, ssize_t& r, Call&& call) noexcept {
  const std::uint64_t kind = kind_of(fd);
  if (kind == kind_other) return false;
  r = call();
  if (r < 0 && errno == ENOTSOCK) {
    set_kind(fd, kind_other);
    errno = saved;
    return false;
  }
  if (kind == kind_unknown && (r >= 0 || errno != EBADF)) set_kind(fd, kind_socket);
  return true;
}

inline ssize_t read_impl(int fd, void* buf, std::size_t n) noexcept {
  caller k;
  if (!cooperative(k)) return real_read()(fd, buf, n);
  const int saved = errno;
  ssize_t r = 0;
  if (as_socket(fd, saved, r, [&] {
        return socket_call(k, fd, false, 0, saved,
                           [&](int extra) { return real_recv()(fd, buf, n, extra); });
      }))
    return r;
  return polled_call(k, fd, false, saved, [&] { return real_read()(fd, buf, n); });
}

inline ssize_t write_impl(int fd, const void* buf, std::size_t n) noexcept {
  caller k;
  if (!cooperative(k)) return real_write()(fd, buf, n);
  const int saved = errno;
  ssize_t r = 0;
  if (as_socket(fd, saved, r, [&] {
        return whole(fd, n, saved, [&](std::size_t done) {
          return socket_call(k, fd, true, 0, saved, [&](int extra) {
            return real_send()(fd, static_cast<const char*>(buf) + done, n - done, extra);
          });
        });
      }))
    return r;
  // A pipe takes at most PIPE_BUF bytes without blocking once it polls writable: a
  // larger write goes in such parts, each after the pipe has room.
  struct stat st {};
  if (n > PIPE_BUF && ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) &&
      !mode_of(fd, false).nonblock) {
    errno = saved;
    return whole(fd, n, saved, [&](std::size_t done) {
      const std::size_t part = n - done < PIPE_BUF ? n - done : PIPE_BUF;
      return polled_call(k, fd, true, saved, [&] {
        return real_write()(fd, static_cast<const char*>(buf) + done, part);
      });
    });
  }
  return polled_call(k, fd, true, saved, [&] { return real_write()(fd, buf, n); });
}

inline ssize_t readv_impl(int fd, const iovec* iov, int cnt) noexcept {
  caller k;
  if (!cooperative(k) || cnt < 0) return real_readv()(fd, iov, cnt);
  const int saved = errno;
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<std::size_t>(cnt);
  ssize_t r = 0;
  if (as_socket(fd, saved, r, [&] { return msg_call(k, fd, false, &m, 0, saved); })) return r;
  return polled_call(k, fd, false, saved, [&] { return real_readv()(fd, iov, cnt); });
}

inline ssize_t writev_impl(int fd, const iovec* iov, int cnt) noexcept {
  caller k;
  if (!cooperative(k) || cnt < 0) return real_writev()(fd, iov, cnt);
  const int saved = errno;
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<std::size_t>(cnt);
  ssize_t r = 0;
  if (as_socket(fd, saved, r, [&] { return msg_call(k, fd, true, &m, 0, saved); })) return r;
  return polled_call(k, fd, true, saved, [&] { return real_writev()(fd, iov, cnt); });
}

inline ssize_t recvfrom_impl(int fd, void* buf, std::size_t n, int flags, sockaddr* addr,
                             socklen_t* len) noexcept {
  caller k;
  if (!cooperative(k)) return real_recvfrom()(fd, buf, n, flags, addr, len);
  const int saved = errno;
  auto once = [&](std::size_t done) {
    return socket_call(k, fd, false, flags, saved, [&](int extra) {
      return real_recvfrom()(fd, static_cast<char*>(buf) + done, n - done,
                             (flags & ~MSG_WAITALL) | extra, done == 0 ? addr : nullptr,
                             done == 0 ? len : nullptr);
    });
  };
  if ((flags & MSG_WAITALL) == 0 || (flags & MSG_DONTWAIT) != 0) {
    return socket_call(k, fd, false, flags, saved, [&](int extra) {
      return real_recvfrom()(fd, buf, n, flags | extra, addr, len);
    });
  }
  return whole(fd, n, saved, once);
}

inline ssize_t sendto_impl(int fd, const void* buf, std::size_t n, int flags, const sockaddr* addr,
                           socklen_t len) noexcept {
  caller k;
  if (!cooperative(k)) return real_sendto()(fd, buf, n, flags, addr, len);
  const int saved = errno;
  if ((flags & MSG_DONTWAIT) != 0) return real_sendto()(fd, buf, n, flags, addr, len);
  return whole(fd, n, saved, [&](std::size_t done) {
    return socket_call(k, fd, true, flags, saved, [&](int extra) {
      return real_sendto()(fd, static_cast<const char*>(buf) + done, n - done, flags | extra, addr,
                           len);
    });
  });
}

inline int accept_impl(int fd, sockaddr* addr, socklen_t* len, int flags, bool four) noexcept {
  caller k;
  auto call = [&] {
    return four ? real_accept4()(fd, addr, len, flags) : real_accept()(fd, addr, len);
  };
  int r;
  if (!cooperative(k)) {
    r = call();
  } else {
    const int saved = errno;
    time_point until{};
    bool has_until = false;
    bool asked = false;
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (real_poll()(&p, 1, 0) != 0) break;
      const fd_mode m = mode_of(fd, true);
      if (m.nonblock) break;
      if (m.timeo && !asked) {
        has_until = socket_deadline(fd, false, until);
        asked = true;
      }
      const int rc = park_fd(k, fd, true, false, has_until ? &until : nullptr);
      if (rc == parked_cannot) break;
      if (rc != parked_ready) {
        errno = rc;
        return -1;
      }
    }
    errno = saved;
    r = call();
  }
  // Accepted sockets may inherit the listener's timeouts: their mode is asked later.
  if (r >= 0) renew(r, kind_socket);
  return r;
}

inline int connect_impl(int fd, const sockaddr* addr, socklen_t len) noexcept {
  caller k;
  if (!cooperative(k) || mode_of(fd, true).nonblock) return real_connect()(fd, addr, len);
  const int saved = errno;
  const int fl = real_fcntl()(fd, F_GETFL);
  if (fl < 0 || real_fcntl()(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
    errno = saved;
    return real_connect()(fd, addr, len);
  }
  int r = real_connect()(fd, addr, len);
  const int err = errno;
  real_fcntl()(fd, F_SETFL, fl);  // the handshake goes on in either mode
  if (r == 0) {
    errno = saved;
    return 0;
  }
  if (err != EINPROGRESS) {
    errno = err;
    return -1;
  }
  time_point until{};
  const bool has_until = socket_deadline(fd, true, until);
  for (;;) {
    const int rc = park_fd(k, fd, false, true, has_until ? &until : nullptr);
    if (rc == EAGAIN) {
      errno = EINPROGRESS;  // as a blocking connect whose SO_SNDTIMEO passed
      return -1;
    }
    if (rc != parked_ready && rc != parked_cannot) {
      errno = rc;
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    if (real_poll()(&p, 1, rc == parked_cannot ? -1 : 0) != 0) break;
  }
  int so_error = 0;
  socklen_t l = sizeof so_error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &l) != 0) return -1;
  if (so_error != 0) {
    errno = so_error;
    return -1;
  }
  errno = saved;
  return 0;
}

inline int poll_until(const caller& k, pollfd* fds, nfds_t n, const time_point* until,
                      int saved) noexcept {
  for (;;) {
    std::size_t live = 0;
    nfds_t one = 0;
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].fd >= 0) {
        ++live;
        one = i;
      }
    }
    int rc;
    if (live == 0) {
      rc = until != nullptr ? park_until(k, *until) : park_until(k, time_point::max());
      if (rc == 0) rc = EAGAIN;
    } else if (live == 1 && (fds[one].events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM)) != 0 &&
               (fds[one].events & ~(POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM)) == 0) {
      // One fd, for reading and/or writing: the hub waits on it (else, for a hang-up
      // or urgent data only, below).
      const auto e = static_cast<unsigned>(fds[one].events);
      rc = park_fd(k, fds[one].fd, (e & (POLLIN | POLLRDNORM)) != 0,
                   (e & (POLLOUT | POLLWRNORM)) != 0, until);
    } else {
      rc = park_set(k, fds, n, until);
    }
    if (rc == parked_cannot) {
      int ms = -1;
      if (until != nullptr) {
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(*until - std::chrono::steady_clock::now());
        ms = left.count() < 0 ? 0
                              : static_cast<int>(left.count() > INT_MAX ? INT_MAX : left.count());
      }
      errno = saved;
      return real_poll()(fds, n, ms);
    }
    if (rc != parked_ready && rc != EAGAIN) {
      errno = rc;
      return -1;
    }
    const int r = real_poll()(fds, n, 0);
    if (r != 0 || rc == EAGAIN) {
      if (r >= 0) errno = saved;
      return r;
    }
  }
}

inline int poll_impl(pollfd* fds, nfds_t n, int timeout) noexcept {
  caller k;
  if (!cooperative(k) || timeout == 0) return real_poll()(fds, n, timeout);
  const int saved = errno;
  const int r = real_poll()(fds, n, 0);
  if (r != 0) return r;
  const time_point until = after(std::chrono::milliseconds(timeout));
  return poll_until(k, fds, n, timeout > 0 ? &until : nullptr, saved);
}

inline int select_impl(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, timeval* tv) noexcept {
  caller k;
  if (!cooperative(k) || nfds < 0 || nfds > FD_SETSIZE ||
      (tv != nullptr && tv->tv_sec == 0 && tv->tv_usec == 0))
    return real_select()(nfds, rd, wr, ex, tv);
  const int saved = errno;
  std::vector<pollfd> p;
  try {
    for (int fd = 0; fd < nfds; ++fd) {
      short ev = 0;
      if (rd != nullptr && FD_ISSET(fd, rd)) ev |= POLLIN;
      if (wr != nullptr && FD_ISSET(fd, wr)) ev |= POLLOUT;
      if (ex != nullptr && FD_ISSET(fd, ex)) ev |= POLLPRI;
      if (ev != 0) p.push_back(pollfd{fd, ev, 0});
    }
  } catch (...) {
    return real_select()(nfds, rd, wr, ex, tv);
  }
  if (tv != nullptr && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)) {
    errno = EINVAL;
    return -1;
  }
  time_point until{};
  if (tv != nullptr) until = after(to_ns(timespec{tv->tv_sec, tv->tv_usec * 1000}));
  int r = real_poll()(p.data(), p.size(), 0);
  if (r == 0) r = poll_until(k, p.data(), p.size(), tv != nullptr ? &until : nullptr, saved);
  if (r < 0) return r;
  for (const pollfd& q : p) {
    if ((q.revents & POLLNVAL) != 0) {
      errno = EBADF;
      return -1;
    }
  }
  int count = 0;
  for (const pollfd& q : p) {
    const bool want_r = rd != nullptr && FD_ISSET(q.fd, rd);
    const bool want_w = wr != nullptr && FD_ISSET(q.fd, wr);
    const bool want_e = ex != nullptr && FD_ISSET(q.fd, ex);
    const bool is_r = want_r && (q.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
    const bool is_w = want_w && (q.revents & (POLLOUT | POLLERR)) != 0;
    const bool is_e = want_e && (q.revents & POLLPRI) != 0;
    if (rd != nullptr && !is_r) FD_CLR(q.fd, rd);
    if (wr != nullptr && !is_w) FD_CLR(q.fd, wr);
    if (ex != nullptr && !is_e) FD_CLR(q.fd, ex);
    count += static_cast<int>(is_r) + static_cast<int>(is_w) + static_cast<int>(is_e);
  }
  if (tv != nullptr) {  // as Linux's select: the time left
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        until - std::chrono::steady_clock::now());
    const long long us = left.count() < 0 ? 0 : left.count();
    tv->tv_sec = static_cast<time_t>(us / 1000000);
    tv->tv_usec = static_cast<suseconds_t>(us % 1000000);
  }
  errno = saved;
  return count;
}

// A sleep of `d` (at least zero; zero yields to the other tasks).
inline int sleep_for(const caller& k, std::chrono::nanoseconds d,
                     std::chrono::nanoseconds* left) noexcept {
  const time_point until =
      after(d > std::chrono::nanoseconds::zero() ? d : std::chrono::nanoseconds::zero());
  const int rc = park_until(k, until);
  if (rc != 0 && left != nullptr) {
    const auto l = until - std::chrono::steady_clock::now();
    *left = l > l.zero() ? std::chrono::duration_cast<std::chrono::nanoseconds>(l)
                         : std::chrono::nanoseconds::zero();
  }
  return rc;
}

inline int clock_nanosleep_impl(clockid_t clock, int flags, const timespec* req,
                                timespec* rem) noexcept {
  caller k;
  if (!cooperative(k) || req == nullptr || req->tv_nsec < 0 || req->tv_nsec >= 1000000000 ||
      (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME))
    return real_clock_nanosleep()(clock, flags, req, rem);
  std::chrono::nanoseconds d = to_ns(*req);
  if ((flags & TIMER_ABSTIME) != 0) {
    timespec now{};
    clock_gettime(clock, &now);
    d -= to_ns(now);
  }
  std::chrono::nanoseconds left{};
  const int rc = sleep_for(k, d, &left);
  if (rc != 0 && rem != nullptr && (flags & TIMER_ABSTIME) == 0) *rem = to_timespec(left);
  return rc;
}

// ---- getaddrinfo ----------------------------------------------------------------

struct lookup {
  int rc = EAI_SYSTEM;
  int err = 0;
  addrinfo* res = nullptr;
  lookup() = default;
  lookup(lookup&& o) noexcept : rc(o.rc), err(o.err), res(std::exchange(o.res, nullptr)) {}
  lookup& operator=(lookup&&) = delete;
  ~lookup() {
    if (res != nullptr) real_freeaddrinfo()(res);  // nobody took it (the caller left)
  }
};

inline int getaddrinfo_impl(const char* node, const char* service, const addrinfo* hints,
                            addrinfo** res) noexcept {
  caller k;
  if (!cooperative(k) || node == nullptr ||
      (hints != nullptr && (hints->ai_flags & AI_NUMERICHOST) != 0))
    return real_getaddrinfo()(node, service, hints, res);
  // A numeric address needs no lookup (nor a thread).
  addrinfo numeric{};
  if (hints != nullptr) numeric = *hints;
  numeric.ai_flags |= AI_NUMERICHOST;
  const int quick = real_getaddrinfo()(node, service, &numeric, res);
  if (quick != EAI_NONAME) return quick;
  const int saved = errno;
  try {
    const std::string n(node);
    const std::optional<std::string> s =
        service != nullptr ? std::optional<std::string>(service) : std::nullopt;
    addrinfo h{};
    const bool has_hints = hints != nullptr;
    if (has_hints) {
      h.ai_flags = hints->ai_flags;
      h.ai_family = hints->ai_family;
      h.ai_socktype = hints->ai_socktype;
      h.ai_protocol = hints->ai_protocol;
    }
    std::optional<lookup> out;
    const int rc = guarded(*k.c, [&] {
      out.emplace(run_in_thread([n, s, h, has_hints] {
        lookup r;
        r.rc = real_getaddrinfo()(n.c_str(), s ? s->c_str() : nullptr, has_hints ? &h : nullptr,
                                  &r.res);
        r.err = errno;
        return r;
      }));
      return true;
    });
    if (rc != parked_ready) {
      errno = rc;
      return EAI_SYSTEM;
    }
    *res = std::exchange(out->res, nullptr);
    errno = out->rc == EAI_SYSTEM ? out->err : saved;
    return out->rc;
  } catch (...) {
    errno = ENOMEM;
    return EAI_MEMORY;
  }
}

}  // namespace greenlets::detail::patch

// ---- The interposed symbols ------------------------------------------------------

#define GREENLETS_PATCH_API extern "C" __attribute__((visibility("default")))

namespace gp = greenlets::detail::patch;

GREENLETS_PATCH_API unsigned sleep(unsigned seconds) {
  gp::caller k;
  if (!gp::cooperative(k)) return gp::real_sleep()(seconds);
  std::chrono::nanoseconds left{};
  if (gp::sleep_for(k, std::chrono::seconds(seconds), &left) == 0) return 0;
  return static_cast<unsigned>(std::chrono::ceil<std::chrono::seconds>(left).count());
}

GREENLETS_PATCH_API int usleep(useconds_t us) {
  gp::caller k;
  if (!gp::cooperative(k)) return gp::real_usleep()(us);
  const int saved = errno;
  const int rc = gp::sleep_for(k, std::chrono::microseconds(us), nullptr);
  errno = rc == 0 ? saved : rc;
  return rc == 0 ? 0 : -1;
}

GREENLETS_PATCH_API int nanosleep(const timespec* req, timespec* rem) {
  gp::caller k;
  if (!gp::cooperative(k) || req == nullptr || req->tv_nsec < 0 || req->tv_nsec >= 1000000000 ||
      req->tv_sec < 0)
    return gp::real_nanosleep()(req, rem);
  const int saved = errno;
  std::chrono::nanoseconds left{};
  const int rc = gp::sleep_for(k, gp::to_ns(*req), &left);
  if (rc == 0) {
    errno = saved;
    return 0;
  }
  if (rem != nullptr) *rem = gp::to_timespec(left);
  errno = rc;
  return -1;
}

GREENLETS_PATCH_API int clock_nanosleep(clockid_t clock, int flags, const timespec* req,
                                        timespec* rem) {
  return gp::clock_nanosleep_impl(clock, flags, req, rem);
}

GREENLETS_PATCH_API ssize_t read(int fd, void* buf, size_t n) { return gp::read_impl(fd, buf, n); }
GREENLETS_PATCH_API ssize_t readv(int fd, const iovec* iov, int cnt) {
  return gp::readv_impl(fd, iov, cnt);
}
GREENLETS_PATCH_API ssize_t recv(int fd, void* buf, size_t n, int flags) {
  return gp::recvfrom_impl(fd, buf, n, flags, nullptr, nullptr);
}
GREENLETS_PATCH_API ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr,
                                     socklen_t* len) {
  return gp::recvfrom_impl(fd, buf, n, flags, addr, len);
}
GREENLETS_PATCH_API ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  gp::caller k;
  if (!gp::cooperative(k)) return gp::real_recvmsg()(fd, msg, flags);
  return gp::msg_call(k, fd, false, msg, flags, errno);
}
GREENLETS_PATCH_API ssize_t write(int fd, const void* buf, size_t n) {
  return gp::write_impl(fd, buf, n);
}
GREENLETS_PATCH_API ssize_t writev(int fd, const iovec* iov, int cnt) {
  return gp::writev_impl(fd, iov, cnt);
}
GREENLETS_PATCH_API ssize_t send(int fd, const void* buf, size_t n, int flags) {
  return gp::sendto_impl(fd, buf, n, flags, nullptr, 0);
}
GREENLETS_PATCH_API ssize_t sendto(int fd, const void* buf, size_t n, int flags,
                                   const sockaddr* addr, socklen_t len) {
  return gp::sendto_impl(fd, buf, n, flags, addr, len);
}
GREENLETS_PATCH_API ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  gp::caller k;
  if (!gp::cooperative(k)) return gp::real_sendmsg()(fd, msg, flags);
  return gp::msg_call(k, fd, true, msg, flags, errno);
}
GREENLETS_PATCH_API int accept(int fd, sockaddr* addr, socklen_t* len) {
  return gp::accept_impl(fd, addr, len, 0, false);
}
GREENLETS_PATCH_API int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  return gp::accept_impl(fd, addr, len, flags, true);
}
GREENLETS_PATCH_API int connect(int fd, const sockaddr* addr, socklen_t len) {
  return gp::connect_impl(fd, addr, len);
}
GREENLETS_PATCH_API int poll(pollfd* fds, nfds_t n, int timeout) {
  return gp::poll_impl(fds, n, timeout);
}
GREENLETS_PATCH_API int select(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, timeval* tv) {
  return gp::select_impl(nfds, rd, wr, ex, tv);
}

GREENLETS_PATCH_API int socket(int domain, int type, int protocol) noexcept {
  const int r = gp::real_socket()(domain, type, protocol);
  if (r >= 0) {
    gp::renew(r, gp::kind_socket | gp::mode_known |
                     ((type & SOCK_NONBLOCK) != 0 ? gp::mode_nonblock : 0));
  }
  return r;
}
GREENLETS_PATCH_API int socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
  const int r = gp::real_socketpair()(domain, type, protocol, sv);
  if (r == 0) {
    for (int i = 0; i < 2; ++i) {
      gp::renew(sv[i], gp::kind_socket | gp::mode_known |
                           ((type & SOCK_NONBLOCK) != 0 ? gp::mode_nonblock : 0));
    }
  }
  return r;
}

GREENLETS_PATCH_API int close(int fd) {
  // Waiters on this thread's hub wake with EBADF, whoever closes (the hub included).
  if (greenlets::detail::loop* l = greenlets::detail::loop::local_if_any())
    gp::cancel_waits(*l, fd);
  gp::renew(fd, gp::kind_unknown);
  return gp::real_close()(fd);
}
GREENLETS_PATCH_API int dup(int fd) noexcept {
  const int r = gp::real_dup()(fd);
  if (r >= 0) gp::renew(r, gp::kind_unknown);
  return r;
}
GREENLETS_PATCH_API int dup2(int fd, int to) noexcept {
  if (fd != to) {
    if (greenlets::detail::loop* l = greenlets::detail::loop::local_if_any())
      gp::cancel_waits(*l, to);
  }
  const int r = gp::real_dup2()(fd, to);
  if (r >= 0 && fd != to) gp::renew(r, gp::kind_unknown);
  return r;
}
GREENLETS_PATCH_API int dup3(int fd, int to, int flags) noexcept {
  if (greenlets::detail::loop* l = greenlets::detail::loop::local_if_any())
    gp::cancel_waits(*l, to);
  const int r = gp::real_dup3()(fd, to, flags);
  if (r >= 0) gp::renew(r, gp::kind_unknown);
  return r;
}

GREENLETS_PATCH_API int fcntl(int fd, int cmd, ...) {
  // Every argument fcntl takes fits in a pointer, as the C library reads it.
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  const int r = gp::real_fcntl()(fd, cmd, arg);
  if (r >= 0) {
    if (cmd == F_SETFL) gp::forget_mode(fd);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) gp::renew(r, gp::kind_unknown);
  }
  return r;
}
GREENLETS_PATCH_API int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  const int r = gp::real_ioctl()(fd, request, arg);
  if (r == 0 && request == FIONBIO) gp::forget_mode(fd);
  return r;
}
GREENLETS_PATCH_API int setsockopt(int fd, int level, int name, const void* value,
                                   socklen_t len) noexcept {
  const int r = gp::real_setsockopt()(fd, level, name, value, len);
  if (r == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO))
    gp::forget_mode(fd);
  return r;
}

GREENLETS_PATCH_API int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                                    addrinfo** res) {
  return gp::getaddrinfo_impl(node, service, hints, res);
}

GREENLETS_PATCH_API ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) return gp::real___read_chk()(fd, buf, n, buflen);  // reports the overflow
  return gp::read_impl(fd, buf, n);
}
GREENLETS_PATCH_API ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) return gp::real___recv_chk()(fd, buf, n, buflen, flags);
  return gp::recvfrom_impl(fd, buf, n, flags, nullptr, nullptr);
}
GREENLETS_PATCH_API ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags,
                                           sockaddr* addr, socklen_t* len) {
  if (n > buflen) return gp::real___recvfrom_chk()(fd, buf, n, buflen, flags, addr, len);
  return gp::recvfrom_impl(fd, buf, n, flags, addr, len);
}
GREENLETS_PATCH_API int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  if (fdslen / sizeof(pollfd) < n) return gp::real___poll_chk()(fds, n, timeout, fdslen);
  return gp::poll_impl(fds, n, timeout);
}

// What the library's own fds use (greenlets/detail/sys.hpp): the C library directly.
GREENLETS_PATCH_API ssize_t greenlets_real_recv(int fd, void* buf, size_t n, int flags) {
  return gp::call_real<gp::recv_fn>(gp::slot_recv, "recv", fd, buf, n, flags);
}
GREENLETS_PATCH_API ssize_t greenlets_real_send(int fd, const void* buf, size_t n, int flags) {
  return gp::call_real<gp::send_fn>(gp::slot_send, "send", fd, buf, n, flags);
}
GREENLETS_PATCH_API ssize_t greenlets_real_read(int fd, void* buf, size_t n) {
  return gp::call_real<gp::read_fn>(gp::slot_read, "read", fd, buf, n);
}
GREENLETS_PATCH_API ssize_t greenlets_real_write(int fd, const void* buf, size_t n) {
  return gp::call_real<gp::write_fn>(gp::slot_write, "write", fd, buf, n);
}
GREENLETS_PATCH_API int greenlets_real_close(int fd) {
  gp::renew(fd, gp::kind_unknown);
  return gp::real_close()(fd);
}
GREENLETS_PATCH_API int greenlets_real_accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  const int r = gp::real_accept4()(fd, addr, len, flags);
  if (r >= 0) gp::renew(r, gp::kind_socket);
  return r;
}
GREENLETS_PATCH_API int greenlets_real_connect(int fd, const sockaddr* addr, socklen_t len) {
  return gp::call_real<gp::connect_fn>(gp::slot_connect, "connect", fd, addr, len);
}
GREENLETS_PATCH_API int greenlets_real_socket(int domain, int type, int protocol) {
  const int r = gp::real_socket()(domain, type, protocol);
  if (r >= 0) gp::renew(r, gp::kind_socket);
  return r;
}

#undef GREENLETS_PATCH_API

#endif  // GREENLETS_DETAIL_PATCH_IMPL_HPP
