// Introspection: greenlet ids and names, for_each_greenlet and run_info(), and names in
// the error messages.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <greenlets/greenlets.hpp>

using namespace std::chrono_literals;
using greenlets::greenlet;
using greenlets::greenlet_info;
using greenlets::greenlet_state;

namespace {

struct pipe_fds {
  int r = -1;
  int w = -1;
  pipe_fds() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
    r = fds[0];
    w = fds[1];
  }
  ~pipe_fds() {
    ::close(r);
    ::close(w);
  }
};

greenlet named(const char* name, greenlet parent = greenlet()) {
  greenlets::options o;
  o.name = name;
  o.parent = std::move(parent);
  return greenlet([] { greenlets::current().parent().switch_to(); }, std::move(o));
}

// The line of run_info() for the greenlet `id`.
std::string line_of(const std::string& info, std::uint64_t id) {
  std::istringstream in(info);
  std::string line;
  const std::string tag = "  #" + std::to_string(id) + " ";
  while (std::getline(in, line)) {
    if (line.rfind(tag, 0) == 0) return line;
  }
  return "<no line for #" + std::to_string(id) + ">";
}

// The milliseconds after "deadline in " in a line of run_info(), or -1 without one.
double deadline_ms(const std::string& line) {
  const std::string key = "deadline in ";
  const std::size_t at = line.find(key);
  return at == std::string::npos ? -1.0 : std::stod(line.substr(at + key.size()));
}

std::map<std::uint64_t, greenlet_info> by_id() {
  std::map<std::uint64_t, greenlet_info> all;
  greenlets::for_each_greenlet([&](const greenlet_info& i) { all[i.id] = i; });
  return all;
}

}  // namespace

TEST_CASE("greenlets have per-thread ids in creation order and optional names", "[debug]") {
  greenlet a = named("alpha");
  greenlet b([] {});
  CHECK(greenlets::current().is_main() == (greenlets::current().id() == 0));
  CHECK(b.id() == a.id() + 1);
  CHECK(a.name() == "alpha");
  CHECK(b.name().empty());
  b.set_name("beta");
  CHECK(b.name() == "beta");
  b.set_name("");
  CHECK(b.name().empty());
  CHECK_THROWS_AS(greenlet().id(), greenlets::error);
  CHECK_THROWS_AS(greenlet().set_name("x"), greenlets::error);
}

TEST_CASE("run_info shows suspended greenlets with names, states, parents and stacks", "[debug]") {
  greenlet one = named("first");
  greenlet two = named("second");
  greenlet three = named("third");
  greenlet fresh = named("never started");
  one.switch_to();
  two.switch_to();
  three.switch_to();

  const std::string info = greenlets::run_info();
  INFO(info);
  const std::uint64_t me = greenlets::current().id();
  CHECK(info.rfind("greenlets of thread #", 0) == 0);
  for (const greenlet* g : {&one, &two, &three}) {
    const std::string l = line_of(info, g->id());
    CHECK_THAT(l, Catch::Contains("\"" + g->name() + "\" greenlet suspended, parent #" +
                                  std::to_string(me) + ", stack 0x"));
    CHECK_THAT(l, Catch::Contains("bytes used"));
  }
  CHECK_THAT(line_of(info, me), Catch::Contains(" running"));
  // Unstarted greenlets are known only to their handles: not listed.
  CHECK_THAT(info, !Catch::Contains("never started"));

  auto all = by_id();
  REQUIRE(all.count(one.id()) == 1);
  const greenlet_info& i = all[one.id()];
  CHECK(i.state == greenlet_state::suspended);
  CHECK(i.handle == one);
  CHECK(i.name == "first");
  CHECK(std::string(i.kind) == "greenlet");
  CHECK(i.has_parent);
  CHECK(i.parent_id == me);
  CHECK(i.stack_used > 0);
  CHECK(static_cast<const char*>(i.stack_low) + i.stack_used <
        static_cast<const char*>(i.stack_high));
  CHECK(i.waits_on == nullptr);
  REQUIRE(all.count(0) == 1);
  CHECK(std::string(all[0].kind) == "main");
  CHECK_FALSE(all[0].has_parent);

  // A finished greenlet leaves the list.
  one.switch_to();
  CHECK(one.dead());
  CHECK(by_id().count(one.id()) == 0);
}

TEST_CASE("run_info shows what each hub task waits on: timer, fd, event, queue, join",
          "[debug][hub]") {
  greenlets::timeout deadline(10s);
  pipe_fds p;
  greenlets::event ev;
  greenlets::queue<int> q;
  auto sleeper = greenlets::spawn_named("sleeper", [] { greenlets::sleep(30s); });
  auto reader = greenlets::spawn_named("reader", [&] { greenlets::wait_readable(p.r); });
  auto waiter = greenlets::spawn([&] { ev.wait(); }).set_name("event waiter");
  auto getter = greenlets::spawn_named("getter", [&] { return q.get(); });
  auto joiner = greenlets::spawn_named("joiner", [&] { getter.join(); });
  auto later = greenlets::spawn_later(20s, [] {});
  later.set_name("later");
  greenlets::sleep(0s);  // each starts and blocks

  const std::string info = greenlets::run_info();
  INFO(info);
  const auto hub_id = greenlets::hub::current().handle().id();
  CHECK_THAT(line_of(info, hub_id), Catch::Contains("\"hub\" hub suspended"));
  const std::string parent = ", parent #" + std::to_string(hub_id);
  // The time left is at most the wait itself: exactly it when the hub's clock has not
  // moved on since the wait began.
  const std::string sleeping = line_of(info, sleeper.handle().id());
  CHECK_THAT(sleeping, Catch::Contains("\"sleeper\" task suspended" + parent) &&
                           Catch::Contains(": sleep, deadline in ") && Catch::EndsWith(" ms"));
  CHECK(deadline_ms(sleeping) > 20000.0);
  CHECK(deadline_ms(sleeping) <= 30000.0);
  CHECK_THAT(line_of(info, reader.handle().id()),
             Catch::EndsWith(": wait_readable fd " + std::to_string(p.r)));
  CHECK_THAT(line_of(info, waiter.handle().id()),
             Catch::Contains("\"event waiter\" task suspended") &&
                 Catch::EndsWith(": event::wait on " + greenlets::detail::format_address(&ev)));
  CHECK_THAT(line_of(info, getter.handle().id()),
             Catch::EndsWith(": queue::get on " + greenlets::detail::format_address(&q)));
  CHECK_THAT(line_of(info, joiner.handle().id()),
             Catch::EndsWith(": task::join of greenlet #" + std::to_string(getter.handle().id())));
  const std::string waiting = line_of(info, later.handle().id());
  CHECK_THAT(waiting, Catch::Contains("\"later\" task unstarted" + parent) &&
                          Catch::Contains(": spawn_later, deadline in "));
  CHECK(deadline_ms(waiting) > 10000.0);
  CHECK(deadline_ms(waiting) <= 20000.0);
  // The main greenlet runs; its own timeout scope is not a wait.
  CHECK_THAT(line_of(info, 0), Catch::EndsWith("main running"));

  auto all = by_id();
  const greenlet_info& r = all[reader.handle().id()];
  CHECK(std::string(r.kind) == "task");
  CHECK(std::string(r.waits_on) == "wait_readable");
  CHECK(r.wait_fd == p.r);
  CHECK_FALSE(r.has_deadline);
  const greenlet_info& s = all[sleeper.handle().id()];
  CHECK(s.has_deadline);
  CHECK(s.deadline > std::chrono::steady_clock::now() + 20s);
  CHECK(all[getter.handle().id()].wait_object == &q);

  // Waking them clears the descriptions.
  ev.set();
  q.put(7);
  REQUIRE(::write(p.w, "x", 1) == 1);
  joiner.join();
  reader.join();
  waiter.join();
  sleeper.kill();
  later.kill();
  CHECK(getter.get() == 7);
  const std::string after = greenlets::run_info();
  INFO(after);
  CHECK_THAT(after, !Catch::Contains("sleeper") && !Catch::Contains("wait_readable"));
}

TEST_CASE("a greenlet blocked in the hub outside a task shows its wait; run_info from a task",
          "[debug][hub]") {
  greenlets::timeout deadline(10s);
  greenlets::semaphore sem(0);
  greenlets::options o;
  o.name = "plain";
  greenlet g([&] { sem.acquire(); }, o);
  std::string from_task;
  auto t = greenlets::spawn_named("reporter", [&] {
    from_task = greenlets::run_info();
    sem.release();
  });
  g.switch_to();  // g blocks; the hub runs the reporter, which lets g finish
  CHECK(g.dead());
  CHECK(t.ready());
  INFO(from_task);
  CHECK_THAT(line_of(from_task, g.id()), Catch::Contains("\"plain\" greenlet suspended") &&
                                             Catch::Contains(": semaphore::acquire on 0x"));
  CHECK_THAT(line_of(from_task, t.handle().id()), Catch::Contains("\"reporter\" task running"));
  CHECK_THAT(line_of(from_task, 0), Catch::EndsWith("main suspended"));
}

TEST_CASE("errors and reports name the greenlet", "[debug]") {
  greenlet g;
  std::thread([&] {
    greenlets::options o;
    o.name = "elsewhere";
    g = greenlet([] {}, o);
  }).join();
  try {
    g.switch_to();
    FAIL("no error");
  } catch (const greenlets::error& e) {
    CHECK_THAT(e.what(), Catch::Contains("target (greenlet #1) belongs to another thread"));
  }
  CHECK_THROWS_WITH(g.name(), Catch::Contains("name: the greenlet (greenlet #1)"));

  std::vector<std::string> seen;
  auto old =
      greenlets::set_unraisable_handler([&](const greenlet& where, std::exception_ptr,
                                            std::string_view) { seen.push_back(where.name()); });
  {
    auto t = greenlets::spawn_named("thrower", [] { throw std::runtime_error("lost"); });
    t.join();
  }
  greenlets::set_unraisable_handler(old);
  CHECK(seen == std::vector<std::string>{"thrower"});
}

TEST_CASE("run_info names waits on a mutex, a full queue, an async_result and run_in_thread",
          "[debug][hub]") {
  greenlets::timeout deadline(10s);
  greenlets::mutex m;
  m.lock();
  greenlets::queue<int> full(1);
  full.put(1);
  greenlets::async_result<int> result;
  std::atomic<bool> release{false};
  auto locker = greenlets::spawn_named("locker", [&] {
    m.lock();
    m.unlock();
  });
  auto putter = greenlets::spawn_named("putter", [&] { full.put(2); });
  auto waiter = greenlets::spawn_named("result waiter", [&] { return result.get(); });
  auto offloader = greenlets::spawn_named("offloader", [&] {
    greenlets::run_in_thread([&] {
      while (!release) std::this_thread::sleep_for(1ms);
    });
  });
  greenlets::sleep(0s);

  const std::string info = greenlets::run_info();
  INFO(info);
  CHECK_THAT(line_of(info, locker.handle().id()),
             Catch::EndsWith(": mutex::lock on " + greenlets::detail::format_address(&m)));
  CHECK_THAT(line_of(info, putter.handle().id()),
             Catch::EndsWith(": queue::put on " + greenlets::detail::format_address(&full)));
  CHECK_THAT(line_of(info, waiter.handle().id()), Catch::Contains(": async_result::get on 0x"));
  CHECK_THAT(line_of(info, offloader.handle().id()), Catch::Contains(": run_in_thread on 0x"));

  m.unlock();
  CHECK(full.get() == 1);
  CHECK(full.get() == 2);
  result.set(5);
  release = true;
  locker.join();
  putter.join();
  CHECK(waiter.get() == 5);
  offloader.join();
}
