import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Writers and readers through HAProxy while a test restarts or reshapes the cluster. A request
/// answered 503 with `Retry-After` is retried once after that delay (what a well-behaved client
/// does); anything else that is not a success is a failure. Every acknowledged write is kept, to
/// be read back at the end.
actor LoadClient {
    struct Report {
        var acknowledged: [String: String]
        var failures: [String]
    }

    let proxy: String
    private var acknowledged: [String: String] = [:]
    private var failures: [String] = []
    private var stopped = false
    private var reads = 0

    init(proxy: String) { self.proxy = proxy }

    var acknowledgedCount: Int { acknowledged.count }

    nonisolated func start(writers: Int, readers: Int) -> Task<Void, Never> {
        Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<writers { group.addTask { await self.writeLoop(writer) } }
                for _ in 0..<readers { group.addTask { await self.readLoop() } }
            }
        }
    }

    func stop() { stopped = true }

    func report() -> Report { Report(acknowledged: acknowledged, failures: failures) }

    private func writeLoop(_ writer: Int) async {
        var sequence = 0
        while !stopped {
            let key = "load-\(writer)-\(sequence)"
            let value = "v\(sequence)"
            sequence += 1
            let answer = await Self.send("PUT", proxy + "/kv/" + key, body: value, idempotencyKey: key)
            if answer.status == 200 {
                acknowledged[key] = value
            } else {
                failures.append("PUT \(key): \(answer.status) \(answer.body.prefix(200))")
            }
        }
    }

    private func readLoop() async {
        while !stopped {
            guard let (key, value) = acknowledged.randomElement() else {
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            let answer = await Self.send("GET", proxy + "/kv/" + key)
            reads += 1
            if answer.status != 200 || !answer.body.contains("\"\(value)\"") {
                failures.append("GET \(key): \(answer.status) \(answer.body.prefix(200))")
            }
        }
    }

    /// Acknowledged keys that do not read back with their value (reads retried while the cluster
    /// answers 503, so only a real loss is reported).
    func lost(readingThrough port: Int) async -> [String] {
        var missing: [String] = []
        for (key, value) in acknowledged.sorted(by: { $0.key < $1.key }) {
            var found = false
            let deadline = ContinuousClock.now + .seconds(20)
            repeat {
                let answer = await Self.send("GET", "http://127.0.0.1:\(port)/kv/\(key)")
                if answer.status == 200 {
                    found = answer.body.contains("\"\(value)\"")
                    break
                }
                if answer.status == 404 { break }
                try? await Task.sleep(for: .milliseconds(50))
            } while ContinuousClock.now < deadline
            if !found { missing.append(key) }
        }
        return missing
    }

    static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 15
        return URLSession(configuration: configuration)
    }()

    /// One request; a 503 carrying `Retry-After` is retried once after that many seconds (at most 1).
    static func send(
        _ method: String, _ url: String, body: String? = nil, idempotencyKey: String? = nil
    ) async -> (status: Int, body: String) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.httpBody = body.map { Data($0.utf8) }
        if let idempotencyKey { request.setValue(idempotencyKey, forHTTPHeaderField: "Idempotency-Key") }
        for attempt in 0..<2 {
            guard let (data, response) = try? await session.data(for: request),
                let http = response as? HTTPURLResponse
            else { return (0, "no answer") }
            let text = String(decoding: data, as: UTF8.self)
            guard attempt == 0, http.statusCode == 503, let retryAfter = http.value(forHTTPHeaderField: "Retry-After"),
                let seconds = Double(retryAfter)
            else { return (http.statusCode, text) }
            try? await Task.sleep(for: .milliseconds(Int(min(seconds, 1) * 1000)))
        }
        return (0, "unreachable")
    }
}
