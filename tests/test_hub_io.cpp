// fd waits (hub rule 8 of docs/semantics.md) and run_in_thread.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>
#include <greenlets/patch.hpp>

using namespace std::chrono_literals;
using greenlets::spawn;

namespace {

struct pipe_fds {
  int r = -1;
  int w = -1;
  pipe_fds() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
    r = fds[0];
    w = fds[1];
  }
  ~pipe_fds() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

}  // namespace

TEST_CASE("wait_readable wakes when data arrives; other tasks run meanwhile", "[hub][hub8]") {
  greenlets::timeout deadline(5s);
  pipe_fds p;
  std::string got;
  auto reader = spawn([&] {
    greenlets::wait_readable(p.r);
    char buf[16];
    const ssize_t n = ::read(p.r, buf, sizeof buf);
    got.assign(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  });
  auto writer = spawn([&] {
    greenlets::sleep(2ms);
    greenlets::wait_writable(p.w);
    REQUIRE(::write(p.w, "hi", 2) == 2);
  });
  greenlets::joinall(std::vector<greenlets::task<void>>{reader, writer});
  CHECK(got == "hi");
}

TEST_CASE("wait_readable_for times out", "[hub][hub8]") {
  greenlets::timeout deadline(5s);
  pipe_fds p;
  CHECK_FALSE(greenlets::wait_readable_for(p.r, 2ms));
  REQUIRE(::write(p.w, "x", 1) == 1);
  CHECK(greenlets::wait_readable_for(p.r, 1s));
  CHECK(greenlets::wait_writable_for(p.w, 1s));
}

TEST_CASE("two tasks waiting on the same fd in the same direction is an error", "[hub][hub8]") {
  greenlets::timeout deadline(5s);
  pipe_fds p;
  auto first = spawn([&] { greenlets::wait_readable(p.r); });
  greenlets::sleep(0s);
  CHECK_THROWS_WITH(greenlets::wait_readable(p.r),
                    Catch::Contains("already has a task waiting to read"));
  // The other direction is allowed at the same time.
  CHECK(greenlets::wait_writable_for(p.w, 1s));
  REQUIRE(::write(p.w, "x", 1) == 1);
  first.join();
}

TEST_CASE("cancel_wait and kill wake an fd waiter with an exception", "[hub][hub8]") {
  greenlets::timeout deadline(5s);
  pipe_fds p;
  SECTION("cancel_wait before closing") {
    std::string message;
    auto t = spawn([&] {
      try {
        greenlets::wait_readable(p.r);
      } catch (const greenlets::error& e) {
        message = e.what();
      }
    });
    greenlets::sleep(0s);
    greenlets::cancel_wait(p.r);
    ::close(p.r);
    p.r = -1;
    t.join();
    CHECK_THAT(message, Catch::Contains("being closed"));
  }
  SECTION("kill") {
    auto t = spawn([&] { greenlets::wait_readable(p.r); });
    greenlets::sleep(0s);
    t.kill();
    CHECK(t.ready());
    // The fd is free for another waiter.
    REQUIRE(::write(p.w, "x", 1) == 1);
    greenlets::wait_readable(p.r);
  }
  SECTION("a peer hanging up wakes the reader") {
    auto t = spawn([&] { greenlets::wait_readable(p.r); });
    greenlets::sleep(0s);
    ::close(p.w);
    p.w = -1;
    t.join();
    CHECK(t.successful());
  }
}

TEST_CASE("an fd epoll cannot watch is an error", "[hub][hub8]") {
  CHECK_THROWS_WITH(greenlets::wait_readable(-1), Catch::Contains("invalid fd"));
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // a regular file: EPERM
  REQUIRE(fd >= 0);
  CHECK_THROWS_WITH(greenlets::wait_readable(fd), Catch::Contains("cannot watch fd"));
  ::close(fd);
}

TEST_CASE("run_in_thread runs a blocking call on a worker while other tasks run", "[hub]") {
  greenlets::timeout deadline(5s);
  const auto hub_thread = std::this_thread::get_id();
  int ticks = 0;
  bool done = false;
  auto ticker = spawn([&] {
    while (!done) {
      greenlets::sleep(1ms);
      ++ticks;
    }
  });
  std::thread::id worker;
  const int v = greenlets::run_in_thread([&] {
    worker = std::this_thread::get_id();
    std::this_thread::sleep_for(30ms);  // blocks its own thread only
    return 42;
  });
  done = true;
  ticker.join();
  CHECK(v == 42);
  CHECK(worker != hub_thread);
  CHECK(ticks >= 1);  // it ran while the worker blocked
  CHECK_THROWS_WITH(greenlets::run_in_thread([]() -> int { throw std::runtime_error("worker"); }),
                    "worker");
  greenlets::run_in_thread([] {});
}

TEST_CASE("run_in_thread counts as pending work: no loop_exit while it runs", "[hub][hub4]") {
  // No deadline scope: its timer would keep the loop alive by itself.
  const int v = greenlets::run_in_thread([] {
    std::this_thread::sleep_for(20ms);
    return 5;
  });
  CHECK(v == 5);
}

TEST_CASE("run_in_thread uses at most thread_pool_size threads", "[hub]") {
  greenlets::timeout deadline(5s);
  greenlets::hub& h = greenlets::hub::current();
  CHECK(h.thread_pool_size() >= 1);
  CHECK_THROWS_AS(h.set_thread_pool_size(0), greenlets::error);
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::vector<greenlets::task<void>> tasks;
  for (int i = 0; i < 12; ++i) {
    tasks.push_back(spawn([&] {
      greenlets::run_in_thread([&] {
        const int now = ++running;
        int m = most.load();
        while (now > m && !most.compare_exchange_weak(m, now)) {
        }
        std::this_thread::sleep_for(5ms);
        --running;
      });
    }));
  }
  greenlets::joinall(tasks);
  CHECK(most.load() <= static_cast<int>(h.thread_pool_size()));
  CHECK(most.load() >= 2);
}

TEST_CASE("a run_in_thread caller that times out leaves the worker's result behind", "[hub]") {
  greenlets::timeout deadline(5s);
  std::atomic<bool> finished{false};
  auto r = greenlets::with_timeout(2ms, [&] {
    return greenlets::run_in_thread([&] {
      std::this_thread::sleep_for(20ms);
      finished = true;
      return 1;
    });
  });
  CHECK_FALSE(r.has_value());
  while (!finished) greenlets::sleep(1ms);
  greenlets::sleep(2ms);
}

TEST_CASE("without the patch nothing is interposed: a plain usleep holds the thread",
          "[hub][patch1]") {
  CHECK_FALSE(greenlets::patched());
  int ticks = 0;
  auto ticker = greenlets::spawn([&] {
    for (int i = 0; i < 3; ++i) {
      ++ticks;
      greenlets::sleep(1ms);
    }
  });
  auto sleeper = greenlets::spawn([] { ::usleep(50000); });
  greenlets::sleep(0s);  // both start: the ticker ticks once, then the sleeper holds the thread
  sleeper.join();
  CHECK(ticks == 1);
  ticker.join();
  CHECK(ticks == 3);
}
