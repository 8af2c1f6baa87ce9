import Foundation
import TestSupport

/// Debian's etcd 3.4 (`/usr/bin/etcd`), one member on loopback ports of the caller's choosing, its
/// data under `root`, stopped by pid: the reference the etcd API's answers are compared with, and
/// the DCS Patroni is compared on.
final class EtcdReference {
    static let executable = "/usr/bin/etcd"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: executable) }

    let clientPort: Int
    let peerPort: Int
    let root: String
    let name: String
    private(set) var process: Process?

    var url: String { "http://127.0.0.1:\(clientPort)" }

    init(clientPort: Int, peerPort: Int, root: String, name: String = "reference") {
        self.clientPort = clientPort
        self.peerPort = peerPort
        self.root = root
        self.name = name
    }

    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        let peer = "http://127.0.0.1:\(peerPort)"
        process.arguments = [
            "--name", name, "--data-dir", root + "/etcd-\(name)", "--listen-client-urls", url,
            "--advertise-client-urls", url, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "\(name)=\(peer)", "--initial-cluster-state", "new",
        ]
        process.standardOutput = FileHandle.nullDevice
        let log = root + "/etcd-\(name).log"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        LeftoverProcesses.record(child: process.processIdentifier, in: root)
        self.process = process
    }

    /// Polls `/health` with the real curl until etcd says it is healthy. (Not URLSession: while
    /// etcd starts it may close a connection without an answer, which crashes FoundationNetworking's
    /// client.)
    func waitUntilHealthy(within seconds: Double = 30) async -> Bool {
        await eventually(within: seconds) {
            await Curl.run(["-m", "1", url + "/health"]).body.contains(#""health":"true""#)
        }
    }

    /// Turns on etcd's authentication with user `root` (role root) and `password`, through its
    /// JSON API, as `etcdctl user add root && etcdctl auth enable` would.
    func enableAuthentication(password: String) async -> Bool {
        let steps = [
            ("/v3/auth/role/add", #"{"name":"root"}"#),
            ("/v3/auth/user/add", #"{"name":"root","password":"\#(password)"}"#),
            ("/v3/auth/user/grant", #"{"user":"root","role":"root"}"#),
            ("/v3/auth/enable", "{}"),
        ]
        for (path, body) in steps where await Curl.run(["-X", "POST", url + path, "--data-binary", body]).status != 200
        {
            return false
        }
        return true
    }

    /// etcd's token for `name` and `password` from `/v3/auth/authenticate` at `url`.
    static func token(at url: String, name: String, password: String) async -> String? {
        let answer = await Curl.run([
            "-X", "POST", url + "/v3/auth/authenticate", "--data-binary",
            #"{"name":"\#(name)","password":"\#(password)"}"#,
        ])
        return (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])?["token"] as? String
    }

    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// etcd JSON made comparable across servers: each server's own ids, terms and lease ids blanked,
/// revisions made relative to the revision the comparison started at.
enum EtcdShape {
    static let revisionFields: Set<String> = ["revision", "create_revision", "mod_revision", "compact_revision"]
    static let blanked: Set<String> = [
        "cluster_id", "member_id", "raft_term", "ID", "lease", "peerURLs", "clientURLs", "name",
    ]

    static func normalize(_ text: String, baseline: Int64) -> String {
        var lines: [String] = []
        for line in text.split(whereSeparator: \.isNewline) where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
            else {
                lines.append("<not json: \(line)>")
                continue
            }
            let normalized = normalize(object, baseline: baseline)
            let data = (try? JSONSerialization.data(withJSONObject: normalized, options: [.sortedKeys])) ?? Data()
            lines.append(String(decoding: data, as: UTF8.self))
        }
        return lines.joined(separator: "\n")
    }

    private static func normalize(_ value: Any, baseline: Int64, field: String? = nil) -> Any {
        if let object = value as? [String: Any] {
            var result: [String: Any] = [:]
            for (name, inner) in object {
                if blanked.contains(name) {
                    result[name] = "*"
                } else if revisionFields.contains(name), let text = inner as? String, let number = Int64(text) {
                    result[name] = "\(number - baseline)"
                } else {
                    result[name] = normalize(inner, baseline: baseline, field: name)
                }
            }
            return result
        }
        if let array = value as? [Any] { return array.map { normalize($0, baseline: baseline, field: field) } }
        return value
    }

    /// A server's revision now, from a range's header.
    static func revision(of url: String, token: String? = nil) async -> Int64? {
        let auth = token.map { ["-H", "Authorization: \($0)"] } ?? []
        let answer = await Curl.run(auth + ["-X", "POST", url + "/v3/kv/range", "--data-binary", #"{"key":"AA=="}"#])
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
            let header = object["header"] as? [String: Any], let revision = header["revision"] as? String
        else { return nil }
        return Int64(revision)
    }
}
