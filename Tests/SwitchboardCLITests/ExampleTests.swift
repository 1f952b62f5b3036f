import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// The seed article's four programs, shipped as configurations, run as the README says.
@Suite struct ExampleTests {
    @Test func userRegistration() async throws {
        let result = try await switchboard("run", "--input", "config/registration.jsonl")
        #expect(result.status == 0, "\(result.errors)")
        for service in ["Email Service: Sending welcome email to", "Analytics: Recording signup for",
                        "Notifications: Alerting team about new user"] {
            // Each service, in publish order within itself.
            #expect(lines(of: result.output, startingWith: service) == ["alice", "bob", "charlie"].map { "\(service) \($0)@example.com" })
        }
        #expect(result.output.split(separator: "\n").count == 9)
        #expect(result.errors.contains("published 3, rejected 0"))
    }

    @Test func userRegistrationFromLineInputWithAnObjectPayload() async throws {
        // The --format line example of docs/operations.md: the payload is an object, not an address.
        let result = try await switchboard("run", "--format", "line", input: "user.created {\"email\": \"ann@example.com\"}\n")
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.split(separator: "\n").sorted() == [
            "Analytics: Recording signup for ann@example.com", "Email Service: Sending welcome email to ann@example.com",
            "Notifications: Alerting team about new user ann@example.com",
        ])
    }

    @Test func userRegistrationWithTheEmailPostedByAnHTTPSink() async throws {
        let mailAPI = try await TestHTTPServer { _, _ in .init(status: 202) }
        let result = try await switchboard(
            "run", "--config", "config/registration-mail.yaml", "--input", "config/registration.jsonl",
            environment: ["MAIL_API": "http://127.0.0.1:\(mailAPI.port)"])
        await mailAPI.stop()
        #expect(result.status == 0, "\(result.errors)")
        let mails = mailAPI.requests
        #expect(mails.map { (try? JSON(parsing: $0.text))?["to"]?.stringValue } == ["alice@example.com", "bob@example.com", "charlie@example.com"])
        #expect(mails.allSatisfy { $0.path == "/v1/send" && $0.headers["authorization"] == "Bearer local-test-token" })
        #expect(mails.first.flatMap { try? JSON(parsing: $0.text) }?["subject"] == "Welcome!")
        #expect(lines(of: result.output, startingWith: "Email Service:").count == 3)
        #expect(!result.errors.contains("local-test-token"), "a header value is never printed")
    }

    @Test func eCommerceOrderFlow() async throws {
        let result = try await switchboard("run", "--config", "config/ecommerce.yaml", "--input", "none", "--duration", "1s")
        #expect(result.status == 0, "\(result.errors)")
        let output = result.output
        let expected: [(String, [String])] = [
            ("Step", ["Step 1: Customer places order", "Step 2: Customer completes payment", "Step 3: Warehouse ships order"]),
            ("Published", ["Published to order.created: delivered to 3 subscribers",
                           "Published to payment.completed: delivered to 2 subscribers",
                           "Published to order.shipped: delivered to 2 subscribers"]),
            ("Email:", ["Email: Sending order confirmation for #ORD-123456",
                        "Email: Sending payment receipt for order #ORD-123456",
                        "Email: Sending shipping notification for #ORD-123456 (tracking: 1Z999AA10123456784)"]),
            ("Inventory:", ["Inventory: Reserving 2 units of product PROD-A", "Inventory: Reserving 1 units of product PROD-B"]),
            ("Analytics:", ["Analytics: Recording order #ORD-123456 (total: $109.97)",
                            "Analytics: Recording payment via credit_card ($109.97)"]),
            ("Push Notification:", ["Push Notification: Your order #ORD-123456 has been shipped!"]),
            ("Order flow", ["Order flow completed!"]),
        ]
        for (prefix, lines) in expected {
            #expect(SwitchboardCLITests.lines(of: output, startingWith: prefix) == lines)
        }
        #expect(output.split(separator: "\n").count == 1 + expected.map(\.1.count).reduce(0, +))  // and the title
        #expect(result.errors.contains("published 3, rejected 0"))
    }

    @Test func realTimeDashboard() async throws {
        let result = try await switchboard("run", "--config", "config/dashboard.yaml", "--input", "none", "--duration", "1s")
        #expect(result.status == 0, "\(result.errors)")
        /// Metric names in `name = value` lines, and the final counts, of one dashboard.
        func dashboard(_ title: String) throws -> (received: [String], counts: [String: Int]) {
            let received = lines(of: result.output, startingWith: "\(title) received: ").map {
                String($0.dropFirst("\(title) received: ".count).prefix { $0 != " " })
            }
            let finals = lines(of: result.output, startingWith: "\(title) final counts: ")
            try #require(finals.count == 1)
            var counts: [String: Int] = [:]
            for pair in finals[0].dropFirst("\(title) final counts: ".count).split(separator: " ") {
                let parts = pair.split(separator: "=")
                counts[String(parts[0])] = Int(parts[1])
            }
            return (received, counts)
        }
        let admin = try dashboard("Admin Dashboard")
        let ops = try dashboard("Ops Dashboard")
        // Ten ticks a second for a second, give or take a scheduler's slack.
        #expect((3...12).contains(admin.received.count), "\(admin.received.count) metrics")
        for board in [admin, ops] {
            #expect(Dictionary(board.received.map { ($0, 1) }, uniquingKeysWith: +) == board.counts)
        }
        #expect(Set(ops.received).isSubset(of: ["cpu_usage", "memory_usage"]))
        #expect(ops.received == admin.received.filter { ["cpu_usage", "memory_usage"].contains($0) })
        let report = result.errors
        #expect(report.contains("published \(admin.received.count), rejected 0"))
        for name in ["admin-dashboard", "ops-dashboard"] {
            #expect(lines(of: result.output, startingWith: "Dashboard client").contains("Dashboard client connected: \(name)"))
            #expect(lines(of: result.output, startingWith: "Dashboard client").contains("Dashboard client disconnected: \(name)"))
        }
    }

    @Test func wildcardSubscriptions() async throws {
        let result = try await switchboard("run", "--config", "config/wildcard.yaml", "--input", "config/wildcard.jsonl")
        #expect(result.status == 0, "\(result.errors)")
        let alice = #"{"id":"123","name":"Alice"}"#
        let aliceSmith = #"{"id":"123","name":"Alice Smith"}"#
        #expect(lines(of: result.output, startingWith: "User handler") == [
            "User handler received: user.created -> \(alice)", "User handler received: user.updated -> \(aliceSmith)",
        ])
        #expect(lines(of: result.output, startingWith: "Error handler") == [
            "Error handler received: api.error -> Connection timeout", "Error handler received: db.error -> Query failed",
        ])
        #expect(lines(of: result.output, startingWith: "Logger") == [
            "Logger received: user.created -> \(alice)", "Logger received: user.updated -> \(aliceSmith)",
            "Logger received: api.error -> Connection timeout", "Logger received: db.error -> Query failed",
            "Logger received: system.startup -> Server started",
        ])
    }

    @Test func everyShippedConfigurationChecks() async throws {
        for config in ["switchboard", "ecommerce", "dashboard", "wildcard", "bench", "nats-shop", "nats-workers"] {
            let result = try await switchboard("check", "--config", "config/\(config).yaml")
            #expect(result.status == 0, "\(config): \(result.errors)")
        }
    }
}
