// The patch (the patch rules of docs/semantics.md): the C library's blocking calls,
// unmodified, made cooperative in hub tasks. A binary of its own, linked with
// greenlets::patch, so that the main test binary stays unpatched. Loopback only; every
// wait has a deadline.
#include <curl/curl.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>
#include <greenlets/patch.hpp>

#include "../support/valgrind.hpp"

using namespace std::chrono_literals;
using greenlets::spawn;
using clk = std::chrono::steady_clock;

namespace {

// How much slower than native this run is allowed to be: memcheck runs the code on a
// simulated CPU (a serial run is still far slower than the bounds below).
double slack() { return test_support::under_valgrind() ? 1.8 : 1.0; }

double seconds_since(clk::time_point t0) {
  return std::chrono::duration<double>(clk::now() - t0).count();
}

// A plain POSIX listener on 127.0.0.1 (blocking, as the program made it); its port.
int plain_listener(int& port, int type_flags = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | type_flags, 0);
  REQUIRE(fd >= 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 1024) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

int plain_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct pipe_pair {
  int r = -1, w = -1;
  explicit pipe_pair(int flags = 0) {
    int fds[2];
    REQUIRE(::pipe2(fds, flags) == 0);
    r = fds[0];
    w = fds[1];
  }
  ~pipe_pair() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

struct sock_pair {
  int a = -1, b = -1;
  explicit sock_pair(int flags = 0) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | flags, 0, fds) == 0);
    a = fds[0];
    b = fds[1];
  }
  ~sock_pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

// A task that counts while others wait: proof that the thread was not blocked.
struct ticker {
  std::atomic<int> ticks{0};
  bool stop = false;
  greenlets::task<void> t;
  ticker() {
    t = spawn([this] {
      while (!stop) {
        ++ticks;
        greenlets::sleep(5ms);
      }
    });
  }
  ~ticker() {
    stop = true;
    t.join();
  }
};

// An HTTP server on the hub (the explicit socket API, which the patch leaves alone):
// each response after `delay`.
struct http_server {
  greenlets::tcp_listener listener = greenlets::listen("127.0.0.1", 0);
  greenlets::task<void> acceptor;
  std::atomic<int> served{0};
  explicit http_server(greenlets::duration delay) {
    acceptor = spawn([this, delay] {
      for (;;) {
        greenlets::tcp_socket s = listener.accept();
        spawn([this, delay, s = std::move(s)]() mutable {
          try {
            (void)s.read_until("\r\n\r\n");
            greenlets::sleep(delay);
            s.write_all("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
            ++served;
          } catch (const std::exception&) {
          }
        });
      }
    });
  }
  ~http_server() { acceptor.kill(); }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(listener.local_endpoint().port()) + "/";
  }
};

std::size_t collect(char* p, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

struct curl_global {
  curl_global() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~curl_global() { curl_global_cleanup(); }
};
curl_global curl_once;

CURLcode fetch(const std::string& url, std::string& body, long timeout_ms = 10000) {
  CURL* h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  const CURLcode rc = curl_easy_perform(h);
  curl_easy_cleanup(h);
  return rc;
}

void raise_fd_limit(rlim_t want) {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < want) {
    r.rlim_cur = r.rlim_max < want ? r.rlim_max : want;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

}  // namespace

TEST_CASE("the patch is linked into this program", "[patch][patch1]") {
  CHECK(greenlets::patched());
}

TEST_CASE("ten tasks calling sleep(1) finish in about a second, not ten",
          "[patch][patch2][sleep]") {
  const auto t0 = clk::now();
  std::vector<greenlets::task<unsigned>> ts;
  for (int i = 0; i < 10; ++i) ts.push_back(spawn([] { return ::sleep(1); }));
  for (auto& t : ts) CHECK(t.get() == 0u);
  const double s = seconds_since(t0);
  CHECK(s >= 0.99);
  CHECK(s < 3.0);
}

TEST_CASE("usleep, nanosleep and clock_nanosleep park only their task", "[patch][patch2][sleep]") {
  const auto t0 = clk::now();
  std::vector<greenlets::task<int>> ts;
  for (int i = 0; i < 10; ++i) {
    ts.push_back(spawn([] { return ::usleep(200000); }));
    ts.push_back(spawn([] {
      timespec req{0, 200000000};
      return ::nanosleep(&req, nullptr);
    }));
    ts.push_back(spawn([] {
      timespec req{0, 200000000};
      return ::clock_nanosleep(CLOCK_MONOTONIC, 0, &req, nullptr);
    }));
    ts.push_back(spawn([] {
      timespec at{};
      ::clock_gettime(CLOCK_MONOTONIC, &at);
      at.tv_nsec += 200000000;
      if (at.tv_nsec >= 1000000000) {
        at.tv_nsec -= 1000000000;
        ++at.tv_sec;
      }
      return ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr);
    }));
  }
  for (auto& t : ts) CHECK(t.get() == 0);
  const double s = seconds_since(t0);
  CHECK(s >= 0.19);
  CHECK(s < 2.0);  // serially: 8 s
}

TEST_CASE("the main greenlet's plain sleep lets the tasks run", "[patch][patch2][sleep]") {
  ticker tick;
  ::usleep(100000);
  CHECK(tick.ticks >= 5);
}

TEST_CASE("ten libcurl transfers in ten tasks take one delay, not ten", "[patch][patch2][curl]") {
  http_server server(200ms);
  const std::string url = server.url();
  const auto t0 = clk::now();
  std::vector<greenlets::task<std::string>> ts;
  for (int i = 0; i < 10; ++i) {
    ts.push_back(spawn([url] {
      std::string body;
      const CURLcode rc = fetch(url, body);
      if (rc != CURLE_OK) return std::string(curl_easy_strerror(rc));
      return body;
    }));
  }
  for (auto& t : ts) CHECK(t.get() == "hello");
  const double s = seconds_since(t0);
  CHECK(s >= 0.19);
  CHECK(s < 1.0 * slack());  // serially: 2 s
  CHECK(server.served == 10);
}

TEST_CASE("libcurl inside a timeout scope fails, and the task sees timeout_error next",
          "[patch][patch4][curl]") {
  http_server server(2s);
  const std::string url = server.url();
  auto t = spawn([url] {
    greenlets::timeout scope(100ms);
    std::string body;
    const auto t0 = clk::now();
    const CURLcode rc = fetch(url, body);
    const double s = seconds_since(t0);
    CHECK(rc != CURLE_OK);
    UNSCOPED_INFO("curl said: " << curl_easy_strerror(rc));
    CHECK(s < 1.0);
    CHECK(scope.expired());
    CHECK_THROWS_AS(greenlets::sleep(0s), greenlets::timeout_error);
    return static_cast<int>(rc);
  });
  const int rc = t.get();
  // curl_easy_perform waits in poll(); the patched poll fails with ETIMEDOUT, which
  // libcurl (7.88) reports as an unrecoverable poll, returned as this generic code.
  CHECK(rc == CURLE_BAD_FUNCTION_ARGUMENT);
}

TEST_CASE("a timeout stored by a patched call ends with its scope", "[patch][patch4]") {
  auto t = spawn([] {
    pipe_pair p;
    char c;
    {
      greenlets::timeout scope(30ms);
      errno = 0;
      CHECK(::read(p.r, &c, 1) == -1);
      CHECK(errno == ETIMEDOUT);
      CHECK(scope.expired());
    }
    greenlets::sleep(1ms);  // outside the scope: nothing pending
    return true;
  });
  CHECK(t.get());
}

TEST_CASE(
    "a timeout scope makes a parked read fail with ETIMEDOUT, then throws at the next "
    "blocking point",
    "[patch][patch4]") {
  pipe_pair p;
  int err = 0;
  bool thrown = false;
  auto t = spawn([&] {
    greenlets::timeout scope(50ms);
    char c;
    const ssize_t r = ::read(p.r, &c, 1);
    err = r < 0 ? errno : 0;
    try {
      greenlets::sleep(0s);
    } catch (const greenlets::timeout_error&) {
      thrown = scope.expired();
    }
  });
  t.join();
  CHECK(err == ETIMEDOUT);
  CHECK(thrown);
}

TEST_CASE(
    "a kill makes a parked read fail with EINTR, and the task dies at its next "
    "blocking point",
    "[patch][patch4]") {
  pipe_pair p;
  int err = 0;
  bool after = false;
  auto t = spawn([&] {
    char c;
    const ssize_t r = ::read(p.r, &c, 1);
    err = r < 0 ? errno : 0;
    greenlets::sleep(0s);  // greenlet_exit here
    after = true;
  });
  greenlets::sleep(10ms);
  t.kill();
  CHECK(t.ready());
  CHECK(err == EINTR);
  CHECK_FALSE(after);
}

TEST_CASE("a kill that finds no blocking point after the C call ends the task when it returns",
          "[patch][patch4]") {
  pipe_pair p;
  auto t = spawn([&] {
    char c;
    return ::read(p.r, &c, 1);
  });
  greenlets::sleep(10ms);
  t.kill();
  CHECK(t.ready());
  CHECK_THROWS_AS(t.get(), greenlets::error);  // killed: no value
}

TEST_CASE("a thread without a hub is unaffected: its read blocks", "[patch][patch2]") {
  (void)greenlets::hub::current();
  pipe_pair p;
  std::atomic<bool> written{false};
  std::atomic<bool> read_before_write{false};
  std::thread th([&] {
    char c = 0;
    const ssize_t r = ::read(p.r, &c, 1);
    if (!written || r != 1) read_before_write = true;
  });
  greenlets::sleep(100ms);
  written = true;
  CHECK(::write(p.w, "x", 1) == 1);
  th.join();
  CHECK_FALSE(read_before_write);
}

TEST_CASE("a run_in_thread worker's calls are the C library's", "[patch][patch2]") {
  pipe_pair p;
  ticker tick;
  auto writer = spawn([&] {
    greenlets::sleep(50ms);
    return ::write(p.w, "y", 1);
  });
  // The worker blocks in a real read until the task above writes.
  const ssize_t r = greenlets::run_in_thread([&] {
    char c;
    return ::read(p.r, &c, 1);
  });
  CHECK(r == 1);
  CHECK(writer.get() == 1);
  CHECK(tick.ticks >= 3);
}

TEST_CASE("a plain POSIX socket server serves 500 concurrent clients", "[patch][patch2][server]") {
  raise_fd_limit(4096);
  int port = 0;
  const int lfd = plain_listener(port);
  std::atomic<int> handled{0};
  auto server = spawn([&] {
    for (;;) {
      const int c = ::accept(lfd, nullptr, nullptr);
      if (c < 0) return;
      spawn([c, &handled] {
        char buf[256];
        for (;;) {
          const ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          if (::send(c, buf, static_cast<std::size_t>(n), 0) != n) break;
        }
        ::close(c);
        ++handled;
      });
    }
  });
  constexpr int clients = 500;
  std::atomic<int> ok{0};
  std::vector<greenlets::task<void>> cs;
  const auto t0 = clk::now();
  for (int i = 0; i < clients; ++i) {
    cs.push_back(spawn([port, i, &ok] {
      const int fd = plain_connect(port);
      if (fd < 0) return;
      const std::string msg = "hello " + std::to_string(i) + "\n";
      greenlets::sleep(20ms);  // all connected at once
      if (::send(fd, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size())) {
        std::string got(msg.size(), '\0');
        std::size_t have = 0;
        while (have < got.size()) {
          const ssize_t n = ::recv(fd, &got[have], got.size() - have, 0);
          if (n <= 0) break;
          have += static_cast<std::size_t>(n);
        }
        if (got == msg) ++ok;
      }
      ::close(fd);
    }));
  }
  greenlets::timeout deadline(30s);
  greenlets::joinall(cs);
  CHECK(ok == clients);
  while (handled < clients) greenlets::sleep(1ms);
  CHECK(seconds_since(t0) < 20.0);
  server.kill();
  ::close(lfd);
}

TEST_CASE("SO_RCVTIMEO and SO_SNDTIMEO are honoured: EAGAIN after the time", "[patch][patch3]") {
  sock_pair s;
  timeval tv{0, 100000};
  REQUIRE(::setsockopt(s.a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
  ticker tick;
  const auto t0 = clk::now();
  char c;
  errno = 0;
  CHECK(::recv(s.a, &c, 1, 0) == -1);
  CHECK(errno == EAGAIN);
  const double secs = seconds_since(t0);
  CHECK(secs >= 0.09);
  CHECK(secs < 2.0);
  CHECK(tick.ticks >= 5);
  // A send into a full buffer, the same way.
  REQUIRE(::setsockopt(s.b, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0);
  std::vector<char> big(8 << 20, 'x');
  const ssize_t n = ::send(s.b, big.data(), big.size(), 0);
  CHECK(n > 0);  // what fitted, as a blocking send interrupted by its timeout
  CHECK(static_cast<std::size_t>(n) < big.size());
}

TEST_CASE("an fd the program made non-blocking still returns EAGAIN at once", "[patch][patch3]") {
  auto t = spawn([] {
    pipe_pair p;
    const int fl = ::fcntl(p.r, F_GETFL);
    REQUIRE(::fcntl(p.r, F_SETFL, fl | O_NONBLOCK) == 0);
    char c;
    errno = 0;
    CHECK(::read(p.r, &c, 1) == -1);
    CHECK(errno == EAGAIN);
    sock_pair s(SOCK_NONBLOCK);
    errno = 0;
    CHECK(::recv(s.a, &c, 1, 0) == -1);
    CHECK(errno == EAGAIN);
    CHECK(::recv(s.b, &c, 1, MSG_DONTWAIT) == -1);
    // And back to blocking: the patch forgets what it knew.
    REQUIRE(::fcntl(p.r, F_SETFL, fl) == 0);
    auto w = spawn([&] {
      greenlets::sleep(20ms);
      return ::write(p.w, "z", 1);
    });
    CHECK(::read(p.r, &c, 1) == 1);
    CHECK(w.get() == 1);
    // accept4 with SOCK_NONBLOCK: the accepted socket is non-blocking.
    int port = 0;
    const int lfd = plain_listener(port, SOCK_NONBLOCK);
    errno = 0;
    CHECK(::accept(lfd, nullptr, nullptr) == -1);
    CHECK(errno == EAGAIN);
    const int cfd = plain_connect(port);
    REQUIRE(cfd >= 0);
    greenlets::sleep(1ms);
    const int afd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
    REQUIRE(afd >= 0);
    errno = 0;
    CHECK(::read(afd, &c, 1) == -1);
    CHECK(errno == EAGAIN);
    ::close(afd);
    ::close(cfd);
    ::close(lfd);
  });
  greenlets::timeout deadline(5s);
  t.get();
}

TEST_CASE("closing an fd another task waits on wakes that task with EBADF", "[patch][patch5]") {
  sock_pair s;
  int err = 0;
  auto reader = spawn([&] {
    char c;
    const ssize_t r = ::recv(s.a, &c, 1, 0);
    err = r < 0 ? errno : 0;
  });
  greenlets::sleep(10ms);
  ::close(s.a);
  s.a = -1;
  greenlets::timeout deadline(5s);
  reader.join();
  CHECK(err == EBADF);
}

TEST_CASE("poll with a timeout returns 0 after it, and others run meanwhile", "[patch][patch6]") {
  pipe_pair p;
  ticker tick;
  pollfd q{p.r, POLLIN, 0};
  const auto t0 = clk::now();
  CHECK(::poll(&q, 1, 100) == 0);
  const double s = seconds_since(t0);
  CHECK(s >= 0.09);
  CHECK(s < 2.0);
  CHECK(tick.ticks >= 5);
  // No fds at all: a sleep.
  CHECK(::poll(nullptr, 0, 20) == 0);
}

TEST_CASE("poll and select on several fds wake on the first ready", "[patch][patch6]") {
  pipe_pair a, b, c;
  auto writer = spawn([&] {
    greenlets::sleep(50ms);
    return ::write(b.w, "b", 1);
  });
  pollfd q[3] = {{a.r, POLLIN, 0}, {b.r, POLLIN, 0}, {c.r, POLLIN, 0}};
  const auto t0 = clk::now();
  CHECK(::poll(q, 3, 5000) == 1);
  CHECK(seconds_since(t0) < 2.0);
  CHECK(q[0].revents == 0);
  CHECK((q[1].revents & POLLIN) != 0);
  CHECK(q[2].revents == 0);
  CHECK(writer.get() == 1);
  char ch;
  CHECK(::read(b.r, &ch, 1) == 1);

  auto writer2 = spawn([&] {
    greenlets::sleep(50ms);
    return ::write(c.w, "c", 1);
  });
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(a.r, &rd);
  FD_SET(b.r, &rd);
  FD_SET(c.r, &rd);
  timeval tv{5, 0};
  const int maxfd = std::max({a.r, b.r, c.r}) + 1;
  CHECK(::select(maxfd, &rd, nullptr, nullptr, &tv) == 1);
  CHECK(FD_ISSET(c.r, &rd));
  CHECK_FALSE(FD_ISSET(a.r, &rd));
  CHECK_FALSE(FD_ISSET(b.r, &rd));
  CHECK(tv.tv_sec < 5);  // the time left, as Linux's select
  CHECK(writer2.get() == 1);
  // select's timeout, with nothing ready.
  FD_ZERO(&rd);
  FD_SET(a.r, &rd);
  timeval short_tv{0, 50000};
  CHECK(::select(a.r + 1, &rd, nullptr, nullptr, &short_tv) == 0);
  CHECK_FALSE(FD_ISSET(a.r, &rd));
}

TEST_CASE("errno is preserved across a call that parked and succeeded", "[patch][patch3]") {
  pipe_pair p;
  auto writer = spawn([&] {
    greenlets::sleep(20ms);
    return ::write(p.w, "e", 1);
  });
  errno = EDOM;
  char c;
  CHECK(::read(p.r, &c, 1) == 1);
  CHECK(errno == EDOM);
  sock_pair s;
  auto w2 = spawn([&] {
    greenlets::sleep(20ms);
    return ::send(s.b, "f", 1, 0);
  });
  errno = ERANGE;
  CHECK(::recv(s.a, &c, 1, 0) == 1);
  CHECK(errno == ERANGE);
  errno = EDOM;
  CHECK(::usleep(1000) == 0);
  CHECK(errno == EDOM);
  CHECK(writer.get() == 1);
  CHECK(w2.get() == 1);
}

TEST_CASE("getaddrinfo of a name runs on the hub's thread pool while others progress",
          "[patch][patch7]") {
  ticker tick;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int before = tick.ticks;
  const int rc = ::getaddrinfo("localhost", "80", &hints, &res);
  REQUIRE(rc == 0);
  REQUIRE(res != nullptr);
  CHECK(res->ai_family == AF_INET);
  ::freeaddrinfo(res);
  CHECK(tick.ticks > before);  // the caller parked while a worker looked it up
  // A numeric address is answered at once.
  res = nullptr;
  CHECK(::getaddrinfo("127.0.0.1", "80", &hints, &res) == 0);
  ::freeaddrinfo(res);
}

TEST_CASE("two tasks reading one fd both wait, neither sees an exception", "[patch][patch5]") {
  sock_pair s;
  std::vector<greenlets::task<ssize_t>> rs;
  for (int i = 0; i < 2; ++i) {
    rs.push_back(spawn([&] {
      char c;
      return ::recv(s.a, &c, 1, 0);
    }));
  }
  greenlets::sleep(10ms);
  CHECK(::send(s.b, "12", 2, 0) == 2);
  greenlets::timeout deadline(5s);
  CHECK(rs[0].get() == 1);
  CHECK(rs[1].get() == 1);
}

TEST_CASE("a blocking send of more than the socket buffer sends it all", "[patch][patch3]") {
  sock_pair s;
  std::vector<char> big(4 << 20, 'q');
  std::size_t got = 0;
  auto reader = spawn([&] {
    std::vector<char> buf(65536);
    while (got < big.size()) {
      const ssize_t n = ::read(s.b, buf.data(), buf.size());
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
  });
  greenlets::timeout deadline(10s);
  CHECK(::send(s.a, big.data(), big.size(), 0) == static_cast<ssize_t>(big.size()));
  reader.join();
  CHECK(got == big.size());
}

TEST_CASE("a write to a pipe of more than PIPE_BUF does not block the thread", "[patch][patch3]") {
  pipe_pair p;
  std::vector<char> big(1 << 20, 'p');
  std::size_t got = 0;
  auto reader = spawn([&] {
    std::vector<char> buf(4096);
    while (got < big.size()) {
      const ssize_t n = ::read(p.r, buf.data(), buf.size());
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
  });
  greenlets::timeout deadline(10s);
  CHECK(::write(p.w, big.data(), big.size()) == static_cast<ssize_t>(big.size()));
  reader.join();
  CHECK(got == big.size());
}

TEST_CASE("readv, writev, sendmsg and recvmsg wait cooperatively", "[patch][patch2]") {
  pipe_pair p;
  auto w = spawn([&] {
    greenlets::sleep(20ms);
    char x[] = "ab", y[] = "cd";
    iovec v[2] = {{x, 2}, {y, 2}};
    return ::writev(p.w, v, 2);
  });
  char a[2], b[2];
  iovec rv[2] = {{a, 2}, {b, 2}};
  CHECK(::readv(p.r, rv, 2) == 4);
  CHECK(std::string(a, 2) + std::string(b, 2) == "abcd");
  CHECK(w.get() == 4);

  sock_pair s;
  auto w2 = spawn([&] {
    greenlets::sleep(20ms);
    char x[] = "msg";
    iovec v{x, 3};
    msghdr m{};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    return ::sendmsg(s.b, &m, 0);
  });
  char buf[8];
  iovec v{buf, sizeof buf};
  msghdr m{};
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  CHECK(::recvmsg(s.a, &m, 0) == 3);
  CHECK(std::string(buf, 3) == "msg");
  CHECK(w2.get() == 3);
  // readv/writev on a socket go through recvmsg/sendmsg.
  auto w3 = spawn([&] {
    greenlets::sleep(20ms);
    char x[] = "sock";
    iovec vv{x, 4};
    return ::writev(s.b, &vv, 1);
  });
  iovec rv2{buf, 4};
  CHECK(::readv(s.a, &rv2, 1) == 4);
  CHECK(w3.get() == 4);
}

TEST_CASE("recvfrom and sendto on UDP, recv with MSG_WAITALL", "[patch][patch3]") {
  const int u = ::socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(u >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(u, reinterpret_cast<sockaddr*>(&a), &len);
  auto sender = spawn([&] {
    greenlets::sleep(20ms);
    const int v = ::socket(AF_INET, SOCK_DGRAM, 0);
    const ssize_t n = ::sendto(v, "dgram", 5, 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::close(v);
    return n;
  });
  char buf[16];
  sockaddr_in from{};
  socklen_t flen = sizeof from;
  CHECK(::recvfrom(u, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen) == 5);
  CHECK(from.sin_family == AF_INET);
  CHECK(sender.get() == 5);
  ::close(u);

  sock_pair s;
  auto dribble = spawn([&] {
    for (const char* part : {"ab", "cd", "ef"}) {
      greenlets::sleep(10ms);
      ::send(s.b, part, 2, 0);
    }
  });
  CHECK(::recv(s.a, buf, 6, MSG_WAITALL) == 6);
  CHECK(std::string(buf, 6) == "abcdef");
  dribble.join();
}

TEST_CASE("connect on a blocking socket waits cooperatively and reports refusal",
          "[patch][patch3]") {
  int port = 0;
  const int lfd = plain_listener(port);
  ticker tick;
  const int fd = plain_connect(port);
  CHECK(fd >= 0);
  // Blocking mode unchanged after the connect.
  CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) == 0);
  ::close(fd);
  ::close(lfd);
  errno = 0;
  CHECK(plain_connect(port) == -1);  // nobody listens now
  CHECK(errno == ECONNREFUSED);
}

TEST_CASE("the library's own sockets work beside the patch", "[patch][patch1]") {
  greenlets::tcp_listener l = greenlets::listen("127.0.0.1", 0);
  auto server = spawn([&] {
    greenlets::tcp_socket s = l.accept();
    char buf[5];
    s.read_exact(buf, 5);
    s.write_all(buf, 5);
  });
  greenlets::tcp_socket c = greenlets::connect("127.0.0.1", l.local_endpoint().port());
  c.write_all("howdy", 5);
  char back[5];
  c.read_exact(back, 5);
  CHECK(std::string(back, 5) == "howdy");
  server.get();
}

TEST_CASE("poll for nothing but a hang-up wakes when the other end closes", "[patch][patch6]") {
  pipe_pair p;
  auto closer = spawn([&] {
    greenlets::sleep(20ms);
    ::close(p.w);
    p.w = -1;
  });
  pollfd q{p.r, 0, 0};
  const auto t0 = clk::now();
  CHECK(::poll(&q, 1, 5000) == 1);
  CHECK((q.revents & POLLHUP) != 0);
  CHECK(seconds_since(t0) < 2.0);
  closer.join();
}

TEST_CASE("a pipe made again under a number the patch waited on is waited on afresh",
          "[patch][patch3]") {
  greenlets::timeout deadline(5s);
  int number = -1;
  {
    pipe_pair p;
    auto w = spawn([&] {
      greenlets::sleep(10ms);
      return ::write(p.w, "1", 1);
    });
    char c;
    CHECK(::read(p.r, &c, 1) == 1);  // the patch registers p.r with the hub
    CHECK(w.get() == 1);
    number = p.r;
    // Closed inside the C library (fclose), where the patch does not see it.
    FILE* f = ::fdopen(p.r, "r");
    REQUIRE(f != nullptr);
    std::fclose(f);
    p.r = -1;
  }
  pipe_pair q;
  REQUIRE((q.r == number || q.w == number));
  const int rd = q.r == number ? q.r : q.w;  // the end that reuses the number
  if (rd == q.r) {
    auto w = spawn([&] {
      greenlets::sleep(10ms);
      return ::write(q.w, "2", 1);
    });
    char c;
    CHECK(::read(q.r, &c, 1) == 1);
    CHECK(w.get() == 1);
  } else {
    // The write end got the number: fill the pipe, then a reader drains it.
    std::vector<char> big(1 << 20, 'x');
    std::size_t got = 0;
    auto r = spawn([&] {
      std::vector<char> buf(65536);
      while (got < big.size()) {
        const ssize_t n = ::read(q.r, buf.data(), buf.size());
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
      }
    });
    CHECK(::write(q.w, big.data(), big.size()) == static_cast<ssize_t>(big.size()));
    r.join();
    CHECK(got == big.size());
  }
}

TEST_CASE("C code retrying EINTR after a kill blocks cooperatively, then the kill lands",
          "[patch][patch4]") {
  pipe_pair p;
  int eintrs = 0;
  ssize_t result = 0;
  bool after = false;
  auto t = spawn([&] {
    char c;
    ssize_t r;
    while ((r = ::read(p.r, &c, 1)) == -1 && errno == EINTR) ++eintrs;
    result = r;
    greenlets::sleep(0s);  // greenlet_exit here
    after = true;
  });
  ticker tick;
  greenlets::sleep(10ms);
  t.kill(std::make_exception_ptr(greenlets::greenlet_exit{}), false);
  greenlets::sleep(30ms);
  const int ticks_while_retrying = tick.ticks;
  CHECK(::write(p.w, "k", 1) == 1);
  greenlets::timeout deadline(5s);
  t.join();
  CHECK(eintrs == 1);  // one failure, then the retry parked again
  CHECK(result == 1);
  CHECK_FALSE(after);
  CHECK(ticks_while_retrying >= 3);  // the retry did not spin the thread
}

TEST_CASE("a kill replaces a timeout a patched call kept", "[patch][patch4]") {
  pipe_pair p;
  int first = 0, second = 0;
  bool timed_out = false;
  auto t = spawn([&] {
    try {
      greenlets::timeout scope(20ms);
      char c;
      if (::read(p.r, &c, 1) < 0) first = errno;   // ETIMEDOUT, kept
      if (::read(p.r, &c, 1) < 0) second = errno;  // parks again; the kill ends it
      greenlets::sleep(0s);
    } catch (const greenlets::timeout_error&) {
      timed_out = true;
    }
  });
  greenlets::sleep(50ms);
  t.kill();
  CHECK(t.ready());
  CHECK(first == ETIMEDOUT);
  CHECK(second == EINTR);
  CHECK_FALSE(timed_out);
}
