// Cooperative TCP sockets on the hub: `listen`, `connect`, `tcp_listener`, `tcp_socket`.
// Every blocking call waits in the calling thread's hub, takes a `deadline`, and
// honours an enclosing `timeout` scope.
//
//   auto l = greenlets::listen("127.0.0.1", 0);
//   greenlets::spawn([&] { auto c = l.accept(); c.write_all(c.read_line()); });
//   auto s = greenlets::connect("127.0.0.1", l.local_endpoint().port());
//   s.write_all("ping\n");  std::string echo = s.read_line();
#ifndef GREENLETS_NET_HPP
#define GREENLETS_NET_HPP

#include "greenlets/net/deadline.hpp"
#include "greenlets/net/endpoint.hpp"
#include "greenlets/net/errors.hpp"
#include "greenlets/net/resolve.hpp"
#include "greenlets/net/tcp_listener.hpp"
#include "greenlets/net/tcp_socket.hpp"

#endif  // GREENLETS_NET_HPP
