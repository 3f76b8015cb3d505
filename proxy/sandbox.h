#pragma once
// Process hardening (issue #11), applied by Server::run in this order:
//   1. at the very start: no core files (RLIMIT_CORE 0) and not dumpable (PR_SET_DUMPABLE 0), so
//      neither a crash nor a ptrace/`/proc/PID/mem` reader of the same uid sees key material;
//   2. before binding: resolve [process] user/group, refuse root without `user` or `allow_root`;
//   3. after binding every listener and the admin socket: drop to user/group (all threads);
//   4. last: the seccomp allow-list (every thread, SECCOMP_FILTER_FLAG_TSYNC, no_new_privs).
// Everything after step 4 runs under the filter: serving, SIGHUP/admin reload (it binds added
// listeners, reads config and key files, builds SSL_CTXs), certificate rotation, health checks,
// getaddrinfo in libuv's thread pool, the audit writer, drain and exit.

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "config/config.h"
#include "proxy/base/result.h"

namespace fp::proxy::sandbox {

// Step 1. Never fails the start: each failure is returned for the log.
Result<void> disable_core_dumps();

struct Identity {
  bool change = false;  // false: keep the current uid/gid
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user, group;  // names as resolved (or the numeric ids)
  bool init_groups = false; // take the user's supplementary groups from /etc/group
};

// Step 2. Error (ConfigInvalid) when the user or group does not exist
// ("file:line:col: process.user: no such user 'x'"). With `for_run` (not for `check`) also when
// switching needs root and we are not root, or when the result would run as root without
// `allow_root = true`.
Result<Identity> resolve_identity(const config::ProcessSettings& p, bool for_run);

// Just before step 3 (as root): the access log and the live audit log this process created or
// opened as root become owned by the target user (nginx does the same), so a reload can reopen
// them after the drop. Only files owned by root are touched. Errors as "PATH: reason".
std::string hand_over_log_files(const config::Snapshot& cfg, const Identity& id);

// After step 3: what the dropped process must still reach, checked with its own credentials:
// the config file and every cert/key/CA/CRL file readable (reload, rotation), the access log
// writable (reopened by every reload), the audit log and its directory writable (rotation).
// Every problem as "PATH: reason", joined by newlines; empty when all is well.
std::string check_access_after_drop(const config::Snapshot& cfg, const std::string& config_path,
                                    const Identity& id);

// Step 3. setgroups/initgroups, setresgid, setresuid (glibc applies them to every thread), then
// checks that root cannot be regained. Error (Io) with the failing call.
Result<void> drop_privileges(const Identity& id);

// Step 4. Mode Off: nothing. Kill: a syscall outside the list kills the whole process (SIGSYS,
// SECCOMP_RET_KILL_PROCESS). Log: it is allowed and the kernel logs it (SECCOMP_RET_LOG; audit
// type 1326 in dmesg / audit.log), for finding what a new environment needs. A foreign
// architecture (x86 32-bit or x32 calls on x86_64) is always killed.
Result<void> install_seccomp(config::SeccompMode mode);

// The number of syscalls the filter allows on this architecture.
size_t allowed_syscall_count();

// /proc/self/status fields for the startup log: "NoNewPrivs=1 Seccomp=2 ...".
std::string status_summary();

// Test builds only (fipsproxy_testhooks, tests/hooks/sandbox_hook.cc): called right after the
// filter is installed, on the control thread ("control") and on worker 0 ("worker"); null in the
// shipped binary.
extern void (*g_test_after_sandbox)(const char* thread);

}  // namespace fp::proxy::sandbox
