#include "proxy/sandbox.h"

#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(FIPSPROXY_SANITIZE_BUILD)
#include <sanitizer/common_interface_defs.h>
#endif

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <optional>
#include <vector>

namespace fp::proxy::sandbox {

void (*g_test_after_sandbox)(const char* thread) = nullptr;

namespace {

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "proxy/sandbox.cc: seccomp allow-list written for x86_64 and aarch64 only"
#endif

// Every syscall the proxy makes after initialisation (config/REFERENCE.md [process] lists the
// groups). Found by reading what libuv 1.44, glibc 2.36 (pthreads, NSS, the stub resolver),
// BoringSSL and our own code call, then confirmed by running the integration tests with
// `seccomp = "log"` and reading the audit records (type=1326) in dmesg. aarch64 has no legacy
// calls (open, stat, poll, epoll_wait, ...): the #ifdefs drop what an architecture lacks.
const std::vector<long>& allowed() {
  static const std::vector<long> kList = {
  // Descriptors and plain I/O.
#define FP_SC(name) __NR_##name,
      FP_SC(read) FP_SC(write) FP_SC(readv) FP_SC(writev) FP_SC(pread64) FP_SC(pwrite64)
      FP_SC(preadv) FP_SC(pwritev) FP_SC(preadv2) FP_SC(pwritev2) FP_SC(lseek) FP_SC(close)
      FP_SC(dup) FP_SC(dup3) FP_SC(fcntl) FP_SC(ioctl) FP_SC(pipe2) FP_SC(eventfd2)
      // Files: config, certificates, keys, CRLs (reload and rotation), logs, /proc/self.
      FP_SC(openat) FP_SC(fstat) FP_SC(newfstatat) FP_SC(statx) FP_SC(faccessat) FP_SC(faccessat2)
      FP_SC(readlinkat) FP_SC(getdents64) FP_SC(getcwd) FP_SC(fsync) FP_SC(fdatasync)
      FP_SC(ftruncate) FP_SC(renameat) FP_SC(renameat2) FP_SC(unlinkat) FP_SC(fstatfs) FP_SC(statfs)
      FP_SC(inotify_init1) FP_SC(inotify_add_watch) FP_SC(inotify_rm_watch)
      // Sockets: accept, upstream connects, UDS fd handoff between workers, listeners added by a
      // reload, health checks, the resolver (UDP/TCP to the name server, netlink for
      // AI_ADDRCONFIG).
      FP_SC(socket) FP_SC(socketpair) FP_SC(connect) FP_SC(accept4) FP_SC(bind) FP_SC(listen)
      FP_SC(getsockname) FP_SC(getpeername) FP_SC(setsockopt) FP_SC(getsockopt) FP_SC(shutdown)
      FP_SC(sendto) FP_SC(recvfrom) FP_SC(sendmsg) FP_SC(recvmsg) FP_SC(sendmmsg) FP_SC(recvmmsg)
      // Event loops.
      FP_SC(epoll_create1) FP_SC(epoll_ctl) FP_SC(epoll_pwait) FP_SC(epoll_pwait2) FP_SC(ppoll)
      FP_SC(pselect6)
      // Memory.
      FP_SC(mmap) FP_SC(munmap) FP_SC(mprotect) FP_SC(mremap) FP_SC(brk) FP_SC(madvise)
      FP_SC(membarrier)
      // Threads (libuv's pool, the audit writer) and their synchronisation.
      FP_SC(futex) FP_SC(set_robust_list) FP_SC(rseq) FP_SC(clone) FP_SC(clone3) FP_SC(exit)
      FP_SC(exit_group) FP_SC(set_tid_address) FP_SC(gettid) FP_SC(getpid) FP_SC(getppid)
      FP_SC(tgkill) FP_SC(sched_yield) FP_SC(sched_getaffinity) FP_SC(nanosleep)
      FP_SC(clock_nanosleep) FP_SC(restart_syscall)
      // Signals (libuv's signal pipe; abort() on a failed FP_CHECK).
      FP_SC(rt_sigaction) FP_SC(rt_sigprocmask) FP_SC(rt_sigreturn) FP_SC(sigaltstack)
      // Time, identity, randomness, limits.
      FP_SC(clock_gettime) FP_SC(clock_getres) FP_SC(gettimeofday) FP_SC(getuid) FP_SC(geteuid)
      FP_SC(getgid) FP_SC(getegid) FP_SC(getresuid) FP_SC(getresgid) FP_SC(getgroups)
      FP_SC(getrandom) FP_SC(uname) FP_SC(sysinfo) FP_SC(prlimit64) FP_SC(getrusage)
#if defined(__x86_64__)
      // The legacy calls glibc and libuv still use on x86_64.
      FP_SC(open) FP_SC(stat) FP_SC(lstat) FP_SC(access) FP_SC(readlink) FP_SC(rename)
      FP_SC(unlink) FP_SC(poll) FP_SC(select) FP_SC(epoll_wait) FP_SC(epoll_create) FP_SC(pipe)
      FP_SC(dup2) FP_SC(eventfd) FP_SC(accept) FP_SC(getrlimit) FP_SC(time) FP_SC(arch_prctl)
#endif
#if defined(FIPSPROXY_SANITIZE_BUILD)
      // ASan+UBSan test builds only (CMake FIPSPROXY_SANITIZE), never the shipped binary:
      // LeakSanitizer's check at exit clones a tracer task that makes the process dumpable again
      // for the check (prctl PR_GET/SET_DUMPABLE, PR_SET_PTRACER, PR_SET_PDEATHSIG), attaches to
      // every thread (ptrace ATTACH, GETREGSET, DETACH) after listing them in /proc/PID/task
      // (getdents on x86_64), and waits for them (wait4). Without these the filter kills the
      // proxy at exit (or only the tracer task, and the proxy waits for it forever).
      FP_SC(prctl) FP_SC(ptrace) FP_SC(wait4)
#if defined(__x86_64__)
      FP_SC(getdents)
#endif
#endif
#undef FP_SC
  };
  return kList;
}

std::string loc_prefix(const config::SourceLoc& l, const char* key) {
  if (l.file.empty()) return std::string("[process] ") + key + ": ";
  return l.file + ":" + std::to_string(l.line) + ":" + std::to_string(l.col) + ": process." + key + ": ";
}

bool parse_id(const std::string& s, unsigned& out) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc() && p == end;
}

}  // namespace

Result<void> disable_core_dumps() {
  std::string errors;
  struct rlimit zero = {0, 0};
  if (::setrlimit(RLIMIT_CORE, &zero) != 0) errors += std::string("setrlimit(RLIMIT_CORE): ") + std::strerror(errno);
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    errors += (errors.empty() ? "" : "; ") + std::string("prctl(PR_SET_DUMPABLE): ") + std::strerror(errno);
  }
  if (!errors.empty()) return make_error(Code::Io, Side::Internal, errors);
  return {};
}

Result<Identity> resolve_identity(const config::ProcessSettings& p, bool for_run) {
  Identity id;
  const uid_t euid = ::geteuid();
  if (!p.user.empty()) {
    id.change = true;
    unsigned num = 0;
    struct passwd pw, *pwp = nullptr;
    std::vector<char> buf(16384);
    const bool numeric = parse_id(p.user, num);
    const int rc = numeric ? ::getpwuid_r(static_cast<uid_t>(num), &pw, buf.data(), buf.size(), &pwp)
                           : ::getpwnam_r(p.user.c_str(), &pw, buf.data(), buf.size(), &pwp);
    if (pwp != nullptr) {
      id.uid = pw.pw_uid;
      id.gid = pw.pw_gid;
      id.user = pw.pw_name;
      id.init_groups = true;
    } else if (numeric) {
      id.uid = static_cast<uid_t>(num);
      id.user = p.user;
      if (p.group.empty()) {
        return make_error(Code::ConfigInvalid, Side::Internal,
                          loc_prefix(p.user_loc, "user") + "uid " + p.user +
                              " has no passwd entry; set [process] group as well");
      }
    } else {
      return make_error(Code::ConfigInvalid, Side::Internal,
                        loc_prefix(p.user_loc, "user") + "no such user '" + p.user + "'" +
                            (rc != 0 ? std::string(" (") + std::strerror(rc) + ")" : ""));
    }
  }
  if (!p.group.empty()) {
    id.change = true;
    unsigned num = 0;
    struct group gr, *grp = nullptr;
    std::vector<char> buf(65536);
    const bool numeric = parse_id(p.group, num);
    const int rc = numeric ? ::getgrgid_r(static_cast<gid_t>(num), &gr, buf.data(), buf.size(), &grp)
                           : ::getgrnam_r(p.group.c_str(), &gr, buf.data(), buf.size(), &grp);
    if (grp != nullptr) {
      id.gid = gr.gr_gid;
      id.group = gr.gr_name;
    } else if (numeric) {
      id.gid = static_cast<gid_t>(num);
      id.group = p.group;
    } else {
      return make_error(Code::ConfigInvalid, Side::Internal,
                        loc_prefix(p.group_loc, "group") + "no such group '" + p.group + "'" +
                            (rc != 0 ? std::string(" (") + std::strerror(rc) + ")" : ""));
    }
    if (p.user.empty()) {
      // Only a group: keep the uid.
      id.uid = euid;
      struct passwd pw, *pwp = nullptr;
      std::vector<char> pbuf(16384);
      ::getpwuid_r(euid, &pw, pbuf.data(), pbuf.size(), &pwp);
      id.user = pwp ? pwp->pw_name : std::to_string(euid);
    }
  } else if (id.change) {
    struct group gr, *grp = nullptr;
    std::vector<char> buf(65536);
    ::getgrgid_r(id.gid, &gr, buf.data(), buf.size(), &grp);
    id.group = grp ? grp->gr_name : std::to_string(id.gid);
  }
  if (!for_run) return id;
  if (id.change && euid != 0 && (id.uid != euid || id.gid != ::getegid())) {
    return make_error(Code::ConfigInvalid, Side::Internal,
                      loc_prefix(p.user.empty() ? p.group_loc : p.user_loc, p.user.empty() ? "group" : "user") +
                          "switching to " + id.user + ":" + id.group + " needs root, and fipsproxy runs as uid " +
                          std::to_string(euid) + "; start it as root, or remove [process] user/group");
  }
  if (id.change && id.uid == euid && id.gid == ::getegid() && euid != 0) id.change = false;  // already there
  const bool ends_as_root = id.change ? id.uid == 0 : euid == 0;
  if (ends_as_root && !p.allow_root) {
    return make_error(Code::ConfigInvalid, Side::Internal,
                      "fipsproxy: refusing to run as root: set [process] user = \"<account>\" to drop "
                      "privileges after binding (e.g. \"nobody\"), or allow_root = true to run as root "
                      "(not recommended)");
  }
  return id;
}

Result<void> drop_privileges(const Identity& id) {
  if (!id.change) return {};
  auto fail = [&](const char* call) {
    return make_error(Code::Io, Side::Internal,
                      std::string("cannot switch to ") + id.user + ":" + id.group + ": " + call + ": " +
                          std::strerror(errno));
  };
  // Supplementary groups first, while we still may: the user's own (initgroups reads
  // /etc/group: membership in e.g. ssl-cert lets it read a root-owned 0640 key), or only `gid`.
  if (id.init_groups) {
    if (::initgroups(id.user.c_str(), id.gid) != 0) return fail("initgroups");
  } else if (::setgroups(1, &id.gid) != 0) {
    return fail("setgroups");
  }
  if (::setresgid(id.gid, id.gid, id.gid) != 0) return fail("setresgid");
  if (::setresuid(id.uid, id.uid, id.uid) != 0) return fail("setresuid");
  uid_t r, e, s;
  gid_t rg, eg, sg;
  if (::getresuid(&r, &e, &s) != 0 || r != id.uid || e != id.uid || s != id.uid ||
      ::getresgid(&rg, &eg, &sg) != 0 || rg != id.gid || eg != id.gid || sg != id.gid) {
    errno = EPERM;
    return fail("verify ids");
  }
  if (id.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
    errno = EPERM;
    return fail("root could be regained");
  }
  // setresuid() resets the dumpable flag to fs.suid_dumpable; make it 0 again whatever that is.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  return {};
}

std::string hand_over_log_files(const config::Snapshot& cfg, const Identity& id) {
  if (!id.change || id.uid == 0 || ::geteuid() != 0) return "";
  std::string out;
  auto give = [&](const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || st.st_uid != 0) return;
    if (::chown(path.c_str(), id.uid, static_cast<gid_t>(-1)) != 0) {
      out += (out.empty() ? "" : "\n") + path + ": cannot chown to " + id.user + ": " + std::strerror(errno);
    }
  };
  if (cfg.access_log != "stderr" && cfg.access_log != "off") give(cfg.access_log);
  if (cfg.audit) give(cfg.audit->path);
  return out;
}

std::string check_access_after_drop(const config::Snapshot& cfg, const std::string& config_path,
                                    const Identity& id) {
  std::string out;
  std::vector<std::string> seen;
  const std::string who = id.user + ":" + id.group;
  auto need = [&](const std::string& path, int mode, const char* why) {
    if (path.empty()) return;
    for (const std::string& s : seen) {
      if (s == path + std::to_string(mode)) return;
    }
    seen.push_back(path + std::to_string(mode));
    // access() checks the real ids, which are the dropped ones now.
    if (::access(path.c_str(), mode) != 0) {
      out += (out.empty() ? "" : "\n") + path + ": not " + (mode & W_OK ? "writable" : "readable") + " by " +
             who + " after dropping privileges (" + std::strerror(errno) + "); " + why;
    }
  };
  need(config_path, R_OK, "SIGHUP and admin reload re-read it");
  auto tls = [&](const std::optional<config::TlsConfig>& t) {
    if (!t) return;
    for (const std::string* f : {&t->cert, &t->key, &t->ca}) need(*f, R_OK, "reload and certificate rotation re-read it");
    for (const std::string& f : t->crl) need(f, R_OK, "reload and CRL rotation re-read it");
  };
  for (const auto& l : cfg.listeners) tls(l.tls);
  for (const auto& c : cfg.clusters) tls(c.tls);
  if (cfg.admin) tls(cfg.admin->tls);
  if (cfg.access_log != "stderr" && cfg.access_log != "off") {
    need(cfg.access_log, W_OK, "every reload reopens the access log");
  }
  if (cfg.audit) {
    need(cfg.audit->path, W_OK, "the audit writer appends to it");
    const size_t slash = cfg.audit->path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : cfg.audit->path.substr(0, slash));
    need(dir, W_OK | X_OK, "audit log rotation renames and creates files there");
  }
  return out;
}

size_t allowed_syscall_count() { return allowed().size(); }

Result<void> install_seccomp(config::SeccompMode mode) {
  if (mode == config::SeccompMode::Off) return {};
#if defined(FIPSPROXY_SANITIZE_BUILD)
  // Sanitizer builds: start the symbolizer (llvm-symbolizer, a child process the runtime then
  // talks to through pipes) now. Started lazily by the first report, it would need fork and
  // execve under the filter, and the report would end in SIGSYS instead of a stack.
  char sym[128];
  __sanitizer_symbolize_pc(reinterpret_cast<void*>(&install_seccomp), "%p", sym, sizeof sym);
#endif
  const uint32_t deny = mode == config::SeccompMode::Kill ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_LOG;
  std::vector<sock_filter> prog;
  auto stmt = [&](uint16_t code, uint32_t k) { prog.push_back(BPF_STMT(code, k)); };
  auto jump = [&](uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) { prog.push_back(BPF_JUMP(code, k, jt, jf)); };
  // A call made under another architecture's ABI has other numbers: never allowed.
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  jump(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
  // x32 calls share AUDIT_ARCH_X86_64 and set bit 30 of the number.
  jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
  for (long nr : allowed()) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  }
  stmt(BPF_RET | BPF_K, deny);
  struct sock_fprog fprog = {static_cast<unsigned short>(prog.size()), prog.data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return make_error(Code::Io, Side::Internal, std::string("prctl(PR_SET_NO_NEW_PRIVS): ") + std::strerror(errno));
  }
  // TSYNC: every thread that exists now (workers, the audit writer) gets the filter and
  // no_new_privs; threads created later inherit both.
  const long rc = ::syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
                            SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG, &fprog);
  if (rc != 0) {
    if (rc > 0) {
      return make_error(Code::Io, Side::Internal,
                        "seccomp: thread " + std::to_string(rc) + " could not be synchronised");
    }
    return make_error(Code::Io, Side::Internal, std::string("seccomp(SET_MODE_FILTER): ") + std::strerror(errno));
  }
  return {};
}

std::string status_summary() {
  std::ifstream in("/proc/self/status");
  std::string line, out;
  while (std::getline(in, line)) {
    for (const char* k : {"Uid:", "Gid:", "NoNewPrivs:", "Seccomp:", "CapEff:"}) {
      if (line.rfind(k, 0) == 0) {
        std::string v = line.substr(std::strlen(k));
        while (!v.empty() && (v[0] == '\t' || v[0] == ' ')) v.erase(0, 1);
        const size_t tab = v.find('\t');
        if (tab != std::string::npos) v = v.substr(0, tab);
        out += (out.empty() ? "" : " ") + std::string(k, std::strlen(k) - 1) + "=" + v;
      }
    }
  }
  return out;
}

}  // namespace fp::proxy::sandbox
