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
if which == "lua-pipeline" {
    let arguments = Array(CommandLine.arguments.dropFirst(2))
    guard let events = arguments.first else {
        print("usage: switchboard-bench lua-pipeline EVENTS.jsonl [BASELINE.lua [RUNS]]")
        exit(2)
    }
    try await LuaBenchmarks.pipeline(
        events: events, baseline: arguments.dropFirst().first, runs: arguments.dropFirst(2).first.flatMap { Int($0) } ?? 3)
}
if which == "all" || which == "lua-many" { try await LuaBenchmarks.manySubscribers() }
