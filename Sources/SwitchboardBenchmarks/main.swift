// switchboard-bench: the speed targets, measured in a release build. See docs/internals.md#benchmarks.
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
let usage = """
    usage: switchboard-bench COMMAND
      fanout [GOSEED_BINARY [RUNS]]              2,000,000 publishes to 3 subscribers, without and with jemalloc (vs the Go seed)
      latency                                    publish latency with one subscriber stuck forever
      match                                      publish cost with 10 vs 10,000 non-matching subscribers
      idle                                       what 10,000 idle subscribers cost
      lua-pipeline EVENTS.jsonl [BASELINE [RUNS]] `switchboard run` over 3 Lua subscribers (vs lua5.4 and LuaJIT)
      lua-many                                   1,000 Lua subscribers start, handle an event, stop
      journal-cost EVENTS.jsonl [RUNS]           the same pipeline with and without a journal (fsync: interval)
      ingest EVENTS.jsonl [RUNS]                 HTTP ingest (batches of 1,000 lines) against the stdin feeder
      http-sink                                  200,000 events through an http sink in batches of 100
      nats EVENTS.jsonl [RUNS]                   export and import into Lua, core NATS vs JetStream (needs nats-server)
      workers [ITERATIONS [RUNS]]                a CPU-bound plugin over 200,000 events with 1, 2 and 4 workers
    """
func runs(at index: Int) -> Int { arguments.count > index ? Int(arguments[index]) ?? 3 : 3 }

switch arguments.first {
case "fanout": try await CoreBenchmarks.fanout(goBaseline: arguments.count > 1 ? arguments[1] : nil, runs: runs(at: 2))
case "fanout-once": try await CoreBenchmarks.fanoutOnce()  // one run, for fanout's copy under jemalloc
case "latency": try await CoreBenchmarks.latency()
case "match": try await CoreBenchmarks.nonMatching()
case "idle": try await CoreBenchmarks.idleCost()
case "lua-pipeline" where arguments.count > 1:
    try LuaBenchmarks.pipeline(events: arguments[1], baseline: arguments.count > 2 ? arguments[2] : nil, runs: runs(at: 3))
case "lua-many": try await LuaBenchmarks.manySubscribers()
case "journal-cost" where arguments.count > 1: try LuaBenchmarks.journalCost(events: arguments[1], runs: runs(at: 2))
case "ingest" where arguments.count > 1: try await HTTPBenchmarks.ingest(events: arguments[1], runs: runs(at: 2))
case "http-sink": try await HTTPBenchmarks.sink()
case "nats" where arguments.count > 1: try await NATSBenchmarks.bridge(events: arguments[1], runs: runs(at: 2))
case "workers": try await LuaBenchmarks.workers(iterations: arguments.count > 1 ? Int(arguments[1]) ?? 2200 : 2200, runs: runs(at: 2))
default:
    print(usage)
    exit(2)
}
