// Timeout scopes and with_timeout (hub rule 3 of docs/semantics.md): a timeout fires
// only at a blocking point, nested scopes throw the one that expired, leaving a scope
// disarms it, and arming reads the clock afresh.
#include <chrono>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

using namespace std::chrono_literals;

namespace {

// Busy for `d` without blocking.
void compute_for(std::chrono::steady_clock::duration d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

}  // namespace

TEST_CASE("a timeout interrupts a blocking call inside its scope", "[hub][hub3]") {
  greenlets::timeout deadline(5s);
  const auto start = std::chrono::steady_clock::now();
  greenlets::timeout t(10ms);
  CHECK_THROWS_WITH(greenlets::sleep(1h), Catch::Contains("timeout") && Catch::Contains("10 ms"));
  CHECK(t.expired());
  CHECK(std::chrono::steady_clock::now() - start >= 10ms);
  // Thrown once: later blocking calls in the same scope go on.
  greenlets::sleep(0s);
}

TEST_CASE("a timeout fires only at a blocking point", "[hub][hub3]") {
  greenlets::timeout deadline(5s);
  bool computed = false;
  bool thrown_at_block = false;
  try {
    greenlets::timeout t(5ms);
    compute_for(20ms);  // not interrupted
    computed = true;
    greenlets::sleep(0s);  // the next blocking call throws
  } catch (const greenlets::timeout_error&) {
    thrown_at_block = true;
  }
  CHECK(computed);
  CHECK(thrown_at_block);
}

TEST_CASE("a timeout in a task interrupts that task only", "[hub][hub3]") {
  greenlets::timeout deadline(5s);
  auto t = greenlets::spawn([] {
    greenlets::timeout mine(5ms);
    greenlets::event never;
    CHECK_THROWS_AS(never.wait(), greenlets::timeout_error);
    return mine.expired();
  });
  greenlets::sleep(20ms);  // the main greenlet is not interrupted
  CHECK(t.get());
}

TEST_CASE("nested timeouts throw the one that expired", "[hub][hub3]") {
  greenlets::timeout deadline(5s);
  SECTION("the inner one") {
    greenlets::timeout outer(1h);
    greenlets::timeout inner(5ms);
    CHECK_THROWS_AS(greenlets::sleep(1h), greenlets::timeout_error);
    CHECK(inner.expired());
    CHECK_FALSE(outer.expired());
  }
  SECTION("the outer one, through an inner scope") {
    greenlets::timeout outer(5ms);
    bool inner_expired = true;
    try {
      greenlets::timeout inner(1h);
      greenlets::sleep(1h);
    } catch (const greenlets::timeout_error&) {
      inner_expired = false;
    }
    CHECK_FALSE(inner_expired);
    CHECK(outer.expired());
  }
  SECTION("the first to expire while computing") {
    greenlets::timeout outer(2ms);
    greenlets::timeout inner(8ms);
    compute_for(20ms);
    // Both fire during the next blocking call, which throws the first; the other
    // stays pending for the call after.
    CHECK_THROWS_WITH(greenlets::sleep(0s), Catch::Contains("2 ms"));
    CHECK(outer.expired());
    CHECK(inner.expired());
    CHECK_THROWS_WITH(greenlets::sleep(0s), Catch::Contains("8 ms"));
    greenlets::sleep(0s);
  }
}

TEST_CASE("leaving a timeout scope disarms it", "[hub][hub3]") {
  greenlets::timeout deadline(5s);
  {
    greenlets::timeout t(100ms);  // far enough for a loaded machine's 1 ms sleep
    greenlets::sleep(1ms);
  }
  greenlets::sleep(130ms);  // past the old deadline: nothing thrown
  greenlets::timeout t2(5ms);
  t2.cancel();
  greenlets::sleep(15ms);
  CHECK_FALSE(t2.expired());
}

TEST_CASE("arming a timeout reads the clock afresh after a long computation", "[hub][hub3]") {
  greenlets::timeout deadline(5s);
  greenlets::sleep(0s);
  compute_for(100ms);  // a loop clock read before this would now be 100 ms behind
  // With such a stale clock this deadline would already have passed when armed, and
  // the sleep below would throw.
  greenlets::timeout t(80ms);
  greenlets::sleep(5ms);
  CHECK_FALSE(t.expired());
}

TEST_CASE("with_timeout returns an empty optional on expiry", "[hub][hub3]") {
  greenlets::timeout deadline(5s);
  std::optional<int> fast = greenlets::with_timeout(1s, [] { return 4; });
  CHECK(fast == 4);
  std::optional<int> slow = greenlets::with_timeout(5ms, [] {
    greenlets::sleep(1h);
    return 5;
  });
  CHECK_FALSE(slow.has_value());
  CHECK(greenlets::with_timeout(1s, [] {}));
  // An enclosing scope's timeout passes through.
  greenlets::timeout outer(5ms);
  CHECK_THROWS_AS(greenlets::with_timeout(1h,
                                          [] {
                                            greenlets::sleep(1h);
                                            return 1;
                                          }),
                  greenlets::timeout_error);
  CHECK(outer.expired());
}

TEST_CASE("timeout_error and loop_exit are greenlets::error", "[hub][hub3]") {
  CHECK_THROWS_AS(throw greenlets::timeout_error("x"), greenlets::error);
  CHECK_THROWS_AS(throw greenlets::loop_exit("x"), greenlets::error);
}
