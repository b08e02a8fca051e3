// A randomised model test: thousands of random operations on greenlets, across a few
// threads, checked step by step against a small reference model of the rules in
// docs/semantics.md.
//
// Every greenlet (and each thread's main greenlet) runs the same little interpreter: it
// reports what it received (a value, nothing, an exception, greenlet_exit), then asks
// the test for its next operation and performs it: create a greenlet, switch to one
// with a value, throw to one, set a parent, drop a handle, return, raise, or try an
// operation on another thread's greenlet. The model predicts, for every operation, who
// receives what and in which order (rules 1-6), and the states of every greenlet (rule
// 11); it also counts the live `run` functions and the stacks out, which the test
// compares with counters in the greenlets' captures and a counting stack allocator.
//
// CI runs fixed seeds. For longer runs: GREENLETS_MODEL_SEED=<n> GREENLETS_MODEL_OPS=<n>.
// A failure names the seed, the thread and the operation index.
//
// Not modelled: dropping the last reference to the running greenlet itself (an orphan,
// unwound after it switches away); the model never chooses operations that would.
#include <atomic>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "greenlets/greenlets.hpp"

#include "support/counting_stacks.hpp"
#include "support/options.hpp"

using greenlets::greenlet;

namespace {

struct msg {
  int v;
};
struct model_error {  // not derived from std::exception, like a user's own type
  int id;
};

enum class rk { none, value, empty, exit_value, exception, exit_exception };

const char* name(rk k) {
  switch (k) {
    case rk::none:
      return "continues";
    case rk::value:
      return "value";
    case rk::empty:
      return "empty value";
    case rk::exit_value:
      return "greenlet_exit as a value";
    case rk::exception:
      return "exception";
    case rk::exit_exception:
      return "greenlet_exit thrown";
  }
  return "?";
}

// Something arriving in a greenlet.
struct receipt {
  int who = 0;
  rk kind = rk::none;
  int v = 0;
  bool operator==(const receipt& o) const { return who == o.who && kind == o.kind && v == o.v; }
};

std::string describe(const receipt& r) {
  std::ostringstream os;
  os << "greenlet " << r.who << " receives " << name(r.kind);
  if (r.kind == rk::value || r.kind == rk::exception) os << " " << r.v;
  return os.str();
}

receipt to_receipt(greenlets::value v) {
  if (!v.has_value()) return {0, rk::empty, 0};
  if (v.holds<msg>()) return {0, rk::value, v.get<msg>().v};
  if (v.holds<greenlets::greenlet_exit>()) return {0, rk::exit_value, 0};
  return {0, rk::value, -999999};  // never expected
}

// Handles other threads may try (and must fail) to use; only the owner adds and removes.
struct exchange {
  std::mutex mutex;
  struct item {
    int thread;
    int id;
    greenlet handle;
  };
  std::vector<item> items;
};

// The model of one greenlet.
struct mg {
  bool exists = true, handle = true, started = false, dead = false, is_main = false;
  bool has_fn = true;
  int parent = -1;
  int refs = 1;  // the test's handle, plus one per existing child
};

enum class op { create, switch_to, throw_to, throw_exit, ret, raise, set_parent, drop, cross, end };

struct world;

// Counts the live copies of a greenlet's run function.
struct capture {
  world* w;
  explicit capture(world* x);
  capture(const capture&) = delete;
  capture(capture&& o) noexcept;
  capture& operator=(const capture&) = delete;
  ~capture();
};

// A greenlet's run: the interpreter, with a counted capture.
struct runner {
  world* w;
  int id;
  capture c;
  msg operator()(greenlets::value first);
};

struct world {
  unsigned long seed;
  int thread;
  long limit;
  long ops = 0;
  std::mt19937_64 rng;
  std::vector<mg> m;
  std::deque<greenlet> h;  // by id; a deque, so pending switches keep their `this`
  int cur = 0;
  std::deque<receipt> expected;
  // Counts the stacks out, on top of the default pool.
  std::shared_ptr<test_support::counting_stacks> stacks =
      std::make_shared<test_support::counting_stacks>(greenlets::pooled_stacks());
  long captures = 0;
  exchange& ex;
  std::string failure;
  runner run_function(int id) { return runner{this, id, capture(this)}; }
  long cross_errors = 0;
  long max_live = 0;

  world(unsigned long s, int t, long n, exchange& e)
      : seed(s), thread(t), limit(n), rng(s * 1000003UL + static_cast<unsigned long>(t)), ex(e) {}

  bool failed() const { return !failure.empty(); }

  void fail(const std::string& what) {
    if (failed()) return;
    std::ostringstream os;
    os << "seed " << seed << ", thread " << thread << ", operation " << ops << ": " << what;
    failure = os.str();
  }

  int pick(int n) { return static_cast<int>(rng() % static_cast<unsigned long>(n)); }

  // --- the model -----------------------------------------------------------

  static mg& at(std::vector<mg>& s, int i) { return s[static_cast<std::size_t>(i)]; }

  void expect(int who, rk kind, int v = 0) { expected.push_back({who, kind, v}); }

  // Drops one reference; `dry` only reports whether the running greenlet would lose its last.
  bool release(std::vector<mg>& s, int x, bool record) {
    if (at(s, x).is_main) return true;
    if (--at(s, x).refs != 0) return true;
    if (x == cur) return false;  // an orphan: not modelled
    if (at(s, x).started && !at(s, x).dead) {
      if (record) expect(x, rk::exit_exception);  // unwound by the dropper
      at(s, x).dead = true;
    }
    at(s, x).exists = false;
    at(s, x).has_fn = false;
    return at(s, x).parent < 0 || release(s, at(s, x).parent, record);
  }

  // Where a delivery to `t` lands (rules 4 and 5); starts an unstarted receiver.
  int resolve(std::vector<mg>& s, int t, receipt& d) {
    for (;;) {
      const bool exc = d.kind == rk::exception || d.kind == rk::exit_exception;
      if (at(s, t).dead || (!at(s, t).started && exc)) {
        if (!at(s, t).started) {  // killed before it started: never runs
          at(s, t).dead = true;
          at(s, t).has_fn = false;
        }
        if (d.kind == rk::exit_exception) d = {0, rk::exit_value, 0};
        t = at(s, t).parent;
        continue;
      }
      at(s, t).started = true;
      return t;
    }
  }

  // Delivers `d` to `t` from the running greenlet; the receiver becomes current. A
  // greenlet_exit thrown into a live greenlet kills it (our interpreter lets it escape)
  // and its parent receives it as a value (rule 3).
  void deliver(std::vector<mg>& s, int t, receipt d, bool record) {
    for (;;) {
      t = resolve(s, t, d);
      if (record) expect(t, d.kind, d.v);
      cur = t;
      if (d.kind != rk::exit_exception) return;
      at(s, t).dead = true;
      at(s, t).has_fn = false;
      d = {0, rk::exit_value, 0};
      t = at(s, t).parent;
    }
  }

  // Where a greenlet_exit thrown to `x` would end up, in a copy of the model.
  int exit_lands(int x) {
    std::vector<mg> s = m;
    receipt d{0, rk::exit_exception, 0};
    int t = resolve(s, x, d);
    return d.kind == rk::exit_exception ? t : -1;
  }

  // --- checks ----------------------------------------------------------------

  void check_states() {
    long fns = 0;
    long stacks_out = 0;
    long live = 0;
    for (std::size_t i = 0; i < m.size(); ++i) {
      const mg& g = m[i];
      if (g.exists && g.has_fn) ++fns;
      if (g.exists && g.started && !g.dead && !g.is_main) ++stacks_out;
      if (g.exists) ++live;
      if (!g.handle) continue;
      const greenlet& x = h[i];
      if (x.started() != g.started || x.dead() != g.dead || x.active() != (g.started && !g.dead) ||
          static_cast<bool>(x) != x.active() || x.is_main() != g.is_main) {
        std::ostringstream os;
        os << "greenlet " << i << ": started/dead/active " << x.started() << x.dead() << x.active()
           << ", the model says " << g.started << g.dead << (g.started && !g.dead);
        fail(os.str());
      }
      if (!g.is_main && m[static_cast<std::size_t>(g.parent)].handle &&
          !(x.parent() == h[static_cast<std::size_t>(g.parent)])) {
        fail("greenlet " + std::to_string(i) + ": parent is not greenlet " +
             std::to_string(g.parent));
      }
    }
    if (m[static_cast<std::size_t>(cur)].handle &&
        !(greenlets::current() == h[static_cast<std::size_t>(cur)])) {
      fail("the running greenlet is not " + std::to_string(cur));
    }
    if (fns != captures) {
      fail("live run functions: " + std::to_string(captures) + ", the model says " +
           std::to_string(fns));
    }
    if (stacks_out != stacks->out()) {
      fail("stacks out: " + std::to_string(stacks->out()) + ", the model says " +
           std::to_string(stacks_out));
    }
    if (live > max_live) max_live = live;
  }

  void observe(receipt r) {
    if (failed()) return;
    if (expected.empty()) {
      fail("unexpected: " + describe(r));
    } else if (!(expected.front() == r)) {
      fail("expected: " + describe(expected.front()) + "; got: " + describe(r));
    } else {
      expected.pop_front();
    }
  }

  // --- choosing ---------------------------------------------------------------

  struct step {
    op kind = op::end;
    int x = 0;
    int y = 0;
    int v = 0;
    bool payload = true;
    bool want_error = false;
  };

  int random_handle() {
    for (;;) {
      const int i = pick(static_cast<int>(m.size()));
      if (m[static_cast<std::size_t>(i)].handle) return i;
    }
  }

  int live_count() const {
    int n = 0;
    for (const mg& g : m) n += g.exists ? 1 : 0;
    return n;
  }

  // Chooses the next operation for the running greenlet and applies it to the model.
  step choose(int self) {
    step s;
    if (!expected.empty()) fail("not delivered: " + describe(expected.front()));
    if (!failed()) check_states();
    if (failed() || ops >= limit) {
      s.kind = self == 0 ? op::end : op::switch_to;
      s.x = 0;
      s.v = -1;
      if (!failed() && cur != 0) deliver(m, 0, {0, rk::value, -1}, true);
      return s;
    }
    ++ops;
    for (;;) {
      const int r = pick(100);
      const int v = pick(1000);
      if (r < 10) {
        if (live_count() >= 24) continue;
        s.kind = op::create;
        s.y = pick(3) == 0 ? random_handle() : cur;  // the parent
        if (m[static_cast<std::size_t>(s.y)].dead && pick(2) == 0) continue;
        mg g;
        g.parent = s.y;
        m.push_back(g);
        ++m[static_cast<std::size_t>(s.y)].refs;
        s.x = static_cast<int>(m.size()) - 1;
        expect(cur, rk::none);
        return s;
      }
      if (r < 42) {
        s.kind = op::switch_to;
        s.x = random_handle();
        s.v = v;
        s.payload = pick(8) != 0;
        deliver(m, s.x, s.payload ? receipt{0, rk::value, v} : receipt{0, rk::empty, 0}, true);
        return s;
      }
      if (r < 52) {
        s.kind = op::throw_to;
        s.x = random_handle();
        s.v = v;
        deliver(m, s.x, {0, rk::exception, v}, true);
        return s;
      }
      if (r < 56) {
        s.kind = op::throw_exit;
        s.x = random_handle();
        if (exit_lands(s.x) == 0) continue;  // main would not survive it
        deliver(m, s.x, {0, rk::exit_exception, 0}, true);
        return s;
      }
      if (r < 64) {
        if (cur == 0) continue;
        s.kind = pick(4) == 0 ? op::raise : op::ret;
        s.v = v;
        const int me = cur;
        m[static_cast<std::size_t>(me)].dead = true;
        m[static_cast<std::size_t>(me)].has_fn = false;
        deliver(m, m[static_cast<std::size_t>(me)].parent,
                {0, s.kind == op::raise ? rk::exception : rk::value, v}, true);
        return s;
      }
      if (r < 72) {
        s.kind = op::set_parent;
        s.x = random_handle();
        s.y = random_handle();
        mg& g = m[static_cast<std::size_t>(s.x)];
        bool cycle = false;
        for (int q = s.y; q >= 0; q = m[static_cast<std::size_t>(q)].parent) cycle |= q == s.x;
        if (g.is_main || cycle) {
          s.want_error = true;
        } else {
          std::vector<mg> trial = m;
          ++trial[static_cast<std::size_t>(s.y)].refs;
          trial[static_cast<std::size_t>(s.x)].parent = s.y;
          if (!release(trial, g.parent, false)) continue;
          ++m[static_cast<std::size_t>(s.y)].refs;
          const int old = g.parent;
          g.parent = s.y;
          release(m, old, true);
        }
        expect(cur, rk::none);
        return s;
      }
      if (r < 90) {
        s.kind = op::drop;
        s.x = random_handle();
        if (s.x == cur || m[static_cast<std::size_t>(s.x)].is_main) continue;
        std::vector<mg> trial = m;
        trial[static_cast<std::size_t>(s.x)].handle = false;
        if (!release(trial, s.x, false)) continue;
        m[static_cast<std::size_t>(s.x)].handle = false;
        release(m, s.x, true);
        expect(cur, rk::none);
        return s;
      }
      s.kind = op::cross;
      s.v = v;
      expect(cur, rk::none);
      return s;
    }
  }

  // --- performing -------------------------------------------------------------

  void publish(int id) {
    std::lock_guard<std::mutex> lock(ex.mutex);
    ex.items.push_back({thread, id, h[static_cast<std::size_t>(id)]});
  }

  void unpublish(int id) {
    std::lock_guard<std::mutex> lock(ex.mutex);
    for (std::size_t i = 0; i < ex.items.size(); ++i) {
      if (ex.items[i].thread == thread && ex.items[i].id == id) {
        ex.items.erase(ex.items.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
    }
  }

  greenlets::options options_with(int parent) {
    greenlets::options o = test_support::with_resource(stacks, 64 * 1024);
    o.parent = h[static_cast<std::size_t>(parent)];
    return o;
  }

  // One attempt on another thread's greenlet: always `error`, nothing changes.
  void cross(int how) {
    std::lock_guard<std::mutex> lock(ex.mutex);
    std::vector<std::size_t> foreign;
    for (std::size_t i = 0; i < ex.items.size(); ++i) {
      if (ex.items[i].thread != thread) foreign.push_back(i);
    }
    if (foreign.empty()) return;
    greenlet& f = ex.items[foreign[static_cast<std::size_t>(how) % foreign.size()]].handle;
    // One of ours that is not the main greenlet (which has no parent to set).
    int own = 0;
    for (std::size_t i = 1; i < m.size(); ++i) {
      if (m[i].handle) own = static_cast<int>(i);
    }
    greenlet& mine = h[static_cast<std::size_t>(own)];
    if (own == 0 && (how % 6 == 2 || how % 6 == 3)) how = 0;
    // A foreign main greenlet refuses set_parent for being main before looking at threads.
    const bool names_thread = !(how % 6 == 2 && f.is_main());
    try {
      switch (how % 6) {
        case 0:
          f.switch_to(msg{how});
          break;
        case 1:
          f.throw_to(model_error{how});
          break;
        case 2:
          f.set_parent(mine);
          break;
        case 3:
          mine.set_parent(f);
          break;
        case 4: {
          greenlet g(run_function(-1), f);
          break;
        }
        default:
          (void)f.parent();
          break;
      }
      fail("an operation on another thread's greenlet did not throw (kind " +
           std::to_string(how % 6) + ")");
    } catch (const greenlets::error& e) {
      if (names_thread && std::string(e.what()).find("another thread") == std::string::npos) {
        fail(std::string("cross-thread error without the reason: ") + e.what());
      }
      ++cross_errors;
    }
  }

  // The interpreter every greenlet runs: report, choose, perform.
  msg interpret(int self, receipt r) {
    for (;;) {
      r.who = self;
      observe(r);
      const step s = choose(self);
      r = {self, rk::none, 0};
      try {
        switch (s.kind) {
          case op::end:
            return msg{0};
          case op::create:
            h.push_back(greenlet(run_function(s.x), options_with(s.y)));
            if (pick(4) == 0) publish(s.x);
            break;
          case op::switch_to:
            r = to_receipt(s.payload ? h[static_cast<std::size_t>(s.x)].switch_to(msg{s.v})
                                     : h[static_cast<std::size_t>(s.x)].switch_to());
            break;
          case op::throw_to:
            r = to_receipt(h[static_cast<std::size_t>(s.x)].throw_to(model_error{s.v}));
            break;
          case op::throw_exit:
            r = to_receipt(h[static_cast<std::size_t>(s.x)].throw_to());
            break;
          case op::ret:
            return msg{s.v};
          case op::raise:
            throw model_error{s.v};
          case op::set_parent:
            try {
              h[static_cast<std::size_t>(s.x)].set_parent(h[static_cast<std::size_t>(s.y)]);
              if (s.want_error) fail("set_parent did not throw");
            } catch (const greenlets::error&) {
              if (!s.want_error) fail("set_parent threw");
            }
            break;
          case op::drop:
            unpublish(s.x);
            h[static_cast<std::size_t>(s.x)] = greenlet();
            break;
          case op::cross:
            cross(s.v);
            break;
        }
      } catch (const model_error& e) {
        if (s.kind == op::raise) throw;
        r = {self, rk::exception, e.id};
      } catch (const greenlets::greenlet_exit&) {
        observe({self, rk::exit_exception, 0});
        throw;  // never swallow a kill
      } catch (const std::exception& e) {
        fail(std::string("unexpected exception: ") + e.what());
        r = {self, rk::none, 0};
      }
    }
  }

  // Runs the whole sequence on this thread, then drops everything.
  void run() {
    mg main_model;
    main_model.is_main = true;
    main_model.started = true;
    main_model.has_fn = false;
    m.push_back(main_model);
    h.push_back(greenlets::current());
    publish(0);
    expected.push_back({0, rk::none, 0});
    interpret(0, {0, rk::none, 0});
    // Drop the remaining handles, newest first, from the main greenlet.
    for (int i = static_cast<int>(m.size()) - 1; i > 0 && !failed(); --i) {
      if (!m[static_cast<std::size_t>(i)].handle) continue;
      m[static_cast<std::size_t>(i)].handle = false;
      release(m, i, true);
      unpublish(i);
      h[static_cast<std::size_t>(i)] = greenlet();
      if (!expected.empty())
        fail("after the final drops, not delivered: " + describe(expected.front()));
    }
    unpublish(0);
    if (!failed()) {
      for (std::size_t i = 1; i < m.size(); ++i) {
        if (m[i].exists) fail("greenlet " + std::to_string(i) + " still exists in the model");
      }
      if (captures != 0) fail("live run functions after the end: " + std::to_string(captures));
      if (stacks->out() != 0) fail("stacks not given back: " + std::to_string(stacks->out()));
    }
    h.clear();
  }
};

capture::capture(world* x) : w(x) { ++w->captures; }
capture::capture(capture&& o) noexcept : w(o.w) { ++w->captures; }
capture::~capture() { --w->captures; }

msg runner::operator()(greenlets::value first) {
  return w->interpret(id, to_receipt(std::move(first)));
}

struct run_summary {
  std::vector<std::string> failures;
  long ops = 0;
  long cross_errors = 0;
  long max_live = 0;
};

run_summary run_model(unsigned long seed, long ops_per_thread, int threads) {
  exchange ex;
  std::vector<std::unique_ptr<world>> worlds;
  for (int t = 0; t < threads; ++t) {
    worlds.push_back(std::make_unique<world>(seed, t, ops_per_thread, ex));
  }
  std::vector<std::thread> pool;
  for (auto& w : worlds) pool.emplace_back([&w] { w->run(); });
  for (std::thread& t : pool) t.join();
  run_summary s;
  for (auto& w : worlds) {
    if (w->failed()) s.failures.push_back(w->failure);
    s.ops += w->ops;
    s.cross_errors += w->cross_errors;
    if (w->max_live > s.max_live) s.max_live = w->max_live;
  }
  return s;
}

}  // namespace

TEST_CASE("random operations on greenlets in three threads match the reference model",
          "[model][rule1][rule2][rule3][rule4][rule5][rule6][rule7][rule8][rule11]") {
  std::vector<unsigned long> seeds = {1, 2, 3, 4, 5};
  long ops = 5000;
  if (const char* s = std::getenv("GREENLETS_MODEL_SEED")) seeds = {std::strtoul(s, nullptr, 10)};
  if (const char* s = std::getenv("GREENLETS_MODEL_OPS")) ops = std::strtol(s, nullptr, 10);
  long total = 0;
  for (unsigned long seed : seeds) {
    INFO("seed " << seed << " (rerun with GREENLETS_MODEL_SEED=" << seed << ")");
    const run_summary r = run_model(seed, ops, 3);
    for (const std::string& f : r.failures) FAIL_CHECK(f);
    CHECK(r.ops == 3 * ops);
    CHECK(r.cross_errors > 0);
    total += r.ops;
    WARN("model seed " << seed << ": " << r.ops << " operations, " << r.cross_errors
                       << " cross-thread attempts refused, at most " << r.max_live
                       << " greenlets alive in one thread");
  }
  CHECK(total == static_cast<long>(seeds.size()) * 3 * ops);
}
