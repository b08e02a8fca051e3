// Exceptions escaping `run` (rule 3 of docs/semantics.md) and the per-greenlet
// exception state of the C++ runtime (rule 10): `std::current_exception()`, `throw;` and
// `std::uncaught_exceptions()` must see only the running greenlet's own exceptions.
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

#include "support/tracking.hpp"

namespace {

using greenlets::current;
using greenlets::greenlet;
using greenlets::greenlet_exit;
using greenlets::value;

struct some_error : std::runtime_error {
  some_error() : std::runtime_error("some_error") {}
};
struct key_error : std::runtime_error {
  key_error() : std::runtime_error("key_error") {}
};

// What std::current_exception() holds now: "none", a std::exception's what(),
// "greenlet_exit" or "other".
std::string current_what() { return test_support::describe(std::current_exception()); }

// What `throw;` rethrows here (call only inside a handler).
std::string rethrow_what() {
  try {
    throw;
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "other";
  }
}

// Python's fmain from test_greenlet.py: suspend; on an exception record it and
// rethrow it; resumed normally, raise some_error.
void fmain(std::vector<std::string>* seen) {
  try {
    current().parent().switch_to();
  } catch (...) {
    seen->push_back(current_what());
    throw;
  }
  throw some_error();
}

}  // namespace

// ---------------------------------------------------------------------------
// Rule 3: an exception escaping run

TEST_CASE("an exception escaping run is rethrown in the parent's pending switch_to",
          "[exceptions][rule3]") {
  greenlet g([] { throw std::runtime_error("boom"); });
  try {
    g.switch_to();
    FAIL("switch_to returned");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "boom");
  }
  CHECK(g.dead());
  CHECK(g.started());
  CHECK_FALSE(g.active());
}

// greenlet: test_greenlet.py::TestGreenlet::test_exception
TEST_CASE("an exception escaping run goes to the parent, not to whoever switched in last",
          "[exceptions][rule3]") {
  std::vector<std::string> seen;
  greenlet g1([&seen] { fmain(&seen); });
  greenlet g2([&seen] { fmain(&seen); });
  g1.switch_to();
  g2.switch_to();
  g2.set_parent(g1);
  CHECK(seen.empty());

  // g2 raises some_error into g1 (its new parent), which records it and rethrows it
  // into main (g1's parent).
  CHECK_THROWS_AS(g2.switch_to(), some_error);
  CHECK(seen == std::vector<std::string>{"some_error"});
  CHECK(g1.dead());
  CHECK(g2.dead());

  // Both dead: the switch falls through to main and returns at once.
  value v = g2.switch_to();
  CHECK_FALSE(v.has_value());
  CHECK(seen == std::vector<std::string>{"some_error"});

  CHECK(g2.switch_to(25).get<int>() == 25);
  CHECK(seen == std::vector<std::string>{"some_error"});
}

// greenlet: test_greenlet.py::TestGreenlet::test_send_exception
TEST_CASE("an exception raised by a child is rethrown at the parent's suspension point",
          "[exceptions][rule3]") {
  std::vector<std::string> seen;
  greenlet g1([&seen] { fmain(&seen); });
  g1.switch_to();
  auto send_exception = [](greenlet g) {
    greenlet crasher([] { throw key_error(); }, g);
    crasher.switch_to();
  };
  CHECK_THROWS_AS(send_exception(g1), key_error);
  CHECK(seen == std::vector<std::string>{"key_error"});
  CHECK(g1.dead());
}

TEST_CASE("an exception escaping run passes over an unstarted parent, which never runs",
          "[exceptions][rule3]") {
  bool parent_ran = false;
  greenlet p([&parent_ran] { parent_ran = true; });
  greenlet g([] { throw key_error(); }, p);
  CHECK_THROWS_AS(g.switch_to(), key_error);
  CHECK_FALSE(parent_ran);
  CHECK(p.dead());
  CHECK_FALSE(p.started());
  CHECK(g.dead());
}

// greenlet: test_throw.py::ThrowTests::test_kill (the returned GreenletExit instance)
TEST_CASE("greenlet_exit escaping run arrives at the parent as a value", "[exceptions][rule3]") {
  SECTION("greenlet_exit itself") {
    greenlet g([] { throw greenlet_exit(); });
    value v = g.switch_to();
    CHECK(v.holds<greenlet_exit>());
    CHECK(g.dead());
  }
  SECTION("a class derived from greenlet_exit") {
    struct my_exit : greenlet_exit {
      int code = 7;
    };
    greenlet g([] { throw my_exit(); });
    value v;
    CHECK_NOTHROW(v = g.switch_to());
    CHECK(v.holds<greenlet_exit>());
    CHECK(g.dead());
  }
  SECTION("through a re-parented chain, to the parent at its pending switch") {
    greenlet g1([] { return current().parent().switch_to(); });
    g1.switch_to();
    greenlet g2([] { throw greenlet_exit(); }, g1);
    // g2's greenlet_exit resumes g1 with a value, and g1 returns it to main.
    value v = g2.switch_to();
    CHECK(v.holds<greenlet_exit>());
    CHECK(g1.dead());
    CHECK(g2.dead());
  }
}

TEST_CASE("greenlet_exit is not a std::exception", "[exceptions][rule3]") {
  static_assert(!std::is_base_of_v<std::exception, greenlet_exit>);
  static_assert(!std::is_convertible_v<greenlet_exit*, std::exception*>);
  bool caught_as_std = false;
  bool caught_as_exit = false;
  try {
    try {
      throw greenlet_exit();
    } catch (const std::exception&) {
      caught_as_std = true;
    }
  } catch (const greenlet_exit&) {
    caught_as_exit = true;
  }
  CHECK_FALSE(caught_as_std);
  CHECK(caught_as_exit);

  // So a kill goes through a catch (const std::exception&) in the victim.
  bool swallowed = false;
  greenlet g([&swallowed] {
    try {
      current().parent().switch_to();
    } catch (const std::exception&) {
      swallowed = true;
    }
    return 1;
  });
  g.switch_to();
  value v = g.throw_to();
  CHECK_FALSE(swallowed);
  CHECK(v.holds<greenlet_exit>());
  CHECK(g.dead());
}

TEST_CASE("after an exception from a greenlet is caught, no exception is left in flight",
          "[exceptions][rule3][rule10]") {
  greenlet g([] { throw key_error(); });
  try {
    g.switch_to();
  } catch (const key_error&) {
    CHECK(std::uncaught_exceptions() == 0);
    CHECK(current_what() == "key_error");
  }
  CHECK(std::uncaught_exceptions() == 0);
  CHECK(std::current_exception() == nullptr);
}

// ---------------------------------------------------------------------------
// Rule 10: exception state is per greenlet

// greenlet: test_greenlet.py::TestGreenlet::test_exc_state
TEST_CASE("a new greenlet starts with no active exception", "[exceptions][rule10]") {
  std::string in_h = "unset";
  int h_uncaught = -1;
  std::string f_before, f_after, f_rethrown;
  greenlet f([&] {
    try {
      throw std::runtime_error("fun");
    } catch (...) {
      f_before = current_what();
      greenlet h([&] {
        in_h = current_what();
        h_uncaught = std::uncaught_exceptions();
      });
      h.switch_to();
      f_after = current_what();
      f_rethrown = rethrow_what();
    }
  });
  f.switch_to();
  CHECK(f_before == "fun");
  CHECK(in_h == "none");
  CHECK(h_uncaught == 0);
  CHECK(f_after == "fun");
  CHECK(f_rethrown == "fun");
}

TEST_CASE("a greenlet started from inside main's catch sees no active exception",
          "[exceptions][rule10]") {
  std::string in_g;
  std::string in_g_later;
  greenlet g([&] {
    in_g = current_what();
    current().parent().switch_to();
    in_g_later = current_what();
  });
  try {
    throw std::runtime_error("main's");
  } catch (...) {
    std::exception_ptr mine = std::current_exception();
    g.switch_to();
    CHECK(in_g == "none");
    CHECK(std::current_exception() == mine);
    CHECK(current_what() == "main's");
    CHECK(rethrow_what() == "main's");
    g.switch_to();
    CHECK(in_g_later == "none");
    CHECK(std::current_exception() == mine);
  }
  CHECK(std::current_exception() == nullptr);
}

TEST_CASE("two greenlets switching from inside their catch blocks keep their own exceptions",
          "[exceptions][rule10]") {
  // The failure Boost 1.74 shows without saving the exception globals: B sees A's
  // exception, and A's `throw;` rethrows B's.
  greenlet a, b;
  std::vector<std::string> log;
  a = greenlet([&] {
    try {
      throw std::runtime_error("A");
    } catch (...) {
      std::exception_ptr mine = std::current_exception();
      b.switch_to();  // B starts; it comes back here from inside its own catch
      log.push_back("A sees " + current_what());
      log.push_back(std::string("A same ptr ") + (std::current_exception() == mine ? "yes" : "no"));
      log.push_back("A throw; gives " + rethrow_what());
      b.switch_to();  // B finishes its catch and returns to its parent (main)
      log.push_back("A after B died sees " + current_what());
    }
    log.push_back("A after catch sees " + current_what());
  });
  b = greenlet(
      [&] {
        log.push_back("B starts seeing " + current_what());
        log.push_back("B uncaught " + std::to_string(std::uncaught_exceptions()));
        try {
          throw std::runtime_error("B");
        } catch (...) {
          a.switch_to();
          log.push_back("B sees " + current_what());
          log.push_back("B throw; gives " + rethrow_what());
        }
        log.push_back("B after catch sees " + current_what());
      },
      a);
  a.switch_to();  // B dies into A (its parent), and A then dies into main
  CHECK(log == std::vector<std::string>{
                   "B starts seeing none",
                   "B uncaught 0",
                   "A sees A",
                   "A same ptr yes",
                   "A throw; gives A",
                   "B sees B",
                   "B throw; gives B",
                   "B after catch sees none",
                   "A after B died sees A",
                   "A after catch sees none",
               });
  CHECK(a.dead());
  CHECK(b.dead());
  CHECK(std::current_exception() == nullptr);
}

TEST_CASE("nested catches on two levels survive switches in both directions",
          "[exceptions][rule10]") {
  greenlet a, b;
  std::vector<std::string> log;
  auto body = [&log](const std::string& name, greenlet& other) {
    try {
      throw std::runtime_error(name + "1");
    } catch (...) {
      try {
        throw std::runtime_error(name + "2");
      } catch (...) {
        other.switch_to();
        log.push_back(name + " inner sees " + current_what());
      }
      log.push_back(name + " outer sees " + current_what());
      other.switch_to();
      log.push_back(name + " outer again sees " + current_what());
      log.push_back(name + " throw; gives " + rethrow_what());
    }
    log.push_back(name + " done sees " + current_what());
  };
  a = greenlet([&] { body("a", b); });
  b = greenlet([&] { body("b", a); });
  a.switch_to();
  // a: inner -> b starts, inner -> a: "a inner", "a outer", -> b: "b inner", "b outer",
  // -> a: "a outer again", throw;, done, dies to main.
  CHECK(log == std::vector<std::string>{
                   "a inner sees a2",
                   "a outer sees a1",
                   "b inner sees b2",
                   "b outer sees b1",
                   "a outer again sees a1",
                   "a throw; gives a1",
                   "a done sees none",
               });
  CHECK(a.dead());
  REQUIRE(b.active());
  log.clear();
  b.switch_to();
  CHECK(log == std::vector<std::string>{
                   "b outer again sees b1",
                   "b throw; gives b1",
                   "b done sees none",
               });
  CHECK(b.dead());
}

TEST_CASE("a destructor that switches away during stack unwinding keeps its uncaught count",
          "[exceptions][rule10]") {
  std::vector<std::string> log;
  struct switcher {
    std::vector<std::string>* log;
    greenlet* other;
    ~switcher() {
      log->push_back("dtor uncaught " + std::to_string(std::uncaught_exceptions()));
      other->switch_to();
      log->push_back("dtor again uncaught " + std::to_string(std::uncaught_exceptions()));
    }
  };
  greenlet other([&log] {
    for (;;) {
      log.push_back("other uncaught " + std::to_string(std::uncaught_exceptions()));
      log.push_back("other sees " + current_what());
      try {
        throw std::runtime_error("other's");
      } catch (...) {
        log.push_back("other in catch uncaught " + std::to_string(std::uncaught_exceptions()));
        current().parent().switch_to();
      }
    }
  });

  SECTION("the unwinding greenlet is a child") {
    greenlet a([&] {
      try {
        switcher s{&log, &other};
        throw std::runtime_error("a's");
      } catch (const std::runtime_error& e) {
        log.push_back(std::string("a caught ") + e.what());
        log.push_back("a uncaught " + std::to_string(std::uncaught_exceptions()));
      }
    });
    other.set_parent(a);
    a.switch_to();
  }
  SECTION("the unwinding greenlet is main") {
    try {
      switcher s{&log, &other};
      throw std::runtime_error("a's");
    } catch (const std::runtime_error& e) {
      log.push_back(std::string("a caught ") + e.what());
      log.push_back("a uncaught " + std::to_string(std::uncaught_exceptions()));
    }
  }
  CHECK(log == std::vector<std::string>{
                   "dtor uncaught 1",
                   "other uncaught 0",
                   "other sees none",
                   "other in catch uncaught 0",
                   "dtor again uncaught 1",
                   "a caught a's",
                   "a uncaught 0",
               });
  CHECK(std::uncaught_exceptions() == 0);
  CHECK(std::current_exception() == nullptr);
}

TEST_CASE("two greenlets both unwinding through switching destructors count separately",
          "[exceptions][rule10]") {
  std::vector<std::string> log;
  greenlet a, b;
  struct switcher {
    std::vector<std::string>* log;
    std::string name;
    greenlet* other;
    ~switcher() {
      log->push_back(name + " dtor uncaught " + std::to_string(std::uncaught_exceptions()));
      other->switch_to();
      log->push_back(name + " dtor back uncaught " + std::to_string(std::uncaught_exceptions()));
    }
  };
  auto body = [&log](const std::string& name, greenlet* other) {
    try {
      switcher outer{&log, name + "-outer", other};
      try {
        switcher inner{&log, name + "-inner", other};
        throw std::runtime_error(name);
      } catch (...) {
        log.push_back(name + " inner catch uncaught " + std::to_string(std::uncaught_exceptions()));
        throw;
      }
    } catch (const std::runtime_error& e) {
      log.push_back(name + " caught " + e.what());
    }
  };
  a = greenlet([&] { body("a", &b); });
  b = greenlet([&] { body("b", &a); }, current());
  a.switch_to();
  CHECK(log == std::vector<std::string>{
                   "a-inner dtor uncaught 1",
                   "b-inner dtor uncaught 1",
                   "a-inner dtor back uncaught 1",
                   "a inner catch uncaught 0",
                   "a-outer dtor uncaught 1",
                   "b-inner dtor back uncaught 1",
                   "b inner catch uncaught 0",
                   "b-outer dtor uncaught 1",
                   "a-outer dtor back uncaught 1",
                   "a caught a",
               });
  // a died and returned to main; b waits in its outer destructor, still unwinding.
  CHECK(a.dead());
  CHECK(std::uncaught_exceptions() == 0);
  log.clear();
  b.switch_to();
  CHECK(log == std::vector<std::string>{
                   "b-outer dtor back uncaught 1",
                   "b caught b",
               });
  CHECK(b.dead());
  CHECK(std::uncaught_exceptions() == 0);
}

TEST_CASE("unwinding a dropped greenlet whose destructor switches away keeps every state apart",
          "[exceptions][rule10][rule6]") {
  std::vector<std::string> log;
  auto count = [] { return std::to_string(std::uncaught_exceptions()); };
  greenlet other([&](greenlet back) {
    log.push_back("other uncaught " + count() + " sees " + current_what());
    try {
      throw std::runtime_error("other's");
    } catch (...) {
      log.push_back("other in catch sees " + current_what());
      back.switch_to();
    }
  });
  struct guard {
    std::vector<std::string>* log;
    greenlet* other;
    ~guard() {
      auto n = [] { return std::to_string(std::uncaught_exceptions()); };
      log->push_back("dtor uncaught " + n() + " sees " + current_what());
      other->switch_to(current());
      log->push_back("dtor back uncaught " + n() + " sees " + current_what());
    }
  };
  greenlet g([&] {
    try {
      try {
        throw std::runtime_error("g's");
      } catch (...) {
        guard gd{&log, &other};
        log.push_back("g suspends in catch seeing " + current_what());
        current().parent().switch_to();
        log.push_back("g resumed normally");
      }
    } catch (const greenlet_exit&) {
      log.push_back("g caught greenlet_exit, uncaught " + count() + " sees " + current_what());
      throw;
    }
  });
  g.switch_to();
  REQUIRE(g.active());

  try {
    throw std::runtime_error("main's");
  } catch (...) {
    std::exception_ptr mine = std::current_exception();
    g = greenlet();  // the last handle: greenlet_exit is thrown into g, which unwinds
    log.push_back("main after drop uncaught " + count() + " sees " + current_what());
    CHECK(std::current_exception() == mine);
  }
  CHECK(log == std::vector<std::string>{
                   "g suspends in catch seeing g's",
                   "dtor uncaught 1 sees g's",
                   "other uncaught 0 sees none",
                   "other in catch sees other's",
                   "dtor back uncaught 1 sees g's",
                   "g caught greenlet_exit, uncaught 0 sees greenlet_exit",
                   "main after drop uncaught 0 sees main's",
               });
  CHECK(std::uncaught_exceptions() == 0);
  CHECK(std::current_exception() == nullptr);
  // other is still suspended in its catch, holding a handle to the dead g.
  CHECK(other.active());
}

TEST_CASE("an exception thrown into a greenlet suspended in a catch nests over its own",
          "[exceptions][rule10][rule5]") {
  std::vector<std::string> log;
  greenlet g([&] {
    try {
      throw std::runtime_error("own");
    } catch (...) {
      try {
        current().parent().switch_to();
      } catch (const key_error&) {
        log.push_back("inner sees " + current_what());
      }
      log.push_back("outer sees " + current_what());
      log.push_back("throw; gives " + rethrow_what());
    }
    return 5;
  });
  g.switch_to();
  CHECK(g.throw_to(key_error()).get<int>() == 5);
  CHECK(log == std::vector<std::string>{
                   "inner sees key_error",
                   "outer sees own",
                   "throw; gives own",
               });
}

TEST_CASE("a greenlet dying from inside a catch leaves no exception behind",
          "[exceptions][rule10]") {
  std::string parent_sees = "unset";
  greenlet g([] {
    try {
      throw std::runtime_error("g's");
    } catch (...) {
      return 1;  // returns from inside the handler: __cxa_end_catch runs first
    }
  });
  try {
    throw std::runtime_error("main's");
  } catch (...) {
    CHECK(g.switch_to().get<int>() == 1);
    parent_sees = current_what();
  }
  CHECK(parent_sees == "main's");
  CHECK(std::current_exception() == nullptr);
  CHECK(std::uncaught_exceptions() == 0);
}
