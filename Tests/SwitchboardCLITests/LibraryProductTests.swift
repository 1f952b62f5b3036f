import Foundation
import SwitchboardTestSupport
import Testing

/// The library products an embedder can choose: a program on `SwitchboardCore` alone works
/// and carries nothing of Lua, NATS or the HTTP stack, which the full binary does.
@Suite struct LibraryProductTests {
    static let build = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()

    /// What must be absent from a core-only program: the shared libraries it would load, and the HTTP stack's modules.
    static let heavyParts = ["liblua5.4.so", "libnats.so", "Hummingbird", "NIOCore"]

    @Test func aProgramOnTheCoreAloneRunsAndLinksNoLuaNATSOrHTTP() async throws {
        let example = Self.build.appendingPathComponent("CoreOnlyExample")
        let (status, printed) = try await runProgram(example.path)
        #expect(status == 0)
        #expect(printed == "welcome, ann@example.com\nwelcome, bob@example.com\nhandled 2 of 2\n")

        let core = try Data(contentsOf: example)
        let full = try Data(contentsOf: Self.build.appendingPathComponent("switchboard"))
        for part in Self.heavyParts {
            #expect(full.range(of: Data(part.utf8)) != nil, "the full binary should carry \(part): the check would prove nothing")
            #expect(core.range(of: Data(part.utf8)) == nil, "a core-only program carries \(part)")
        }
    }
}
