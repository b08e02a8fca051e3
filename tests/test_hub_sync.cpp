// event, async_result, semaphore, mutex and queue: FIFO waiters (hub rule 5 of
// docs/semantics.md) and no heap allocation per wait in steady state (hub rule 10).
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

#include "support/counting_new.hpp"

using namespace std::chrono_literals;
using greenlets::spawn;
using greenlets::task;

TEST_CASE("event: set wakes every waiter in order; wait on a set event returns at once",
          "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  greenlets::event e;
  std::vector<int> order;
  std::vector<task<void>> tasks;
  for (int i = 0; i < 3; ++i) {
    tasks.push_back(spawn([&, i] {
      e.wait();
      order.push_back(i);
    }));
  }
  greenlets::sleep(0s);
  CHECK(order.empty());
  e.set();
  greenlets::joinall(tasks);
  CHECK(order == std::vector<int>{0, 1, 2});
  CHECK(e.is_set());
  e.wait();  // set: returns at once
  CHECK(e.wait_for(0s));
}

TEST_CASE("event: set followed at once by clear still wakes every waiter", "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  greenlets::event e;
  int woken = 0;
  std::vector<task<void>> tasks;
  for (int i = 0; i < 3; ++i)
    tasks.push_back(spawn([&] {
      e.wait();
      ++woken;
    }));
  greenlets::sleep(0s);
  e.set();
  e.clear();
  greenlets::joinall(tasks);
  CHECK(woken == 3);
  CHECK_FALSE(e.is_set());
}

TEST_CASE("event: wait_for times out and reports whether it was set", "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  greenlets::event e;
  CHECK_FALSE(e.wait_for(2ms));
  auto setter = spawn([&] {
    greenlets::sleep(2ms);
    e.set();
  });
  CHECK(e.wait_for(1s));
  setter.join();
}

TEST_CASE("async_result: set from another thread wakes the waiter", "[hub][hub9]") {
  greenlets::timeout deadline(5s);
  greenlets::async_result<std::string> r;
  CHECK_FALSE(r.ready());
  int ticks = 0;
  auto ticker = spawn([&] {
    while (!r.ready()) {
      greenlets::sleep(1ms);
      ++ticks;
    }
  });
  std::thread other([&] {
    std::this_thread::sleep_for(10ms);
    r.set("from a thread");
  });
  CHECK(r.get() == "from a thread");  // no loop_exit: the wait keeps the loop alive
  other.join();
  ticker.join();
  CHECK(ticks > 0);
  CHECK(r.get() == "from a thread");
  CHECK_THROWS_WITH(r.set("again"), Catch::Contains("already set"));

  greenlets::async_result<int> failed;
  std::thread other2(
      [&] { failed.set_exception(std::make_exception_ptr(std::runtime_error("far"))); });
  other2.join();
  CHECK_THROWS_WITH(failed.get(), "far");
  greenlets::async_result<int> never;
  std::thread other3([&] {
    std::this_thread::sleep_for(50ms);
    never.set(1);
  });
  CHECK_FALSE(never.wait_for(1ms));
  CHECK(never.wait_for(2s));
  other3.join();
}

TEST_CASE("async_result<void>: set() with no value wakes every waiter, once", "[hub][hub9]") {
  greenlets::timeout deadline(5s);
  greenlets::async_result<void> done;
  int woken = 0;
  std::vector<task<void>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(spawn([&] {
      done.get();
      ++woken;
    }));
  }
  greenlets::sleep(0s);
  CHECK(woken == 0);
  std::thread other([&] { done.set(); });
  greenlets::joinall(waiters);
  other.join();
  CHECK(woken == 3);
  CHECK(done.ready());
  CHECK_THROWS_WITH(done.set(), Catch::Contains("async_result::set: the result was already set"));

  greenlets::async_result<void> failed;
  failed.set_exception(std::make_exception_ptr(std::runtime_error("no value, an error")));
  CHECK_THROWS_WITH(failed.get(), "no value, an error");
}

TEST_CASE("semaphore: waiters are served FIFO; a released permit goes to the first waiter",
          "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  greenlets::semaphore s(0);
  std::vector<int> order;
  std::vector<task<void>> tasks;
  for (int i = 0; i < 4; ++i) {
    tasks.push_back(spawn([&, i] {
      s.acquire();
      order.push_back(i);
    }));
  }
  greenlets::sleep(0s);
  for (int i = 0; i < 4; ++i) s.release();
  CHECK_FALSE(s.try_acquire());  // every permit went to a waiter, none to a newcomer
  greenlets::joinall(tasks);
  CHECK(order == std::vector<int>{0, 1, 2, 3});
  CHECK(s.count() == 0);
  CHECK_FALSE(s.try_acquire_for(1ms));
  s.release();
  CHECK(s.try_acquire_for(1ms));
}

TEST_CASE("semaphore: at most n holders at a time", "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  greenlets::semaphore s(2);
  int inside = 0;
  int most = 0;
  std::vector<task<void>> tasks;
  for (int i = 0; i < 6; ++i) {
    tasks.push_back(spawn([&] {
      s.acquire();
      ++inside;
      most = std::max(most, inside);
      greenlets::sleep(1ms);
      --inside;
      s.release();
    }));
  }
  greenlets::joinall(tasks);
  CHECK(most == 2);
}

TEST_CASE("semaphore: a waiter that times out or is killed does not take a permit", "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  greenlets::semaphore s(0);
  auto a = spawn([&] { return s.try_acquire_for(1ms); });
  auto b = spawn([&] { s.acquire(); });
  auto c = spawn([&] {
    s.acquire();
    return 3;
  });
  CHECK_FALSE(a.get());
  b.kill();
  s.release();
  CHECK(c.get() == 3);
}

TEST_CASE("mutex: works with std::unique_lock; FIFO; unlock of an unlocked mutex is an error",
          "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  greenlets::mutex m;
  std::string trace;
  std::vector<task<void>> tasks;
  for (char name : std::string("abc")) {
    tasks.push_back(spawn([&, name] {
      std::unique_lock<greenlets::mutex> lock(m);
      trace += name;
      greenlets::sleep(1ms);  // others queue up meanwhile
      trace += name;
    }));
  }
  greenlets::joinall(tasks);
  CHECK(trace == "aabbcc");
  CHECK(m.try_lock());
  CHECK_FALSE(m.try_lock());
  CHECK_FALSE(m.try_lock_for(1ms));
  m.unlock();
  CHECK_THROWS_WITH(m.unlock(), Catch::Contains("not locked"));
  std::lock_guard<greenlets::mutex> guard(m);
}

TEST_CASE("queue: FIFO items, FIFO getters and putters", "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  SECTION("getters are served in arrival order") {
    greenlets::queue<std::string> q;
    std::vector<std::string> got;
    std::vector<task<void>> tasks;
    for (int i = 0; i < 3; ++i) {
      tasks.push_back(spawn([&, i] { got.push_back(std::to_string(i) + q.get()); }));
    }
    greenlets::sleep(0s);
    q.put("a");
    q.put("b");
    q.put("c");
    greenlets::joinall(tasks);
    CHECK(got == std::vector<std::string>{"0a", "1b", "2c"});
  }
  SECTION("putters of a full queue are served in arrival order") {
    greenlets::queue<int> q(1);
    q.put(0);
    CHECK(q.full());
    CHECK_FALSE(q.try_put(9));
    std::vector<task<void>> tasks;
    for (int i = 1; i <= 3; ++i) tasks.push_back(spawn([&q, i] { q.put(i); }));
    greenlets::sleep(0s);
    std::vector<int> got;
    for (int i = 0; i < 4; ++i) got.push_back(q.get());
    greenlets::joinall(tasks);
    CHECK(got == std::vector<int>{0, 1, 2, 3});
    CHECK(q.empty());
  }
  SECTION("timeouts") {
    greenlets::queue<int> q(1);
    CHECK_FALSE(q.get_for(1ms).has_value());
    CHECK(q.put_for(1, 1ms));
    CHECK_FALSE(q.put_for(2, 1ms));
    CHECK(q.try_get() == 1);
    CHECK_FALSE(q.try_get().has_value());
  }
  SECTION("many items through an unbounded queue") {
    greenlets::queue<int> q;
    for (int i = 0; i < 1000; ++i) q.put(i);
    CHECK(q.size() == 1000);
    for (int i = 0; i < 1000; ++i) REQUIRE(q.get() == i);
  }
}

TEST_CASE("queue(0) is a rendezvous: put waits for a getter", "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  greenlets::queue<int> q(0);
  std::vector<std::string> log;
  CHECK_FALSE(q.try_put(1));  // no getter waits
  auto putter = spawn([&] {
    log.push_back("put");
    q.put(7);
    log.push_back("put returned");
  });
  greenlets::sleep(5ms);
  CHECK(log == std::vector<std::string>{"put"});
  log.push_back("get");
  CHECK(q.get() == 7);
  putter.join();
  CHECK(log == std::vector<std::string>{"put", "get", "put returned"});
  CHECK_FALSE(q.put_for(1, 1ms));
}

TEST_CASE("a getter killed after being handed an item loses nothing", "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  greenlets::queue<int> q;
  auto first = spawn([&] { return q.get(); });
  auto second = spawn([&] { return q.get(); });
  greenlets::sleep(0s);
  q.put(1);  // handed to `first`, which has not resumed yet
  first.kill(std::make_exception_ptr(greenlets::greenlet_exit{}), false);
  q.put(2);
  // The kill waits for first's next blocking call; its get() returns the item first.
  CHECK(first.get() == 1);
  CHECK(second.get() == 2);
  CHECK(q.empty());
}

TEST_CASE("destroying a primitive with waiters wakes them with an error", "[hub]") {
  greenlets::timeout deadline(5s);
  std::string message;
  auto e = std::make_unique<greenlets::event>();
  auto t = spawn([&] {
    try {
      e->wait();
    } catch (const greenlets::error& x) {
      message = x.what();
    }
  });
  greenlets::sleep(0s);
  e.reset();
  t.join();
  CHECK_THAT(message, Catch::Contains("event was destroyed"));
}

TEST_CASE("no heap allocation per sleep(0), wait, timeout scope or queue put/get", "[hub][hub10]") {
  if (!test_support::counting_works()) {
    SUCCEED("operator new is not ours (valgrind): allocation counts are not available");
    return;
  }
  greenlets::timeout deadline(5s);
  greenlets::event ping;
  greenlets::event pong;
  greenlets::semaphore sem(0);
  greenlets::mutex mtx;
  greenlets::queue<int> q(1);
  greenlets::queue<int> channel(0);
  bool stop = false;
  auto partner = spawn([&] {
    while (!stop) {
      ping.wait();
      ping.clear();
      pong.set();
      sem.release();
      {
        std::lock_guard<greenlets::mutex> lock(mtx);
        greenlets::sleep(0s);
      }
      q.put(1);
      q.put(2);
      channel.put(3);
      greenlets::sleep(0s);
    }
  });
  auto round = [&] {
    ping.set();
    pong.wait();
    pong.clear();
    sem.acquire();
    { std::lock_guard<greenlets::mutex> lock(mtx); }
    greenlets::timeout scope(1h);
    (void)q.get();
    (void)q.get();
    (void)channel.get();
    greenlets::sleep(0s);
  };
  for (int i = 0; i < 10; ++i) round();  // warm up: stacks, vectors, ring buffers
  const std::size_t n = test_support::count_allocations([&] {
    for (int i = 0; i < 100; ++i) round();
  });
  CHECK(n == 0);
  stop = true;
  round();
  partner.join();
}

TEST_CASE("getters that time out leave the queue to the others", "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  auto timed_get = [](greenlets::queue<std::string>& q) {
    try {
      greenlets::timeout t(0s);
      return q.get();
    } catch (const greenlets::timeout_error&) {
      return std::string("timed out");
    }
  };
  SECTION("one dies, one gets the item") {
    greenlets::queue<std::string> q;
    auto dying = spawn(timed_get, std::ref(q));
    auto waiting = spawn([&] { return q.get(); });
    greenlets::sleep(5ms);
    q.put("hi");
    CHECK(dying.get() == "timed out");
    CHECK(waiting.get() == "hi");
  }
  SECTION("both die; the item stays") {
    greenlets::queue<std::string> q;
    auto a = spawn(timed_get, std::ref(q));
    auto b = spawn(timed_get, std::ref(q));
    greenlets::sleep(5ms);
    q.put("sent");
    CHECK(a.get() == "timed out");
    CHECK(b.get() == "timed out");
    CHECK(q.get() == "sent");
  }
}

TEST_CASE("event: after set and clear during a wait, a new wait blocks until the next set",
          "[hub][hub5]") {
  greenlets::timeout deadline(5s);
  greenlets::event e;
  auto waiter = spawn([&] {
    auto setter = spawn([&] { e.set(); });
    e.wait();
    setter.join();
    e.clear();
    return e.wait_for(10ms);
  });
  CHECK_FALSE(waiter.get());
  CHECK_FALSE(e.is_set());
}
