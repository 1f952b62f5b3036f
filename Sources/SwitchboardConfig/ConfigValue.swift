import SwitchboardCore

/// Parsers for the value formats the configuration file uses.
public enum ConfigValue {
    /// A duration written `250ms`, `5s`, `2m`, `1h` or `7d`.
    public static func duration(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (unit, milliseconds) in units where text.hasSuffix(unit) {
            guard let number = Int64(text.dropLast(unit.count)), number >= 0 else { return nil }
            let (total, overflow) = number.multipliedReportingOverflow(by: milliseconds)
            return overflow ? nil : .milliseconds(total)
        }
        return nil
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

    /// `HOST:PORT`, such as `127.0.0.1:9464` or `[::1]:9464`; port 0 picks a free one.
    public static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
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
