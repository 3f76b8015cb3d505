#pragma once
// Helpers for the upstream-pool and egress tests: a keep-alive HTTP/1.1 upstream
// (apps/ka_server.py, optionally TLS) and a small proxy runner with an admin socket.

#include <memory>
#include <string>
#include <vector>

#include "tests/support/harness.h"

namespace fp::test {

// apps/ka_server.py: answers "conn=N req=M path=P host=H" with keep-alive.
class KaServer {
 public:
  // listen: "127.0.0.1:0" or "unix:/path"; cert/key: TLS when set.
  explicit KaServer(const std::string& listen, const std::string& cert = "", const std::string& key = "") {
    Process::Options o;
    o.argv = {"python3", std::string(FP_SOURCE_DIR) + "/tests/support/apps/ka_server.py"};
    if (listen.rfind("unix:", 0) == 0) {
      o.argv.insert(o.argv.end(), {"--unix", listen.substr(5)});
      endpoint_ = listen;
    } else {
      o.argv.insert(o.argv.end(), {"--listen", listen});
    }
    if (!cert.empty()) o.argv.insert(o.argv.end(), {"--cert", cert, "--key", key});
    proc_ = std::make_unique<Process>(o);
    wait_until([&] { return proc_->read_stdout().find('\n') != std::string::npos || !proc_->running(); },
               Millis(10000));
    const std::string out = proc_->read_stdout();
    const size_t nl = out.find('\n');
    if (nl != std::string::npos) port_ = std::stoi(out.substr(0, nl));
    if (endpoint_.empty()) endpoint_ = listen.substr(0, listen.rfind(':')) + ":" + std::to_string(port_);
  }
  bool ok() const { return port_ >= 0; }
  int port() const { return port_; }
  const std::string& endpoint() const { return endpoint_; }
  // JSON lines after the port line.
  std::vector<JsonObject> events() const {
    std::vector<JsonObject> v;
    const std::string out = proc_->read_stdout();
    size_t p = out.find('\n');
    while (p != std::string::npos && p + 1 < out.size()) {
      const size_t e = out.find('\n', p + 1);
      if (e == std::string::npos) break;
      if (auto o = JsonObject::parse(out.substr(p + 1, e - p - 1))) v.push_back(*o);
      p = e;
    }
    return v;
  }
  int accepts() const {
    int n = 0;
    for (const auto& e : events()) n += e.str("event") == "accept" ? 1 : 0;
    return n;
  }
  std::string output() const { return proc_->read_stdout() + proc_->read_stderr(); }

 private:
  std::unique_ptr<Process> proc_;
  int port_ = -1;
  std::string endpoint_;
};

// GET /metrics (or any path) over a Unix admin socket.
inline std::string admin_get(const std::string& sock, const std::string& path) {
  Fd fd = connect_unix(sock);
  if (!fd.valid()) return "";
  send_all(fd.get(), "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n", Millis(2000));
  return read_until_close(fd.get(), Millis(5000)).data;
}

// The value of one series in Prometheus text (-1 when absent).
inline double metric_value(const std::string& text, const std::string& key) {
  const size_t p = text.find("\n" + key + " ");
  return p == std::string::npos ? -1 : std::stod(text.substr(p + key.size() + 2));
}

// curl; returns "<status>\n<body>" (status 000 when no response).
inline std::string curl(const std::vector<std::string>& args, std::string* err = nullptr) {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out, e;
  run_command(argv, Millis(15000), &out, &e);
  if (err) *err = e;
  const size_t nl = out.rfind('\n');
  if (nl == std::string::npos) return out + "\n";
  return out.substr(nl + 1) + "\n" + out.substr(0, nl);
}

}  // namespace fp::test
