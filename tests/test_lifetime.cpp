// Lifetime: what happens when the last handle of a greenlet goes (rule 6 and "Details
// users rely on" in docs/semantics.md). Ports of greenlet's own tests name them.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

#include "support/counting_stacks.hpp"
#include "support/options.hpp"
#include "support/tracking.hpp"

using greenlets::current;
using greenlets::greenlet;
using greenlets::greenlet_exit;

namespace {

using test_support::counting_stacks;
using test_support::live_counter;
using test_support::tracked;
using test_support::with_resource;

// Appends `name` to `log` when destroyed: a destructor on a greenlet's stack.
class recorder {
 public:
  recorder(std::vector<std::string>& log, std::string name) : log_(&log), name_(std::move(name)) {}
  recorder(const recorder&) = delete;
  recorder& operator=(const recorder&) = delete;
  ~recorder() { log_->push_back(name_); }

 private:
  std::vector<std::string>* log_;
  std::string name_;
};

// Installs an unraisable handler that records every report; restores the previous
// handler when it goes.
class unraisable_capture {
 public:
  struct report {
    greenlet where;
    std::string exception;  // empty when no exception came with the report
    std::string what;
  };

  unraisable_capture() {
    previous_ = greenlets::set_unraisable_handler(
        [this](const greenlet& where, std::exception_ptr e, std::string_view what) {
          std::lock_guard<std::mutex> lock(mutex_);
          reports_.push_back(report{where, test_support::describe(e, ""), std::string(what)});
        });
  }
  unraisable_capture(const unraisable_capture&) = delete;
  unraisable_capture& operator=(const unraisable_capture&) = delete;
  ~unraisable_capture() { greenlets::set_unraisable_handler(std::move(previous_)); }

  std::vector<report> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::exchange(reports_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<report> reports_;
  greenlets::unraisable_function previous_;
};

// Greenlets the library leaks on purpose keep a reference to themselves forever; ours
// stay reachable here so that leak checkers do not flag a deliberate leak.
std::vector<greenlet>& deliberately_leaked() {
  static auto* handles = new std::vector<greenlet>();
  return *handles;
}

// Runs `f` with file descriptor 2 redirected to a temporary file; returns what was written.
template <class F>
std::string capture_stderr(F&& f) {
  std::fflush(stderr);
  std::FILE* tmp = std::tmpfile();
  REQUIRE(tmp != nullptr);
  const int saved = ::dup(2);
  REQUIRE(saved >= 0);
  REQUIRE(::dup2(::fileno(tmp), 2) == 2);
  f();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::string text;
  std::rewind(tmp);
  char buf[512];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, tmp)) > 0) text.append(buf, n);
  std::fclose(tmp);
  return text;
}

}  // namespace

// greenlet: test_greenlet.py::TestGreenlet::test_dealloc
TEST_CASE("dropping the last handle of a suspended greenlet throws greenlet_exit into it",
          "[lifetime][rule6]") {
  std::vector<std::string> seen;
  auto body = [&seen] {
    try {
      current().parent().switch_to();
    } catch (const greenlet_exit&) {
      seen.push_back("greenlet_exit");
      throw;
    }
    seen.push_back("resumed normally");
  };
  greenlet g1(body);
  greenlet g2(body);
  g1.switch_to();
  g2.switch_to();
  CHECK(seen.empty());
  g1 = greenlet();
  CHECK(seen == std::vector<std::string>{"greenlet_exit"});
  g2 = greenlet();
  CHECK(seen == std::vector<std::string>{"greenlet_exit", "greenlet_exit"});
}

TEST_CASE("unwinding a dropped greenlet runs the destructors on its stack, innermost first",
          "[lifetime][rule6]") {
  std::vector<std::string> log;
  {
    greenlet g([&log] {
      recorder outer(log, "~outer");
      auto nested = [&log] {
        recorder inner(log, "~inner");
        current().parent().switch_to();
        log.push_back("resumed normally");
      };
      nested();
      log.push_back("after nested");
    });
    g.switch_to();
    CHECK(log.empty());
  }
  log.push_back("dropper goes on");
  CHECK(log == std::vector<std::string>{"~inner", "~outer", "dropper goes on"});
  CHECK(current().is_main());
}

TEST_CASE("while it unwinds, a dropped greenlet's parent is the dropper, which then goes on",
          "[lifetime][rule6]") {
  std::vector<std::string> log;
  greenlet main_greenlet = current();
  greenlet parent_during_kill;
  bool current_was_victim = false;
  greenlet victim;
  victim = greenlet([&] {
    recorder r(log, "~victim frame");
    try {
      main_greenlet.switch_to();  // suspended with main as parent
    } catch (const greenlet_exit&) {
      parent_during_kill = current().parent();
      current_was_victim = !current().is_main();
      log.push_back("victim unwinding");
      throw;
    }
  });
  victim.switch_to();
  CHECK(victim.parent() == main_greenlet);

  greenlet dropper([&] {
    victim = greenlet();  // the last handle: unwinds here, back to us
    log.push_back("dropper goes on");
    return 1;
  });
  // Had the victim's death gone to its original parent (main), this switch would
  // return the victim's greenlet_exit and the dropper would still be suspended.
  CHECK(dropper.switch_to().get<int>() == 1);
  CHECK(dropper.dead());
  CHECK(parent_during_kill == dropper);
  CHECK(current_was_victim);
  CHECK(log == std::vector<std::string>{"victim unwinding", "~victim frame", "dropper goes on"});
}

// greenlet: test_greenlet.py::TestGreenlet::test_parent_restored_on_kill
TEST_CASE("a greenlet resurrected while being killed gets its original parent back",
          "[lifetime][rule6]") {
  unraisable_capture capture;
  greenlet hub([] {});
  greenlet main_greenlet = current();
  std::vector<greenlet> result;
  greenlet g(
      [&] {
        try {
          main_greenlet.switch_to();  // wait to be killed
        } catch (const greenlet_exit&) {
          result.push_back(current().parent());
          result.push_back(current());  // resurrects it
          hub.switch_to();
        }
      },
      hub);
  g.switch_to();
  g = greenlet();  // the only handle: greenlet_exit goes in; hub runs, returns to main
  REQUIRE(result.size() == 2);
  CHECK(result[0] == main_greenlet);
  CHECK(result[1].parent() == hub);
  CHECK(result[1].active());
  CHECK(hub.dead());
  CHECK(capture.take().empty());  // a resurrection is legitimate, not a report
  // Dropping it again kills it for good: greenlet_exit escapes from hub.switch_to().
  result.clear();
  CHECK(capture.take().empty());
}

TEST_CASE("an unstarted greenlet dropped goes away: run never runs, its captures are destroyed",
          "[lifetime][rule6]") {
  unraisable_capture capture;
  live_counter captures;
  bool ran = false;
  {
    greenlet g([&ran, t = tracked(captures)] { ran = true; });
    CHECK(captures.live == 1);
    CHECK_FALSE(g.started());
  }
  CHECK(captures.live == 0);
  CHECK_FALSE(ran);
  CHECK(capture.take().empty());
}

TEST_CASE("a dead greenlet dropped goes away, and its captures go when run ends",
          "[lifetime][rule6]") {
  unraisable_capture capture;
  live_counter captures;
  int runs = 0;
  {
    greenlet g([&runs, t = tracked(captures)] { ++runs; });
    g.switch_to();
    CHECK(g.dead());
    CHECK(captures.live == 0);  // run is gone once it has finished, like Python's g.run
    greenlet other = g;
  }
  CHECK(runs == 1);
  CHECK(captures.live == 0);
  CHECK(capture.take().empty());
}

// greenlet: test_greenlet.py::TestGreenlet::test_dealloc_catches_GreenletExit_throws_other
TEST_CASE("a dropped greenlet that answers greenlet_exit with another exception is reported once",
          "[lifetime][rule6]") {
  unraisable_capture capture;
  std::size_t victim_id = 0;
  bool dropper_went_on = false;
  {
    greenlet g([&victim_id] {
      victim_id = std::hash<greenlet>()(current());
      try {
        current().parent().switch_to();
      } catch (const greenlet_exit&) {
        throw std::runtime_error("raised instead of dying quietly");
      }
    });
    g.switch_to();
  }
  dropper_went_on = true;
  CHECK(dropper_went_on);
  CHECK(current().is_main());
  auto reports = capture.take();
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].exception == "raised instead of dying quietly");
  CHECK(std::hash<greenlet>()(reports[0].where) == victim_id);
  CHECK(reports[0].where.dead());
  CHECK_THAT(reports[0].what, Catch::Contains("greenlet_exit"));
}

TEST_CASE("the default unraisable handler prints one line to stderr", "[lifetime][rule6]") {
  greenlets::unraisable_function previous = greenlets::set_unraisable_handler(nullptr);
  std::string text = capture_stderr([] {
    greenlet g([] {
      try {
        current().parent().switch_to();
      } catch (const greenlet_exit&) {
        throw std::runtime_error("boom from the unwinding greenlet");
      }
    });
    g.switch_to();
  });
  greenlets::set_unraisable_handler(std::move(previous));
  CHECK_THAT(text, Catch::Contains("boom from the unwinding greenlet"));
  CHECK_THAT(text, Catch::StartsWith("greenlets:"));
  REQUIRE_FALSE(text.empty());
  CHECK(text.back() == '\n');
  CHECK(text.find('\n') == text.size() - 1);  // exactly one line
}

TEST_CASE("a greenlet that swallows its kill and switches back is reported and leaked, no crash",
          "[lifetime][rule6]") {
  unraisable_capture capture;
  auto stacks = std::make_shared<counting_stacks>();
  std::vector<std::string> log;
  {
    greenlet g(
        [&log] {
          try {
            current().parent().switch_to();
          } catch (const greenlet_exit&) {
            log.push_back("swallowed");
          }
          current().parent().switch_to();  // to the dropper: the kill did not kill
          log.push_back("resumed");
          return 7;
        },
        with_resource(stacks));
    g.switch_to();
  }
  CHECK(log == std::vector<std::string>{"swallowed"});
  auto reports = capture.take();
  REQUIRE(reports.size() == 1);
  CHECK_THAT(reports[0].what, Catch::Contains("greenlet_exit did not kill"));
  CHECK(reports[0].exception.empty());
  greenlet leaked = reports[0].where;
  reports.clear();
  CHECK(leaked.active());
  CHECK(leaked.parent() == current());  // the original parent is back
  CHECK(stacks->allocated == 1);
  CHECK(stacks->deallocated == 0);
  // The leaked greenlet is still a working greenlet: it can finish.
  CHECK(leaked.switch_to().get<int>() == 7);
  CHECK(leaked.dead());
  CHECK(log == std::vector<std::string>{"swallowed", "resumed"});
  CHECK(stacks->deallocated == 1);
  CHECK(capture.take().empty());
  deliberately_leaked().push_back(std::move(leaked));
}

TEST_CASE("storing a new handle during the kill resurrects the greenlet without a report",
          "[lifetime][rule6]") {
  unraisable_capture capture;
  std::vector<std::string> log;
  greenlet keep;
  {
    greenlet g([&] {
      recorder r(log, "~frame");
      try {
        current().parent().switch_to();
      } catch (const greenlet_exit&) {
        log.push_back("first kill");
        keep = current();
        current().parent().switch_to();
      }
      current().parent().switch_to();
      log.push_back("resumed normally");
    });
    g.switch_to();
  }
  CHECK(log == std::vector<std::string>{"first kill"});
  CHECK(capture.take().empty());
  CHECK(keep.active());
  CHECK(keep.parent() == current());
  // Its last handle goes again: this time greenlet_exit kills it.
  keep = greenlet();
  CHECK(log == std::vector<std::string>{"first kill", "~frame"});
  CHECK(capture.take().empty());
}

TEST_CASE("a greenlet whose last handle goes while it runs keeps running", "[lifetime][rule6]") {
  unraisable_capture capture;
  std::vector<std::string> log;
  live_counter captures;
  greenlet g;

  SECTION("and is unwound once it switches away") {
    g = greenlet([&, t = tracked(captures)] {
      recorder r(log, "~frame");
      g = greenlet();  // the last handle, dropped from inside
      log.push_back(current().active() ? "still running" : "not active?");
      try {
        current().parent().switch_to(42);
      } catch (const greenlet_exit&) {
        log.push_back("unwound");
        throw;
      }
      log.push_back("resumed normally");
    });
    // The value sent while switching away is not lost.
    CHECK(g.switch_to().get<int>() == 42);
    CHECK(log == std::vector<std::string>{"still running", "unwound", "~frame"});
  }
  SECTION("and is simply freed if it finishes") {
    g = greenlet([&, t = tracked(captures)] {
      recorder r(log, "~frame");
      g = greenlet();
      log.push_back("still running");
      return 5;
    });
    CHECK(g.switch_to().get<int>() == 5);
    CHECK(log == std::vector<std::string>{"still running", "~frame"});
  }
  CHECK(g.empty());
  CHECK(captures.live == 0);
  CHECK(capture.take().empty());
}

// greenlet: test_greenlet.py::TestGreenlet::test_dealloc_switch_args_not_lost
TEST_CASE("values in flight are not lost when the sender's last handle goes mid-switch",
          "[lifetime][rule6]") {
  std::vector<std::string> seen;
  greenlet worker;
  greenlet initiator;
  worker = greenlet([&] {
    greenlets::value v = current().parent().switch_to();  // wait for the value
    worker = greenlet();                                  // no handle left to ourselves
    initiator.set_parent(current().parent());
    try {
      current().parent().switch_to(std::move(v));
    } catch (const greenlet_exit&) {
      seen.push_back(current().is_main() ? "in main?" : "unwound in worker");
      throw;
    }
  });
  worker.switch_to();  // prime it
  initiator = greenlet([] { return 42; }, worker);
  greenlets::value v = initiator.switch_to();
  CHECK(seen == std::vector<std::string>{"unwound in worker"});
  CHECK(v.get<int>() == 42);
}

TEST_CASE("dropping a child unwinds the parent it alone kept alive", "[lifetime][rule6]") {
  unraisable_capture capture;
  std::vector<std::string> log;
  greenlet main_greenlet = current();

  SECTION("both suspended") {
    greenlet child;
    {
      greenlet parent([&] {
        recorder r(log, "~parent");
        current().parent().switch_to();
      });
      parent.switch_to();
      child = greenlet(
          [&] {
            recorder r(log, "~child");
            main_greenlet.switch_to();
          },
          parent);
      child.switch_to();
    }
    CHECK(log.empty());  // the child still holds the parent
    child = greenlet();
    CHECK(log == std::vector<std::string>{"~child", "~parent"});
  }
  SECTION("both unstarted") {
    live_counter captures;
    bool ran = false;
    {
      greenlet child;
      {
        greenlet parent([&ran, t = tracked(captures)] { ran = true; });
        child = greenlet([&ran, t = tracked(captures)] { ran = true; }, parent);
      }
      CHECK(captures.live == 2);
    }
    CHECK(captures.live == 0);
    CHECK_FALSE(ran);
  }
  CHECK(capture.take().empty());
}

TEST_CASE(
    "a greenlet suspended with current().parent().switch_to() is unwound when its creator "
    "drops it",
    "[lifetime][rule6]") {
  std::vector<std::string> log;
  greenlet creator([&log] {
    {
      greenlet child([&log] {
        recorder r(log, "~child");
        for (int i = 0;; ++i) current().parent().switch_to(i);
      });
      CHECK(child.switch_to().get<int>() == 0);
      CHECK(child.switch_to().get<int>() == 1);
    }
    log.push_back("creator goes on");
    current().parent().switch_to();
    log.push_back("creator resumed?");
  });
  creator.switch_to();
  CHECK(log == std::vector<std::string>{"~child", "creator goes on"});
  creator = greenlet();
  CHECK(log == std::vector<std::string>{"~child", "creator goes on"});
}

TEST_CASE("every stack comes back and run's captures are destroyed, however a greenlet ends",
          "[lifetime][rule6][stack]") {
  auto stacks = std::make_shared<counting_stacks>();
  live_counter captures;
  unraisable_capture capture;

  SECTION("run returns") {
    greenlet g([t = tracked(captures)] { return 1; }, with_resource(stacks));
    CHECK(g.switch_to().get<int>() == 1);
  }
  SECTION("run throws") {
    greenlet g([t = tracked(captures)] { throw std::runtime_error("escapes run"); },
               with_resource(stacks));
    CHECK_THROWS_WITH(g.switch_to(), "escapes run");
  }
  SECTION("killed by throw_to") {
    greenlet g([t = tracked(captures)] { current().parent().switch_to(); }, with_resource(stacks));
    g.switch_to();
    CHECK(g.throw_to().holds<greenlet_exit>());
  }
  SECTION("unwound by dropping its last handle") {
    greenlet g([t = tracked(captures)] { current().parent().switch_to(); }, with_resource(stacks));
    g.switch_to();
    CHECK(stacks->allocated == 1);
    CHECK(stacks->deallocated == 0);
    CHECK(captures.live == 1);
  }
  SECTION("unwound when a greenlet holding another on its stack is dropped") {
    greenlet main_greenlet = current();
    greenlet outer(
        [&] {
          // Parent main: a child of `outer` would hold `outer` alive from its own stack.
          greenlets::options opts = with_resource(stacks);
          opts.parent = main_greenlet;
          greenlet inner([t = tracked(captures)] { current().parent().switch_to(); }, opts);
          inner.switch_to();
          current().parent().switch_to();
        },
        with_resource(stacks));
    outer.switch_to();
    CHECK(stacks->allocated == 2);
    CHECK(captures.live == 1);
  }
  SECTION("unwound at the exit of its thread") {
    greenlet held;  // keeps it suspended until its thread ends
    std::thread th([&] {
      greenlet g([t = tracked(captures)] { current().parent().switch_to(); },
                 with_resource(stacks));
      g.switch_to();
      held = g;
    });
    th.join();
    CHECK(held.dead());
    CHECK(stacks->allocated == 1);
    CHECK(stacks->deallocated == 1);
    CHECK(captures.live == 0);
  }
  SECTION("never started") {
    greenlet g([t = tracked(captures)] {}, with_resource(stacks));
  }
  CHECK(stacks->allocated == stacks->deallocated);
  CHECK(captures.live == 0);
  CHECK(capture.take().empty());
}

// greenlet: test_gc.py::TestGC::test_cycle_in_suspended_frame (a cycle through a
// suspended stack is not collectable; here, the thread's exit breaks it)
TEST_CASE("a cycle through a suspended stack lives until its thread ends, which unwinds it",
          "[lifetime][rule6]") {
  auto stacks = std::make_shared<counting_stacks>();
  std::vector<std::string> log;  // written by the thread, read after join
  bool unwound_before_thread_returned = true;
  std::thread th([&] {
    {
      greenlet outer(
          [&] {
            recorder r(log, "~outer");
            // The child's parent is `outer`, and `outer`'s stack holds the child.
            greenlet inner(
                [&] {
                  recorder r2(log, "~inner");
                  current().parent().switch_to();
                },
                with_resource(stacks));
            inner.switch_to();
            current().parent().switch_to();
          },
          with_resource(stacks));
      outer.switch_to();
    }
    unwound_before_thread_returned = !log.empty();
  });
  th.join();
  CHECK_FALSE(unwound_before_thread_returned);
  CHECK(log == std::vector<std::string>{"~inner", "~outer"});
  CHECK(stacks->allocated == 2);
  CHECK(stacks->deallocated == 2);
}
