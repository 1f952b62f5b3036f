import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// Several `switchboard run` processes sharing topics over a real `nats-server`.
@Suite(.exclusive) struct NATSBridgeTests {
    /// Prints one line per event: topic, `data.n`, origin instance, origin id.
    static let recorder = """
        return { handle = function(e)
          print(e.topic .. " " .. tostring(e.data.n) .. " " .. tostring(e.headers["Switchboard-Origin"]) .. " " .. tostring(e.headers["Switchboard-Id"]))
        end }
        """

    /// A configuration for one instance named `instance`, with a recorder subscribed to `topics`.
    static func configuration(instance: String, nats: String, topics: String) -> String {
        """
        instance: \(instance)
        nats: \(nats)
        subscribers:
          - { name: recorder, plugin: recorder.lua, topics: \(topics) }
        """
    }

    /// Lines like `{"topic": "order.created", "data": {"n": 0}}` for n in `range`.
    static func events(_ topic: String, _ range: Range<Int>) -> [String] {
        range.map { #"{"topic": "\#(topic)", "data": {"n": \#($0)}}"# }
    }

    /// The `n` of every line the recorder printed.
    static func numbers(_ output: String) -> [Int] {
        output.split(separator: "\n").compactMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } }
    }

    static func report(_ folder: PluginFolder, _ name: String) throws -> JSON {
        try JSON(parsing: String(contentsOfFile: folder.path(name), encoding: .utf8))
    }

    @Test func theShippedOrderFlowIsSharedByTwoWorkerInstances() async throws {
        let server = try await NATSServer()
        let environment = ["NATS_URL": server.url]
        var workers: [LiveRun] = []
        for _ in 0..<2 {
            workers.append(try await LiveRun(
                ["run", "--config", "config/nats-workers.yaml"], in: try PluginFolder(), environment: environment))
        }
        let shop = try await switchboard(
            "run", "--config", "config/nats-shop.yaml", "--input", "none", "--duration", "1s", environment: environment)
        #expect(shop.status == 0, "\(shop.errors)")
        #expect(lines(of: shop.output, startingWith: "Published") == ["order.created", "payment.completed", "order.shipped"].map {
            "Published to \($0): delivered to 1 subscribers"  // the exporter
        })
        let expected = [
            "Email: Sending order confirmation for #ORD-123456", "Email: Sending payment receipt for order #ORD-123456",
            "Email: Sending shipping notification for #ORD-123456 (tracking: 1Z999AA10123456784)",
            "Inventory: Reserving 2 units of product PROD-A", "Inventory: Reserving 1 units of product PROD-B",
            "Analytics: Recording order #ORD-123456 (total: $109.97)", "Analytics: Recording payment via credit_card ($109.97)",
            "Push Notification: Your order #ORD-123456 has been shipped!",
        ]
        let handled = { workers.flatMap { $0.output.split(separator: "\n").map(String.init) } }
        #expect(await eventually(within: 20) { handled().count >= expected.count })
        for worker in workers { #expect(await worker.finish() == 0) }
        #expect(handled().sorted() == expected.sorted(), "each event handled by one worker, every service once")
    }

    @Test func whileNATSIsDownTheExportQueueFillsDropsAreCountedAndTheRunStillEnds() async throws {
        let server = try await NATSServer()
        let folder = try PluginFolder(files: [
            "recorder.lua": Self.recorder,
            "c.yaml": """
                drain_timeout: 1s
                \(Self.configuration(instance: "cut-off", nats: #"{ url: "\#(server.url)", export: [x], export_queue: 5 }"#, topics: "[x]"))
                """,
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder)
        server.kill()
        #expect(await run.waitForErrors("disconnected from \(server.url)"))
        run.send(Self.events("x", 0..<100))
        #expect(await eventually { Self.numbers(run.output).count == 100 })  // local delivery goes on
        #expect(await run.finish(within: 20) == 0)
        let report = try Self.report(folder, "r.json")
        #expect(report["nats"]?["exported"] == 0 && report["nats"]?["possibly_lost"] == 0)
        #expect(report["nats"]?["dropped"] == 100, "the queue's drops, the one in hand and those left at the deadline: \(report)")
        // The exporter holds one batch in hand (up to the capacity) besides its queue.
        let queueDrops = try #require(report["subscribers"]?[NATSBridge.exporterName]?["dropped"]?.intValue)
        #expect(queueDrops >= 100 - 2 * 5)
        // The first drop is logged at once and the rest at the end: the last line has the total.
        #expect(run.errors.contains("nats: the export queue (5 events) was full: "))
        #expect(run.errors.contains(" exports dropped, \(queueDrops) in all"))
    }

    @Test func aForeignPublishersMessagesArriveWithTheirHeadersAndNonJSONIsRefusedAndCounted() async throws {
        let server = try await NATSServer()
        let folder = try PluginFolder(files: [
            "show.lua": #"return { handle = function(e) print(e.topic .. " " .. switchboard.json.encode(e.data) .. " " .. tostring(e.headers.Trace)) end }"#,
            "c.yaml": """
                nats: { url: "\(server.url)", import: ["ext.>"] }
                subscribers:
                  - { name: show, plugin: show.lua, topics: ["ext.>"] }
                """,
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder)
        try server.publish("ext.a", #"[9007199254740993, [], {}, null]"#, headers: [("Trace", "abc")])
        try server.publish("ext.b", "not json")
        try server.publish("ext.c", "")
        #expect(await eventually { run.output.split(separator: "\n").count == 2 })
        #expect(await run.finish() == 0)
        #expect(run.output == #"ext.a [9007199254740993,[],{},null] abc"# + "\next.c null nil\n")
        #expect(run.errors.contains("nats: message on 'ext.b' not imported: "), "\(run.errors)")
        let report = try Self.report(folder, "r.json")
        #expect(report["nats"]?["imported"] == 2 && report["nats"]?["import_dropped"] == 1)
    }

    @Test func anEventOverTheServersMaximumPayloadIsCountedAndLoggedAndTheNextOneGoesOut() async throws {
        let server = try await NATSServer()
        let folder = try PluginFolder(files: [
            "big.lua": #"return { init = function() switchboard.publish("x", string.rep("a", 2 * 1024 * 1024)); switchboard.publish("x", "small") end, handle = function() end }"#,
            "c.yaml": """
                nats: { url: "\(server.url)", export: [x] }
                subscribers: [{ name: big, plugin: big.lua }]
                """,
        ])
        let run = try await switchboard("run", "--config", folder.path("c.yaml"), "--input", "none", "--duration", "500ms", "--report", folder.path("r.json"))
        #expect(run.status == 0)
        // The size counts the headers too, whose length varies with the id and the time.
        #expect(run.errors.contains(/nats: cannot export 'x' to NATS: Payload 209\d{4} greater than maximum allowed: 1048576/), "\(run.errors)")
        let report = try Self.report(folder, "r.json")
        #expect(report["nats"]?["exported"] == 1 && report["nats"]?["dropped"] == 1)
    }

    @Test func anUnreachableServerStopsTheStartWithTheReason() async throws {
        let server = try await NATSServer()
        server.kill()  // a port that nothing listens on
        let folder = try PluginFolder(files: [
            "recorder.lua": Self.recorder,
            "c.yaml": Self.configuration(
                instance: "lonely", nats: #"{ url: "\#(server.url)", export: [x], connect_timeout: 300ms }"#, topics: "[x]"),
        ])
        let run = try await switchboard("run", "--config", folder.path("c.yaml"), "--input", "none")
        #expect(run.status == 1)
        #expect(run.errors.contains("c.yaml: cannot connect to NATS at \(server.url): No server available for connection"), "\(run.errors)")
        #expect(!run.errors.contains(" running"))
    }

    @Test func aQueueGroupSharesTheWorkAndAnInstanceOutsideItGetsEverything() async throws {
        let server = try await NATSServer()
        let total = 400
        let folder = try PluginFolder(files: [
            "recorder.lua": Self.recorder,
            "alpha.yaml": Self.configuration(instance: "alpha", nats: #"{ url: "\#(server.url)", export: ["order.>"] }"#, topics: #"["order.>"]"#),
            "worker.yaml": Self.configuration(
                instance: "worker", nats: #"{ url: "\#(server.url)", import: ["order.>"], queue_group: workers }"#, topics: #"["order.>"]"#),
            "audit.yaml": Self.configuration(instance: "audit", nats: #"{ url: "\#(server.url)", import: ["order.*"] }"#, topics: #"[">"]"#),
        ])
        var importers: [LiveRun] = []
        for name in ["worker1", "worker2", "audit"] {
            let sub = try PluginFolder(files: ["recorder.lua": Self.recorder])
            try FileManager.default.copyItem(atPath: folder.path(name == "audit" ? "audit.yaml" : "worker.yaml"), toPath: sub.path("c.yaml"))
            importers.append(try await LiveRun(["run", "--config", sub.path("c.yaml"), "--report", sub.path("r.json")], in: sub))
        }
        // Ready means subscribed: the exporter starts only now, and nothing may be missed.
        let alpha = try await switchboard(
            ["run", "--config", folder.path("alpha.yaml"), "--report", folder.path("alpha.json")],
            input: Data(Self.events("order.created", 0..<total).joined(separator: "\n").utf8))
        #expect(alpha.status == 0, "\(alpha.errors)")
        let exporter = try Self.report(folder, "alpha.json")
        #expect(exporter["nats"]?["exported"] == .int(Int64(total)))
        #expect(exporter["nats"]?["possibly_lost"] == 0 && exporter["nats"]?["dropped"] == 0)
        #expect(exporter["nats"]?["instance"] == "alpha")
        #expect(exporter["subscribers"]?["recorder"]?["received"] == .int(Int64(total)))  // no echo back
        #expect(exporter["nats"]?["imported"] == 0)

        let (worker1, worker2, audit) = (importers[0], importers[1], importers[2])
        #expect(await eventually(within: 20) {
            Self.numbers(worker1.output).count + Self.numbers(worker2.output).count == total && Self.numbers(audit.output).count == total
        })
        for run in importers { #expect(await run.finish() == 0) }
        let shares = [Self.numbers(worker1.output), Self.numbers(worker2.output)]
        #expect(shares.allSatisfy { !$0.isEmpty }, "each worker gets some: \(shares.map(\.count))")
        #expect((shares[0] + shares[1]).sorted() == Array(0..<total), "exactly once between them")
        #expect(Self.numbers(audit.output) == Array(0..<total), "everything, in order, outside the group")
        for line in audit.output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            #expect(fields[0] == "order.created" && fields[2] == "alpha")
            #expect(fields[3].wholeMatch(of: /[0-9a-f]{16}-[0-9a-f]+/) != nil, "the exporter's event id: \(line)")
        }
        for (run, share) in zip(importers, [shares[0].count, shares[1].count, total]) {
            let report = try Self.report(run.folder, "r.json")
            #expect(report["nats"]?["imported"] == .int(Int64(share)))
            #expect(report["nats"]?["exported"] == 0 && report["nats"]?["import_dropped"] == 0)
        }
    }

    @Test func anInstanceThatImportsAndExportsTheSameSubjectsNeitherLoopsNorEchoes() async throws {
        let server = try await NATSServer()
        let (fromPeer, fromRelay) = (300, 100)
        let both = #"{ url: "\#(server.url)", import: ["jobs.>"], export: ["jobs.>"] }"#
        let relayFolder = try PluginFolder(files: [
            "recorder.lua": Self.recorder,
            "c.yaml": Self.configuration(instance: "relay", nats: both, topics: #"["jobs.>"]"#),
        ])
        let wireFolder = try PluginFolder(files: [
            "recorder.lua": Self.recorder,
            "c.yaml": Self.configuration(instance: "wire", nats: #"{ url: "\#(server.url)", import: [">"] }"#, topics: #"[">"]"#),
        ])
        let relay = try await LiveRun(["run", "--config", relayFolder.path("c.yaml"), "--report", relayFolder.path("r.json")], in: relayFolder)
        let wire = try await LiveRun(["run", "--config", wireFolder.path("c.yaml"), "--report", wireFolder.path("r.json")], in: wireFolder)
        relay.send(Self.events("jobs.relay", 0..<fromRelay))
        let peerFolder = try PluginFolder(files: [
            "recorder.lua": Self.recorder,
            "c.yaml": Self.configuration(instance: "peer", nats: both, topics: #"["jobs.>"]"#),
        ])
        let peer = try await switchboard(
            ["run", "--config", peerFolder.path("c.yaml"), "--report", peerFolder.path("r.json")],
            input: Data(Self.events("jobs.peer", 0..<fromPeer).joined(separator: "\n").utf8))
        #expect(peer.status == 0, "\(peer.errors)")
        #expect(await eventually(within: 20) { Self.numbers(wire.output).count >= fromPeer + fromRelay })
        try await Task.sleep(for: .milliseconds(500))  // time for any loop to show
        #expect(await relay.finish() == 0)
        #expect(await wire.finish() == 0)

        let relayReport = try Self.report(relayFolder, "r.json")
        // It got the peer's events once and its own once: no re-import of its own exports.
        #expect(relayReport["subscribers"]?["recorder"]?["received"] == .int(Int64(fromPeer + fromRelay)))
        #expect(relayReport["nats"]?["imported"] == .int(Int64(fromPeer)))
        // It exported its own events only: nothing it imported went back out.
        #expect(relayReport["nats"]?["exported"] == .int(Int64(fromRelay)))
        #expect(relayReport["subscribers"]?[NATSBridge.exporterName]?["received"] == .int(Int64(fromRelay)))
        // On the wire, each event once.
        let seen = wire.output.split(separator: "\n").map { $0.split(separator: " ").prefix(3).joined(separator: " ") }
        #expect(seen.count == fromPeer + fromRelay)
        #expect(Set(seen).count == seen.count)
        #expect(seen.filter { $0.hasSuffix(" relay") }.count == fromRelay)
        #expect(seen.filter { $0.hasSuffix(" peer") }.count == fromPeer)
    }

    @Test func aNATSRestartIsSurvivedAndWhatMayHaveBeenLostIsCounted() async throws {
        let server = try await NATSServer()
        let total = 3000
        // The receiver is back well before the sender: the server discards what it gets while no
        // one is subscribed, which no client can count (core NATS is at most once).
        let senderFolder = try PluginFolder(files: [
            "recorder.lua": "return { handle = function() end }",
            "c.yaml": Self.configuration(
                instance: "sender", nats: #"{ url: "\#(server.url)", export: [tick], reconnect_wait: 1s, reconnect_wait_max: 1s }"#,
                topics: "[tick]"),
        ])
        let receiverFolder = try PluginFolder(files: [
            "recorder.lua": Self.recorder,
            "c.yaml": Self.configuration(
                instance: "receiver", nats: #"{ url: "\#(server.url)", import: [tick], reconnect_wait: 50ms, reconnect_wait_max: 100ms }"#,
                topics: "[tick]"),
        ])
        let receiver = try await LiveRun(["run", "--config", receiverFolder.path("c.yaml"), "--report", receiverFolder.path("r.json")], in: receiverFolder)
        let sender = try await LiveRun(
            ["run", "--config", senderFolder.path("c.yaml"), "--report", senderFolder.path("r.json"), "--metrics-listen", "127.0.0.1:0"],
            in: senderFolder)
        let feed = sender.feed(count: total, chunk: 50, pauseMicroseconds: 50_000) { #"{"topic": "tick", "data": {"n": \#($0)}}"# }
        #expect(await eventually(within: 20) { Self.numbers(receiver.output).count >= 500 })
        server.kill()
        try await Task.sleep(for: .milliseconds(700))
        try await server.start()
        #expect(await sender.waitForErrors("reconnected", within: 20))
        #expect(await receiver.waitForErrors("reconnected", within: 20))
        await feed.value
        let metrics = ObservabilityTests.samples(try await ObservabilityTests.get("/metrics", from: sender).body)
        #expect(metrics["switchboard_nats_connected"] == 1)
        #expect(metrics["switchboard_nats_reconnects_total"] == 1)
        #expect((metrics["switchboard_nats_exported_total"] ?? 0) > 0)
        #expect(metrics[#"switchboard_nats_dropped_total{direction="export"}"#] == 0)
        let health = try await ObservabilityTests.get("/healthz", from: sender)
        #expect(health.status == 200 && health.body.hasSuffix(#", "nats": "connected"}"#), "\(health)")
        #expect(await sender.finish() == 0)
        #expect(await eventually(within: 20) { Self.numbers(receiver.output).last == total - 1 })
        #expect(await receiver.finish() == 0)

        let sent = try #require(try Self.report(senderFolder, "r.json")["nats"])
        let received = Self.numbers(receiver.output)
        #expect(sent["reconnects"]?.intValue ?? 0 >= 1)
        #expect(try Self.report(receiverFolder, "r.json")["nats"]?["reconnects"]?.intValue ?? 0 >= 1)
        let (exported, possiblyLost, dropped) = (
            sent["exported"]?.intValue ?? -1, sent["possibly_lost"]?.intValue ?? -1, sent["dropped"]?.intValue ?? -1)
        #expect(exported + possiblyLost + dropped == Int64(total), "every export is accounted for: \(sent)")
        // What did not arrive is at most what the sender counted as possibly lost or dropped: nothing silent.
        #expect(Int64(total - Set(received).count) <= possiblyLost + dropped, "\(sent), received \(received.count)")
        #expect(Set(received).count == received.count, "core NATS never duplicates")
        #expect(exported > 0 && received.count > 500)
    }
}
