// The system calls the hub and the sockets make, always reaching the C library.
//
// With the patch linked in (greenlets/patch.hpp), `::recv` and friends are the patch's
// cooperative versions. The library's own fds are non-blocking and waited on by the hub
// already, so these calls skip the patch: through the `greenlets_real_*` functions the
// patch defines, or, without the patch, straight to the C library. The references are
// weak: a program without the patch links them as null.
#ifndef GREENLETS_DETAIL_SYS_HPP
#define GREENLETS_DETAIL_SYS_HPP

#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstddef>

extern "C" {
// Defined by the patch's implementation: the C library's function of the same name.
__attribute__((weak)) ssize_t greenlets_real_recv(int fd, void* buf, std::size_t n, int flags);
__attribute__((weak)) ssize_t greenlets_real_send(int fd, const void* buf, std::size_t n,
                                                  int flags);
__attribute__((weak)) ssize_t greenlets_real_read(int fd, void* buf, std::size_t n);
__attribute__((weak)) ssize_t greenlets_real_write(int fd, const void* buf, std::size_t n);
__attribute__((weak)) int greenlets_real_close(int fd);
__attribute__((weak)) int greenlets_real_accept4(int fd, sockaddr* addr, socklen_t* len, int flags);
__attribute__((weak)) int greenlets_real_connect(int fd, const sockaddr* addr, socklen_t len);
__attribute__((weak)) int greenlets_real_socket(int domain, int type, int protocol);
}

namespace greenlets::detail::sys {

inline bool patched() noexcept { return &greenlets_real_recv != nullptr; }

inline ssize_t recv(int fd, void* buf, std::size_t n, int flags) noexcept {
  if (&greenlets_real_recv != nullptr) return greenlets_real_recv(fd, buf, n, flags);
  return ::recv(fd, buf, n, flags);
}
inline ssize_t send(int fd, const void* buf, std::size_t n, int flags) noexcept {
  if (&greenlets_real_send != nullptr) return greenlets_real_send(fd, buf, n, flags);
  return ::send(fd, buf, n, flags);
}
inline ssize_t read(int fd, void* buf, std::size_t n) noexcept {
  if (&greenlets_real_read != nullptr) return greenlets_real_read(fd, buf, n);
  return ::read(fd, buf, n);
}
inline ssize_t write(int fd, const void* buf, std::size_t n) noexcept {
  if (&greenlets_real_write != nullptr) return greenlets_real_write(fd, buf, n);
  return ::write(fd, buf, n);
}
inline int close(int fd) noexcept {
  if (&greenlets_real_close != nullptr) return greenlets_real_close(fd);
  return ::close(fd);
}
inline int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept {
  if (&greenlets_real_accept4 != nullptr) return greenlets_real_accept4(fd, addr, len, flags);
  return ::accept4(fd, addr, len, flags);
}
inline int connect(int fd, const sockaddr* addr, socklen_t len) noexcept {
  if (&greenlets_real_connect != nullptr) return greenlets_real_connect(fd, addr, len);
  return ::connect(fd, addr, len);
}
inline int socket(int domain, int type, int protocol) noexcept {
  if (&greenlets_real_socket != nullptr) return greenlets_real_socket(domain, type, protocol);
  return ::socket(domain, type, protocol);
}

}  // namespace greenlets::detail::sys

#endif  // GREENLETS_DETAIL_SYS_HPP
