// 13 — Choosing a greenlet's stack: its size and where it comes from.
//
// Every greenlet runs on a stack of its own, given when it starts and taken back when
// it ends. By default a stack is 256 KiB of address space (only the pages it touches
// cost memory), has a guard page below it so an overflow faults instead of corrupting
// memory, and comes from a per-thread pool, so a new greenlet usually reuses the stack
// of one that finished. `options` chooses per greenlet: `stack_size` (rounded up to
// whole pages, at least 16 KiB) and `allocator` — `pooled_stacks()` (the default),
// `guarded_stacks()` (a fresh mapping each time, unmapped at the end), `malloc_stacks()`
// (no guard page, no mapping: for code whose depth you know), or your own
// `stack_resource`.
//
// Not in the tutorial, and Python has no equivalent: Python greenlet runs every
// greenlet on the thread's stack and copies the slices it needs to the heap when it
// switches. In Python the program below is simply
//
//   g = greenlet(run)
#include <cstddef>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <new>

#include <greenlets/greenlets.hpp>

// A stack_resource of our own: stacks from malloc, and a line for each call.
class logging_stacks : public greenlets::stack_resource {
 public:
  greenlets::stack_context allocate(std::size_t size) override {
    void* base = std::malloc(size);
    if (base == nullptr) throw std::bad_alloc();
    std::cout << "  logging_stacks: allocate " << size / 1024 << " KiB\n";
    greenlets::stack_context sc;
    sc.size = size;
    sc.sp = static_cast<char*>(base) + size;  // stacks grow down: sp is the top
    return sc;
  }
  void deallocate(greenlets::stack_context sc) noexcept override {
    std::cout << "  logging_stacks: deallocate " << sc.size / 1024 << " KiB\n";
    std::free(static_cast<char*>(sc.sp) - sc.size);
  }
};

// Uses some stack: 50 frames of a little over 100 bytes, well within the smallest
// stack here (on a malloc stack, going past the end would corrupt the heap silently).
int deep(int n) {
  volatile char frame[100] = {};
  return n == 0 ? frame[0] : deep(n - 1) + 1 + frame[n % 100];
}

void run() { std::cout << "  depth " << deep(50) << '\n'; }

int main() {
  std::cout << "default: pooled, guarded, " << greenlets::default_stack_size / 1024 << " KiB\n";
  std::cout << "  free stacks in this thread's pool: " << greenlets::stack_pool_size() << '\n';
  greenlets::greenlet(run).switch_to();  // takes a stack, gives it back to the pool
  std::cout << "  free stacks in this thread's pool: " << greenlets::stack_pool_size() << '\n';
  greenlets::greenlet(run).switch_to();  // reuses that stack: no system call
  std::cout << "  free stacks in this thread's pool: " << greenlets::stack_pool_size() << '\n';

  std::cout << "guarded, 64 KiB, not pooled\n";
  greenlets::options guarded;
  guarded.stack_size = std::size_t{64} * 1024;
  guarded.allocator = greenlets::guarded_stacks();
  greenlets::greenlet(run, guarded).switch_to();
  std::cout << "  free stacks in this thread's pool: " << greenlets::stack_pool_size() << '\n';

  std::cout << "malloc, 32 KiB, no guard page\n";
  greenlets::options unguarded;
  unguarded.stack_size = std::size_t{32} * 1024;
  unguarded.allocator = greenlets::malloc_stacks();
  greenlets::greenlet(run, unguarded).switch_to();

  std::cout << "our own resource, 20000 bytes asked\n";
  greenlets::options own;
  own.stack_size = 20000;  // rounded up to whole pages: 20 KiB
  own.allocator = greenlets::stack_allocator(std::make_shared<logging_stacks>());
  {
    greenlets::greenlet g(run, own);
    std::cout << "  created: no stack yet\n";
    g.switch_to();  // the stack is allocated as it starts, and given back as it ends
    std::cout << "  dead: " << std::boolalpha << g.dead() << '\n';
  }

  greenlets::trim_stack_pool();  // unmaps the free stacks the pool keeps
  std::cout << "after trim_stack_pool: " << greenlets::stack_pool_size() << '\n';
}

// Expected output:
// default: pooled, guarded, 256 KiB
//   free stacks in this thread's pool: 0
//   depth 50
//   free stacks in this thread's pool: 1
//   depth 50
//   free stacks in this thread's pool: 1
// guarded, 64 KiB, not pooled
//   depth 50
//   free stacks in this thread's pool: 1
// malloc, 32 KiB, no guard page
//   depth 50
// our own resource, 20000 bytes asked
//   created: no stack yet
//   logging_stacks: allocate 20 KiB
//   depth 50
//   logging_stacks: deallocate 20 KiB
//   dead: true
// after trim_stack_pool: 0
