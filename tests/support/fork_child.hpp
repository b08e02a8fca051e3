// Running a piece of a test in a forked child, for what must not happen in the test
// process itself: a deliberate crash, an abort, exhausting the process's mappings.
//
//   test_support::child_result r = test_support::run_child([] { std::abort(); });
//   CHECK(r.aborted());
//   CHECK(r.err.empty());
#ifndef GREENLETS_TESTS_SUPPORT_FORK_CHILD_HPP
#define GREENLETS_TESTS_SUPPORT_FORK_CHILD_HPP

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <string>
#include <type_traits>

#include <catch2/catch.hpp>

namespace test_support {

// How a child ended, and what it wrote to stderr.
struct child_result {
  int status = 0;   // as waitpid reports it
  std::string err;  // everything the child wrote to stderr

  bool aborted() const { return killed_by(SIGABRT); }
  bool killed_by(int sig) const { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }
  bool exited_with(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
  // The exit status, or 128 + the signal that killed the child (as a shell reports it).
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }
};

namespace child_side {

inline void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w > 0) {
      done += static_cast<std::size_t>(w);
    } else if (w == 0 || errno != EINTR) {
      return;
    }
  }
}

// The child's side: runs `body` and returns its exit status.
template <class F>
int run_body(F& body) {
  try {
    if constexpr (std::is_invocable_v<F&, std::string&>) {
      std::string out;
      const int code = body(out);
      write_all(STDERR_FILENO, out);
      return code;
    } else if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      body();
      return 0;
    } else {
      return body();
    }
  } catch (const std::exception& e) {
    write_all(STDERR_FILENO, std::string("unexpected exception: ") + e.what() + "\n");
  } catch (...) {
    write_all(STDERR_FILENO, "unexpected exception\n");
  }
  return 99;
}

}  // namespace child_side

// Runs `body` in a forked child and waits for it to end.
//
// In the child, stderr goes to a pipe the parent reads into `err`, stdout is dropped,
// and SIGSEGV and SIGABRT have their default action (not Catch2's handlers), so that
// they act as in a program of their own. `body` takes nothing or a `std::string& out`
// (written to stderr once it returns) and returns the child's exit status, or nothing
// for 0; an exception escaping it exits with 99. The child never returns into Catch2.
//
// Fork copies only the calling thread: call this while the test runs no other thread.
template <class F>
child_result run_child(F body) {
  std::fflush(nullptr);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[1]);
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, STDOUT_FILENO);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGSEGV, &dfl, nullptr);
    ::sigaction(SIGABRT, &dfl, nullptr);
    ::_exit(child_side::run_body(body));
  }
  ::close(fds[1]);
  child_result r;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      r.err.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  pid_t waited;
  while ((waited = ::waitpid(pid, &r.status, 0)) < 0 && errno == EINTR) {
  }
  REQUIRE(waited == pid);
  // Shown with the test's next assertion, so that a failing one comes with the reason.
  UNSCOPED_INFO("child exit code " << r.exit_code() << ", stderr:\n" << r.err);
  return r;
}

}  // namespace test_support

#endif  // GREENLETS_TESTS_SUPPORT_FORK_CHILD_HPP
