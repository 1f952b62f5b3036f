/// Everything wrong with a configuration file, each problem with the file, the line where the
/// YAML parser gives one, the subscriber it concerns and the offending value.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// One problem.
    public struct Problem: Sendable, CustomStringConvertible {
        /// The configuration file.
        public let file: String
        /// The 1-based line, when known.
        public let line: Int?
        /// The subscriber the problem concerns, if any.
        public let subscriber: String?
        /// What is wrong, naming the offending value.
        public let message: String

        public var description: String {
            let place = line.map { "\(file):\($0)" } ?? file
            return subscriber.map { "\(place): subscriber '\($0)': \(message)" } ?? "\(place): \(message)"
        }
    }

    /// The problems, in file order.
    public let problems: [Problem]

    public var description: String { problems.map(\.description).joined(separator: "\n") }
}
