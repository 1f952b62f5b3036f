import Foundation
import SwitchboardConfig
import SwitchboardRuntime
import SwitchboardCore
import SwitchboardTestSupport
import Testing

@Suite struct DeploymentTests {
    @Test func aWholeConfigurationStartsThroughTheEmbeddedAPI() async throws {
        let folder = try PluginFolder(files: [
            "count.lua": "local n = 0\nreturn { handle = function() n = n + 1 end, shutdown = function() end }",
            "broken.lua": "return {",
            "good.yaml": "subscribers:\n  - {name: one, plugin: count.lua, topics: [a]}\n  - {name: two, plugin: count.lua, topics: [a, b]}\n",
            "bad.yaml": "subscribers:\n  - {name: one, plugin: count.lua, topics: [a]}\n  - {name: two, plugin: broken.lua, topics: [b]}\n",
        ])
        let router = Router()
        let deployment = try Deployment(router: router, configuration: Configuration.load(path: folder.path("good.yaml")))
        #expect(deployment.configuration.subscribers.map(\.name) == ["one", "two"])
        #expect(try router.publish("a").accepted == 2)
        await router.shutdown()
        let other = Router()
        #expect {
            try Deployment(router: other, configuration: Configuration.load(path: folder.path("bad.yaml")))
        } throws: { "\($0)".contains("subscriber 'two'") && "\($0)".contains("broken.lua:1:") }
        #expect(other.stats().subscribers.isEmpty)  // 'one' was never routed to, and is gone
        await other.shutdown()
    }

    @Test func aChangedEntryIsRebuiltInPlaceAndAnUnchangedOneKept() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "c.yaml": """
                subscribers:
                  - { name: moving, plugin: p.lua, topics: [a], queue: { capacity: 10 } }
                  - { name: steady, plugin: p.lua, topics: [a] }
                """,
        ])
        let router = Router()
        let deployment = try Deployment(router: router, configuration: Configuration.load(path: folder.path("c.yaml")))
        let steady = router.subscriber(named: "steady")
        try folder.write("c.yaml", """
            metrics: { listen: "127.0.0.1:9999" }
            instance: renamed
            nats: { url: "nats://127.0.0.1:4222", export: [a] }
            subscribers:
              - { name: moving, plugin: p.lua, topics: [b], queue: { capacity: 20, overflow: block } }
              - { name: steady, plugin: p.lua, topics: [a] }
              - { name: fresh, plugin: p.lua, topics: [b] }
            """)
        let summary = try await deployment.reload()
        #expect((summary.added, summary.changed, summary.removed, summary.kept) == (["fresh"], ["moving"], [], ["steady"]))
        #expect(summary.needRestart == ["metrics.listen", "instance", "nats"])  // reported, not applied
        #expect(deployment.configuration.metricsListen == nil && deployment.configuration.nats == nil)
        #expect(router.subscriber(named: "steady") === steady)
        #expect(try router.publish("a").accepted == 1)  // steady only: moving now listens on b
        #expect(try router.publish("b").accepted == 2)
        #expect(router.stats()["moving"]?.capacity == 20)
        #expect(deployment.configuration.subscribers.count == 3)
        await router.shutdown()
    }

    @Test func aReloadThatFailsChangesNothing() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "c.yaml": "subscribers:\n  - { name: one, plugin: p.lua, topics: [a] }\n",
        ])
        let router = Router()
        let deployment = try Deployment(router: router, configuration: Configuration.load(path: folder.path("c.yaml")))
        try folder.write("broken.lua", "return { handle = function() end")
        try folder.write("c.yaml", "subscribers:\n  - { name: one, plugin: p.lua, topics: [b] }\n  - { name: two, plugin: broken.lua, topics: [a] }\n")
        await #expect {
            try await deployment.reload()
        } throws: { "\($0)".contains("subscriber 'two'") && "\($0)".contains("broken.lua:1:") }
        #expect(router.stats().subscribers.map(\.name) == ["one"])
        #expect(try router.publish("a").accepted == 1)  // still on its old topic
        await router.shutdown()
    }
}
