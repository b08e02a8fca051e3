// Scale: many suspended greenlets at once, their resident memory, and the kernel's
// mapping limit ("Stacks" in docs/semantics.md).
//
// The non-hidden cases hold 20,000 greenlets; `[.stress]` holds 1,000,000 (the release
// CI job runs it with `greenlets_tests "[.stress]"`). Memory is measured as VmRSS from
// /proc/self/status; under AddressSanitizer, ThreadSanitizer or valgrind the numbers
// mean nothing, so there the cases run and check everything but the memory bounds.
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "greenlets/greenlets.hpp"

#include "support/fork_child.hpp"
#include "support/valgrind.hpp"

using greenlets::current;
using greenlets::greenlet;

namespace {

constexpr std::size_t kib = 1024;

// Whether resident memory reflects what the library uses (no sanitizer or valgrind).
bool memory_is_measurable() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
  return false;
#endif
#endif
  return !test_support::under_valgrind();
}

// Whether the process's mappings are only the program's: ThreadSanitizer adds shadow
// mappings for each of the program's and keeps them after it unmaps.
bool mappings_are_measurable() {
#if defined(GREENLETS_TSAN)
  return false;
#else
  return true;
#endif
}

// A field of /proc/self/status in KiB ("VmRSS", "VmPTE").
std::size_t status_kib(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  REQUIRE(f != nullptr);
  char line[256];
  std::size_t value = 0;
  const std::size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
      value = std::strtoull(line + n + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return value;
}

// The pages the kernel may take back at any moment without writing them anywhere
// (given back with MADV_FREE), in KiB: part of VmRSS until it does.
std::size_t lazy_free_kib() {
  std::FILE* f = std::fopen("/proc/self/smaps_rollup", "r");
  REQUIRE(f != nullptr);
  char line[256];
  std::size_t value = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "LazyFree:", 9) == 0) value = std::strtoull(line + 9, nullptr, 10);
  }
  std::fclose(f);
  return value;
}

// Minor page faults of the process so far.
long minor_faults() {
  ::rusage u{};
  REQUIRE(::getrusage(RUSAGE_SELF, &u) == 0);
  return u.ru_minflt;
}

// Read here rather than through the library's own helpers, so that the test measures
// independently of the code under test.
std::size_t count_mappings() {  // lines of /proc/self/maps
  std::size_t lines = 0;
  std::FILE* f = std::fopen("/proc/self/maps", "r");
  REQUIRE(f != nullptr);
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) {
    lines += static_cast<std::size_t>(std::count(buffer, buffer + n, '\n'));
  }
  std::fclose(f);
  return lines;
}

std::size_t max_map_count() {
  std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r");
  REQUIRE(f != nullptr);
  unsigned long value = 0;
  const int read = std::fscanf(f, "%lu", &value);
  std::fclose(f);
  REQUIRE(read == 1);
  return value;
}

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

// Internals the test checks and nothing public shows: how many chunks of stacks this
// thread's pool has mapped,
std::size_t pool_chunks() { return greenlets::detail::stack_pool::local()->chunk_count(); }
// how many free stacks of one size the pool caches (an internal tuning),
constexpr std::size_t pool_cache = greenlets::detail::stack_pool::max_cached_per_size;
// how many bytes of spare greenlet records this thread keeps,
std::size_t spare_block_bytes() { return greenlets::detail::tls_blocks.bytes; }
// how many free slots it may give back lazily (MADV_FREE),
constexpr std::size_t lazy_slots = greenlets::detail::stack_pool::max_lazy;
// and whether guard pages are madvise markers (chosen by the pool at its first stack).
bool madvise_guards() { return greenlets::detail::guard_pages_use_madvise(); }

// Trims the pool and counts the chunks still mapped: those that stacks in use elsewhere
// on this thread keep (a hub's, when other tests ran in this process first; none under
// ctest, which runs each test alone). A test's own stacks must leave exactly these.
std::size_t trim_and_count_chunks() {
  greenlets::trim_stack_pool();
  return pool_chunks();
}

// Makes the pool guard its stacks by mprotect, as on a kernel without
// MADV_GUARD_INSTALL: an internal switch, as no public option should force the slow way.
void force_mprotect_guards() {
  greenlets::detail::guard_mode.store(greenlets::detail::guard_mprotect);
}

// True if the kernel is at least major.minor.
bool kernel_at_least(int major, int minor) {
  ::utsname u{};
  if (::uname(&u) != 0) return false;
  int ma = 0;
  int mi = 0;
  if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

// Whether `p` can be read, without touching it ourselves: the kernel copies from it
// into a pipe and reports EFAULT for a guard page.
bool readable(const void* p) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const bool ok = ::write(fds[1], p, 1) == 1;
  ::close(fds[0]);
  ::close(fds[1]);
  return ok;
}

// The body of each held greenlet: touch 1 KiB of its stack, then wait forever (until
// dropped).
void touch_and_wait() {
  volatile char buffer[1024];
  for (std::size_t i = 0; i < sizeof buffer; i += 64) buffer[i] = static_cast<char>(i);
  current().parent().switch_to();
  (void)buffer[0];
}

struct scale_result {
  double rss_per_greenlet = 0;         // bytes
  double pte_per_greenlet = 0;         // bytes of page tables (not part of VmRSS)
  long long rss_after_drop = 0;        // KiB above the start, before any trim
  long long lazy_after_drop = 0;       // KiB of it given back with MADV_FREE
  long long blocks_after_drop = 0;     // KiB of it kept as spare greenlet records
  long long rss_after_trim = 0;        // KiB above the start, after trim_stack_pool and malloc_trim
  long long heap_free_after_drop = 0;  // KiB malloc keeps free (not given back) after the drop
  std::size_t pool_after_drop = 0;
  std::size_t chunks_at_start = 0;  // see trim_and_count_chunks()
  std::size_t chunks_after_drop = 0;
  std::size_t chunks_held = 0;
  std::size_t mappings_added = 0;
  std::size_t unwound = 0;
};

// Holds `n` suspended greenlets from the default allocator, each having touched 1 KiB
// of stack, then drops them all (newest first) and trims.
scale_result hold_and_drop(std::size_t n) {
  scale_result r;
  r.chunks_at_start = trim_and_count_chunks();
  malloc_trim(0);
  std::size_t unwound = 0;
  struct count_unwind {
    std::size_t* unwound;
    ~count_unwind() { ++*unwound; }
  };
  std::vector<greenlet> held;
  held.reserve(n);
  const std::size_t maps_before = count_mappings();
  const std::size_t rss_before = status_kib("VmRSS");
  const std::size_t pte_before = status_kib("VmPTE");
  const std::size_t heap_free_before = mallinfo2().fordblks;
  for (std::size_t i = 0; i < n; ++i) {
    held.emplace_back([&unwound] {
      count_unwind c{&unwound};
      touch_and_wait();
    });
    held.back().switch_to();
  }
  const std::size_t rss_held = status_kib("VmRSS");
  const std::size_t pte_held = status_kib("VmPTE");
  r.mappings_added = count_mappings() - maps_before;
  r.chunks_held = pool_chunks();
  for (const greenlet& g : held) REQUIRE(g.active());
  r.rss_per_greenlet = static_cast<double>(rss_held - rss_before) * kib / static_cast<double>(n);
  r.pte_per_greenlet = static_cast<double>(pte_held - pte_before) * kib / static_cast<double>(n);

  while (!held.empty()) held.pop_back();
  std::vector<greenlet>().swap(held);
  r.unwound = unwound;
  r.pool_after_drop = greenlets::stack_pool_size();
  r.chunks_after_drop = pool_chunks();
  r.rss_after_drop =
      static_cast<long long>(status_kib("VmRSS")) - static_cast<long long>(rss_before);
  r.lazy_after_drop = static_cast<long long>(lazy_free_kib());
  r.blocks_after_drop = static_cast<long long>(spare_block_bytes() / kib);
  r.heap_free_after_drop =
      (static_cast<long long>(mallinfo2().fordblks) - static_cast<long long>(heap_free_before)) /
      static_cast<long long>(kib);
  greenlets::trim_stack_pool();
  // glibc keeps freed records in its heap until the top of the heap is free; ask it to
  // give back the pages of free chunks, so what remains is what anyone still holds.
  malloc_trim(0);
  r.rss_after_trim =
      static_cast<long long>(status_kib("VmRSS")) - static_cast<long long>(rss_before);
  return r;
}

void check_scale(std::size_t n, const scale_result& r) {
  // Every greenlet was unwound by the drop, its stack came back, and the pool keeps at
  // most its cache ready. Emptied chunks stay mapped for the next burst, never more than
  // were in use at the peak (their pages are given back: see the resident bound below).
  CHECK(r.unwound == n);
  CHECK(r.pool_after_drop <= pool_cache);
  CHECK(r.chunks_after_drop <= r.chunks_held);
  CHECK(greenlets::stack_pool_size() == 0);
  CHECK(pool_chunks() == r.chunks_at_start);
  // Stacks are mapped in chunks of up to 64: far fewer mmap calls than greenlets.
  CHECK(r.chunks_held <= n / 64 + 8);
  if (madvise_guards() && mappings_are_measurable()) {
    // Guard pages as page-table markers: no mapping per stack.
    CHECK(r.mappings_added <= r.chunks_held + 8);
  }

  if (!memory_is_measurable()) {
    WARN("memory bounds not checked: running under a sanitizer or valgrind");
    return;
  }
  WARN(n << " suspended greenlets: resident memory " << r.rss_per_greenlet
         << " bytes per greenlet (bound 6144), page tables " << r.pte_per_greenlet
         << " bytes per greenlet (not part of VmRSS); after dropping them all: " << r.rss_after_drop
         << " KiB above the start, of which " << r.lazy_after_drop << " KiB lazily freed stacks, "
         << r.blocks_after_drop << " KiB spare greenlet records, and malloc holds "
         << r.heap_free_after_drop
         << " KiB free; after trim_stack_pool and malloc_trim: " << r.rss_after_trim << " KiB");
  // The 6 KiB bound: one touched stack page (the guard page costs nothing
  // resident), the heap record and our share of the vector of handles.
  CHECK(r.rss_per_greenlet <= 6144);
  // After the drop, what is still resident beyond a few MiB (the pool's cache: 256 stacks
  // whose unwinding touched a few pages each, at most 256 more free slots not yet given
  // back, malloc's own bookkeeping) is free heap memory that malloc keeps, or stack pages
  // given back lazily, which the kernel takes when it needs them (at most
  // GREENLETS_LAZY_FREE_STACKS slots of them, each with the few pages its greenlet
  // touched), or spare greenlet records the thread keeps for the next ones (at most
  // GREENLETS_BLOCK_CACHE_BYTES).
  CHECK(r.lazy_after_drop <= static_cast<long long>(lazy_slots * 4 * page_size() / kib));
  CHECK(r.blocks_after_drop <= static_cast<long long>(GREENLETS_BLOCK_CACHE_BYTES / kib));
  CHECK(r.rss_after_drop <=
        16 * 1024 + r.heap_free_after_drop + r.lazy_after_drop + r.blocks_after_drop);
  CHECK(r.rss_after_trim <= 8 * 1024);
}

}  // namespace

TEST_CASE("madvise guard pages add no mapping per stack, and the guards still fault",
          "[stack][scale]") {
  // 100,000 raw stacks from the default pool, never run.
  constexpr std::size_t n = 100000;
  const std::size_t chunks_at_start = trim_and_count_chunks();
  greenlets::stack_resource* pool = greenlets::pooled_stacks().resource();
  std::vector<greenlets::stack_context> stacks;
  stacks.reserve(n);
  const std::size_t before = count_mappings();
  for (std::size_t i = 0; i < n; ++i)
    stacks.push_back(pool->allocate(greenlets::default_stack_size));
  const std::size_t after = count_mappings();
  INFO("mappings before " << before << ", after " << after);
  if (kernel_at_least(6, 13)) {
    // This kernel has MADV_GUARD_INSTALL: the pool must be using it.
    REQUIRE(madvise_guards());
  }
  if (!mappings_are_measurable()) {
    WARN("mapping counts not checked: ThreadSanitizer adds mappings of its own");
  } else if (madvise_guards()) {
    CHECK(after - before <= n / 64 + 8);
  } else {
    WARN("no MADV_GUARD_INSTALL on this kernel: guard pages by mprotect");
  }
  CHECK(pool_chunks() <= n / 64 + 8);
  // Every few thousandth stack: its lowest byte is readable, the page below is not.
  for (std::size_t i = 0; i < n; i += 997) {
    const char* lowest = static_cast<const char*>(stacks[i].sp) - stacks[i].size;
    CHECK(stacks[i].size == greenlets::default_stack_size);
    CHECK(readable(lowest));
    CHECK_FALSE(readable(lowest - 1));
  }
  for (const greenlets::stack_context& sc : stacks) pool->deallocate(sc);
  greenlets::trim_stack_pool();
  CHECK(pool_chunks() == chunks_at_start);
  if (mappings_are_measurable()) CHECK(count_mappings() <= before + 2);
}

TEST_CASE("a stack given back to a full pool keeps its guard page when its slot is reused",
          "[stack][scale]") {
  const std::size_t chunks_at_start = trim_and_count_chunks();
  greenlets::stack_resource* pool = greenlets::pooled_stacks().resource();
  constexpr std::size_t n = 1000;  // past the cache of 256: slots go back to their chunks
  std::vector<greenlets::stack_context> stacks;
  for (std::size_t i = 0; i < n; ++i) stacks.push_back(pool->allocate(64 * kib));
  for (const greenlets::stack_context& sc : stacks) {
    std::memset(static_cast<char*>(sc.sp) - 8 * kib, 0x5a, 8 * kib);
  }
  for (const greenlets::stack_context& sc : stacks) pool->deallocate(sc);
  CHECK(greenlets::stack_pool_size() == pool_cache);
  std::vector<greenlets::stack_context> again;
  for (std::size_t i = 0; i < n; ++i) again.push_back(pool->allocate(64 * kib));
  for (const greenlets::stack_context& sc : again) {
    const char* lowest = static_cast<const char*>(sc.sp) - sc.size;
    CHECK(readable(lowest));
    CHECK_FALSE(readable(lowest - 1));
  }
  // Two stacks handed out at once never overlap.
  std::vector<std::uintptr_t> tops;
  for (const greenlets::stack_context& sc : again)
    tops.push_back(reinterpret_cast<std::uintptr_t>(sc.sp));
  std::sort(tops.begin(), tops.end());
  for (std::size_t i = 1; i < tops.size(); ++i) CHECK(tops[i] - tops[i - 1] >= 64 * kib + 4096);
  for (const greenlets::stack_context& sc : again) pool->deallocate(sc);
  greenlets::trim_stack_pool();
  CHECK(pool_chunks() == chunks_at_start);
}

TEST_CASE(
    "after 10,000 stacks come back, 10,000 more reuse their chunks with guard pages in place, "
    "and trimming unmaps them all",
    "[stack][scale]") {
  constexpr std::size_t n = 10000;
  const std::size_t chunks_at_start = trim_and_count_chunks();
  greenlets::stack_resource* pool = greenlets::pooled_stacks().resource();
  const std::size_t before = count_mappings();
  std::vector<greenlets::stack_context> stacks;
  stacks.reserve(n);
  for (std::size_t i = 0; i < n; ++i) stacks.push_back(pool->allocate(64 * kib));
  for (const greenlets::stack_context& sc : stacks) {
    std::memset(static_cast<char*>(sc.sp) - 4 * kib, 0x5a, 4 * kib);
  }
  const std::size_t chunks_held = pool_chunks();
  for (const greenlets::stack_context& sc : stacks) pool->deallocate(sc);
  stacks.clear();
  // Every chunk stays mapped, though only the cache is ready.
  CHECK(pool_chunks() == chunks_held);
  CHECK(greenlets::stack_pool_size() == pool_cache);
  const std::size_t mappings_dropped = count_mappings();

  for (std::size_t i = 0; i < n; ++i) stacks.push_back(pool->allocate(64 * kib));
  CHECK(pool_chunks() == chunks_held);  // nothing new mapped
  if (mappings_are_measurable()) CHECK(count_mappings() == mappings_dropped);
  for (std::size_t i = 0; i < n; i += 97) {
    const char* lowest = static_cast<const char*>(stacks[i].sp) - stacks[i].size;
    CHECK(readable(lowest));
    CHECK_FALSE(readable(lowest - 1));
  }
  for (const greenlets::stack_context& sc : stacks) pool->deallocate(sc);
  CHECK(pool_chunks() == chunks_held);

  greenlets::trim_stack_pool();
  CHECK(greenlets::stack_pool_size() == 0);
  CHECK(pool_chunks() == chunks_at_start);
  if (mappings_are_measurable()) CHECK(count_mappings() <= before + 2);
}

TEST_CASE(
    "without MADV_GUARD_INSTALL, greenlets fill vm.max_map_count and then fail with "
    "an error that names it",
    "[stack][scale]") {
  const std::size_t limit = max_map_count();
  REQUIRE(limit > 0);
  test_support::child_result r = test_support::run_child([](std::string& out) {
    force_mprotect_guards();
    std::vector<greenlet> held;
    held.reserve(100000);
    for (;;) {
      held.emplace_back([] { current().parent().switch_to(); });
      try {
        held.back().switch_to();
      } catch (const greenlets::error& e) {
        // The greenlet that could not get a stack never started.
        const bool unstarted = !held.back().started() && !held.back().dead();
        out = std::to_string(held.size() - 1) + "\n" + e.what() + "\n";
        return unstarted ? 0 : 2;
      } catch (const std::bad_alloc&) {
        out = std::to_string(held.size() - 1) + "\nbare std::bad_alloc\n";
        return 3;
      }
      if (held.size() == 100000) {
        out = "100000 greenlets and no failure\n";
        return 4;
      }
    }
  });
  INFO(r.err);
  REQUIRE(r.exit_code() == 0);
  const std::size_t held = std::stoul(r.err);
  // Two mappings per stack (guard, stack), minus what the process had already.
  CHECK(held > limit / 2 - 2000);
  CHECK(held <= limit / 2);
  CHECK_THAT(r.err, Catch::Contains("vm.max_map_count (" + std::to_string(limit) + ")"));
  CHECK_THAT(r.err, Catch::Contains("greenlets: stack allocation"));
  CHECK_THAT(r.err, Catch::Contains("MADV_GUARD_INSTALL"));
}

TEST_CASE(
    "at vm.max_map_count both a failing mmap and a failing guard mprotect name the "
    "limit",
    "[stack][scale]") {
  test_support::child_result r = test_support::run_child([](std::string& out) {
    force_mprotect_guards();
    const std::size_t page = page_size();
    // Use up the mappings with single pages that never merge (alternating protections).
    std::vector<void*> fillers;
    fillers.reserve(70000);
    for (int prot = PROT_READ;; prot = prot == PROT_READ ? PROT_NONE : PROT_READ) {
      void* p = ::mmap(nullptr, page, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) break;
      fillers.push_back(p);
      if (fillers.size() == 70000) return 5;
    }
    greenlets::stack_resource* pool = greenlets::pooled_stacks().resource();
    try {
      pool->allocate(64 * 1024);
      out += "mmap: no failure\n";
    } catch (const greenlets::error& e) {
      out += std::string("mmap: ") + e.what() + "\n";
    }
    // One mapping free: the chunk's mmap takes it, its first guard page cannot split it.
    ::munmap(fillers.back(), page);
    fillers.pop_back();
    try {
      pool->allocate(64 * 1024);
      out += "mprotect: no failure\n";
    } catch (const greenlets::error& e) {
      out += std::string("mprotect: ") + e.what() + "\n";
    }
    // The failed chunk was unmapped again: a mapping is free, and plain mmap works.
    void* p = ::mmap(nullptr, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? 6 : 0;
  });
  INFO(r.err);
  CHECK(r.exit_code() == 0);
  CHECK_THAT(r.err, Catch::Contains("mmap: greenlets: stack allocation: mmap failed with "
                                    "ENOMEM"));
  CHECK_THAT(r.err, Catch::Contains("mprotect: greenlets: stack allocation: mprotect of a "
                                    "guard page failed with ENOMEM"));
  CHECK_THAT(r.err, Catch::Contains("vm.max_map_count"));
  CHECK_THAT(r.err, !Catch::Contains("no failure"));
}

TEST_CASE("an mmap too large for the address space is still std::bad_alloc", "[stack][scale]") {
  greenlets::stack_resource* guarded = greenlets::guarded_stacks().resource();
  CHECK_THROWS_AS(guarded->allocate(std::size_t{1} << 62), std::bad_alloc);
}

TEST_CASE(
    "20,000 suspended greenlets take at most 6 KiB resident each and give it back when "
    "dropped",
    "[stack][scale][rule6]") {
  constexpr std::size_t n = 20000;
  const scale_result r = hold_and_drop(n);
  check_scale(n, r);
}

TEST_CASE(
    "1,000,000 suspended greenlets with guard pages fit, at most 6 KiB resident each, "
    "and give it back when dropped",
    "[.stress][stack][scale][rule6]") {
  constexpr std::size_t n = 1000000;
  const scale_result r = hold_and_drop(n);
  check_scale(n, r);
}

TEST_CASE(
    "stacks given back lazily are handed out again without a page fault, until "
    "trim_stack_pool empties them",
    "[stack][scale]") {
  // 4,096 greenlets, far more than the pool caches ready (256), each touching a page.
  constexpr std::size_t n = 4096;
  static_assert(n > pool_cache && n < lazy_slots);
  auto hold = [] {
    std::vector<greenlet> held;
    held.reserve(n);
    const long before = minor_faults();
    for (std::size_t i = 0; i < n; ++i) {
      held.emplace_back([] { touch_and_wait(); });
      held.back().switch_to();
    }
    return minor_faults() - before;
  };
  greenlets::trim_stack_pool();
  const long first = hold();
  const long again = hold();
  greenlets::trim_stack_pool();
  const long after_trim = hold();
  INFO("minor page faults holding " << n << " greenlets: first " << first << ", again " << again
                                    << ", after trim_stack_pool " << after_trim);
  if (!memory_is_measurable()) {
    WARN("page faults not checked: the sanitizer or valgrind touches memory of its own");
    return;
  }
  // Fresh slots fault in their pages; reused ones do not (the heap records are reused
  // either way); trimmed ones fault again.
  CHECK(first >= static_cast<long>(n / 2));
  CHECK(again <= static_cast<long>(n / 8));
  CHECK(after_trim >= static_cast<long>(n / 2));
}
