// 42 — the tutorial's socket server in plain POSIX calls, concurrent under the patch.
//
// From the tutorial chapter on coroutines (gevent's socket concurrency in one thread):
// with `monkey.patch_all()` first, the ordinary socket module's accept, recv and send
// yield to the other greenlets, so one thread serves many clients, one greenlet per
// connection. Here the server is written with the C library's blocking calls (socket,
// bind, listen, accept, recv, send, close) and nothing from greenlets but `spawn`; the
// patch makes them cooperative. The tutorial's client ran 500 threads; here 500 client
// tasks, in plain POSIX calls too, each send three lines and check each reply.
//
//   from gevent import monkey; monkey.patch_all()
//   from socket import *
//   import gevent
//   def server(server_ip, port):
//       s = socket(AF_INET, SOCK_STREAM)
//       s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
//       s.bind((server_ip, port))
//       s.listen(5)
//       while True:
//           conn, addr = s.accept()
//           gevent.spawn(talk, conn, addr)
//   def talk(conn, addr):
//       try:
//           while True:
//               res = conn.recv(1024)
//               print('client %s:%s msg: %s' % (addr[0], addr[1], res))
//               conn.send(res.upper())
//       except Exception as e:
//           print(e)
//       finally:
//           conn.close()
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <iostream>
#include <string>
#include <vector>

#include <greenlets/hub.hpp>
#include <greenlets/patch.hpp>

int talks_done = 0;

// One connection: each message back upper-cased, until the client closes.
void talk(int conn) {
  char res[1024];
  for (;;) {
    const ssize_t n = recv(conn, res, sizeof res, 0);  // parks this task only
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) res[i] = static_cast<char>(std::toupper(res[i]));
    send(conn, res, static_cast<std::size_t>(n), 0);
  }
  close(conn);
  ++talks_done;
}

// server(): a blocking listener, one task per connection; ends when `s` is closed.
void server(int s) {
  for (;;) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    const int conn = accept(s, reinterpret_cast<sockaddr*>(&addr), &len);
    if (conn < 0) return;
    greenlets::spawn(talk, conn);
  }
}

// A client: three lines, each reply read back whole; the number of right replies.
int client(int port, int i) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  int right = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    for (int k = 0; k < 3; ++k) {
      const std::string msg = "hello " + std::to_string(i) + " #" + std::to_string(k) + "\n";
      send(fd, msg.data(), msg.size(), 0);
      std::string reply(msg.size(), '\0');
      std::size_t got = 0;
      while (got < reply.size()) {
        const ssize_t n = recv(fd, &reply[got], reply.size() - got, 0);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
      }
      std::string want = msg;
      for (char& c : want) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (reply == want) ++right;
    }
  }
  close(fd);
  return right;
}

int main() {
  // 500 clients and their 500 server-side connections need 1000 fds or so.
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < 2048 && lim.rlim_max >= 2048) {
    lim.rlim_cur = 2048;
    setrlimit(RLIMIT_NOFILE, &lim);
  }

  const int s = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);  // port 0: the system picks one
  bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  listen(s, 512);
  socklen_t len = sizeof addr;
  getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  std::cout << "listening on 127.0.0.1 (port chosen by the system)\n";
  auto srv = greenlets::spawn(server, s);

  std::vector<greenlets::task<int>> clients;
  for (int i = 0; i < 500; ++i) clients.push_back(greenlets::spawn(client, port, i));
  int right = 0;
  for (auto& c : clients) right += c.get();
  std::cout << "500 clients, " << right << " replies upper-cased\n";

  close(s);  // wakes the accept with EBADF: server() returns
  srv.join();
  greenlets::wait();  // the talks end as their clients closed
  std::cout << "connections served: " << talks_done << '\n';
}

// Expected output:
// listening on 127.0.0.1 (port chosen by the system)
// 500 clients, 1500 replies upper-cased
// connections served: 500
