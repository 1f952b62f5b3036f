import Foundation
import SwitchboardConfig
import SwitchboardCore
import SwitchboardLua
import SwitchboardNATS
import SwitchboardTestSupport
import Testing

@Suite struct ConfigurationTests {
    @Test func everyKeyOfAValidFile() throws {
        let folder = try PluginFolder(files: [
            "plugins/email.lua": "return { handle = function() end }",
            "config/switchboard.yaml": """
                drain_timeout: 2m
                metrics: { listen: "127.0.0.1:9464" }
                log: { level: debug, format: json }
                subscribers:
                  - name: email_1
                    plugin: ../plugins/email.lua
                    topics: ["user.created", "order.*"]
                    queue: { capacity: 10, overflow: block }
                    timeout: 250ms
                    memory: 32MiB
                    settings: { sender: "${SENDER}", port: 25, ratio: 1.5, tls: true, none: null, list: [1, "two"] }
                    on_failure: { retries: 2, backoff: 1s, dead_letter: true, restart_after: 3 }
                    allow: [io, os]
                  - name: ticker
                    plugin: ../plugins/email.lua
                """,
        ])
        let configuration = try Configuration.load(
            path: folder.path("config/switchboard.yaml"), environment: ["SENDER": "noreply@example.com"])
        #expect(configuration.subscribers.count == 2)
        #expect(configuration.drainTimeout == .seconds(120))
        #expect(configuration.metricsListen == "127.0.0.1:9464")
        #expect(configuration.log == .init(level: .debug, format: .json))
        let email = configuration.subscribers[0]
        #expect(email.name == "email_1")
        #expect(email.plugin == folder.path("plugins/email.lua"))
        #expect(email.topics == ["user.created", "order.*"])
        #expect((email.capacity, email.overflow) == (10, .block))
        #expect(email.timeout == .milliseconds(250))
        #expect(email.memory == 32 << 20)
        #expect(email.settings == [
            "sender": "noreply@example.com", "port": 25, "ratio": 1.5, "tls": true, "none": nil, "list": [1, "two"],
        ])
        #expect(email.onFailure == FailurePolicy(retries: 2, backoff: .seconds(1), deadLetter: true, restartAfter: 3))
        #expect(email.allow == ["io", "os"])
        let ticker = configuration.subscribers[1]
        #expect(ticker.topics.isEmpty)  // a producer
        // What the file leaves out is nil: the subscriber's own defaults apply (see RuntimeTests).
        #expect(ticker.capacity == nil && ticker.overflow == nil && ticker.timeout == nil && ticker.memory == nil)
        #expect(ticker.onFailure == FailurePolicy())
    }

    @Test func everyProblemIsReportedWithFileLineSubscriberAndValue() throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return {}",
            "bad.yaml": """
                subscribers:
                  - name: a
                    plugin: p.lua
                    topcis: ["x"]
                  - name: b
                    plugin: missing.lua
                    memory: lots
                    timeout: soon
                    queue: { capacity: 0, overflow: sometimes }
                  - name: a
                    plugin: p.lua
                    topics: ["user..created", "a.>.b"]
                    allow: [net]
                    settings: { key: "${NOT_SET}" }
                  - name: "bad name!"
                    plugin: p.lua
                    on_failure: { retries: -1, dead_letter: maybe }
                drain_timeout: never
                metrics: { listen: "localhost", port: 1 }
                log: { level: loud, format: xml }
                """,
        ])
        let path = folder.path("bad.yaml")
        expectProblems(loading: path, environment: [:], [
            "\(path):4: subscriber 'a': unknown key 'topcis' in a subscriber",
            "\(path):6: subscriber 'b': plugin file 'missing.lua' not found",
            "\(path):7: subscriber 'b': memory 'lots' is not a size such as 512KiB, 64MiB or 1GiB",
            "\(path):8: subscriber 'b': timeout 'soon' is not a duration",
            "\(path):9: subscriber 'b': queue capacity '0' is not a whole number of at least 1",
            "\(path):9: subscriber 'b': queue overflow 'sometimes' is not drop_newest, drop_oldest, block or spill",
            "\(path):10: subscriber 'a': duplicate name 'a' (first at line 2)",
            "\(path):12: subscriber 'a': topics: invalid pattern \"user..created\": token 2 is empty",
            "\(path):12: subscriber 'a': topics: invalid pattern \"a.>.b\": '>' (token 2) must be the last token",
            "\(path):13: subscriber 'a': allow: unknown library 'net'",
            "\(path):14: subscriber 'a': settings: environment variable 'NOT_SET' is not set",
            "\(path):15: subscriber 'bad name!': name 'bad name!' may hold only letters, digits, - and _",
            "\(path):17: subscriber 'bad name!': on_failure retries '-1' is not a whole number",
            "\(path):17: subscriber 'bad name!': on_failure dead_letter 'maybe' is not true or false",
            "\(path):18: drain_timeout 'never' is not a duration such as 5s",
            "\(path):19: unknown key 'port' in metrics",
            "\(path):19: metrics listen 'localhost' is not HOST:PORT",
            "\(path):20: log level 'loud' is not one of trace, debug, info, notice, warning, error, critical",
            "\(path):20: log format 'xml' is not text or json",
        ])
    }

    @Test func theNATSSectionAndTheInstanceName() throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "secrets/me.creds": "-----BEGIN NATS USER JWT-----",
            "ca.pem": "", "cert.pem": "", "key.pem": "",
            "full.yaml": """
                instance: shop-eu-1
                nats:
                  url: "nats://10.0.0.1:4222, tls://10.0.0.2:4222"
                  export: ["order.>"]
                  import: ["jobs.>", "billing.*"]
                  queue_group: workers
                  export_queue: 1000
                  flush_interval: 50ms
                  connect_timeout: 3s
                  reconnect_wait: 100ms
                  reconnect_wait_max: 30s
                  max_reconnects: 10
                  credentials: secrets/me.creds
                  tls: { ca: ca.pem, cert: cert.pem, key: key.pem, hostname: nats.internal, insecure_skip_verify: true }
                subscribers: [{ name: a, plugin: p.lua, topics: [x] }]
                """,
            "minimal.yaml": "nats: { url: nats://127.0.0.1:4222, export: [x] }\nsubscribers: []\n",
            "bad.yaml": """
                instance: "two words"
                nats:
                  url: 127.0.0.1:4222
                  export: ["a..b"]
                  queue_group: workers
                  flush_interval: 0s
                  max_reconnects: -3
                  password: secret
                  credentials: nowhere.creds
                  tls: { cert: cert.pem, verify: no }
                subscribers: []
                """,
            "empty.yaml": "nats: { url: nats://127.0.0.1:4222 }\nsubscribers: []\n",
        ])
        let full = try Configuration.load(path: folder.path("full.yaml"))
        var expected = Configuration.NATSSettings(url: "nats://10.0.0.1:4222, tls://10.0.0.2:4222")
        expected.export = ["order.>"]
        expected.import = ["jobs.>", "billing.*"]
        expected.queueGroup = "workers"
        expected.exportQueue = 1000
        expected.flushInterval = .milliseconds(50)
        expected.connectTimeout = .seconds(3)
        expected.reconnectWait = .milliseconds(100)
        expected.reconnectWaitMax = .seconds(30)
        expected.maxReconnects = 10
        expected.credentials = folder.path("secrets/me.creds")
        var tls = Configuration.NATSSettings.TLS()
        (tls.ca, tls.cert, tls.key) = (folder.path("ca.pem"), folder.path("cert.pem"), folder.path("key.pem"))
        (tls.hostname, tls.insecureSkipVerify) = ("nats.internal", true)
        expected.tls = tls
        #expect(full.nats == expected)
        #expect(full.instance == "shop-eu-1")

        let minimal = try Configuration.load(path: folder.path("minimal.yaml"))
        #expect(minimal.nats?.maxReconnects == nil)  // forever
        #expect(minimal.nats?.exportQueue == nil)  // the bridge's default (see RuntimeTests)
        #expect(minimal.instance.hasSuffix("-\(getpid())"))  // the host name and the process id

        let path = folder.path("bad.yaml")
        expectProblems(loading: path, [
            "\(path):1: instance 'two words' is not a name of letters, digits, ., - and _",
            "\(path):3: nats url '127.0.0.1:4222' is not one or more URLs such as nats://127.0.0.1:4222",
            "\(path):4: nats export: invalid pattern \"a..b\": token 2 is empty",
            "\(path):5: nats queue_group shares imports: it needs an 'import' list",
            "\(path):6: nats flush_interval must be more than 0",
            "\(path):7: nats max_reconnects '-3' is not a whole number (leave it out to retry forever)",
            "\(path):8: nats password needs a 'user'",
            "\(path):9: nats credentials file 'nowhere.creds' not found",
            "\(path):10: unknown key 'verify' in nats tls",
            "\(path):10: nats tls needs both 'cert' and 'key', or neither",
        ])
        #expect { try Configuration.load(path: folder.path("empty.yaml")) } throws: {
            "\($0)".contains("nats needs subjects to 'export', to 'import', or both, or a 'jetstream' section")
        }
    }

    @Test func theJetStreamSectionAndWhatItRefuses() throws {
        let folder = try PluginFolder(files: [
            "only.yaml": """
                nats:
                  url: nats://127.0.0.1:4222
                  jetstream:
                    stream: { name: ORDERS, subjects: ["order.>"], storage: memory, max_age: 7d, duplicate_window: 30s, create: true }
                    export: ["order.*"]
                subscribers: []
                """,
            "bad.yaml": """
                nats:
                  url: nats://127.0.0.1:4222
                  export: ["order.created"]
                  import: ["payment.>"]
                  jetstream:
                    stream: { name: "two words", create: true, storage: disk }
                    export: ["order.>", "payment.done", "user.*"]
                subscribers: []
                """,
            "imports.yaml": """
                nats:
                  url: nats://127.0.0.1:4222
                  export: ["pay.>"]
                  jetstream:
                    stream: { name: S, subjects: ["order.>", "pay.>"] }
                    import: { ack_wait: 100ms, backoff: [1s, soon], max_deliver: 0 }
                subscribers: []
                """,
            "filtered.yaml": """
                nats:
                  url: nats://127.0.0.1:4222
                  export: ["pay.>"]
                  jetstream:
                    stream: { name: S, subjects: ["order.>", "pay.>"] }
                    import: { durable: w, filter: "pay.done" }
                subscribers: []
                """,
            "outside.yaml": """
                nats:
                  url: nats://127.0.0.1:4222
                  jetstream: { stream: { name: S, subjects: ["order.*"] }, export: ["order.>"] }
                subscribers: []
                """,
        ])
        let only = try Configuration.load(path: folder.path("only.yaml"))
        var stream = Configuration.NATSSettings.JetStream.Stream(name: "ORDERS")
        (stream.subjects, stream.storage, stream.create) = (["order.>"], .memory, true)
        (stream.maxAge, stream.duplicateWindow) = (.seconds(7 * 86_400), .seconds(30))
        var expected = Configuration.NATSSettings.JetStream(stream: stream)
        expected.export = ["order.*"]
        #expect(only.nats?.jetStream == expected)
        #expect(only.nats?.export == [] && only.nats?.import == [])

        let path = folder.path("bad.yaml")
        expectProblems(loading: path, [
            "\(path):6: nats jetstream stream name 'two words' is not a stream name of letters, digits, - and _",
            "\(path):6: nats jetstream stream storage 'disk' is not file or memory",
            "\(path):6: nats jetstream stream with create: true needs 'subjects', the subjects it stores",
            "\(path):7: nats jetstream export 'order.>' overlaps nats export 'order.created': the stream would store those events twice; export them through one of the two",
            "\(path):7: nats jetstream export 'payment.done' overlaps nats import 'payment.>': what one instance stores, another would import and store again, without end",
        ])
        let imports = folder.path("imports.yaml")
        expectProblems(loading: imports, [
            "\(imports):6: nats jetstream import needs a 'durable' name, which every instance sharing the work gives",
            "\(imports):6: nats jetstream import ack_wait must be at least 1s",
            "\(imports):6: nats jetstream import backoff must be a list of durations, such as [1s, 5s, 30s]",
            "\(imports):6: nats jetstream import max_deliver '0' is not a whole number of at least 1",
        ])
        let filtered = folder.path("filtered.yaml")
        expectProblems(loading: filtered, [
            "\(filtered):6: nats jetstream import of 'pay.done' overlaps nats export 'pay.>': imported messages would be exported into the stream again, without end",
        ])
        let outside = folder.path("outside.yaml")
        expectProblems(loading: outside, [
            "\(outside):3: nats jetstream export 'order.>' is not within the stream's subjects (order.*): the server would store none of it",
        ])
    }

    @Test func invalidYAMLAndMissingSectionsAreReported() throws {
        let folder = try PluginFolder(files: ["broken.yaml": "subscribers: [\n", "empty.yaml": "", "other.yaml": "surprise: {}\n"])
        #expect { try Configuration.load(path: folder.path("broken.yaml")) } throws: { "\($0)".contains("invalid YAML") }
        #expect { try Configuration.load(path: folder.path("empty.yaml")) } throws: { "\($0)".contains("the file is empty") }
        #expect { try Configuration.load(path: folder.path("other.yaml")) } throws: { error in
            "\(error)".contains("unknown key 'surprise'") && "\(error)".contains("missing 'subscribers'")
        }
        #expect { try Configuration.load(path: folder.path("nowhere.yaml")) } throws: { "\($0)".contains("cannot read the file") }
    }

    @Test func jsonIsAcceptedBeingYAML() throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "c.json": #"{"subscribers": [{"name": "j", "plugin": "p.lua", "topics": [">"], "queue": {"capacity": 5}}]}"#,
        ])
        let configuration = try Configuration.load(path: folder.path("c.json"))
        #expect(configuration.subscribers.map(\.name) == ["j"])
        #expect(configuration.subscribers[0].capacity == 5)
    }

    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)), ("5s", .seconds(5)), ("2m", .seconds(120)), ("1h", .seconds(3600)),
        ("7d", .seconds(604_800)), ("1.5s", .milliseconds(1500)), ("1m30s", .seconds(90)), ("500us", .microseconds(500)),
        ("2h30m", .seconds(9000)), ("0.25ms", .microseconds(250)), ("0s", .zero), ("100000000d", .seconds(8_640_000_000_000)),
    ])
    func durations(_ text: String, _ expected: Duration) {
        #expect(ConfigValue.duration(text) == expected)
    }

    @Test func timeoutNoneIsSpelledOutAndAMisspelledKeyGetsASuggestion() throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "c.yaml": """
                subscribers:
                  - { name: a, plugin: p.lua, topics: [x], timeout: none }
                  - { name: b, plugin: p.lua, topics: [x], timeout: 0s }
                  - { name: c, plugin: p.lua, topics: [x], tiemout: 1m30s }
                  - { name: d, plugin: p.lua, topics: [x], timeout: 1.5s, on_failure: { backoff: 250us } }
                  - { name: e, plugin: p.lua, topics: [x], memory: 64MB, timeout: 2 sec }
                """,
        ])
        let error = try #require(throws: ConfigurationError.self) { try Configuration.load(path: folder.path("c.yaml")) }
        let text = error.description
        #expect(text.contains("c.yaml:3: subscriber 'b': timeout 0s would mean no time limit at all; write timeout: none if that is what you want"), "\(text)")
        #expect(text.contains("c.yaml:4: subscriber 'c': unknown key 'tiemout' in a subscriber (known: "), "\(text)")
        #expect(text.contains("; did you mean 'timeout'?"))
        #expect(text.contains("c.yaml:6: subscriber 'e': memory '64MB' is not a size such as 512KiB, 64MiB or 1GiB; did you mean 64MiB?"), "\(text)")
        #expect(text.contains("c.yaml:6: subscriber 'e': timeout '2 sec' is not a duration such as 250ms, 1.5s or 2m, or none; did you mean 2s?"))
        #expect(error.problems.count == 4)
        try folder.write("c.yaml", """
            subscribers:
              - { name: a, plugin: p.lua, topics: [x], timeout: none }
              - { name: d, plugin: p.lua, topics: [x], timeout: 1.5s, on_failure: { backoff: 250us } }
            """)
        let loaded = try Configuration.load(path: folder.path("c.yaml"))
        #expect(loaded.subscribers.map(\.timeout) == [.zero, .milliseconds(1500)])
        #expect(loaded.subscribers[1].onFailure.backoff == .microseconds(250))
    }

    @Test func sizesAndRefusals() {
        #expect(ConfigValue.size("512KiB") == 512 << 10)
        #expect(ConfigValue.size("64MiB") == 64 << 20)
        #expect(ConfigValue.size("1GiB") == 1 << 30)
        #expect(ConfigValue.size("100B") == 100)
        for bad in ["lots", "64", "64mb", "-1MiB", ""] { #expect(ConfigValue.size(bad) == nil) }
        for bad in ["5", "soon", "-1s", "5 s", "1s30m", "1s1s", "1.2.3s", ".s", "s", "", "1e3s", "999999999999999999d"] {
            #expect(ConfigValue.duration(bad) == nil, "\(bad)")
        }
        #expect(ConfigValue.substitute("a${X}b${Y}", environment: ["X": "1"]) == ("a1b", missing: ["Y"]))
        #expect(ConfigValue.substitute("${U:-nats://h:1}/${X:-no}/${E:-yes}", environment: ["X": "1", "E": ""]) == ("nats://h:1/1/yes", missing: []))
    }

    @Test func sinkEntriesWithTheirDefaultsAndIngest() throws {
        let folder = try PluginFolder(files: [
            "ca.pem": "",
            "c.yaml": """
                ingest: { http: { listen: "0.0.0.0:8080", token: "${TOKEN}", max_body: 1MiB } }
                subscribers:
                  - name: mail
                    topics: ["email.send"]
                    http:
                      url: "${MAIL_API:-http://127.0.0.1:8025}/v1/send"
                      method: PUT
                      headers: { Authorization: "Bearer ${TOKEN}" }
                      body: event
                      batch: { max_events: 50, max_wait: 1s }
                      timeout: 2s
                      tls: { ca: ca.pem }
                    on_failure: { retries: 5, backoff: 200ms, max_backoff: 10s, dead_letter: true }
                  - { name: plain, topics: [a], http: { url: "https://mail.example.com/send" } }
                  - name: archive
                    topics: ["order.>"]
                    file: { path: out/orders.jsonl, format: data, rotate: { max_bytes: 64MiB }, fsync: always }
                  - { name: log, topics: [">"], file: { path: all.jsonl } }
                """,
        ])
        let configuration = try Configuration.load(path: folder.path("c.yaml"), environment: ["TOKEN": "0123456789abcdefXYZ"])
        var mail = Configuration.HTTPSink(url: "http://127.0.0.1:8025/v1/send")
        (mail.method, mail.headers, mail.body) = (.PUT, ["Authorization": "Bearer 0123456789abcdefXYZ"], .event)
        (mail.maxEvents, mail.maxWait, mail.timeout, mail.caFile) = (50, .seconds(1), .seconds(2), folder.path("ca.pem"))
        #expect(configuration.subscribers[0].sink == .http(mail))
        #expect(configuration.subscribers[0].plugin.isEmpty)
        #expect(configuration.subscribers[0].onFailure.maxBackoff == .seconds(10))
        let plain = Configuration.HTTPSink(url: "https://mail.example.com/send")
        #expect(configuration.subscribers[1].sink == .http(plain))
        #expect((plain.method, plain.body, plain.maxEvents, plain.maxWait, plain.timeout) == (.POST, .data, 1, .milliseconds(100), .seconds(5)))
        var archive = Configuration.FileSink(path: folder.path("out/orders.jsonl"))
        (archive.format, archive.rotateBytes, archive.fsync) = (.data, 64 << 20, .always)
        #expect(configuration.subscribers[2].sink == .file(archive))
        let log = Configuration.FileSink(path: folder.path("all.jsonl"))
        #expect(configuration.subscribers[3].sink == .file(log))
        #expect((log.format, log.rotateBytes, log.keep, log.fsync) == (.event, nil, 10, .interval))
        var ingest = Configuration.Ingest(listen: "0.0.0.0:8080")
        (ingest.token, ingest.maxBody) = ("0123456789abcdefXYZ", 1 << 20)
        #expect(configuration.ingest == ingest)
    }

    @Test func sinkProblemsNameTheirLineAndNeverEchoAHeaderValue() throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "bad.yaml": """
                subscribers:
                  - { name: none, topics: [a] }
                  - { name: both, topics: [a], plugin: p.lua, file: { path: x.jsonl } }
                  - name: web
                    topics: [a]
                    http: { url: "ftp://host/x", body: json, verb: GET, headers: { "Bad Name": "s3cr3t-value" } }
                    timeout: 1s
                    memory: 1MiB
                  - { name: nourl, topics: [a], http: { method: DELETE } }
                  - { name: files, topics: [a], file: { path: x.jsonl, format: csv, rotate: { keep: 0 } } }
                  - { name: spilled, topics: [a], http: { url: "http://h/", batch: { max_events: 5 } }, queue: { overflow: spill } }
                  - { name: backoff, plugin: p.lua, topics: [a], on_failure: { max_backoff: 0ms } }
                """,
        ])
        expectProblems(loading: folder.path("bad.yaml"), [
            "bad.yaml:2: subscriber 'none': a subscriber needs one of 'plugin' (a Lua file), 'http' or 'file' (a sink)",
            "bad.yaml:3: subscriber 'both': a subscriber has one of 'plugin', 'http' or 'file', not plugin and file",
            "bad.yaml:6: subscriber 'web': http url 'ftp://host/x' is not an http:// or https:// URL with a host",
            "bad.yaml:6: subscriber 'web': http body 'json' is not data or event",
            "bad.yaml:6: subscriber 'web': unknown key 'verb' in http",
            "bad.yaml:6: subscriber 'web': http header name 'Bad Name' must be",
            "bad.yaml:7: subscriber 'web': an http sink's timeout goes in its http section",
            "bad.yaml:8: subscriber 'web': 'memory' is for plugins: a sink runs no Lua",
            "bad.yaml:9: subscriber 'nourl': http needs a 'url'",
            "bad.yaml:10: subscriber 'files': file format 'csv' is not event or data",
            "bad.yaml:10: subscriber 'files': file rotate needs 'max_bytes'",
            "bad.yaml:10: subscriber 'files': file rotate keep '0' is not a whole number of at least 1",
            "bad.yaml:11: subscriber 'spilled': an http sink with overflow 'spill' sends one event per request",
            "bad.yaml:11: queue overflow 'spill' needs a journal",
            "bad.yaml:12: subscriber 'backoff': on_failure max_backoff must be more than 0",
        ])
        #expect(throws: ConfigurationError.self) { try Configuration.load(path: folder.path("bad.yaml")) }
        do { _ = try Configuration.load(path: folder.path("bad.yaml")) } catch {
            #expect(!"\(error)".contains("s3cr3t"), "a header value may be a secret")
        }
    }

    @Test func metricsTokenAndAdmin() throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "plain.yaml": "metrics: { listen: \"127.0.0.1:9464\" }\nsubscribers:\n  - { name: a, plugin: p.lua, topics: [a] }\n",
            "admin.yaml": """
                metrics: { listen: "0.0.0.0:9464", token: "${TOKEN}", admin: true }
                subscribers:
                  - { name: a, plugin: p.lua, topics: [a] }
                """,
            "bad.yaml": """
                metrics: { listen: "0.0.0.0:9464", token: short, admin: yes }
                subscribers:
                  - { name: a, plugin: p.lua, topics: [a] }
                """,
            "open.yaml": """
                metrics:
                  listen: "10.0.0.1:9464"
                  admin: true
                subscribers:
                  - { name: a, plugin: p.lua, topics: [a] }
                """,
        ])
        let plain = try Configuration.load(path: folder.path("plain.yaml"))
        #expect(plain.metricsToken == nil && !plain.metricsAdmin)
        let admin = try Configuration.load(path: folder.path("admin.yaml"), environment: ["TOKEN": "0123456789abcdefXYZ"])
        #expect(admin.metricsToken == "0123456789abcdefXYZ" && admin.metricsAdmin)
        expectProblems(loading: folder.path("bad.yaml"), [
            "bad.yaml:1: metrics token must be at least 16 characters (it has 5)",
            "bad.yaml:1: metrics admin 'yes' is not true or false",
        ])
        expectProblems(loading: folder.path("open.yaml"), [
            "open.yaml:3: metrics admin needs metrics.token (16 characters or more) on '10.0.0.1:9464', which is not a loopback address",
        ])
    }

    @Test func onlyLoopbackAddressesCountAsLoopback() {
        for host in ["127.0.0.1", "127.1.2.3", "::1", "localhost"] { #expect(ConfigValue.isLoopback(host), "\(host)") }
        for host in ["0.0.0.0", "10.0.0.1", "127.0.0.1.example.com", "127.evil.com", "127.0.0.256", "::", "localhost.example.com", "127.0.0"] {
            #expect(!ConfigValue.isLoopback(host), "\(host)")
        }
    }

    @Test func workersAndKeys() throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "good.yaml": """
                journal: { path: j }
                subscribers:
                  - { name: pricing, plugin: p.lua, topics: [a], workers: 4, key: data.customer.id }
                  - { name: by_topic, plugin: p.lua, topics: [a], workers: 2, key: topic }
                  - { name: by_header, plugin: p.lua, topics: [a], workers: 3, key: headers.tenant }
                  - { name: unordered, http: { url: "http://127.0.0.1:1/x" }, topics: [a], workers: 8 }
                  - { name: single, plugin: p.lua, topics: [a], queue: { overflow: spill } }
                """,
            "bad.yaml": """
                journal: { path: j }
                subscribers:
                  - { name: none, plugin: p.lua, topics: [a], workers: 0 }
                  - { name: many, plugin: p.lua, topics: [a], workers: 1000 }
                  - { name: words, plugin: p.lua, topics: [a], workers: four }
                  - { name: keyless, plugin: p.lua, topics: [a], workers: 2, key: customer_id }
                  - { name: empty_path, plugin: p.lua, topics: [a], workers: 2, key: data..id }
                  - { name: spilling, plugin: p.lua, topics: [a], workers: 2, queue: { overflow: spill } }
                  - { name: file, file: { path: out.jsonl }, topics: [a], workers: 2 }
                  - { name: crowded, plugin: p.lua, topics: [a], workers: 4, queue: { capacity: 3 } }
                """,
        ])
        let configuration = try Configuration.load(path: folder.path("good.yaml"))
        let entries = Dictionary(uniqueKeysWithValues: configuration.subscribers.map { ($0.name, $0) })
        #expect(entries["pricing"]?.workers == 4)
        #expect(entries["pricing"]?.key == .data(["customer", "id"]))
        #expect(entries["by_topic"]?.key == .topic)
        #expect(entries["by_header"]?.key == .header("tenant"))
        #expect(entries["unordered"]?.workers == 8 && entries["unordered"]?.key == nil)
        #expect(entries["single"]?.workers == nil)
        expectProblems(loading: folder.path("bad.yaml"), [
            "bad.yaml:3:", "subscriber 'none': workers '0' is not a whole number from 1 to 256",
            "subscriber 'many': workers '1000' is not a whole number from 1 to 256",
            "subscriber 'words': workers 'four' is not a whole number from 1 to 256",
            "subscriber 'keyless': key 'customer_id' is not topic, data.<path> or headers.<name>",
            "subscriber 'empty_path': key 'data..id' is not topic, data.<path> or headers.<name>",
            "subscriber 'spilling': queue overflow 'spill' takes a single worker for now",
            "subscriber 'file': a file sink writes one file in order: workers is for plugins and http sinks",
            "subscriber 'crowded': queue capacity 3 is less than workers 4",
        ])
    }

    /// Expects loading `path` to fail, naming every one of `expected` (each a whole line or part of one).
    private func expectProblems(
        loading path: String, environment: [String: String] = ProcessInfo.processInfo.environment, _ expected: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(sourceLocation: sourceLocation) {
            try Configuration.load(path: path, environment: environment)
        } throws: { error in
            let text = "\(error)"
            for line in expected where !text.contains(line) {
                Issue.record("missing: \(line)\nin:\n\(text)", sourceLocation: sourceLocation)
            }
            return true
        }
    }
}
