// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Switchboard",
    products: [
        // The router alone (events, JSON, topics): no Lua, no NATS, no HTTP.
        .library(name: "SwitchboardCore", targets: ["SwitchboardCore"]),
        // The router and Lua subscribers.
        .library(name: "SwitchboardLua", targets: ["SwitchboardLua"]),
        // Everything: configuration, runtime, journal, NATS, sinks, HTTP ingest, metrics and health.
        .library(name: "Switchboard", targets: ["Switchboard"]),
        .executable(name: "switchboard", targets: ["switchboard"]),
        .executable(name: "switchboard-bench", targets: ["SwitchboardBenchmarks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // JSON payload value, parser and serializer: no dependency on the router.
        .target(
            name: "SwitchboardJSON",
            dependencies: [.product(name: "OrderedCollections", package: "swift-collections")]
        ),
        // Topic and pattern grammar (NATS subjects) and the matching trie.
        .target(name: "SwitchboardTopics"),
        // The router: subscribers, bounded mailboxes, threads, delivery accounting.
        .target(name: "CSwitchboardCore"),
        .target(
            name: "SwitchboardCore",
            dependencies: [
                "SwitchboardJSON", "SwitchboardTopics", "CSwitchboardCore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Lua 5.4 from Debian's liblua5.4-dev.
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        // The C side of the Lua host: protected calls, the host API, the value bridge.
        .target(name: "CSwitchboardLua", dependencies: ["CLua"]),
        // Lua subscribers: one state per subscriber, only ever touched by its own thread.
        .target(
            name: "SwitchboardLua",
            dependencies: [
                "SwitchboardCore", "SwitchboardTopics", "CSwitchboardLua", "CLua",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The configuration file: YAML, strict validation, environment substitution. It reads and
        // checks the file only: no Lua, journal or NATS, which the runtime builds from it.
        .target(
            name: "SwitchboardConfig",
            dependencies: [
                "SwitchboardCore", "SwitchboardJSON", "SwitchboardTopics",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // At the edge: the event journal (segment files, a CRC-32C per record) and its reader.
        .target(name: "CSwitchboardJournal"),
        .target(
            name: "SwitchboardJournal",
            dependencies: ["SwitchboardCore", "CSwitchboardJournal", .product(name: "Logging", package: "swift-log")]
        ),
        // At the edge: the NATS bridge, on the NATS C client from Debian's libnats-dev.
        .systemLibrary(name: "CNATS", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        .target(
            name: "SwitchboardNATS",
            dependencies: ["SwitchboardCore", "CNATS", .product(name: "Logging", package: "swift-log")]
        ),
        // At the edge: Prometheus metrics and health over HTTP (swift-metrics, swift-prometheus,
        // Hummingbird), read from the core's counters and its handler-observer seam.
        .target(
            name: "SwitchboardMetrics",
            dependencies: [
                "SwitchboardCore",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // At the edge: sinks, subscribers whose handler is native (HTTP requests through
        // AsyncHTTPClient, lines of a file), built from their configuration entries.
        .target(
            name: "SwitchboardSinks",
            dependencies: [
                "SwitchboardCore", "SwitchboardConfig",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // At the edge: HTTP ingest, event lines published over HTTP (Hummingbird).
        .target(
            name: "SwitchboardIngest",
            dependencies: [
                "SwitchboardCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A running instance: a configuration as services in a ServiceGroup, reload, the input feeder.
        .target(
            name: "SwitchboardRuntime",
            dependencies: [
                "SwitchboardCore", "SwitchboardJSON", "SwitchboardLua", "SwitchboardConfig", "SwitchboardJournal",
                "SwitchboardNATS", "SwitchboardMetrics", "SwitchboardSinks", "SwitchboardIngest",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // `switchboard test`: plugin test files run on a virtual clock, their records compared
        // with what the tests expect, reported as text and JUnit XML.
        .target(
            name: "SwitchboardPluginTest",
            dependencies: ["SwitchboardConfig", "SwitchboardCore", "SwitchboardLua", "SwitchboardRuntime"]
        ),
        // Umbrella module: `import Switchboard` gives the whole embedded API.
        .target(
            name: "Switchboard",
            dependencies: [
                "SwitchboardCore", "SwitchboardJSON", "SwitchboardTopics", "SwitchboardLua", "SwitchboardConfig",
                "SwitchboardMetrics", "SwitchboardJournal", "SwitchboardNATS", "SwitchboardSinks", "SwitchboardIngest",
                "SwitchboardRuntime", "SwitchboardPluginTest",
            ]
        ),
        // The command line: `switchboard run`, `check`, `test`, `journal`, `replay`, `deadletters`, `redrive` and
        // `tap`: flags, printing, exit codes.
        .executableTarget(
            name: "switchboard",
            dependencies: [
                "Switchboard", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            linkerSettings: [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]
        ),
        // Speed targets, measured in release builds: `swift run -c release switchboard-bench`.
        // It links no allocator, as an embedder builds it: `fanout` times the server binary's
        // jemalloc in a copy of itself that preloads it.
        .executableTarget(
            name: "SwitchboardBenchmarks",
            dependencies: [
                "Switchboard", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // An embedder's program on the SwitchboardCore product alone: what it links is tested.
        .executableTarget(name: "CoreOnlyExample", dependencies: ["SwitchboardCore"], path: "Examples/CoreOnly"),
        .testTarget(name: "SwitchboardJSONTests", dependencies: ["SwitchboardJSON"]),
        .testTarget(name: "SwitchboardTopicsTests", dependencies: ["SwitchboardTopics"]),
        // Helpers shared by the test targets.
        .target(
            name: "SwitchboardTestSupport",
            dependencies: [
                "Switchboard", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Tests/SwitchboardTestSupport"),
        .testTarget(
            name: "SwitchboardCoreTests",
            dependencies: ["Switchboard", "SwitchboardTestSupport"]),
        .testTarget(name: "SwitchboardLuaTests", dependencies: ["Switchboard", "SwitchboardTestSupport"]),
        .testTarget(
            name: "SwitchboardConfigTests", dependencies: ["SwitchboardConfig", "SwitchboardJSON", "SwitchboardTestSupport"]),
        .testTarget(
            name: "SwitchboardRuntimeTests",
            dependencies: [
                "Switchboard", "SwitchboardTestSupport", .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]),
        .testTarget(name: "SwitchboardSinksTests", dependencies: ["Switchboard", "SwitchboardTestSupport"]),
        .testTarget(name: "SwitchboardPluginTestTests", dependencies: ["Switchboard", "SwitchboardTestSupport"]),
        .testTarget(name: "SwitchboardJournalTests", dependencies: ["Switchboard", "SwitchboardTestSupport"]),
        // Drives the built `switchboard` binary as a user would.
        .testTarget(name: "SwitchboardCLITests", dependencies: ["switchboard", "CoreOnlyExample", "SwitchboardTestSupport"]),
    ]
)
