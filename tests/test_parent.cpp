// Parents: who a greenlet's result goes to, re-parenting at any time, cycles, the main
// greenlet's missing parent, and a child keeping its parent alive (rule 8 of
// docs/semantics.md).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

using greenlets::current;
using greenlets::greenlet;
using greenlets::value;

// greenlet: test_greenlet.py::TestGreenlet::test_parent_equals_None,
// docs/creating_executing_greenlets.rst (glet.parent is greenlet.getcurrent())
TEST_CASE("a greenlet's parent defaults to the greenlet that created it", "[parent][rule8]") {
  greenlet g([] {});
  CHECK(g.parent() == current());

  greenlet created_inside;
  greenlet outer([&] { created_inside = greenlet([] {}); });
  outer.switch_to();
  CHECK(created_inside.parent() == outer);

  SECTION("options with an empty parent also mean the current greenlet") {
    greenlet h([] {}, greenlets::options{});
    CHECK(h.parent() == current());
  }
}

TEST_CASE("a greenlet can be created with an explicit parent", "[parent][rule8]") {
  greenlet p([] {});
  greenlet a([] {}, p);
  CHECK(a.parent() == p);
  greenlets::options opts;
  opts.parent = p;
  greenlet b([] {}, opts);
  CHECK(b.parent() == p);
}

TEST_CASE("an empty handle cannot be a parent", "[parent][rule8]") {
  CHECK_THROWS_AS(greenlet([] {}, greenlet()), greenlets::error);
  greenlet g([] {});
  CHECK_THROWS_AS(g.set_parent(greenlet()), greenlets::error);
  CHECK_THROWS_WITH(g.set_parent(greenlet()),
                    Catch::Contains("set_parent") && Catch::Contains("empty"));
  CHECK(g.parent() == current());
}

// greenlet: test_greenlet.py::TestGreenletSetParentErrors::test_main_greenlet_parent_is_none
TEST_CASE("the main greenlet's parent is an empty handle", "[parent][rule8]") {
  greenlet main = current();
  REQUIRE(main.is_main());
  CHECK(main.parent().empty());
  CHECK(main.parent() == greenlet());
  greenlet g([&] { return main.parent().empty(); });
  CHECK(g.switch_to().get<bool>());
}

// greenlet: test_greenlet.py::TestGreenletSetParentErrors::test_trivial_cycle_main
TEST_CASE("the main greenlet cannot be given a parent", "[parent][rule8]") {
  greenlet main = current();
  greenlet g([] {});
  CHECK_THROWS_AS(main.set_parent(main), greenlets::error);
  CHECK_THROWS_WITH(main.set_parent(g), Catch::Contains("set_parent") && Catch::Contains("main"));
  CHECK(main.parent().empty());
  // nor from inside another greenlet
  greenlet h([&] {
    CHECK_THROWS_AS(main.set_parent(current()), greenlets::error);
    return main.parent().empty();
  });
  CHECK(h.switch_to().get<bool>());
}

// greenlet: test_greenlet.py::TestGreenletSetParentErrors::test_trivial_cycle
TEST_CASE("a greenlet cannot be its own parent", "[parent][rule8]") {
  greenlet g([] {});
  CHECK_THROWS_AS(g.set_parent(g), greenlets::error);
  CHECK_THROWS_WITH(g.set_parent(g), Catch::Contains("cycle"));
  CHECK(g.parent() == current());
  // still usable afterwards
  g.switch_to();
  CHECK(g.dead());
}

// greenlet: test_greenlet.py::TestGreenletSetParentErrors::test_deeper_cycle
TEST_CASE("a deeper parent cycle is rejected", "[parent][rule8]") {
  greenlet g1([] {});
  greenlet g2([] {});
  greenlet g3([] {});
  g1.set_parent(g2);
  g2.set_parent(g3);
  CHECK_THROWS_AS(g3.set_parent(g1), greenlets::error);
  CHECK_THROWS_WITH(g3.set_parent(g1), Catch::Contains("cycle"));
  CHECK_THROWS_WITH(g3.set_parent(g2), Catch::Contains("cycle"));
  CHECK(g3.parent() == current());
  CHECK(g2.parent() == g3);
  CHECK(g1.parent() == g2);

  SECTION("a cycle through a running greenlet is rejected too") {
    greenlet main = current();
    greenlet a;
    a = greenlet([&] {
      greenlet child([] {});  // parent: a
      CHECK_THROWS_WITH(a.set_parent(child), Catch::Contains("cycle"));
      return a.parent() == main;
    });
    CHECK(a.switch_to().get<bool>());
  }
}

// greenlet: test_greenlet.py::TestGreenlet::test_exception (g2.parent = g1 while suspended)
TEST_CASE("a suspended greenlet can be re-parented, and its result then goes to the new parent",
          "[parent][rule8][rule2]") {
  greenlet main = current();
  greenlet receiver([&] {
    value v = main.switch_to();
    return "receiver got " + std::move(v).get<std::string>();
  });
  receiver.switch_to();
  greenlet g([&] {
    main.switch_to();
    return std::string("g's result");
  });
  g.switch_to();
  REQUIRE(g.active());
  g.set_parent(receiver);
  CHECK(g.parent() == receiver);
  CHECK(g.switch_to().get<std::string>() == "receiver got g's result");
  CHECK(g.dead());
  CHECK(receiver.dead());
}

// greenlet: test_greenlet.py::TestGreenlet::test_exception (the exception goes to the new parent)
TEST_CASE("an exception escaping a re-parented greenlet goes to the new parent",
          "[parent][rule8][rule3]") {
  struct some_error {};
  greenlet main = current();
  greenlet receiver([&] {
    try {
      main.switch_to();
    } catch (const some_error&) {
      return std::string("receiver caught it");
    }
    return std::string("receiver resumed normally");
  });
  receiver.switch_to();
  greenlet g([&] {
    main.switch_to();
    throw some_error{};
  });
  g.switch_to();
  g.set_parent(receiver);
  CHECK(g.switch_to().get<std::string>() == "receiver caught it");
  CHECK(g.dead());
}

// greenlet: docs/creating_executing_greenlets.rst, CAPITests::test_setparent
TEST_CASE("set_parent works before start, while running, and after death", "[parent][rule8]") {
  greenlet main = current();
  greenlet p1([&] {
    value v = main.switch_to();
    return "p1:" + std::to_string(std::move(v).get<int>());
  });
  greenlet p2([&] {
    value v = main.switch_to();
    return "p2:" + std::to_string(std::move(v).get<int>());
  });
  p1.switch_to();
  p2.switch_to();

  SECTION("before start") {
    greenlet g([] { return 1; });
    g.set_parent(p1);
    CHECK(g.parent() == p1);
    CHECK(g.switch_to().get<std::string>() == "p1:1");
  }
  SECTION("while running, from inside itself") {
    greenlet g([&] {
      current().set_parent(p2);
      return 2;
    });
    CHECK(g.parent() == main);
    CHECK(g.switch_to().get<std::string>() == "p2:2");
    CHECK(g.parent() == p2);
  }
  SECTION("after death") {
    greenlet g([] { return 3; });
    CHECK(g.switch_to().get<int>() == 3);
    REQUIRE(g.dead());
    g.set_parent(p1);
    CHECK(g.parent() == p1);
    // switching to the dead greenlet now goes to its new parent (rule 4)
    CHECK(g.switch_to(4).get<std::string>() == "p1:4");
  }
}

TEST_CASE("a parent set twice keeps only the last one", "[parent][rule8]") {
  greenlet p1([] {});
  greenlet p2([] {});
  greenlet g([] {});
  g.set_parent(p1);
  g.set_parent(p2);
  CHECK(g.parent() == p2);
  g.set_parent(current());
  CHECK(g.parent() == current());
}

TEST_CASE("current().parent() inside a greenlet is the greenlet it returns to", "[parent][rule8]") {
  greenlet main = current();
  greenlet middle;
  greenlet leaf_parent;
  middle = greenlet([&] {
    greenlet leaf([&] {
      leaf_parent = current().parent();
      current().parent().switch_to(1);
      return 2;
    });
    int a = leaf.switch_to().get<int>();
    int b = leaf.switch_to().get<int>();
    return a * 10 + b;
  });
  CHECK(middle.switch_to().get<int>() == 12);
  CHECK(leaf_parent == middle);
  CHECK(middle.parent() == main);
}

// ---------------------------------------------------------------------------
// A child keeps its parent alive

TEST_CASE("a child keeps its suspended parent alive", "[parent][rule8][lifetime]") {
  greenlet main = current();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  bool parent_frame_gone = false;
  greenlet child;
  {
    greenlet parent([&, token = std::move(token)] {
      struct on_exit {
        bool& flag;
        ~on_exit() { flag = true; }
      } guard{parent_frame_gone};
      child = greenlet([] { return 5; });  // parent: this greenlet
      value v = main.switch_to();
      return "parent got " + std::to_string(std::move(v).get<int>()) + " from " +
             std::to_string(*token);
    });
    parent.switch_to();
    REQUIRE(parent.active());
    CHECK(child.parent() == parent);
  }  // the only handle outside the child is gone

  CHECK_FALSE(parent_frame_gone);
  CHECK_FALSE(watch.expired());
  greenlet p = child.parent();
  CHECK(p.active());
  CHECK_FALSE(p.is_main());
  p = greenlet();

  // the child finishes into its parent, which returns to main
  CHECK(child.switch_to().get<std::string>() == "parent got 5 from 0");
  CHECK(parent_frame_gone);  // it ran to its end normally
  CHECK(child.dead());
  CHECK(child.parent().dead());
  child = greenlet();
  CHECK(watch.expired());
}

TEST_CASE("a child keeps its unstarted parent alive, and starts it when it finishes",
          "[parent][rule8][lifetime][rule4]") {
  auto token = std::make_shared<int>(100);
  std::weak_ptr<int> watch = token;
  greenlet child;
  {
    greenlet parent([token = std::move(token)](int x) { return x + *token; });
    child = greenlet([] { return 23; }, parent);
  }
  CHECK_FALSE(watch.expired());  // the parent's run (and what it owns) is still there
  CHECK_FALSE(child.parent().started());
  CHECK(child.switch_to().get<int>() == 123);
  CHECK(child.parent().dead());
  child = greenlet();
  CHECK(watch.expired());
}

TEST_CASE("a chain stays valid while any greenlet in it is referenced",
          "[parent][rule8][lifetime]") {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  greenlet leaf;
  {
    greenlet top([token = std::move(token)](int x) { return x + 1; });
    greenlet middle([](int x) { return x * 10; }, top);
    leaf = greenlet([] { return 4; }, middle);
  }
  CHECK(leaf.parent().parent().parent() == current());
  CHECK_FALSE(watch.expired());
  // leaf -> middle(4) -> top(40) -> main(41)
  CHECK(leaf.switch_to().get<int>() == 41);
  CHECK(leaf.parent().dead());
  CHECK(leaf.parent().parent().dead());
  leaf = greenlet();
  CHECK(watch.expired());
}

TEST_CASE("re-parenting releases the old parent", "[parent][rule8][lifetime]") {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  greenlet g([] {});
  {
    greenlet old_parent([token = std::move(token)] {});
    g.set_parent(old_parent);
  }
  CHECK_FALSE(watch.expired());
  g.set_parent(current());
  CHECK(watch.expired());
}
