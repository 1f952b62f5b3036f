import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Switchboard

/// How a command reaches a running instance's metrics listener (`--url`, `--token`): `tap`,
/// and `redrive --url`.
struct InstanceClient {
    /// The listener, such as `http://127.0.0.1:9464`.
    let url: String
    /// `--token`, else the `SWITCHBOARD_TOKEN` environment variable.
    let token: String?

    init(url: String, token: String?) {
        self.url = url
        self.token = token ?? ProcessInfo.processInfo.environment["SWITCHBOARD_TOKEN"]
    }

    /// A `ValidationError` unless `url` is an http(s) URL with a host.
    static func validate(_ url: String) throws {
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw ValidationError("--url '\(url)' is not an http:// URL such as http://127.0.0.1:9464")
        }
    }

    /// A request for `path` (after the URL's own path, if it has one) with `query`, carrying the token.
    func request(_ method: HTTPMethod, _ path: String, query: [URLQueryItem]) -> HTTPClientRequest {
        var components = URLComponents(string: url)!
        components.path = (components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path) + path  // behind a proxy's prefix too
        components.queryItems = query
        // '+' is a space to many servers' query decoding: a pattern's or a time's must stay a '+'.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        var request = HTTPClientRequest(url: components.url!.absoluteString)
        request.method = method
        if let token, !token.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return request
    }

    /// What to say of an answer other than 200: the status, the instance's `error`, and a hint for a 401.
    func refusal(_ response: HTTPClientResponse) async -> String {
        let body = (try? await response.body.collect(upTo: 1 << 20)).map { String(buffer: $0) } ?? ""
        let reason = (try? JSON(parsing: body))?["error"]?.stringValue ?? body
        let hint = response.status == .unauthorized ? " (pass --token, or set SWITCHBOARD_TOKEN)" : ""
        return "\(url) answered \(response.status.code): \(reason)\(hint)"
    }
}
