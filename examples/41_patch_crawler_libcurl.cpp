// 41 — the tutorial's crawler, with an unmodified HTTP library: libcurl under the patch.
//
// From the tutorial chapter on coroutines (its gevent crawler): after
// `monkey.patch_all()`, the blocking `requests.get` runs concurrently in greenlets, and
// the three pages take about as long as the slowest. Here the blocking client is
// libcurl's `curl_easy_perform`, which knows nothing of greenlets: the patch makes its
// connect, poll, send and recv cooperative. The pages come from a small HTTP server on
// loopback in the same process (tasks on the explicit socket API), each after 50 ms;
// ten pages are fetched serially, then one task per page.
//
//   from gevent import monkey; monkey.patch_all()
//   import gevent
//   import requests
//   import time
//   def get_page(url):
//       print('GET: %s' % url)
//       response = requests.get(url)
//       if response.status_code == 200:
//           print('%d bytes received from %s' % (len(response.text), url))
//   start_time = time.time()
//   gevent.joinall([
//       gevent.spawn(get_page, 'https://www.python.org/'),
//       gevent.spawn(get_page, 'https://www.yahoo.com/'),
//       gevent.spawn(get_page, 'https://github.com/'),
//   ])
//   stop_time = time.time()
//   print('run time is %s' % (stop_time - start_time))
#include <curl/curl.h>

#include <chrono>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include <greenlets/hub.hpp>
#include <greenlets/net.hpp>
#include <greenlets/patch.hpp>

using namespace std::chrono_literals;

// The server's side of one connection: one request, answered after 50 ms.
void serve(greenlets::tcp_socket conn) {
  const std::string head = conn.read_until("\r\n\r\n", 8192);
  if (head.empty()) return;
  const std::size_t sp = head.find(' ');
  const std::string path = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
  greenlets::sleep(50ms);  // the slow page
  const std::string body = "<html>this is " + path + "</html>\n";
  conn.write_all(
      "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
}

std::size_t append(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// requests.get(url): a plain, blocking libcurl transfer. Returns the HTTP status.
long get(const std::string& url, std::string& text) {
  CURL* h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &text);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
  long status = 0;
  if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  return status;
}

std::vector<std::size_t> received;

void get_page(const std::string& url, std::size_t i) {
  std::cout << "GET: " << url << '\n';
  std::string text;
  if (get(url, text) == 200) received[i] = text.size();
}

int main() {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  greenlets::tcp_listener listener = greenlets::listen("127.0.0.1", 0);
  const std::string base =
      "http://127.0.0.1:" + std::to_string(listener.local_endpoint().port()) + "/page/";
  auto server = greenlets::spawn([&] {
    try {
      for (;;) greenlets::spawn(serve, listener.accept());
    } catch (const std::system_error&) {
      // the listener was closed
    }
  });

  std::vector<std::string> urls;
  for (int i = 0; i < 10; ++i) urls.push_back(base + std::to_string(i));

  // Serially, in the main greenlet: each transfer waits for the one before it (the
  // server's tasks still run: the main greenlet's waits are cooperative too).
  auto t0 = std::chrono::steady_clock::now();
  std::size_t bytes = 0;
  for (const auto& url : urls) {
    std::string text;
    if (get(url, text) == 200) bytes += text.size();
  }
  const std::chrono::duration<double> serial = std::chrono::steady_clock::now() - t0;
  std::cout << "serial: " << bytes << " bytes in " << serial.count() << " s\n";

  // Concurrently: gevent.joinall([gevent.spawn(get_page, url) for url in urls]).
  received.assign(urls.size(), 0);
  t0 = std::chrono::steady_clock::now();
  std::vector<greenlets::task<void>> tasks;
  for (std::size_t i = 0; i < urls.size(); ++i)
    tasks.push_back(greenlets::spawn(get_page, urls[i], i));
  greenlets::joinall(tasks);
  const std::chrono::duration<double> concurrent = std::chrono::steady_clock::now() - t0;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    std::cout << received[i] << " bytes received from .../page/" << i << '\n';
  }
  std::cout << "run time is " << concurrent.count() << " s\n";
  std::cout << "concurrent at least 3x faster: " << (serial > 3 * concurrent ? "yes" : "no")
            << '\n';

  listener.close();
  server.join();
  curl_global_cleanup();
}

// Expected output:
// serial: 290 bytes in {number} s
// GET: http://127.0.0.1:{number}/page/0
// GET: http://127.0.0.1:{number}/page/1
// GET: http://127.0.0.1:{number}/page/2
// GET: http://127.0.0.1:{number}/page/3
// GET: http://127.0.0.1:{number}/page/4
// GET: http://127.0.0.1:{number}/page/5
// GET: http://127.0.0.1:{number}/page/6
// GET: http://127.0.0.1:{number}/page/7
// GET: http://127.0.0.1:{number}/page/8
// GET: http://127.0.0.1:{number}/page/9
// 29 bytes received from .../page/0
// 29 bytes received from .../page/1
// 29 bytes received from .../page/2
// 29 bytes received from .../page/3
// 29 bytes received from .../page/4
// 29 bytes received from .../page/5
// 29 bytes received from .../page/6
// 29 bytes received from .../page/7
// 29 bytes received from .../page/8
// 29 bytes received from .../page/9
// run time is {number} s
// concurrent at least 3x faster: yes
