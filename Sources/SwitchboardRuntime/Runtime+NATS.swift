import SwitchboardMetrics
import SwitchboardNATS

/// How a run shows the NATS bridge: the line printed once it is up, and its series in `/metrics`.
extension Runtime {
    /// The line printed once the bridge is up.
    static func describe(_ settings: NATSSettings, instance: String) -> String {
        var parts = ["NATS at \(settings.url) as '\(instance)'"]
        if !settings.export.isEmpty { parts.append("exporting \(settings.export.joined(separator: ", "))") }
        if let jetStream = settings.jetStream {
            if !jetStream.export.isEmpty {
                parts.append("storing \(jetStream.export.joined(separator: ", ")) in JetStream stream '\(jetStream.stream)'")
            }
            if let settings = jetStream.import {
                parts.append("importing \(settings.filter ?? "everything") from JetStream stream '\(jetStream.stream)' as consumer '\(settings.durable)'")
            }
        }
        if !settings.import.isEmpty {
            let group = settings.queueGroup.map { " in queue group '\($0)'" } ?? ""
            parts.append("importing \(settings.import.joined(separator: ", "))\(group)")
        }
        return parts.joined(separator: ", ")
    }

    /// The bridge's series in `/metrics`.
    static func readings(_ stats: NATSBridgeStats) -> [MetricReading] {
        let jetStream = stats.jetStream.map { jetStream in [
            MetricReading(.counter, "switchboard_nats_js_exported_total", value: jetStream.exported),
            MetricReading(.counter, "switchboard_nats_js_export_failed_total", value: jetStream.exportFailed),
            MetricReading(.gauge, "switchboard_nats_js_pending", [("direction", "export")], value: jetStream.exportPending),
        ] } ?? []
        let imports = stats.jetStreamImport.map { counts in [
            MetricReading(.counter, "switchboard_nats_js_imported_total", value: counts.imported),
            MetricReading(.counter, "switchboard_nats_js_acked_total", value: counts.acked),
            MetricReading(.counter, "switchboard_nats_js_nacked_total", value: counts.nacked),
            MetricReading(.counter, "switchboard_nats_js_terminated_total", value: counts.terminated),
            MetricReading(.counter, "switchboard_nats_js_redelivered_total", value: counts.redelivered),
            MetricReading(.gauge, "switchboard_nats_js_pending", [("direction", "import")], value: counts.pending),
        ] } ?? []
        return jetStream + imports + [
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
