import Switchboard
import SwitchboardTestSupport
import Testing

/// Writes the files, loads `t.test.yaml` and runs it.
private func runTests(_ files: [String: String]) throws -> (PluginTestReport, PluginFolder) {
    let folder = try PluginFolder(files: files)
    let file = try PluginTestFile.load(path: folder.path("t.test.yaml"), configuration: folder.path("none.yaml"))
    return (PluginTestRunner.run(file), folder)
}

/// The lines of every result of the report.
private func lines(_ report: PluginTestReport) -> [String] { report.results.flatMap(\.lines) }

@Suite struct PluginTestRunnerTests {
    @Test func aPluginOfAnEntryWithWorkersIsTestedAsItsFirstWorker() throws {
        let folder = try PluginFolder(files: [
            "p.lua": """
                return { handle = function() switchboard.publish("where", { worker = switchboard.worker, workers = switchboard.workers }) end }
                """,
            "c.yaml": "subscribers:\n  - { name: pricing, plugin: p.lua, topics: [a], workers: 4, key: data.k }\n",
            "t.test.yaml": """
                subscriber: pricing
                config: c.yaml
                tests:
                  - name: worker 1 of 4
                    events: [{ topic: a, data: { k: 1 } }]
                    expect:
                      publishes: [{ topic: where, data: { worker: 1, workers: 4 } }]
                """,
        ])
        let report = PluginTestRunner.run(try PluginTestFile.load(path: folder.path("t.test.yaml"), configuration: folder.path("none.yaml")))
        #expect(report.results.count == 1 && report.results.allSatisfy(\.passed), "\(lines(report))")
    }

    @Test func timersFollowTheVirtualClockEachAtItsOwnDueTime() throws {
        let (report, _) = try runTests([
            "p.lua": """
                local plugin = {}
                function plugin.init()
                  switchboard.every(1, function() switchboard.publish("tick", { at = switchboard.now() }) end)
                  switchboard.after(2.5, function()
                    switchboard.publish("once", { at = switchboard.now(), os = os.time() })
                    switchboard.after(0, function() switchboard.publish("soon", { at = switchboard.now() }) end)
                  end)
                  local cancelled = switchboard.after(1.5, function() switchboard.publish("cancelled", {}) end)
                  print(tostring(cancelled:cancel()), tostring(cancelled:cancel()))
                end
                return plugin
                """,
            "t.test.yaml": """
                plugin: p.lua
                topics: []
                tests:
                  - name: three seconds
                    events:
                      - { advance: 3s }
                    expect:
                      prints: ["true\\tfalse"]
                      publishes:
                        - { topic: tick, data: { at: 1767225601.0 } }
                        - { topic: tick, data: { at: 1767225602.0 } }
                        - { topic: once, data: { at: 1767225602.5, os: 1767225602 } }
                        - { topic: soon, data: { at: 1767225602.5 } }
                        - { topic: tick, data: { at: 1767225603.0 } }
                  - name: an hour of a one-second timer, at once
                    events:
                      - { advance: 1h }
                    expect:
                      failures: 0
                """,
        ])
        #expect(report.problem == nil)
        #expect(lines(report).first == "ok - \(report.path): three seconds", "\(lines(report))")
        // The second test fails on purpose only if the count is off: check it through its record.
        #expect(report.results.count == 2)
        #expect(report.results[1].passed)
    }

    @Test func anHourOfTimersFiresEveryOneWithoutWaiting() throws {
        let folder = try PluginFolder()
        let bench = try LuaTestRun(
            LuaSubscriberConfiguration(name: "p", script: try folder.write("p.lua", """
                local plugin = {}
                function plugin.init() switchboard.every(1, function() switchboard.publish("tick", switchboard.now()) end) end
                return plugin
                """)),
            startingAt: 1000, seed: 0)
        bench.advance(by: .seconds(3600))
        #expect(bench.record.publishes.count == 3600)
        #expect(bench.record.publishes.last?.data == .double(4600))
        #expect(bench.now == 4600)
    }

    @Test func theEventIsBuiltAsInARunWithItsHeadersIdAndTime() throws {
        let (report, _) = try runTests([
            "p.lua": """
                return { handle = function(event)
                  switchboard.publish("seen", { id = event.id, time = event.time, now = switchboard.now(),
                    trace = event.headers.trace, data = event.data, topic = event.topic })
                end }
                """,
            "t.test.yaml": """
                plugin: p.lua
                tests:
                  - name: fields
                    events:
                      - { topic: a.b, data: { n: 1, x: 1.0, list: [] }, headers: { trace: t-1 }, id: 00000000000000ff-1a, time: 2026-03-01T12:00:00.5Z }
                      - { topic: a.c }
                    expect:
                      publishes:
                        - { topic: seen, data: { id: 00000000000000ff-1a, time: 1772366400.5, now: 1772366400.5, trace: t-1, topic: a.b, data: { n: 1, x: 1.0, list: [] } } }
                        - { topic: seen, data: { id: 0000000000000000-2, time: 1772366400.5, topic: a.c } }
                """,
        ])
        #expect(report.problem == nil)
        #expect(report.results.allSatisfy { $0.passed }, "\(lines(report))")
    }

    @Test func failuresFollowTheSubscribersPolicyRetriesDeadLettersAndRestart() throws {
        let (report, _) = try runTests([
            "p.lua": """
                local plugin = {}
                function plugin.init() print("init") end
                function plugin.handle(event)
                  print("attempt " .. event.topic)
                  if event.data ~= "ok" then error("refused " .. tostring(event.data)) end
                end
                return plugin
                """,
            "t.test.yaml": """
                plugin: p.lua
                on_failure: { retries: 1, dead_letter: true, restart_after: 2 }
                tests:
                  - name: policy
                    events:
                      - { topic: a, data: bad }
                      - { topic: deadletter.other, data: bad }
                      - { topic: b, data: ok }
                    expect:
                      failures: 2
                      dead_letters: 1
                      errors: ["refused bad", "refused bad"]
                      prints: [init, attempt a, attempt a, attempt deadletter.other, attempt deadletter.other, init, attempt b]
                """,
        ])
        #expect(report.results.first?.passed == true, "\(lines(report))")
        #expect(report.results.first?.notes.contains { $0.contains("restarting: too many consecutive failures") } == true)
    }

    @Test func anEndlessLoopStopsAtItsTimeoutAndTheNextTestRuns() throws {
        let (report, _) = try runTests([
            "p.lua": """
                return { handle = function(event)
                  if event.data == "spin" then while true do end end
                  if event.data == "print" then while true do print("x") end end
                  print("handled " .. event.data)
                end }
                """,
            "t.test.yaml": """
                plugin: p.lua
                timeout: 100ms
                tests:
                  - name: hostile
                    events:
                      - { topic: a, data: spin }
                      - { topic: a, data: after }
                    expect:
                      failures: 1
                      errors: ["budget"]
                      prints: ["handled after"]
                  - name: a loop that prints fills no memory
                    events:
                      - { topic: a, data: print }
                    expect:
                      failures: 1
                  - name: next
                    events:
                      - { topic: a, data: fine }
                    expect:
                      prints: ["handled fine"]
                """,
        ])
        #expect(report.results.map(\.passed) == [true, false, true], "\(lines(report))")
        #expect(report.results[1].mismatches.map(\.expectation) == ["record"])
    }

    @Test func aTimerThatNeverLetsTheClockMoveIsCutOff() throws {
        let (report, _) = try runTests([
            "p.lua": """
                local function again() switchboard.after(0, again) end
                return { init = function() switchboard.after(0, again) end }
                """,
            "t.test.yaml": "plugin: p.lua\ntopics: []\ntests: [{ name: spins, events: [{ advance: 1s }], expect: { failures: 0 } }]\n",
        ])
        #expect(report.results.first?.mismatches.map(\.expectation) == ["record"], "\(lines(report))")
    }

    @Test func aTimerCallbackThatLoopsStopsTheTimersAfterTenFailures() throws {
        let (report, _) = try runTests([
            "p.lua": "return { init = function() switchboard.every(0.01, function() while true do end end) end }",
            "t.test.yaml": "plugin: p.lua\ntopics: []\ntimeout: 20ms\ntests: [{ name: spins, events: [{ advance: 1h }], expect: { failures: 0 } }]\n",
        ])
        let result = try #require(report.results.first)
        #expect(result.mismatches.map(\.expectation) == ["record"])
        #expect(result.lines[1].contains("10 timer callbacks failed; the other timers did not fire"), "\(result.lines)")
    }

    @Test func aRecordKeepsAtMost64MiB() throws {
        let (report, _) = try runTests([
            "p.lua": #"return { handle = function() local line = string.rep("x", 1 << 20) for _ = 1, 100 do print(line) end end }"#,
            "t.test.yaml": "plugin: p.lua\ntests: [{ name: big, events: [{ topic: a }], expect: { failures: 0 } }]\n",
        ])
        let result = try #require(report.results.first)
        #expect(result.lines[1].contains("more than 64MiB of publishes, prints and logs"), "\(result.lines)")
    }

    @Test func aRunsOSDateAndTimeAreTheOriginalsWithTheirNamesInErrors() throws {
        let folder = try PluginFolder()
        let script = try folder.write("p.lua", #"return { init = function() os.date("%Q") end }"#)
        #expect {
            try LuaSubscriberConfiguration(name: "p", script: script).check()
        } throws: { error in
            "\(error)".contains("p.lua:1: bad argument #1 to 'date' (invalid conversion specifier '%Q')")
        }
    }

    @Test func theClockMayBeAdvancedPastItsEndWithoutOverflowing() throws {
        let (report, _) = try runTests([
            "p.lua": """
                return { init = function()
                  switchboard.after(1e15, function() print("far") end)  -- held as about 31 years
                  switchboard.every(1e9, function() end)
                end }
                """,
            "t.test.yaml": """
                plugin: p.lua
                topics: []
                tests:
                  - name: centuries
                    events: [{ advance: 100000000d }, { advance: 100000000d }]
                    expect: { prints: [far], errors: [] }
                """,
        ])
        #expect(report.results.first?.passed == true, "\(lines(report))")
    }

    @Test func mathRandomRepeatsUnderTheSameSeed() throws {
        let folder = try PluginFolder()
        func draws(seed: Int64) throws -> [JSON] {
            let run = try LuaTestRun(
                LuaSubscriberConfiguration(name: "p", script: try folder.write("p.lua", """
                    local first = math.random(1000000)
                    return { init = function() switchboard.publish("r", { first, math.random(1000000), math.random() }) end }
                    """)),
                startingAt: PluginTestFile.defaultStart, seed: seed)
            run.finish()
            return run.record.publishes.map(\.data)
        }
        let (first, again, other) = (try draws(seed: 0), try draws(seed: 0), try draws(seed: 1))
        #expect(first == again)
        #expect(first != other)
    }

    @Test func aFailedExpectationShowsTheFirstDifferenceAndBothValues() throws {
        let (report, _) = try runTests([
            "p.lua": """
                return { handle = function(event)
                  switchboard.publish("email.send", { to = "bob@example.com" })
                  switchboard.log.warn("sent", { n = 1 })
                  local ok, err = switchboard.publish("bad topic", {})
                  print(tostring(ok), err)
                end }
                """,
            "t.test.yaml": """
                plugin: p.lua
                tests:
                  - name: differs
                    events: [{ topic: user.created }]
                    expect:
                      publishes: [{ topic: email.send, data: { to: ann@example.com } }]
                      logs: [{ level: warn, message: sent, fields: { n: 1.0 } }]
                      prints: ['nil\tinvalid topic "bad topic": token 1 ''bad topic'' contains white space']
                """,
        ])
        let result = try #require(report.results.first)
        #expect(result.lines == [
            "FAIL - \(report.path): differs",
            #"  publishes: first difference at [0].data.to: expected "ann@example.com", got "bob@example.com""#,
            #"    expected: [{"topic":"email.send","data":{"to":"ann@example.com"}}]"#,
            #"    actual:   [{"topic":"email.send","data":{"to":"bob@example.com"}}]"#,
            "  logs: first difference at [0].fields.n: expected 1.0 (a float), got 1 (an integer)",
            #"    expected: [{"level":"warn","message":"sent","fields":{"n":1.0}}]"#,
            #"    actual:   [{"level":"warn","message":"sent","fields":{"n":1}}]"#,
            "  switchboard logged:",
            #"    warning: publish failed: invalid topic "bad topic": token 1 'bad topic' contains white space"#,
        ], "\(result.lines.joined(separator: "\n"))")
    }

    @Test func aPluginThatDoesNotLoadMakesTheFileInvalidWithItsLine() throws {
        let (report, folder) = try runTests([
            "p.lua": "return { handle = function(event) end, init = function() error('no settings') end }",
            "t.test.yaml": """
                # a comment
                plugin: p.lua
                tests:
                  - { name: never runs, events: [{ topic: a }], expect: { failures: 0 } }
                """,
        ])
        #expect(report.results.isEmpty)
        let problem = try #require(report.problem)
        #expect(problem.hasPrefix("\(folder.path("t.test.yaml")):2: subscriber 'p', test 'never runs': \(folder.path("p.lua")): init failed:"), "\(problem)")
        #expect(problem.contains("no settings"))
    }
}

@Suite struct PluginTestFileTests {
    /// The problems of loading `t.test.yaml` among `files`, one line each.
    private func problems(_ files: [String: String]) throws -> (String, PluginFolder) {
        let folder = try PluginFolder(files: files)
        do {
            _ = try PluginTestFile.load(path: folder.path("t.test.yaml"), configuration: folder.path("c.yaml"))
            return ("", folder)
        } catch {
            return (error.description, folder)
        }
    }

    @Test func everyProblemIsReportedWithItsLine() throws {
        let (text, folder) = try problems([
            "p.lua": "return { handle = function() end }",
            "t.test.yaml": """
                plugin: p.lua
                topics: ["user.*"]
                colour: blue
                tests:
                  - name: one
                    events:
                      - { topic: order.created }
                      - { topic: "user.*" }
                      - { advance: soon }
                      - { topic: user.a, id: 12, time: yesterday, extra: 1 }
                      - { topic: user.a, time: 1e11, data: { a: .inf } }
                    expect: { publishes: [{ data: 1 }], logs: [{ level: loud }], failures: -1, colour: 1 }
                  - name: two
                    events: [{ topic: user.a }]
                """,
        ])
        let file = folder.path("t.test.yaml")
        for expected in [
            "\(file):3: unknown key 'colour' in a test file",
            "\(file):7: events[0]: topic 'order.created' is not one the subscriber is bound to (user.*)",
            "\(file):8: events[1] topic: ",
            "\(file):9: events[2] advance 'soon' is not a duration",
            "\(file):10: unknown key 'extra' in events[3], an event step",
            "\(file):10: events[3] id '12' is not an event id",
            "\(file):10: events[3] time 'yesterday' is not Unix seconds or RFC 3339 time",
            "\(file):11: events[4] time '1e11' is not Unix seconds or RFC 3339 time such as 2026-01-01T00:00:00Z, before 2500",
            "\(file):11: events[4] data: .inf is not a number JSON can hold",
            "\(file):12: an expected publish needs a 'topic'",
            "\(file):12: expected log level 'loud' is not debug, info, warn or error",
            "\(file):12: expect failures '-1' is not a whole number",
            "\(file):12: unknown key 'colour' in test 'one' expect",
            "\(file):13: test 'two' needs 'expect'",
        ] {
            #expect(text.contains(expected), "missing \(expected) in\n\(text)")
        }
    }

    @Test func aSubscriberIsLookedUpInItsConfiguration() throws {
        let files = [
            "p.lua": "return { handle = function() end }",
            "c.yaml": """
                subscribers:
                  - { name: email, plugin: p.lua, topics: [user.created] }
                  - { name: archive, topics: [user.created], file: { path: out.jsonl } }
                  - { name: producer, plugin: p.lua }
                """,
        ]
        func problem(_ test: String) throws -> String {
            try problems(files.merging(["t.test.yaml": test]) { _, new in new }).0
        }
        #expect(try problem("subscriber: email\ntests: [{ name: a, events: [{ topic: user.created }], expect: { failures: 0 } }]") == "")
        #expect(try problem("subscriber: mail\ntests: [{ name: a, expect: { failures: 0 } }]").contains(":1: no subscriber 'mail' in "))
        #expect(try problem("subscriber: mail\ntests: [{ name: a, expect: { failures: 0 } }]").contains("(it has: email, archive, producer)"))
        #expect(try problem("subscriber: archive\ntests: [{ name: a, expect: { failures: 0 } }]").contains("is a sink, not a plugin"))
        #expect(try problem("subscriber: producer\ntests: [{ name: a, events: [{ topic: x }], expect: { failures: 0 } }]")
            .contains("the subscriber has no topics"))
        #expect(try problem("subscriber: email\nconfig: nope.yaml\ntests: [{ name: a, expect: { failures: 0 } }]")
            .contains("nope.yaml: cannot read the file"))
        #expect(try problem("subscriber: email\ntimeout: 1s\ntests: [{ name: a, expect: { failures: 0 } }]")
            .contains(":2: 'timeout' goes with 'plugin:'"))
        #expect(try problem("plugin: missing.lua\ntests: [{ name: a, expect: { failures: 0 } }]").contains("plugin file 'missing.lua' not found"))
    }
}
