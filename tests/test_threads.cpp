// Threads: greenlets belong to the thread that created them (rules 6 and 7 and "Details
// users rely on" in docs/semantics.md). Catch2 assertions are not
// thread-safe, so other threads only record what they see; the main thread checks.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

#include "support/tracking.hpp"

using greenlets::current;
using greenlets::greenlet;
using greenlets::greenlet_exit;

namespace {

// A one-shot signal between threads.
class gate {
 public:
  void open() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Things seen in several threads, in order.
class journal {
 public:
  void add(std::string entry) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.push_back(std::move(entry));
  }
  std::vector<std::string> entries() {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> entries_;
};

std::string id_string(std::thread::id id) {
  std::ostringstream os;
  os << id;
  return os.str();
}

std::string this_thread_id() { return id_string(std::this_thread::get_id()); }

// Adds "<name> in <thread id>" to a journal when destroyed.
class recorder {
 public:
  recorder(journal& j, std::string name) : journal_(&j), name_(std::move(name)) {}
  recorder(const recorder&) = delete;
  recorder& operator=(const recorder&) = delete;
  ~recorder() { journal_->add(name_ + " in " + this_thread_id()); }

 private:
  journal* journal_;
  std::string name_;
};

using test_support::live_counter;
using test_support::tracked;

// The message of the greenlets::error that `f` throws, or a description of what happened.
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const greenlets::error& e) {
    return e.what();
  } catch (...) {
    return "<not a greenlets::error>";
  }
  return "<no exception>";
}

// The N of the first "thread #N" in `message`, or 0.
unsigned long thread_number(const std::string& message) {
  const std::size_t at = message.find("thread #");
  if (at == std::string::npos) return 0;
  return std::stoul(message.substr(at + 8));
}

// A greenlet that suspends itself at once, with a recorder on its stack.
greenlet suspended_greenlet(journal& j, std::string name) {
  greenlet g([&j, name] {
    recorder r(j, name);
    current().parent().switch_to();
  });
  g.switch_to();
  return g;
}

}  // namespace

// greenlet: test_greenlet.py::TestMainGreenlet (one main greenlet per thread)
TEST_CASE("each thread has its own main greenlet", "[threads][rule7]") {
  greenlet main_here = current();
  greenlet main_there;
  greenlet current_there_again;
  bool there_is_main = false;
  bool there_parent_empty = false;
  bool there_active = false;
  std::thread th([&] {
    main_there = current();
    current_there_again = current();
    there_is_main = main_there.is_main();
    there_parent_empty = main_there.parent().empty();
    there_active = main_there.active() && !main_there.dead();
  });
  th.join();
  CHECK(main_here.is_main());
  CHECK(main_there.is_main());
  CHECK(main_there != main_here);
  CHECK(main_there == current_there_again);
  CHECK(there_is_main);
  CHECK(there_parent_empty);
  CHECK(there_active);
  CHECK(main_there.dead());  // its thread has exited
}

TEST_CASE("a thread's greenlet state is created lazily, on first use", "[threads][rule7]") {
  // Threads that use greenlets get consecutive numbers; one that never does gets none.
  (void)current();  // this thread's own state exists before we count
  auto number_of_new_thread = [](bool use_greenlets_first) {
    greenlet main_there;
    gate published;
    gate done;
    std::thread th([&] {
      if (use_greenlets_first) main_there = current();
      published.open();
      done.wait();
    });
    published.wait();
    std::string message;
    if (!main_there.empty()) message = error_message([&] { main_there.switch_to(); });
    done.open();
    th.join();
    return message;
  };
  const std::string first = number_of_new_thread(true);
  CHECK(number_of_new_thread(false).empty());
  const std::string third = number_of_new_thread(true);
  INFO(first);
  INFO(third);
  REQUIRE(thread_number(first) != 0);
  CHECK(thread_number(third) == thread_number(first) + 1);
}

// greenlet: test_greenlet.py::TestGreenlet::test_switch_to_another_thread
// greenlet: test_greenlet.py::TestGreenlet::test_threaded_reparent
TEST_CASE("switching, throwing or re-parenting across threads is an error that corrupts nothing",
          "[threads][rule7]") {
  greenlet theirs;
  greenlet their_main;
  std::string their_id;
  gate created;
  gate attempts_done;
  std::vector<int> their_results;
  bool their_main_ok = false;
  std::thread th([&] {
    their_id = this_thread_id();
    their_main = current();
    theirs = greenlet([](int x) {
      int y = current().parent().switch_to(x + 1).get<int>();
      return y * 10;
    });
    their_results.push_back(theirs.switch_to(1).get<int>());
    created.open();
    attempts_done.wait();
    // Nothing the other thread tried reached this greenlet.
    their_results.push_back(theirs.switch_to(3).get<int>());
    their_main_ok = current() == their_main && current().is_main();
  });
  created.wait();

  const std::string my_id = this_thread_id();
  auto names_both_threads = [&](const std::string& message) {
    INFO(message);
    CHECK_THAT(message, Catch::Contains("another thread"));
    CHECK_THAT(message, Catch::Contains("thread #"));
    CHECK_THAT(message, Catch::Contains(their_id));
    CHECK_THAT(message, Catch::Contains(my_id));
    CHECK_THAT(message, !Catch::Contains("exited"));
  };
  names_both_threads(error_message([&] { theirs.switch_to(5); }));
  names_both_threads(error_message([&] { their_main.switch_to(); }));
  names_both_threads(error_message([&] { theirs.throw_to(); }));
  names_both_threads(error_message([&] { theirs.throw_to(std::runtime_error("x")); }));
  names_both_threads(error_message([&] { theirs.set_parent(current()); }));
  names_both_threads(error_message([&] { (void)theirs.parent(); }));

  greenlet mine([] { current().parent().switch_to(); });
  mine.switch_to();
  names_both_threads(error_message([&] { mine.set_parent(theirs); }));
  CHECK(mine.parent() == current());
  names_both_threads(error_message([&] { greenlet child([] {}, theirs); }));
  names_both_threads(error_message([&] {
    greenlets::options opts;
    opts.parent = their_main;
    greenlet child([] {}, opts);
  }));

  // This thread goes on working: the failed attempts left nothing pending here.
  greenlet echo([](int x) { return x * 2; });
  CHECK(echo.switch_to(21).get<int>() == 42);
  CHECK(mine.switch_to().has_value() == false);
  CHECK(mine.dead());
  CHECK(theirs.active());  // it was not touched

  attempts_done.open();
  th.join();
  CHECK(their_results == std::vector<int>{2, 30});
  CHECK(their_main_ok);
  CHECK(theirs.dead());
}

// greenlet: test_greenlet.py::TestGreenlet::test_throw_to_dead_thread_doesnt_crash
// greenlet: test_greenlet.py::TestGreenlet::test_throw_to_dead_thread_doesnt_crash_wait
// greenlet: test_greenlet.py::TestGreenlet::test_unexpected_reparenting
TEST_CASE("once a thread has exited, its greenlets are dead or unusable, and say so",
          "[threads][rule7]") {
  journal log;
  live_counter captures;
  greenlet their_main;
  greenlet suspended_at_exit;
  greenlet never_started;
  greenlet finished;
  std::string their_id;
  std::thread th([&] {
    their_id = this_thread_id();
    their_main = current();
    suspended_at_exit = suspended_greenlet(log, "~suspended");
    never_started = greenlet([t = tracked(captures)] {});
    finished = greenlet([] { return 1; });
    finished.switch_to();
  });
  th.join();

  CHECK(their_main.dead());
  CHECK(their_main.is_main());
  CHECK(suspended_at_exit.dead());  // unwound when its thread ended
  CHECK(log.entries() == std::vector<std::string>{"~suspended in " + their_id});
  CHECK_FALSE(never_started.started());
  CHECK(captures.live == 1);

  auto says_exited = [&](const std::string& message) {
    INFO(message);
    CHECK_THAT(message, Catch::Contains("exited"));
    CHECK_THAT(message, Catch::Contains("another thread"));
    CHECK_THAT(message, Catch::Contains(their_id));
  };
  for (greenlet* g : {&their_main, &suspended_at_exit, &never_started, &finished}) {
    says_exited(error_message([&] { g->switch_to(); }));
    says_exited(error_message([&] { g->throw_to(); }));
    says_exited(error_message([&] { g->throw_to(std::runtime_error("x")); }));
  }
  greenlet mine([] { current().parent().switch_to(); });
  mine.switch_to();
  says_exited(error_message([&] { mine.set_parent(their_main); }));
  says_exited(error_message([&] { greenlet child([] {}, never_started); }));
  CHECK(never_started.dead() == false);
  CHECK(captures.live == 1);

  // Handles to an exited thread's greenlets are safe to destroy here; the captures go.
  their_main = greenlet();
  suspended_at_exit = greenlet();
  never_started = greenlet();
  finished = greenlet();
  CHECK(captures.live == 0);
  CHECK(log.entries().size() == 1);  // nothing ran again
  CHECK(mine.switch_to().has_value() == false);
  CHECK(mine.dead());
}

TEST_CASE("a thread that ends unwinds every suspended greenlet it still owns, in that thread",
          "[threads][rule6]") {
  journal log;
  std::vector<greenlet> held;  // keep them suspended until the thread ends
  std::string their_id;
  std::thread th([&] {
    their_id = this_thread_id();
    held.push_back(suspended_greenlet(log, "~a"));
    held.push_back(suspended_greenlet(log, "~b"));
    // A greenlet suspended inside another: its only handle is on the outer one's stack.
    held.push_back(greenlet([&log] {
      recorder r(log, "~outer");
      greenlets::options opts;
      opts.parent = current().parent();  // not us: a child would hold us alive
      greenlet inner(
          [&log] {
            recorder r2(log, "~inner");
            current().parent().switch_to();
          },
          opts);
      inner.switch_to();
      current().parent().switch_to();
    }));
    held.back().switch_to();
    // A greenlet that catches greenlet_exit, does more work, and dies.
    held.push_back(greenlet([&log] {
      try {
        current().parent().switch_to();
      } catch (const greenlet_exit&) {
        greenlet helper([] { return 3; });
        log.add("caught, helper gave " + std::to_string(helper.switch_to().get<int>()));
        throw;
      }
    }));
    held.back().switch_to();
    log.add("thread function returns");
  });
  th.join();
  auto entries = log.entries();
  REQUIRE_FALSE(entries.empty());
  CHECK(entries.front() == "thread function returns");
  CHECK(entries.size() == 6);
  for (const char* expected :
       {"~a in ", "~b in ", "~outer in ", "~inner in ", "caught, helper gave 3"}) {
    std::string want = expected;
    if (want.back() == ' ') want += their_id;
    CHECK(std::count(entries.begin(), entries.end(), want) == 1);
  }
  for (const greenlet& g : held) CHECK(g.dead());
}

// greenlet: test_greenlet.py::TestGreenlet::test_dealloc_other_thread
TEST_CASE(
    "a suspended greenlet dropped in another thread is unwound in its own thread at its "
    "next switch",
    "[threads][rule6]") {
  journal log;
  greenlet handoff;
  gate handed_over;
  gate dropped;
  std::string their_id;
  std::size_t seen_before_switch = 99;
  std::size_t seen_after_switch = 99;
  bool parent_during_kill_was_their_main = false;
  std::thread th([&] {
    their_id = this_thread_id();
    greenlet their_main = current();
    {
      greenlet g([&] {
        recorder r(log, "~victim");
        try {
          current().parent().switch_to();
        } catch (const greenlet_exit&) {
          parent_during_kill_was_their_main = current().parent() == their_main;
          throw;
        }
      });
      g.switch_to();
      handoff = std::move(g);  // no handle left in this thread
    }
    handed_over.open();
    dropped.wait();
    seen_before_switch = log.entries().size();
    greenlet other([] { return 1; });
    other.switch_to();
    seen_after_switch = log.entries().size();
  });
  handed_over.wait();
  handoff = greenlet();  // queued for its thread, which is waiting on the gate
  CHECK(log.entries().empty());
  dropped.open();
  th.join();
  CHECK(seen_before_switch == 0);
  CHECK(seen_after_switch == 1);
  CHECK(log.entries() == std::vector<std::string>{"~victim in " + their_id});
  CHECK(parent_during_kill_was_their_main);
}

TEST_CASE("an unstarted greenlet dropped in another thread is freed without running",
          "[threads][rule6]") {
  live_counter captures;
  bool ran = false;
  greenlet handoff;
  gate handed_over;
  gate dropped;
  int live_after_switch = -1;
  std::thread th([&] {
    handoff = greenlet([&ran, t = tracked(captures)] { ran = true; });
    handed_over.open();
    dropped.wait();
    greenlet([] {}).switch_to();
    live_after_switch = captures.live;
  });
  handed_over.wait();
  handoff = greenlet();
  dropped.open();
  th.join();
  CHECK(live_after_switch == 0);
  CHECK(captures.live == 0);
  CHECK_FALSE(ran);
}

namespace {

// A user's thread_local that holds greenlet handles; constructed before the library's
// own thread state, so destroyed after it.
struct late_holder {
  std::vector<greenlet> handles;
  std::vector<bool>* dead_at_destruction = nullptr;
  ~late_holder() {
    if (dead_at_destruction != nullptr) {
      for (const greenlet& g : handles) dead_at_destruction->push_back(g.dead());
    }
  }
};

}  // namespace

TEST_CASE("handles in a thread_local destroyed after the library's thread state are safe",
          "[threads][rule6]") {
  journal log;
  live_counter captures;
  std::vector<bool> dead_at_destruction;
  std::string their_id;
  std::thread th([&] {
    thread_local late_holder holder;  // first: before any use of greenlets here
    holder.dead_at_destruction = &dead_at_destruction;
    their_id = this_thread_id();
    holder.handles.push_back(current());
    holder.handles.push_back(suspended_greenlet(log, "~suspended"));
    holder.handles.push_back(greenlet([t = tracked(captures)] {}));
    greenlet finished([t = tracked(captures)] { return 1; });
    finished.switch_to();
    holder.handles.push_back(finished);
  });
  th.join();
  // main, suspended (unwound at exit), unstarted, finished
  CHECK(dead_at_destruction == std::vector<bool>{true, true, false, true});
  CHECK(log.entries() == std::vector<std::string>{"~suspended in " + their_id});
  CHECK(captures.live == 0);
}

// greenlet: test_greenlet.py::TestGreenlet::test_threads
// greenlet: test_greenlet.py::TestGreenlet::test_switching_many_threads
// greenlet: test_greenlet.py::TestGreenlet::test_implicit_parent_with_threads
namespace {

// An independent greenlet tree: main -> a -> b, ping-pong between a and b, an
// exception from b to a, and an unwound greenlet. Returns "" on success.
std::string run_tree(int rounds) {
  greenlet main_greenlet = current();
  if (!main_greenlet.is_main()) return "current() is not main at the start";
  long sum = 0;
  std::string problem;
  greenlet a([&] {
    greenlet self = current();
    greenlet b([&](int first) {
      int x = first;
      for (;;) {
        if (current().parent() != self) problem = "b's parent is not a";
        if (x < 0) throw std::runtime_error("b ends");
        x = self.switch_to(x + 1).get<int>();
      }
    });
    if (b.parent() != self) problem = "implicit parent is not the creating greenlet";
    int v = 0;
    for (int i = 0; i < rounds; ++i) {
      v = b.switch_to(v).get<int>();
      sum += v;
    }
    try {
      b.switch_to(-1);
      problem = "no exception from b";
    } catch (const std::runtime_error& e) {
      if (std::string(e.what()) != "b ends") problem = "wrong exception";
    }
    greenlet victim([] { current().parent().switch_to(); });
    victim.switch_to();
    return v;
  });
  const int last = a.switch_to().get<int>();
  if (!problem.empty()) return problem;
  if (last != rounds) return "last value " + std::to_string(last);
  if (sum != static_cast<long>(rounds) * (rounds + 1) / 2) return "sum " + std::to_string(sum);
  if (!a.dead()) return "a is not dead";
  if (current() != main_greenlet) return "current() is not main at the end";
  return "";
}

void run_trees_in_threads(int threads, int rounds) {
  std::vector<std::string> results(static_cast<std::size_t>(threads), "not run");
  std::vector<std::thread> pool;
  gate start;
  for (std::size_t i = 0; i < results.size(); ++i) {
    pool.emplace_back([&, i] {
      start.wait();
      try {
        results[i] = run_tree(rounds);
      } catch (const std::exception& e) {
        results[i] = std::string("exception: ") + e.what();
      }
    });
  }
  start.open();
  // This thread's own tree runs while the others do.
  std::string mine = run_tree(rounds);
  for (std::thread& t : pool) t.join();
  CHECK(mine.empty());
  for (const std::string& r : results) CHECK(r.empty());
}

}  // namespace

TEST_CASE("many threads run independent greenlet trees at the same time", "[threads][rule7]") {
  run_trees_in_threads(8, 2000);
}

TEST_CASE("many threads run independent greenlet trees at the same time, at length",
          "[threads][rule7][.stress]") {
  run_trees_in_threads(32, 200000);
}

// greenlet: test_greenlet.py::TestGreenlet::test_thread_bug
// greenlet: test_greenlet.py::TestGreenlet::test_threaded_updatecurrent
TEST_CASE("a thread blocked inside a greenlet does not change another thread's current()",
          "[threads][rule7]") {
  gate inside;
  gate release;
  bool their_current_was_g = false;
  bool their_current_back_to_main = false;
  greenlet their_g;
  std::thread th([&] {
    greenlet g([&] {
      their_current_was_g = !current().is_main();
      inside.open();
      release.wait();  // blocks this thread inside g
      return 7;
    });
    their_g = g;
    their_current_back_to_main = g.switch_to().get<int>() == 7 && current().is_main();
  });
  inside.wait();
  CHECK(current().is_main());
  CHECK(their_g.active());
  greenlet mine([] { return current().is_main(); });
  CHECK(mine.switch_to().get<bool>() == false);
  CHECK(current().is_main());
  release.open();
  th.join();
  CHECK(their_current_was_g);
  CHECK(their_current_back_to_main);
}
