import Foundation
import SwitchboardConfig
import SwitchboardJSON
import SwitchboardTestSupport
import Testing

/// The reference and the schema say what the reader does: the same keys, no more, no fewer.
@Suite struct ConfigurationReferenceTests {
    /// Every key the reader knows, by its path: `journal.retention.max_age`, `subscribers[].queue`.
    static let codeKeys = Set(Configuration.Section.all.flatMap { section in
        section.keys.map { section.path.isEmpty ? $0 : "\(section.path).\($0)" }
    })

    @Test func theReferenceListsEveryKeyTheReaderKnowsAndNoOther() throws {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        // A table row's keys are the code spans of its first cell, under the section its
        // heading names in its first code span (none: the top level).
        var section = ""
        var documented = Set<String>()
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("#") {
                section = Self.codeSpans(String(line)).first ?? ""
            } else if line.hasPrefix("| `") {
                let cell = String(line.dropFirst().prefix { $0 != "|" })
                for key in Self.codeSpans(cell) { documented.insert(section.isEmpty ? key : "\(section).\(key)") }
            }
        }
        // A key that holds a section is documented by the rows of its keys (`queue.capacity`).
        let missing = Self.codeKeys.filter { key in
            !documented.contains(key) && !documented.contains { $0.hasPrefix(key + ".") || $0.hasPrefix(key + "[].") }
        }
        #expect(missing.isEmpty, "docs/configuration.md lacks \(missing.sorted())")
        let unknown = documented.subtracting(Self.codeKeys)
        #expect(unknown.isEmpty, "docs/configuration.md lists keys the reader refuses: \(unknown.sorted())")
    }

    @Test func theSchemaKnowsExactlyTheKeysOfTheReader() throws {
        let schema = try JSON(parsing: Data(contentsOf: packageRoot.appendingPathComponent("config/switchboard.schema.json")))
        var found = Set<String>()
        func walk(_ node: JSON, _ path: String, depth: Int = 0) {
            guard depth < 20 else { return }
            if let reference = node["$ref"]?.stringValue, reference.hasPrefix("#/$defs/"),
               let target = schema["$defs"]?[String(reference.dropFirst("#/$defs/".count))] {
                walk(target, path, depth: depth + 1)
            }
            for branch in ["anyOf", "oneOf", "allOf"] {
                if case .array(let alternatives)? = node[branch] { for alternative in alternatives { walk(alternative, path, depth: depth + 1) } }
            }
            if let items = node["items"] { walk(items, path + "[]", depth: depth + 1) }
            if case .object(let properties)? = node["properties"] {
                #expect(node["additionalProperties"] == false, "\(path.isEmpty ? "the top" : path) must refuse unknown keys")
                for (key, value) in properties {
                    let full = path.isEmpty ? key : "\(path).\(key)"
                    found.insert(full)
                    walk(value, full, depth: depth + 1)
                }
            }
        }
        walk(schema, "")
        #expect(found.subtracting(Self.codeKeys).isEmpty, "the schema has keys the reader refuses: \(found.subtracting(Self.codeKeys).sorted())")
        #expect(Self.codeKeys.subtracting(found).isEmpty, "the schema lacks \(Self.codeKeys.subtracting(found).sorted())")
    }

    @Test func everyShippedConfigurationNamesTheSchemaAndPassesIt() async throws {
        let folder = packageRoot.appendingPathComponent("config")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 8)
        for file in files {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            #expect(text.hasPrefix("# yaml-language-server: $schema=switchboard.schema.json\n"), "\(file)")
        }
        let verdicts = try await Self.validate(files.map { folder.appendingPathComponent($0).path })
        #expect(verdicts == Array(repeating: "valid", count: files.count), "\(zip(files, verdicts).map { "\($0): \($1)" })")
    }

    /// The schema and the reader agree on what is valid, for what editors should catch.
    @Test func theSchemaAndTheReaderAgreeOnValidAndInvalidFiles() async throws {
        let entry = "subscribers:\n  - name: a\n    plugin: p.lua\n"
        let cases: [(yaml: String, valid: Bool)] = [
            (entry + "    topics: [a]\n    timeout: none\n    memory: 64MiB\n    queue: { capacity: 10 }\n", true),
            (entry + "    queue: { capacity: \"${CAPACITY}\" }\n    timeout: \"${TIMEOUT:-1m30s}\"\n", true),
            (entry + "    on_failure: { retries: 2, dead_letter: true, backoff: 1.5s }\n", true),
            (entry + "    timeot: 1s\n", false),
            (entry + "    memory: 64MB\n", false),
            (entry + "    timeout: 2 sec\n", false),
            (entry + "    queue: { capacity: 0 }\n", false),
            (entry + "    queue: { overflow: drop }\n", false),
            (entry + "    http: { url: \"http://127.0.0.1:1\" }\n", false),  // a plugin and a sink
            ("subscribers: []\nsurprise: 1\n", false),
            ("subscribers: []\njournal: { path: j, retention: { max_age: 7d } }\n", true),
            ("subscribers: []\njournal: { path: j, fsync: sometimes }\n", false),
            ("subscribers: []\nnats: { url: \"nats://127.0.0.1:4222\", export: [a], tls: { ca: c.pem, ciphers: x } }\n", false),
            ("subscribers: []\nlog: { level: loud }\n", false),
            ("subscribers: []\nnats: { url: \"nats://h:4222\", jetstream: { stream: { name: S, subjects: [\"a.>\"], create: true }, export: [\"a.>\"] } }\n", true),
            ("subscribers: []\nnats: { url: \"nats://h:4222\", jetstream: { stream: { name: S, replicas: 3 }, export: [a] } }\n", false),
            ("subscribers: []\nnats: { url: \"nats://h:4222\", jetstream: { stream: { name: S, storage: disk }, export: [a] } }\n", false),
            ("subscribers: []\nmetrics: { listen: \"127.0.0.1:9464\" }\n", true),
            ("subscribers:\n  - name: f\n    file: { path: out.jsonl, rotate: { max_bytes: 1MiB, keep: 3 } }\n    topics: [\">\"]\n", true),
            ("subscribers:\n  - name: f\n    file: { path: out.jsonl, rotate: { keep: 3 } }\n", false),
        ]
        let folder = try PluginFolder(files: ["p.lua": "return { handle = function() end }"])
        var paths: [String] = []
        for (index, sample) in cases.enumerated() {
            paths.append(try folder.write("c\(index).yaml", sample.yaml))
        }
        let verdicts = try await Self.validate(paths)
        for (index, sample) in cases.enumerated() {
            let reader = Result { () throws(ConfigurationError) in
                try Configuration.load(path: paths[index], environment: ["CAPACITY": "5", "TIMEOUT": ""])
            }
            let readerValid = (try? reader.get()) != nil
            #expect(readerValid == sample.valid, "the reader on \(sample.yaml): \(reader)")
            #expect((verdicts[index] == "valid") == sample.valid, "the schema on \(sample.yaml): \(verdicts[index])")
        }
    }

    /// Each file's verdict by the schema, with Debian's python3-jsonschema: `valid`, or the first error.
    static func validate(_ files: [String]) async throws -> [String] {
        let schema = packageRoot.appendingPathComponent("config/switchboard.schema.json").path
        let (status, output) = try await runProgram("/usr/bin/python3", ["-c", """
            import json, sys, yaml, jsonschema
            schema = json.load(open(sys.argv[1]))
            jsonschema.Draft202012Validator.check_schema(schema)
            validator = jsonschema.Draft202012Validator(schema)
            for path in sys.argv[2:]:
                errors = sorted(validator.iter_errors(yaml.safe_load(open(path))), key=lambda e: list(e.path))
                print("valid" if not errors else "invalid: " + errors[0].message.replace("\\n", " "))
            """, schema] + files)
        #expect(status == 0, "python3 -c (jsonschema): \(output)")
        return output.split(separator: "\n").map(String.init)
    }

    /// The text between backquotes in `line`, in order.
    static func codeSpans(_ line: String) -> [String] {
        line.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }
}
