// The hub's event loop: one per thread, running in its own greenlet. It owns the run
// queue of ready greenlets, the timer heap, an epoll set for fd waits, an eventfd that
// other threads write to after posting a function, and the worker threads of
// `run_in_thread`. A blocking call parks a `waiter` (on the caller's own stack) where
// the thing it waits for can find it, and switches to the hub; whoever makes the thing
// ready puts the waiter on the run queue, and the hub switches back.
#ifndef GREENLETS_DETAIL_HUB_LOOP_HPP
#define GREENLETS_DETAIL_HUB_LOOP_HPP

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "greenlets/detail/config.hpp"
#include "greenlets/detail/hub_lists.hpp"
#include "greenlets/detail/sys.hpp"
#include "greenlets/detail/worker_pool.hpp"
#include "greenlets/error.hpp"
#include "greenlets/greenlet.hpp"
#include "greenlets/hub/errors.hpp"

namespace greenlets::detail {

using hub_clock = std::chrono::steady_clock;

class loop;

// An entry of the run queue: `run` is called in the hub when its turn comes.
struct run_hook : list_hook {
  void (*run)(run_hook&) = nullptr;
};

// A place in a wait list (an event's waiters, a task's joiners...).
struct wait_hook : list_hook {};

// A place in the hub's list of greenlets blocked in it.
struct blocked_hook : list_hook {};

// A place in the hub's list of live tasks.
struct task_hook : list_hook {
  void (*shut_down)(task_hook&) = nullptr;  // kills the task as its thread exits
};

struct waiter;
struct timeout_timer;

// An fd registered in the loop's epoll set by its owner for as long as it is open
// (sockets: edge-triggered, both directions); the loop hands its events to `on_event`.
struct fd_watcher {
  void (*on_event)(fd_watcher&, std::uint32_t events) noexcept = nullptr;
};

// Marks an epoll registration whose data is an `fd_watcher*`, not an fd (user-space
// pointers never have the top bit set).
inline constexpr std::uint64_t fd_watcher_tag = std::uint64_t{1} << 63;

// What the hub knows about a greenlet that blocks in it: one per task (inside the task),
// one for the main greenlet, one per other greenlet while it uses the hub.
struct wait_ctx : blocked_hook {
  greenlet self;
  waiter* blocked = nullptr;          // the wait it is suspended in
  timeout_timer* timeouts = nullptr;  // innermost armed `timeout` scope
  std::exception_ptr kill_pending;    // a kill for its next blocking point
  // What interrupted a C library call the patch made cooperative (greenlets/patch.hpp):
  // no exception may cross the C frames, so it waits here for the next blocking point in
  // C++ code. `deferred_scope` is the `timeout` scope it came from, if any.
  std::exception_ptr deferred;
  const timeout_timer* deferred_scope = nullptr;
  std::size_t undelivered = 0;  // expired timeouts not thrown yet
  bool raw = false;             // neither a task nor the main greenlet
};

// One blocking call in progress; lives on the blocked greenlet's stack.
struct waiter : run_hook, wait_hook {
  // `what` names the call (a string literal) and `object` what it waits on, for
  // run_info() and the gdb script: a few stores, nothing to free.
  waiter(wait_ctx& c, const char* what_, const void* object_ = nullptr) noexcept
      : ctx(&c), what(what_), object(object_) {
    run = &resume;
  }
  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;

  wait_ctx* ctx;
  std::exception_ptr error;  // thrown when it resumes
  void* slot = nullptr;      // what a queue hands over
  bool woken = false;        // on the run queue, or resumed: nothing else may wake it
  bool timed_out = false;
  bool granted = false;  // a semaphore's permit was handed over

  // What it waits for, for people: never read by the loop.
  const char* what;
  const void* object;
  int fd = -1;                    // an fd wait's fd
  hub_clock::time_point until{};  // the deadline, if the wait has one

  static void resume(run_hook& h);
};

// A timer that wakes a waiter at its deadline (the `_for`/`_until` calls and sleep).
struct deadline_timer : timer_node {
  waiter* w = nullptr;
};

// The part of a `timeout` scope the hub sees.
struct timeout_timer : timer_node {
  timeout_timer* outer = nullptr;
  wait_ctx* ctx = nullptr;
  hub_clock::duration length{};
  std::uint64_t fired = 0;  // when it expired, in firing order
  bool expired = false;
  bool delivered = false;
};

// Worded as the core's foreign-greenlet error; a hub object knows only its owner's id.
[[noreturn]] GREENLETS_COLD inline void throw_foreign_thread(const char* op,
                                                             std::thread::id owner) {
  std::ostringstream os;
  os << "greenlets: " << op << ": the object belongs to another thread (id " << owner
     << "); the current thread is " << thread_description(this_thread().record);
  throw error(os.str());
}

// Rule 9: hub objects belong to the thread that made them.
inline void check_thread(const char* op, std::thread::id owner) {
  if (std::this_thread::get_id() != owner) throw_foreign_thread(op, owner);
}

// The core's report, for a handle.
inline void report_unraisable(const greenlet& where, const std::exception_ptr& e,
                              std::string_view what) noexcept {
  report_unraisable(greenlet_access::get(where), e, what);
}

inline std::string format_duration(hub_clock::duration d) {
  char buf[64];
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  std::snprintf(buf, sizeof buf, "%g ms", ms);
  return buf;
}

class loop {
 public:
  // This thread's loop, created on first use.
  static loop& local() {
    loop* l = tls_loop_;
    return l != nullptr ? *l : create_local();
  }

  loop(const loop&) = delete;
  loop& operator=(const loop&) = delete;

  std::thread::id owner() const noexcept { return owner_; }
  const greenlet& hub_greenlet() const noexcept { return hub_; }

  // The record of the running greenlet; `op` names the caller in errors.
  wait_ctx& current_ctx(const char* op) {
    // Compared by address: no handle (and no reference count) on the common path.
    greenlet_impl* const now = running_greenlet();
    if (running_ != nullptr && greenlet_access::get(running_->self) == now) return *running_;
    if (now == greenlet_access::get(main_.self)) return main_;
    return other_ctx(op);
  }

  // The record of the running greenlet if it is a task or the main greenlet, else null
  // (the hub itself, a plain greenlet): the patch makes only those calls cooperative.
  wait_ctx* task_or_main_ctx() noexcept {
    greenlet_impl* const now = tls_switch.current;  // null without a thread state
    if (running_ != nullptr && greenlet_access::get(running_->self) == now) return running_;
    if (now == greenlet_access::get(main_.self)) return &main_;
    return nullptr;
  }

  // State the patch keeps per hub (its fd registrations); destroyed with the loop, after
  // the tasks were unwound.
  struct extension {
    virtual ~extension() = default;
  };
  std::unique_ptr<extension>& patch_state() noexcept { return patch_; }

  // current_ctx() for the hub itself (an error) and greenlets neither task nor main.
  GREENLETS_NOINLINE wait_ctx& other_ctx(const char* op) {
    greenlet me = current();
    if (me == hub_) {
      throw error(std::string("greenlets: ") + op +
                  ": cannot block inside the hub (a posted function or loop callback runs "
                  "there); spawn a task instead");
    }
    auto it = raw_.find(me);
    if (it == raw_.end()) {
      auto c = std::make_unique<wait_ctx>();
      c->self = me;
      c->raw = true;
      it = raw_.emplace(std::move(me), std::move(c)).first;
    }
    return *it->second;
  }

  // Forgets the record of a plain greenlet once nothing refers to it.
  void release_ctx(wait_ctx& c) noexcept {
    if (c.raw && c.blocked == nullptr && c.timeouts == nullptr && c.undelivered == 0 &&
        !c.kill_pending && !c.deferred) {
      forget_ctx(c);
      raw_.erase(c.self);
    }
  }

  // Blocks the running greenlet (whose record is w.ctx) until `w` is woken.
  // Throws: a pending kill or expired timeout first; then what the waker left in w.error.
  void block(waiter& w) {
    wait_ctx& c = *w.ctx;
    try {
      if (GREENLETS_UNLIKELY(c.kill_pending || c.undelivered != 0 || c.deferred)) {
        deliver_pending(c);
      }
      if (GREENLETS_UNLIKELY(dying_)) {
        throw error("greenlets: the thread's hub is shutting down; nothing may block now");
      }
      c.blocked = &w;
      blocked_.push_back(c);
      switch_out();
    } catch (...) {
      unpark(w);
      throw;
    }
    unpark(w);
    if (GREENLETS_UNLIKELY(w.error != nullptr)) {
      std::exception_ptr e = std::move(w.error);
      w.error = nullptr;
      std::rethrow_exception(e);
    }
  }

  // Blocks until `w` is woken or `deadline` passes; false if the deadline came first.
  bool block_until(waiter& w, hub_clock::time_point deadline) {
    deadline_timer t;
    t.w = &w;
    t.when = deadline;
    w.until = deadline;
    t.fire = [](timer_node& n) {
      auto& dt = static_cast<deadline_timer&>(n);
      dt.w->timed_out = true;
      local().wake(*dt.w);
    };
    arm(t);
    try {
      block(w);
    } catch (...) {
      timers_.erase(t);
      throw;
    }
    timers_.erase(t);
    return !w.timed_out;
  }

  // block_until(w, *until), or block(w) when there is no deadline.
  bool block_for(waiter& w, const hub_clock::time_point* until) {
    if (until != nullptr) return block_until(w, *until);
    block(w);
    return true;
  }

  // Puts `w` on the run queue unless it was woken already.
  void wake(waiter& w) noexcept {
    if (w.woken) return;
    w.woken = true;
    schedule(w);
  }

  // Wakes `w` so that its blocking call throws `e`.
  void fail(waiter& w, std::exception_ptr e) noexcept {
    if (w.woken) return;
    w.error = std::move(e);
    wake(w);
  }

  // Raises `e` in the greenlet of `c` at its blocking point: now if it is blocked
  // (even if already queued to resume, unless something was handed to it), else at its
  // next blocking call.
  void interrupt(wait_ctx& c, std::exception_ptr e) noexcept {
    if (c.blocked != nullptr && overridable(*c.blocked)) {
      c.blocked->error = std::move(e);
      wake(*c.blocked);
    } else if (!c.kill_pending) {
      c.kill_pending = std::move(e);
    }
  }

  // A wake-up may be turned into an exception unless the waiter was handed a permit or
  // an item (which the exception would lose).
  static bool overridable(const waiter& w) noexcept {
    return !w.woken || (!w.error && !w.granted && w.slot == nullptr);
  }

  void schedule(run_hook& h) noexcept {
    runq_.push_back(h);
    ++ready_;
  }
  void unschedule(run_hook& h) noexcept {
    if (h.linked()) {
      hook_list<run_hook>::erase(h);
      --ready_;
    }
  }

  // Arms `t` (reading the clock afresh is the caller's job: `when` is absolute).
  void arm(timer_node& t) { timers_.push(t); }
  void disarm(timer_node& t) noexcept { timers_.erase(t); }

  // Timeout scopes of the greenlet of `c`, innermost first.
  void push_timeout(timeout_timer& t) {
    t.outer = t.ctx->timeouts;
    t.ctx->timeouts = &t;
    t.fire = &fire_timeout;
    arm(t);
  }
  void pop_timeout(timeout_timer& t) noexcept {
    timers_.erase(t);
    wait_ctx& c = *t.ctx;
    if (t.expired && !t.delivered) {
      t.delivered = true;
      --c.undelivered;
    }
    // A timeout a patched C call stored for later means nothing outside its scope.
    if (GREENLETS_UNLIKELY(c.deferred_scope == &t)) {
      c.deferred = nullptr;
      c.deferred_scope = nullptr;
    }
    for (timeout_timer** p = &c.timeouts; *p != nullptr; p = &(*p)->outer) {
      if (*p == &t) {
        *p = t.outer;
        break;
      }
    }
    release_ctx(c);
  }

  // Any thread: runs `f` in the hub soon.
  void post(std::function<void()> f) {
    bool was_pending;
    {
      std::lock_guard<std::mutex> lock(post_mutex_);
      posts_.push_back(std::move(f));
      was_pending = posts_pending_.exchange(true, std::memory_order_acq_rel);
    }
    if (!was_pending) {
      const std::uint64_t one = 1;
      ssize_t n;
      do {
        n = sys::write(event_fd_, &one, sizeof one);
      } while (n < 0 && errno == EINTR);
    }
  }

  // Work another thread will finish (pending run_in_thread calls, async_result waits):
  // while any is pending, blocking is not a loop_exit.
  void add_foreign() noexcept { ++foreign_; }
  void remove_foreign() noexcept { --foreign_; }

  worker_pool& workers() {
    if (!workers_) workers_ = std::make_unique<worker_pool>(worker_count_);
    return *workers_;
  }
  void set_worker_count(std::size_t n) {
    if (n == 0) throw error("greenlets: set_thread_pool_size: the size must be at least 1");
    worker_count_ = n;
    if (workers_) workers_->resize(n);
  }
  std::size_t worker_count() const noexcept { return worker_count_; }

  // fd waits: one reader and one writer per fd.
  void wait_fd(waiter& w, int fd, bool write, const char* op, const hub_clock::time_point* until);
  void cancel_fd(int fd, std::exception_ptr e) noexcept;
  // True if a greenlet waits on `fd` in that direction through wait_fd().
  bool fd_waiting(int fd, bool write) const noexcept {
    auto it = fds_.find(fd);
    return it != fds_.end() && (write ? it->second.writer : it->second.reader) != nullptr;
  }

  // fd_watcher registrations: the epoll set, and the count of greenlets waiting on a
  // watcher (fd waits: the loop polls for them, and they keep loop_exit away).
  int epoll_handle() const noexcept { return epoll_fd_; }
  void add_fd_wait() noexcept { ++fd_waits_; }
  void remove_fd_wait() noexcept { --fd_waits_; }

  void add_task(task_hook& t) noexcept { tasks_.push_back(t); }
  static void remove_task(task_hook& t) noexcept {
    if (t.linked()) hook_list<task_hook>::erase(t);
  }

  // Waits for the loop to have nothing left to do (gevent.wait()).
  void wait_idle(waiter& w) {
    idle_.push_back(w);
    try {
      block(w);
    } catch (...) {
      if (static_cast<wait_hook&>(w).linked()) hook_list<wait_hook>::erase(w);
      throw;
    }
  }

  // For run_info(): this thread's loop if it has one, the greenlets blocked in it,
  // its live tasks.
  static loop* local_if_any() noexcept { return tls_loop_; }
  hook_list<blocked_hook>& blocked() noexcept { return blocked_; }
  hook_list<task_hook>& tasks() noexcept { return tasks_; }

  // The greenlet the hub is switching to, for current_ctx().
  void set_running(wait_ctx* c) noexcept { running_ = c; }
  // `c` is going away.
  void forget_ctx(wait_ctx& c) noexcept {
    if (running_ == &c) running_ = nullptr;
  }

 private:
  struct fd_slot {
    waiter* reader = nullptr;
    waiter* writer = nullptr;
    std::uint32_t events = 0;  // registered with epoll
  };

  struct owner_holder {
    loop* l = nullptr;
    ~owner_holder() { delete l; }
  };

  static inline thread_local loop* tls_loop_ = nullptr;
  static inline thread_local bool tls_destroyed_ = false;

  static loop& create_local() {
    // The core's per-thread state must exist first, so that it is destroyed after us.
    (void)current();
    if (tls_destroyed_) {
      throw error(
          "greenlets: hub: this thread's hub was already destroyed (the thread is exiting)");
    }
    thread_local owner_holder holder;
    holder.l = new loop();
    tls_loop_ = holder.l;
    return *holder.l;
  }

  loop() : owner_(std::this_thread::get_id()) {
    greenlet root = current();
    while (!root.is_main()) root = std::move(root).parent();
    main_.self = root;
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0)
      throw error(std::string("greenlets: hub: epoll_create1: ") + std::strerror(errno));
    event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (event_fd_ < 0) {
      sys::close(epoll_fd_);
      throw error(std::string("greenlets: hub: eventfd: ") + std::strerror(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = event_fd_;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev);
    options opts;
    opts.parent = root;
    opts.name = "hub";
    hub_ = greenlet([this] { run(); }, std::move(opts));
  }

 public:
  ~loop();

 private:
  // Leaves the blocking greenlet for the next waiter ready in this pass of the loop, if
  // any, directly: one switch instead of two through the hub, in the order the hub would
  // have taken. A pass that is over is followed by the next one here too when the hub's
  // poll between them would find nothing (no fd wait, no post, no timer due). Otherwise
  // (a task to start, something to poll, nothing ready) to the hub.
  void switch_out() {
    if (pass_left_ == 0 && ready_ > 0 && nothing_to_poll()) pass_left_ = ready_;
    if (pass_left_ > 0) {
      run_hook* h = runq_.front();
      if (h != nullptr && h->run == &waiter::resume) {
        runq_.pop_front();
        --ready_;
        --pass_left_;
        wait_ctx* next = static_cast<waiter&>(*h).ctx;
        set_running(next);
        next->self.switch_to();
        return;
      }
    }
    hub_.switch_to();
  }

  bool nothing_to_poll() const noexcept {
    if (fd_waits_ != 0 || posts_pending_.load(std::memory_order_acquire)) return false;
    return timers_.empty() || timers_.top_when() > hub_clock::now();
  }

  void unpark(waiter& w) noexcept {
    wait_ctx& c = *w.ctx;
    unschedule(w);
    if (c.blocked == &w) c.blocked = nullptr;
    if (static_cast<blocked_hook&>(c).linked()) hook_list<blocked_hook>::erase(c);
    release_ctx(c);
  }

  void deliver_pending(wait_ctx& c) {
    if (c.kill_pending) {
      std::exception_ptr e = std::move(c.kill_pending);
      c.kill_pending = nullptr;
      std::rethrow_exception(e);
    }
    if (c.deferred) {
      std::exception_ptr e = std::move(c.deferred);
      c.deferred = nullptr;
      c.deferred_scope = nullptr;
      std::rethrow_exception(e);
    }
    timeout_timer* first = nullptr;
    for (timeout_timer* t = c.timeouts; t != nullptr; t = t->outer) {
      if (t->expired && !t->delivered && (first == nullptr || t->fired < first->fired)) first = t;
    }
    if (first != nullptr) {
      first->delivered = true;
      --c.undelivered;
      throw timeout_error("greenlets: timeout: " + format_duration(first->length) + " elapsed");
    }
  }

  static void fire_timeout(timer_node& n) {
    auto& t = static_cast<timeout_timer&>(n);
    loop& l = local();
    t.expired = true;
    t.fired = ++l.fired_;
    wait_ctx& c = *t.ctx;
    if (c.blocked != nullptr && overridable(*c.blocked)) {
      t.delivered = true;
      c.blocked->error = std::make_exception_ptr(
          timeout_error("greenlets: timeout: " + format_duration(t.length) + " elapsed"));
      l.wake(*c.blocked);
    } else {
      ++c.undelivered;
    }
  }

  void run() {
    for (;;) {
      // Polling first: a greenlet that yields (also the one that started the hub)
      // resumes only after timers and fds had their turn.
      poll();
      if (posts_pending_.load(std::memory_order_acquire)) run_posts();
      // Only what was ready when this pass began: a task that yields again goes after
      // the next poll, so timers and fds are never starved.
      // A greenlet that blocks during the pass may run the next one itself (switch_out).
      pass_left_ = ready_;
      while (pass_left_ > 0) {
        --pass_left_;
        run_hook* h = runq_.pop_front();
        if (h == nullptr) break;
        --ready_;
        h->run(*h);
      }
    }
  }

  void run_posts() {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(post_mutex_);
      batch.swap(posts_);
      posts_pending_.store(false, std::memory_order_release);
    }
    for (auto& f : batch) {
      try {
        f();
      } catch (const greenlet_exit&) {
        throw;
      } catch (...) {
        report_unraisable(hub_, std::current_exception(), "a function posted to the hub threw");
      }
    }
  }

  void poll() {
    int ms;
    if (ready_ > 0 || posts_pending_.load(std::memory_order_acquire)) {
      ms = 0;
    } else if (!timers_.empty()) {
      const auto left = timers_.top_when() - hub_clock::now();
      if (left <= hub_clock::duration::zero()) {
        ms = 0;
      } else {
        const auto whole = std::chrono::ceil<std::chrono::milliseconds>(left).count();
        ms = whole > INT_MAX ? INT_MAX : static_cast<int>(whole);
      }
    } else if (fd_waits_ > 0 || foreign_ > 0) {
      ms = -1;
    } else {
      nothing_left();
      return;
    }
    // With no fd waits, a zero-time poll would only find the eventfd, whose posts the
    // flag above already announces: skip the system call.
    if (ms != 0 || fd_waits_ > 0) {
      epoll_event events[64];
      const int n = ::epoll_wait(epoll_fd_, events, 64, ms);
      for (int i = 0; i < n; ++i) on_fd_event(events[i]);
    }
    if (!timers_.empty()) {
      const auto now = hub_clock::now();
      while (!timers_.empty() && timers_.top_when() <= now) {
        timer_node* t = timers_.top();
        timers_.erase(*t);
        t->fire(*t);
      }
    }
  }

  void on_fd_event(const epoll_event& ev) {
    if ((ev.data.u64 & fd_watcher_tag) != 0) {
      auto* w =
          reinterpret_cast<fd_watcher*>(static_cast<std::uintptr_t>(ev.data.u64 & ~fd_watcher_tag));
      w->on_event(*w, ev.events);
      return;
    }
    if (ev.data.fd == event_fd_) {
      std::uint64_t count;
      while (sys::read(event_fd_, &count, sizeof count) > 0) {
      }
      return;
    }
    auto it = fds_.find(ev.data.fd);
    if (it == fds_.end()) return;
    const std::uint32_t bad = EPOLLHUP | EPOLLERR;
    if (it->second.reader != nullptr && (ev.events & (EPOLLIN | EPOLLRDHUP | bad))) {
      wake(*it->second.reader);
    }
    if (it->second.writer != nullptr && (ev.events & (EPOLLOUT | bad))) wake(*it->second.writer);
  }

  // Nothing is ready and nothing could become ready.
  void nothing_left() {
    if (!idle_.empty()) {
      while (wait_hook* h = idle_.pop_front()) wake(static_cast<waiter&>(*h));
      return;
    }
    auto e = std::make_exception_ptr(
        loop_exit("greenlets: loop_exit: this operation would block forever (no task is "
                  "ready and no timer, fd wait, run_in_thread call or post is pending)"));
    if (main_.blocked != nullptr && !main_.blocked->woken) {
      fail(*main_.blocked, e);
      return;
    }
    // The most recent blocker that is still blocked.
    for (list_hook* p = blocked_.back_hook(); p != nullptr; p = blocked_.prev_hook(p)) {
      auto& c = static_cast<wait_ctx&>(*static_cast<blocked_hook*>(p));
      if (c.blocked != nullptr && !c.blocked->woken) {
        fail(*c.blocked, e);
        return;
      }
    }
    // Nobody waits in the hub: the main greenlet is suspended elsewhere.
    set_running(&main_);
    main_.self.throw_to(e);
  }

  std::thread::id owner_;
  greenlet hub_;
  wait_ctx main_;
  wait_ctx* running_ = nullptr;
  std::unordered_map<greenlet, std::unique_ptr<wait_ctx>> raw_;
  hook_list<run_hook> runq_;
  std::size_t ready_ = 0;
  std::size_t pass_left_ = 0;  // entries of the run queue left in this pass of the loop
  hook_list<blocked_hook> blocked_;
  hook_list<wait_hook> idle_;
  hook_list<task_hook> tasks_;
  timer_heap timers_;
  std::uint64_t fired_ = 0;
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::unordered_map<int, fd_slot> fds_;
  std::size_t fd_waits_ = 0;
  std::size_t foreign_ = 0;
  std::mutex post_mutex_;
  std::vector<std::function<void()>> posts_;
  std::atomic<bool> posts_pending_{false};
  std::unique_ptr<worker_pool> workers_;
  std::size_t worker_count_ = 10;
  bool dying_ = false;
  std::unique_ptr<extension> patch_;
};

inline void waiter::resume(run_hook& h) {
  auto& w = static_cast<waiter&>(h);
  wait_ctx* c = w.ctx;
  loop& l = loop::local();
  l.set_running(c);
  try {
    c->self.switch_to();  // `w` may be gone once this returns
  } catch (const greenlet_exit&) {
    throw;  // the hub itself is being unwound
  } catch (...) {
    report_unraisable(l.hub_greenlet(), std::current_exception(),
                      "a greenlet resumed by the hub sent it an exception");
  }
}

inline void loop::wait_fd(waiter& w, int fd, bool write, const char* op,
                          const hub_clock::time_point* until) {
  if (fd < 0) throw error(std::string("greenlets: ") + op + ": invalid fd " + std::to_string(fd));
  fd_slot& s = fds_[fd];
  waiter*& mine = write ? s.writer : s.reader;
  if (mine != nullptr) {
    throw error(std::string("greenlets: ") + op + ": fd " + std::to_string(fd) +
                " already has a task waiting to " + (write ? "write" : "read"));
  }
  const std::uint32_t want = (s.reader != nullptr || !write ? EPOLLIN | EPOLLRDHUP : 0u) |
                             (s.writer != nullptr || write ? EPOLLOUT : 0u);
  epoll_event ev{};
  ev.events = want;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_fd_, s.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) != 0) {
    const int err = errno;
    if (s.reader == nullptr && s.writer == nullptr) fds_.erase(fd);
    throw error(std::string("greenlets: ") + op + ": cannot watch fd " + std::to_string(fd) + ": " +
                std::strerror(err));
  }
  s.events = want;
  mine = &w;
  w.fd = fd;
  ++fd_waits_;
  auto done = [&]() noexcept {
    --fd_waits_;
    fd_slot& t = fds_[fd];
    (write ? t.writer : t.reader) = nullptr;
    const std::uint32_t left =
        (t.reader != nullptr ? EPOLLIN | EPOLLRDHUP : 0u) | (t.writer != nullptr ? EPOLLOUT : 0u);
    if (left == 0) {
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);  // fails harmlessly if closed
      fds_.erase(fd);
    } else {
      epoll_event e2{};
      e2.events = left;
      e2.data.fd = fd;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &e2);
      t.events = left;
    }
  };
  try {
    block_for(w, until);
  } catch (...) {
    done();
    throw;
  }
  done();
}

inline void loop::cancel_fd(int fd, std::exception_ptr e) noexcept {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return;
  if (it->second.reader != nullptr) fail(*it->second.reader, e);
  if (it->second.writer != nullptr) fail(*it->second.writer, e);
}

// Parks `w` in `list` until it is woken (or `until` passes: then false); it leaves the
// list on every way out.
inline bool wait_in(loop& l, hook_list<wait_hook>& list, waiter& w,
                    const hub_clock::time_point* until) {
  list.push_back(w);
  bool in_time = true;
  try {
    in_time = l.block_for(w, until);
  } catch (...) {
    if (static_cast<wait_hook&>(w).linked()) hook_list<wait_hook>::erase(w);
    throw;
  }
  if (static_cast<wait_hook&>(w).linked()) hook_list<wait_hook>::erase(w);
  return in_time;
}

// The first waiter of `list` still waiting; waiters already woken (timed out, killed)
// are dropped from it on the way, as they are leaving anyway.
inline waiter* first_waiting(hook_list<wait_hook>& list) noexcept {
  while (wait_hook* h = list.front()) {
    auto& w = static_cast<waiter&>(*h);
    if (!w.woken) return &w;
    hook_list<wait_hook>::erase(w);
  }
  return nullptr;
}

inline loop::~loop() {
  dying_ = true;
  // Finish the worker threads first: their results are posted here.
  workers_.reset();
  // Unwind the tasks still suspended, then whatever else is blocked here.
  while (task_hook* t = tasks_.pop_front()) t->shut_down(*t);
  while (blocked_hook* b = blocked_.pop_front()) {
    auto& c = static_cast<wait_ctx&>(*b);
    if (c.raw && c.self.active()) {
      greenlet g = c.self;
      try {
        g.set_parent(current());
        g.throw_to();
      } catch (...) {
      }
    }
  }
  while (run_hook* h = runq_.pop_front()) (void)h;
  while (timer_node* t = timers_.top()) timers_.erase(*t);
  hub_ = greenlet();  // unwinds the loop itself
  sys::close(event_fd_);
  sys::close(epoll_fd_);
  tls_loop_ = nullptr;
  tls_destroyed_ = true;
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_HUB_LOOP_HPP
