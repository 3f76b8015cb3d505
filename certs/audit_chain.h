#pragma once
// The audit log's hash chain (DESIGN §8, issue 7 "Audit log"): one JSON object per line, each
// ending with `"prev":"<hex SHA-256 of the previous line's bytes, without its newline>"` as its
// LAST field. SHA-256 is the FIPS module's (BoringCrypto SHA256()).
//
// A chain starts with a genesis record (`prev` = 64 zeros):
//   {"type":"genesis","ts":"...","module":"BoringCrypto","module_version":2022061300,"prev":"000…0"}
// Size-based rotation renames audit.log → audit.log.1 → … (keep K files in all) and starts the
// new file with a rotate record whose `prev` is the hash of the previous file's last line, so the
// chain continues across files:
//   {"type":"rotate","ts":"...","previous_file":"audit.log.1","previous_records":N,"prev":"…"}
//
// What the chain detects: edited, deleted, inserted or reordered lines, a line cut short, a
// missing or wrong genesis, files out of order. What no hash chain can detect on its own:
// removal of whole lines or files at the *end* of the chain. `verify` returns the hash of the
// last line (the head) so it can be compared with an anchor kept elsewhere.
//
// Not thread-safe: one writer (proxy/audit_log.h runs it on its own thread).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "certs/handshake_info.h"
#include "proxy/base/result.h"

namespace fp::certs {

// 64 zeros: the `prev` of a genesis record.
extern const char kAuditGenesisPrev[];

// Hex SHA-256 (lower case) computed with the FIPS module.
std::string sha256_hex(std::string_view data);
// RFC 3339 UTC with milliseconds, e.g. "2024-05-01T12:00:00.123Z".
std::string audit_timestamp_now();

// `record` must be one JSON object ("{...}") without a newline; returns it with
// ,"prev":"<prev_hex>" appended as the last field.
std::string audit_chain_line(std::string_view record, std::string_view prev_hex);

// One handshake attempt, either role (the lead fills it from HandshakeInfo and the verdict).
struct AuditEvent {
  std::string ts;               // RFC 3339; "" = now
  std::string listener;         // listener name (role "server") or cluster name (role "client")
  std::string role;             // "server": we terminated TLS; "client": we originated it
  std::string peer_address;     // "192.0.2.1:4433", "[::1]:443", "unix:/path"
  std::string sni;
  std::string offered;          // what the peer offered, summarised; may be empty
  std::string version;          // negotiated; empty when the handshake failed before
  std::string cipher;
  std::string group;
  std::string sigalg;
  bool resumed = false;
  PeerIdentity peer;            // spiffe_id, dns, sha256, key_type ("EC P-256", "RSA 2048")
  std::string verdict;          // "approved" / "rejected"
  std::string reason;           // error token (base::token(code)), "ok" when approved
  std::string detail;           // free text, may be empty
};

// The JSON record for one handshake (without "prev"), e.g.
// {"type":"handshake","ts":...,"role":"server","listener":"edge","peer_addr":...,"sni":...,
//  "offered":...,"version":...,"cipher":...,"group":...,"sigalg":...,"resumed":false,
//  "peer":{"present":true,"spiffe":...,"dns":[...],"sha256":...,"key_type":"EC","key_bits":256,
//  "subject":...},"verdict":"approved","reason":"ok","detail":""}
// Role "client" writes "cluster" instead of "listener".
std::string audit_record(const AuditEvent& event);

// Writes a chained audit log with size-based rotation. `path` is the live file; rotated files
// are path.1 (newest) … path.(keep-1) (oldest). Opening an existing file continues its chain
// from its last line; a new or empty file starts with a genesis record.
class AuditChain {
 public:
  // max_bytes: rotate before a line would make the live file larger (0 = never rotate).
  // keep: files kept in all, the live one included (>= 1).
  static Result<std::unique_ptr<AuditChain>> open(const std::string& path, uint64_t max_bytes,
                                                   unsigned keep);
  ~AuditChain();
  AuditChain(const AuditChain&) = delete;
  AuditChain& operator=(const AuditChain&) = delete;

  // Appends one record (a JSON object without "prev" and without a newline). Buffered; written
  // by flush() or when the buffer passes 64 KiB or the file rotates. Error (Io) when a write,
  // rename or open fails; the record stays chained in memory and the next call retries.
  Result<void> append(std::string_view record);
  Result<void> flush();
  // flush() + fdatasync.
  Result<void> sync();

  const std::string& head() const { return head_; }   // hash of the last line appended
  uint64_t records_appended() const { return appended_; }
  uint64_t rotations() const { return rotations_; }

 private:
  AuditChain() = default;
  Result<void> open_live();
  Result<void> rotate();
  void add_line(std::string_view record);

  std::string path_;
  uint64_t max_bytes_ = 0;
  unsigned keep_ = 1;
  int fd_ = -1;
  uint64_t file_bytes_ = 0;     // on disk + buffered, live file
  uint64_t file_records_ = 0;   // lines in the live file (known since open)
  std::string buf_;
  std::string head_;
  uint64_t appended_ = 0;
  uint64_t rotations_ = 0;
};

struct AuditVerifyResult {
  bool ok = false;
  size_t records = 0;           // lines whose link verified
  std::string first_break;      // "FILE:LINE: reason" when !ok
  std::string file;             // the file and 1-based line of the first break
  size_t line = 0;
  std::string head;             // hash of the last verified line
  bool anchored_at_genesis = false;  // false: the oldest file starts with a rotate record
                                     // (older files rotated away)
};

// Verifies the chain over `paths`. Files are taken oldest first; when every path is BASE or
// BASE.N for one BASE (e.g. a shell glob "audit.log*"), they are ordered BASE.N … BASE.1, BASE
// first. The first file must begin with a genesis record (or a rotate record: the genesis was
// rotated away), every later file with a rotate record.
AuditVerifyResult verify_audit_files(const std::vector<std::string>& paths);

}  // namespace fp::certs
