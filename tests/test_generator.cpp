#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/generator.hpp>
#include <greenlets/greenlets.hpp>

#include "support/counting_new.hpp"
#include "support/tracking.hpp"

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

// An exception type the tests compare by identity (the address of the object caught).
struct marker {
  int id;
};

// Records what reaches the unraisable handler while it lives (the `where` handle is not
// kept: it would keep that greenlet alive).
class unraisable_log {
 public:
  unraisable_log() {
    previous_ = greenlets::set_unraisable_handler(
        [this](const greenlets::greenlet&, std::exception_ptr e, std::string_view what) {
          reports.push_back(std::string(what) + " / " + test_support::describe(e));
        });
  }
  unraisable_log(const unraisable_log&) = delete;
  unraisable_log& operator=(const unraisable_log&) = delete;
  ~unraisable_log() { greenlets::set_unraisable_handler(std::move(previous_)); }

  std::vector<std::string> reports;

 private:
  greenlets::unraisable_function previous_;
};

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

TEST_CASE("destroying a generator unwinds its body even while a greenlet it made refers to it",
          "[generator][lifetime]") {
  // The helper's parent is the body: a second reference to the body's greenlet, held on
  // the body's own stack. Unwinding must not wait for the last reference to go.
  int live = 0;
  {
    generator<int> g([&](yield<int>& y) {
      tracked t(live);
      greenlets::greenlet helper([] {});
      y(1);
    });
    CHECK(g.next() == 1);
    CHECK(live == 1);
  }
  CHECK(live == 0);
}

TEST_CASE("destroying a generator whose body ignores greenlet_exit reports it, then kills it",
          "[generator][lifetime]") {
  // Python: "RuntimeError: generator ignored GeneratorExit", reported as unraisable.
  unraisable_log log;
  int live = 0;
  bool after_second = false;
  {
    generator<int> g([&](yield<int>& y) {
      tracked t(live);
      try {
        y(1);
      } catch (const greenlets::greenlet_exit&) {
        y(2);  // ignores it; the kill that follows raises greenlet_exit here again
        after_second = true;
      }
    });
    CHECK(g.next() == 1);
  }
  CHECK(live == 0);
  CHECK_FALSE(after_second);
  REQUIRE(log.reports.size() == 1);
  CHECK_THAT(log.reports[0], Catch::Contains("generator ignored greenlet_exit"));
}

TEST_CASE("destroying a generator whose body raises while unwinding reports the exception",
          "[generator][lifetime][exceptions]") {
  unraisable_log log;
  int live = 0;
  {
    generator<int> g([&](yield<int>& y) {
      tracked t(live);
      try {
        y(1);
      } catch (const greenlets::greenlet_exit&) {
        throw std::runtime_error("cleanup failed");
      }
    });
    CHECK(g.next() == 1);
  }
  CHECK(live == 0);
  REQUIRE(log.reports.size() == 1);
  CHECK_THAT(log.reports[0],
             Catch::Contains("other than greenlet_exit") && Catch::Contains("cleanup failed"));
}

TEST_CASE("a suspended generator destroyed on another thread is unwound on its own",
          "[generator][lifetime][threads]") {
  int live = 0;
  generator<int> g([&](yield<int>& y) {
    tracked t(live);
    for (int i = 0;; ++i) y(i);
  });
  CHECK(g.next() == 0);
  std::thread([&g] { generator<int> there = std::move(g); }).join();
  CHECK(live == 1);            // queued: a body only runs on the thread that made it
  (void)greenlets::current();  // runs the kills other threads queued for this one
  CHECK(live == 0);
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

TEST_CASE("using a moved-from generator is an error", "[generator][misuse]") {
  generator<int, int> g = generator<int, int>([](yield<int, int>& y) { y(1); });
  generator<int, int> h = std::move(g);
  CHECK_THROWS_WITH(g.next(), Catch::Contains("empty"));
  CHECK_THROWS_WITH(g.send(1), Catch::Contains("empty"));
  CHECK_THROWS_WITH(g.begin(), Catch::Contains("empty"));
  CHECK(g.finished());
}

// ---------------------------------------------------------------------------
// generator<void>: a bare yield()

TEST_CASE("generator<void>: each bare yield() makes next() return true, the end false",
          "[generator][void]") {
  std::vector<std::string> log;
  generator<void> g([&](yield<void>& y) {
    log.push_back("a");
    y();  // Python: yield
    log.push_back("b");
    y();
    log.push_back("c");
  });
  STATIC_REQUIRE(std::is_same_v<decltype(g.next()), bool>);
  STATIC_REQUIRE(std::is_same_v<generator<void>::next_type, bool>);
  CHECK(log.empty());  // lazy, as any generator
  CHECK(g.next());
  CHECK(log == std::vector<std::string>{"a"});
  CHECK(g.next());
  CHECK(log == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(g.next());
  CHECK(log == std::vector<std::string>{"a", "b", "c"});
  CHECK(g.finished());
  CHECK_FALSE(g.next());  // stays finished
}

TEST_CASE("generator<void> is a range of std::monostate, one item per yield()",
          "[generator][void][range]") {
  auto three = [] {
    return generator<void>([](yield<void>& y) {
      for (int i = 0; i < 3; ++i) y();
    });
  };
  STATIC_REQUIRE(std::is_same_v<generator<void>::value_type, std::monostate>);
  STATIC_REQUIRE(std::is_same_v<generator<void>::iterator::reference, std::monostate&>);
  SECTION("range-for") {
    int rounds = 0;
    for ([[maybe_unused]] std::monostate m : three()) ++rounds;
    CHECK(rounds == 3);
  }
  SECTION("while (g.next())") {
    generator<void> g = three();
    int rounds = 0;
    while (g.next()) ++rounds;
    CHECK(rounds == 3);
  }
  SECTION("an empty body gives an empty range") {
    generator<void> g([](yield<void>&) {});
    CHECK(g.begin() == g.end());
  }
}

TEST_CASE("generator<void, S>: x = yield() receives what send() passes",
          "[generator][void][send]") {
  std::vector<std::optional<int>> got;
  generator<void, int> g([&](yield<void, int>& y) {
    for (int i = 0; i < 3; ++i) got.push_back(y());  // Python: x = yield
  });
  STATIC_REQUIRE(std::is_same_v<decltype(g.send(1)), bool>);
  STATIC_REQUIRE(std::is_same_v<yield<void, int>::result_type, std::optional<int>>);
  CHECK(g.next());
  CHECK(g.send(5));
  CHECK(g.next());
  CHECK_FALSE(g.send(6));  // the third yield returns 6 and the body ends
  CHECK(got == std::vector<std::optional<int>>{5, std::nullopt, 6});
  CHECK_THROWS_WITH(g.send(7), Catch::Contains("finished"));
}

TEST_CASE("generator<void>: the body's exception reaches next(); dropping unwinds it",
          "[generator][void][exceptions]") {
  SECTION("an exception") {
    generator<void> g([](yield<void>& y) {
      y();
      throw std::runtime_error("void boom");
    });
    CHECK(g.next());
    CHECK_THROWS_WITH(g.next(), "void boom");
    CHECK(g.finished());
  }
  SECTION("unwinding") {
    int live = 0;
    {
      generator<void> g([&](yield<void>& y) {
        tracked t(live);
        for (;;) y();
      });
      CHECK(g.next());
      CHECK(live == 1);
    }
    CHECK(live == 0);
  }
}

// ---------------------------------------------------------------------------
// close

TEST_CASE("close() raises greenlet_exit at the pending yield and finishes the generator",
          "[generator][close]") {
  int live = 0;
  bool exit_seen = false;
  bool after_yield = false;
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
  g.close();  // Python: g.close()
  CHECK(exit_seen);
  CHECK_FALSE(after_yield);
  CHECK(live == 0);  // the body's destructors ran inside close()
  CHECK(g.finished());
  CHECK(g.next() == std::nullopt);
  SECTION("closing again does nothing") {
    CHECK_NOTHROW(g.close());
    CHECK(g.finished());
  }
}

TEST_CASE("close(): a body that catches greenlet_exit and returns is closed normally",
          "[generator][close]") {
  std::vector<std::string> log;
  generator<int> g([&](yield<int>& y) {
    try {
      for (int i = 0;; ++i) y(i);
    } catch (const greenlets::greenlet_exit&) {
      log.push_back("cleaning up");
    }
    log.push_back("returned");
  });
  CHECK(g.next() == 0);
  CHECK(g.next() == 1);
  CHECK_NOTHROW(g.close());
  CHECK(log == std::vector<std::string>{"cleaning up", "returned"});
  CHECK(g.finished());
}

TEST_CASE("close(): a body that yields after greenlet_exit makes close() an error",
          "[generator][close][misuse]") {
  // Python: RuntimeError("generator ignored GeneratorExit"); the generator stays suspended.
  int live = 0;
  bool after_second = false;
  generator<int> g([&](yield<int>& y) {
    try {
      y(1);
    } catch (const greenlets::greenlet_exit&) {
      tracked t(live);
      y(2);  // ignores the exit
      after_second = true;
    }
  });
  CHECK(g.next() == 1);
  CHECK_THROWS_AS(g.close(), greenlets::error);
  CHECK(live == 1);
  CHECK_FALSE(g.finished());  // suspended at the second yield
  SECTION("closing again raises greenlet_exit at the second yield, which the body lets go") {
    CHECK_NOTHROW(g.close());
    CHECK(g.finished());
    CHECK(live == 0);
    CHECK_FALSE(after_second);
  }
  SECTION("next() resumes it after the second yield") {
    CHECK(g.next() == std::nullopt);
    CHECK(after_second);
    CHECK(live == 0);
  }
  SECTION("dropping it unwinds it at the second yield") {
    g = count_to(0);
    CHECK(live == 0);
    CHECK_FALSE(after_second);
  }
}

TEST_CASE("close(): the ignored-greenlet_exit error names the operation",
          "[generator][close][misuse]") {
  generator<int> g([](yield<int>& y) {
    for (;;) {
      try {
        y(1);
      } catch (const greenlets::greenlet_exit&) {
        y(2);
        return;
      }
    }
  });
  CHECK(g.next() == 1);
  CHECK_THROWS_WITH(g.close(), "greenlets: generator::close: generator ignored greenlet_exit");
}

TEST_CASE("close() on an unstarted generator finishes it without running the body",
          "[generator][close]") {
  int live = 0;
  bool ran = false;
  auto owned = std::make_shared<tracked>(live);
  generator<int> g([&ran, owned](yield<int>& y) {
    ran = true;
    y(1);
  });
  owned.reset();
  CHECK(live == 1);  // held by the body's captures
  g.close();
  CHECK_FALSE(ran);
  CHECK(live == 0);  // the body was destroyed without running
  CHECK(g.finished());
  CHECK(g.started());  // no longer GEN_CREATED, as in Python
  CHECK(g.next() == std::nullopt);
}

TEST_CASE("close() on a finished generator does nothing", "[generator][close]") {
  SECTION("finished by returning") {
    generator<int> g = count_to(1);
    CHECK(g.next() == 0);
    CHECK(g.next() == std::nullopt);
    CHECK_NOTHROW(g.close());
    CHECK(g.finished());
  }
  SECTION("finished by an exception") {
    generator<int> g([](yield<int>&) { throw std::runtime_error("gone"); });
    CHECK_THROWS_WITH(g.next(), "gone");
    CHECK_NOTHROW(g.close());
    CHECK(g.finished());
  }
}

TEST_CASE("close(): another exception escaping the body comes out of close()",
          "[generator][close][exceptions]") {
  int live = 0;
  const marker* thrown = nullptr;
  generator<int> g([&](yield<int>& y) {
    tracked t(live);
    try {
      y(1);
    } catch (const greenlets::greenlet_exit&) {
      try {
        throw marker{7};
      } catch (const marker& m) {
        thrown = &m;
        throw;
      }
    }
  });
  CHECK(g.next() == 1);
  try {
    g.close();
    FAIL("close() returned");
  } catch (const marker& m) {
    CHECK(&m == thrown);  // the very object the body threw
    CHECK(m.id == 7);
  }
  CHECK(live == 0);
  CHECK(g.finished());
  CHECK(g.next() == std::nullopt);
}

TEST_CASE("close() unwinds the generators nested inside the body", "[generator][close][nested]") {
  int live = 0;
  std::vector<std::string> exits;
  auto level = [&](std::string name, generator<int> below) {
    return generator<int>([&live, &exits, name, below = std::move(below)](yield<int>& y) mutable {
      tracked t(live);
      try {
        for (int x : below) y(x + 1);
        for (int i = 0;; ++i) y(i);
      } catch (const greenlets::greenlet_exit&) {
        exits.push_back(name);
        throw;
      }
    });
  };
  generator<int> leaf([&](yield<int>& y) {
    tracked t(live);
    try {
      for (int i = 0;; i += 10) y(i);
    } catch (const greenlets::greenlet_exit&) {
      exits.push_back("leaf");
      throw;
    }
  });
  generator<int> top = level("top", level("middle", std::move(leaf)));
  CHECK(top.next() == 2);  // 0 from the leaf, +1 at each level
  CHECK(top.next() == 12);
  CHECK(live == 3);
  top.close();
  CHECK(live == 0);
  // Unwinding the top body destroys the middle generator, which unwinds it, and so on.
  CHECK(exits == std::vector<std::string>{"top", "middle", "leaf"});
  CHECK(top.finished());
}

TEST_CASE("close() from another greenlet returns there", "[generator][close][parent]") {
  generator<int> g([](yield<int>& y) {
    try {
      y(1);
    } catch (const greenlets::greenlet_exit&) {
      return;  // finishing returns to whoever closed it
    }
  });
  CHECK(g.next() == 1);
  greenlets::greenlet other([&] {
    g.close();
    return 5;
  });
  CHECK(other.switch_to().get<int>() == 5);
  CHECK(g.finished());
}

// ---------------------------------------------------------------------------
// throw_to

TEST_CASE(
    "throw_to() raises the exception at the pending yield; a body that catches it "
    "yields on",
    "[generator][throw]") {
  // Python: def k(): while True: try: yield i except ValueError: log(...)
  std::vector<std::string> log;
  generator<int> g([&](yield<int>& y) {
    for (int i = 0;; ++i) {
      try {
        y(i);
      } catch (const std::runtime_error& e) {
        log.push_back(e.what());
      }
    }
  });
  CHECK(g.next() == 0);
  CHECK(g.throw_to(std::runtime_error("first")) == 1);  // the next item
  CHECK(g.next() == 2);
  CHECK(g.throw_to(std::make_exception_ptr(std::runtime_error("second"))) == 3);
  CHECK(log == std::vector<std::string>{"first", "second"});
  CHECK_FALSE(g.finished());
}

TEST_CASE("throw_to(): a body that catches it and returns gives nullopt and is finished",
          "[generator][throw]") {
  generator<int> g([](yield<int>& y) {
    try {
      y(1);
    } catch (const std::logic_error&) {
      return;
    }
    y(2);
  });
  CHECK(g.next() == 1);
  CHECK(g.throw_to(std::logic_error("stop")) == std::nullopt);
  CHECK(g.finished());
}

TEST_CASE(
    "throw_to(): an exception the body does not catch comes out of throw_to, the same "
    "object, and finishes the generator",
    "[generator][throw][exceptions]") {
  int live = 0;
  const marker* seen_in_body = nullptr;
  generator<int> g([&](yield<int>& y) {
    tracked t(live);
    try {
      y(1);
    } catch (const marker& m) {
      seen_in_body = &m;
      throw;
    }
    y(2);
  });
  CHECK(g.next() == 1);
  SECTION("throw_to(E): the body and the caller see one object") {
    try {
      g.throw_to(marker{42});
      FAIL("throw_to returned");
    } catch (const marker& m) {
      CHECK(&m == seen_in_body);
      CHECK(m.id == 42);
    }
  }
  SECTION("throw_to(exception_ptr): the same exception comes back") {
    std::exception_ptr p = std::make_exception_ptr(std::runtime_error("as a pointer"));
    try {
      g.throw_to(p);
      FAIL("throw_to returned");
    } catch (const std::runtime_error&) {
      CHECK(std::current_exception() == p);
    }
  }
  CHECK(live == 0);  // unwound by the exception
  CHECK(g.finished());
  CHECK(g.next() == std::nullopt);
}

TEST_CASE(
    "throw_to(greenlet_exit) escaping the body comes out of throw_to: only close() "
    "swallows it",
    "[generator][throw]") {
  generator<int> g = count_to(5);
  CHECK(g.next() == 0);
  CHECK_THROWS_AS(g.throw_to(greenlets::greenlet_exit{}), greenlets::greenlet_exit);
  CHECK(g.finished());
}

TEST_CASE("throw_to() on an unstarted generator finishes it without running and throws",
          "[generator][throw]") {
  // Python: g.throw(E) on a just-created generator raises E; the state is GEN_CLOSED.
  int live = 0;
  bool ran = false;
  auto owned = std::make_shared<tracked>(live);
  generator<int> g([&ran, owned](yield<int>& y) {
    ran = true;
    y(1);
  });
  owned.reset();
  std::exception_ptr p = std::make_exception_ptr(std::logic_error("early"));
  try {
    g.throw_to(p);
    FAIL("throw_to returned");
  } catch (const std::logic_error&) {
    CHECK(std::current_exception() == p);
  }
  CHECK_FALSE(ran);
  CHECK(live == 0);
  CHECK(g.finished());
  CHECK(g.started());  // GEN_CLOSED, as in Python
  CHECK(g.next() == std::nullopt);
}

TEST_CASE("throw_to() on a finished generator throws the exception", "[generator][throw]") {
  generator<int> g = count_to(1);
  CHECK(g.next() == 0);
  CHECK(g.next() == std::nullopt);
  CHECK_THROWS_WITH(g.throw_to(std::runtime_error("late")), "late");
  CHECK(g.finished());
}

TEST_CASE("throw_to() with a null exception_ptr is an error", "[generator][throw][misuse]") {
  generator<int> g = count_to(3);
  CHECK(g.next() == 0);
  CHECK_THROWS_WITH(g.throw_to(std::exception_ptr()),
                    Catch::Contains("generator::throw_to") && Catch::Contains("null"));
  CHECK(g.next() == 1);  // unharmed
}

TEST_CASE("throw_to() on generator<void, S> returns bool; later yields see next()/send()",
          "[generator][throw][void]") {
  std::vector<std::string> log;
  generator<void, int> g([&](yield<void, int>& y) {
    for (;;) {
      try {
        std::optional<int> x = y();
        log.push_back(x ? std::to_string(*x) : "none");
      } catch (const std::runtime_error& e) {
        log.push_back(e.what());
      }
    }
  });
  STATIC_REQUIRE(std::is_same_v<decltype(g.throw_to(std::runtime_error(""))), bool>);
  CHECK(g.next());
  CHECK(g.throw_to(std::runtime_error("thrown")));
  CHECK(g.send(3));
  CHECK(g.next());
  CHECK(log == std::vector<std::string>{"thrown", "3", "none"});
}

// ---------------------------------------------------------------------------
// A generator used while its body runs

TEST_CASE("using a generator from inside its own body is an error: generator already executing",
          "[generator][misuse]") {
  // Python: ValueError("generator already executing").
  generator<int, int>* self = nullptr;
  generator<int, int>::iterator* outer_it = nullptr;
  std::vector<std::string> errors;
  auto attempt = [&](auto op) {
    try {
      op();
      errors.push_back("no error");
    } catch (const greenlets::error& e) {
      errors.push_back(e.what());
    }
  };
  generator<int, int> g([&](yield<int, int>& y) {
    attempt([&] { self->next(); });
    attempt([&] { self->send(1); });
    attempt([&] { self->begin(); });
    attempt([&] { self->close(); });
    attempt([&] { self->throw_to(std::runtime_error("no")); });
    y(1);
    attempt([&] { ++*outer_it; });
    y(2);
  });
  self = &g;
  auto it = g.begin();
  outer_it = &it;
  CHECK(*it == 1);
  ++it;
  CHECK(*it == 2);  // the body is unharmed
  const std::string tail = ": generator already executing";
  CHECK(errors == std::vector<std::string>{
                      "greenlets: generator::next" + tail,
                      "greenlets: generator::send" + tail,
                      "greenlets: generator::begin" + tail,
                      "greenlets: generator::close" + tail,
                      "greenlets: generator::throw_to" + tail,
                      "greenlets: generator::iterator::operator++" + tail,
                  });
  ++it;
  CHECK(it == g.end());
}

TEST_CASE("using a generator while its body is switched away mid-resume is an error",
          "[generator][misuse]") {
  generator<int> g = count_to(0);
  std::vector<std::string> errors;
  g = generator<int>([&](yield<int>& y) {
    // A greenlet created here has the body as parent: it returns here when done.
    greenlets::greenlet helper([&] {
      for (int op = 0; op < 3; ++op) {
        try {
          if (op == 0) g.next();
          if (op == 1) g.close();
          if (op == 2) g.throw_to(std::runtime_error("no"));
        } catch (const greenlets::error& e) {
          errors.push_back(e.what());
        }
      }
    });
    helper.switch_to();
    y(1);
  });
  CHECK(g.next() == 1);
  REQUIRE(errors.size() == 3);
  for (const std::string& e : errors) CHECK_THAT(e, Catch::Contains("generator already executing"));
  CHECK(g.next() == std::nullopt);
}

TEST_CASE("a consumer woken inside next() by a switch from outside the generator gets an error",
          "[generator][misuse]") {
  int live = 0;
  greenlets::greenlet consumer = greenlets::current();
  greenlets::greenlet body;
  generator<int> g([&](yield<int>& y) {
    body = greenlets::current();
    (void)consumer.switch_to(std::make_shared<tracked>(live));  // not a yield
    y(1);
  });
  CHECK_THROWS_WITH(g.next(),
                    Catch::Contains("generator::next") &&
                        Catch::Contains("resumed by a switch from outside the generator"));
  CHECK(live == 0);  // what that switch sent was dropped, not kept for a later resume
  CHECK_THROWS_WITH(g.next(), Catch::Contains("generator already executing"));
  // The body, switched back to, is no longer in a resume: its yield is an error that ends it.
  CHECK_THROWS_WITH(body.switch_to(), Catch::Contains("yield") && Catch::Contains("outside"));
  CHECK(g.finished());
  CHECK(g.next() == std::nullopt);
}

TEST_CASE(
    "a generator destroyed after its consumer was woken from outside while the body ran "
    "unwinds the body and frees its state",
    "[generator][misuse]") {
  int live = 0;
  bool unwound = false;
  greenlets::greenlet consumer = greenlets::current();
  auto g = std::make_unique<generator<int>>([&](yield<int>& y) {
    struct on_unwind {
      bool* flag;
      ~on_unwind() { *flag = true; }
    } guard{&unwound};
    const auto kept = std::make_shared<tracked>(live);  // lives as long as the body
    y(0);
    (void)consumer.switch_to();  // not a yield: wakes next() from outside
    y(1);
  });
  CHECK(g->next() == 0);
  CHECK_THROWS_WITH(g->next(), Catch::Contains("resumed by a switch from outside the generator"));
  CHECK(live == 1);
  g.reset();  // no resume waits for the body: it is killed, as a dropped greenlet is
  CHECK(unwound);
  CHECK(live == 0);
}

TEST_CASE("a body woken at its yield by a switch from outside the generator gets an error",
          "[generator][misuse]") {
  int live = 0;
  greenlets::greenlet body;
  generator<int> g([&](yield<int>& y) {
    body = greenlets::current();
    y(1);
    y(2);
  });
  CHECK(g.next() == 1);
  CHECK_THROWS_WITH(body.switch_to(std::make_shared<tracked>(live)),
                    Catch::Contains("yield: the body was resumed by a switch from outside"));
  CHECK(live == 0);  // what the switch sent was dropped with the body
  CHECK(g.finished());
  CHECK(g.next() == std::nullopt);
}

TEST_CASE("send() woken by a switch from outside the generator gets an error, drops what came",
          "[generator][misuse][send]") {
  int live = 0;
  greenlets::greenlet consumer = greenlets::current();
  greenlets::greenlet body;
  generator<int, std::string> g([&](yield<int, std::string>& y) {
    body = greenlets::current();
    std::optional<std::string> got = y(1);
    CHECK(got == std::string(64, 'x'));
    (void)consumer.switch_to(std::make_shared<tracked>(live));  // wakes send() below
    (void)y(2);
  });
  CHECK(g.next() == 1);
  CHECK_THROWS_WITH(g.send(std::string(64, 'x')),
                    Catch::Contains("generator::send") &&
                        Catch::Contains("resumed by a switch from outside the generator"));
  CHECK(live == 0);
  CHECK_THROWS_WITH(body.switch_to(), Catch::Contains("yield") && Catch::Contains("outside"));
  CHECK(g.finished());
}

// ---------------------------------------------------------------------------
// A generator destroyed or moved while its body runs

TEST_CASE("a generator destroyed from inside its own body is unwound at its next yield",
          "[generator][lifetime]") {
  int live = 0;
  bool exit_seen = false;
  bool after_yield = false;
  bool ran_on = false;
  std::optional<generator<int>> g;
  SECTION("the body yields: next() unwinds it there and returns nullopt") {
    g.emplace([&](yield<int>& y) {
      tracked t(live);
      g.reset();  // destroys the generator whose next() is running
      ran_on = true;
      try {
        y(1);
      } catch (const greenlets::greenlet_exit&) {
        exit_seen = true;
        throw;
      }
      after_yield = true;
    });
    generator<int>* raw = &*g;
    CHECK(raw->next() == std::nullopt);
    CHECK(ran_on);
    CHECK(exit_seen);
    CHECK_FALSE(after_yield);
  }
  SECTION("the body returns: next() returns nullopt") {
    g.emplace([&](yield<int>&) {
      tracked t(live);
      g.reset();
      ran_on = true;
    });
    generator<int>* raw = &*g;
    CHECK(raw->next() == std::nullopt);
    CHECK(ran_on);
  }
  SECTION("the body throws: the exception comes out of next()") {
    g.emplace([&](yield<int>& y) {
      tracked t(live);
      y(1);
      g.reset();
      throw std::runtime_error("after the reset");
    });
    generator<int>* raw = &*g;
    CHECK(raw->next() == 1);
    CHECK_THROWS_WITH(raw->next(), "after the reset");
  }
  SECTION("during close(): close() returns") {
    g.emplace([&](yield<int>& y) {
      tracked t(live);
      try {
        y(1);
      } catch (const greenlets::greenlet_exit&) {
        g.reset();
        exit_seen = true;
        throw;
      }
    });
    generator<int>* raw = &*g;
    CHECK(raw->next() == 1);
    CHECK_NOTHROW(raw->close());
    CHECK(exit_seen);
  }
  SECTION("inside a range-for: the loop ends") {
    std::vector<int> seen;
    g.emplace([&](yield<int>& y) {
      tracked t(live);
      y(0);
      g.reset();
      y(1);
    });
    for (int x : *g) seen.push_back(x);
    CHECK(seen == std::vector<int>{0});
  }
  CHECK_FALSE(g.has_value());
  CHECK(live == 0);
}

TEST_CASE("a generator destroyed while its body is switched away is freed when the body yields",
          "[generator][lifetime]") {
  int live = 0;
  std::optional<generator<int>> g;
  g.emplace([&](yield<int>& y) {
    tracked t(live);
    greenlets::greenlet helper([&] { g.reset(); });  // returns here, to the body
    helper.switch_to();
    y(1);
  });
  generator<int>* raw = &*g;
  CHECK(raw->next() == std::nullopt);
  CHECK_FALSE(g.has_value());
  CHECK(live == 0);
}

TEST_CASE("a generator move-assigned inside its own body unwinds the old body, then runs the new",
          "[generator][lifetime]") {
  int live = 0;
  generator<int> g = count_to(0);
  g = generator<int>([&](yield<int>& y) {
    tracked t(live);
    g = count_to(3);  // Python: rebinding the name; the old generator is collected
    y(100);           // unwound here: this item is dropped with it
  });
  CHECK(g.next() == std::nullopt);  // the call that ran the old body
  CHECK(live == 0);
  CHECK(g.next() == 0);
  CHECK(g.next() == 1);
  CHECK(g.next() == 2);
  CHECK(g.next() == std::nullopt);
}

TEST_CASE("a generator moved out inside its own body goes on from its new owner",
          "[generator][lifetime]") {
  std::optional<generator<int>> moved;
  generator<int> g = count_to(0);
  g = generator<int>([&](yield<int>& y) {
    moved.emplace(std::move(g));
    y(1);
    y(2);
  });
  CHECK(g.next() == 1);  // the resume in progress completes normally
  CHECK_THROWS_WITH(g.next(), Catch::Contains("empty"));
  REQUIRE(moved.has_value());
  CHECK(moved->next() == 2);
  CHECK(moved->next() == std::nullopt);
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
