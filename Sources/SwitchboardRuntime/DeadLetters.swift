import Foundation
import SwitchboardConfig
import SwitchboardCore
import SwitchboardJournal

/// One dead letter in the journal: an event that a subscriber failed for good, with the error
/// and the attempts, as `switchboard deadletters` lists it.
public struct DeadLetter: Sendable {
    /// The dead letter's own place in the journal.
    public let sequence: UInt64
    /// The subscriber that failed the event.
    public let subscriber: String
    /// The original event: `{"id", "time", "topic", "data", "headers"}`.
    public let event: JSON
    /// The error of its last attempt, or of its last redrive when that failed too.
    public var error: String
    /// How many times the subscriber tried it.
    public let attempts: Int
    /// How many times a redrive sent it.
    public var redrives = 0
    /// A redrive handled it: it is done.
    public var isDone = false

    /// The original event's id.
    public var id: String { event["id"]?.stringValue ?? "" }
    /// The original event's topic.
    public var topic: String { event["topic"]?.stringValue ?? "" }
    /// When the original event was published, in Unix seconds.
    public var time: Double { event["time"]?.doubleValue ?? 0 }

    /// The dead letter that ``json`` describes (the original event reduced to its id, topic
    /// and time): what `POST /-/redrive` answers with, read back by the command line. Nil
    /// unless `json` has every field.
    public init?(json: JSON) {
        guard let sequence = json["seq"]?.intValue, let subscriber = json["subscriber"]?.stringValue,
              let error = json["error"]?.stringValue, let attempts = json["attempts"]?.intValue
        else { return nil }
        self.sequence = UInt64(bitPattern: sequence)
        self.subscriber = subscriber
        event = ["id": json["id"] ?? "", "topic": json["topic"] ?? "", "time": json["time"] ?? 0]
        self.error = error
        self.attempts = Int(attempts)
        redrives = Int(json["redrives"]?.intValue ?? 0)
        isDone = json["done"] == true
    }

    /// The dead letter at `sequence`, as the journal holds it.
    init(sequence: UInt64, subscriber: String, event: JSON, error: String, attempts: Int) {
        self.sequence = sequence
        self.subscriber = subscriber
        self.event = event
        self.error = error
        self.attempts = attempts
    }

    /// What `switchboard deadletters --json` prints for it.
    public var json: JSON {
        [
            "seq": .int(Int64(bitPattern: sequence)), "subscriber": .string(subscriber), "id": .string(id),
            "topic": .string(topic), "time": .double(time), "error": .string(error), "attempts": .int(Int64(attempts)),
            "redrives": .int(Int64(redrives)), "done": .bool(isDone),
        ]
    }
}

/// The dead letters of a configuration's journal, and what redrives made of them.
///
/// A dead letter is an event on `deadletter.<subscriber>`, which the journal keeps as it keeps
/// every published event. What a redrive did is appended to `redrives.jsonl` in the journal's
/// folder, a line per dead letter sent: `{"seq": N, "outcome": "handled" | "failed", "error": ...}`.
public enum DeadLetters {
    /// The file of redrive outcomes in a journal folder.
    static func recordPath(in folder: String) -> String { (folder as NSString).appendingPathComponent("redrives.jsonl") }

    /// The journal's folder, or a ``RuntimeError`` saying that dead letters need one.
    static func folder(of configuration: Configuration) throws -> String {
        guard let folder = configuration.journal?.path else {
            throw RuntimeError(
                kind: .invalid,
                message: "\(configuration.path): no journal is configured: dead letters are kept only with one (journal: { path: ... }, and on_failure: { dead_letter: true } on the subscriber)")
        }
        return folder
    }

    /// The dead letters in `window`, of `subscriber` or of all, oldest first, with what redrives
    /// made of them: one per subscriber and event, its newest (an event redriven through a
    /// running instance and dead-lettered again has a second), with the redrives of them all.
    /// Throws ``RuntimeError`` without a journal or at a corrupt record.
    public static func read(
        _ configuration: Configuration, subscriber: String? = nil, window: JournalWindow = JournalWindow()
    ) throws -> [DeadLetter] {
        let folder = try folder(of: configuration)
        var letters: [DeadLetter] = []
        do {
            try window.forEachRecord(in: folder) { record in
                guard record.topic.hasPrefix("deadletter.") else { return }
                let name = String(record.topic.dropFirst("deadletter.".count))
                guard subscriber == nil || subscriber == name, let letter = try? record.data.decoded(),
                      let event = letter["event"]
                else { return }
                letters.append(DeadLetter(
                    sequence: record.sequence, subscriber: name, event: event, error: letter["error"]?.stringValue ?? "",
                    attempts: Int(letter["attempts"]?.intValue ?? 0)))
            }
        } catch let problem as JournalReader.CorruptRecord {
            throw RuntimeError(kind: .failed, message: "journal: \(problem)")
        }
        let outcomes = (try? String(contentsOfFile: recordPath(in: folder), encoding: .utf8)) ?? ""
        var bySequence: [UInt64: Int] = [:]
        for (index, letter) in letters.enumerated() { bySequence[letter.sequence] = index }
        for line in outcomes.split(separator: "\n") {
            guard let outcome = try? JSON(parsing: String(line)), let sequence = outcome["seq"]?.intValue,
                  let index = bySequence[UInt64(bitPattern: sequence)]
            else { continue }
            letters[index].redrives += 1
            letters[index].isDone = outcome["outcome"] == "handled"
            if let error = outcome["error"]?.stringValue { letters[index].error = error }
        }
        var newest: [String: DeadLetter] = [:]  // by subscriber and event id
        for var letter in letters {
            let key = letter.subscriber + "\u{0}" + letter.id
            letter.redrives += newest[key]?.redrives ?? 0
            newest[key] = letter
        }
        return newest.values.sorted { $0.sequence < $1.sequence }
    }

    /// Appends what a redrive made of `letters`: handled, or failed with a new error.
    static func record(_ outcomes: [(letter: DeadLetter, error: String?)], in folder: String) throws {
        var text = ""
        for (letter, error) in outcomes {
            let sequence = JSON.int(Int64(bitPattern: letter.sequence))
            let line: JSON = error.map { ["seq": sequence, "outcome": "failed", "error": .string($0)] } ?? ["seq": sequence, "outcome": "handled"]
            text += line.serialized() + "\n"
        }
        let path = recordPath(in: folder)
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }  // the open below says if it failed
        guard let file = FileHandle(forWritingAtPath: path) else {
            throw RuntimeError(kind: .failed, message: "cannot write \(path)")
        }
        defer { try? file.close() }
        try file.seekToEnd()
        try file.write(contentsOf: Data(text.utf8))
        try file.synchronize()
    }
}
