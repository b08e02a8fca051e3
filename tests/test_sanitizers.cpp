// The tools that must work (docs/architecture.md, "Sanitizers and valgrind"): ASan, UBSan,
// ThreadSanitizer and valgrind memcheck see every switch, so the patterns that give
// them false positives when they do not (exceptions thrown on greenlet stacks, a
// stack reused after a greenlet finished on it, unwinding on drop, greenlets on
// several threads) run clean. Each case checks its results in every build; under a
// tool it also checks what the tool was told (stack bounds, fibers, registrations).
#include <atomic>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

#include "support/options.hpp"

#if defined(GREENLETS_VALGRIND_ACTIVE)
#include <valgrind/valgrind.h>
#endif

using greenlets::current;
using greenlets::greenlet;
using greenlets::greenlet_exit;
// What the tools were told (stack bounds, fibers, ids) is internal; nothing public shows it.
using greenlets::detail::greenlet_access;

namespace {

using test_support::with_stack;

// A frame with a large array, filled and summed: under ASan its redzones are
// poisoned on entry, and any stale poison where the array lies is reported.
__attribute__((noinline)) int fill_and_sum(std::size_t n, int seed) {
  std::vector<int> check(n);
  int local[4096];
  int sum = 0;
  for (std::size_t i = 0; i < 4096; ++i) local[i] = seed + static_cast<int>(i % 7);
  std::memcpy(check.data(), local, sizeof(int) * (n < 4096 ? n : 4096));
  for (std::size_t i = 0; i < n && i < 4096; ++i) sum += check[i];
  return sum;
}

int expected_sum(std::size_t n, int seed) {
  int sum = 0;
  for (std::size_t i = 0; i < n && i < 4096; ++i) sum += seed + static_cast<int>(i % 7);
  return sum;
}

__attribute__((noinline)) int throw_through(int depth) {
  char pad[512];
  std::memset(pad, depth, sizeof pad);
  if (depth == 0) throw std::runtime_error("bottom");
  return throw_through(depth - 1) + pad[depth % 512];
}

}  // namespace

TEST_CASE("exceptions thrown and caught on greenlet stacks are clean under the tools",
          "[tools][rule3]") {
  int caught_inside = 0;
  std::vector<greenlet> gs;
  for (int i = 0; i < 8; ++i) {
    gs.emplace_back([&caught_inside, i] {
      for (int round = 0; round < 3; ++round) {
        try {
          throw_through(10 + i);
        } catch (const std::runtime_error& e) {
          if (std::string(e.what()) == "bottom") ++caught_inside;
        }
        current().parent().switch_to(round);
      }
      throw std::logic_error("escaped " + std::to_string(i));
    });
  }
  for (int round = 0; round < 3; ++round) {
    for (auto& g : gs) CHECK(g.switch_to().get<int>() == round);
  }
  // Escaping run: rethrown in the parent, here on the main stack (rule 3).
  for (int i = 0; i < 8; ++i) {
    try {
      gs[static_cast<std::size_t>(i)].switch_to();
      FAIL("the exception did not reach the parent");
    } catch (const std::logic_error& e) {
      CHECK(std::string(e.what()) == "escaped " + std::to_string(i));
    }
    CHECK(gs[static_cast<std::size_t>(i)].dead());
  }
  CHECK(caught_inside == 24);
  // And the main stack still throws and catches cleanly.
  CHECK_THROWS_AS(throw_through(20), std::runtime_error);
}

TEST_CASE("a stack reused from the pool carries nothing over from the greenlet that finished on it",
          "[tools][stack]") {
  constexpr std::size_t size = 128 * 1024;
  greenlets::stack_context first{};
  {
    greenlet a(
        [&first] {
          first = greenlet_access::get(current())->stack;
          // Suspend deep inside a frame, then finish from another depth: the bottom
          // frames of a finished greenlet never return, so their redzones stay behind.
          current().parent().switch_to(fill_and_sum(3000, 1));
          return fill_and_sum(100, 2);
        },
        with_stack(size));
    CHECK(a.switch_to().get<int>() == expected_sum(3000, 1));
    CHECK(a.switch_to().get<int>() == expected_sum(100, 2));
    CHECK(a.dead());
  }
  REQUIRE(first.sp != nullptr);
#if defined(GREENLETS_ASAN)
  const char* bottom = static_cast<const char*>(first.sp) - first.size;
  CHECK(__asan_region_is_poisoned(const_cast<char*>(bottom), first.size) == nullptr);
#endif
  // The next greenlet of that size gets the same stack and uses all of it.
  greenlets::stack_context second{};
  greenlet b(
      [&second] {
        second = greenlet_access::get(current())->stack;
        int total = 0;
        for (int seed = 0; seed < 5; ++seed) total += fill_and_sum(4096, seed);
        return total;
      },
      with_stack(size));
  int want = 0;
  for (int seed = 0; seed < 5; ++seed) want += expected_sum(4096, seed);
  CHECK(b.switch_to().get<int>() == want);
  CHECK(second.sp == first.sp);
}

TEST_CASE("unwinding dropped greenlets suspended inside catch blocks and deep frames is clean",
          "[tools][rule6][rule10]") {
  std::atomic<int> unwound{0};
  for (int round = 0; round < 4; ++round) {
    std::vector<greenlet> gs;
    for (int i = 0; i < 6; ++i) {
      gs.emplace_back([&unwound, i] {
        struct count_on_unwind {
          std::atomic<int>* n;
          ~count_on_unwind() { ++*n; }
        } guard{&unwound};
        try {
          throw std::runtime_error("held " + std::to_string(i));
        } catch (const std::runtime_error&) {
          // Switch away with an exception caught: rule 10 keeps it ours.
          current().parent().switch_to(fill_and_sum(static_cast<std::size_t>(100 * i + 1), i));
        }
        current().parent().switch_to(-1);
      });
    }
    for (int i = 0; i < 6; ++i) {
      CHECK(gs[static_cast<std::size_t>(i)].switch_to().get<int>() ==
            expected_sum(static_cast<std::size_t>(100 * i + 1), i));
    }
    CHECK(std::current_exception() == nullptr);
    gs.clear();  // each is killed with greenlet_exit, on its own stack
  }
  CHECK(unwound == 24);
}

TEST_CASE("a chain of nested greenlets switching straight back to main is clean",
          "[tools][rule2]") {
  // main -> g0 -> g1 -> ... -> g19; the innermost switches to main directly, so main
  // is entered from a greenlet other than the one it left for.
  constexpr int depth = 20;
  greenlet main_greenlet = current();
  std::vector<greenlet> chain(depth);
  std::function<int(int)> level = [&](int k) -> int {
    if (k == depth) return main_greenlet.switch_to(k).get<int>();
    chain[static_cast<std::size_t>(k)] = greenlet([&level, k] { return level(k + 1) + 1; });
    return chain[static_cast<std::size_t>(k)].switch_to().get<int>();
  };
  greenlet top([&] { return level(0); });
  CHECK(top.switch_to().get<int>() == depth);
#if defined(GREENLETS_ASAN)
  // ASan told us the main stack's bounds as we first left it.
  const greenlets::detail::tool_state& t = greenlet_access::get(main_greenlet)->tools;
  // The frame itself: locals may live on ASan's fake stack (detect_stack_use_after_return).
  const char* p = static_cast<const char*>(__builtin_frame_address(0));
  REQUIRE(t.bottom != nullptr);
  const char* b = static_cast<const char*>(t.bottom);
  CHECK((p >= b && p < b + t.size));
#endif
  // Resuming the innermost returns through every level to top, then here.
  CHECK(chain[depth - 1].switch_to(100).get<int>() == 100 + depth);
  CHECK(top.dead());
}

TEST_CASE("greenlets on several threads, handing heap data between them, are clean",
          "[tools][threads][rule7]") {
  constexpr int threads = 4;
  constexpr int items = 200;
  std::vector<long> totals(threads, 0);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([t, &totals] {
      greenlet producer([t] {
        for (int i = 0; i < items; ++i) {
          auto item = std::make_unique<std::vector<int>>(16, i + t);
          current().parent().switch_to(std::move(item));
        }
        return std::unique_ptr<std::vector<int>>();
      });
      long total = 0;
      for (;;) {
        auto item = producer.switch_to().get<std::unique_ptr<std::vector<int>>>();
        if (!item) break;
        for (int x : *item) total += x;
      }
      totals[static_cast<std::size_t>(t)] = total;
    });
  }
  for (auto& th : ts) th.join();
  for (int t = 0; t < threads; ++t) {
    long want = 0;
    for (int i = 0; i < items; ++i) want += 16L * (i + t);
    CHECK(totals[static_cast<std::size_t>(t)] == want);
  }
}

TEST_CASE("a greenlet dropped on another thread is unwound by its owner cleanly",
          "[tools][threads][rule6]") {
  std::atomic<int> unwound{0};
  greenlet g([&unwound] {
    struct on_unwind {
      std::atomic<int>* n;
      ~on_unwind() { ++*n; }
    } guard{&unwound};
    current().parent().switch_to(1);
  });
  CHECK(g.switch_to().get<int>() == 1);
  std::thread([moved = std::move(g)]() mutable { moved = greenlet(); }).join();
  CHECK(unwound == 0);  // queued for this thread
  greenlet h([] { return 2; });
  CHECK(h.switch_to().get<int>() == 2);  // the next switch here runs the queued kill
  CHECK(unwound == 1);
}

#if defined(GREENLETS_TSAN)
TEST_CASE("under ThreadSanitizer each greenlet runs on a fiber of its own", "[tools][tsan]") {
  void* main_fiber = __tsan_get_current_fiber();
  void* seen_a = nullptr;
  void* seen_b = nullptr;
  greenlet a([&] {
    seen_a = __tsan_get_current_fiber();
    current().parent().switch_to();
  });
  greenlet b([&] { seen_b = __tsan_get_current_fiber(); });
  a.switch_to();
  CHECK(__tsan_get_current_fiber() == main_fiber);
  b.switch_to();
  CHECK(__tsan_get_current_fiber() == main_fiber);
  CHECK(seen_a != nullptr);
  CHECK(seen_a != main_fiber);
  CHECK(seen_b != main_fiber);
  CHECK(seen_a != seen_b);
  CHECK(greenlet_access::get(a)->tools.fiber == seen_a);
  a.switch_to();
  CHECK(a.dead());
  CHECK(greenlet_access::get(a)->tools.fiber == nullptr);  // destroyed with its stack
}
#endif

#if defined(GREENLETS_VALGRIND_ACTIVE)
TEST_CASE("a running greenlet's stack is registered with valgrind exactly while it is owned",
          "[tools][valgrind]") {
  unsigned id = 0;
  greenlet g([&id] {
    id = greenlet_access::get(current())->tools.stack_id;
    current().parent().switch_to();
  });
  g.switch_to();
  if (RUNNING_ON_VALGRIND) {
    CHECK(id != 0);
  } else {
    CHECK(id == 0);  // natively the request is a no-op that returns 0
  }
  CHECK(greenlet_access::get(g)->tools.stack_id == id);
  g.switch_to();
  CHECK(g.dead());
  CHECK(greenlet_access::get(g)->tools.stack_id == 0);
}
#endif

#if !defined(GREENLETS_ASAN) && !defined(GREENLETS_TSAN)
TEST_CASE("without a sanitizer the tool hooks take at most a valgrind stack id in a greenlet",
          "[tools]") {
  // The hooks' per-greenlet state is internal: its size is the cost checked here.
#if defined(GREENLETS_VALGRIND_ACTIVE)
  CHECK(sizeof(greenlets::detail::tool_state) == sizeof(unsigned));
#else
  CHECK(std::is_empty_v<greenlets::detail::tool_state>);
#endif
}
#endif
