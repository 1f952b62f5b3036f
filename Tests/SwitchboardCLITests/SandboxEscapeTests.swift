// Escape attempts against the Lua sandbox, through the real binary (issue 15). Each attempt
// attacks a mechanism (the environment a plugin gets, `require`, `load`, metatables, the host's
// own code paths, budgets, timers, the JSON bridge) and tries the variants a hostile author
// would, and each asserts two things: that the attempt failed, as the plugin itself observed
// it (it prints `attempt N: blocked|ESCAPED|WRONG <detail>`), and that nothing happened: no
// file appeared (attempts aim their writes and commands at `effects/` in the test's folder, the
// process runs in that folder too), no process ran (commands would create files there), and the
// secret put in the process's environment never shows in its output. A healthy Lua subscriber
// handles every event beside the hostile ones and prints its count from `shutdown()`; the
// `--report` counts add up, and the process exits normally.
//
// Attempts that cannot crash or hang a state share one run (one attempt per event, each under
// pcall, the package table restored between them); those that may crash the process or hang a
// state get runs of their own. Every run is bounded: a run still going at its bound is killed
// and reported as hung.
import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

// MARK: - Runs of the binary

/// What one bounded run of the binary came to.
private struct EscapeRun {
    var status: Int32
    /// The signal that ended the process, when one did (a crash).
    var signal: Int32?
    /// Still running at its bound, and killed by the test.
    var hung: Bool
    var output: String
    var errors: String
    var seconds: Double
    /// The peak resident set size seen in /proc while it ran, in bytes (VmHWM).
    var peakRSS: Int
    var report: JSON?

    /// How the process ended, for failure messages.
    var ending: String {
        if hung { return "hung: killed after \(Int(seconds)) s" }
        if let signal { return "crashed with signal \(signal)" }
        return "exited with status \(status)"
    }

    /// The lines of standard output that start with `prefix`.
    func lines(startingWith prefix: String) -> [String] {
        output.split(separator: "\n", omittingEmptySubsequences: true).map(String.init).filter { $0.hasPrefix(prefix) }
    }

    /// The subscriber's counts from the report.
    func counts(_ name: String) -> [String: Int] {
        var result: [String: Int] = [:]
        for key in ["received", "handled", "failed", "dropped", "abandoned", "pending"] {
            result[key] = report?["subscribers"]?[name]?[key]?.intValue.map { Int($0) }
        }
        return result
    }
}

/// Input written to the process, then (optionally) a wait until its standard output shows `until`.
private struct Stage {
    var lines: [String]
    var until: String?
}

/// The name of the environment variable that holds the secret no plugin may read.
private let secretName = "SB_ESCAPE_SECRET"

/// The peak resident set size of process `pid` so far (VmHWM), in bytes, or 0.
private func peakRSS(of pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let digits = line.filter(\.isNumber)
        return (Int(digits) ?? 0) * 1024
    }
    return 0
}

/// Runs the built binary with `arguments` in `folder`, feeding `stages` to its standard input,
/// with the secret in its environment. Standard output and error go to files in the folder. It
/// is fed and waited for on a thread of its own, so that no thread of the concurrency pool
/// blocks; past `bound` seconds it is killed (SIGKILL) and counts as hung.
private func runBinary(
    _ arguments: [String], in folder: PluginFolder, stages: [Stage], secret: String, bound: Double
) async throws -> EscapeRun {
    Glibc.signal(SIGPIPE, SIG_IGN)  // writing to a process that crashed must not end the tests
    let build = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let process = Process()
    // SANDBOX_ESCAPE_BINARY runs the suite against another build (an older one, to see it fail).
    process.executableURL = ProcessInfo.processInfo.environment["SANDBOX_ESCAPE_BINARY"].map(URL.init(fileURLWithPath:))
        ?? build.appendingPathComponent("switchboard")
    process.arguments = arguments
    process.currentDirectoryURL = folder.url
    process.environment = ProcessInfo.processInfo.environment.merging([secretName: secret]) { _, new in new }
    let outPath = folder.path("out.txt"), errPath = folder.path("errors.txt")
    for path in [outPath, errPath] { _ = FileManager.default.createFile(atPath: path, contents: nil) }
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    let input = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = input
    let start = Date()
    try process.run()
    try? output.close()
    try? errors.close()
    let reportPath = arguments.firstIndex(of: "--report").map { arguments[$0 + 1] }
    return await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            let end = start.addingTimeInterval(bound)
            var peak = 0
            func read(_ path: String) -> String {
                (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            }
            /// Polls `condition` while the process runs, until `end`.
            func wait(_ condition: () -> Bool) {
                while Date() < end, process.isRunning, !condition() {
                    peak = max(peak, peakRSS(of: process.processIdentifier))
                    usleep(2000)
                }
            }
            for stage in stages {
                try? input.fileHandleForWriting.write(contentsOf: Data(stage.lines.map { $0 + "\n" }.joined().utf8))
                if let text = stage.until { wait { read(outPath).contains(text) } }
            }
            try? input.fileHandleForWriting.close()
            wait { false }
            let hung = process.isRunning
            if hung { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            let seconds = Date().timeIntervalSince(start)
            let report = reportPath.flatMap { path in
                (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { try? JSON(parsing: $0) }
            }
            continuation.resume(returning: EscapeRun(
                status: process.terminationStatus,
                signal: process.terminationReason == .uncaughtSignal ? process.terminationStatus : nil,
                hung: hung, output: read(outPath), errors: read(errPath), seconds: seconds, peakRSS: peak,
                report: report))
        }
    }
}

// MARK: - Plugins and fixtures

/// A Lua string literal holding `text` (quotes and backslashes escaped).
private func luaString(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

/// A Lua string literal holding `bytes`, every byte as a decimal escape.
private func luaBytes(_ bytes: [UInt8]) -> String {
    "\"" + bytes.map { "\\" + String(format: "%03d", $0) }.joined() + "\""
}

private func bytes(hex: String) -> [UInt8] {
    var result: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        result.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return result
}

/// A valid Lua 5.4 binary chunk (`string.dump(load('return "BINARY-LOADED"'), true)`, made by
/// the trusted lua5.4), which returns "BINARY-LOADED" when run: the proof that a load took binary.
private let binaryChunk = bytes(hex: """
    1b4c7561540019930d0a1a0a0408087856000000000000000000000028774001808080000102845100000003000000\
    460002014600010181048e42494e4152592d4c4f41444544810100008080808080
    """)

/// A malformed binary chunk: a valid header and a function whose second instruction was patched
/// into a jump 16 million instructions ahead (lua5.4 itself dies with SIGSEGV running it).
private let malformedChunk = bytes(hex: """
    1b4c7561540019930d0a1a0a04080878560000000000000000000000287740018080800001038951000000b8ff11fa\
    52000000d00000004e0000008d00000103010000c6000301c600010181048742494e415259810100008080808080
    """)

/// The healthy subscriber: counts every event, never reads `data` except on `p.*` topics (which
/// hostile plugins publish to), and prints its count from `shutdown()`.
private let healthyPlugin = """
    local count, print, encode, sub = 0, print, switchboard.json.encode, string.sub
    return {
      init = function() print("healthy init") end,
      handle = function(event)
        count = count + 1
        if sub(event.topic, 1, 2) == "p." then print("healthy saw " .. event.topic .. " " .. encode(event.data)) end
      end,
      shutdown = function() print("healthy handled " .. count) end,
    }
    """

/// One escape attempt: `lua` is the body of `function(event)`, with `ID` (its number) and the
/// prelude's helpers in scope; it returns `blocked(detail)`, `escaped(detail)` or `wrong(detail)`.
/// An error it raises counts as blocked, unless it is `strict` (then it is wrong: the attempt
/// expected a call to succeed). A `start` attempt prints `attempt N: start <time>` first (budget
/// attempts, which may end by the budget instead of returning). An `uncaught` one runs outside
/// pcall, so that its error reaches the host.
private struct Attempt {
    var name: String
    var strict = false
    var start = false
    var uncaught = false
    var lua: String
}

/// The Lua that every hostile plugin starts with: references saved before any attempt runs,
/// and the helpers the attempts use.
private func prelude(effects: String, parent: String) -> String {
    #"""
    local EFFECTS, PARENT, SECRET_NAME = \#(luaString(effects)), \#(luaString(parent)), "\#(secretName)"
    local BIN = \#(luaBytes(binaryChunk))
    local print, pcall, xpcall, tostring, tonumber, type, rawget, rawset, rawequal, rawlen, next, select, ipairs, pairs, error =
      print, pcall, xpcall, tostring, tonumber, type, rawget, rawset, rawequal, rawlen, next, select, ipairs, pairs, error
    local getmetatable, setmetatable, load, require, collectgarbage = getmetatable, setmetatable, load, require, collectgarbage
    local concat, sort, insert = table.concat, table.sort, table.insert
    local gsub, find, sub, rep = string.gsub, string.find, string.sub, string.rep
    local coroutine, string, table, math = coroutine, string, table, math
    local sb, json, now = switchboard, switchboard.json, switchboard.now
    local PACKAGE = package
    local G = _G

    local function clean(value)
      local text = type(value) == "string" and value or tostring(value)
      return (gsub(text, "%s+", " "))
    end
    local function blocked(detail) return "blocked", detail end
    local function escaped(detail) return "ESCAPED", detail end
    local function wrong(detail) return "WRONG", detail end
    local function collect() collectgarbage() collectgarbage() end
    local function noop() end

    -- `text` with every plain occurrence of `old` replaced by `new`.
    local function replace(text, old, new)
      local parts, from = {}, 1
      while true do
        local i, j = find(text, old, from, true)
        if not i then break end
        parts[#parts + 1] = sub(text, from, i - 1)
        parts[#parts + 1] = new
        from = j + 1
      end
      parts[#parts + 1] = sub(text, from)
      return concat(parts)
    end

    -- Calls f(...): true, message when it raised with `needle` in its message (or any message
    -- without a needle); nil, message when it raised something else; false, result when it did not raise.
    local function refused(needle, f, ...)
      local ok, result = pcall(f, ...)
      if ok then return false, result end
      result = clean(result)
      if needle and not find(result, needle, 1, true) then return nil, result end
      return true, result
    end

    -- Keys of functions the default sandbox takes away (2: only with a sibling that says which library it is).
    local DANGER = {
      popen = 1, execute = 1, getenv = 1, loadlib = 1, searchpath = 1, getregistry = 1, getupvalue = 1,
      setupvalue = 1, upvalueid = 1, upvaluejoin = 1, sethook = 1, gethook = 1, getlocal = 1, setlocal = 1,
      getuservalue = 1, setuservalue = 1, getinfo = 1, dump = 1, dofile = 1, loadfile = 1, tmpname = 1,
      setlocale = 1, exit = 1, tmpfile = 1, output = 1, input = 1, remove = 2, rename = 1, open = 2, lines = 2,
    }
    -- The dangerous functions `t` holds, except the `allowed` ones, as a sorted list of keys.
    local function dangers(t, allowed)
      local found = {}
      if type(t) ~= "table" then return found end
      for key, kind in next, DANGER do
        if not (allowed and allowed[key]) and type(rawget(t, key)) == "function" then
          local library = kind == 1
            or (key == "remove" and rawget(t, "rename") ~= nil)
            or ((key == "open" or key == "lines") and rawget(t, "close") ~= nil and (rawget(t, "write") ~= nil or rawget(t, "read") ~= nil))
          if library then found[#found + 1] = key end
        end
      end
      sort(found)
      return found
    end

    -- Uses whatever dangerous function `t` holds, for real (writes and commands aim at EFFECTS,
    -- the environment read is the secret's): the test then sees whether anything happened.
    -- Returns what it found, or nil.
    local function exploit(t, tag)
      local found = dangers(t)
      if #found == 0 then return nil end
      local f = rawget(t, "popen")
      if type(f) == "function" then
        local ok, handle = pcall(f, "touch '" .. EFFECTS .. "/" .. tag .. "-popen'")
        if ok and handle then pcall(function() handle:read("a") handle:close() end) end
      end
      f = rawget(t, "execute")
      if type(f) == "function" then pcall(f, "touch '" .. EFFECTS .. "/" .. tag .. "-execute'") end
      f = rawget(t, "open")
      if type(f) == "function" and rawget(t, "close") then
        local ok, handle = pcall(f, EFFECTS .. "/" .. tag .. "-open", "w")
        if ok and handle then pcall(function() handle:write("x") handle:close() end) end
      end
      f = rawget(t, "getenv")
      if type(f) == "function" then
        local ok, value = pcall(f, SECRET_NAME)
        found[#found + 1] = "getenv=" .. tostring(value)
      end
      return concat(found, ",")
    end

    -- Everything reachable from `roots` ({path, value} pairs) through table keys and values and
    -- metatables, without running a metamethod: the paths of dangerous functions found.
    local function scan(roots, allowed)
      local seen, queue, head, hits = {}, {}, 1, {}
      for i = 1, #roots do queue[#queue + 1] = roots[i] end
      while head <= #queue and head <= 50000 do
        local path, value = queue[head][1], queue[head][2]
        head = head + 1
        local kind = type(value)
        if (kind == "table" or kind == "userdata" or kind == "string" or kind == "function" or kind == "thread")
            and not seen[value] then
          seen[value] = true
          if kind == "table" then
            local found = dangers(value, allowed)
            for i = 1, #found do hits[#hits + 1] = path .. "." .. found[i] end
            for k, v in next, value do
              local name = type(k) == "string" and k or ("<" .. type(k) .. ">")
              queue[#queue + 1] = {path .. "." .. name, v}
              if type(k) ~= "string" then queue[#queue + 1] = {path .. "[key]", k} end
            end
          end
          local mt = getmetatable(value)
          if mt ~= nil then queue[#queue + 1] = {"getmetatable(" .. path .. ")", mt} end
        end
      end
      return hits
    end

    -- Restores the package table after an attempt tampered with it.
    local ORIGINAL = {}
    if type(PACKAGE) == "table" then
      ORIGINAL.path, ORIGINAL.cpath = rawget(PACKAGE, "path"), rawget(PACKAGE, "cpath")
      for _, key in ipairs({"searchers", "preload"}) do
        local t = rawget(PACKAGE, key)
        if type(t) == "table" then
          local copy = {}
          for k, v in next, t do copy[k] = v end
          ORIGINAL[key] = {t, copy}
        end
      end
    end
    local function restore()
      if type(PACKAGE) ~= "table" then return end
      pcall(function()
        PACKAGE.path, PACKAGE.cpath = ORIGINAL.path, ORIGINAL.cpath
        for _, key in ipairs({"searchers", "preload"}) do
          local saved = ORIGINAL[key]
          if saved then
            local t, copy = saved[1], saved[2]
            for k in next, t do t[k] = nil end
            for k, v in next, copy do t[k] = v end
            PACKAGE[key] = t
          else
            PACKAGE[key] = nil
          end
        end
        local loaded = rawget(PACKAGE, "loaded")
        if type(loaded) == "table" then
          for _, name in ipairs({"evil_parent", "cjson", "cjson.util", "only_via_searcher", "evil_preload", "binmod"}) do
            loaded[name] = nil
          end
        end
      end)
      rawset(G, "EVIL_RAN", nil)
    end
    """#
}

/// A hostile plugin that runs attempt N for the event on topic `t.aN`.
private func hostilePlugin(
    _ attempts: [Attempt], effects: String, parent: String, restoreBetween: Bool = true, top: String = "",
    extraMembers: String = ""
) -> String {
    var source = prelude(effects: effects, parent: parent) + "\n" + top + "\nlocal attempts = {}\n"
    for (index, attempt) in attempts.enumerated() {
        source += """
            attempts[\(index + 1)] = { strict = \(attempt.strict), start = \(attempt.start), uncaught = \(attempt.uncaught),
              run = function(event)
            local ID = \(index + 1)
            \(attempt.lua)
            end }

            """
    }
    source += """
        return {
          \(extraMembers)
          handle = function(event)
            local n = tonumber(sub(event.topic, 4))
            local attempt = attempts[n]
            if attempt == nil then print("attempt " .. tostring(n) .. ": WRONG no such attempt") return end
            if attempt.start then print("attempt " .. n .. ": start " .. tostring(now())) end
            if attempt.uncaught then
              if not attempt.start then print("attempt " .. n .. ": raising") end
              local verdict, detail = attempt.run(event)
              print("attempt " .. n .. ": " .. tostring(verdict or "blocked") .. " " .. clean(detail or "returned"))
              return
            end
            local ok, verdict, detail = pcall(attempt.run, event)
            if not ok then
              verdict, detail = attempt.strict and "WRONG" or "blocked", "raised: " .. clean(verdict)
            elseif verdict ~= "blocked" and verdict ~= "ESCAPED" and verdict ~= "WRONG" then
              verdict, detail = "WRONG", "the attempt returned " .. clean(verdict)
            end
            \(restoreBetween ? "restore()" : "")
            print("attempt " .. n .. ": " .. verdict .. " " .. clean(detail or ""))
          end,
        }
        """
    return source
}

/// One test's folder: `plugins/` with the healthy and hostile plugins (and modules), a parent
/// folder file that `require` must never reach, `effects/` that must stay empty, and `c.yaml`.
private final class Sandbox {
    let folder: PluginFolder
    let secret = "sb-secret-\(UUID().uuidString)"
    var effects: String { folder.path("effects") }
    /// The folder above `plugins/`, where evil_parent.lua lies.
    var parent: String { folder.url.path }
    /// What the folder held when the first run started.
    private var before: Set<String>?

    /// `subscribers` are YAML flow mappings, with `plugins/NAME` paths; `files` go under the folder.
    init(subscribers: [String], files: [String: String], drainTimeout: String = "5s") throws {
        folder = try PluginFolder()
        try FileManager.default.createDirectory(atPath: effects, withIntermediateDirectories: true)
        try folder.write("plugins/healthy.lua", healthyPlugin)
        // Modules `require` may load (next to the plugin) and ones it must never load.
        try folder.write("plugins/good.lua", "return 'GOOD'")
        try folder.write("plugins/sub/init.lua", "return 'SUB'")
        try folder.write("plugins/sub/leaf.lua", "return 'LEAF'")
        try folder.write("plugins/shared.lua", "return { value = 'pristine' }")
        try Data(binaryChunk).write(to: URL(fileURLWithPath: folder.path("plugins/binmod.lua")))
        try folder.write("evil_parent.lua", """
            rawset(_G, "EVIL_RAN", true)
            local io = rawget(_G, "io") or (type(package) == "table" and type(package.loaded) == "table" and package.loaded.io)
            if type(io) == "table" and io.open then
              local f = io.open(\(luaString(folder.path("effects/evil-parent-ran"))), "w")
              if f then f:write("x") f:close() end
            end
            return "EVIL"
            """)
        for (name, text) in files { try folder.write(name, text) }
        let healthy = #"{ name: healthy, plugin: plugins/healthy.lua, topics: ["t.>", "p.>"] }"#
        let yaml = "drain_timeout: \(drainTimeout)\nsubscribers:\n"
            + ([healthy] + subscribers).map { "  - \($0)\n" }.joined()
        try folder.write("c.yaml", yaml)
    }

    /// Every path under the folder.
    private func listing() -> Set<String> {
        Set(FileManager.default.enumerator(atPath: folder.url.path)?.compactMap { $0 as? String } ?? [])
    }

    /// Files that appeared under the folder since it was made, besides the run's own.
    var newFiles: [String] {
        listing().subtracting(before ?? []).subtracting(["out.txt", "errors.txt", "report.json"]).sorted()
    }

    func run(_ stages: [Stage], bound: Double = 30, extra: [String] = []) async throws -> EscapeRun {
        if before == nil { before = listing() }
        return try await runBinary(
            ["run", "--config", folder.path("c.yaml"), "--input", "-", "--report", folder.path("report.json")] + extra,
            in: folder, stages: stages, secret: secret, bound: bound)
    }

    func check(bound: Double = 30) async throws -> EscapeRun {
        if before == nil { before = listing() }
        return try await runBinary(["check", "--config", folder.path("c.yaml")], in: folder, stages: [], secret: secret, bound: bound)
    }
}

/// The input line of event N (topic `t.aN`, data N).
private func event(_ number: Int) -> String { #"{"topic": "t.a\#(number)", "data": \#(number)}"# }

/// Signs of a crash on standard error.
private let crashSigns = ["Program crashed", "Fatal error", "unprotected Lua error", "Segmentation fault", "panic"]

/// Nothing happened: no file appeared, no secret leaked, no crash was reported.
private func expectNothingHappened(_ run: EscapeRun, _ sandbox: Sandbox, _ label: String) {
    #expect(sandbox.newFiles.isEmpty, "\(label): files appeared (something escaped): \(sandbox.newFiles)")
    #expect(!run.output.contains(sandbox.secret) && !run.errors.contains(sandbox.secret),
            "\(label): the secret from the environment was read (it shows in the output)")
    for sign in crashSigns {
        #expect(!run.errors.contains(sign), "\(label): standard error says '\(sign)': \(run.errors.suffix(1500))")
    }
}

/// The run ended normally, the healthy subscriber handled every event routed to it (at least
/// `events`), its shutdown line printed, and every subscriber's counts add up.
private func expectHealthyRun(_ run: EscapeRun, _ sandbox: Sandbox, events: Int, _ label: String) {
    if ProcessInfo.processInfo.environment["SANDBOX_ESCAPE_VERBOSE"] != nil {
        print("=== \(label): \(run.ending) in \(run.seconds) s, peak RSS \(run.peakRSS >> 20) MiB\n\(run.output)\n--- errors\n\(run.errors.prefix(3000))")
    }
    #expect(!run.hung && run.signal == nil && run.status == 0,
            "\(label): the process \(run.ending); standard error ends: \(run.errors.suffix(1500))")
    expectNothingHappened(run, sandbox, label)
    let healthy = run.counts("healthy")
    #expect(run.report != nil, "\(label): no report was written (\(run.ending))")
    if let received = healthy["received"] {
        #expect(received >= events && healthy["handled"] == received && healthy["failed"] == 0,
                "\(label): the healthy subscriber did not handle every event: \(healthy)")
        #expect(run.output.contains("healthy handled \(received)\n"),
                "\(label): the healthy subscriber's shutdown line is missing (expected 'healthy handled \(received)')")
    }
    for name in ["healthy", "hostile", "second", "producer"] where run.report?["subscribers"]?[name] != nil {
        let counts = run.counts(name)
        let sum = ["handled", "failed", "dropped", "abandoned", "pending"].reduce(0) { $0 + (counts[$1] ?? 0) }
        #expect(counts["received"] == sum, "\(label): the counts of '\(name)' do not add up: \(counts)")
    }
}

/// Every attempt printed a `blocked` verdict, and no line anywhere says ESCAPED or WRONG.
private func expectAllBlocked(_ run: EscapeRun, _ attempts: [Attempt], _ label: String) {
    for (index, attempt) in attempts.enumerated() {
        let number = index + 1
        let verdicts = run.lines(startingWith: "attempt \(number): ").filter { !$0.contains(": start ") && !$0.hasSuffix(": raising") }
        let bad = verdicts.filter { $0.contains(": ESCAPED") || $0.contains(": WRONG") }
        if !bad.isEmpty {
            Issue.record("\(label): attempt \(number) '\(attempt.name)' \(bad.contains { $0.contains("ESCAPED") } ? "ESCAPED" : "failed"): \(bad.joined(separator: " / ").prefix(600))")
        } else if !verdicts.contains(where: { $0.contains(": blocked") }) && !attempt.uncaught && !attempt.start {
            Issue.record("\(label): attempt \(number) '\(attempt.name)' printed no verdict (the process \(run.ending)); standard error ends: \(run.errors.suffix(600))")
        }
    }
}

// MARK: - The suite

@Suite(.timeLimit(.minutes(3))) struct SandboxEscapeTests {
    // MARK: What a plugin can reach

    /// Libraries, package tricks, require redirections, binary chunks, debug, string.dump,
    /// _ENV, host metatables, finalizers: one run, one attempt per event.
    private static func reachAttempts() -> [Attempt] {
        var attempts: [Attempt] = []
        // require of every library the default sandbox does not open, and of C modules (cjson is
        // a real C module on this machine, cjson.util a real Lua module outside the plugin folder).
        let harmlessIfClean: Set<String> = ["os", "package", "_G"]
        for name in ["io", "os", "debug", "package", "_G", "lfs", "socket", "socket.core", "cjson", "cjson.safe",
                     "cjson.util", "ffi", "posix"] {
            let mayLoad = harmlessIfClean.contains(name)
            attempts.append(Attempt(name: "require('\(name)')", lua: """
                local ok, m = pcall(require, "\(name)")
                if not ok then return blocked(m) end
                local tag = "require-\(name)"
                local hit = exploit(m, tag)
                if type(m) == "table" then
                  hit = hit or exploit(rawget(m, "io"), tag .. "-io") or exploit(rawget(m, "os"), tag .. "-os")
                    or exploit(rawget(m, "debug"), tag .. "-debug") or exploit(rawget(m, "loaded"), tag .. "-loaded")
                  local loaded = rawget(m, "loaded")
                  if type(loaded) == "table" then hit = hit or exploit(rawget(loaded, "io"), tag .. "-loaded-io") end
                end
                if hit then return escaped("require('\(name)') gave " .. hit) end
                \(mayLoad ? "" : "do return escaped('require(\"\(name)\") loaded a ' .. type(m)) end")
                return blocked("gave a " .. type(m) .. " without anything dangerous")
                """))
        }
        attempts += [
            Attempt(name: "package.loaded.* (io, os, debug, _G, package)", lua: """
                if type(PACKAGE) ~= "table" then return blocked("no package table") end
                local loaded = rawget(PACKAGE, "loaded")
                local hits = {}
                for _, name in ipairs({"io", "os", "debug", "_G", "package", "string", "coroutine"}) do
                  local v = type(loaded) == "table" and rawget(loaded, name)
                  local hit = exploit(v, "loaded-" .. name)
                  if type(v) == "table" then
                    hit = hit or exploit(rawget(v, "io"), "loaded-" .. name .. "-io") or exploit(rawget(v, "debug"), "x")
                  end
                  if hit then hits[#hits + 1] = name .. ":" .. hit end
                end
                local deep = scan({{"package.loaded", loaded}})
                for i = 1, #deep do hits[#hits + 1] = deep[i] end
                if #hits > 0 then return escaped(concat(hits, " ")) end
                return blocked("package.loaded holds nothing dangerous")
                """),
            Attempt(name: "everything reachable from _G, metatables and host objects", lua: """
                local timer = sb.after(3600, noop)
                local roots = {
                  {"_G", G}, {"getmetatable('')", getmetatable("")}, {"event", event}, {"timer", timer},
                  {"json.array", json.array({})}, {"json.object", json.object({})},
                  {"decoded", json.decode('[{"a": [], "b": {}}]')}, {"package", PACKAGE}, {"null", sb.null},
                  {"coroutine.running()", coroutine.running()}, {"load env", load("return _ENV")()},
                  {"require('_G')", select(2, pcall(require, "_G"))},
                }
                local hits = scan(roots)
                timer:cancel()
                if #hits > 0 then return escaped(concat(hits, " ")) end
                return blocked("nothing dangerous is reachable")
                """),
            Attempt(name: "rawget(_G, ...) and _ENV spellings", lua: """
                local hits = {}
                for _, name in ipairs({"io", "debug", "dofile", "loadfile", "os", "package", "string", "_G"}) do
                  for _, t in ipairs({G, _ENV, rawget(G, "_G") or {}}) do
                    local v = rawget(t, name)
                    if (name == "io" or name == "debug") and v ~= nil then hits[#hits + 1] = name .. " is " .. type(v) end
                    if (name == "dofile" or name == "loadfile") and v ~= nil then hits[#hits + 1] = name end
                    local hit = exploit(v, "rawget-" .. name)
                    if hit then hits[#hits + 1] = name .. ":" .. hit end
                  end
                end
                local g2 = rawget(G, "_G")
                if _ENV["de" .. "bug"] ~= nil or (type(g2) == "table" and g2["i" .. "o"] ~= nil) then hits[#hits + 1] = "computed names" end
                if #hits > 0 then return escaped(concat(hits, " ")) end
                return blocked("no global gives anything")
                """),
            Attempt(name: "a metatable on _G or _ENV hiding the real environment", lua: """
                local hits = {}
                for _, t in ipairs({G, _ENV, load("return _ENV")()}) do
                  local mt = getmetatable(t)
                  if mt ~= nil then
                    if type(mt) ~= "table" then hits[#hits + 1] = "protected metatable " .. type(mt)
                    else
                      local index = rawget(mt, "__index")
                      if type(index) == "table" then
                        local found = scan({{"getmetatable(_G).__index", index}})
                        for i = 1, #found do hits[#hits + 1] = found[i] end
                        if rawget(index, "io") or rawget(index, "debug") then hits[#hits + 1] = "__index holds io/debug" end
                      elseif type(index) == "function" then
                        for _, name in ipairs({"io", "debug", "dofile", "loadfile"}) do
                          local ok, v = pcall(index, t, name)
                          if ok and v ~= nil then hits[#hits + 1] = "__index('" .. name .. "') gives " .. type(v) end
                        end
                      end
                    end
                  end
                end
                local only = {}
                for i = 1, #hits do if not find(hits[i], "protected", 1, true) then only[#only + 1] = hits[i] end end
                if #only > 0 then return escaped(concat(only, " ")) end
                return blocked("the environment has no hidden parent" .. (#hits > 0 and (" (" .. hits[1] .. ")") or ""))
                """),
            Attempt(name: "require still works next to the plugin (sanity)", strict: true, lua: """
                local good, again, sub_, leaf = require("good"), require("good"), require("sub"), require("sub.leaf")
                if good ~= "GOOD" or again ~= "GOOD" or sub_ ~= "SUB" or leaf ~= "LEAF" then
                  return wrong("require returned " .. tostring(good) .. ", " .. tostring(sub_) .. ", " .. tostring(leaf))
                end
                if type(PACKAGE) == "table" and type(rawget(PACKAGE, "loaded")) == "table" and PACKAGE.loaded.good ~= "GOOD" then
                  return wrong("package.loaded does not cache the plugin's own modules")
                end
                local f = load("return 1 + 1")
                if not f or f() ~= 2 then return wrong("load of text broke") end
                return blocked("modules next to the plugin load; load takes text")
                """),
            Attempt(name: "package.path pointed outside, then require", lua: """
                if type(PACKAGE) ~= "table" then return blocked("no package table") end
                PACKAGE.path = PARENT .. "/?.lua;/usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua;./?.lua;" .. tostring(rawget(PACKAGE, "path"))
                local hits = {}
                for _, name in ipairs({"evil_parent", "cjson.util"}) do
                  local ok, m = pcall(require, name)
                  if ok then hits[#hits + 1] = name .. " gave " .. tostring(type(m) == "table" and "a table" or m) end
                end
                if rawget(G, "EVIL_RAN") then hits[#hits + 1] = "the parent folder's module ran" end
                if #hits > 0 then return escaped(concat(hits, " ")) end
                return blocked("package.path changes nothing")
                """),
            Attempt(name: "package.cpath pointed at C modules, then require; package.loadlib", lua: """
                if type(PACKAGE) ~= "table" then return blocked("no package table") end
                PACKAGE.cpath = "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;/usr/local/lib/lua/5.4/?.so;/usr/lib/x86_64-linux-gnu/lib?.so.6"
                local hits = {}
                for _, name in ipairs({"cjson", "cjson.safe", "c"}) do
                  local ok, m = pcall(require, name)
                  if ok then hits[#hits + 1] = name .. " gave a " .. type(m) end
                end
                local loadlib = rawget(PACKAGE, "loadlib")
                if type(loadlib) == "function" then
                  local f = loadlib("/usr/lib/x86_64-linux-gnu/lua/5.4/cjson.so", "luaopen_cjson")
                  if f then hits[#hits + 1] = "package.loadlib opened cjson.so" end
                end
                if #hits > 0 then return escaped(concat(hits, " ")) end
                return blocked("no C module loads")
                """),
            Attempt(name: "package.searchers: call the host's, put one first", lua: """
                if type(PACKAGE) ~= "table" then return blocked("no package table") end
                local hits = {}
                local searchers = rawget(PACKAGE, "searchers")
                PACKAGE.path, PACKAGE.cpath = PARENT .. "/?.lua;/usr/share/lua/5.4/?.lua", "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so"
                if type(searchers) == "table" then
                  for i = 1, #searchers do
                    local f = searchers[i]
                    if type(f) == "function" then
                      for _, name in ipairs({"evil_parent", "cjson", "cjson.util", "../evil_parent", PARENT .. "/evil_parent"}) do
                        local ok, loader, extra = pcall(f, name)
                        if ok and type(loader) == "function" then
                          local ran, m = pcall(loader, name, extra)
                          hits[#hits + 1] = "searchers[" .. i .. "]('" .. name .. "') loaded " .. tostring(ran and type(m) or m)
                        end
                      end
                    end
                  end
                else
                  searchers = {}
                  PACKAGE.searchers = searchers
                end
                insert(searchers, 1, function(name) return function() return "EVIL-SEARCHER" end, ":evil" end)
                local ok, m = pcall(require, "only_via_searcher")
                if #hits > 0 then return escaped(concat(hits, " ")) end
                if ok and m == "EVIL-SEARCHER" then return wrong("require consulted a searcher the plugin added") end
                return blocked("the host's searchers are not reachable and the plugin's is ignored")
                """),
            Attempt(name: "package.preload tampering, then require", lua: """
                if type(PACKAGE) ~= "table" then return blocked("no package table") end
                local preload = rawget(PACKAGE, "preload")
                if type(preload) ~= "table" then preload = {} PACKAGE.preload = preload end
                preload.evil_preload = function() return "EVIL-PRELOAD" end
                local ok, m = pcall(require, "evil_preload")
                if ok and m == "EVIL-PRELOAD" then return wrong("require consulted package.preload as the plugin changed it") end
                return blocked(ok and tostring(m) or m)
                """),
            Attempt(name: "package.searchpath and require messages as a file-existence oracle", lua: """
                local hits = {}
                local searchpath = type(PACKAGE) == "table" and rawget(PACKAGE, "searchpath")
                if type(searchpath) == "function" then
                  for _, probe in ipairs({{"passwd", "/etc/?"}, {"evil_parent", PARENT .. "/?.lua"}}) do
                    local found = searchpath(probe[1], probe[2])
                    if found then hits[#hits + 1] = "searchpath found " .. found end
                  end
                end
                -- The same request for a file that exists and one that does not must fail alike.
                for _, pair in ipairs({{"../evil_parent", "../no_such_module"}, {PARENT .. "/evil_parent", PARENT .. "/no_such_module"},
                                       {"/usr/share/lua/5.4/cjson/util", "/usr/share/lua/5.4/cjson/nothing"}}) do
                  local _, first = pcall(require, pair[1])
                  local _, second = pcall(require, pair[2])
                  first = replace(clean(first), pair[1], "NAME")
                  second = replace(clean(second), pair[2], "NAME")
                  if first ~= second then hits[#hits + 1] = "require tells '" .. pair[1] .. "' from a missing file: " .. first end
                end
                if #hits > 0 then return escaped(concat(hits, " ")) end
                return blocked("no oracle")
                """),
            Attempt(name: "require of absolute and '..' names", lua: """
                local names = {
                  "../evil_parent", "..", "../", "./../evil_parent", "sub/../../evil_parent", "sub/../../evil_parent.lua",
                  "../evil_parent.lua", "..\\\\evil_parent", "%2e%2e/evil_parent", "evil_parent\\0", "....//evil_parent",
                  ".../evil_parent", "..evil_parent", "sub...evil_parent", PARENT .. "/evil_parent", PARENT .. "/evil_parent.lua",
                  "/" .. PARENT .. "/evil_parent", "/usr/share/lua/5.4/cjson/util", "/etc/passwd",
                }
                local hits = {}
                for _, name in ipairs(names) do
                  local ok, m = pcall(require, name)
                  if ok and (m == "EVIL" or type(m) == "table") then hits[#hits + 1] = "'" .. name .. "' gave " .. tostring(type(m) == "table" and "a table" or m) end
                end
                if rawget(G, "EVIL_RAN") then hits[#hits + 1] = "the parent folder's module ran" end
                if #hits > 0 then return escaped(concat(hits, " ")) end
                return blocked("no name leaves the plugin folder")
                """),
            Attempt(name: "require of a precompiled (binary) module next to the plugin", lua: """
                local ok, m = pcall(require, "binmod")
                if ok and m == "BINARY-LOADED" then return escaped("require ran a binary chunk") end
                if ok or not (find(m, "binary", 1, true) or find(m, "text", 1, true)) then return wrong("not refused as binary: " .. clean(m)) end
                return blocked(m)
                """),
            Attempt(name: "load of a binary chunk through mode strings", lua: """
                local hits = {}
                local modes = {"b", "bt", "tb", "B", "", "t"}
                local function try(label, f, err)
                  if type(f) == "function" then
                    local ok, result = pcall(f)
                    if result == "BINARY-LOADED" then hits[#hits + 1] = label end
                  end
                end
                try("load(chunk)", load(BIN))
                try("load(chunk, name)", load(BIN, "=bin"))
                try("load(chunk, name, nil)", load(BIN, "=bin", nil))
                try("load(chunk, name, nil, env)", load(BIN, "=bin", nil, {}))
                for _, mode in ipairs(modes) do
                  try("mode '" .. mode .. "'", load(BIN, "=bin", mode))
                  try("mode '" .. mode .. "' with env", load(BIN, "=bin", mode, {}))
                end
                local ok, f = pcall(load, BIN, "=bin", setmetatable({}, {__tostring = function() return "b" end}))
                if ok then try("mode as an object", f) end
                if #hits > 0 then return escaped("binary chunk loaded by " .. concat(hits, ", ")) end
                return blocked("every mode is refused")
                """),
            Attempt(name: "load of a binary chunk through reader functions returning pieces", lua: """
                local function pieces(list)
                  local i = 0
                  return function() i = i + 1 return list[i] end
                end
                local bytes = {}
                for i = 1, #BIN do bytes[i] = sub(BIN, i, i) end
                local readers = {
                  {"'\\\\27' then the rest", {"\\27", sub(BIN, 2)}},
                  {"'\\\\27Lua' then the rest", {sub(BIN, 1, 4), sub(BIN, 5)}},
                  {"one byte at a time", bytes},
                  {"an empty piece first", {"", BIN}},
                  {"the whole chunk", {BIN}},
                }
                local hits = {}
                for _, reader in ipairs(readers) do
                  for _, mode in ipairs({"b", "bt", "t"}) do
                    local f = load(pieces(reader[2]), "=reader", mode)
                    if f == nil then f = load(pieces(reader[2]), "=reader") end
                    if type(f) == "function" then
                      local ok, result = pcall(f)
                      if result == "BINARY-LOADED" then hits[#hits + 1] = reader[1] .. " (mode " .. mode .. ")" end
                    end
                  end
                end
                if #hits > 0 then return escaped("binary chunk loaded from a reader: " .. concat(hits, ", ")) end
                return blocked("readers give text only")
                """),
            Attempt(name: "load with an env argument honours it and gives nothing more", strict: true, lua: """
                local f, err = load("return print, io, debug, require, string and string.dump, x, _ENV", "=env", "t", {x = 42})
                if not f then return wrong("load with env failed: " .. clean(err)) end
                local p, io_, debug_, require_, dump, x, env = f()
                if io_ ~= nil or debug_ ~= nil or dump ~= nil then return escaped("the chunk saw io/debug/dump") end
                if p ~= nil or require_ ~= nil or x ~= 42 or type(env) ~= "table" then
                  return wrong("env not honoured: print=" .. type(p) .. " x=" .. tostring(x))
                end
                local g = load("return io, debug, _G", "=proxy", "t", setmetatable({}, {__index = G}))
                local a, b = g()
                if a ~= nil or b ~= nil then return escaped("an env proxying _G gives io/debug") end
                local h = load("return x", "=nilenv", "t", nil)
                local ok = pcall(h)
                if ok then return wrong("an explicit nil env was not honoured") end
                return blocked("env honoured")
                """),
            Attempt(name: "debug tricks: getupvalue(load), getregistry, sethook", lua: """
                local candidates = {rawget(G, "debug"), select(2, pcall(require, "debug"))}
                if type(PACKAGE) == "table" and type(rawget(PACKAGE, "loaded")) == "table" then
                  candidates[#candidates + 1] = rawget(PACKAGE.loaded, "debug")
                end
                local hits = {}
                for _, d in ipairs(candidates) do
                  if type(d) == "table" then
                    if type(rawget(d, "getupvalue")) == "function" then
                      for _, f in ipairs({load, require, coroutine.wrap, coroutine.create, setmetatable, print}) do
                        for i = 1, 5 do
                          local _, v = d.getupvalue(f, i)
                          if type(v) == "function" then
                            local ok, chunk = pcall(v, BIN, "=bin", "b")
                            if ok and type(chunk) == "function" then hits[#hits + 1] = "an upvalue loads binary chunks" end
                          elseif type(v) == "table" and #scan({{"upvalue", v}}) > 0 then hits[#hits + 1] = "an upvalue reaches " .. scan({{"upvalue", v}})[1] end
                        end
                      end
                    end
                    if type(rawget(d, "getregistry")) == "function" then
                      local found = scan({{"registry", d.getregistry()}})
                      hits[#hits + 1] = "getregistry" .. (#found > 0 and (": " .. found[1]) or "")
                    end
                    if type(rawget(d, "sethook")) == "function" then hits[#hits + 1] = "sethook" end
                  end
                end
                if #hits > 0 then return escaped(concat(hits, " ")) end
                return blocked("no debug library")
                """),
            Attempt(name: "string.dump through the string metatable", lua: """
                local routes = {
                  {"string.dump", rawget(string, "dump")}, {"('').dump", ("").dump},
                  {"getmetatable('').__index.dump", type(getmetatable("")) == "table" and type(getmetatable("").__index) == "table" and getmetatable("").__index.dump},
                  {"require('string').dump", select(2, pcall(function() return require("string").dump end))},
                }
                for _, route in ipairs(routes) do
                  if type(route[2]) == "function" then
                    local ok, chunk = pcall(route[2], function() return 1 end)
                    if ok and type(chunk) == "string" then return escaped(route[1] .. " dumps bytecode") end
                  end
                end
                return blocked("no string.dump")
                """),
            Attempt(name: "setmetatable with __gc is refused with a clear error", strict: true, lua: """
                local ran = false
                local status, message = refused("__gc", setmetatable, {}, {__gc = function() ran = true
                  print("attempt " .. ID .. ": ESCAPED a plugin finalizer ran") end})
                collect()
                if status == false or ran then return escaped("a metatable with __gc was accepted") end
                if status == nil then return wrong("refused without saying why (no '__gc' in the message): " .. message) end
                local status2 = refused("__gc", setmetatable, G, {__gc = noop})
                if status2 == false then return escaped("setmetatable(_G, {__gc = f}) was accepted") end
                return blocked(message)
                """),
            Attempt(name: "__gc placeholders (true, false, 0, '', {}) swapped for a function after setmetatable", lua: """
                local ran = {}
                local accepted = {}
                for i, placeholder in ipairs({true, false, 0, "", {}}) do
                  local mt = {__gc = placeholder}
                  if pcall(setmetatable, {}, mt) then
                    accepted[#accepted + 1] = type(placeholder)
                    mt.__gc = function() ran[#ran + 1] = i
                      print("attempt " .. ID .. ": ESCAPED a finalizer installed through a placeholder ran") end
                  end
                end
                collect()
                if #ran > 0 then return escaped("finalizers ran: " .. #ran) end
                return blocked(#accepted > 0 and ("accepted placeholders but no finalizer ran: " .. concat(accepted, ",")) or "every placeholder refused")
                """),
            Attempt(name: "__gc as a callable table, via a proxy metatable, and added after setmetatable", lua: """
                local ran = 0
                local function flag() ran = ran + 1
                  print("attempt " .. ID .. ": ESCAPED a finalizer ran") end
                pcall(setmetatable, {}, {__gc = setmetatable({}, {__call = flag})})
                pcall(setmetatable, {}, setmetatable({}, {__index = {__gc = flag}}))
                local later = {}
                pcall(setmetatable, {}, later)
                later.__gc = flag
                local mt = {__mode = "k"}
                pcall(setmetatable, {}, mt)
                rawset(mt, "__gc", flag)
                collect()
                if ran > 0 then return escaped("finalizers ran: " .. ran) end
                return blocked("no finalizer ran")
                """),
            Attempt(name: "module tables are not shared between states", lua: """
                local m = require("shared")
                m.value = "poisoned by the hostile plugin"
                rawset(G, "HOSTILE_WAS_HERE", true)
                local accepted = sb.publish("q.share", 1)
                return blocked("published the check to the second plugin (" .. tostring(accepted) .. ")")
                """),
            Attempt(name: "os.date/os.time with out-of-range values", lua: """
                local results = {}
                for _, f in ipairs({
                  function() return os.date("*t", 2^62) end, function() return os.date("%Ez") end,
                  function() return os.date(rep("%c", 10000)) end, function() return os.time({year = 2^40, month = 1, day = 1}) end,
                  function() return os.date("!%Y", -2^62) end, function() return os.time({year = 1, month = 2^31, day = -2^31}) end,
                }) do results[#results + 1] = tostring((pcall(f))) end
                return blocked("no crash: " .. concat(results, ","))
                """),
        ]
        // getmetatable of host objects, and a __gc added to it: a fresh object of that kind would
        // carry a finalizer, which runs with hooks off, outside every budget.
        let hostObjects: [(String, String)] = [
            ("a timer from every", "local o = sb.every(3600, noop) o:cancel() return o"),
            ("a timer from after", "local o = sb.after(3600, noop) o:cancel() return o"),
            ("json.array({})", "return json.array({})"),
            ("json.object({})", "return json.object({})"),
            ("a decoded array", "return json.decode('[1]')"),
            ("a decoded object", "return json.decode('{\"a\": 1}')"),
            ("an event table", "return setmetatable({}, getmetatable(event))"),
            ("the switchboard table", "return sb"),
        ]
        for (kind, make) in hostObjects {
            attempts.append(Attempt(name: "getmetatable(\(kind)) with __gc and __index added", lua: """
                local function make() \(make) end
                local ran = false
                local okMake, object = pcall(make)
                local mt = okMake and getmetatable(object)
                if type(mt) ~= "table" then return blocked("getmetatable gives " .. type(mt)) end
                local function flag() ran = true
                  print("attempt " .. ID .. ": ESCAPED a finalizer added to the metatable of \(kind) ran") end
                if not pcall(rawset, mt, "__gc", flag) then return blocked("its metatable is read-only") end
                for i = 1, 20 do pcall(make) end
                if "\(kind)" == "an event table" then event = nil end
                collect()
                if ran then return escaped("a finalizer ran for \(kind)") end
                return blocked("its metatable took __gc, but no finalizer ran")
                """))
        }
        return attempts
    }

    @Test func nothingOutsideTheAllowListIsReachable() async throws {
        let attempts = Self.reachAttempts()
        let sandbox = try Sandbox(
            subscribers: [
                #"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"], timeout: 2s, memory: 64MiB }"#,
                #"{ name: second, plugin: plugins/second.lua, topics: ["q.>"] }"#,
            ],
            files: [:])
        try sandbox.folder.write("plugins/hostile.lua", hostilePlugin(attempts, effects: sandbox.effects, parent: sandbox.parent))
        try sandbox.folder.write("plugins/second.lua", """
            return { handle = function()
              local m = require("shared")
              local polluted = m.value ~= "pristine" or rawget(_G, "HOSTILE_WAS_HERE") ~= nil
              print("attempt share: " .. (polluted and "ESCAPED another plugin's module or globals leaked in" or "blocked the module is this state's own"))
            end }
            """)
        let run = try await sandbox.run([Stage(lines: (1...attempts.count).map(event), until: nil)])
        expectHealthyRun(run, sandbox, events: attempts.count, "reach")
        expectAllBlocked(run, attempts, "reach")
        #expect(run.lines(startingWith: "attempt share: blocked").count == 1,
                "reach: module sharing: \(run.lines(startingWith: "attempt share:"))")
        #expect(!run.output.contains("ESCAPED"), "reach: a late ESCAPED line: \(run.lines(startingWith: "attempt").filter { $0.contains("ESCAPED") })")
    }

    /// `check` (and so a reload's trial load) builds the same environment as a run: the same
    /// probes in `init` fail the check if they find anything.
    @Test func checkBuildsTheSameSandboxAsARun() async throws {
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"] }"#], files: [:])
        let probe = prelude(effects: sandbox.effects, parent: sandbox.parent) + #"""

            local function probe()
              local hits = scan({{"_G", G}, {"getmetatable('')", getmetatable("")}, {"package", PACKAGE}})
              for _, name in ipairs({"io", "debug", "cjson", "evil_parent"}) do
                local ok = pcall(require, name)
                if ok then hits[#hits + 1] = "require('" .. name .. "')" end
              end
              if type(PACKAGE) == "table" then
                PACKAGE.path = PARENT .. "/?.lua"
                if pcall(require, "evil_parent") then hits[#hits + 1] = "package.path" end
                restore()
              end
              for _, mode in ipairs({"b", "bt"}) do
                local f = load(BIN, "=bin", mode)
                if f and f() == "BINARY-LOADED" then hits[#hits + 1] = "load mode " .. mode end
              end
              if pcall(setmetatable, {}, {__gc = noop}) then hits[#hits + 1] = "__gc accepted" end
              return hits
            end
            return {
              init = function()
                local hits = probe()
                if #hits > 0 then error("ESCAPED in init: " .. concat(hits, " ")) end
              end,
              handle = function()
                local hits = probe()
                print("attempt 1: " .. (#hits > 0 and ("ESCAPED in a run: " .. concat(hits, " ")) or "blocked nothing found in a run"))
              end,
            }
            """#
        try sandbox.folder.write("plugins/hostile.lua", probe)
        let check = try await sandbox.check()
        #expect(check.status == 0 && check.signal == nil && !check.hung,
                "check: \(check.ending): \(check.errors.prefix(1500))")
        #expect(check.errors.contains("2 subscribers, all valid"), "check: \(check.errors.prefix(1500))")
        expectNothingHappened(check, sandbox, "check")
        let run = try await sandbox.run([Stage(lines: [event(1)], until: nil)])
        expectHealthyRun(run, sandbox, events: 1, "check/run")
        #expect(run.lines(startingWith: "attempt 1: blocked").count == 1, "run: \(run.lines(startingWith: "attempt 1:"))")
    }

    /// `allow: [io]` gives back io, and dofile/loadfile in text mode only, and nothing more.
    @Test func allowIoGivesBackExactlyIo() async throws {
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"], allow: [io] }"#], files: [:])
        let ioKeys = #"{popen = true, open = true, lines = true, dofile = true, loadfile = true, tmpfile = true, output = true, input = true}"#
        let binaryFile = sandbox.folder.path("plugins/binmod.lua")
        let attempts = [
            Attempt(name: "io, dofile and loadfile are back", strict: true, lua: """
                if type(rawget(G, "io")) ~= "table" or type(io.open) ~= "function" then return wrong("io is missing") end
                if type(rawget(G, "dofile")) ~= "function" or type(rawget(G, "loadfile")) ~= "function" then return wrong("dofile/loadfile missing") end
                local f = loadfile(\(luaString(sandbox.folder.path("plugins/good.lua"))))
                if not f or f() ~= "GOOD" then return wrong("loadfile of a text file failed") end
                return blocked("io is back")
                """),
            Attempt(name: "loadfile and dofile of a binary chunk, in every mode", lua: """
                local path = \(luaString(binaryFile))
                local hits = {}
                for _, mode in ipairs({"b", "bt", "tb", "B"}) do
                  local ok, f = pcall(loadfile, path, mode)
                  if ok and type(f) == "function" and f() == "BINARY-LOADED" then hits[#hits + 1] = "loadfile mode " .. mode end
                  local ok2, f2 = pcall(loadfile, path, mode, {})
                  if ok2 and type(f2) == "function" and f2() == "BINARY-LOADED" then hits[#hits + 1] = "loadfile mode " .. mode .. " with env" end
                end
                local ok, f = pcall(loadfile, path)
                if ok and type(f) == "function" and f() == "BINARY-LOADED" then hits[#hits + 1] = "loadfile" end
                local ok3, r = pcall(dofile, path)
                if ok3 and r == "BINARY-LOADED" then hits[#hits + 1] = "dofile" end
                local handle = io.open(path, "rb")
                local bytes = handle:read("a")
                handle:close()
                local g = load(bytes, "=read", "b")
                if g and g() == "BINARY-LOADED" then hits[#hits + 1] = "load of bytes read with io" end
                if #hits > 0 then return escaped(concat(hits, ", ")) end
                return blocked("binary refused everywhere")
                """),
            Attempt(name: "debug stays absent", lua: """
                local hits = {}
                if rawget(G, "debug") ~= nil then hits[#hits + 1] = "global debug" end
                if pcall(require, "debug") then hits[#hits + 1] = "require('debug')" end
                if type(PACKAGE) == "table" and type(rawget(PACKAGE, "loaded")) == "table" and rawget(PACKAGE.loaded, "debug") then hits[#hits + 1] = "package.loaded.debug" end
                if type(rawget(string, "dump")) == "function" or type(("").dump) == "function" then hits[#hits + 1] = "string.dump" end
                if #hits > 0 then return escaped(concat(hits, ", ")) end
                return blocked("no debug")
                """),
            Attempt(name: "nothing more than io is reachable", lua: """
                local timer = sb.after(3600, noop)
                local hits = scan({{"_G", G}, {"getmetatable('')", getmetatable("")}, {"package", PACKAGE}, {"event", event},
                                   {"timer", timer}, {"io.stdout", io.stdout}}, \(ioKeys))
                timer:cancel()
                if #hits > 0 then return escaped(concat(hits, " ")) end
                return blocked("only io")
                """),
            Attempt(name: "os stays restricted and C modules stay out", lua: """
                local hits = {}
                for _, key in ipairs({"execute", "getenv", "exit", "remove", "rename", "tmpname", "setlocale"}) do
                  if rawget(os, key) ~= nil then hits[#hits + 1] = "os." .. key end
                end
                if type(PACKAGE) == "table" then
                  PACKAGE.cpath = "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so"
                  if pcall(require, "cjson") then hits[#hits + 1] = "require('cjson')" end
                  if rawget(PACKAGE, "loadlib") then hits[#hits + 1] = "package.loadlib" end
                end
                if #hits > 0 then return escaped(concat(hits, ", ")) end
                return blocked("os has clock/time/date only; no C modules")
                """),
            Attempt(name: "'..' and absolute requires stay in the folder (the module would write with io)", lua: """
                local hits = {}
                for _, name in ipairs({"../evil_parent", PARENT .. "/evil_parent", "sub/../../evil_parent"}) do
                  if select(2, pcall(require, name)) == "EVIL" then hits[#hits + 1] = name end
                end
                if type(PACKAGE) == "table" then
                  PACKAGE.path = PARENT .. "/?.lua"
                  if select(2, pcall(require, "evil_parent")) == "EVIL" then hits[#hits + 1] = "package.path" end
                end
                if #hits > 0 then return escaped(concat(hits, ", ")) end
                return blocked("no module outside the folder")
                """),
        ]
        try sandbox.folder.write("plugins/hostile.lua", hostilePlugin(attempts, effects: sandbox.effects, parent: sandbox.parent))
        let run = try await sandbox.run([Stage(lines: (1...attempts.count).map(event), until: nil)])
        expectHealthyRun(run, sandbox, events: attempts.count, "allow io")
        expectAllBlocked(run, attempts, "allow io")
    }

    // MARK: The host cannot be poisoned

    /// A plugin replaces or deletes every global, library function and host function it can,
    /// puts metatables that report any lookup on _G, the string metatable, package and the host's
    /// metatables, and then uses its saved references: every host path keeps working and never
    /// calls back into what the plugin replaced.
    @Test func replacedGlobalsBreakOnlyThePluginItself() async throws {
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"], settings: { real: 1 } }"#],
            files: [:])
        // Saved before anything is replaced; `switchboard` is replaced before init even runs.
        let top = #"""
            local S = {
              print = print, pairs = pairs, next = next, tostring = tostring, error = error, type = type, pcall = pcall,
              rawset = rawset, rawget = rawget, rawlen = rawlen, ipairs = ipairs, setmetatable = setmetatable, getmetatable = getmetatable,
              publish = switchboard.publish, encode = switchboard.json.encode, decode = switchboard.json.decode,
              array = switchboard.json.array, object = switchboard.json.object, null = switchboard.null,
              info = switchboard.log.info, after = switchboard.after, every = switchboard.every, now = switchboard.now,
              wrap = coroutine.wrap, yield = coroutine.yield, require = require, load = load, concat = table.concat, sort = table.sort,
              sb = switchboard, string = string, table = table, coroutine = coroutine, math = math, os = os, utf8 = utf8,
            }
            local function report(what) S.print("attempt poison: ESCAPED the host " .. what) end
            switchboard = S.setmetatable({ settings = { poisoned = true } }, { __index = function(_, k) report("read switchboard." .. S.tostring(k)) end })
            """#
        let initMember = #"""
            init = function(settings)
              local real = S.type(settings) == "table" and S.rawget(settings, "real") == 1 and S.rawget(settings, "poisoned") == nil
              S.print("attempt settings: " .. (real and "blocked init got the real settings" or "ESCAPED init got settings from the replaced switchboard global"))
              switchboard = S.sb
            end,
            """#
        let attempts = [
            Attempt(name: "replace and delete globals, library and host functions", strict: true, lua: #"""
                local keep = { print = true, _G = true }
                for k in S.next, G do G[k] = nil end
                G.tostring, G.print, G.pcall = S.error, function() S.error("poisoned print") end, function() S.error("poisoned pcall") end
                for _, lib in S.ipairs({S.string, S.table, S.coroutine, S.math, S.utf8, S.os}) do
                  for k in S.next, lib do lib[k] = function() S.error("poisoned library function") end end
                end
                for k in S.next, S.sb do S.sb[k] = nil end
                G.switchboard = S.setmetatable({}, { __index = function(_, k) report("read switchboard." .. S.tostring(k)) end })
                if S.type(PACKAGE) == "table" then
                  PACKAGE.path, PACKAGE.cpath, PACKAGE.searchers, PACKAGE.preload = "/nonexistent/?.lua", "", {}, {}
                  PACKAGE.loaded = S.setmetatable({}, { __index = function(_, k) report("read package.loaded." .. S.tostring(k)) end })
                end
                local smt = S.getmetatable("")
                if S.type(smt) == "table" then
                  S.pcall(S.rawset, smt, "__index", S.setmetatable({}, { __index = function(_, k) report("used the string method " .. S.tostring(k)) end }))
                end
                S.setmetatable(G, {
                  __index = function(_, k) report("looked up the global " .. S.tostring(k)) end,
                  __newindex = function(t, k, v) report("set the global " .. S.tostring(k)) S.rawset(t, k, v) end,
                })
                return "blocked", "poisoned"
                """#),
            Attempt(name: "pairs(event) with next, pairs and tostring gone", strict: true, lua: #"""
                local keys = {}
                for k, v in S.pairs(event) do keys[#keys + 1] = k end
                S.sort(keys)
                local text = S.concat(keys, ",")
                if text ~= "data,headers,id,time,topic" then return "WRONG", "pairs(event) gave " .. text end
                if event.data ~= ID then return "WRONG", "event.data is wrong" end
                return "blocked", "pairs(event) works"
                """#),
            Attempt(name: "the JSON bridge: encode(event), encode/decode round trips", strict: true, lua: #"""
                local text = S.encode(event)
                local round = S.encode(S.decode('{"a":[1,2,{"b":null}],"c":{},"d":[]}'))
                if round ~= '{"a":[1,2,{"b":null}],"c":{},"d":[]}' then return "WRONG", "round trip gave " .. round end
                local built = S.encode({ list = S.array({}), map = S.object({}), n = 1.5, s = "x", null = S.null })
                if built ~= '{"list":[],"map":{},"n":1.5,"null":null,"s":"x"}' then return "WRONG", "encode gave " .. built end
                return "blocked", "encoded " .. text
                """#),
            Attempt(name: "publish with data and headers", strict: true, lua: #"""
                local accepted, message = S.publish("p.poison", { list = { 1, 2, 3 }, n = 7 }, { h = "v" })
                if accepted ~= 1 then return "WRONG", "publish gave " .. S.tostring(accepted) .. " " .. S.tostring(message) end
                return "blocked", "published"
                """#),
            Attempt(name: "log fields", strict: true, lua: #"""
                S.info("poisoned log line", { k = "v", n = 5, nested = { 1, 2 } })
                return "blocked", "logged"
                """#),
            Attempt(name: "print without tostring", strict: true, lua: #"""
                S.print("poison print:", 1, "two", nil, true, 2.5)
                return "blocked", "printed"
                """#),
            Attempt(name: "coroutine.wrap, require and load through saved references", strict: true, lua: #"""
                local total = 0
                for i in S.wrap(function() for i = 1, 3 do S.yield(i) end end) do total = total + i end
                if total ~= 6 then return "WRONG", "coroutine.wrap broke: " .. total end
                local ok, good = S.pcall(S.require, "good")
                if good ~= "GOOD" then return "WRONG", "require broke: " .. S.tostring(good) end
                local f = S.load("return 40 + 2")
                if not f or f() ~= 42 then return "WRONG", "load broke" end
                local g = S.load(BIN, "=bin", "b")
                if g and g() == "BINARY-LOADED" then return "ESCAPED", "binary load after poisoning" end
                return "blocked", "saved references work"
                """#),
            Attempt(name: "timers after poisoning (after and every)", strict: true, lua: #"""
                S.after(0.01, function() S.print("poison timer fired") end)
                local fired, timer = 0, nil
                timer = S.every(0.01, function()
                  fired = fired + 1
                  if fired == 3 then timer:cancel() S.print("poison every fired 3") end
                end)
                return "blocked", "timers set"
                """#),
            Attempt(name: "the host's metatables replaced (event, arrays, objects, timers)", strict: true, lua: #"""
                local function trap(what) return function() report("called the plugin's " .. what) end end
                local objects = { event = event, array = S.array({}), object = S.object({}), decoded = S.decode("[1]"),
                                  timer = S.after(3600, function() end) }
                for name, o in S.pairs(objects) do
                  local mt = S.getmetatable(o)
                  if S.type(mt) == "table" then
                    for _, field in S.ipairs({ "__index", "__newindex", "__len", "__pairs", "__tostring", "__eq", "__name" }) do
                      S.pcall(S.rawset, mt, field, field == "__name" and "poisoned" or trap(name .. " " .. field))
                    end
                  end
                end
                return "blocked", "replaced what could be replaced"
                """#),
            Attempt(name: "a new event, encoded and decoded after the metatables changed", strict: true, lua: #"""
                local text = S.encode(event)
                local decoded = S.decode("[1,2,3]")
                if S.rawlen(decoded) ~= 3 or S.rawget(decoded, 3) ~= 3 then return "WRONG", "decode broke" end
                if S.encode(S.array({ 1, 2 })) ~= "[1,2]" then return "WRONG", "encode of an array broke" end
                if S.encode(decoded) ~= "[1,2,3]" then return "WRONG", "encode of a decoded array broke" end
                return "blocked", "encoded " .. text
                """#),
            Attempt(name: "an error after poisoning is still reported with a traceback", uncaught: true, lua: #"""
                local x = nil
                x.field = "attempt to index a nil value"
                """#),
        ]
        let source = hostilePlugin(attempts, effects: sandbox.effects, parent: sandbox.parent, restoreBetween: false, top: top,
                                   extraMembers: initMember)
        try sandbox.folder.write("plugins/hostile.lua", source)
        let count = attempts.count
        let run = try await sandbox.run([
            Stage(lines: (1...8).map(event), until: "poison every fired 3"),
            Stage(lines: (9...count).map(event), until: nil),
        ])
        expectHealthyRun(run, sandbox, events: count + 1, "poison")
        expectAllBlocked(run, attempts, "poison")
        #expect(run.lines(startingWith: "attempt settings: blocked").count == 1, "poison: \(run.lines(startingWith: "attempt settings"))")
        let escapes = run.lines(startingWith: "attempt poison: ESCAPED")
        #expect(escapes.isEmpty, "poison: the host used what the plugin replaced: \(Set(escapes).sorted())")
        let wanted = [
            "healthy saw p.poison {\"list\":[1,2,3],\"n\":7}", "poison print:\t1\ttwo\tnil\ttrue\t2.5", "poison timer fired",
            "poison every fired 3", "attempt 3: blocked encoded {",
        ]
        for text in wanted { #expect(run.output.contains(text), "poison: the output lacks '\(text)'") }
        #expect(run.lines(startingWith: "attempt 10: blocked encoded {").first?.contains("\"data\":10") == true,
                "poison: json.encode(event) after the metatables changed: \(run.lines(startingWith: "attempt 10:"))")
        #expect(run.errors.contains("poisoned log line") && run.errors.contains("k=v"), "poison: the log line is missing")
        #expect(run.errors.contains("attempt to index a nil value") && run.errors.contains("stack traceback"),
                "poison: the error was not reported with a traceback: \(run.errors.suffix(1000))")
        #expect(run.counts("hostile")["failed"] == 1, "poison: \(run.counts("hostile"))")
    }

    // MARK: Budgets cover everything that runs on a plugin's behalf

    private static let loopAttempts: [Attempt] = {
        let loop = "function() while true do end end"
        let bomb = "function() local t = {} while true do t[#t + 1] = rep('x', 1 << 16) .. #t end end"
        let cases: [(String, String)] = [
            ("print(obj) with a looping __tostring", "print(setmetatable({}, {__tostring = \(loop)}))"),
            ("print(obj) with an allocating __tostring", "print(setmetatable({}, {__tostring = \(bomb)}))"),
            ("log.info(obj) with a looping __tostring", "sb.log.info(setmetatable({}, {__tostring = \(loop)}))"),
            ("log.info('x', {k = obj}) with looping metamethods",
             "sb.log.info('x', {k = setmetatable({}, {__index = \(loop), __tostring = \(loop), __pairs = \(loop), __len = \(loop)})})"),
            ("json.encode(obj) with looping __index, __pairs, __len",
             "json.encode({a = setmetatable({}, {__index = \(loop), __pairs = \(loop), __len = \(loop), __eq = \(loop)})})"),
            ("publish('p.x', obj) with looping metamethods, and looping headers",
             "sb.publish('p.loop', setmetatable({}, {__index = \(loop), __pairs = \(loop)}), setmetatable({}, {__index = \(loop), __pairs = \(loop)}))"),
            ("string.format('%s', obj) with a looping __tostring", "string.format('%s', setmetatable({}, {__tostring = \(loop)}))"),
            ("table.insert/unpack on a proxy whose __index and __len loop",
             "local p = setmetatable({}, {__index = \(loop), __len = \(loop), __newindex = \(loop)}) pcall(table.insert, p, 1) table.unpack(p, 1, 3)"),
            ("an error object whose __tostring loops", "error(setmetatable({}, {__tostring = \(loop)}))"),
            ("an error object whose __tostring raises", "error(setmetatable({}, {__tostring = function() error('again') end}))"),
            ("an error object whose __tostring allocates without end", "error(setmetatable({}, {__tostring = \(bomb)}))"),
            ("an error object whose __tostring returns a table", "error(setmetatable({}, {__tostring = function() return {} end}))"),
            ("xpcall with a looping message handler", "xpcall(error, \(loop)) while true do end"),
            ("a <close> variable whose __close loops", "local x <close> = setmetatable({}, {__close = \(loop)})"),
            ("a <close> variable whose __close allocates", "local x <close> = setmetatable({}, {__close = \(bomb)})"),
            ("a looping __close run while an error unwinds",
             "local x <close> = setmetatable({}, {__close = \(loop)}) error('unwinding')"),
            ("coroutine.close of a coroutine whose __close loops",
             "local co = coroutine.create(function() local x <close> = setmetatable({}, {__close = \(loop)}) coroutine.yield() end) coroutine.resume(co) coroutine.close(co) while true do end"),
            ("table.sort with a looping comparator", "table.sort({3, 2, 1, 4}, function() while true do end end)"),
            ("string.gsub with a looping replacement", "string.gsub('aaa', 'a', function() while true do end end)"),
            ("load with a looping reader", "load(function() while true do end end)"),
            ("coroutine.wrap inside coroutine.wrap, depth 5, in a loop", """
                local function nest(depth)
                  if depth == 0 then while true do end end
                  while true do pcall(coroutine.wrap(function() nest(depth - 1) end)) end
                end
                nest(5)
                """),
            ("coroutine.create/resume nested, depth 6, in a loop", """
                local function nest(depth)
                  if depth == 0 then while true do end end
                  while true do coroutine.resume(coroutine.create(function() nest(depth - 1) end)) end
                end
                coroutine.resume(coroutine.create(function() nest(6) end))
                while true do end
                """),
            ("a timer callback that loops", "sb.after(0.001, \(loop))"),
        ]
        return cases.map { Attempt(name: $0.0, start: true, uncaught: true, lua: $0.1 + "\nreturn blocked('returned')") }
    }()

    /// Loops and allocation bombs in metamethods that host functions trigger, in error objects,
    /// to-be-closed variables, message handlers, nested coroutines and timer callbacks: each ends
    /// at the budget (the next attempt starts within the budget plus slack) or is not triggered.
    /// The names of the budget attempts that can hang a state (they get runs of their own).
    private static let hangProne: Set<String> = [
        "xpcall with a looping message handler", "coroutine.wrap inside coroutine.wrap, depth 5, in a loop",
        "coroutine.create/resume nested, depth 6, in a loop",
    ]

    /// Runs `attempts` one per event with a 200 ms budget, then a sentinel; each must end within
    /// the budget plus slack (the next one starts by then).
    private func runBudgetAttempts(_ attempts: [Attempt], _ label: String) async throws {
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"], timeout: 200ms, memory: 16MiB, on_failure: { restart_after: 1000 } }"#],
            files: [:])
        let sentinel = Attempt(name: "sentinel", start: true, lua: "return blocked('the state still answers')")
        try sandbox.folder.write(
            "plugins/hostile.lua",
            hostilePlugin(attempts + [sentinel], effects: sandbox.effects, parent: sandbox.parent))
        let run = try await sandbox.run([Stage(lines: (1...attempts.count + 1).map(event), until: nil)], bound: 60)
        expectHealthyRun(run, sandbox, events: attempts.count + 1, label)
        // Start times: an attempt that outran its budget delays the next one.
        var starts: [Int: Double] = [:]
        for line in run.lines(startingWith: "attempt ") where line.contains(": start ") {
            let parts = line.split(separator: " ")
            if let number = Int(parts[1].dropLast()), let time = Double(parts[3]) { starts[number] = time }
        }
        for (index, attempt) in attempts.enumerated() {
            let number = index + 1
            guard let start = starts[number] else {
                Issue.record("\(label): attempt \(number) '\(attempt.name)' never started (the process \(run.ending))")
                continue
            }
            guard let next = starts[number + 1] else {
                Issue.record("\(label): attempt \(number) '\(attempt.name)' ESCAPED the budget: it never ended, the next event never started (the process \(run.ending); \(run.errors.suffix(400)))")
                continue
            }
            #expect(next - start < 0.2 + 2.5,
                    "\(label): attempt \(number) '\(attempt.name)' ESCAPED the budget: it ran \(String(format: "%.1f", next - start)) s, past its 200 ms")
        }
        let bad = run.lines(startingWith: "attempt ").filter { $0.contains("ESCAPED") || $0.contains("WRONG") }
        #expect(bad.isEmpty, "\(label): \(bad)")
    }

    /// Loops and allocation bombs in metamethods that host functions trigger, in error objects,
    /// to-be-closed variables, comparators, readers and timer callbacks: each ends at the budget
    /// (the next attempt starts within the budget plus slack) or is not triggered at all.
    @Test(.exclusive) func loopsAndBombsInMetamethodsEndAtTheBudget() async throws {
        try await runBudgetAttempts(Self.loopAttempts.filter { !Self.hangProne.contains($0.name) }, "loops")
    }

    /// The budget attempts that could hang the state for good: a message handler that loops,
    /// coroutines nested inside coroutines created past the deadline. One run each.
    @Test(.exclusive, arguments: SandboxEscapeTests.hangProne.sorted())
    func loopsThatCouldHangAStateEndAtTheBudget(_ name: String) async throws {
        let attempt = try #require(Self.loopAttempts.first { $0.name == name })
        try await runBudgetAttempts([attempt], name)
    }

    /// A handler that never ends past its budget must not hold the state: nested coroutines in
    /// `init` neither hang start-up nor `switchboard check`, and a plugin table whose `__index`
    /// loops, or a `<close>` that loops in the main chunk, are stopped the same way.
    @Test(arguments: [
        ("nested coroutine.wrap in init", """
            local function nest(depth)
              if depth == 0 then while true do end end
              while true do pcall(coroutine.wrap(function() nest(depth - 1) end)) end
            end
            return { handle = function() end, init = function() nest(5) end }
            """),
        ("nested coroutine.create in init", """
            local function nest(depth)
              if depth == 0 then while true do end end
              while true do coroutine.resume(coroutine.create(function() nest(depth - 1) end)) end
            end
            return { handle = function() end, init = function() coroutine.resume(coroutine.create(function() nest(6) end)) while true do end end }
            """),
        ("a plugin table whose __index loops", """
            return setmetatable({}, { __index = function() while true do end end })
            """),
        ("a looping <close> in the main chunk", """
            local x <close> = setmetatable({}, { __close = function() while true do end end })
            return { handle = function() end }
            """),
        ("xpcall with a looping message handler in init", """
            return { handle = function() end, init = function() xpcall(error, function() while true do end end) end }
            """),
        ("an error object whose __tostring loops, raised by init", """
            return { handle = function() end, init = function() error(setmetatable({}, { __tostring = function() while true do end end })) end }
            """),
    ])
    func startUpIsBoundedByTheBudget(_ label: String, _ source: String) async throws {
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"], timeout: 200ms }"#], files: [:])
        try sandbox.folder.write("plugins/hostile.lua", source)
        let check = try await sandbox.check(bound: 12)
        #expect(!check.hung && check.signal == nil && check.status == 2,
                "\(label): switchboard check \(check.ending): \(check.errors.prefix(800))")
        #expect(check.errors.contains("subscriber 'hostile'"), "\(label): check: \(check.errors.prefix(800))")
        #expect(check.seconds < 10, "\(label): check took \(check.seconds) s")
        expectNothingHappened(check, sandbox, "\(label) (check)")
        let run = try await sandbox.run([Stage(lines: [event(1)], until: nil)], bound: 12)
        #expect(!run.hung && run.signal == nil && run.status == 2, "\(label): run \(run.ending): \(run.errors.prefix(800))")
        #expect(run.errors.contains("subscriber 'hostile'"), "\(label): run: \(run.errors.prefix(800))")
        expectNothingHappened(run, sandbox, "\(label) (run)")
    }

    /// A `shutdown` that loops, sticks in one long C call, or raises an error whose formatting
    /// loops: the process still exits by its drain deadline, and the healthy subscriber's
    /// shutdown line still prints.
    @Test(.exclusive, arguments: [
        ("a Lua loop", "while true do end"),
        ("a long C call", "string.rep('a', 60):find(string.rep('a*', 10) .. 'b')"),
        ("an error whose __tostring loops", "error(setmetatable({}, { __tostring = function() while true do end end }))"),
        ("a loop in a <close>", "local x <close> = setmetatable({}, { __close = function() while true do end end })"),
    ])
    func aShutdownThatNeverEndsDoesNotHoldTheProcess(_ label: String, _ body: String) async throws {
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"], timeout: 60s }"#],
            files: ["plugins/hostile.lua": "return { handle = function() end, shutdown = function() \(body) end }"],
            drainTimeout: "1s")
        let run = try await sandbox.run([Stage(lines: (1...5).map(event), until: nil)], bound: 12)
        expectHealthyRun(run, sandbox, events: 5, "shutdown with \(label)")
        #expect(run.seconds < 1 + 4, "shutdown with \(label): the process took \(run.seconds) s to exit (drain deadline 1 s)")
    }

    // MARK: Timers

    @Test func timerLimitsAndBadIntervals() async throws {
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"], timeout: 5s }"#], files: [:])
        var attempts: [Attempt] = []
        for (call, value) in [("every", "0"), ("every", "-1"), ("every", "0/0"), ("after", "-1"), ("after", "0/0"),
                              ("every", "-math.huge"), ("after", "-math.huge"), ("every", "-0.0")] {
            attempts.append(Attempt(name: "\(call)(\(value), f) is refused", strict: true, lua: """
                local ok, result = pcall(sb.\(call), \(value), noop)
                if ok then
                  pcall(function() result:cancel() end)
                  return wrong("\(call)(\(value)) was accepted")
                end
                return blocked(result)
                """))
        }
        attempts += [
            Attempt(name: "at most 1,000 live timers, then a clear error; cancel frees a slot", strict: true, lua: """
                local timers, message = {}, nil
                for i = 1, 5000 do
                  local ok, t = pcall(i % 2 == 0 and sb.every or sb.after, 3600, noop)
                  if not ok then message = clean(t) break end
                  timers[#timers + 1] = t
                end
                local made = #timers
                local clear = message and find(message, "timer", 1, true) and (find(message, "1000", 1, true) or find(message, "1,000", 1, true) or find(message, "too many", 1, true))
                timers[1]:cancel()
                local okAgain, again = pcall(sb.after, 3600, noop)
                local okMore = pcall(sb.every, 3600, noop)
                for i = 2, #timers do timers[i]:cancel() end
                if okAgain then again:cancel() end
                if made ~= 1000 then return wrong("made " .. made .. " timers before an error (" .. tostring(message) .. ")") end
                if not clear then return wrong("the error does not say why: " .. tostring(message)) end
                if not okAgain then return wrong("a cancelled timer did not free its slot") end
                if okMore then return wrong("a 1,001st live timer was accepted after the freed slot was taken") end
                return blocked(message)
                """),
            Attempt(name: "a hundred thousand timer requests are refused quickly", strict: true, lua: """
                local timers = {}
                for i = 1, 1000 do timers[i] = sb.after(3600, noop) end
                local refusedCount, start = 0, os.clock()
                for i = 1, 100000 do if not pcall(sb.every, 3600, noop) then refusedCount = refusedCount + 1 end end
                local seconds = os.clock() - start
                for i = 1, #timers do timers[i]:cancel() end
                if refusedCount ~= 100000 then return wrong("accepted " .. (100000 - refusedCount) .. " timers past the limit") end
                return blocked("refused all in " .. seconds .. " s")
                """),
            Attempt(name: "the slots are free again after cancelling (one more timer works and fires)", strict: true, lua: """
                sb.after(0.001, function() print("attempt " .. ID .. ": timer fired") end)
                return blocked("set")
                """),
        ]
        try sandbox.folder.write("plugins/hostile.lua", hostilePlugin(attempts, effects: sandbox.effects, parent: sandbox.parent))
        let run = try await sandbox.run([
            Stage(lines: (1...attempts.count).map(event), until: "attempt \(attempts.count): timer fired"),
        ])
        expectHealthyRun(run, sandbox, events: attempts.count, "timers")
        expectAllBlocked(run, attempts, "timers")
        #expect(run.output.contains("attempt \(attempts.count): timer fired"), "timers: the last timer never fired")
    }

    /// Delays that do not fit a 64-bit count of nanoseconds: refused when not finite, saturated
    /// when finite; in a run (handle) and in `check` (init) alike, never a crash.
    @Test(arguments: [
        ("after", "1e11", true), ("every", "1e11", true), ("after", "1e300", true), ("every", "2^63", true),
        ("after", "math.maxinteger", true), ("every", "math.huge", false), ("after", "math.huge", false),
    ])
    func hugeTimerDelaysDoNotCrash(_ call: String, _ value: String, _ finite: Bool) async throws {
        let label = "\(call)(\(value))"
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"] }"#], files: [:])
        let attempt = Attempt(name: label, strict: finite, lua: """
            local t = sb.\(call)(\(value), function() print("attempt " .. ID .. ": ESCAPED a \(label) timer fired at once") end)
            local t2 = sb.\(call)(\(value), noop)
            return blocked("\(finite ? "saturated" : "accepted or refused cleanly")")
            """)
        let initProbe = "init = function() local ok, t = pcall(sb.\(call), \(value), function() end) end,"
        try sandbox.folder.write(
            "plugins/hostile.lua",
            hostilePlugin([attempt], effects: sandbox.effects, parent: sandbox.parent, extraMembers: initProbe))
        let run = try await sandbox.run([Stage(lines: [event(1)], until: nil)], bound: 20)
        expectHealthyRun(run, sandbox, events: 1, label)
        expectAllBlocked(run, [attempt], label)
        let check = try await sandbox.check(bound: 20)
        #expect(!check.hung && check.signal == nil && check.status == 0, "\(label) in check: \(check.ending): \(check.errors.prefix(800))")
    }

    // MARK: Attempts that could take the process down

    /// A malformed precompiled module next to the plugin: `require` fails cleanly.
    @Test func aMalformedBinaryModuleFailsCleanly() async throws {
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"] }"#], files: [:])
        // Three corruptions of the same instruction: a jump far ahead, one far back, and an upvalue
        // index far past the closure's (each crashes an unverified VM, the layout decides which first).
        let patched = malformedChunk.indices.first { Array(malformedChunk[$0..<$0 + 4]) == [0xB8, 0xFF, 0x11, 0xFA] }!
        for (index, instruction) in [[0xB8, 0xFF, 0x11, 0xFA], [0xB8, 0xFF, 0xED, 0x05], [0x09, 0x00, 0xFA, 0x00]].enumerated() {
            var chunk = malformedChunk
            chunk.replaceSubrange(patched..<patched + 4, with: instruction.map(UInt8.init))
            try Data(chunk).write(to: URL(fileURLWithPath: sandbox.folder.path("plugins/badchunk\(index + 1).lua")))
        }
        try Data([0x1B, 0x4C, 0x75, 0x61, 0x54, 0x00]).write(to: URL(fileURLWithPath: sandbox.folder.path("plugins/truncated.lua")))
        let attempts = [
            Attempt(name: "require of a malformed binary chunk", lua: """
                for i = 1, 3 do
                  local ok, m = pcall(require, "badchunk" .. i)
                  if ok then return escaped("require ran malformed binary chunk " .. i .. ": " .. tostring(m)) end
                  if not (find(m, "binary", 1, true) or find(m, "text", 1, true)) then
                    return escaped("require ran malformed binary chunk " .. i .. " (it failed running, not loading): " .. clean(m))
                  end
                end
                return blocked("refused to load all three")
                """),
            Attempt(name: "require of a truncated binary header", lua: """
                local ok, m = pcall(require, "truncated")
                if ok then return escaped("require loaded a truncated binary chunk") end
                return blocked(m)
                """),
            Attempt(name: "load of the malformed chunk's bytes, every mode", lua: """
                local bytes = \(luaBytes(malformedChunk))
                for _, mode in ipairs({"b", "bt"}) do
                  local f = load(bytes, "=bad", mode)
                  if f then return escaped("load took a malformed binary chunk in mode " .. mode) end
                end
                return blocked("refused")
                """),
        ]
        try sandbox.folder.write("plugins/hostile.lua", hostilePlugin(attempts, effects: sandbox.effects, parent: sandbox.parent))
        let run = try await sandbox.run([Stage(lines: (1...attempts.count).map(event), until: nil)], bound: 20)
        expectHealthyRun(run, sandbox, events: attempts.count, "malformed chunk")
        expectAllBlocked(run, attempts, "malformed chunk")
    }

    /// The event's hidden lazy-field key: storing foreign userdata under every non-string key of
    /// real and forged event tables, then reading their fields, many times.
    @Test func theEventsHiddenKeyCannotBeForged() async throws {
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"], timeout: 10s }"#], files: [:])
        let attempt = Attempt(name: "forged lazy fields", lua: """
            local keys = {}
            for k in next, event do if type(k) ~= "string" then keys[#keys + 1] = k end end
            local mt = getmetatable(event)
            local foreign = {}
            for i = 1, 200 do foreign[i] = sb.after(3600, noop) end
            local odd = {}
            for round = 1, 2000 do
              local victim = (round == 1) and event or ((type(mt) == "table") and setmetatable({}, mt) or {})
              for i = 1, #keys do rawset(victim, keys[i], foreign[round % 200 + 1]) end
              for _, field in ipairs({"data", "headers", "id"}) do
                local ok, value = pcall(function() return victim[field] end)
                if not ok and find(clean(value), "tape", 1, true) then odd[#odd + 1] = field .. ": " .. clean(value) end
              end
              pcall(json.encode, victim)
              pcall(function() for k, v in pairs(victim) do end end)
            end
            for i = 1, #foreign do foreign[i]:cancel() end
            if #odd > 0 then return escaped("the host read foreign userdata as its own (" .. #odd .. " times): " .. odd[1]) end
            return blocked(#keys == 0 and "no host key visible" or "host key visible but never trusted")
            """)
        try sandbox.folder.write("plugins/hostile.lua", hostilePlugin([attempt], effects: sandbox.effects, parent: sandbox.parent))
        let run = try await sandbox.run([Stage(lines: [#"{"topic": "t.a1", "data": {"x": [1, 2, 3]}, "headers": {"h": "v"}}"#], until: nil)], bound: 30)
        expectHealthyRun(run, sandbox, events: 1, "hidden key")
        #expect(run.lines(startingWith: "attempt 1: blocked").count == 1, "hidden key: \(run.lines(startingWith: "attempt 1:")) (the process \(run.ending))")
    }

    /// The JSON encoder while plugin code changes the table it walks: through any finalizer route
    /// still open (setmetatable, __gc placeholders, host metatables) and weak tables, code that runs
    /// during the encoder's allocations adds keys to the table being encoded.
    @Test func theEncoderSurvivesTablesChangingUnderIt() async throws {
        // Its 300 rounds take seconds on a loaded machine: the drain waits as long as its budget.
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"], timeout: 20s, memory: 256MiB }"#], files: [:],
            drainTimeout: "25s")
        let attempt = Attempt(name: "keys added while json.encode walks the table", lua: """
            local target
            local function grow()
              if target then for i = 1, 3000 do rawset(target, "k" .. i, i) rawset(target, i, i) end end
            end
            -- Every finalizer route that may still be open.
            local routes = {}
            local function arm()
              if pcall(setmetatable, {}, {__gc = function() grow() arm() end}) then routes.setmetatable = true end
              local mt = {__gc = true}
              if pcall(setmetatable, {}, mt) then mt.__gc = function() grow() arm() end routes.placeholder = true end
              local tmt = getmetatable(sb.after(3600, noop))
              if type(tmt) == "table" and pcall(rawset, tmt, "__gc", function() grow() end) then
                local t = sb.after(3600, noop) t:cancel() routes.timer = true
              end
              local amt = getmetatable(json.array({}))
              if type(amt) == "table" and pcall(rawset, amt, "__gc", function() grow() end) then json.array({}) routes.array = true end
            end
            for round = 1, 300 do
              target = (round % 2 == 0) and json.object({}) or setmetatable({}, {__mode = "k"})
              for i = 1, 300 do rawset(target, (round % 2 == 0) and i or ("a" .. i), i) end
              arm()
              for i = 1, 2000 do local garbage = {i, tostring(i)} end
              pcall(json.encode, target)
              pcall(sb.publish, "z.none", target)
              pcall(sb.log.debug, "x", {t = target})
            end
            target = nil
            local names = {}
            for k in pairs(routes) do names[#names + 1] = k end
            sort(names)
            return blocked(#names == 0 and "no route runs plugin code during encoding" or ("survived with finalizer routes open: " .. concat(names, ",")))
            """)
        try sandbox.folder.write("plugins/hostile.lua", hostilePlugin([attempt], effects: sandbox.effects, parent: sandbox.parent))
        let run = try await sandbox.run([Stage(lines: [event(1)], until: nil)], bound: 40)
        expectHealthyRun(run, sandbox, events: 1, "encoder")
        let verdict = run.lines(startingWith: "attempt 1:")
        #expect(verdict.count == 1 && verdict[0].contains(": blocked"), "encoder: \(verdict) (the process \(run.ending))")
        #expect(!(verdict.first?.contains("routes open") ?? false),
                "encoder: finalizers can still run plugin code: \(verdict.first ?? "")")
    }

    // MARK: Memory: what the host does on a plugin's behalf counts too

    /// One 1 MiB string reached through ten levels of shared sub-tables (a few KiB of Lua memory,
    /// a GiB of JSON) under `memory: 16MiB`: publish, json.encode and log fields fail quickly with
    /// an error, and the process's peak RSS stays far below 1 GiB.
    @Test(.exclusive) func sharedSubtablesCannotBlowUpTheEncoder() async throws {
        let sandbox = try Sandbox(
            subscribers: [#"{ name: hostile, plugin: plugins/hostile.lua, topics: ["t.>"], timeout: 30s, memory: 16MiB }"#], files: [:])
        let build = """
            local t = rep("x", 1 << 20)
            for level = 1, 10 do t = {t, t} end
            local start = now()

            """
        let verdict = """


            local seconds = now() - start
            if ok then return escaped("it was encoded (" .. clean(result) .. ") in " .. seconds .. " s") end
            if seconds > 3 then return escaped("it failed, but only after " .. seconds .. " s: " .. clean(result)) end
            return blocked(clean(result) .. " in " .. seconds .. " s")
            """
        let attempts = [
            Attempt(name: "publish of a GiB of shared sub-tables", lua: build + """
                local accepted, message = sb.publish("z.big", t)
                local ok, result = accepted ~= nil, accepted ~= nil and accepted or message
                """ + verdict),
            Attempt(name: "json.encode of it", lua: build + """
                local ok, result = pcall(json.encode, t)
                if ok then result = #result .. " bytes" end
                """ + verdict),
            Attempt(name: "log fields holding it", lua: build + """
                local ok, result = pcall(sb.log.info, "x", {k = t})
                if ok then result = "logged" end
                """ + verdict),
        ]
        try sandbox.folder.write("plugins/hostile.lua", hostilePlugin(attempts, effects: sandbox.effects, parent: sandbox.parent))
        let run = try await sandbox.run([Stage(lines: (1...attempts.count).map(event), until: nil)], bound: 90)
        expectHealthyRun(run, sandbox, events: attempts.count, "shared sub-tables")
        expectAllBlocked(run, attempts, "shared sub-tables")
        #expect(run.peakRSS < 1 << 30, "shared sub-tables: the process peaked at \(run.peakRSS >> 20) MiB of RSS under a 16 MiB cap")
    }

    /// A 70 MB payload on a topic that a healthy subscriber under a 1 MiB cap shares, never
    /// reading `event.data`: it handles it without failing or rebuilding its state. If publish
    /// has a size limit below 70 MB, the refusal says so and the largest accepted size is used.
    @Test(.exclusive) func aLargePublishDoesNotCostAHealthySubscriberItsState() async throws {
        let sandbox = try Sandbox(
            subscribers: [#"{ name: producer, plugin: plugins/producer.lua, topics: ["go"], timeout: 30s, memory: 1GiB }"#],
            files: ["plugins/producer.lua": """
                return { handle = function()
                  local refusals = {}
                  for _, size in ipairs({70000000, 16000000, 4000000, 1000000}) do
                    local accepted, message = switchboard.publish("t.big", string.rep("x", size))
                    if accepted then
                      print("big: accepted " .. accepted .. " size " .. size .. " refusals " .. table.concat(refusals, " | "))
                      return
                    end
                    refusals[#refusals + 1] = size .. ": " .. tostring(message)
                  end
                  print("big: refused every size " .. table.concat(refusals, " | "))
                end }
                """])
        // The healthy subscriber runs under a 1 MiB cap here.
        let yaml = try String(contentsOfFile: sandbox.folder.path("c.yaml"), encoding: .utf8)
            .replacingOccurrences(of: #"topics: ["t.>", "p.>"] }"#, with: #"topics: ["t.>", "p.>"], memory: 1MiB }"#)
        try sandbox.folder.write("c.yaml", yaml)
        let run = try await sandbox.run([
            Stage(lines: [#"{"topic": "go"}"#], until: "big: "),
            Stage(lines: [event(1), event(2)], until: nil),
        ], bound: 90)
        expectHealthyRun(run, sandbox, events: 3, "large publish")
        let line = run.lines(startingWith: "big: ").first ?? "(no line: the process \(run.ending))"
        #expect(line.hasPrefix("big: accepted 1 size"), "large publish: \(line.prefix(600))")
        if line.contains("refusals") && !line.hasSuffix("refusals ") {
            let reason = line.components(separatedBy: "refusals ").last ?? ""
            #expect(["size", "large", "limit", "MiB", "bytes"].contains { reason.contains($0) },
                    "large publish: a refusal that does not say it is about size: \(reason.prefix(400))")
        }
        #expect(run.lines(startingWith: "healthy init").count == 1,
                "large publish: the healthy subscriber's state was rebuilt (init ran \(run.lines(startingWith: "healthy init").count) times)")
        #expect(run.counts("healthy")["failed"] == 0 && run.counts("healthy")["received"] == 3,
                "large publish: \(run.counts("healthy")); \(run.errors.suffix(600))")
    }
}
