// settrace/gettrace: the per-thread callback told about every switch and throw
// (rule 9 of docs/semantics.md). Every test leaves tracing off.
#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

namespace {

using greenlets::current;
using greenlets::greenlet;
using greenlets::greenlet_exit;
using greenlets::trace_event;
using greenlets::value;

struct some_error : std::runtime_error {
  some_error() : std::runtime_error("some_error") {}
};
struct key_error : std::runtime_error {
  key_error() : std::runtime_error("key_error") {}
};

struct action {
  trace_event event;
  greenlet origin;
  greenlet target;
  bool ran_in_target;  // current() == target inside the callback
};

bool operator==(const action& a, const action& b) {
  return a.event == b.event && a.origin == b.origin && a.target == b.target &&
         a.ran_in_target == b.ran_in_target;
}

std::ostream& operator<<(std::ostream& os, const action& a) {
  return os << (a.event == trace_event::switch_to ? "switch_to" : "throw_to")
            << (a.ran_in_target ? "" : " (not in target)");
}

action sw(const greenlet& origin, const greenlet& target) {
  return {trace_event::switch_to, origin, target, true};
}
action th(const greenlet& origin, const greenlet& target) {
  return {trace_event::throw_to, origin, target, true};
}

// Python's GreenletTracer: records every call; installs itself for its lifetime and
// puts back the previous function afterwards.
class tracer {
 public:
  explicit tracer(bool error_on_trace = false) : actions_(std::make_shared<std::vector<action>>()) {
    auto actions = actions_;
    old_ = greenlets::settrace(
        [actions, error_on_trace](trace_event ev, const greenlet& origin, const greenlet& target) {
          actions->push_back({ev, origin, target, current() == target});
          if (error_on_trace) throw some_error();
        });
  }
  ~tracer() { greenlets::settrace(std::move(old_)); }
  tracer(const tracer&) = delete;
  tracer& operator=(const tracer&) = delete;

  std::vector<action>& actions() { return *actions_; }

 private:
  std::shared_ptr<std::vector<action>> actions_;
  greenlets::trace_function old_;
};

// Turns tracing off however a test ends.
struct trace_off {
  trace_off() = default;
  trace_off(const trace_off&) = delete;
  trace_off& operator=(const trace_off&) = delete;
  ~trace_off() { greenlets::settrace(nullptr); }
};

}  // namespace

// greenlet: test_tracing.py::TestGreenletTracing::test_set_same_tracer_twice
TEST_CASE("settrace installs a callback and returns the previous one", "[trace][rule9]") {
  trace_off off;
  CHECK_FALSE(greenlets::gettrace());
  std::vector<int> calls;
  greenlets::trace_function one = [&calls](trace_event, const greenlet&, const greenlet&) {
    calls.push_back(1);
  };
  greenlets::trace_function two = [&calls](trace_event, const greenlet&, const greenlet&) {
    calls.push_back(2);
  };

  greenlets::trace_function prev = greenlets::settrace(one);
  CHECK_FALSE(prev);  // empty initially
  REQUIRE(greenlets::gettrace());
  greenlets::gettrace()(trace_event::switch_to, greenlet(), greenlet());
  CHECK(calls == std::vector<int>{1});

  prev = greenlets::settrace(two);
  REQUIRE(prev);
  prev(trace_event::switch_to, greenlet(), greenlet());  // the previous one is `one`
  CHECK(calls == std::vector<int>{1, 1});

  current().switch_to();  // a self-switch is traced: by `two` only
  CHECK(calls == std::vector<int>{1, 1, 2});

  // Setting the same tracer twice is fine.
  greenlets::settrace(two);
  prev = greenlets::settrace(two);
  REQUIRE(prev);
  prev(trace_event::switch_to, greenlet(), greenlet());
  CHECK(calls == std::vector<int>{1, 1, 2, 2});

  prev = greenlets::settrace(nullptr);
  CHECK(prev);
  CHECK_FALSE(greenlets::gettrace());
  calls.clear();
  current().switch_to();
  greenlet g([] {});
  g.switch_to();
  CHECK(calls.empty());
}

// greenlet: test_tracing.py::TestGreenletTracing::test_a_greenlet_tracing
TEST_CASE("the trace function sees switches, deaths and throws in order", "[trace][rule9]") {
  trace_off off;
  greenlet main_g = current();
  greenlet g1([] {});
  greenlet g2([] { throw some_error(); });
  std::vector<action> actions;
  {
    tracer t;
    g1.switch_to();
    CHECK_THROWS_AS(g2.switch_to(), some_error);
    actions = t.actions();
  }
  CHECK(actions == std::vector<action>{
                       sw(main_g, g1),
                       sw(g1, main_g),
                       sw(main_g, g2),
                       th(g2, main_g),
                   });
}

TEST_CASE("the trace function runs in the target greenlet just after the switch",
          "[trace][rule9]") {
  trace_off off;
  std::vector<std::string> log;
  greenlet main_g = current();
  greenlets::settrace([&log](trace_event, const greenlet& origin, const greenlet& target) {
    std::string who = current() == target ? "in target" : "NOT in target";
    log.push_back(std::string("trace ") + (origin.is_main() ? "main" : "g") + "->" +
                  (target.is_main() ? "main" : "g") + " " + who);
  });
  greenlet g([&log](int x) {
    log.push_back("run starts with " + std::to_string(x));
    int y = current().parent().switch_to(x + 1).get<int>();
    log.push_back("g resumed with " + std::to_string(y));
    return y * 2;
  });
  log.push_back("main switches");
  int a = g.switch_to(1).get<int>();
  log.push_back("main got " + std::to_string(a));
  int b = g.switch_to(5).get<int>();
  log.push_back("main got " + std::to_string(b));
  greenlets::settrace(nullptr);
  CHECK(log == std::vector<std::string>{
                   "main switches",
                   "trace main->g in target",  // before run starts
                   "run starts with 1",
                   "trace g->main in target",
                   "main got 2",
                   "trace main->g in target",
                   "g resumed with 5",
                   "trace g->main in target",  // the death returning to the parent
                   "main got 10",
               });
}

TEST_CASE("a death traced back to the parent names the dead greenlet as origin", "[trace][rule9]") {
  trace_off off;
  std::vector<std::pair<bool, bool>> dead_flags;  // (origin dead, target dead)
  greenlets::settrace([&dead_flags](trace_event, const greenlet& origin, const greenlet& target) {
    dead_flags.emplace_back(origin.dead(), target.dead());
  });
  greenlet g([] { return 1; });
  g.switch_to();
  greenlets::settrace(nullptr);
  CHECK(dead_flags == std::vector<std::pair<bool, bool>>{{false, false}, {true, false}});
}

TEST_CASE("a self-switch is traced as a switch from current to current", "[trace][rule9]") {
  trace_off off;
  greenlet main_g = current();
  std::vector<action> in_main, in_g;
  {
    tracer t;
    CHECK(current().switch_to(3).get<int>() == 3);
    in_main = t.actions();
  }
  CHECK(in_main == std::vector<action>{sw(main_g, main_g)});

  greenlet g;
  g = greenlet([&in_g] {
    tracer t;
    current().switch_to();
    in_g = t.actions();
  });
  g.switch_to();
  CHECK(in_g == std::vector<action>{sw(g, g)});
}

TEST_CASE("throws are traced as throw_to events", "[trace][rule9]") {
  trace_off off;
  greenlet main_g = current();

  SECTION("a throw caught by the target, which then returns") {
    greenlet g([] {
      try {
        current().parent().switch_to();
      } catch (const key_error&) {
        return std::string("caught");
      }
      return std::string("normal");
    });
    g.switch_to();
    tracer t;
    CHECK(g.throw_to(key_error()).get<std::string>() == "caught");
    CHECK(t.actions() == std::vector<action>{th(main_g, g), sw(g, main_g)});
  }
  SECTION("a throw not caught: the death by exception is a throw_to too") {
    greenlet g([] { current().parent().switch_to(); });
    g.switch_to();
    tracer t;
    CHECK_THROWS_AS(g.throw_to(key_error()), key_error);
    CHECK(t.actions() == std::vector<action>{th(main_g, g), th(g, main_g)});
  }
  SECTION("throw_to() kills, and greenlet_exit returns as a switch") {
    greenlet g([] { current().parent().switch_to(); });
    g.switch_to();
    tracer t;
    CHECK(g.throw_to().holds<greenlet_exit>());
    CHECK(t.actions() == std::vector<action>{th(main_g, g), sw(g, main_g)});
  }
  SECTION("a throw into a dead greenlet lands in the thrower") {
    // As greenlet 2.0.2: [('throw', (main, main))].
    greenlet g([] {});
    g.switch_to();
    tracer t;
    CHECK_THROWS_AS(g.throw_to(key_error()), key_error);
    CHECK(t.actions() == std::vector<action>{th(main_g, main_g)});
  }
}

TEST_CASE("a throw into an unstarted greenlet is traced as Python traces it",
          "[trace][rule9][rule5]") {
  // greenlet 2.0.2 reports the throw arriving in the greenlet, then its death leaving
  // it, although `run` never runs: ('throw', (main, g)), then ('throw', (g, parent)) for
  // an exception or ('switch', (g, parent)) for GreenletExit. Each runs in its target.
  trace_off off;
  greenlet main_g = current();
  bool ran = false;

  SECTION("an exception: thrown into g, then thrown on to main") {
    greenlet g([&ran] { ran = true; });
    tracer t;
    CHECK_THROWS_AS(g.throw_to(key_error()), key_error);
    CHECK(t.actions() == std::vector<action>{th(main_g, g), th(g, main_g)});
    CHECK_FALSE(ran);
    CHECK_FALSE(g.started());
    CHECK(g.dead());
  }
  SECTION("greenlet_exit: thrown into g, then its death returns to main as a switch") {
    greenlet g([&ran] { ran = true; });
    tracer t;
    CHECK(g.throw_to().holds<greenlet_exit>());
    CHECK(t.actions() == std::vector<action>{th(main_g, g), sw(g, main_g)});
    CHECK_FALSE(ran);
    CHECK_FALSE(g.started());
    CHECK(g.dead());
  }
  SECTION("the parent is not the thrower: the exception goes to the parent") {
    greenlet p([] {
      try {
        current().parent().switch_to();
      } catch (const key_error&) {
        return std::string("p caught key_error");
      }
      return std::string("p not thrown to");
    });
    p.switch_to();
    greenlet g([&ran] { ran = true; }, p);
    tracer t;
    CHECK(g.throw_to(key_error()).get<std::string>() == "p caught key_error");
    CHECK(t.actions() == std::vector<action>{th(main_g, g), th(g, p), sw(p, main_g)});
    CHECK_FALSE(ran);
    CHECK(g.dead());
    CHECK(p.dead());
  }
  SECTION("the parent is unstarted too: it dies without running as well") {
    bool parent_ran = false;
    greenlet q([&parent_ran] { parent_ran = true; });
    greenlet g([&ran] { ran = true; }, q);
    tracer t;
    CHECK_THROWS_AS(g.throw_to(key_error()), key_error);
    CHECK(t.actions() == std::vector<action>{th(main_g, g), th(g, q), th(q, main_g)});
    CHECK_FALSE(ran);
    CHECK_FALSE(parent_ran);
    CHECK_FALSE(q.started());
    CHECK(q.dead());
  }
  SECTION("thrown from another greenlet: the exception goes to g's parent, main") {
    greenlet g([&ran] { ran = true; }, main_g);
    greenlet h([&g] {
      g.throw_to(key_error());
      return 1;  // never: key_error goes to main, g's parent
    });
    tracer t;
    CHECK_THROWS_AS(h.switch_to(), key_error);
    CHECK(t.actions() == std::vector<action>{sw(main_g, h), th(h, g), th(g, main_g)});
    CHECK_FALSE(ran);
    CHECK(g.dead());
    CHECK_FALSE(h.dead());  // suspended in its throw_to
  }
  SECTION("untraced, the same throw has the same outcome") {
    greenlet g([&ran] { ran = true; });
    CHECK_THROWS_AS(g.throw_to(key_error()), key_error);
    CHECK_FALSE(ran);
    CHECK_FALSE(g.started());
    CHECK(g.dead());
  }
}

// greenlet: test_tracing.py::TestGreenletTracing::test_b_exception_disables_tracing
TEST_CASE("an exception thrown by the trace function disables tracing and is raised in the target",
          "[trace][rule9]") {
  trace_off off;
  greenlet main_g = current();
  greenlet g([main_g]() mutable { main_g.switch_to(); });
  g.switch_to();
  std::vector<action> actions;
  {
    tracer t(true);
    CHECK_THROWS_AS(g.switch_to(), some_error);
    CHECK_FALSE(greenlets::gettrace());
    actions = t.actions();
  }
  CHECK(actions == std::vector<action>{sw(main_g, g)});
  // Raised inside g at its suspension point: g died of it and it reached main.
  CHECK(g.dead());
}

TEST_CASE("an exception from the trace function is raised where the target is suspended",
          "[trace][rule9]") {
  trace_off off;
  std::string g_saw;
  greenlet g([&g_saw] {
    try {
      current().parent().switch_to();
    } catch (const some_error& e) {
      g_saw = e.what();
      return 7;
    }
    return 0;
  });
  g.switch_to();
  {
    tracer t(true);
    CHECK(g.switch_to().get<int>() == 7);
    CHECK_FALSE(greenlets::gettrace());
    CHECK(t.actions().size() == 1);
  }
  CHECK(g_saw == "some_error");
}

TEST_CASE("an exception from the trace function kills a starting greenlet before run",
          "[trace][rule9]") {
  trace_off off;
  greenlet main_g = current();
  bool ran = false;
  greenlet g([&ran] { ran = true; });
  std::vector<action> actions;
  {
    tracer t(true);
    CHECK_THROWS_AS(g.switch_to(), some_error);
    CHECK_FALSE(greenlets::gettrace());
    actions = t.actions();
  }
  CHECK_FALSE(ran);
  CHECK(g.dead());
  // Tracing was off by the time the death went back to main.
  CHECK(actions == std::vector<action>{sw(main_g, g)});
}

TEST_CASE("an exception from the trace function in main arrives in main", "[trace][rule9]") {
  trace_off off;
  greenlet g([] {
    current().parent().switch_to(1);
    return 2;
  });
  {
    tracer quiet;  // let g start untroubled
    CHECK(g.switch_to().get<int>() == 1);
  }
  {
    tracer failing(true);
    // g resumes with a trace error raised in it: it dies of it and main gets it.
    CHECK_THROWS_AS(g.switch_to(), some_error);
    CHECK(g.dead());
    CHECK(failing.actions().size() == 1);
  }
  // Now fail on the switch back into main: the trace fires in main at the end of g.
  greenlet h([] { return 3; });
  int calls = 0;
  greenlets::settrace([&calls](trace_event, const greenlet&, const greenlet& target) {
    ++calls;
    if (target.is_main()) throw key_error();
  });
  CHECK_THROWS_AS(h.switch_to(), key_error);
  CHECK(calls == 2);
  CHECK(h.dead());
  CHECK_FALSE(greenlets::gettrace());
}

TEST_CASE("a pending throw survives a trace function that switches elsewhere",
          "[trace][rule9][rule5]") {
  trace_off off;
  std::vector<std::string> log;
  greenlet main_g = current();
  greenlet h([&log, main_g]() mutable {
    for (;;) {
      log.push_back("h runs");
      main_g.switch_to();  // we get here from the trace function running in g
    }
  });
  greenlet g([&log] {
    try {
      current().parent().switch_to();
    } catch (const key_error&) {
      log.push_back("g caught key_error");
      return 1;
    }
    return 0;
  });
  g.switch_to();
  h.set_parent(g);
  bool armed = true;
  greenlets::settrace([&](trace_event ev, const greenlet&, const greenlet& target) {
    if (armed && ev == trace_event::throw_to && target == g) {
      armed = false;
      log.push_back("trace in g switches to h");
      h.switch_to();  // h switches to main...
      log.push_back("trace back in g");
    }
  });
  // ...main is not waiting for h: main's pending switch is this throw_to, so h's
  // switch_to(main) lands here first.
  value first = g.throw_to(key_error());
  CHECK_FALSE(first.has_value());
  CHECK(log == std::vector<std::string>{"trace in g switches to h", "h runs"});
  // Resuming g's trace function: the key_error it was carrying must still reach g.
  int r = g.switch_to().get<int>();
  greenlets::settrace(nullptr);
  CHECK(r == 1);
  CHECK(log == std::vector<std::string>{"trace in g switches to h", "h runs", "trace back in g",
                                        "g caught key_error"});
  CHECK(g.dead());
}

// greenlet: test_greenlet.py::TestBrokenGreenlets::test_reentrant_switch_two_greenlets and
// test_reentrant_switch_three_greenlets2 (their scripts fail_switch_*.py): a trace
// function switches to g2 while main is being resumed by g1; the value g1 sent main
// must not be replaced by g2's. (greenlet 2.0.2 itself fails this with a SystemError.)
TEST_CASE("a trace function that switches greenlets keeps every switch's value", "[trace][rule9]") {
  trace_off off;
  std::vector<std::string> results;
  greenlet main_g = current();
  greenlet g1, g2;
  auto name = [&](const greenlet& x) -> std::string {
    if (x == main_g) return "main";
    if (x == g1) return "g1";
    if (x == g2) return "g2";
    return "?";
  };
  bool switch_to_g2 = false;
  greenlets::settrace([&](trace_event ev, const greenlet& origin, const greenlet& target) {
    results.push_back(std::string("trace ") +
                      (ev == trace_event::switch_to ? "switch " : "throw ") + name(origin) + "->" +
                      name(target) + (current() == target ? "" : " NOT IN TARGET"));
    if (switch_to_g2) {
      switch_to_g2 = false;
      value r = g2.switch_to(std::string("g2 from tracefunc"));
      results.push_back("trace back from g2 with " + r.get<std::string>());
    }
  });
  g1 = greenlet([&] {
    results.push_back("in g1");
    switch_to_g2 = true;
    std::string from_parent =
        current().parent().switch_to(std::string("from g1")).get<std::string>();
    results.push_back("g1 from parent: " + from_parent);
    return std::string("g1 done");
  });
  g2 = greenlet([&](std::string arg) {
    results.push_back("g2 arg: " + arg);
    value r = current().parent().switch_to(std::string("from g2"));
    results.push_back("g2 from parent: " + r.get<std::string>());
    return std::string("g2 done");
  });
  results.push_back("main got " + g1.switch_to().get<std::string>());
  results.push_back("main got " + g1.switch_to(std::string("g1 from main 2")).get<std::string>());
  results.push_back("main got " + g2.switch_to(std::string("g2 from main")).get<std::string>());
  greenlets::settrace(nullptr);
  CHECK(results == std::vector<std::string>{
                       "trace switch main->g1",
                       "in g1",
                       "trace switch g1->main",  // the trace function now switches to g2
                       "trace switch main->g2",
                       "g2 arg: g2 from tracefunc",
                       "trace switch g2->main",
                       "trace back from g2 with from g2",
                       "main got from g1",  // not "from g2"
                       "trace switch main->g1",
                       "g1 from parent: g1 from main 2",
                       "trace switch g1->main",
                       "main got g1 done",
                       "trace switch main->g2",
                       "g2 from parent: g2 from main",
                       "trace switch g2->main",
                       "main got g2 done",
                   });
  CHECK(g1.dead());
  CHECK(g2.dead());
}

namespace {

// Logs the address of every copy destroyed, so a callable can tell whether it
// itself was destroyed while it ran.
struct sentinel {
  std::vector<const void*>* gone;
  explicit sentinel(std::vector<const void*>* g) : gone(g) {}
  sentinel(const sentinel&) = default;
  sentinel& operator=(const sentinel&) = delete;
  ~sentinel() { gone->push_back(this); }
};

// True if `self` was destroyed since `gone` was cleared.
bool destroyed(const std::vector<const void*>& gone, const void* self) {
  return std::find(gone.begin(), gone.end(), self) != gone.end();
}

}  // namespace

TEST_CASE("a trace function may replace or remove itself while it runs", "[trace][rule9]") {
  // Python tracers do this all the time (GreenletTracer.__exit__ calls settrace); the
  // library must not destroy the callable it is still running. The callable reads
  // only locals once it has called settrace, so this test itself has no UB.
  trace_off off;
  std::vector<std::string> log;
  std::vector<const void*> gone;

  SECTION("settrace(nullptr) from inside, dropping the returned function") {
    greenlets::settrace([&log, s = sentinel(&gone)](trace_event, const greenlet&, const greenlet&) {
      std::vector<const void*>* g = s.gone;
      const void* self = &s;
      std::vector<std::string>* out = &log;
      g->clear();
      out->push_back("called");
      greenlets::settrace(nullptr);
      out->push_back(destroyed(*g, self) ? "destroyed while running" : "alive while running");
    });
    current().switch_to();
    current().switch_to();
    CHECK_FALSE(greenlets::gettrace());
    CHECK(log == std::vector<std::string>{"called", "alive while running"});
  }
  SECTION("settrace(other) from inside, dropping the returned function") {
    greenlets::settrace([&log, s = sentinel(&gone)](trace_event, const greenlet&, const greenlet&) {
      std::vector<const void*>* g = s.gone;
      const void* self = &s;
      std::vector<std::string>* out = &log;
      g->clear();
      out->push_back("first");
      greenlets::settrace(
          [out](trace_event, const greenlet&, const greenlet&) { out->push_back("second"); });
      out->push_back(destroyed(*g, self) ? "destroyed while running" : "alive while running");
    });
    current().switch_to();
    current().switch_to();
    current().switch_to();
    CHECK(greenlets::gettrace());
    CHECK(log == std::vector<std::string>{"first", "alive while running", "second", "second"});
  }
}

TEST_CASE("tracing is per thread", "[trace][rule9]") {
  trace_off off;
  int here = 0;
  greenlets::settrace([&here](trace_event, const greenlet&, const greenlet&) { ++here; });

  int there = 0;
  bool there_started_empty = false;
  bool there_sees_own = false;
  std::thread worker([&] {
    there_started_empty = !greenlets::gettrace();
    greenlets::settrace([&there](trace_event, const greenlet&, const greenlet&) { ++there; });
    there_sees_own = static_cast<bool>(greenlets::gettrace());
    greenlet g([] { current().parent().switch_to(); });
    g.switch_to();  // start, switch back
    g.switch_to();  // resume, die back to the thread's main
    greenlets::settrace(nullptr);
  });
  worker.join();
  CHECK(there_started_empty);
  CHECK(there_sees_own);
  CHECK(there == 4);
  CHECK(here == 0);

  // The worker's callback is not installed here: ours still is, and only ours runs.
  greenlet g([] {});
  g.switch_to();
  CHECK(here == 2);
  CHECK(there == 4);
  REQUIRE(greenlets::gettrace());
  greenlets::settrace(nullptr);
}
