import Switchboard

/// How `switchboard run` shows the NATS bridge: at start, in the summary, the report and the metrics.
extension Run {
    /// The line printed once the bridge is up.
    static func describe(_ settings: NATSSettings, instance: String) -> String {
        var parts = ["NATS at \(settings.url) as '\(instance)'"]
        if !settings.export.isEmpty { parts.append("exporting \(settings.export.joined(separator: ", "))") }
        if !settings.import.isEmpty {
            let group = settings.queueGroup.map { " in queue group '\($0)'" } ?? ""
            parts.append("importing \(settings.import.joined(separator: ", "))\(group)")
        }
        return parts.joined(separator: ", ")
    }

    /// The bridge's line under the summary table.
    static func summary(_ stats: NATSBridgeStats) -> String {
        "nats: \(stats.state), exported \(stats.exported), possibly lost \(stats.possiblyLost), dropped \(stats.dropped), "
            + "imported \(stats.imported), import dropped \(stats.importDropped), reconnects \(stats.reconnects)"
    }

    /// The `nats` entry of the `--report` document.
    static func reportDocument(_ stats: NATSBridgeStats, instance: String) -> JSON {
        [
            "instance": .string(instance), "state": .string(stats.state), "exported": .int(Int64(stats.exported)),
            "possibly_lost": .int(Int64(stats.possiblyLost)), "dropped": .int(Int64(stats.dropped)),
            "imported": .int(Int64(stats.imported)), "import_dropped": .int(Int64(stats.importDropped)),
            "reconnects": .int(Int64(stats.reconnects)),
        ]
    }

    /// The bridge's series in `/metrics`.
    static func readings(_ stats: NATSBridgeStats) -> [MetricReading] {
        [
            MetricReading(.gauge, "switchboard_nats_connected", value: stats.state == "connected" ? 1 : 0),
            MetricReading(.counter, "switchboard_nats_exported_total", value: stats.exported),
            MetricReading(.counter, "switchboard_nats_possibly_lost_total", value: stats.possiblyLost),
            MetricReading(.counter, "switchboard_nats_dropped_total", [("direction", "export")], value: stats.dropped),
            MetricReading(.counter, "switchboard_nats_dropped_total", [("direction", "import")], value: stats.importDropped),
            MetricReading(.counter, "switchboard_nats_imported_total", value: stats.imported),
            MetricReading(.counter, "switchboard_nats_reconnects_total", value: stats.reconnects),
        ]
    }
}
