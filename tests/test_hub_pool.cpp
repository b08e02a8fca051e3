// pool: bounded concurrency, spawn waiting while full, map in input order,
// imap_unordered in completion order, join and kill.
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

using namespace std::chrono_literals;

TEST_CASE("pool::spawn waits while the pool is full", "[hub][pool]") {
  greenlets::timeout deadline(5s);
  greenlets::pool p(1);
  std::vector<std::string> log;
  CHECK(p.free_count() == 1);
  p.spawn([&] {
    log.push_back("a-start");
    greenlets::sleep(2ms);
    log.push_back("a-end");
  });
  CHECK(p.free_count() == 0);
  log.push_back("before 2nd spawn");
  auto b = p.spawn([&] { log.push_back("b"); });
  log.push_back("after 2nd spawn");
  p.join();
  CHECK(log ==
        std::vector<std::string>{"before 2nd spawn", "a-start", "a-end", "after 2nd spawn", "b"});
  CHECK(p.free_count() == 1);
  CHECK(b.ready());
}

TEST_CASE("pool runs at most size tasks at once", "[hub][pool]") {
  greenlets::timeout deadline(5s);
  greenlets::pool p(3);
  int inside = 0;
  int most = 0;
  for (int i = 0; i < 10; ++i) {
    p.spawn([&] {
      ++inside;
      most = std::max(most, inside);
      greenlets::sleep(1ms);
      --inside;
    });
  }
  p.join();
  CHECK(most == 3);
  CHECK(p.size() == 0);
}

TEST_CASE("pool::map returns results in input order", "[hub][pool]") {
  greenlets::timeout deadline(5s);
  greenlets::pool p(2);
  const std::vector<int> in{5, 1, 3, 2};
  auto out = p.map(
      [](int x) {
        greenlets::sleep(std::chrono::milliseconds(x));
        return x * 10;
      },
      in);
  CHECK(out == std::vector<int>{50, 10, 30, 20});
  CHECK_THROWS_WITH(p.map(
                        [](int x) {
                          if (x == 2) throw std::runtime_error("two");
                          return x;
                        },
                        std::vector<int>{1, 2, 3}),
                    "two");
}

TEST_CASE("pool::imap_unordered yields in completion order", "[hub][pool]") {
  greenlets::timeout deadline(5s);
  greenlets::pool p(2);
  std::vector<int> got;
  for (int v : p.imap_unordered(
           [](int i) {
             greenlets::sleep(std::chrono::milliseconds(30 - 10 * i));
             return i;
           },
           std::vector<int>{0, 1, 2})) {
    got.push_back(v);
  }
  CHECK(got == std::vector<int>{1, 0, 2});
  p.join();
}

TEST_CASE("dropping an imap_unordered generator early kills its calls", "[hub][pool]") {
  greenlets::timeout deadline(5s);
  greenlets::pool p(4);
  int finished = 0;
  {
    auto g = p.imap_unordered(
        [&](int i) {
          greenlets::sleep(std::chrono::milliseconds(i == 0 ? 1 : 1000));
          ++finished;
          return i;
        },
        std::vector<int>{0, 1, 2, 3});
    CHECK(g.next() == 0);
  }
  p.join();
  CHECK(finished == 1);
}

TEST_CASE(
    "an imap_unordered generator ended by a call's exception leaves nothing running that "
    "could touch the pool after it is gone",
    "[hub][pool]") {
  greenlets::timeout deadline(5s);
  int calls = 0;
  {
    greenlets::pool p(1);
    auto g = p.imap_unordered(
        [&](int x) {
          ++calls;
          if (x == 0) throw std::runtime_error("x=0");
          return x;
        },
        std::vector<int>{1, 0, 2});
    CHECK(g.next() == 1);
    CHECK_THROWS_WITH(g.next(), "x=0");
    CHECK_FALSE(g.next().has_value());  // the generator is done
    p.join();
    CHECK(p.size() == 0);
  }  // the pool goes; a call started later would use it (AddressSanitizer would see it)
  greenlets::sleep(10ms);
  CHECK(calls == 2);  // the third input never started
}

TEST_CASE("pool::kill kills running and waiting tasks", "[hub][pool]") {
  greenlets::timeout deadline(5s);
  greenlets::pool p(2);
  int done = 0;
  auto a = p.spawn([&] {
    greenlets::sleep(1h);
    ++done;
  });
  auto b = p.spawn([&] {
    greenlets::sleep(1h);
    ++done;
  });
  greenlets::sleep(0s);
  p.kill();
  CHECK(a.ready());
  CHECK(b.ready());
  CHECK(done == 0);
  CHECK(p.free_count() == 2);
}
