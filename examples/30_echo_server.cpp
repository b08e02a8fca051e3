// 30 — the tutorial's gevent echo server: one task per connection, replying with the
// line upper-cased, and 500 clients at once in the same process and thread.
//
// From the tutorial chapter on coroutines (its gevent socket server): the server
// accepts in a loop and spawns a greenlet per connection, which reads and sends back
// `data.upper()`; the client side ran 500 threads. Here the clients are 500 tasks on
// the same hub as the server, each sending three lines and checking every reply.
//
//   def handle(conn):
//       while True:
//           data = conn.recv(1024)
//           if not data: break
//           conn.send(data.upper())
//   while True:
//       conn, addr = server.accept()
//       gevent.spawn(handle, conn)
#include <cctype>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include <greenlets/hub.hpp>
#include <greenlets/net.hpp>

int handlers_done = 0;

// One connection: reply to each line with the line upper-cased, until the client ends.
void handle(greenlets::tcp_socket conn) {
  for (std::string line; !(line = conn.read_line(1024)).empty();) {
    for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    conn.write_all(line);
  }
  ++handlers_done;
}

int main() {
  constexpr int clients = 500;
  constexpr int messages = 3;

  // Port 0: the system picks a free one. The backlog holds every client at once.
  greenlets::tcp_listener listener = greenlets::listen("127.0.0.1", 0, {clients, false});
  const std::uint16_t port = listener.local_endpoint().port();
  std::cout << "listening on 127.0.0.1 (port chosen by the system)\n";

  // The accept loop, a task of its own: a new task per connection, handles dropped
  // (a task runs to its end without one). Closing the listener ends the loop.
  int accepted = 0;
  auto server = greenlets::spawn([&] {
    try {
      for (;;) {
        greenlets::spawn(handle, listener.accept());
        ++accepted;
      }
    } catch (const std::system_error&) {
      // EBADF: the listener was closed.
    }
  });

  // 500 clients, each a task: connect, send three lines, check each reply.
  int good = 0;
  int bad = 0;
  std::vector<greenlets::task<void>> tasks;
  for (int i = 0; i < clients; ++i) {
    tasks.push_back(greenlets::spawn([&, i] {
      greenlets::tcp_socket s = greenlets::connect("127.0.0.1", port);
      for (int k = 0; k < messages; ++k) {
        const std::string msg = "hello " + std::to_string(i) + " #" + std::to_string(k) + "\n";
        s.write_all(msg);
        const std::string reply = s.read_line();
        std::string want = msg;
        for (char& c : want) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        ++(reply == want ? good : bad);
      }
    }));  // the socket closes here: the server's task reads the end and returns
  }
  greenlets::joinall(tasks);
  listener.close();
  server.join();

  std::cout << clients << " clients sent " << messages << " lines each\n";
  std::cout << good << " replies upper-cased, " << bad << " wrong\n";
  std::cout << "connections accepted: " << accepted << '\n';
  // The handlers end as their clients close.
  greenlets::wait();
  std::cout << "handlers finished: " << handlers_done << '\n';
}

// Expected output:
// listening on 127.0.0.1 (port chosen by the system)
// 500 clients sent 3 lines each
// 1500 replies upper-cased, 0 wrong
// connections accepted: 500
// handlers finished: 500
