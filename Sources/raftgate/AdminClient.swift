import Foundation

/// Admin requests to a node's HTTP API with the admin token, following the 307 a follower answers
/// for membership changes (to the leader), as `raftgate member …` and `serve --join` send them.
struct AdminClient: Sendable {
    var server: Address
    var token: String?

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends the request, following at most three redirects. Blocking: call it off the
    /// concurrency pool (`offThePool`) from async code.
    func send(_ method: String, _ path: String, json body: [UInt8] = []) throws -> PlainHTTPClient.Answer {
        var address = server
        var path = path
        var headers: [String: String] = [:]
        if let token { headers["Authorization"] = "Bearer \(token)" }
        if !body.isEmpty { headers["Content-Type"] = "application/json" }
        for _ in 0..<4 {
            let answer = try PlainHTTPClient.request(
                method, path, at: address, body: body, headers: headers, timeoutSeconds: 10)
            guard [307, 308].contains(answer.status), let location = answer.headers["location"] else { return answer }
            guard let url = URL(string: location), let host = url.host, let port = url.port,
                let next = Address("\(host):\(port)")
            else { throw Failure(description: "cannot follow the redirect to \(location)") }
            address = next
            path = url.path + (url.query.map { "?\($0)" } ?? "")
        }
        throw Failure(description: "too many redirects")
    }

    /// The error message of a JSON error answer, or the body as text.
    static func message(_ answer: PlainHTTPClient.Answer) -> String {
        struct ErrorBody: Decodable {
            struct Inner: Decodable {
                var code: String
                var message: String
            }
            var error: Inner
        }
        if let decoded = try? JSONDecoder().decode(ErrorBody.self, from: Data(answer.body)) {
            return "HTTP \(answer.status) \(decoded.error.code): \(decoded.error.message)"
        }
        return "HTTP \(answer.status): \(String(decoding: answer.body, as: UTF8.self))"
    }
}

/// Runs blocking work (socket calls) on a thread of its own, so it never holds one of the
/// concurrency pool's few threads.
func offThePool<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}
