// `value`, the payload of a switch: empty, one value, several; reading it as the held
// type, as a string from a literal, or failing with a bad_value_cast that names both
// types; and what it costs: small payloads and plain round trips allocate nothing.
//
// The allocation counts use the test binary's one replacement of the global operator
// new (tests/support/counting_new.cpp): it counts the calls made on the current thread
// while `test_support::counting` is set.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

#include "support/counting_new.hpp"

namespace {

using greenlets::bad_value_cast;
using greenlets::current;
using greenlets::greenlet;
using greenlets::value;

// Counts the global operator new calls made on this thread from its construction until
// `stop()` (read the count before asserting: Catch may allocate while reporting).
class count_allocations {
 public:
  count_allocations() noexcept {
    test_support::allocations = 0;
    test_support::counting = true;
  }
  ~count_allocations() { test_support::counting = false; }
  count_allocations(const count_allocations&) = delete;
  count_allocations& operator=(const count_allocations&) = delete;

  std::size_t stop() noexcept {
    test_support::counting = false;
    return test_support::allocations;
  }
};

struct small16 {
  double x;
  double y;
};
static_assert(sizeof(small16) == 16 && std::is_trivially_copyable_v<small16>);

struct small32 {
  std::uint64_t a, b, c, d;
};
static_assert(sizeof(small32) == 32 && std::is_trivially_copyable_v<small32>);

struct large {
  std::array<int, 256> data;
};

// Counts how it was built: copies and moves.
struct tracked {
  static inline int copies = 0;
  static inline int moves = 0;
  static void reset() { copies = moves = 0; }

  std::string payload;
  explicit tracked(std::string s) : payload(std::move(s)) {}
  tracked(const tracked& o) : payload(o.payload) { ++copies; }
  tracked(tracked&& o) noexcept : payload(std::move(o.payload)) { ++moves; }
  tracked& operator=(const tracked&) = delete;
  tracked& operator=(tracked&&) = delete;
  ~tracked() = default;
};

}  // namespace

// ---------------------------------------------------------------------------
// The counter itself

TEST_CASE("the allocation counter sees allocations made while armed", "[value][alloc]") {
  if (!test_support::counting_works()) {
    WARN("operator new is not ours here (valgrind replaces it): allocations are not counted");
    return;
  }
  count_allocations counter;
  auto p = std::make_unique<std::array<char, 100>>();
  std::vector<int> v(1000);
  const std::size_t allocated = counter.stop();
  CHECK(allocated == 2);
  (void)p;
}

// ---------------------------------------------------------------------------
// Empty, one, several

TEST_CASE("an empty value holds nothing", "[value]") {
  value v;
  CHECK_FALSE(v.has_value());
  CHECK_FALSE(static_cast<bool>(v));
  CHECK(v.type() == typeid(void));
  CHECK(v.size() == 0);
  CHECK_FALSE(v.holds<int>());
  CHECK(v.get_if<int>() == nullptr);
  CHECK_THROWS_AS(v.get<int>(), bad_value_cast);
  CHECK_THROWS_WITH(v.get<int>(), "greenlets: bad_value_cast: value holds nothing, requested int");
  CHECK_FALSE(value::of().has_value());
}

TEST_CASE("a value holding one object reports its type and gives it back", "[value]") {
  value v(5);
  CHECK(v.has_value());
  CHECK(static_cast<bool>(v));
  CHECK(v.type() == typeid(int));
  CHECK(v.size() == 1);
  CHECK(v.holds<int>());
  CHECK_FALSE(v.holds<long>());
  CHECK_FALSE(v.holds<unsigned>());
  CHECK_FALSE(v.holds<std::tuple<int>>());
  REQUIRE(v.get_if<int>() != nullptr);
  *v.get_if<int>() = 6;
  CHECK(v.get<int>() == 6);
  CHECK(v.get_if<long>() == nullptr);
  const value& cv = v;
  REQUIRE(cv.get_if<int>() != nullptr);
  CHECK(*cv.get_if<int>() == 6);
  CHECK_THROWS_AS(v.get<long>(), bad_value_cast);

  SECTION("emplace and reset") {
    v.emplace<std::string>(std::size_t{3}, 'z');
    CHECK(v.type() == typeid(std::string));
    CHECK(v.get<std::string>() == "zzz");
    v.reset();
    CHECK_FALSE(v.has_value());
    CHECK(v.type() == typeid(void));
  }
}

TEST_CASE("get copies from an lvalue and moves out of an rvalue", "[value]") {
  const std::string text(100, 'x');  // long enough to live on the heap
  value v(text);
  std::string copy = v.get<std::string>();
  CHECK(copy == text);
  CHECK(v.has_value());
  REQUIRE(v.get_if<std::string>() != nullptr);
  CHECK(*v.get_if<std::string>() == text);

  const char* buffer = v.get_if<std::string>()->data();
  std::string moved = std::move(v).get<std::string>();
  CHECK(moved == text);
  CHECK(moved.data() == buffer);  // the same buffer: moved, not copied
  CHECK_FALSE(v.has_value());     // NOLINT(bugprone-use-after-move): documented state
}

TEST_CASE("a value may hold a move-only payload", "[value]") {
  value v(std::make_unique<int>(3));
  CHECK(v.holds<std::unique_ptr<int>>());
  REQUIRE(v.get_if<std::unique_ptr<int>>() != nullptr);
  CHECK(**v.get_if<std::unique_ptr<int>>() == 3);

  value w(std::move(v));
  CHECK_FALSE(v.has_value());  // NOLINT(bugprone-use-after-move)
  CHECK(w.holds<std::unique_ptr<int>>());

  value x;
  x = std::move(w);
  CHECK_FALSE(w.has_value());  // NOLINT(bugprone-use-after-move)
  std::unique_ptr<int> p = std::move(x).get<std::unique_ptr<int>>();
  REQUIRE(p != nullptr);
  CHECK(*p == 3);

  SECTION("several move-only values") {
    value both = value::of(std::make_unique<int>(1), std::make_unique<std::string>("b"));
    auto [i, s] = std::move(both).get<std::unique_ptr<int>, std::unique_ptr<std::string>>();
    CHECK(*i == 1);
    CHECK(*s == "b");
  }
  SECTION("through a switch") {
    greenlet g([](std::unique_ptr<int> q) { return std::make_unique<int>(*q + 1); });
    CHECK(*g.switch_to(std::make_unique<int>(41)).get<std::unique_ptr<int>>() == 42);
  }
}

TEST_CASE("several values read as get<T1, T2>() or get<std::tuple<T1, T2>>()", "[value]") {
  value v = value::of(1, std::string("two"));
  CHECK(v.size() == 2);
  CHECK(v.type() == typeid(std::tuple<int, std::string>));
  CHECK(v.holds<int, std::string>());
  CHECK(v.holds<std::tuple<int, std::string>>());
  CHECK_FALSE(v.holds<int>());
  CHECK_FALSE(v.holds<std::string, int>());
  CHECK_FALSE(v.holds<int, std::string, int>());
  CHECK(v.get<int, std::string>() == v.get<std::tuple<int, std::string>>());
  CHECK(v.get<int, std::string>() == std::make_tuple(1, std::string("two")));
  CHECK_THROWS_AS(v.get<int>(), bad_value_cast);
  CHECK_THROWS_AS((v.get<int, int>()), bad_value_cast);
  CHECK_THROWS_AS((v.get<int, std::string, int>()), bad_value_cast);
  auto [n, s] = std::move(v).get<int, std::string>();
  CHECK(n == 1);
  CHECK(s == "two");
  CHECK_FALSE(v.has_value());  // NOLINT(bugprone-use-after-move)
}

TEST_CASE("value::of sends what switch_to would", "[value]") {
  CHECK_FALSE(value::of().has_value());
  CHECK(value::of(1).type() == typeid(int));
  CHECK(value::of(1, 2).type() == typeid(std::tuple<int, int>));
  value inner(7);
  value passed = value::of(std::move(inner));
  CHECK(passed.type() == typeid(int));  // a single value is passed through, not nested
  CHECK(passed.get<int>() == 7);
}

// ---------------------------------------------------------------------------
// String literals

TEST_CASE("a string literal travels as const char* and reads as a string", "[value]") {
  value v = value::of("egon");
  CHECK(v.type() == typeid(const char*));
  CHECK(v.holds<const char*>());
  CHECK(v.holds<std::string>());
  CHECK(v.holds<std::string_view>());
  CHECK_FALSE(v.holds<int>());
  CHECK(v.get_if<std::string>() == nullptr);  // get_if is exact
  CHECK(std::string(v.get<const char*>()) == "egon");
  CHECK(v.get<std::string>() == "egon");
  CHECK(v.get<std::string_view>() == "egon");
  CHECK(std::move(v).get<std::string>() == "egon");

  SECTION("a std::string does not read as const char*") {
    value s(std::string("x"));
    CHECK_FALSE(s.holds<const char*>());
    CHECK_THROWS_AS(s.get<const char*>(), bad_value_cast);
  }
}

TEST_CASE("string literals inside several values read as strings", "[value]") {
  value v = value::of("a", 1, "c");
  CHECK(v.type() == typeid(std::tuple<const char*, int, const char*>));
  CHECK(v.holds<std::string, int, std::string_view>());
  CHECK(v.get<std::string, int, std::string_view>() ==
        std::make_tuple(std::string("a"), 1, std::string_view("c")));
  CHECK_THROWS_AS((v.get<std::string, std::string, std::string>()), bad_value_cast);
}

TEST_CASE("switch_to with a string literal is read as std::string on the other side",
          "[value][switch]") {
  greenlet main = current();
  greenlet g([&](std::string name) {
    value v = main.switch_to("hello " + name);
    return std::move(v).get<std::string, int>();
  });
  CHECK(g.switch_to("egon").get<std::string>() == "hello egon");
  CHECK(g.switch_to("a", 1).get<std::string, int>() == std::make_tuple(std::string("a"), 1));
}

// ---------------------------------------------------------------------------
// bad_value_cast

TEST_CASE("bad_value_cast names the held and the requested type", "[value][error]") {
  CHECK_THROWS_WITH(value(1).get<std::string>(),
                    "greenlets: bad_value_cast: value holds int, requested std::string");
  CHECK_THROWS_WITH(value(std::string("x")).get<int>(),
                    "greenlets: bad_value_cast: value holds std::string, requested int");
  CHECK_THROWS_WITH(value(1).get<std::string_view>(),
                    "greenlets: bad_value_cast: value holds int, requested std::string_view");
  CHECK_THROWS_WITH(value::of("x").get<int>(),
                    "greenlets: bad_value_cast: value holds const char*, requested int");
  CHECK_THROWS_WITH((value::of(1, std::string("s")).get<int, int>()),
                    "greenlets: bad_value_cast: value holds std::tuple<int, std::string>, "
                    "requested std::tuple<int, int>");
  CHECK_THROWS_WITH(value(small16{}).get<small32>(),
                    Catch::Contains("small16") && Catch::Contains("small32"));
}

TEST_CASE("bad_value_cast is a greenlets::error and leaves the value intact", "[value][error]") {
  value v(std::string("keep"));
  CHECK_THROWS_AS(std::move(v).get<int>(), greenlets::error);
  try {
    (void)std::move(v).get<double>();
    FAIL("get<double> must throw");
  } catch (const bad_value_cast& e) {
    CHECK(std::string(e.what()).find("double") != std::string::npos);
  }
  REQUIRE(v.has_value());  // NOLINT(bugprone-use-after-move): a failed get takes nothing
  CHECK(v.get<std::string>() == "keep");
}

// ---------------------------------------------------------------------------
// What it costs

TEST_CASE("small trivially copyable payloads travel with no heap allocation", "[value][alloc]") {
  SECTION("16 bytes") {
    count_allocations counter;
    value v(small16{1.5, 2.5});
    value w(std::move(v));
    value x;
    x = std::move(w);
    small16 out = std::move(x).get<small16>();
    const std::size_t allocated = counter.stop();
    CHECK(allocated == 0);
    CHECK(out.x == 1.5);
    CHECK(out.y == 2.5);
  }
  SECTION("32 bytes") {
    count_allocations counter;
    value v(small32{1, 2, 3, 4});
    value w(std::move(v));
    small32 out = w.get<small32>();
    const std::size_t allocated = counter.stop();
    CHECK(allocated == 0);
    CHECK(out.a == 1);
    CHECK(out.d == 4);
  }
  SECTION("several small values") {
    count_allocations counter;
    value v = value::of(1, 2.0, 'c');
    auto [i, d, c] = std::move(v).get<int, double, char>();
    const std::size_t allocated = counter.stop();
    CHECK(allocated == 0);
    CHECK(i == 1);
    CHECK(d == 2.0);
    CHECK(c == 'c');
  }
  SECTION("a string literal read as std::string_view") {
    count_allocations counter;
    value v = value::of("literal");
    std::string_view s = v.get<std::string_view>();
    const std::size_t allocated = counter.stop();
    CHECK(allocated == 0);
    CHECK(s == "literal");
  }
  SECTION("a short std::string moved in and out") {
    std::string s("short");
    count_allocations counter;
    value v(std::move(s));
    value w(std::move(v));
    std::string out = std::move(w).get<std::string>();
    const std::size_t allocated = counter.stop();
    CHECK(allocated == 0);
    CHECK(out == "short");
  }
}

TEST_CASE("a large payload lives on the heap and moves by pointer", "[value][alloc]") {
  if (!test_support::counting_works()) {
    WARN("operator new is not ours here (valgrind replaces it): allocations are not counted");
    return;
  }
  large big{};
  for (int i = 0; i < 256; ++i) big.data[static_cast<std::size_t>(i)] = i;

  count_allocations building;
  value v(big);
  const std::size_t to_build = building.stop();
  CHECK(to_build == 1);

  count_allocations moving;
  value w(std::move(v));
  value x;
  x = std::move(w);
  const large* p = x.get_if<large>();
  large out = std::move(x).get<large>();
  const std::size_t to_move = moving.stop();
  CHECK(to_move == 0);
  REQUIRE(p != nullptr);
  CHECK(out.data[100] == 100);
  CHECK(out.data[255] == 255);

  SECTION("through a switch") {
    greenlet g([](large l) { return l.data[200]; });
    CHECK(g.switch_to(big).get<int>() == 200);
  }
}

TEST_CASE("a payload sent through a switch is moved, never copied", "[value][switch]") {
  tracked::reset();
  greenlet main = current();
  greenlet g([&](tracked t) {
    value back = main.switch_to(std::move(t));
    return std::move(back).get<tracked>();
  });
  tracked first(std::string(100, 'a'));
  tracked echoed = g.switch_to(std::move(first)).get<tracked>();
  CHECK(echoed.payload == std::string(100, 'a'));
  tracked second(std::string(100, 'b'));
  tracked result = g.switch_to(std::move(second)).get<tracked>();
  CHECK(result.payload == std::string(100, 'b'));
  CHECK(tracked::copies == 0);
  CHECK(tracked::moves > 0);

  SECTION("a long std::string keeps its buffer across a round trip") {
    greenlet echo([&](std::string s) {
      std::string again = main.switch_to(std::move(s)).get<std::string>();
      return again;
    });
    std::string text(1000, 'q');
    const char* buffer = text.data();
    std::string back = echo.switch_to(std::move(text)).get<std::string>();
    CHECK(back.data() == buffer);
    std::string final_text = echo.switch_to(std::move(back)).get<std::string>();
    CHECK(final_text.data() == buffer);
    CHECK(final_text == std::string(1000, 'q'));
  }
}

TEST_CASE("a payload sent through a switch as an lvalue is copied once, and moved after",
          "[value][switch]") {
  tracked::reset();
  greenlet g([](value v) { return v; });
  tracked t("kept");
  tracked back = g.switch_to(t).get<tracked>();
  CHECK(tracked::copies == 1);
  CHECK(t.payload == "kept");
  CHECK(back.payload == "kept");
}

// A switch that carries nothing or one int must cost no allocation.
TEST_CASE("a switch round trip with no payload or an int makes no heap allocation",
          "[value][alloc][switch]") {
  constexpr int rounds = 10000;
  greenlet main = current();

  SECTION("main and one greenlet, nothing sent") {
    greenlet g([&] {
      for (;;) main.switch_to();
    });
    g.switch_to();  // started and suspended
    g.switch_to();  // and once more, to warm up anything lazy
    count_allocations counter;
    for (int i = 0; i < rounds; ++i) g.switch_to();
    const std::size_t allocated = counter.stop();
    CHECK(allocated == 0);
  }
  SECTION("main and one greenlet, an int each way") {
    greenlet g([&](int x) {
      for (;;) x = main.switch_to(x + 1).get<int>();
    });
    int x = g.switch_to(0).get<int>();
    x = g.switch_to(x).get<int>();
    count_allocations counter;
    for (int i = 0; i < rounds; ++i) x = g.switch_to(x).get<int>();
    const std::size_t allocated = counter.stop();
    CHECK(allocated == 0);
    CHECK(x == 2 + rounds);
  }
  SECTION("two already-started greenlets ping-pong, driven from main") {
    greenlet a;
    greenlet b;
    int count = 0;
    a = greenlet([&] {
      for (;;) {
        int n = b.switch_to(count).get<int>();  // b answers n
        ++count;
        if (n == -1) main.switch_to();
      }
    });
    b = greenlet([&](int) {
      for (;;) {
        int got = a.switch_to(count < rounds ? count : -1).get<int>();
        (void)got;
      }
    });
    a.switch_to();  // warm up: a and b run until count reaches rounds
    REQUIRE(count == rounds + 1);
    count = 0;
    count_allocations counter;
    a.switch_to();  // a resumes from main.switch_to() and ping-pongs rounds times again
    const std::size_t allocated = counter.stop();
    CHECK(allocated == 0);
    CHECK(count == rounds + 1);
  }
  SECTION("small trivially copyable payloads of 16 and 32 bytes") {
    greenlet g([&](value v) {
      for (;;) v = main.switch_to(std::move(v));
    });
    g.switch_to(small16{});
    g.switch_to(small32{});
    count_allocations counter;
    double acc = 0;
    for (int i = 0; i < rounds; ++i) {
      acc += g.switch_to(small16{1.0, 2.0}).get<small16>().y;
      acc += static_cast<double>(g.switch_to(small32{1, 2, 3, 4}).get<small32>().d);
    }
    const std::size_t allocated = counter.stop();
    CHECK(allocated == 0);
    CHECK(acc == 6.0 * rounds);
  }
}
