// Guard pages: the memory under guarded stacks, and the errors when the kernel
// refuses it. Used by stack.hpp and the per-thread pool (stack_pool.hpp).
//
// A guarded stack is one mapping (or one slot of a larger one): a guard page at the
// bottom, then the stack. The guard is a page-table marker, madvise(MADV_GUARD_INSTALL)
// (Linux 6.13), where the kernel has it, which adds no mapping; otherwise mprotect
// (PROT_NONE), which splits the mapping in two, so vm.max_map_count then limits how
// many stacks a process holds.
#ifndef GREENLETS_DETAIL_GUARD_PAGES_HPP
#define GREENLETS_DETAIL_GUARD_PAGES_HPP

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include <boost/context/stack_context.hpp>

#include "greenlets/error.hpp"

namespace greenlets::detail {

using boost::context::stack_context;

// The kernel's page size: the unit of stacks and of guard pages.
inline std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

// `size` rounded up to whole pages, and to at least 16 KiB.
inline std::size_t round_to_pages(std::size_t size) noexcept {
  constexpr std::size_t minimum = std::size_t{16} * 1024;
  if (size < minimum) size = minimum;
  const std::size_t page = page_size();
  return (size + page - 1) / page * page;
}

#ifdef MADV_GUARD_INSTALL
inline constexpr int madv_guard_install = MADV_GUARD_INSTALL;
#else
inline constexpr int madv_guard_install = 102;  // Linux 6.13; older headers lack it
#endif

// How guard pages are made: learnt from the first stack, or forced by tests.
enum guard_kind : int {
  guard_unknown = 0,
  guard_madvise = 1,   // madvise(MADV_GUARD_INSTALL): a page-table marker, no new mapping
  guard_mprotect = 2,  // mprotect(PROT_NONE): splits the mapping, two per stack
};
inline std::atomic<int> guard_mode{guard_unknown};

// Whether process_madvise(PIDFD_SELF) takes MADV_GUARD_INSTALL (Linux 6.13+), so a whole
// chunk of stacks gets its guard pages in one system call: 0 unknown, 1 yes, 2 no.
inline std::atomic<int> guard_batch_mode{0};

// Whether guard pages are page-table markers (known once the first stack is made).
inline bool guard_pages_use_madvise() noexcept { return guard_mode.load() == guard_madvise; }

// vm.max_map_count, or 0 if it cannot be read.
inline std::size_t read_max_map_count() noexcept {
  std::size_t value = 0;
  if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    unsigned long v = 0;
    if (std::fscanf(f, "%lu", &v) == 1) value = v;
    std::fclose(f);
  }
  return value;
}

// How many memory mappings this process has now (lines of /proc/self/maps).
inline std::size_t count_mappings() noexcept {
  std::size_t lines = 0;
  if (std::FILE* f = std::fopen("/proc/self/maps", "r")) {
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) {
      for (std::size_t i = 0; i < n; ++i) lines += buffer[i] == '\n';
    }
    std::fclose(f);
  }
  return lines;
}

[[noreturn]] inline void throw_map_count_reached(const char* call, std::size_t mappings,
                                                 std::size_t limit) {
  throw error(std::string("greenlets: stack allocation: ") + call +
              " failed with ENOMEM: this process has " + std::to_string(mappings) +
              " memory mappings and reached the kernel's limit vm.max_map_count (" +
              std::to_string(limit) +
              "). Without madvise(MADV_GUARD_INSTALL) (Linux 6.13) each guarded stack takes two "
              "mappings; raise the limit with `sysctl -w vm.max_map_count=...`, hold fewer "
              "greenlets, or use greenlets::malloc_stacks() (no guard pages)");
}

// mmap failed: out of address space or memory (std::bad_alloc), or at vm.max_map_count.
[[noreturn]] inline void throw_mmap_failure(int err) {
  if (err == ENOMEM) {
    const std::size_t limit = read_max_map_count();
    const std::size_t mappings = count_mappings();
    if (limit != 0 && mappings + 2 >= limit) throw_map_count_reached("mmap", mappings, limit);
  }
  throw std::bad_alloc();
}

// mprotect fails with ENOMEM on a mapped range only when the split needs a mapping
// over vm.max_map_count (or the kernel is out of memory for one).
[[noreturn]] inline void throw_mprotect_failure(int err) {
  if (err == ENOMEM)
    throw_map_count_reached("mprotect of a guard page", count_mappings(), read_max_map_count());
  throw error(std::string("greenlets: stack allocation: mprotect of a guard page failed: ") +
              std::strerror(err));
}

// One guard page at the bottom of each of `n` slots of `slot` bytes from `base`, all in
// one mapping: page-table markers where the kernel has them (one call for the lot with
// process_madvise), else mprotect. Throws with the mapping left for the caller to unmap.
inline void install_guards(char* base, std::size_t slot, std::size_t n) {
  constexpr std::size_t max_batch = 64;
  const std::size_t guard = page_size();
  if (guard_mode.load(std::memory_order_relaxed) != guard_mprotect) {
#ifdef SYS_process_madvise
    if (n > 1 && n <= max_batch && guard_batch_mode.load(std::memory_order_relaxed) != 2) {
      constexpr int pidfd_self = -10000;  // PIDFD_SELF, Linux 6.15
      ::iovec iov[max_batch];
      for (std::size_t i = 0; i < n; ++i) {
        iov[i].iov_base = base + i * slot;
        iov[i].iov_len = guard;
      }
      const long done = ::syscall(SYS_process_madvise, pidfd_self, iov, n, madv_guard_install, 0U);
      if (done == static_cast<long>(n * guard)) {
        guard_batch_mode.store(1, std::memory_order_relaxed);
        guard_mode.store(guard_madvise, std::memory_order_relaxed);
        return;
      }
      if (done < 0 && guard_batch_mode.load(std::memory_order_relaxed) == 0) {
        guard_batch_mode.store(2, std::memory_order_relaxed);
      }
      // Otherwise partly done: installing a marker again is harmless.
    }
#endif
    std::size_t i = 0;
    while (i < n && ::madvise(base + i * slot, guard, madv_guard_install) == 0) ++i;
    if (i == n) {
      guard_mode.store(guard_madvise, std::memory_order_relaxed);
      return;
    }
    const int err = errno;
    if (err == ENOMEM || err == EAGAIN) throw std::bad_alloc();  // no memory for page tables
    // EINVAL: an old kernel, or a mapping it will not mark (mlockall'd memory):
    // mprotect instead, for this chunk (and for good if the very first one failed).
    if (i == 0 && guard_mode.load(std::memory_order_relaxed) == guard_unknown) {
      guard_mode.store(guard_mprotect, std::memory_order_relaxed);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (::mprotect(base + i * slot, guard, PROT_NONE) != 0) throw_mprotect_failure(errno);
  }
}

// Whether this thread has mapped a guarded stack: its greenlets can then overflow into
// a guard page, so overflow.hpp sets up the report when the next greenlet starts.
inline thread_local bool tls_made_guarded_stack = false;

// `bytes` of fresh memory for guarded stacks, or throws.
inline char* map_stack_memory(std::size_t bytes) {
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) throw_mmap_failure(errno);
  tls_made_guarded_stack = true;
  return static_cast<char*>(base);
}

// A stack of `size` usable bytes with one guard page below it, in its own mapping.
inline stack_context map_guarded_stack(std::size_t size) {
  size = round_to_pages(size);
  const std::size_t guard = page_size();
  char* base = map_stack_memory(size + guard);
  try {
    install_guards(base, size + guard, 1);
  } catch (...) {
    ::munmap(base, size + guard);
    throw;
  }
  stack_context sc;
  sc.size = size;
  sc.sp = base + guard + size;
  return sc;
}

// Unmaps a stack that map_guarded_stack returned.
inline void unmap_guarded_stack(stack_context sc) noexcept {
  const std::size_t guard = page_size();
  ::munmap(static_cast<char*>(sc.sp) - sc.size - guard, sc.size + guard);
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_GUARD_PAGES_HPP
