import SwitchboardCore
import SwitchboardJSON
import SwitchboardNATS

/// What a run came to, once it ended: the router's counts, the input's rejected lines and the
/// NATS bridge's counts; as the summary table on standard error and the `--report` document.
public struct RunReport: Sendable {
    /// The router's counts at the end.
    public var stats: RouterStats
    /// Input lines rejected.
    public var rejected: Int
    /// The input stopped at a bad line (`strict`).
    public var stoppedAtBadLine: Bool
    /// The NATS bridge's counts and the instance's name there, when there was a bridge.
    public var nats: (stats: NATSBridgeStats, instance: String)?

    /// What can become of a routed event that counts against a run: `--fail-on`'s words.
    public enum Loss: String, Sendable, CaseIterable {
        /// Refused or evicted by a full queue.
        case dropped
        /// Still queued or in hand at the drain deadline.
        case abandoned
        /// Its handler failed it.
        case failed
    }

    /// The names of the subscribers whose events met any of `losses`, in summary order: the
    /// plugins (and sinks), not the NATS exporter, which keeps its own counts.
    public func subscribers(with losses: Set<Loss>) -> [String] {
        stats.byName.filter { subscriber in
            !NATSBridge.exporterNames.contains(subscriber.name)
                && losses.contains { loss in
                    switch loss {
                    case .dropped: subscriber.dropped > 0
                    case .abandoned: subscriber.abandoned > 0
                    case .failed: subscriber.failed > 0
                    }
                }
        }.map(\.name)
    }

    /// The table written at exit: a line per subscriber (`lost N` after one that dropped or
    /// abandoned events), the totals, the bridge's line.
    public var summary: String {
        let columns = ["received", "handled", "failed", "dropped", "abandoned", "pending", "published", "publish_failed"]
        let width = max(10, stats.subscribers.map(\.name.count).max() ?? 0)
        func pad(_ text: String, _ count: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, count - text.count))
            return left ? text + fill : fill + text
        }
        let widths = columns.map { max(10, $0.count + 1) }
        var lines = [pad("subscriber", width, left: true) + zip(columns, widths).map { pad($0, $1) }.joined()]
        for subscriber in stats.subscribers {
            let values = [
                subscriber.received, subscriber.handled, subscriber.failed, subscriber.dropped, subscriber.abandoned,
                subscriber.pending, subscriber.published, subscriber.publishFailed,
            ]
            let lost = subscriber.dropped + subscriber.abandoned
            lines.append(
                pad(subscriber.name, width, left: true) + zip(values, widths).map { pad(String($0), $1) }.joined()
                    + (lost > 0 ? "  lost \(lost)" : ""))
        }
        lines.append("published \(stats.published), rejected \(rejected)")
        if let nats {
            let bridge = nats.stats
            lines.append(
                "nats: \(bridge.state), exported \(bridge.exported), possibly lost \(bridge.possiblyLost), "
                    + "dropped \(bridge.dropped), imported \(bridge.imported), import dropped \(bridge.importDropped), "
                    + "reconnects \(bridge.reconnects)")
            let exports = bridge.jetStream.map { counts in
                "js_exported \(counts.exported), js_export_failed \(counts.exportFailed), awaiting acknowledgement \(counts.exportPending)"
            }
            let imports = bridge.jetStreamImport.map { counts in
                "js_imported \(counts.imported), js_acked \(counts.acked), js_nacked \(counts.nacked), "
                    + "js_terminated \(counts.terminated), js_redelivered \(counts.redelivered), awaiting an answer \(counts.pending)"
            }
            let parts = [exports, imports].compactMap { $0 }
            if !parts.isEmpty { lines.append("nats jetstream: " + parts.joined(separator: "; ")) }
        }
        return lines.joined(separator: "\n")
    }

    /// The `--report` document: one entry per subscriber name (see ``RouterStats/byName``), and
    /// the NATS bridge's counts when there was one.
    public var document: JSON {
        let subscribers = stats.byName.map { subscriber -> (String, JSON) in
            (subscriber.name, [
                "received": .int(Int64(subscriber.received)), "handled": .int(Int64(subscriber.handled)),
                "failed": .int(Int64(subscriber.failed)), "dropped": .int(Int64(subscriber.dropped)),
                "abandoned": .int(Int64(subscriber.abandoned)), "pending": .int(Int64(subscriber.pending)),
                "published": .int(Int64(subscriber.published)), "publish_failed": .int(Int64(subscriber.publishFailed)),
                "retries": .int(Int64(subscriber.retries)), "dead_lettered": .int(Int64(subscriber.deadLettered)),
            ])
        }
        var document: [(String, JSON)] = [
            ("published", .int(Int64(stats.published))), ("rejected", .int(Int64(rejected))),
            ("subscribers", .object(.init(subscribers, uniquingKeysWith: { first, _ in first }))),
        ]
        if let nats {
            let bridge = nats.stats
            var counts: [(String, JSON)] = [
                ("instance", .string(nats.instance)), ("state", .string(bridge.state)), ("exported", .int(Int64(bridge.exported))),
                ("possibly_lost", .int(Int64(bridge.possiblyLost))), ("dropped", .int(Int64(bridge.dropped))),
                ("imported", .int(Int64(bridge.imported))), ("import_dropped", .int(Int64(bridge.importDropped))),
                ("reconnects", .int(Int64(bridge.reconnects))),
            ]
            if let jetStream = bridge.jetStream {
                counts += [
                    ("js_exported", .int(Int64(jetStream.exported))), ("js_export_failed", .int(Int64(jetStream.exportFailed))),
                    ("js_export_pending", .int(Int64(jetStream.exportPending))),
                ]
            }
            if let imports = bridge.jetStreamImport {
                counts += [
                    ("js_imported", .int(Int64(imports.imported))), ("js_acked", .int(Int64(imports.acked))),
                    ("js_nacked", .int(Int64(imports.nacked))), ("js_terminated", .int(Int64(imports.terminated))),
                    ("js_redelivered", .int(Int64(imports.redelivered))), ("js_import_pending", .int(Int64(imports.pending))),
                ] as [(String, JSON)]
            }
            document.append(("nats", .object(.init(counts, uniquingKeysWith: { first, _ in first }))))
        }
        return .object(.init(document, uniquingKeysWith: { first, _ in first }))
    }
}
