#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/generator.hpp>
#include <greenlets/greenlets.hpp>

#include "support/counting_new.hpp"

using greenlets::generator;
using greenlets::yield;

namespace {

// Counts live instances, to see destructors run when a body is unwound.
struct tracked {
  explicit tracked(int& live) : live_(live) { ++live_; }
  tracked(const tracked&) = delete;
  tracked& operator=(const tracked&) = delete;
  ~tracked() { --live_; }
  int& live_;
};

// Whether `g.send(a)` compiles for a G and an A.
template <class G, class A, class = void>
struct can_send : std::false_type {};
template <class G, class A>
struct can_send<G, A, std::void_t<decltype(std::declval<G&>().send(std::declval<A>()))>>
    : std::true_type {};

generator<int> count_to(int n) {
  return generator<int>([n](yield<int>& y) {
    for (int i = 0; i < n; ++i) y(i);
  });
}

}  // namespace

// ---------------------------------------------------------------------------
// Basic behaviour

TEST_CASE("a generator yields its items in order, then nullopt", "[generator]") {
  generator<int> g([](yield<int>& y) {
    for (int i = 0; i < 3; ++i) y(i);
  });
  CHECK(g.next() == 0);
  CHECK(g.next() == 1);
  CHECK(g.next() == 2);
  CHECK(g.next() == std::nullopt);
  CHECK(g.finished());
  CHECK(g.next() == std::nullopt);  // stays finished, as StopIteration does
}

TEST_CASE("a generator is lazy: the body starts at the first next()", "[generator]") {
  std::vector<std::string> log;
  generator<int> g([&](yield<int>& y) {
    log.push_back("started");
    y(1);
    log.push_back("resumed");
  });
  CHECK(log.empty());
  CHECK_FALSE(g.started());
  CHECK(g.next() == 1);
  CHECK(g.started());
  CHECK(log == std::vector<std::string>{"started"});
  CHECK(g.next() == std::nullopt);
  CHECK(log == std::vector<std::string>{"started", "resumed"});
}

TEST_CASE("begin() also starts the body lazily", "[generator][range]") {
  bool started = false;
  generator<int> g([&](yield<int>& y) {
    started = true;
    y(7);
  });
  CHECK_FALSE(started);
  auto it = g.begin();
  CHECK(started);
  CHECK(*it == 7);
}

TEST_CASE("a generator is an input range", "[generator][range]") {
  std::vector<int> seen;
  for (int x : count_to(4)) seen.push_back(x);
  CHECK(seen == std::vector<int>{0, 1, 2, 3});

  SECTION("an empty body gives an empty range") {
    generator<int> g([](yield<int>&) {});
    CHECK(g.begin() == g.end());
  }
  SECTION("iterators support ++, * and ->") {
    generator<std::string> g([](yield<std::string>& y) {
      y("ab");
      y("cde");
    });
    auto it = g.begin();
    CHECK(it->size() == 2);
    CHECK(*it++ == "ab");
    CHECK(*it == "cde");
    ++it;
    CHECK(it == g.end());
  }
}

TEST_CASE("begin() on a partly consumed generator continues where it is", "[generator][range]") {
  generator<int> g = count_to(5);
  CHECK(g.next() == 0);
  CHECK(g.next() == 1);
  std::vector<int> rest;
  for (int x : g) rest.push_back(x);
  CHECK(rest == std::vector<int>{2, 3, 4});
  CHECK(g.finished());
  CHECK(g.begin() == g.end());
}

TEST_CASE("yield can be called from nested function calls in the body", "[generator]") {
  // A stackful generator: the yield happens deep inside a recursive call.
  struct tree {
    static void walk(yield<int>& y, int depth, int label) {
      if (depth == 0) {
        y(label);
        return;
      }
      walk(y, depth - 1, label * 2);
      walk(y, depth - 1, label * 2 + 1);
    }
  };
  generator<int> g([](yield<int>& y) { tree::walk(y, 3, 1); });
  std::vector<int> seen;
  for (int x : g) seen.push_back(x);
  CHECK(seen == std::vector<int>{8, 9, 10, 11, 12, 13, 14, 15});
}

TEST_CASE("items may be move-only, and are moved, not copied", "[generator]") {
  generator<std::unique_ptr<int>> g([](yield<std::unique_ptr<int>>& y) {
    y(std::make_unique<int>(1));
    auto p = std::make_unique<int>(2);
    y(std::move(p));
  });
  std::unique_ptr<int> a = *g.next();
  CHECK(*a == 1);
  for (auto& p : g) CHECK(*p == 2);
}

TEST_CASE("a generator can be moved, even while suspended", "[generator]") {
  generator<int> g = count_to(3);
  CHECK(g.next() == 0);
  generator<int> h = std::move(g);
  CHECK(h.next() == 1);
  CHECK_THROWS_WITH(g.next(), Catch::Contains("generator::next") && Catch::Contains("empty"));
  h = count_to(1);  // drops (unwinds) the old body
  CHECK(h.next() == 0);
  CHECK(h.next() == std::nullopt);
}

// ---------------------------------------------------------------------------
// send

// Python: `x = yield 1` in the body, then `g.send('aaa')`.
TEST_CASE("send's value is the result of the pending yield", "[generator][send]") {
  std::vector<std::string> printed;
  generator<int, std::string> g([&](yield<int, std::string>& y) {
    std::optional<std::string> x = y(1);
    printed.push_back(x.value_or("<none>"));
    y(2);
  });
  CHECK(g.next() == 1);
  CHECK(g.send("aaa") == 2);
  CHECK(printed == std::vector<std::string>{"aaa"});
  CHECK(g.next() == std::nullopt);
}

TEST_CASE("a yield resumed by next() returns nullopt", "[generator][send]") {
  std::vector<std::optional<int>> got;
  generator<int, int> g([&](yield<int, int>& y) {
    got.push_back(y(0));
    got.push_back(y(1));
    got.push_back(y(2));
  });
  CHECK(g.next() == 0);
  CHECK(g.next() == 1);
  CHECK(g.send(42) == 2);
  CHECK(g.send(43) == std::nullopt);  // the body ends after the third yield
  CHECK(got == std::vector<std::optional<int>>{std::nullopt, 42, 43});
}

// The classic producer/consumer: the producer sends each bun to a waiting eater.
TEST_CASE("a consumer fed by send receives every item in order", "[generator][send]") {
  std::vector<std::string> log;
  generator<int, int> consumer([&](yield<int, int>& y) {
    for (;;) {
      std::optional<int> bun = y(0);
      log.push_back("ate " + std::to_string(*bun));
    }
  });
  consumer.next();
  for (int i = 0; i < 3; ++i) consumer.send(i);
  CHECK(log == std::vector<std::string>{"ate 0", "ate 1", "ate 2"});
  CHECK_FALSE(consumer.finished());  // dropped here, unwound at its yield
}

TEST_CASE("send with S = value checks the type at run time", "[generator][send][misuse]") {
  generator<int, greenlets::value> g([](yield<int, greenlets::value>& y) {
    std::optional<greenlets::value> v = y(0);
    y(std::move(*v).get<int>() + 1);
    v = y(0);
    y(static_cast<int>(std::move(*v).get<std::string>().size()));
  });
  CHECK(g.next() == 0);
  CHECK(g.send(41) == 42);
  CHECK(g.next() == 0);
  CHECK_THROWS_WITH(g.send(3.5), Catch::Contains("bad_value_cast") && Catch::Contains("double") &&
                                     Catch::Contains("string"));
  CHECK(g.finished());
}

TEST_CASE("send with S = value also accepts a string literal read as std::string",
          "[generator][send]") {
  generator<int, greenlets::value> g([](yield<int, greenlets::value>& y) {
    std::optional<greenlets::value> v = y(0);
    y(static_cast<int>(std::move(*v).get<std::string>().size()));
  });
  CHECK(g.next() == 0);
  CHECK(g.send("aaa") == 3);
}

// ---------------------------------------------------------------------------
// Exceptions

TEST_CASE("an exception thrown in the body reaches the consumer and finishes the generator",
          "[generator][exceptions]") {
  auto make = [] {
    return generator<int, int>([](yield<int, int>& y) {
      y(1);
      throw std::runtime_error("boom");
    });
  };
  SECTION("from next()") {
    auto g = make();
    CHECK(g.next() == 1);
    CHECK_THROWS_WITH(g.next(), "boom");
    CHECK(g.finished());
    CHECK(g.next() == std::nullopt);
  }
  SECTION("from send()") {
    auto g = make();
    CHECK(g.next() == 1);
    CHECK_THROWS_WITH(g.send(5), "boom");
    CHECK(g.finished());
  }
  SECTION("from the iterator") {
    auto g = make();
    std::vector<int> seen;
    CHECK_THROWS_WITH(
        [&] {
          for (int x : g) seen.push_back(x);
        }(),
        "boom");
    CHECK(seen == std::vector<int>{1});
    CHECK(g.finished());
  }
  SECTION("from the first next()") {
    generator<int> g([](yield<int>&) { throw std::logic_error("early"); });
    CHECK_THROWS_AS(g.next(), std::logic_error);
    CHECK(g.finished());
  }
}

TEST_CASE("the body's exception is raised in whichever greenlet resumed it",
          "[generator][exceptions]") {
  generator<int> g([](yield<int>& y) {
    y(1);
    throw std::runtime_error("in the consumer greenlet");
  });
  CHECK(g.next() == 1);
  greenlets::greenlet other([&] {
    try {
      g.next();
    } catch (const std::runtime_error& e) {
      return std::string("caught: ") + e.what();
    }
    return std::string("nothing");
  });
  CHECK(other.switch_to().get<std::string>() == "caught: in the consumer greenlet");
}

// ---------------------------------------------------------------------------
// Unwinding on destruction

TEST_CASE("destroying an unfinished generator unwinds its body", "[generator][lifetime]") {
  int live = 0;
  bool after_yield = false;
  bool exit_seen = false;
  {
    generator<int> g([&](yield<int>& y) {
      tracked t(live);
      try {
        y(1);
      } catch (const greenlets::greenlet_exit&) {
        exit_seen = true;
        throw;
      }
      after_yield = true;
    });
    CHECK(g.next() == 1);
    CHECK(live == 1);
  }
  CHECK(live == 0);
  CHECK(exit_seen);
  CHECK_FALSE(after_yield);
}

TEST_CASE("destroying an unstarted generator destroys its body without running it",
          "[generator][lifetime]") {
  int live = 0;
  bool ran = false;
  {
    auto owned = std::make_shared<tracked>(live);
    generator<int> g([&ran, owned](yield<int>&) { ran = true; });
    owned.reset();
    CHECK(live == 1);  // held by the body's captures
  }
  CHECK(live == 0);
  CHECK_FALSE(ran);
}

TEST_CASE("destroying a generator unwinds generators nested inside its body",
          "[generator][lifetime][nested]") {
  int live = 0;
  {
    generator<int> outer([&](yield<int>& y) {
      tracked t_outer(live);
      generator<int> inner([&](yield<int>& yi) {
        tracked t_inner(live);
        for (int i = 0;; ++i) yi(i);
      });
      for (int x : inner) y(x * 10);
    });
    CHECK(outer.next() == 0);
    CHECK(outer.next() == 10);
    CHECK(live == 2);
  }
  CHECK(live == 0);
}

TEST_CASE("a finished inner generator does not keep its consumer alive",
          "[generator][lifetime][nested]") {
  // The inner body's last parent is the outer body; once the inner one has finished,
  // dropping the outer generator must still unwind the outer body.
  int live = 0;
  {
    generator<int> outer([&](yield<int>& y) {
      tracked t(live);
      generator<int> inner = count_to(2);
      for (int x : inner) y(x);
      y(99);  // suspended here, with `inner` finished but alive on this stack
    });
    CHECK(outer.next() == 0);
    CHECK(outer.next() == 1);
    CHECK(outer.next() == 99);
    CHECK(live == 1);
  }
  CHECK(live == 0);
}

TEST_CASE("a greenlet suspended while consuming a generator can still be unwound by dropping it",
          "[generator][lifetime]") {
  int live = 0;
  {
    greenlets::greenlet consumer([&] {
      tracked t(live);
      generator<int> g = count_to(10);
      for (int x : g) greenlets::current().parent().switch_to(x);
    });
    CHECK(consumer.switch_to().get<int>() == 0);
    CHECK(consumer.switch_to().get<int>() == 1);
    CHECK(live == 1);
  }
  CHECK(live == 0);
}

// ---------------------------------------------------------------------------
// Nesting and consumers in several greenlets

TEST_CASE("a generator may be consumed inside another generator", "[generator][nested]") {
  // Python's `yield from`: func1 yields 1, then func2's items, then 2.
  auto func2 = [] {
    return generator<int>([](yield<int>& y) {
      y(3);
      y(4);
    });
  };
  generator<int> func1([&](yield<int>& y) {
    y(1);
    for (int x : func2()) y(x);
    y(2);
  });
  std::vector<int> seen;
  for (int x : func1) seen.push_back(x);
  CHECK(seen == std::vector<int>{1, 3, 4, 2});
}

// greenlet: test_generator_nested.py::NestedGeneratorTests::test_permutations
TEST_CASE("generators nest several levels deep", "[generator][nested]") {
  // Permutations by recursion: each level is a generator consuming the level below.
  struct perms {
    static generator<std::string> of(std::string s) {
      return generator<std::string>([s](yield<std::string>& y) {
        if (s.size() <= 1) {
          y(std::string(s));
          return;
        }
        for (std::size_t i = 0; i < s.size(); ++i) {
          std::string rest = s.substr(0, i) + s.substr(i + 1);
          for (std::string& tail : of(rest)) y(s[i] + tail);
        }
      });
    }
  };
  std::vector<std::string> seen;
  for (std::string& p : perms::of("abc")) seen.push_back(p);
  CHECK(seen == std::vector<std::string>{"abc", "acb", "bac", "bca", "cab", "cba"});
}

TEST_CASE("a generator can be consumed from different greenlets in turn", "[generator][parent]") {
  generator<int> g = count_to(6);
  std::vector<int> seen;
  seen.push_back(*g.next());
  greenlets::greenlet a([&] {
    seen.push_back(*g.next());
    greenlets::current().parent().switch_to();
    seen.push_back(*g.next());
  });
  greenlets::greenlet b([&] { seen.push_back(*g.next()); });
  a.switch_to();
  b.switch_to();  // b takes the next item and dies
  seen.push_back(*g.next());
  a.switch_to();  // a resumes and takes one more
  CHECK(a.dead());
  CHECK(seen == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(g.next() == 5);
  CHECK(g.next() == std::nullopt);
}

TEST_CASE("when the body finishes, control returns to the greenlet that resumed it",
          "[generator][parent]") {
  generator<int> g = count_to(1);
  CHECK(g.next() == 0);
  greenlets::greenlet other([&] {
    std::optional<int> last = g.next();  // the body ends: back here, not to main
    return last.has_value() ? 1 : 2;
  });
  CHECK(other.switch_to().get<int>() == 2);
  CHECK(g.finished());
}

// ---------------------------------------------------------------------------
// Misuse

TEST_CASE("send before the first next() is an error", "[generator][send][misuse]") {
  bool ran = false;
  generator<int, std::string> g([&](yield<int, std::string>& y) {
    ran = true;
    y(1);
  });
  CHECK_THROWS_AS(g.send("aaa"), greenlets::error);
  CHECK_THROWS_WITH(g.send("aaa"),
                    Catch::Contains("generator::send") && Catch::Contains("not started"));
  CHECK_FALSE(ran);
  CHECK(g.next() == 1);  // the generator is still usable
}

TEST_CASE("send to a finished generator is an error", "[generator][send][misuse]") {
  generator<int, int> g([](yield<int, int>& y) { y(1); });
  CHECK(g.next() == 1);
  CHECK(g.next() == std::nullopt);
  CHECK_THROWS_AS(g.send(1), greenlets::error);
  CHECK_THROWS_WITH(g.send(1), Catch::Contains("generator::send") && Catch::Contains("finished"));
}

TEST_CASE("send with the wrong static type does not compile", "[generator][send][misuse]") {
  // generator<int> has no usable send(); generator<int, std::string> takes only strings.
  using plain = generator<int>;
  using texts = generator<int, std::string>;
  STATIC_REQUIRE_FALSE(can_send<plain, int>::value);
  STATIC_REQUIRE_FALSE(can_send<plain, const char*>::value);
  STATIC_REQUIRE(can_send<texts, const char*>::value);
  STATIC_REQUIRE(can_send<texts, std::string>::value);
  STATIC_REQUIRE_FALSE(can_send<texts, int>::value);
  STATIC_REQUIRE_FALSE(can_send<texts, std::vector<int>>::value);
}

TEST_CASE("calling yield from outside its body is an error", "[generator][misuse]") {
  SECTION("from the consumer, while the body is suspended") {
    yield<int>* leaked = nullptr;
    generator<int> g([&](yield<int>& y) {
      leaked = &y;
      y(1);
      y(2);
    });
    CHECK(g.next() == 1);
    CHECK_THROWS_AS((*leaked)(5), greenlets::error);
    CHECK_THROWS_WITH((*leaked)(5), Catch::Contains("yield") && Catch::Contains("outside"));
    CHECK(g.next() == 2);  // unharmed
  }
  SECTION("from a nested generator's body, using the outer yield") {
    generator<int> outer([](yield<int>& y) {
      generator<int> inner([&y](yield<int>&) { y(1); });
      inner.next();
    });
    CHECK_THROWS_WITH(outer.next(), Catch::Contains("yield") && Catch::Contains("outside"));
    CHECK(outer.finished());
  }
  SECTION("from another greenlet the body switched to") {
    generator<int> g([](yield<int>& y) {
      greenlets::greenlet helper([&y] { y(1); });
      helper.switch_to();
    });
    CHECK_THROWS_WITH(g.next(), Catch::Contains("yield") && Catch::Contains("outside"));
  }
}

TEST_CASE("resuming a generator from its own body is an error", "[generator][misuse]") {
  generator<int>* self = nullptr;
  generator<int> g([&](yield<int>&) { self->next(); });
  self = &g;
  CHECK_THROWS_WITH(g.next(),
                    Catch::Contains("generator::next") && Catch::Contains("already running"));
}

TEST_CASE("using a moved-from generator is an error", "[generator][misuse]") {
  generator<int, int> g = generator<int, int>([](yield<int, int>& y) { y(1); });
  generator<int, int> h = std::move(g);
  CHECK_THROWS_WITH(g.next(), Catch::Contains("empty"));
  CHECK_THROWS_WITH(g.send(1), Catch::Contains("empty"));
  CHECK_THROWS_WITH(g.begin(), Catch::Contains("empty"));
  CHECK(g.finished());
}

// ---------------------------------------------------------------------------
// Cost

TEST_CASE("the per-item path makes no heap allocation", "[generator][alloc]") {
  if (!test_support::counting_works()) {
    WARN(
        "operator new is replaced by the tool running this test (valgrind): allocations "
        "cannot be counted here; the normal and ASan builds check them");
    return;
  }
  SECTION("next() and the iterator") {
    generator<int> g([](yield<int>& y) {
      for (int i = 0;; ++i) y(i);
    });
    CHECK(g.next() == 0);  // the start may allocate (stack, bookkeeping)
    long sum = 0;
    std::size_t n = test_support::count_allocations([&] {
      for (int i = 0; i < 1000; ++i) sum += *g.next();
      auto it = g.begin();
      for (int i = 0; i < 1000; ++i, ++it) sum += *it;
    });
    CHECK(n == 0);
    CHECK(sum > 0);
  }
  SECTION("send()") {
    generator<long, long> g([](yield<long, long>& y) {
      long total = 0;
      for (;;) total += y(total).value_or(0);
    });
    CHECK(g.next() == 0);
    std::size_t n = test_support::count_allocations([&] {
      for (long i = 1; i <= 1000; ++i) g.send(i);
    });
    CHECK(n == 0);
    CHECK(g.send(0) == 500500);
  }
  SECTION("the counter sees an allocation made by a body") {
    generator<std::string> g([](yield<std::string>& y) {
      for (;;) y(std::string(100, 'x'));  // too long for the small-string buffer
    });
    g.next();
    std::size_t n = test_support::count_allocations([&] { g.next(); });
    CHECK(n == 1);
  }
}
