extension Event {
    /// The event as one JSON object, `{"id", "time", "topic", "data", "headers"}`: what a dead
    /// letter holds, what a sink's `event` format writes.
    public var json: JSON {
        [
            "id": .string(id.description), "time": .double(time), "topic": .string(topic), "data": data,
            "headers": .object(sortingKeysOf: headers),
        ]
    }

    /// Appends the text of ``json`` to `bytes`, the payload written from its tape without decoding it.
    public func writeJSON(to bytes: inout [UInt8]) {
        bytes.append(contentsOf: #"{"id":""#.utf8)
        bytes.append(contentsOf: id.description.utf8)
        bytes.append(contentsOf: #"","time":"#.utf8)
        JSON.double(time).write(to: &bytes)
        bytes.append(contentsOf: #","topic":"#.utf8)
        JSON.string(topic).write(to: &bytes)
        bytes.append(contentsOf: #","data":"#.utf8)
        tape.write(to: &bytes)
        bytes.append(contentsOf: #","headers":"#.utf8)
        JSON.object(sortingKeysOf: headers).write(to: &bytes)
        bytes.append(UInt8(ascii: "}"))
    }
}
