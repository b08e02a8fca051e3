// `endpoint`: an IPv4 or IPv6 address and port, as sockets report their ends and as
// `resolve` returns them.
//
//   greenlets::tcp_listener l = greenlets::listen("::1", 0);
//   std::cout << l.local_endpoint().to_string();      // "[::1]:40917"
#ifndef GREENLETS_NET_ENDPOINT_HPP
#define GREENLETS_NET_ENDPOINT_HPP

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace greenlets {

/// An IPv4 or IPv6 socket address: an IP address and a port.
///
/// Python: the `(host, port)` tuple of `sock.getpeername()` / `getsockname()`.
class endpoint {
 public:
  /// An empty endpoint (family `AF_UNSPEC`).
  endpoint() noexcept { std::memset(&addr_, 0, sizeof addr_); }

  /// The endpoint held in `addr` (an `AF_INET` or `AF_INET6` address of `len` bytes).
  endpoint(const sockaddr* addr, socklen_t len) noexcept : endpoint() {
    if (len > sizeof addr_) len = sizeof addr_;
    std::memcpy(&addr_, addr, len);
    len_ = len;
  }

  /// `AF_INET`, `AF_INET6`, or `AF_UNSPEC` when empty.
  int family() const noexcept { return addr_.ss_family; }

  /// The port, in host byte order.
  std::uint16_t port() const noexcept {
    if (family() == AF_INET) return ntohs(as<sockaddr_in>().sin_port);
    if (family() == AF_INET6) return ntohs(as<sockaddr_in6>().sin6_port);
    return 0;
  }

  /// The address as text: "127.0.0.1", "::1"; empty for an empty endpoint.
  std::string address() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (family() == AF_INET) {
      ::inet_ntop(AF_INET, &as<sockaddr_in>().sin_addr, buf, sizeof buf);
    } else if (family() == AF_INET6) {
      ::inet_ntop(AF_INET6, &as<sockaddr_in6>().sin6_addr, buf, sizeof buf);
    }
    return buf;
  }

  /// "127.0.0.1:80" or "[::1]:80"; "?" for an empty endpoint.
  std::string to_string() const {
    if (family() == AF_INET) return address() + ":" + std::to_string(port());
    if (family() == AF_INET6) return "[" + address() + "]:" + std::to_string(port());
    return "?";
  }

  /// The address for the socket calls.
  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&addr_); }
  /// Its length in bytes.
  socklen_t size() const noexcept { return len_; }

 private:
  template <class T>
  const T& as() const noexcept {
    return *reinterpret_cast<const T*>(&addr_);
  }

  sockaddr_storage addr_;
  socklen_t len_ = 0;
};

}  // namespace greenlets

#endif  // GREENLETS_NET_ENDPOINT_HPP
