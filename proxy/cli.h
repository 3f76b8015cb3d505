#pragma once
namespace fp::proxy {
// Exit codes (DESIGN.md §9): 0 ok, 1 runtime failure, 2 bad usage or config, 3 FIPS self-check.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitFips = 3;
int cli_main(int argc, char** argv);
}  // namespace fp::proxy
