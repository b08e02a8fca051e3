// throw_to: raising an exception inside another greenlet (rule 5 of docs/semantics.md).
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

namespace {

using greenlets::current;
using greenlets::greenlet;
using greenlets::greenlet_exit;
using greenlets::value;

struct index_error : std::runtime_error {
  index_error() : std::runtime_error("index_error") {}
};
struct key_error : std::runtime_error {
  key_error() : std::runtime_error("key_error") {}
};

// Python's `switch(*args)` helper from test_throw.py.
template <class... Args>
value to_parent(Args&&... args) {
  return current().parent().switch_to(std::forward<Args>(args)...);
}

}  // namespace

// greenlet: test_throw.py::ThrowTests::test_class
TEST_CASE("throw_to raises the exception at the target's suspension point", "[throw][rule5]") {
  greenlet g([] {
    try {
      to_parent("ok");
    } catch (const std::runtime_error&) {
      to_parent("ok");
      return;
    }
    to_parent("fail");
  });
  CHECK(g.switch_to().get<std::string>() == "ok");
  CHECK(g.throw_to(std::runtime_error("x")).get<std::string>() == "ok");
  CHECK(g.active());
  // It caught the exception and suspended again; finishing it returns nothing.
  CHECK_FALSE(g.switch_to().has_value());
  CHECK(g.dead());
}

// greenlet: test_throw.py::ThrowTests::test_val
TEST_CASE("throw_to delivers the exception object itself", "[throw][rule5]") {
  auto f = [] {
    try {
      to_parent("ok");
    } catch (const std::runtime_error& e) {
      if (std::string(e.what()) == "ciao") {
        to_parent("ok");
        return;
      }
    }
    to_parent("fail");
  };
  SECTION("as an exception object: throw_to(E)") {
    greenlet g(f);
    CHECK(g.switch_to().get<std::string>() == "ok");
    CHECK(g.throw_to(std::runtime_error("ciao")).get<std::string>() == "ok");
  }
  SECTION("as an exception_ptr: throw_to(std::exception_ptr)") {
    greenlet g(f);
    CHECK(g.switch_to().get<std::string>() == "ok");
    std::exception_ptr p = std::make_exception_ptr(std::runtime_error("ciao"));
    CHECK(g.throw_to(p).get<std::string>() == "ok");
  }
  SECTION("a different message is seen as different") {
    greenlet g(f);
    CHECK(g.switch_to().get<std::string>() == "ok");
    CHECK(g.throw_to(std::runtime_error("other")).get<std::string>() == "fail");
  }
}

TEST_CASE("throw_to(std::exception_ptr) raises the very object the pointer holds",
          "[throw][rule5]") {
  std::exception_ptr seen;
  greenlet g([&seen] {
    try {
      to_parent();
    } catch (const key_error&) {
      seen = std::current_exception();
    }
    return 3;
  });
  g.switch_to();
  std::exception_ptr p = std::make_exception_ptr(key_error());
  CHECK(g.throw_to(p).get<int>() == 3);
  CHECK(seen == p);
  CHECK(g.dead());
}

// greenlet: test_throw.py::ThrowTests::test_kill
TEST_CASE("throw_to() with no argument kills with greenlet_exit, which comes back as a value",
          "[throw][rule5]") {
  bool resumed = false;
  greenlet g([&resumed] {
    to_parent("ok");
    resumed = true;
    to_parent("fail");
  });
  CHECK(g.switch_to().get<std::string>() == "ok");
  value res = g.throw_to();
  CHECK(res.holds<greenlet_exit>());
  CHECK(g.dead());
  CHECK_FALSE(resumed);
  // Immediately eaten by the already-dead greenlet.
  value again = g.throw_to();
  CHECK(again.holds<greenlet_exit>());
  CHECK(g.dead());
}

TEST_CASE("a greenlet that catches greenlet_exit from throw_to decides what comes back",
          "[throw][rule5]") {
  SECTION("it returns a value") {
    greenlet g([] {
      try {
        to_parent();
      } catch (const greenlet_exit&) {
        return 42;
      }
      return 0;
    });
    g.switch_to();
    CHECK(g.throw_to().get<int>() == 42);
    CHECK(g.dead());
  }
  SECTION("it switches back and stays alive") {
    greenlet g([] {
      try {
        to_parent();
      } catch (const greenlet_exit&) {
        to_parent("still here");
      }
      return 1;
    });
    g.switch_to();
    CHECK(g.throw_to().get<std::string>() == "still here");
    CHECK(g.active());
    CHECK(g.switch_to().get<int>() == 1);
  }
  SECTION("a class derived from greenlet_exit comes back as a greenlet_exit value") {
    struct my_exit : greenlet_exit {};
    greenlet g([] { to_parent(); });
    g.switch_to();
    value v = g.throw_to(my_exit());
    CHECK(v.holds<greenlet_exit>());
    CHECK(g.dead());
  }
}

TEST_CASE("an exception thrown in and not caught comes back to the thrower when it is the parent",
          "[throw][rule5]") {
  greenlet g([] { to_parent(); });
  g.switch_to();
  CHECK_THROWS_AS(g.throw_to(key_error()), key_error);
  CHECK(g.dead());
  CHECK(g.started());
}

TEST_CASE("throw_to into an unstarted greenlet kills it before run runs", "[throw][rule5]") {
  bool ran = false;
  auto run = [&ran] { ran = true; };
  SECTION("greenlet_exit comes back to the parent as a value") {
    greenlet g(run);
    value v = g.throw_to();
    CHECK(v.holds<greenlet_exit>());
    CHECK_FALSE(ran);
    CHECK_FALSE(g.started());
    CHECK(g.dead());
    CHECK_FALSE(g.active());
  }
  SECTION("any other exception is rethrown in the parent") {
    greenlet g(run);
    CHECK_THROWS_AS(g.throw_to(key_error()), key_error);
    CHECK_FALSE(ran);
    CHECK_FALSE(g.started());
    CHECK(g.dead());
  }
  SECTION("the same through an exception_ptr") {
    greenlet g(run);
    CHECK_THROWS_AS(g.throw_to(std::make_exception_ptr(key_error())), key_error);
    CHECK_FALSE(ran);
    CHECK(g.dead());
  }
  SECTION("and switching to it afterwards does not start it") {
    greenlet g(run);
    (void)g.throw_to();
    CHECK(g.switch_to(9).get<int>() == 9);  // dead: passes on to its parent, main
    CHECK_FALSE(ran);
    CHECK_FALSE(g.started());
  }
}

TEST_CASE("throw_to into an unstarted greenlet sends the exception to its parent, not the thrower",
          "[throw][rule5]") {
  // Verified against greenlet 2.0.2: run is not called and the suspended parent
  // receives the exception at its pending switch.
  std::vector<std::string> seen;
  greenlet p([&seen] {
    try {
      to_parent("p ready");
    } catch (const key_error&) {
      seen.push_back("p got key_error");
      return std::string("p caught");
    }
    return std::string("p normal");
  });
  CHECK(p.switch_to().get<std::string>() == "p ready");
  bool ran = false;
  greenlet u([&ran] { ran = true; }, p);
  CHECK(u.throw_to(key_error()).get<std::string>() == "p caught");
  CHECK(seen == std::vector<std::string>{"p got key_error"});
  CHECK_FALSE(ran);
  CHECK(u.dead());
  CHECK(p.dead());

  SECTION("greenlet_exit arrives at that parent as a value") {
    greenlet p2([] {
      value v = to_parent("ready");
      return v.holds<greenlet_exit>();
    });
    p2.switch_to();
    greenlet u2([&ran] { ran = true; }, p2);
    CHECK(u2.throw_to().get<bool>());
    CHECK_FALSE(ran);
    CHECK(p2.dead());
  }
}

// greenlet: test_throw.py::ThrowTests::test_throw_goes_to_original_parent
TEST_CASE("an uncaught thrown exception goes to the target's original parent", "[throw][rule5]") {
  greenlet main_g = current();
  auto f1 = [main_g]() mutable {
    try {
      main_g.switch_to("f1 ready to catch");
    } catch (const index_error&) {
      return std::string("caught");
    }
    return std::string("normal exit");
  };
  auto f2 = [main_g]() mutable { main_g.switch_to("from f2"); };

  SECTION("neither started: the exception passes the unstarted parent and reaches main") {
    greenlet g1(f1);
    greenlet g2(f2, g1);
    CHECK_THROWS_AS(g2.throw_to(index_error()), index_error);
    CHECK(g2.dead());
    CHECK(g1.dead());
  }
  SECTION("the parent suspended, the target unstarted") {
    greenlet g1(f1);
    greenlet g2(f2, g1);
    CHECK(g1.switch_to().get<std::string>() == "f1 ready to catch");
    CHECK(g2.throw_to(index_error()).get<std::string>() == "caught");
    CHECK(g2.dead());
    CHECK(g1.dead());
  }
  SECTION("both suspended, each having switched straight to main") {
    greenlet g1(f1);
    greenlet g2(f2, g1);
    CHECK(g1.switch_to().get<std::string>() == "f1 ready to catch");
    CHECK(g2.switch_to().get<std::string>() == "from f2");
    CHECK(g2.throw_to(index_error()).get<std::string>() == "caught");
    CHECK(g2.dead());
    CHECK(g1.dead());
  }
}

TEST_CASE("throw_to into a dead greenlet raises the exception in its parent chain",
          "[throw][rule5]") {
  SECTION("the parent is the thrower: it is raised at once") {
    greenlet g([] { return 1; });
    CHECK(g.switch_to().get<int>() == 1);
    REQUIRE(g.dead());
    CHECK_THROWS_AS(g.throw_to(key_error()), key_error);
    CHECK(g.dead());
  }
  SECTION("the parent is suspended elsewhere: it gets the exception at its pending switch") {
    std::vector<std::string> seen;
    greenlet p([&seen] {
      try {
        to_parent("p ready");
      } catch (const key_error&) {
        seen.push_back("p got key_error");
        return std::string("p caught");
      }
      return std::string("p normal");
    });
    CHECK(p.switch_to().get<std::string>() == "p ready");
    greenlet g([] { return 'x'; });
    CHECK(g.switch_to().get<char>() == 'x');
    g.set_parent(p);
    CHECK(g.throw_to(key_error()).get<std::string>() == "p caught");
    CHECK(seen == std::vector<std::string>{"p got key_error"});
    CHECK(p.dead());
  }
  SECTION("a chain of dead greenlets is skipped") {
    greenlet a([] { return 1; });
    greenlet b([] { return 2; }, a);
    CHECK(a.switch_to().get<int>() == 1);
    CHECK(b.switch_to().get<int>() == 2);  // b is dead; a is dead; main gets it
    REQUIRE(a.dead());
    REQUIRE(b.dead());
    CHECK_THROWS_AS(b.throw_to(key_error()), key_error);
    CHECK(b.throw_to().holds<greenlet_exit>());
  }
}

TEST_CASE("throw_to into the current greenlet raises at once", "[throw][rule5]") {
  // As greenlet.getcurrent().throw(...) in greenlet 2.0.2.
  CHECK_THROWS_AS(current().throw_to(key_error()), key_error);
  CHECK_THROWS_AS(current().throw_to(), greenlet_exit);

  std::string inside;
  greenlet g([&inside] {
    try {
      current().throw_to(std::runtime_error("self"));
    } catch (const std::runtime_error& e) {
      inside = e.what();
    }
    return 4;
  });
  CHECK(g.switch_to().get<int>() == 4);
  CHECK(inside == "self");
}

TEST_CASE("throw_to with a null exception_ptr or an empty handle is an error", "[throw][rule5]") {
  SECTION("a null exception_ptr") {
    bool ran = false;
    greenlet g([&ran] { ran = true; });
    CHECK_THROWS_AS(g.throw_to(std::exception_ptr()), greenlets::error);
    // Nothing happened to the target.
    CHECK_FALSE(ran);
    CHECK_FALSE(g.started());
    CHECK_FALSE(g.dead());
    greenlet h([] {
      to_parent();
      return 2;
    });
    h.switch_to();
    CHECK_THROWS_AS(h.throw_to(std::exception_ptr()), greenlets::error);
    CHECK(h.active());
    CHECK(h.switch_to().get<int>() == 2);
  }
  SECTION("an empty handle") {
    greenlet empty;
    CHECK_THROWS_AS(empty.throw_to(), greenlets::error);
    CHECK_THROWS_AS(empty.throw_to(key_error()), greenlets::error);
    CHECK_THROWS_AS(empty.throw_to(std::make_exception_ptr(key_error())), greenlets::error);
    CHECK(empty.empty());
  }
}

TEST_CASE("a thrown exception passes through a catch for other types and unwinds the target",
          "[throw][rule5]") {
  std::vector<std::string> log;
  struct noisy {
    std::vector<std::string>* log;
    ~noisy() { log->push_back("destructor ran"); }
  };
  greenlet g([&log] {
    noisy n{&log};
    try {
      to_parent();
    } catch (const index_error&) {
      log.push_back("wrong handler");
    }
    log.push_back("after try");
  });
  g.switch_to();
  CHECK_THROWS_AS(g.throw_to(key_error()), key_error);
  CHECK(log == std::vector<std::string>{"destructor ran"});
  CHECK(g.dead());
}

TEST_CASE("a target that catches a throw can switch to a third greenlet", "[throw][rule5]") {
  greenlet main_g = current();
  greenlet third([main_g](std::string s) mutable { main_g.switch_to("third got " + s); });
  greenlet g([&third] {
    try {
      to_parent();
    } catch (const key_error& e) {
      third.switch_to(std::string(e.what()));
    }
  });
  g.switch_to();
  CHECK(g.throw_to(key_error()).get<std::string>() == "third got key_error");
  CHECK(g.active());
  CHECK(third.active());
}
