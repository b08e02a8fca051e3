// Cooperative TCP sockets (the socket rules of docs/semantics.md): loopback only,
// every test under a deadline.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

#include "support/counting_new.hpp"
#include "support/fork_child.hpp"
#include "support/valgrind.hpp"

using namespace std::chrono_literals;
using greenlets::spawn;

namespace {

// A connected pair over loopback: `client` connected, `server` accepted.
struct tcp_pair {
  greenlets::tcp_listener listener;
  greenlets::tcp_socket client;
  greenlets::tcp_socket server;
  explicit tcp_pair(const char* host = "127.0.0.1") {
    listener = greenlets::listen(host, 0);
    auto accepted = spawn([this] { server = listener.accept(); });
    client = greenlets::connect(host, listener.local_endpoint().port());
    accepted.get();
  }
};

int error_code(const std::system_error& e) { return e.code().value(); }

}  // namespace

TEST_CASE("echo round trip over IPv4 and IPv6", "[net]") {
  greenlets::timeout deadline(5s);
  const char* host = GENERATE("127.0.0.1", "::1");
  greenlets::tcp_listener l = greenlets::listen(host, 0);
  CHECK(l.local_endpoint().port() != 0);
  CHECK(l.local_endpoint().family() == (std::string(host) == "::1" ? AF_INET6 : AF_INET));
  auto server = spawn([&] {
    greenlets::tcp_socket c = l.accept();
    char buf[64];
    for (;;) {
      const std::size_t n = c.read_some(buf, sizeof buf);
      if (n == 0) return;
      c.write_all(buf, n);
    }
  });
  greenlets::tcp_socket s = greenlets::connect(host, l.local_endpoint().port());
  CHECK(s.peer_endpoint().port() == l.local_endpoint().port());
  for (int i = 0; i < 5; ++i) {
    const std::string msg = "message " + std::to_string(i);
    s.write_all(msg);
    std::string got(msg.size(), '\0');
    s.read_exact(got.data(), got.size());
    CHECK(got == msg);
  }
  s.shutdown(greenlets::shutdown_type::send);
  server.get();
  char c;
  CHECK(s.read_some(&c, 1) == 0);
}

TEST_CASE("connect resolves a host name on a worker thread", "[net]") {
  greenlets::timeout deadline(5s);
  greenlets::tcp_listener l = greenlets::listen("127.0.0.1", 0);
  greenlets::tcp_socket server;
  auto accepted = spawn([&] { server = l.accept(); });
  greenlets::tcp_socket s = greenlets::connect("localhost", l.local_endpoint().port(), 5s);
  CHECK(s.is_open());
  accepted.get();
  CHECK(server.peer_endpoint().port() == s.local_endpoint().port());
  CHECK_THROWS_AS(greenlets::resolve("no-such-host.invalid", 80), greenlets::error);
}

TEST_CASE("read_exact, read_until and read_line share one buffer", "[net][net5]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  p.client.write_all("first line\nsecond|third\r\n\r\nHEAD12345678tail");
  CHECK(p.server.read_line() == "first line\n");
  CHECK(p.server.read_until("|") == "second|");
  CHECK(p.server.read_until("\r\n\r\n") == "third\r\n\r\n");
  char head[4];
  p.server.read_exact(head, 4);
  CHECK(std::string(head, 4) == "HEAD");
  char digits[8];
  p.server.read_exact(digits, sizeof digits);
  CHECK(std::string(digits, 8) == "12345678");
  p.client.shutdown(greenlets::shutdown_type::send);
  // At the end of the stream, what is left comes back without a delimiter, then "".
  CHECK(p.server.read_line() == "tail");
  CHECK(p.server.read_line().empty());
}

TEST_CASE("a delimiter split across reads is found", "[net][net5]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  auto writer = spawn([&] {
    p.client.write_all("abc\r");
    greenlets::sleep(5ms);
    p.client.write_all("\ndef");
  });
  CHECK(p.server.read_until("\r\n") == "abc\r\n");
  writer.get();
  char rest[3];
  p.server.read_exact(rest, 3);
  CHECK(std::string(rest, 3) == "def");
}

TEST_CASE("read_until past its maximum throws limit_exceeded and keeps the bytes", "[net][net5]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  p.client.write_all("0123456789\n");
  CHECK_THROWS_AS(p.server.read_line(5), greenlets::limit_exceeded);
  CHECK_THROWS_WITH(p.server.read_line(5), Catch::Contains("no delimiter in 5 bytes"));
  // The limit counts the delimiter; the bytes stayed buffered.
  CHECK_THROWS_AS(p.server.read_line(10), greenlets::limit_exceeded);
  CHECK(p.server.read_line(11) == "0123456789\n");
  CHECK_THROWS_AS(p.server.read_until(""), greenlets::error);
}

TEST_CASE("read_exact at the end of the stream throws incomplete_read", "[net][net1]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  p.client.write_all("abc");
  p.client.close();
  char buf[8];
  try {
    p.server.read_exact(buf, sizeof buf);
    FAIL("read_exact returned");
  } catch (const greenlets::incomplete_read& e) {
    CHECK(e.received() == 3);
    CHECK_THAT(e.what(), Catch::Contains("the stream ended after 3 of 8 bytes"));
  }
}

TEST_CASE("a peer's close is the end of the stream: read_some returns 0", "[net][net1]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  auto reader = spawn([&] {
    char buf[16];
    return p.server.read_some(buf, sizeof buf);
  });
  greenlets::sleep(2ms);
  p.client.close();
  CHECK(reader.get() == 0);
  char c;
  CHECK(p.server.read_some(&c, 1) == 0);  // and again
}

TEST_CASE("a reset is std::system_error(ECONNRESET) naming the operation and peer", "[net][net1]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  const std::string peer = p.server.peer_endpoint().to_string();
  // SO_LINGER with a zero time makes close() send a reset.
  linger lg{1, 0};
  REQUIRE(::setsockopt(p.client.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  auto reader = spawn([&] {
    char buf[16];
    (void)p.server.read_some(buf, sizeof buf);
  });
  greenlets::sleep(2ms);
  p.client.close();
  try {
    reader.get();
    FAIL("read_some returned");
  } catch (const std::system_error& e) {
    CHECK(error_code(e) == ECONNRESET);
    CHECK_THAT(e.what(), Catch::StartsWith("greenlets: read_some " + peer + ": "));
  }
}

TEST_CASE("writing to a closed peer is EPIPE or ECONNRESET, and never raises SIGPIPE",
          "[net][net1]") {
  greenlets::timeout deadline(5s);
  // SIGPIPE's default action (killing the process) is what must not happen.
  struct sigaction dfl {
  }, old{};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  REQUIRE(::sigaction(SIGPIPE, &dfl, &old) == 0);
  tcp_pair p;
  p.server.close();
  int code = 0;
  const std::string chunk(64 * 1024, 'x');
  try {
    for (int i = 0; i < 1000; ++i) p.client.write_all(chunk);
  } catch (const std::system_error& e) {
    code = error_code(e);
    CHECK_THAT(e.what(), Catch::StartsWith("greenlets: write_all 127.0.0.1:"));
  }
  ::sigaction(SIGPIPE, &old, nullptr);
  // The first write after the peer's close draws its reset; the next one EPIPE.
  CHECK((code == EPIPE || code == ECONNRESET));
  try {
    p.client.write_all("x");
    FAIL("write_all returned");
  } catch (const std::system_error& e) {
    CHECK(error_code(e) == EPIPE);
  }
}

TEST_CASE("a deadline gives timeout_error and leaves the socket usable", "[net][net2]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  char buf[8];
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(p.server.read_some(buf, sizeof buf, 20ms), greenlets::timeout_error);
  CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
  CHECK_THROWS_WITH(p.server.read_line(100, std::chrono::steady_clock::now() + 2ms),
                    Catch::Contains("read_until") && Catch::Contains("timed out"));
  greenlets::tcp_listener l = greenlets::listen("127.0.0.1", 0);
  CHECK_THROWS_AS(l.accept(5ms), greenlets::timeout_error);
  p.client.write_all("ok");
  CHECK(p.server.read_some(buf, sizeof buf, 1s) == 2);
}

TEST_CASE("a writer blocked by a full peer times out, and a close wakes it", "[net][net2][net4]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  // Nobody reads the server's side: the buffers fill and write_all must wait.
  const std::string chunk(1 << 20, 'x');
  CHECK_THROWS_AS(
      [&] {
        for (int i = 0; i < 256; ++i) p.client.write_all(chunk, 50ms);
      }(),
      greenlets::timeout_error);
  auto writer = spawn([&] { p.client.write_all(chunk); });
  greenlets::sleep(2ms);
  CHECK_FALSE(writer.ready());
  p.client.close();
  try {
    writer.get();
    FAIL("write_all returned");
  } catch (const std::system_error& e) {
    CHECK(error_code(e) == EBADF);
  }
}

TEST_CASE("TCP_NODELAY and keep-alive are set on the fd", "[net]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  auto get = [&](int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    REQUIRE(::getsockopt(p.client.native_handle(), level, name, &v, &len) == 0);
    return v;
  };
  p.client.set_no_delay(true);
  CHECK(get(IPPROTO_TCP, TCP_NODELAY) != 0);
  p.client.set_no_delay(false);
  CHECK(get(IPPROTO_TCP, TCP_NODELAY) == 0);
  p.client.set_keep_alive(true, 30);
  CHECK(get(SOL_SOCKET, SO_KEEPALIVE) != 0);
  CHECK(get(IPPROTO_TCP, TCP_KEEPIDLE) == 30);
  p.client.set_keep_alive(false);
  CHECK(get(SOL_SOCKET, SO_KEEPALIVE) == 0);
}

TEST_CASE("an enclosing timeout scope interrupts a socket wait", "[net][net2]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  char buf[8];
  {
    greenlets::timeout t(10ms);
    CHECK_THROWS_AS(p.server.read_some(buf, sizeof buf), greenlets::timeout_error);
    CHECK(t.expired());
  }
  CHECK(greenlets::with_timeout(10ms, [&] { return p.server.read_line(); }) == std::nullopt);
  p.client.write_all("x\n");
  CHECK(p.server.read_line() == "x\n");
}

TEST_CASE("closing a socket wakes the task reading it with EBADF", "[net][net4]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  auto reader = spawn([&] {
    char buf[8];
    (void)p.server.read_some(buf, sizeof buf);
  });
  greenlets::sleep(2ms);
  p.server.close();
  CHECK_FALSE(p.server.is_open());
  try {
    reader.get();
    FAIL("read_some returned");
  } catch (const std::system_error& e) {
    CHECK(error_code(e) == EBADF);
    CHECK_THAT(e.what(), Catch::Contains("closed while a task waited on it"));
  }
  // A closed socket refuses every call.
  char c;
  CHECK_THROWS_AS(p.server.read_some(&c, 1), std::system_error);
  p.server.close();  // twice is fine
}

TEST_CASE("destroying a socket wakes its waiter, which never touches it again", "[net][net4]") {
  greenlets::timeout deadline(5s);
  auto p = std::make_unique<tcp_pair>();
  auto reader = spawn([&] { (void)p->server.read_line(); });
  greenlets::sleep(2ms);
  p.reset();
  CHECK_THROWS_AS(reader.get(), std::system_error);
}

TEST_CASE("closing a listener wakes the task in accept", "[net][net4]") {
  greenlets::timeout deadline(5s);
  greenlets::tcp_listener l = greenlets::listen("127.0.0.1", 0);
  auto acceptor = spawn([&] { (void)l.accept(); });
  greenlets::sleep(2ms);
  l.close();
  CHECK_THROWS_AS(acceptor.get(), std::system_error);
}

// A listener that never accepts, with the smallest backlog, connected to until its queue
// is full: the kernel then drops further SYNs, so a connect to it stays in progress.
struct full_listener {
  greenlets::tcp_listener l = greenlets::listen("127.0.0.1", 0, {0, false});
  std::uint16_t port = l.local_endpoint().port();
  std::vector<greenlets::tcp_socket> filled;

  full_listener() {
    for (int i = 0; i < 64; ++i) {
      try {
        filled.push_back(greenlets::connect("127.0.0.1", port, 100ms));
      } catch (const greenlets::timeout_error&) {
        return;
      }
    }
    FAIL("64 connections never filled the listener's queue");
  }
};

TEST_CASE("closing a socket wakes a connect in progress", "[net][net4]") {
  greenlets::timeout deadline(5s);
  full_listener f;
  const std::uint16_t port = f.port;
  greenlets::tcp_socket s;
  auto connecting = spawn([&] { s.connect("127.0.0.1", port); });
  greenlets::sleep(20ms);
  CHECK_FALSE(connecting.ready());
  s.close();
  try {
    connecting.get();
    FAIL("connect returned");
  } catch (const std::system_error& e) {
    CHECK(error_code(e) == EBADF);
    CHECK_THAT(e.what(), Catch::Contains("closed while a task waited on it"));
  }
}

TEST_CASE("a connect that times out or is killed leaves the socket closed, ready to connect",
          "[net][net4]") {
  greenlets::timeout deadline(5s);
  full_listener f;
  const std::uint16_t port = f.port;
  greenlets::tcp_socket s;
  CHECK_THROWS_AS(s.connect("127.0.0.1", port, 20ms), greenlets::timeout_error);
  CHECK_FALSE(s.is_open());
  CHECK(s.native_handle() == -1);
  auto killed = spawn([&] { s.connect("127.0.0.1", port); });
  greenlets::sleep(20ms);
  CHECK_FALSE(killed.ready());
  killed.kill();
  CHECK(killed.ready());
  CHECK_FALSE(s.is_open());
  greenlets::tcp_listener other = greenlets::listen("127.0.0.1", 0);
  auto acceptor = spawn([&] { return other.accept(); });
  s.connect("127.0.0.1", other.local_endpoint().port(), 2s);
  CHECK(s.is_open());
  greenlets::tcp_socket peer = acceptor.get();
  s.write_all("ok", 2);
  char buf[2];
  peer.read_exact(buf, 2);
  CHECK(std::string(buf, 2) == "ok");
}

TEST_CASE("killing a task waiting on a socket wakes it and leaves the socket usable",
          "[net][net4]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  bool unwound = false;
  auto reader = spawn([&] {
    struct mark {
      bool& b;
      ~mark() { b = true; }
    } m{unwound};
    (void)p.server.read_line();
  });
  greenlets::sleep(2ms);
  reader.kill();
  CHECK(unwound);
  CHECK(reader.ready());
  p.client.write_all("after\n");
  CHECK(p.server.read_line() == "after\n");
}

TEST_CASE("a second task waiting in the same direction is an error", "[net][net3]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  auto first = spawn([&] { return p.server.read_line(); });
  greenlets::sleep(2ms);
  CHECK_THROWS_WITH(p.server.read_line(),
                    Catch::Contains("another task is already waiting to read from this socket"));
  CHECK_THROWS_AS(p.server.read_line(), greenlets::error);
  // Writing meanwhile is fine.
  p.server.write_all("to client\n");
  CHECK(p.client.read_line() == "to client\n");
  p.client.write_all("to server\n");
  CHECK(first.get() == "to server\n");
}

TEST_CASE("wait_readable on the fd of a socket that has waited is an error", "[net][net3]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  char c;
  CHECK_THROWS_AS(p.server.read_some(&c, 1, 1ms), greenlets::timeout_error);
  CHECK_THROWS_WITH(greenlets::wait_readable(p.server.native_handle()),
                    Catch::Contains("File exists"));
  p.client.write_all("x");
  CHECK(p.server.read_some(&c, 1, 1s) == 1);
}

TEST_CASE("a socket belongs to its thread", "[net][net6]") {
  greenlets::timeout deadline(5s);
  tcp_pair p;
  std::string message;
  std::thread other([&] {
    try {
      char c;
      (void)p.server.read_some(&c, 1);
    } catch (const greenlets::error& e) {
      message = e.what();
    }
  });
  other.join();
  CHECK_THAT(message,
             Catch::StartsWith("greenlets: read_some: the object belongs to another thread"));
  // Handing it over is explicit: release the fd here, adopt it there.
  const int fd = p.server.release();
  CHECK_FALSE(p.server.is_open());
  p.client.write_all("over\n");
  std::string got;
  std::thread taker([&] {
    greenlets::timeout t(5s);
    greenlets::tcp_socket s(fd);
    got = s.read_line();
  });
  taker.join();
  CHECK(got == "over\n");
}

TEST_CASE("accept out of fds is EMFILE, and the listener survives it", "[net][net7]") {
  if (test_support::under_valgrind()) {
    // valgrind keeps fds of its own above the limit, and fails when it is lowered.
    WARN("not run under valgrind: it needs fds past RLIMIT_NOFILE");
    return;
  }
  const test_support::child_result r = test_support::run_child([](std::string& out) {
    int code = 1;
    // A fresh thread: its own hub, not the copy of the parent's.
    std::thread t([&] {
      greenlets::timeout deadline(5s);
      greenlets::tcp_listener l = greenlets::listen("127.0.0.1", 0);
      const std::uint16_t port = l.local_endpoint().port();
      // Raw blocking clients: they take fds too, so open them before the limit.
      std::vector<int> clients;
      for (int i = 0; i < 8; ++i) {
        const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (c < 0 || ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
        clients.push_back(c);
      }
      // Fill every free fd under a low limit, then free exactly two.
      rlimit lim{};
      ::getrlimit(RLIMIT_NOFILE, &lim);
      lim.rlim_cur = 256;
      if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return;
      std::vector<int> filler;
      for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) filler.push_back(fd);
      if (errno != EMFILE || filler.size() < 2) return;
      for (int i = 0; i < 2; ++i) {
        ::close(filler.back());
        filler.pop_back();
      }
      std::vector<greenlets::tcp_socket> accepted;
      std::exception_ptr failure;
      try {
        for (int i = 0; i < 8; ++i) accepted.push_back(l.accept());
        out += "no EMFILE\n";
        return;
      } catch (const std::system_error&) {
        failure = std::current_exception();
      }
      // Free the fds before looking at the exception: UBSan's checks of a member call
      // need an fd of their own.
      const std::size_t got = accepted.size();
      accepted.clear();  // the pending connections can be accepted now
      try {
        std::rethrow_exception(failure);
      } catch (const std::system_error& e) {
        if (e.code().value() != EMFILE) {
          out += std::string("wrong error: ") + e.what() + "\n";
          return;
        }
        out += std::string(e.what()) + "\n";
      }
      if (got != 2) return;
      try {
        greenlets::tcp_socket more = l.accept(1s);
      } catch (const std::exception& e) {
        out += std::string("after: ") + e.what() + "\n";
        return;
      }
      code = 0;
    });
    t.join();
    return code;
  });
  CHECK(r.exited_with(0));
  CHECK_THAT(r.err, Catch::Contains("greenlets: accept 127.0.0.1:") &&
                        Catch::Contains("Too many open files"));
}

TEST_CASE("a socket wait allocates nothing", "[net][hub10]") {
  if (!test_support::counting_works()) {
    SUCCEED("operator new is not ours (valgrind): allocation counts are not available");
    return;
  }
  greenlets::timeout deadline(5s);
  tcp_pair p;
  auto echo = spawn([&] {
    char buf[64];
    for (std::size_t n; (n = p.server.read_some(buf, sizeof buf)) != 0;) p.server.write_all(buf, n);
  });
  char msg[16] = "0123456789abcde";
  char back[16];
  auto round = [&] {
    p.client.write_all(msg, sizeof msg, 1s);
    p.client.read_exact(back, sizeof back, 1s);
  };
  for (int i = 0; i < 10; ++i) round();  // warm up
  const std::size_t n = test_support::count_allocations([&] {
    for (int i = 0; i < 100; ++i) round();
  });
  CHECK(n == 0);
  CHECK(std::memcmp(msg, back, sizeof msg) == 0);
  p.client.shutdown(greenlets::shutdown_type::send);
  echo.get();
}

TEST_CASE("one hub serves 1,000 concurrent connections", "[net]") {
  greenlets::timeout deadline(20s);
  constexpr int n = 1000;
  greenlets::tcp_listener l = greenlets::listen("127.0.0.1", 0, {1024, false});
  const std::uint16_t port = l.local_endpoint().port();
  std::vector<greenlets::task<void>> handlers;
  auto server = spawn([&] {
    for (int i = 0; i < n; ++i) {
      handlers.push_back(spawn(
          [](greenlets::tcp_socket c) {
            for (std::string line; !(line = c.read_line()).empty();) c.write_all(line);
          },
          l.accept()));
    }
  });
  std::vector<greenlets::tcp_socket> clients(n);
  std::vector<greenlets::task<void>> tasks;
  std::atomic<int> ok{0};
  for (int i = 0; i < n; ++i) {
    tasks.push_back(spawn([&, i] {
      clients[static_cast<std::size_t>(i)] = greenlets::connect("127.0.0.1", port);
      greenlets::tcp_socket& s = clients[static_cast<std::size_t>(i)];
      for (int k = 0; k < 3; ++k) {
        const std::string msg = std::to_string(i) + "/" + std::to_string(k) + "\n";
        s.write_all(msg);
        if (s.read_line() == msg) ++ok;
      }
      s.shutdown(greenlets::shutdown_type::send);
    }));
  }
  greenlets::joinall(tasks);
  server.get();
  greenlets::joinall(handlers);
  CHECK(ok == 3 * n);
}

namespace {
// Sockets kept past the end of their thread's hub. thread_local objects go in reverse
// order of construction, and these are made (first used) before the thread's hub.
thread_local std::vector<greenlets::tcp_socket> late_sockets;
thread_local std::vector<greenlets::tcp_listener> late_listeners;
}  // namespace

TEST_CASE("sockets destroyed after their thread's hub only close their fds", "[net]") {
  int fds[3] = {-1, -1, -1};
  std::thread t([&] {
    late_sockets.reserve(2);
    late_listeners.reserve(1);
    greenlets::timeout deadline(5s);
    tcp_pair p;
    fds[0] = p.client.native_handle();
    fds[1] = p.server.native_handle();
    fds[2] = p.listener.native_handle();
    late_sockets.push_back(std::move(p.client));
    late_sockets.push_back(std::move(p.server));
    late_listeners.push_back(std::move(p.listener));
  });
  t.join();
  for (int fd : fds) {
    INFO("fd " << fd);
    CHECK(fd >= 0);
    CHECK(::fcntl(fd, F_GETFD) == -1);  // closed by the late destructors
    CHECK(errno == EBADF);
  }
}
