// `resolve`: a host name's addresses, looked up with `getaddrinfo` on one of the hub's
// worker threads (it blocks), so that other tasks run meanwhile.
//
//   for (const greenlets::endpoint& e : greenlets::resolve("localhost", 80))
//     std::cout << e.to_string() << '\n';            // "[::1]:80", "127.0.0.1:80"
#ifndef GREENLETS_NET_RESOLVE_HPP
#define GREENLETS_NET_RESOLVE_HPP

#include <cstdint>
#include <string_view>
#include <vector>

#include "greenlets/detail/net_socket.hpp"
#include "greenlets/net/deadline.hpp"
#include "greenlets/net/endpoint.hpp"

namespace greenlets {

/// The IPv4 and IPv6 addresses of `host` with `port`, in `getaddrinfo`'s order. An
/// address given as text ("127.0.0.1", "::1") is converted at once, without a thread.
///
/// Python: `gevent.socket.getaddrinfo(host, port, 0, SOCK_STREAM)`.
/// Throws: `error` if the name does not resolve; `timeout_error` at the deadline.
inline std::vector<endpoint> resolve(std::string_view host, std::uint16_t port, deadline dl = {}) {
  const time_point until = dl ? dl.from_now() : time_point{};
  return detail::resolve_host(host, port, false, dl ? &until : nullptr);
}

}  // namespace greenlets

#endif  // GREENLETS_NET_RESOLVE_HPP
