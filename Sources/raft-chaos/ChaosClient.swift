import Foundation
import Linearizability

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Monotonic nanoseconds: the history's clock (never wall time, which may step).
func monotonicNow() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Collects the history from every client.
actor HistoryRecorder {
    private(set) var operations: [HistoryOperation] = []
    func record(_ operation: HistoryOperation) { operations.append(operation) }
}

/// What one HTTP exchange came to.
struct HTTPAnswer {
    var status: Int
    var body: [String: Any]?
    /// True when the answer came from raftgate (JSON), not from HAProxy or nowhere.
    var fromNode: Bool { body != nil }
}

enum ChaosHTTP {
    static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 3
        configuration.httpMaximumConnectionsPerHost = 64
        return URLSession(configuration: configuration)
    }()

    /// Status 0: no answer (timeout, refused, reset) — the request may or may not have arrived.
    static func send(_ method: String, _ url: String, body: String? = nil, headers: [String: String] = [:]) async
        -> HTTPAnswer
    {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.timeoutInterval = 3
        if let body { request.httpBody = Data(body.utf8) }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        // Writes also carry an Idempotency-Key, so a resend by any layer applies at most once.
        // A fresh connection per request: libcurl (under URLSession here) silently resends a
        // request whose reused keep-alive connection died — after the first copy may have been
        // applied — and the answer to the resend (say, 503) would be recorded as "certainly
        // not applied". The first long chaos run caught exactly that: a write recorded failed
        // whose value was read back.
        request.setValue("close", forHTTPHeaderField: "Connection")
        guard let (data, response) = try? await session.data(for: request), let http = response as? HTTPURLResponse
        else { return HTTPAnswer(status: 0, body: nil) }
        return HTTPAnswer(
            status: http.statusCode, body: try? JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

/// One chaos client: random reads, writes, compare-and-sets and deletes on a few keys, through
/// HAProxy or straight to a node, each recorded with its outcome.
struct ChaosClient {
    let id: Int
    let keys: [String]
    let cluster: ChaosCluster
    let recorder: HistoryRecorder
    var random: SplitMix64
    /// The last (value, modRevision) this client saw per key, for If-Match.
    var lastSeen: [String: (value: String, revision: Int)] = [:]
    var counter = 0
    /// Appended to reads (`?consistency=stale` shows the checker catching stale reads).
    var readQuery = ""

    init(id: Int, keys: [String], cluster: ChaosCluster, recorder: HistoryRecorder, seed: UInt64) {
        self.id = id
        self.keys = keys
        self.cluster = cluster
        self.recorder = recorder
        random = SplitMix64(seed: seed)
    }

    mutating func run(until deadline: UInt64) async {
        while monotonicNow() < deadline {
            await step()
            try? await Task.sleep(for: .milliseconds(Int(random.next(below: 20))))
        }
    }

    /// Where the next request goes: usually the proxy, sometimes a node directly.
    mutating func target() -> String {
        random.next(below: 10) < 7
            ? cluster.proxyURL : cluster.httpURL(cluster.ids[Int(random.next(below: UInt64(cluster.nodeCount)))])
    }

    mutating func step() async {
        let key = keys[Int(random.next(below: UInt64(keys.count)))]
        let base = target()
        let choice = random.next(below: 100)
        counter += 1
        let invoked = monotonicNow()
        if choice < 40 {
            let answer = await ChaosHTTP.send("GET", "\(base)/kv/\(key)\(readQuery)")
            let completed = monotonicNow()
            if let observed = Self.observedValue(answer) {
                lastSeen[key] = observed.map { ($0, answer.body?["modRevision"] as? Int ?? 0) }
                await record(key, .read(observed: observed), .ok, invoked, completed)
            }
            // Any other answer says nothing about the value: a read has no effect to record.
        } else if choice < 70 || (choice < 90 && lastSeen[key] == nil) {
            let value = "c\(id)-\(counter)"
            let answer = await ChaosHTTP.send(
                "PUT", "\(base)/kv/\(key)", body: value, headers: ["Idempotency-Key": "c\(id)-\(counter)"])
            let outcome = Self.writeOutcome(answer)
            if outcome == .ok { lastSeen[key] = (value, answer.body?["revision"] as? Int ?? 0) }
            await record(key, .write(value), outcome, invoked, monotonicNow())
        } else if choice < 90, let seen = lastSeen[key] {
            let value = "c\(id)-\(counter)"
            let answer = await ChaosHTTP.send(
                "PUT", "\(base)/kv/\(key)", body: value,
                headers: ["If-Match": "\(seen.revision)", "Idempotency-Key": "c\(id)-\(counter)"])
            let completed = monotonicNow()
            if answer.status == 412 {
                lastSeen[key] = nil
                await record(
                    key, .compareAndSet(expected: seen.value, new: value, succeeded: false), .ok, invoked, completed)
            } else {
                let outcome = Self.writeOutcome(answer)
                if outcome == .ok { lastSeen[key] = (value, answer.body?["revision"] as? Int ?? 0) }
                await record(
                    key, .compareAndSet(expected: seen.value, new: value, succeeded: true), outcome, invoked, completed)
            }
        } else {
            let answer = await ChaosHTTP.send(
                "DELETE", "\(base)/kv/\(key)", headers: ["Idempotency-Key": "c\(id)-\(counter)"])
            let completed = monotonicNow()
            // 404 not_found: the key was already absent, and still is — as good as a delete.
            let outcome: HistoryOperation.Outcome =
                answer.status == 404 && Self.errorCode(answer) == "not_found" ? .ok : Self.writeOutcome(answer)
            if outcome == .ok { lastSeen[key] = nil }
            await record(key, .delete, outcome, invoked, completed)
        }
    }

    /// What a read answer says of the key: its value, absent (`.some(nil)`: 404 not_found), or
    /// nothing at all (nil: any other answer).
    static func observedValue(_ answer: HTTPAnswer) -> String?? {
        if answer.status == 200, let value = answer.body?["value"] as? String { return .some(value) }
        if answer.status == 404, errorCode(answer) == "not_found" { return .some(nil) }
        return nil
    }

    static func errorCode(_ answer: HTTPAnswer) -> String? {
        (answer.body?["error"] as? [String: Any])?["code"] as? String
    }

    /// 200: applied. A JSON 4xx or 503 from raftgate, or HAProxy's 503 (no server to send it
    /// to): certainly not applied. Anything else — 504, HAProxy's 502/504, no answer — unknown.
    static func writeOutcome(_ answer: HTTPAnswer) -> HistoryOperation.Outcome {
        switch answer.status {
        case 200: return .ok
        case 400..<500 where answer.fromNode: return .failed
        case 503: return .failed
        default: return .unknown
        }
    }

    func record(
        _ key: String, _ kind: HistoryOperation.Kind, _ outcome: HistoryOperation.Outcome, _ invoked: UInt64,
        _ completed: UInt64
    ) async {
        await recorder.record(
            HistoryOperation(
                client: id, key: key, kind: kind, outcome: outcome, invokedAt: invoked, completedAt: completed))
    }
}
