import SwitchboardCore

/// Parsers for the value formats the configuration file uses.
public enum ConfigValue {
    /// A duration written as people write them: `250ms`, `5s`, `1.5s`, `1m30s`, `2h`, `7d`,
    /// `500us`; parts of decreasing units, each a number (with a fraction if need be) and its unit.
    public static func duration(_ text: String) -> Duration? {
        // Longest spelling first, so that `ms` is not read as minutes and seconds.
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("µs", 1e3), ("ns", 1), ("s", 1e9), ("m", 6e10), ("h", 3.6e12), ("d", 8.64e13)]
        var rest = Substring(text)
        var nanoseconds = 0.0
        var previousScale = Double.infinity
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            guard let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) }), scale < previousScale else { return nil }
            rest = rest.dropFirst(unit.count)
            nanoseconds += value * scale
            previousScale = scale
        }
        guard previousScale.isFinite else { return nil }
        if nanoseconds < 9e18 { return .nanoseconds(Int64(nanoseconds.rounded())) }
        let seconds = (nanoseconds / 1e9).rounded()  // past 292 years, whole seconds
        return seconds < 9e18 ? .seconds(Int64(seconds)) : nil
    }

    /// A size written `512KiB`, `64MiB` or `1GiB` (or plain bytes, `B`).
    public static func size(_ text: String) -> Int? {
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("B", 1)]
        for (unit, scale) in units where text.hasSuffix(unit) {
            guard let number = Int(text.dropLast(unit.count)), number >= 0 else { return nil }
            let (total, overflow) = number.multipliedReportingOverflow(by: scale)
            return overflow ? nil : total
        }
        return nil
    }

    /// Spellings a refused duration or size may have meant: `64MB` → `64MiB`, `5 sec` → `5s`,
    /// `2min` → `2m`. The caller keeps the first that its own parser accepts.
    public static func respellings(of text: String) -> [String] {
        var compact = text.lowercased().filter { !$0.isWhitespace }
        for (word, unit) in [("milliseconds", "ms"), ("millisecond", "ms"), ("msec", "ms"), ("seconds", "s"), ("second", "s"),
                             ("secs", "s"), ("sec", "s"), ("minutes", "m"), ("minute", "m"), ("mins", "m"), ("min", "m"),
                             ("hours", "h"), ("hour", "h"), ("hrs", "h"), ("hr", "h"), ("days", "d"), ("day", "d")] {
            if compact.hasSuffix(word) { compact = String(compact.dropLast(word.count)) + unit }
        }
        var sizes: [String] = []
        let digits = compact.prefix { $0.isNumber }
        let unit = compact.dropFirst(digits.count)
        if !digits.isEmpty, let letter = unit.first, "kmg".contains(letter), ["", "b", "ib"].contains(unit.dropFirst()) {
            sizes.append("\(digits)\(letter.uppercased())iB")
        }
        return sizes + [compact]
    }

    /// `HOST:PORT`, such as `127.0.0.1:9464` or `[::1]:9464`; port 0 picks a free one.
    public static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    /// True when `host` is a loopback address: `localhost`, an IPv4 address in `127.0.0.0/8`,
    /// or `::1`. A name that merely starts with `127.` (`127.0.0.1.example.com`) is not.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127"
            && octets.allSatisfy { $0.count <= 3 && UInt8($0) != nil }
    }

    /// `drop_newest`, `drop_oldest`, `block` or `spill`.
    public static func overflow(_ text: String) -> OverflowPolicy? {
        OverflowPolicy.allCases.first { $0.description == text }
    }

    /// `text` with every `${NAME}` replaced by that environment variable, and every
    /// `${NAME:-default}` by the variable or, when it is unset or empty, by `default`; the names
    /// of unset ones that have no default.
    public static func substitute(_ text: String, environment: [String: String]) -> (String, missing: [String]) {
        var result = ""
        var missing: [String] = []
        var rest = text[...]
        while let open = rest.range(of: "${") {
            result += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                result += rest[open.lowerBound...]
                return (result, missing)
            }
            let reference = rest[open.upperBound..<close]
            if let dash = reference.range(of: ":-") {
                let value = environment[String(reference[..<dash.lowerBound])] ?? ""
                result += value.isEmpty ? String(reference[dash.upperBound...]) : value
            } else if let value = environment[String(reference)] {
                result += value
            } else {
                missing.append(String(reference))
            }
            rest = rest[rest.index(after: close)...]
        }
        return (result + rest, missing)
    }
}
