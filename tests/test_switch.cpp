// Switching and values between greenlets: rules 1, 2, 4 and 11 of docs/semantics.md, the forms
// `run` may take, and what a greenlet handle is (copies, identity, hashing, moves).
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

using greenlets::bad_value_cast;
using greenlets::current;
using greenlets::greenlet;
using greenlets::value;

namespace {

int twice(int x) { return 2 * x; }

std::string greet(const std::string& who) { return "hello " + who; }

// g++ 12 -O1 warns (-Wstringop-overflow, an error under -Werror) when it can prove the
// handle passed to switch_to is empty; a handle it cannot see into keeps the build clean.
greenlet opaque(greenlet g) {
  static volatile bool same = true;
  return same ? g : greenlet();
}

}  // namespace

// ---------------------------------------------------------------------------
// Rule 1: the first switch starts run(args...), later ones resume

// greenlet: test_greenlet.py::TestGreenlet::test_simple
TEST_CASE("a greenlet runs at the first switch and resumes where it switched away",
          "[switch][rule1]") {
  std::vector<int> lst;
  greenlet g([&] {
    lst.push_back(1);
    current().parent().switch_to();
    lst.push_back(3);
  });
  lst.push_back(0);
  g.switch_to();
  lst.push_back(2);
  g.switch_to();
  lst.push_back(4);
  CHECK(lst == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(g.dead());
}

// greenlet: test_greenlet.py::TestGreenlet::test_two_children
TEST_CASE("two children of the same function run independently", "[switch][rule1]") {
  std::vector<int> lst;
  auto f = [&] {
    lst.push_back(1);
    current().parent().switch_to();
    lst.push_back(1);
    lst.push_back(1);
  };
  greenlet g(f);
  greenlet h(f);
  g.switch_to();
  CHECK(lst.size() == 1);
  h.switch_to();
  CHECK(lst.size() == 2);
  h.switch_to();
  CHECK(lst.size() == 4);
  CHECK(h.dead());
  CHECK_FALSE(g.dead());
  g.switch_to();
  CHECK(lst.size() == 6);
  CHECK(g.dead());
}

// greenlet: test_greenlet.py::TestGreenlet::test_two_recursive_children
TEST_CASE("a greenlet can create and switch to a child of its own", "[switch][rule1]") {
  std::vector<char> lst;
  greenlet outer([&] {
    lst.push_back('a');
    greenlet inner([&] {
      lst.push_back('b');
      current().parent().switch_to();
    });
    CHECK(inner.parent() == current());
    inner.switch_to();
    lst.push_back('c');
  });
  outer.switch_to();
  CHECK(lst == std::vector<char>{'a', 'b', 'c'});
  CHECK(outer.dead());
}

// greenlet: docs/greenlet.rst (test1/test2: switches are transfers, not calls)
TEST_CASE("a switch is a transfer: a greenlet never switched back to stays suspended",
          "[switch][rule1]") {
  std::vector<int> out;
  greenlet gr1;
  greenlet gr2;
  gr1 = greenlet([&] {
    out.push_back(12);
    gr2.switch_to();
    out.push_back(34);
  });
  gr2 = greenlet([&] {
    out.push_back(56);
    gr1.switch_to();
    out.push_back(78);
  });
  gr1.switch_to();
  CHECK(out == std::vector<int>{12, 56, 34});
  CHECK(gr1.dead());
  CHECK_FALSE(gr2.dead());
  CHECK(gr2.active());
}

TEST_CASE("the arguments of a later switch become the result of the target's pending switch",
          "[switch][rule1]") {
  greenlet main = current();
  std::vector<int> received;
  greenlet g([&](int first) {
    received.push_back(first);
    int second = main.switch_to(first * 10).get<int>();
    received.push_back(second);
    int third = main.switch_to(second * 10).get<int>();
    received.push_back(third);
    return third * 10;
  });
  CHECK(g.switch_to(1).get<int>() == 10);
  CHECK(g.switch_to(2).get<int>() == 20);
  CHECK(g.switch_to(3).get<int>() == 30);
  CHECK(received == std::vector<int>{1, 2, 3});
  CHECK(g.dead());
}

// greenlet: test_greenlet.py::TestGreenlet::test_tuple_subclass (getcurrent().switch())
TEST_CASE("a switch to a suspended greenlet first runs the kills other threads queued here",
          "[switch][threads][rule6]") {
  // The switch's fast path is one comparison; a kill queued by another thread must
  // still divert the next switch (not only the next greenlet created) to run it.
  std::atomic<int> unwound{0};
  greenlet main_g = current();
  greenlet echo([&main_g] {
    for (;;) main_g.switch_to();
  });
  echo.switch_to();
  greenlet victim([&unwound] {
    struct on_unwind {
      std::atomic<int>* n;
      ~on_unwind() { ++*n; }
    } guard{&unwound};
    current().parent().switch_to();
  });
  victim.switch_to();
  std::thread([dropped = std::move(victim)]() mutable { dropped = greenlet(); }).join();
  CHECK(unwound == 0);  // queued for this thread
  echo.switch_to();
  CHECK(unwound == 1);
  for (int i = 0; i < 100; ++i) echo.switch_to();  // and the fast path is back
  CHECK(unwound == 1);
}

TEST_CASE("switching to the current greenlet returns the arguments at once", "[switch][rule1]") {
  SECTION("in the main greenlet") {
    CHECK(current().switch_to(42).get<int>() == 42);
    CHECK_FALSE(current().switch_to().has_value());
    CHECK(current().switch_to(1, std::string("x")).get<int, std::string>() ==
          std::make_tuple(1, std::string("x")));
  }
  SECTION("inside a greenlet") {
    greenlet g([] {
      int x = current().switch_to(7).get<int>();
      return x + 1;
    });
    CHECK(g.switch_to().get<int>() == 8);
    CHECK(g.dead());
  }
}

TEST_CASE("switch_to sends nothing, one value, or several as a tuple", "[switch][rule1]") {
  greenlet main = current();
  greenlet echo([&](value v) {
    for (;;) v = main.switch_to(std::move(v));
  });
  echo.switch_to();  // now suspended in its loop: every switch comes back unchanged

  SECTION("zero arguments") {
    value v = echo.switch_to();
    CHECK_FALSE(v.has_value());
    CHECK(v.size() == 0);
    CHECK(v.type() == typeid(void));
  }
  SECTION("one argument") {
    value v = echo.switch_to(5);
    CHECK(v.size() == 1);
    CHECK(v.type() == typeid(int));
    CHECK(std::move(v).get<int>() == 5);
  }
  SECTION("several arguments arrive as a tuple") {
    value v = echo.switch_to(1, std::string("two"), 3.5);
    CHECK(v.size() == 3);
    CHECK(v.type() == typeid(std::tuple<int, std::string, double>));
    auto [a, b, c] = std::move(v).get<int, std::string, double>();
    CHECK(a == 1);
    CHECK(b == "two");
    CHECK(c == 3.5);
  }
  SECTION("two arguments read as get<int, std::string>()") {
    CHECK(echo.switch_to(4, std::string("four")).get<int, std::string>() ==
          std::make_tuple(4, std::string("four")));
  }
  CHECK(echo.active());
}

// greenlet: test_greenlet.py::TestGreenlet::test_switch_kwargs_to_parent (positional part)
TEST_CASE("a greenlet switching to its parent sends one value or a tuple", "[switch][rule1]") {
  greenlet g([](int x) {
    current().parent().switch_to(x);
    current().parent().switch_to(2, x);
    return std::make_tuple(x, x * x);
  });
  CHECK(g.switch_to(3).get<int>() == 3);
  CHECK(g.switch_to().get<int, int>() == std::make_tuple(2, 3));
  CHECK(g.switch_to().get<int, int>() == std::make_tuple(3, 9));
  CHECK(g.dead());
}

// ---------------------------------------------------------------------------
// The forms `run` may take

TEST_CASE("run may take no parameters", "[switch][run]") {
  bool ran = false;
  greenlet g([&] { ran = true; });
  value r = g.switch_to();
  CHECK(ran);
  CHECK_FALSE(r.has_value());
  CHECK(g.dead());
}

TEST_CASE("run may take the whole value of the first switch", "[switch][run]") {
  SECTION("nothing") {
    greenlet g([](value v) { return v.has_value(); });
    CHECK(g.switch_to().get<bool>() == false);
  }
  SECTION("one value") {
    greenlet g([](value v) { return std::move(v).get<std::string>() + "!"; });
    CHECK(g.switch_to(std::string("hi")).get<std::string>() == "hi!");
  }
  SECTION("several values") {
    greenlet g([](value v) {
      CHECK(v.size() == 3);
      auto [a, b, c] = std::move(v).get<int, int, int>();
      return a + b + c;
    });
    CHECK(g.switch_to(1, 2, 3).get<int>() == 6);
  }
  SECTION("a value returned from run is passed through, not nested") {
    greenlet g([](value v) { return v; });
    value r = g.switch_to(1, 2);
    CHECK(r.type() == typeid(std::tuple<int, int>));
    CHECK(std::move(r).get<int, int>() == std::make_tuple(1, 2));
  }
}

TEST_CASE("run may take concrete parameters converted from the first switch", "[switch][run]") {
  SECTION("void(std::string) from a std::string") {
    std::string got;
    greenlet g([&](std::string s) { got = std::move(s); });
    CHECK_FALSE(g.switch_to(std::string("egon")).has_value());
    CHECK(got == "egon");
  }
  SECTION("void(std::string) from a string literal") {
    std::string got;
    greenlet g([&](std::string s) { got = std::move(s); });
    g.switch_to("egon");
    CHECK(got == "egon");
  }
  // greenlet: test_greenlet.py::TestGreenlet::test_switch_kwargs (run(a, b) returns 42)
  SECTION("int(int, int)") {
    greenlet g([](int a, int b) {
      CHECK(a == 4);
      CHECK(b == 2);
      return 42;
    });
    CHECK(g.switch_to(4, 2).get<int>() == 42);
  }
  SECTION("a const reference parameter") {
    greenlet g([](const std::string& s) { return s.size(); });
    CHECK(g.switch_to(std::string("four")).get<std::size_t>() == 4);
  }
  SECTION("an rvalue reference parameter") {
    greenlet g([](std::string&& s) {
      std::string mine = std::move(s);
      return mine + mine;
    });
    CHECK(g.switch_to(std::string("ab")).get<std::string>() == "abab");
  }
  SECTION("a move-only parameter by value and by rvalue reference") {
    greenlet g([](std::unique_ptr<int> p, std::unique_ptr<int>&& q) { return *p + *q; });
    CHECK(g.switch_to(std::make_unique<int>(3), std::make_unique<int>(4)).get<int>() == 7);
  }
  SECTION("mixed const reference and value parameters") {
    greenlet g(
        [](const std::string& s, int n, std::string&& t) { return s + std::to_string(n) + t; });
    CHECK(g.switch_to(std::string("a"), 1, "b").get<std::string>() == "a1b");
  }
  SECTION("a function pointer") {
    greenlet g(&twice);
    CHECK(g.switch_to(21).get<int>() == 42);
  }
  SECTION("a function name") {
    greenlet g(twice);
    CHECK(g.switch_to(5).get<int>() == 10);
  }
  SECTION("a function taking a const reference") {
    greenlet g(&greet);
    CHECK(g.switch_to("world").get<std::string>() == "hello world");
  }
  SECTION("a mutable lambda") {
    greenlet g([n = 0](int step) mutable {
      n += step;
      int more = current().parent().switch_to(n).get<int>();
      n += more;
      return n;
    });
    CHECK(g.switch_to(2).get<int>() == 2);
    CHECK(g.switch_to(5).get<int>() == 7);
  }
  SECTION("a mutable lambda taking nothing") {
    greenlet g([n = 10]() mutable { return ++n; });
    CHECK(g.switch_to().get<int>() == 11);
  }
  SECTION("a std::function") {
    std::function<int(int, int)> f = [](int a, int b) { return a * b; };
    greenlet g(f);
    CHECK(g.switch_to(6, 7).get<int>() == 42);
  }
}

TEST_CASE("arguments that do not fit run are a bad_value_cast raised in the greenlet",
          "[switch][run]") {
  bool ran = false;
  SECTION("wrong type") {
    greenlet g([&](int) { ran = true; });
    CHECK_THROWS_WITH(g.switch_to(std::string("x")),
                      "greenlets: bad_value_cast: value holds std::string, requested int");
    CHECK(g.dead());
  }
  SECTION("wrong type among several") {
    greenlet g([&](int, std::string) { ran = true; });
    CHECK_THROWS_AS(g.switch_to(1, 2), bad_value_cast);
    CHECK(g.dead());
  }
  SECTION("too few arguments") {
    greenlet g([&](int, int) { ran = true; });
    CHECK_THROWS_AS(g.switch_to(1), bad_value_cast);
    CHECK(g.dead());
  }
  SECTION("too many arguments") {
    greenlet g([&](int) { ran = true; });
    CHECK_THROWS_AS(g.switch_to(1, 2), bad_value_cast);
    CHECK(g.dead());
  }
  SECTION("arguments to a run that takes none") {
    greenlet g([&] { ran = true; });
    CHECK_THROWS_WITH(g.switch_to(1), Catch::Contains("bad_value_cast") && Catch::Contains("int"));
    CHECK(g.dead());
  }
  SECTION("no arguments to a run that takes one") {
    greenlet g([&](int) { ran = true; });
    CHECK_THROWS_WITH(g.switch_to(),
                      "greenlets: bad_value_cast: value holds nothing, requested int");
    CHECK(g.dead());
  }
  SECTION("a string literal to a run that takes an int") {
    greenlet g([&](int) { ran = true; });
    CHECK_THROWS_WITH(g.switch_to("x"),
                      "greenlets: bad_value_cast: value holds const char*, requested int");
    CHECK(g.dead());
  }
  CHECK_FALSE(ran);
  CHECK_FALSE(current().dead());
}

TEST_CASE("a bad_value_cast starting a greenlet goes to its parent, not to the switcher",
          "[switch][run][rule3]") {
  greenlet main = current();
  greenlet child;
  greenlet parent([&] {
    child = greenlet([](int) { FAIL("run must not be called"); });  // parent: this greenlet
    try {
      main.switch_to();
    } catch (const bad_value_cast& e) {
      return std::string("parent caught: ") + e.what();
    }
    return std::string("parent was resumed without an exception");
  });
  parent.switch_to();
  CHECK(child.parent() == parent);
  // main starts the child with a string; the child dies and its parent receives the
  // exception, then returns to its own parent, main.
  value r = child.switch_to(std::string("no"));
  CHECK(std::move(r).get<std::string>() ==
        "parent caught: greenlets: bad_value_cast: value holds std::string, requested int");
  CHECK(child.dead());
  CHECK(parent.dead());
}

TEST_CASE("run may be a large or over-aligned callable", "[switch][run]") {
  // Greenlets with small callables reuse per-thread blocks; these take other paths.
  struct alignas(64) wide {
    unsigned char bytes[64] = {};
  };
  wide w;
  w.bytes[63] = 7;
  greenlet aligned([w] {
    return std::make_tuple(reinterpret_cast<std::uintptr_t>(&w) % 64 == 0, int{w.bytes[63]});
  });
  CHECK(aligned.switch_to().get<std::tuple<bool, int>>() == std::make_tuple(true, 7));

  std::vector<int> big_capture(1000, 1);
  std::array<int, 200> inline_array{};
  inline_array[199] = 5;
  greenlet large([big_capture, inline_array] { return big_capture[999] + inline_array[199]; });
  CHECK(large.switch_to().get<int>() == 6);
}

TEST_CASE("run's return value of any type goes to the parent", "[switch][run][rule2]") {
  SECTION("void is an empty value") {
    greenlet g([] {});
    value r = g.switch_to();
    CHECK_FALSE(r.has_value());
    CHECK(r.type() == typeid(void));
  }
  SECTION("int") {
    greenlet g([] { return 42; });
    CHECK(g.switch_to().get<int>() == 42);
  }
  SECTION("std::string") {
    greenlet g([] { return std::string("meaning of life"); });
    CHECK(g.switch_to().get<std::string>() == "meaning of life");
  }
  SECTION("a string literal as const char*") {
    greenlet g([] { return "literal"; });
    value r = g.switch_to();
    CHECK(r.holds<const char*>());
    CHECK(std::move(r).get<std::string>() == "literal");
  }
  SECTION("a large vector") {
    greenlet g([] { return std::vector<int>(1000, 7); });
    std::vector<int> v = g.switch_to().get<std::vector<int>>();
    CHECK(v.size() == 1000);
    CHECK(v[999] == 7);
  }
  SECTION("a move-only type") {
    greenlet g([] { return std::make_unique<int>(9); });
    std::unique_ptr<int> p = g.switch_to().get<std::unique_ptr<int>>();
    REQUIRE(p != nullptr);
    CHECK(*p == 9);
  }
  SECTION("a tuple arrives as several values") {
    // greenlet: test_greenlet.py::TestGreenlet::test_switch_kwargs_to_parent ((3, 9))
    greenlet g([] { return std::make_tuple(3, 9); });
    value r = g.switch_to();
    CHECK(r.size() == 2);
    CHECK(std::move(r).get<int, int>() == std::make_tuple(3, 9));
  }
  SECTION("a single-element tuple stays a tuple") {
    greenlet g([] { return std::make_tuple(1); });
    value r = g.switch_to();
    CHECK(r.type() == typeid(std::tuple<int>));
    CHECK(std::get<0>(std::move(r).get<std::tuple<int>>()) == 1);
  }
}

// ---------------------------------------------------------------------------
// Rule 2: the return value goes to the parent, not the last switcher

TEST_CASE("a finished greenlet's value goes to its parent, not to whoever switched in last",
          "[switch][rule2]") {
  greenlet main = current();
  greenlet g([&] {
    main.switch_to();  // suspend; h will switch in here later
    return 7;
  });
  greenlet h([&] {
    // g's parent is main, so g's result goes there and h stays suspended here.
    value back = g.switch_to();
    return back.get<int>() * 100;
  });
  g.switch_to();
  REQUIRE(g.active());

  value r = h.switch_to();
  CHECK(r.get<int>() == 7);
  CHECK(g.dead());
  CHECK(h.active());
  CHECK_FALSE(h.dead());

  // h is still waiting in g.switch_to(); resuming it delivers our value there.
  CHECK(h.switch_to(5).get<int>() == 500);
  CHECK(h.dead());
}

// greenlet: docs/greenlet.rst ("test1 done": the parent receives the return value)
TEST_CASE("a greenlet's result goes to the parent it had when it finished", "[switch][rule2]") {
  greenlet main = current();
  greenlet receiver([&] {
    value v = main.switch_to();
    return std::string("receiver got ") + std::to_string(v.get<int>());
  });
  receiver.switch_to();
  greenlet g([] { return 1; });
  g.set_parent(receiver);
  // g finishes; receiver resumes with 1 and returns to main.
  CHECK(g.switch_to().get<std::string>() == "receiver got 1");
  CHECK(g.dead());
  CHECK(receiver.dead());
}

// ---------------------------------------------------------------------------
// Rule 4: switching to a dead greenlet

TEST_CASE("switching to a dead greenlet switches to its parent", "[switch][rule4]") {
  SECTION("parent is the caller: the arguments come back at once") {
    greenlet g([] {});
    g.switch_to();
    REQUIRE(g.dead());
    CHECK_FALSE(g.switch_to().has_value());
    CHECK(g.switch_to(25).get<int>() == 25);
    CHECK(g.switch_to(1, 2).get<int, int>() == std::make_tuple(1, 2));
    CHECK(g.dead());
  }
  SECTION("parent is suspended: it resumes with the arguments") {
    greenlet main = current();
    greenlet dead_child;
    greenlet parent([&] {
      dead_child = greenlet([] {});
      dead_child.switch_to();  // finishes at once and returns here
      value v = main.switch_to();
      return std::string("parent got ") + std::to_string(v.get<int>());
    });
    parent.switch_to();
    REQUIRE(dead_child.dead());
    REQUIRE(parent.active());
    CHECK(dead_child.switch_to(3).get<std::string>() == "parent got 3");
    CHECK(parent.dead());
  }
  SECTION("the chain skips dead ancestors up to the first live one") {
    greenlet main = current();
    greenlet a([&] {
      value v = main.switch_to();
      return v.get<int>() + 1000;
    });
    a.switch_to();
    greenlet b([] {}, a);
    greenlet c([] {}, b);
    // Finish b and c without touching a: parent them to main while they run.
    b.set_parent(main);
    b.switch_to();
    b.set_parent(a);
    c.set_parent(main);
    c.switch_to();
    c.set_parent(b);
    REQUIRE(b.dead());
    REQUIRE(c.dead());
    REQUIRE(a.active());
    CHECK(c.switch_to(1).get<int>() == 1001);
    CHECK(a.dead());
    // Now every ancestor up to main is dead: the switch comes back at once.
    CHECK(c.switch_to(2).get<int>() == 2);
  }
}

// greenlet: test_greenlet.py::TestGreenlet::test_exception
TEST_CASE("after an exception killed a chain, switching to it returns to the caller",
          "[switch][rule4]") {
  struct some_error {};
  std::vector<std::string> seen;
  auto fmain = [&] {
    try {
      current().parent().switch_to();
    } catch (const some_error&) {
      seen.push_back("some_error");
      throw;
    }
    throw some_error{};
  };
  greenlet g1(fmain);
  greenlet g2(fmain);
  g1.switch_to();
  g2.switch_to();
  g2.set_parent(g1);
  CHECK(seen.empty());
  CHECK_THROWS_AS(g2.switch_to(), some_error);
  CHECK(seen == std::vector<std::string>{"some_error"});
  CHECK(g1.dead());
  CHECK(g2.dead());

  value v = g2.switch_to();
  CHECK_FALSE(v.has_value());
  CHECK(g2.switch_to(25).get<int>() == 25);
  CHECK(seen == std::vector<std::string>{"some_error"});
}

// greenlet: test_greenlet.py::TestGreenlet::test_switch_to_dead_greenlet_reparent
TEST_CASE("switching to a dead greenlet starts its unstarted parent", "[switch][rule4]") {
  std::vector<int> seen;
  greenlet parent_never_started([&] { seen.push_back(24); });
  greenlet child([&] { seen.push_back(42); });
  child.switch_to();
  CHECK(seen == std::vector<int>{42});

  child.set_parent(parent_never_started);
  value result = child.switch_to();
  CHECK_FALSE(result.has_value());
  CHECK(seen == std::vector<int>{42, 24});
  CHECK(parent_never_started.dead());
}

TEST_CASE("switching to a dead greenlet starts its unstarted parent with the arguments",
          "[switch][rule4]") {
  greenlet parent_never_started([](int a, std::string b) { return b + std::to_string(a); });
  greenlet child([] {});
  child.switch_to();
  child.set_parent(parent_never_started);
  CHECK(child.switch_to(5, "x").get<std::string>() == "x5");
  CHECK(parent_never_started.started());
  CHECK(parent_never_started.dead());
}

// greenlet: test_greenlet.py::TestGreenlet::test_falling_off_end_switches_to_unstarted_parent_works
TEST_CASE("a greenlet finishing into an unstarted parent starts it with the result",
          "[switch][rule4]") {
  greenlet parent_never_started([](int x) { return std::make_tuple(x, 24); });
  greenlet child([] { return 42; }, parent_never_started);
  value result = child.switch_to();
  CHECK(std::move(result).get<int, int>() == std::make_tuple(42, 24));
  CHECK(child.dead());
  CHECK(parent_never_started.dead());
}

// greenlet:
// test_greenlet.py::TestGreenlet::test_falling_off_end_switches_to_unstarted_parent_raises_error
TEST_CASE("a greenlet finishing into an unstarted parent that cannot take the result raises",
          "[switch][rule4]") {
  bool parent_ran = false;
  greenlet parent_never_started([&] {
    parent_ran = true;
    return 13;
  });
  greenlet child([] { return 42; }, parent_never_started);
  // The parent's run takes no arguments, so starting it with 42 fails inside it,
  // and the error goes on to the parent's parent: us.
  CHECK_THROWS_AS(child.switch_to(), bad_value_cast);
  CHECK_FALSE(parent_ran);
  CHECK(child.dead());
  CHECK(parent_never_started.dead());
}

// greenlet:
// test_greenlet.py::TestGreenlet::test_switch_to_dead_greenlet_with_unstarted_perverse_parent
// (first half: C++ has no `run` lookup that can fail, so the parent's run throws instead;
// after that the parent is dead rather than still unstarted, so the second switch returns.)
TEST_CASE("an unstarted parent started by a finishing child can throw to its own parent",
          "[switch][rule4]") {
  struct some_error {};
  std::vector<int> seen;
  greenlet parent_never_started([]() -> int { throw some_error{}; });
  greenlet child([&] { seen.push_back(42); }, parent_never_started);
  CHECK_THROWS_AS(child.switch_to(), some_error);
  CHECK(seen == std::vector<int>{42});
  CHECK(child.dead());
  CHECK(parent_never_started.dead());
  CHECK(child.switch_to(1).get<int>() == 1);
  CHECK(seen == std::vector<int>{42});
}

TEST_CASE("the main greenlet never dies while its thread lives", "[switch][rule4][rule11]") {
  greenlet main = current();
  REQUIRE(main.is_main());
  greenlet g([] { return 1; });
  g.switch_to();
  g.switch_to();
  greenlet h([] { throw std::runtime_error("boom"); });
  CHECK_THROWS_AS(h.switch_to(), std::runtime_error);
  CHECK_FALSE(main.dead());
  CHECK(main.active());
  CHECK(main.started());
  CHECK(current() == main);
  CHECK(main.switch_to(3).get<int>() == 3);
}

// ---------------------------------------------------------------------------
// Rule 11: the state table

// greenlet: test_greenlet.py::TestGreenlet::test_frame, TestRepr::test_initial, test_dead
TEST_CASE("a greenlet goes from unstarted to active to dead", "[state][rule11]") {
  greenlet main = current();
  greenlet g;
  bool checked_running = false;
  g = greenlet([&] {
    // running: inside itself
    CHECK(current() == g);
    CHECK(g.started());
    CHECK(g.active());
    CHECK(static_cast<bool>(g));
    CHECK_FALSE(g.dead());
    CHECK_FALSE(g.is_main());
    checked_running = true;
    main.switch_to();
    return std::string("meaning of life");
  });

  // unstarted
  CHECK_FALSE(g.started());
  CHECK_FALSE(g.active());
  CHECK_FALSE(static_cast<bool>(g));
  CHECK_FALSE(g.dead());
  CHECK_FALSE(g.is_main());
  CHECK_FALSE(g.empty());

  g.switch_to();
  CHECK(checked_running);
  // suspended
  CHECK(g.started());
  CHECK(g.active());
  CHECK(static_cast<bool>(g));
  CHECK_FALSE(g.dead());

  CHECK(g.switch_to().get<std::string>() == "meaning of life");
  // finished: started() stays true
  CHECK(g.started());
  CHECK(g.dead());
  CHECK_FALSE(g.active());
  CHECK_FALSE(static_cast<bool>(g));
}

// greenlet: test_greenlet.py::TestRepr::test_main_while_running, test_main_in_background
TEST_CASE("the main greenlet is active and main, running or in the background", "[state][rule11]") {
  greenlet main = current();
  CHECK(main.is_main());
  CHECK(main.active());
  CHECK(static_cast<bool>(main));
  CHECK(main.started());
  CHECK_FALSE(main.dead());

  greenlet g([&] {
    // main is suspended in the background now
    CHECK(main.is_main());
    CHECK(main.active());
    CHECK_FALSE(main.dead());
    CHECK_FALSE(current().is_main());
    CHECK(current() != main);
    return main.active() && main.is_main();
  });
  CHECK(g.switch_to().get<bool>());
}

TEST_CASE("a greenlet killed before it starts never started and is dead", "[state][rule11]") {
  bool ran = false;
  greenlet g([&] { ran = true; });
  value r = g.throw_to();
  CHECK(r.holds<greenlets::greenlet_exit>());
  CHECK_FALSE(ran);
  CHECK_FALSE(g.started());
  CHECK(g.dead());
  CHECK_FALSE(g.active());
  CHECK_FALSE(static_cast<bool>(g));
}

// greenlet: test_greenlet.py::TestGreenlet::test_switch_no_run_raises_AttributeError,
// test_throw_no_run_raises_AttributeError (an empty handle is C++'s greenlet without run)
TEST_CASE("an empty handle is not started, dead or active, and using it is an error",
          "[state][rule11]") {
  greenlet e = opaque(greenlet());
  CHECK(e.empty());
  CHECK_FALSE(e.started());
  CHECK_FALSE(e.dead());
  CHECK_FALSE(e.active());
  CHECK_FALSE(static_cast<bool>(e));
  CHECK_FALSE(e.is_main());

  CHECK_THROWS_AS(e.switch_to(), greenlets::error);
  CHECK_THROWS_WITH(e.switch_to(1), Catch::Contains("switch_to") && Catch::Contains("empty"));
  CHECK_THROWS_WITH(e.throw_to(), Catch::Contains("throw_to") && Catch::Contains("empty"));
  CHECK_THROWS_WITH(e.throw_to(std::runtime_error("x")), Catch::Contains("throw_to"));
  CHECK_THROWS_WITH(e.parent(), Catch::Contains("parent") && Catch::Contains("empty"));
  CHECK_THROWS_WITH(greenlet().parent(), Catch::Contains("parent") && Catch::Contains("empty"));
  CHECK_THROWS_WITH(e.set_parent(current()),
                    Catch::Contains("set_parent") && Catch::Contains("empty"));
  greenlet g([] {});
  CHECK_THROWS_WITH(g.set_parent(e), Catch::Contains("set_parent") && Catch::Contains("empty"));
  CHECK_THROWS_AS(greenlet([] {}, greenlet{}), greenlets::error);
  // still empty and harmless afterwards
  CHECK(e.empty());
  CHECK_FALSE(g.started());
}

// ---------------------------------------------------------------------------
// Handles

TEST_CASE("copies of a handle share one greenlet", "[handle]") {
  greenlet main = current();
  greenlet a([&](int x) {
    int y = main.switch_to(x + 1).get<int>();
    return y * 2;
  });
  greenlet b = a;
  CHECK(a == b);
  CHECK(b.switch_to(1).get<int>() == 2);
  CHECK(a.started());
  CHECK(a.active());
  CHECK(a.switch_to(10).get<int>() == 20);
  CHECK(b.dead());

  greenlet c;
  c = a;
  CHECK(c == a);
  CHECK(c.dead());
  greenlet& same = c;
  c = same;  // self-assignment keeps it
  CHECK(c == a);
  CHECK(c.dead());
}

// greenlet: test_greenlet.py::TestGreenlet::test_main_greenlet_parent_is_none,
// CAPITests::test_getcurrent (getcurrent() is stable)
TEST_CASE("== compares identity", "[handle]") {
  auto f = [] {};
  greenlet a(f);
  greenlet b(f);
  CHECK(a != b);
  CHECK_FALSE(a == b);
  CHECK(a == a);
  CHECK(greenlet() == greenlet());
  CHECK(a != greenlet());
  CHECK(current() == current());
  greenlet seen_inside;
  greenlet g([&] { seen_inside = current(); });
  g.switch_to();
  CHECK(seen_inside == g);
  CHECK(seen_inside != current());
}

TEST_CASE("std::hash hashes a handle by identity", "[handle]") {
  greenlet a([] {});
  greenlet b([] {});
  greenlet a2 = a;
  std::hash<greenlet> h;
  CHECK(h(a) == h(a2));
  CHECK(h(current()) == h(current()));
  std::unordered_set<greenlet> set{a, b, a2, current()};
  CHECK(set.size() == 3);
  CHECK(set.count(a2) == 1);
  CHECK(set.count(greenlet([] {})) == 0);
}

TEST_CASE("moving a handle leaves the source empty", "[handle]") {
  greenlet a([] { return 5; });
  greenlet copy = a;
  greenlet b = std::move(a);
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  CHECK(a == greenlet());
  CHECK(b == copy);
  CHECK_FALSE(a.started());
  CHECK_THROWS_WITH(a.parent(), Catch::Contains("empty"));

  greenlet c;
  c = std::move(b);
  CHECK(b.empty());  // NOLINT(bugprone-use-after-move)
  CHECK(c == copy);
  CHECK(c.switch_to().get<int>() == 5);
  CHECK(copy.dead());
}
