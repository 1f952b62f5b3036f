import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// Exports stored in a JetStream stream of a real `nats-server -js`, read back as any client would.
@Suite(.exclusive) struct JetStreamTests {
    static func configuration(_ server: NATSServer, stream: String = "{ name: ORDERS, subjects: [\"order.>\"], create: true }") -> String {
        """
        instance: shop
        drain_timeout: 10s
        nats:
          url: "\(server.url)"
          jetstream:
            stream: \(stream)
            export: ["order.>"]
        subscribers: []
        """
    }

    @Test func everyExportIsStoredAndCountedOnceTheServerAcknowledgedIt() async throws {
        let server = try await NATSServer(jetStream: true)
        let folder = try PluginFolder(files: ["c.yaml": Self.configuration(server)])
        let input = NATSBridgeTests.events("order.created", 0..<2000).joined(separator: "\n") + "\n"
        let result = try await switchboard(
            ["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], input: Data(input.utf8))
        #expect(result.status == 0, "\(result.errors)")
        let nats = try #require(try NATSBridgeTests.report(folder, "r.json")["nats"])
        #expect(nats["js_exported"] == 2000 && nats["js_export_failed"] == 0 && nats["js_export_pending"] == 0, "\(nats)")
        #expect(try server.messages(inStream: "ORDERS") == 2000)
        #expect(result.errors.contains("nats jetstream: js_exported 2000, js_export_failed 0, awaiting acknowledgement 0"))
        #expect(result.errors.contains("storing order.> in JetStream stream 'ORDERS'"))
        // The stored message carries the event's id as its Nats-Msg-Id, for the duplicate window.
        let first = try JSON(parsing: server.request("$JS.API.STREAM.MSG.GET.ORDERS", #"{"seq": 1}"#))
        let headers = String(decoding: Data(base64Encoded: first["message"]?["hdrs"]?.stringValue ?? "") ?? Data(), as: UTF8.self)
        let id = headers.split(separator: "\r\n").first { $0.hasPrefix("Switchboard-Id:") }?.dropFirst("Switchboard-Id:".count)
        #expect(id != nil && headers.contains("Nats-Msg-Id:\(id!)"), "\(headers)")
    }

    @Test func aServerKilledAndRestartedMidExportLosesNothingConfirmedAndStoresNothingTwice() async throws {
        let server = try await NATSServer(jetStream: true)
        let folder = try PluginFolder(files: ["c.yaml": Self.configuration(server)])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder)
        // A subject per event: the stream's count of subjects tells duplicates apart. Some are
        // stored before the kill, some published while the server is away, some after.
        let line: @Sendable (Int) -> String = { n in #"{"topic": "order.\#(n)", "data": {"n": \#(n)}}"# }
        await run.feed(count: 2000, chunk: 200, pauseMicroseconds: 2000, line: line).value
        #expect(await eventually { ((try? server.messages(inStream: "ORDERS")) ?? 0) >= 1000 })
        server.kill()
        let feed = run.feed(count: 4000, chunk: 200, pauseMicroseconds: 2000) { line($0 + 2000) }
        try await Task.sleep(for: .milliseconds(300))  // exports go on while the server is away
        try await server.start()
        await feed.value
        #expect(await run.finish(within: 60) == 0, "\(run.errors)")
        let nats = try #require(try NATSBridgeTests.report(folder, "r.json")["nats"])
        let exported = try #require(nats["js_exported"]?.intValue)
        let failed = try #require(nats["js_export_failed"]?.intValue)
        #expect(exported + failed == 6000 && nats["js_export_pending"] == 0, "\(nats)")
        #expect((nats["reconnects"]?.intValue ?? 0) >= 1, "the server was away during the run")
        // What was confirmed is in the stream, and what was published again after a lost
        // acknowledgement is there once. One counted as failed may be there too: stored, but
        // its acknowledgements were lost until it ran out of time.
        let state = try #require(try JSON(parsing: server.request("$JS.API.STREAM.INFO.ORDERS"))["state"])
        let stored = try #require(state["messages"]?.intValue)
        #expect(state["num_subjects"]?.intValue == stored, "no event stored twice: \(state)")
        #expect(stored >= exported && stored <= exported + failed, "\(state) \(nats)")
        #expect(exported > 1000)
    }

    @Test func aMissingStreamWithoutCreateIsAStartUpErrorNamingIt() async throws {
        let server = try await NATSServer(jetStream: true)
        let folder = try PluginFolder(files: ["c.yaml": Self.configuration(server, stream: "{ name: NOPE }")])
        let result = try await switchboard("run", "--config", folder.path("c.yaml"), "--input", "none")
        #expect(result.status == 1)
        #expect(result.errors.contains("the JetStream stream 'NOPE' does not exist: create it, or set nats.jetstream.stream.create: true"), "\(result.errors)")
    }

    @Test func createUpdatesAnExistingStreamToTheFilesSettings() async throws {
        let server = try await NATSServer(jetStream: true)
        let folder = try PluginFolder(files: [
            "a.yaml": Self.configuration(server, stream: #"{ name: ORDERS, subjects: ["order.>"], create: true }"#),
            "b.yaml": Self.configuration(server, stream: #"{ name: ORDERS, subjects: ["order.>"], create: true, max_age: 7d, duplicate_window: 30s }"#),
        ])
        for file in ["a.yaml", "b.yaml"] {
            let result = try await switchboard("run", "--config", folder.path(file), "--input", "none", "--duration", "200ms")
            #expect(result.status == 0, "\(result.errors)")
        }
        let config = try JSON(parsing: server.request("$JS.API.STREAM.INFO.ORDERS"))["config"]
        #expect(config?["max_age"] == .int(7 * 86_400 * 1_000_000_000) && config?["duplicate_window"] == .int(30_000_000_000), "\(String(describing: config))")
    }

    // MARK: Imports

    /// An instance importing the stream ORDERS through the durable consumer `workers`.
    static func importing(_ server: NATSServer, _ consumer: String, subscriber: String, more: String = "") -> String {
        """
        drain_timeout: 10s
        nats:
          url: "\(server.url)"
          jetstream:
            stream: { name: ORDERS, subjects: ["order.>"], create: true }
            import: { durable: workers\(consumer) }\(more)
        subscribers:
          - \(subscriber)
        """
    }

    /// Prints `n delivery` for each event.
    static let printer = #"return { handle = function(e) print(e.data.n .. " " .. e.headers["Switchboard-Delivery"]) end }"#

    /// The consumer's state as the server tells any client.
    static func consumer(_ server: NATSServer, _ name: String = "workers") throws -> JSON {
        try JSON(parsing: server.request("$JS.API.CONSUMER.INFO.ORDERS.\(name)"))
    }

    @Test func importedMessagesAreAcknowledgedOnceHandledAndNotBefore() async throws {
        let server = try await NATSServer(jetStream: true)
        let folder = try PluginFolder(files: [
            "p.lua": Self.printer,
            "c.yaml": Self.importing(server, "", subscriber: "{ name: p, plugin: p.lua, topics: [\"order.>\"] }"),
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder)
        try server.publish((0..<300).map { ("order.created", #"{"n": \#($0)}"#, []) })
        #expect(await eventually { run.output.split(separator: "\n").count == 300 }, "\(run.errors)")
        #expect(await eventually { (try? Self.consumer(server))?["num_ack_pending"] == 0 })
        #expect(await run.finish(within: 30) == 0, "\(run.errors)")
        #expect(Set(run.output.split(separator: "\n")) == Set((0..<300).map { "\($0) 1" }), "each once, at its first delivery")
        let nats = try #require(try NATSBridgeTests.report(folder, "r.json")["nats"])
        #expect(nats["js_imported"] == 300 && nats["js_acked"] == 300 && nats["js_nacked"] == 0 && nats["js_import_pending"] == 0, "\(nats)")
        let consumer = try Self.consumer(server)
        #expect(consumer["num_pending"] == 0 && consumer["num_ack_pending"] == 0 && consumer["num_redelivered"] == 0, "\(consumer)")
    }

    @Test func aFailureComesAgainAfterTheBackoffAndItsLastDeliveryIsTerminated() async throws {
        let server = try await NATSServer(jetStream: true)
        let folder = try PluginFolder(files: [
            "p.lua": """
                local seen = {}
                return { handle = function(e)
                  local n = e.data.n
                  seen[n] = (seen[n] or 0) + 1
                  print(n .. " " .. e.headers["Switchboard-Delivery"] .. " " .. string.format("%.3f", switchboard.now()))
                  if n == 1 and seen[n] < 3 then error("not yet") end
                  if n == 2 then error("never") end
                end }
                """,
            "c.yaml": Self.importing(
                server, ", max_deliver: 3, backoff: [300ms, 600ms]",
                subscriber: "{ name: p, plugin: p.lua, topics: [\"order.>\"], on_failure: { restart_after: 100 } }"),
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder)
        try server.publish([("order.created", #"{"n": 1}"#, []), ("order.created", #"{"n": 2}"#, [])])
        #expect(await eventually(within: 20) { run.output.split(separator: "\n").count == 6 }, "\(run.output)\(run.errors)")
        #expect(await eventually { (try? Self.consumer(server))?["num_ack_pending"] == 0 })
        #expect(await run.finish(within: 30) == 0, "\(run.errors)")
        for n in [1, 2] {
            let lines = run.output.split(separator: "\n").map { $0.split(separator: " ") }.filter { $0[0] == "\(n)" }
            #expect(lines.map { $0[1] } == ["1", "2", "3"], "delivery counts of \(n): \(lines)")
            let times = lines.compactMap { Double($0[2]) }
            #expect(times.count == 3 && times[1] - times[0] >= 0.25 && times[2] - times[1] >= 0.5, "the backoff's delays: \(times)")
        }
        let nats = try #require(try NATSBridgeTests.report(folder, "r.json")["nats"])
        #expect(nats["js_acked"] == 1 && nats["js_nacked"] == 4 && nats["js_terminated"] == 1 && nats["js_redelivered"] == 4, "\(nats)")
    }

    @Test func anInstanceAcknowledgesItsOwnExportsAtOnceWithoutRoutingThem() async throws {
        let server = try await NATSServer(jetStream: true)
        let folder = try PluginFolder(files: [
            "p.lua": #"return { handle = function(e) print(e.data.n .. " " .. tostring(e.headers["Switchboard-Delivery"])) end }"#,
            "c.yaml": """
                instance: both
                drain_timeout: 10s
                nats:
                  url: "\(server.url)"
                  jetstream:
                    stream: { name: ORDERS, subjects: ["order.>"], create: true }
                    export: ["order.>"]
                    import: { durable: workers }
                subscribers:
                  - { name: p, plugin: p.lua, topics: ["order.>"] }
                """,
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder)
        run.send(NATSBridgeTests.events("order.created", 0..<5))
        #expect(await eventually { (try? Self.consumer(server))?["delivered"]?["consumer_seq"] == 5 && (try? Self.consumer(server))?["num_ack_pending"] == 0 })
        #expect(await run.finish(within: 30) == 0, "\(run.errors)")
        #expect(run.output.split(separator: "\n") == (0..<5).map { "\($0) nil" }, "handled once each, as local events")
        let nats = try #require(try NATSBridgeTests.report(folder, "r.json")["nats"])
        #expect(nats["js_exported"] == 5 && nats["js_acked"] == 5 && nats["js_imported"] == 0, "\(nats)")
    }

    @Test func twoInstancesShareTheConsumerAndOneKilledMidRunLosesNothing() async throws {
        let server = try await NATSServer(jetStream: true)
        var runs: [LiveRun] = []
        for name in ["a", "b"] {
            let folder = try PluginFolder(files: [
                "p.lua": Self.printer,
                "c.yaml": "instance: \(name)\n" + Self.importing(
                    server, ", ack_wait: 2s", subscriber: "{ name: p, plugin: p.lua, topics: [\"order.>\"] }"),
            ])
            runs.append(try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder))
        }
        try server.publish((0..<10_000).map { ("order.created", #"{"n": \#($0)}"#, []) })
        func lines(_ run: LiveRun) -> [(n: Int, delivery: Int)] {
            run.output.split(separator: "\n").compactMap { line in
                let parts = line.split(separator: " ")
                guard parts.count == 2, let n = Int(parts[0]), let delivery = Int(parts[1]) else { return nil }
                return (n, delivery)
            }
        }
        #expect(await eventually(within: 30) { lines(runs[0]).count >= 1500 && lines(runs[1]).count >= 1500 }, "both take work")
        Glibc.kill(runs[0].process.processIdentifier, SIGKILL)
        let killed = lines(runs[0])
        // What the killed one had in hand comes again to the survivor, after the acknowledgement wait.
        #expect(await eventually(within: 60) { Set((killed + lines(runs[1])).map(\.n)).count == 10_000 }, "every message handled")
        #expect(await eventually { (try? Self.consumer(server))?["num_ack_pending"] == 0 })
        #expect(await runs[1].finish(within: 30) == 0, "\(runs[1].errors)")
        let survivor = lines(runs[1])
        #expect(Set((killed + survivor).map(\.n)) == Set(0..<10_000))
        // A message handled twice was in flight at the kill, and its second delivery says so.
        let seenByKilled = Set(killed.map(\.n))
        let twice = survivor.filter { seenByKilled.contains($0.n) }
        #expect(twice.allSatisfy { $0.delivery >= 2 }, "\(twice.prefix(5))")
        #expect(twice.count <= 1000, "no more than the consumer's max_ack_pending were in flight")
        let report = try JSON(parsing: String(contentsOfFile: runs[1].folder.path("r.json"), encoding: .utf8))
        let redelivered = try #require(report["nats"]?["js_redelivered"]?.intValue)
        #expect(redelivered >= Int64(twice.count), "\(String(describing: report["nats"]))")
        #expect(try Self.consumer(server)["num_pending"] == 0)
    }

    @Test func theShippedJetStreamOrderFlowLosesNoOrderWhenAWorkerIsKilled() async throws {
        let server = try await NATSServer(jetStream: true)
        let environment = ["NATS_URL": server.url]
        var workers: [LiveRun] = []
        for _ in 0..<2 {
            workers.append(try await LiveRun(
                ["run", "--config", "config/jetstream-workers.yaml"], in: try PluginFolder(), environment: environment))
        }
        async let shop = switchboard(
            "run", "--config", "config/jetstream-shop.yaml", "--input", "none", "--duration", "1500ms", environment: environment)
        // As soon as one worker has handled something, it dies, perhaps mid-message.
        #expect(await eventually(within: 30) { workers.contains { !$0.output.isEmpty } })
        let victim = workers.firstIndex { !$0.output.isEmpty }!
        Glibc.kill(workers[victim].process.processIdentifier, SIGKILL)
        let survivor = workers[1 - victim]
        let result = try await shop
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.errors.contains("nats jetstream: js_exported 3, js_export_failed 0"), "\(result.errors)")
        let expected: Set = [
            "Email: Sending order confirmation for #ORD-123456", "Email: Sending payment receipt for order #ORD-123456",
            "Email: Sending shipping notification for #ORD-123456 (tracking: 1Z999AA10123456784)",
            "Inventory: Reserving 2 units of product PROD-A", "Inventory: Reserving 1 units of product PROD-B",
            "Analytics: Recording order #ORD-123456 (total: $109.97)", "Analytics: Recording payment via credit_card ($109.97)",
            "Push Notification: Your order #ORD-123456 has been shipped!",
        ]
        // What the dead worker had not answered comes to the survivor after ack_wait (5s).
        let handled = { Set(workers.flatMap { $0.output.split(separator: "\n").map(String.init) }) }
        #expect(await eventually(within: 30) { handled() == expected }, "\(handled()) \(survivor.errors)")
        #expect(await survivor.finish() == 0)
    }

    @Test func aServerRestartMidExportAndImportLeavesEveryStoredMessageHandled() async throws {
        let server = try await NATSServer(jetStream: true)
        let shopFolder = try PluginFolder(files: ["c.yaml": Self.configuration(server)])
        let workerFolder = try PluginFolder(files: [
            "p.lua": Self.printer,
            "c.yaml": "instance: worker\n" + Self.importing(
                server, ", ack_wait: 2s", subscriber: "{ name: p, plugin: p.lua, topics: [\"order.>\"] }"),
        ])
        let worker = try await LiveRun(
            ["run", "--config", workerFolder.path("c.yaml"), "--report", workerFolder.path("r.json")], in: workerFolder)
        let shop = try await LiveRun(["run", "--config", shopFolder.path("c.yaml"), "--report", shopFolder.path("r.json")], in: shopFolder)
        let feed = shop.feed(count: 4000, chunk: 200, pauseMicroseconds: 2000) { #"{"topic": "order.\#($0)", "data": {"n": \#($0)}}"# }
        #expect(await eventually { worker.output.split(separator: "\n").count >= 500 })
        server.kill()
        try await Task.sleep(for: .milliseconds(300))
        try await server.start()
        await feed.value
        #expect(await shop.finish(within: 60) == 0, "\(shop.errors)")
        let state = try #require(try JSON(parsing: server.request("$JS.API.STREAM.INFO.ORDERS"))["state"])
        let stored = try #require(state["messages"]?.intValue)
        let exported = try #require(try NATSBridgeTests.report(shopFolder, "r.json")["nats"]?["js_exported"]?.intValue)
        #expect(stored >= exported && state["num_subjects"]?.intValue == stored, "\(state)")
        // Every stored message reaches the worker, through the restart.
        let handled = { Set(worker.output.split(separator: "\n").compactMap { $0.split(separator: " ").first.flatMap { Int($0) } }) }
        #expect(await eventually(within: 60) { handled().count == Int(stored) }, "\(handled().count) of \(stored): \(worker.errors)")
        #expect(await eventually { (try? Self.consumer(server))?["num_ack_pending"] == 0 && (try? Self.consumer(server))?["num_pending"] == 0 })
        #expect(await worker.finish(within: 30) == 0, "\(worker.errors)")
    }

    @Test func aMessageTakenByASpillingSubscriberIsAcknowledgedOnceTheJournalHoldsIt() async throws {
        let server = try await NATSServer(jetStream: true)
        let folder = try PluginFolder(files: [
            "p.lua": Self.printer,
            "c.yaml": "journal: { path: journal }\n" + Self.importing(
                server, "", subscriber: "{ name: p, plugin: p.lua, topics: [\"order.>\"], queue: { overflow: spill } }"),
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder)
        try server.publish((0..<50).map { ("order.created", #"{"n": \#($0)}"#, []) })
        #expect(await eventually { (try? Self.consumer(server))?["delivered"]?["stream_seq"] == 50 && (try? Self.consumer(server))?["num_ack_pending"] == 0 })
        #expect(await eventually { run.output.split(separator: "\n").count == 50 })
        #expect(await run.finish(within: 30) == 0, "\(run.errors)")
        let nats = try #require(try NATSBridgeTests.report(folder, "r.json")["nats"])
        #expect(nats["js_acked"] == 50 && nats["js_nacked"] == 0, "\(nats)")
    }
}
