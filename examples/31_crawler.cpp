// 31 — the tutorial's crawler: fetching pages one after another, then all at once.
//
// From the tutorial chapter on coroutines (its gevent crawler): with monkey-patched
// sockets, `gevent.joinall([gevent.spawn(f, url) for url in urls])` fetches the pages
// concurrently, and takes about as long as the slowest page instead of their sum.
// Here a small HTTP/1.1 server on loopback (also tasks, also on our sockets) answers
// each page after an artificial 50 ms delay, and the client fetches ten pages serially,
// then concurrently, and prints both times.
//
//   def f(url):
//       resp = urllib.request.urlopen(url)
//       print('%d bytes received from %s.' % (len(resp.read()), url))
//   gevent.joinall([gevent.spawn(f, url) for url in urls])
#include <chrono>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include <greenlets/hub.hpp>
#include <greenlets/net.hpp>

using namespace std::chrono_literals;

// The server's side of one connection: HTTP/1.1 requests, each answered after 50 ms.
void serve(greenlets::tcp_socket conn) {
  for (;;) {
    const std::string head = conn.read_until("\r\n\r\n", 8192);  // request line + headers
    if (head.empty()) return;                                    // the client closed
    const std::size_t sp = head.find(' ');
    const std::string path = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
    greenlets::sleep(50ms);  // the slow page
    const std::string body = "<html>this is " + path + "</html>\n";
    conn.write_all("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
  }
}

// The client: one GET on a connection of its own; returns the body.
std::string fetch(std::uint16_t port, const std::string& path) {
  greenlets::tcp_socket s = greenlets::connect("localhost", port, 5s);
  s.write_all("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  const std::string head = s.read_until("\r\n\r\n", 8192, 5s);
  const std::string key = "Content-Length: ";
  const std::size_t at = head.find(key);
  std::string body(std::stoul(head.substr(at + key.size())), '\0');
  s.read_exact(body.data(), body.size(), 5s);
  return body;
}

int main() {
  greenlets::tcp_listener listener = greenlets::listen("127.0.0.1", 0);
  const std::uint16_t port = listener.local_endpoint().port();
  auto server = greenlets::spawn([&] {
    try {
      for (;;) greenlets::spawn(serve, listener.accept());
    } catch (const std::system_error&) {
      // the listener was closed
    }
  });

  std::vector<std::string> paths;
  for (int i = 0; i < 10; ++i) paths.push_back("/page/" + std::to_string(i));

  // Serially: each fetch waits for the one before it.
  auto t0 = std::chrono::steady_clock::now();
  std::size_t bytes = 0;
  for (const auto& p : paths) bytes += fetch(port, p).size();
  const std::chrono::duration<double> serial = std::chrono::steady_clock::now() - t0;
  std::cout << "serial: " << paths.size() << " pages, " << bytes << " bytes in " << serial.count()
            << " s\n";

  // Concurrently: one task per page, then joinall.
  t0 = std::chrono::steady_clock::now();
  std::vector<std::string> bodies(paths.size());
  std::vector<greenlets::task<void>> tasks;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    tasks.push_back(greenlets::spawn([&, i] { bodies[i] = fetch(port, paths[i]); }));
  }
  greenlets::joinall(tasks);
  const std::chrono::duration<double> concurrent = std::chrono::steady_clock::now() - t0;
  bytes = 0;
  for (const auto& b : bodies) bytes += b.size();
  std::cout << "concurrent: " << paths.size() << " pages, " << bytes << " bytes in "
            << concurrent.count() << " s\n";
  std::cout << "first page: " << bodies.front();
  std::cout << "concurrent at least 3x faster: " << (serial > 3 * concurrent ? "yes" : "no")
            << '\n';

  listener.close();
  server.join();
}

// Expected output:
// serial: 10 pages, 290 bytes in {number} s
// concurrent: 10 pages, 290 bytes in {number} s
// first page: <html>this is /page/0</html>
// concurrent at least 3x faster: yes
