import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// `http:` sinks against real HTTP servers on loopback, through the runtime, from an input file.
@Suite struct HTTPSinkTests {
    @Test func tenThousandEventsArriveThroughFailuresWithRetriesCounted() async throws {
        // The first three requests fail with 503: the first batch is retried three times, byte for byte.
        let server = try await TestHTTPServer { _, index in .init(status: index < 3 ? 503 : 200) }
        let folder = try PluginFolder()
        let report = try await run("""
            drain_timeout: 60s
            subscribers:
              - name: mail
                topics: ["mail.send"]
                http:
                  url: "http://127.0.0.1:\(server.port)/v1/send"
                  body: event
                  batch: { max_events: 100, max_wait: 20ms }
                queue: { capacity: 10000, overflow: block }
                on_failure: { retries: 5, backoff: 10ms }
            """, input: eventLines(10_000), in: folder)
        await server.stop()
        let requests = server.requests
        let delivered = requests.filter { !$0.body.isEmpty }.dropFirst(3).flatMap { numbers(in: $0.body) }
        #expect(delivered.sorted() == Array(0..<10_000), "every event arrives once the server succeeds")
        let stats = try #require(report.stats["mail"])
        #expect(stats.handled == 10_000 && stats.failed == 0 && stats.retries == 3 && stats.addsUp, "\(stats)")
        // A retry is the same request: same bytes, same Idempotency-Key (the batch's first event).
        #expect(requests[0].body == requests[3].body && requests[1].body == requests[3].body)
        #expect(requests[0].headers["idempotency-key"] == requests[3].headers["idempotency-key"])
        let first = try JSON(parsing: requests[3].text)
        #expect(requests[3].headers["idempotency-key"] == first[0]?["id"]?.stringValue)
        #expect(requests[3].headers["switchboard-topic"] == "mail.send")
        #expect(requests[3].headers["switchboard-time"].flatMap(Double.init) == first[0]?["time"]?.doubleValue)
        #expect(requests[3].headers["content-type"] == "application/json")
        #expect(requests.allSatisfy { numbers(in: $0.body).count <= 100 })
    }

    @Test func workersSendConcurrentRequestsInOrderPerKey() async throws {
        // Each answer takes 20 ms: one worker's requests arrive at least that far apart.
        let server = try await TestHTTPServer { _, _ in .init(delay: .milliseconds(20)) }
        let folder = try PluginFolder()
        let input = (0..<200).map { #"{"topic": "mail.send", "data": {"n": \#($0), "k": \#($0 % 8)}}"# }.joined(separator: "\n") + "\n"
        let report = try await run("""
            drain_timeout: 60s
            subscribers:
              - name: mail
                topics: ["mail.send"]
                http: { url: "http://127.0.0.1:\(server.port)/v1/send" }
                workers: 4
                key: data.k
                queue: { capacity: 400, overflow: block }
            """, input: input, in: folder)
        await server.stop()
        let requests = server.requests.sorted { $0.at < $1.at }
        let delivered = requests.flatMap { numbers(in: $0.body) }
        #expect(delivered.sorted() == Array(0..<200))
        for key in 0..<8 {
            let sent = delivered.filter { $0 % 8 == key }
            #expect(sent == sent.sorted(), "key \(key) out of order: \(sent)")
        }
        let close = zip(requests, requests.dropFirst()).filter { $1.at - $0.at < .milliseconds(10) }.count
        #expect(close > 0, "no two requests were in flight at once")
        let stats = try #require(report.stats["mail"])
        #expect(stats.handled == 200 && stats.perWorker.count == 4 && stats.addsUp, "\(stats)")
    }

    @Test func aRefusalIsNotRetriedAndDeadLettersWithItsStatusAndBody() async throws {
        let server = try await TestHTTPServer { _, _ in .init(status: 400, body: "bad address") }
        let folder = try PluginFolder()
        let report = try await run("""
            subscribers:
              - name: mail
                topics: ["mail.send"]
                http: { url: "http://127.0.0.1:\(server.port)/v1/send", method: PUT }
                on_failure: { retries: 3, backoff: 10ms, dead_letter: true }
              - name: letters
                topics: ["deadletter.>"]
                file: { path: letters.jsonl, format: data }
            """, input: eventLines(2), in: folder)
        await server.stop()
        #expect(server.requests.count == 2 && server.requests.allSatisfy { $0.method == "PUT" }, "no retries")
        #expect(report.stats["mail"].map { [$0.failed, $0.retries, $0.deadLettered] } == [2, 0, 2])
        let letters = try String(contentsOfFile: folder.path("letters.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSON(parsing: String($0)) }
        #expect(letters.count == 2)
        #expect(letters.allSatisfy { $0["error"] == "HTTP 400 Bad Request: bad address" && $0["attempts"] == 1 })
        #expect(letters.compactMap { $0["event"]?["data"]?["n"]?.serialized() }.sorted() == ["0", "1"])
    }

    @Test(.exclusive) func retryAfterSetsTheWaitUpToMaxBackoff() async throws {
        let paths = Recorder<String>()
        let server = try await TestHTTPServer { request, _ in
            // Each sink's first request is told to come back later: in 1 s, or in an hour.
            defer { paths.append(request.path) }
            guard !paths.all.contains(request.path) else { return .init() }
            return .init(status: 429, headers: ["Retry-After": request.path == "/soon" ? "1" : "3600"])
        }
        let folder = try PluginFolder()
        let report = try await run("""
            subscribers:
              - name: soon
                topics: ["a"]
                http: { url: "http://127.0.0.1:\(server.port)/soon" }
                on_failure: { retries: 1, backoff: 10ms }
              - name: capped
                topics: ["b"]
                http: { url: "http://127.0.0.1:\(server.port)/capped" }
                on_failure: { retries: 1, backoff: 10ms, max_backoff: 300ms }
            """, input: eventLines(1, topic: "a") + eventLines(1, topic: "b"), in: folder)
        await server.stop()
        for (path, wait) in [("/soon", 0.9), ("/capped", 0.25)] {
            let times = server.requests.filter { $0.path == path }.map(\.at)
            #expect(times.count == 2, "\(path): one refusal, one retry")
            if times.count == 2 { #expect(times[1] - times[0] >= .seconds(wait), "\(path) waited \(times[1] - times[0])") }
        }
        #expect(report.stats["soon"]?.handled == 1 && report.stats["capped"]?.handled == 1)
    }

    @Test func aServerDownAtStartGetsEveryEventOnceItComesUp() async throws {
        let port = try await TestHTTPServer.freePort()
        let folder = try PluginFolder(files: [
            "c.yaml": """
                drain_timeout: 60s
                subscribers:
                  - name: mail
                    topics: ["mail.send"]
                    http: { url: "http://127.0.0.1:\(port)/v1/send", timeout: 2s }
                    on_failure: { retries: 1000, backoff: 20ms, max_backoff: 100ms }
                """,
            "in.jsonl": eventLines(5),
        ])
        var options = Runtime.Options()
        options.input = .file(folder.path("in.jsonl"))
        let runtime = Runtime(configuration: try Configuration.load(path: folder.path("c.yaml")), options: options)
        let run = Task { try await runtime.run() }
        #expect(await eventually { (runtime.router.stats()["mail"]?.retries ?? 0) >= 3 }, "it retries while nothing listens")
        let server = try await TestHTTPServer(port: port)
        let report = try await run.value
        await server.stop()
        #expect(server.requests.flatMap { numbers(in: $0.body) } == [0, 1, 2, 3, 4], "in order, once each")
        #expect(report.stats["mail"]?.handled == 5)
    }

    @Test(.exclusive) func aServerThatNeverAnswersTimesOutAndTheRetryGoesThrough() async throws {
        // The first request is never answered in time; the retry is.
        let server = try await TestHTTPServer { _, index in .init(delay: index == 0 ? .seconds(30) : nil) }
        let silent = try await TestHTTPServer { _, _ in .init(delay: .seconds(30)) }
        let folder = try PluginFolder()
        let started = ContinuousClock.now
        let report = try await run("""
            subscribers:
              - name: late
                topics: ["a"]
                http: { url: "http://127.0.0.1:\(server.port)/", timeout: 300ms }
                on_failure: { retries: 2, backoff: 10ms }
              - name: mute
                topics: ["a"]
                http: { url: "http://127.0.0.1:\(silent.port)/", timeout: 300ms }
                on_failure: { retries: 1, backoff: 10ms }
            """, input: eventLines(1, topic: "a"), in: folder)
        let elapsed = ContinuousClock.now - started
        await server.stop()
        await silent.stop()
        #expect(report.stats["late"].map { [$0.handled, $0.retries] } == [1, 1])
        #expect(report.stats["mute"].map { [$0.failed, $0.retries] } == [1, 1], "two timeouts, then it fails")
        #expect(silent.requests.count == 2)
        #expect(elapsed >= .milliseconds(600) && elapsed < .seconds(25), "\(elapsed): timed out, never waited for 30 s")
    }

    @Test func aPartialBatchGoesOutAtTheDrainWithoutWaitingItsMaxWait() async throws {
        let server = try await TestHTTPServer()
        let folder = try PluginFolder()
        let started = ContinuousClock.now
        let report = try await run("""
            subscribers:
              - name: mail
                topics: ["mail.send"]
                http: { url: "http://127.0.0.1:\(server.port)/", batch: { max_events: 100, max_wait: 1h } }
            """, input: eventLines(5), in: folder)
        await server.stop()
        #expect(ContinuousClock.now - started < .seconds(30), "the drain sent the batch")
        #expect(server.requests.map { numbers(in: $0.body) } == [[0, 1, 2, 3, 4]])
        #expect(report.stats["mail"].map { $0.handled == 5 && $0.addsUp } == true)
    }

    @Test func batchesAreArraysOfBodiesInOrder() async throws {
        let server = try await TestHTTPServer()
        let folder = try PluginFolder()
        let report = try await run("""
            subscribers:
              - name: mail
                topics: ["mail.send"]
                http: { url: "http://127.0.0.1:\(server.port)/", batch: { max_events: 7, max_wait: 50ms } }
                queue: { capacity: 1000, overflow: block }
            """, input: eventLines(100), in: folder)
        await server.stop()
        let bodies = server.requests.map { try? JSON(parsing: $0.text) }
        #expect(bodies.allSatisfy { if case .array(let items)? = $0 { (1...7).contains(items.count) } else { false } })
        #expect(server.requests.flatMap { numbers(in: $0.body) } == Array(0..<100))
        #expect(report.stats["mail"]?.handled == 100)
    }
}
