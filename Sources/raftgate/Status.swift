import ArgumentParser
import Foundation
import Gateway

/// `raftgate status`: one row per node, like `etcdctl endpoint status --cluster -w table`.
/// Every node is asked for its `/cluster`; the leader's answer supplies each member's match index
/// and lag, which only a leader knows.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the cluster table from the nodes' GET /cluster.",
        discussion: "Exits 1 when no node answers, 2 when nodes answer but none leads.")

    @Option(help: "HTTP addresses of the nodes, comma-separated (RAFTGATE_ENDPOINTS).")
    var endpoints: String?

    func run() async throws {
        let text =
            endpoints ?? ProcessInfo.processInfo.environment["RAFTGATE_ENDPOINTS"]
            ?? "127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083"
        var addresses: [Address] = []
        for item in text.split(separator: ",") {
            guard let address = Address(String(item.trimmingCharacters(in: .whitespaces))) else {
                throw ValidationError("endpoints must be host:port,…; got \(item)")
            }
            addresses.append(address)
        }
        let answers = addresses.map { address in (address, Result { try Self.fetchView(address) }) }
        print(Self.table(answers))
        if let redis = StatusRedis.line(addresses) { print(redis) }
        let views = answers.compactMap { try? $0.1.get() }
        // PostgreSQL under Patroni, when the gateways watch it: the leader's answer (it has the
        // live round), else any node's committed topology.
        let ordered = answers.sorted { (try? $0.1.get().role) == "leader" && (try? $1.1.get().role) != "leader" }
        for (address, answer) in ordered where (try? answer.get()) != nil {
            if let line = Self.postgresLine(address) { print(line) }
            break
        }
        if views.isEmpty { throw ExitCode(1) }
        if !views.contains(where: { $0.role == "leader" }) { throw ExitCode(2) }
    }

    static func fetchView(_ address: Address) throws -> ClusterView {
        let (status, body) = try PlainHTTPClient.get("/cluster", from: address)
        guard status == 200 else { throw PlainHTTPClient.Failure(description: "HTTP \(status)") }
        return try JSONDecoder().decode(ClusterView.self, from: Data(body))
    }

    /// One line on the PostgreSQL topology from `address`'s `GET /pg`; nil when the node does not
    /// watch Patroni (404) or does not answer.
    static func postgresLine(_ address: Address) -> String? {
        struct View: Decodable {
            var epoch: UInt64
            var primary: String?
            var timeline: Int?
            var replicas: [String]
            var writable: Bool
            var writableReason: String
        }
        guard let answer = try? PlainHTTPClient.get("/pg", from: address), answer.status == 200,
            let view = try? JSONDecoder().decode(View.self, from: Data(answer.body))
        else { return nil }
        let primary = view.primary.map { "\($0) (timeline \(view.timeline ?? 0))" } ?? "none"
        let replicas = view.replicas.isEmpty ? "none" : view.replicas.joined(separator: ",")
        return "POSTGRES primary \(primary)  replicas \(replicas)  epoch \(view.epoch)  "
            + (view.writable ? "writes routed" : "writes refused at \(address): \(view.writableReason)")
    }

    static func table(_ answers: [(Address, Result<ClusterView, any Error>)]) -> String {
        let leaderView = answers.compactMap { try? $0.1.get() }.filter { $0.role == "leader" }.max { $0.term < $1.term }
        let members = Dictionary(
            (leaderView?.raftMembers ?? []).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        // SWIM's view (the leader's, else any node's): alive, suspect, dead or left per member,
        // also for nodes that do not answer — found by the HTTP address in their metadata.
        let swimView = (leaderView ?? answers.compactMap { try? $0.1.get() }.first)?.swimMembers ?? []
        func swimStatus(node: UInt64?, address: Address) -> String {
            let member = swimView.first { $0.id == node } ?? swimView.first { $0.httpAddress == "\(address)" }
            return member.map(\.status) ?? "-"
        }
        var rows = [
            [
                "NODE", "ENDPOINT", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "MATCH", "LAG", "REPLICATION",
                "REVISION", "SWIM",
            ]
        ]
        for (address, answer) in answers {
            switch answer {
            case .success(let view):
                let member = members[view.node]
                rows.append([
                    "n\(view.node)", "\(address)", view.role, "\(view.term)", view.leader.map { "n\($0)" } ?? "-",
                    "\(view.commitIndex)", "\(view.appliedIndex)", member?.matchIndex.map(String.init) ?? "-",
                    member?.lag.map(String.init) ?? "-", member?.replication ?? "-",
                    view.appliedRevision.map(String.init) ?? "-", swimStatus(node: view.node, address: address),
                ])
            case .failure(let error):
                rows.append([
                    "?", "\(address)", "unreachable (\(error)); SWIM: \(swimStatus(node: nil, address: address))",
                ])
            }
        }
        let widths = (0..<rows[0].count).map { column in
            rows.filter { $0.count == rows[0].count }.map { $0[column].count }.max() ?? 0
        }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column] + 2, withPad: " ", startingAt: 0)
            }.joined()
        }.joined(separator: "\n")
    }
}
