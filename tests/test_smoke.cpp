#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

TEST_CASE("a greenlet returns its result to the parent", "[switch][rule2]") {
  greenlets::greenlet g([](int a, int b) { return a + b; });
  CHECK(g.switch_to(2, 3).get<int>() == 5);
  CHECK(g.dead());
}
