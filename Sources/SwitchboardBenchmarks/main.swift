#if canImport(Glibc)
import Glibc
#endif

func sleepSeconds(_ seconds: UInt32) { sleep(seconds) }

let which = CommandLine.arguments.dropFirst().first ?? "all"
if which == "all" || which == "fanout" { try await CoreBenchmarks.fanout() }
if which == "fanout1" { try await CoreBenchmarks.fanout(subscribers: 1) }
if which == "fanout0" { try await CoreBenchmarks.fanout(subscribers: 0) }
if which == "all" || which == "latency" { try CoreBenchmarks.latency() }
if which == "all" || which == "match" { try CoreBenchmarks.nonMatching() }
if which == "all" || which == "idle" { try CoreBenchmarks.idleCost() }
