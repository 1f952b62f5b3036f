/// The check of an `Authorization: Bearer <token>` header, shared by the HTTP listeners at the
/// edge (ingest, and metrics with its admin endpoints).
package enum BearerToken {
    /// True when `header` is `Bearer <token>`, compared in constant time.
    package static func authorizes(_ header: String?, token: String) -> Bool {
        let expected = Array("Bearer \(token)".utf8)
        let given = Array((header ?? "").utf8)
        var difference = UInt8(expected.count == given.count ? 0 : 1)
        for index in expected.indices { difference |= expected[index] ^ (index < given.count ? given[index] : 0) }
        return difference == 0
    }
}
