import ArgumentParser
import Foundation
import Gateway
import Hummingbird
import Node
import Raft

/// `raftgate` — a gateway node that carries its own coordination.
@main
struct RaftgateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raftgate",
        abstract: "A gateway node with embedded Raft.",
        subcommands: [Serve.self])
}

/// Reads an option from the environment (`RAFTGATE_<NAME>`) when no flag gave it.
func environment(_ name: String) -> String? {
    ProcessInfo.processInfo.environment["RAFTGATE_" + name]
}

struct Address {
    var host: String
    var port: Int

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        host = String(text[..<colon])
        self.port = port
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a node: the HTTP API, the health-only listener and the Raft peer port.",
        discussion: "Every option can also come from the environment as RAFTGATE_<OPTION> (for example RAFTGATE_ID).")

    @Option(help: "This node's id (RAFTGATE_ID).") var id: UInt64?
    @Option(help: "Data directory (RAFTGATE_DATA_DIR).") var dataDir: String?
    @Option(help: "HTTP API address, host:port (RAFTGATE_HTTP).") var http: String?
    @Option(help: "Health-only listener, host:port (RAFTGATE_HEALTH).") var health: String?
    @Option(help: "Raft peer address, host:port (RAFTGATE_RAFT).") var raft: String?
    @Option(help: "Peers as id=host:port,… including this node (RAFTGATE_PEERS).") var peers: String?
    @Option(help: "Milliseconds per Raft tick (RAFTGATE_TICK_MS); elections after 10–20 ticks.") var tickMs: Int?

    func run() async throws {
        guard let id = id ?? environment("ID").flatMap(UInt64.init), id > 0 else {
            throw ValidationError("--id (or RAFTGATE_ID) must be a positive integer")
        }
        let dataDirectory = dataDir ?? environment("DATA_DIR") ?? "./data/node-\(id)"
        func address(_ flag: String?, _ name: String, _ fallback: String) throws -> Address {
            let text = flag ?? environment(name) ?? fallback
            guard let parsed = Address(text) else {
                throw ValidationError("\(name.lowercased()) must be host:port, got \(text)")
            }
            return parsed
        }
        let httpAddress = try address(http, "HTTP", "127.0.0.1:808\(id)")
        let healthAddress = try address(health, "HEALTH", "127.0.0.1:1000\(id)")
        let raftAddress = try address(raft, "RAFT", "127.0.0.1:909\(id)")
        var peerAddresses: [NodeID: (host: String, port: Int)] = [:]
        for item in (peers ?? environment("PEERS") ?? "").split(separator: ",") where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let peer = UInt64(parts[0]), let peerAddress = Address(String(parts[1])) else {
                throw ValidationError("peers must look like 1=127.0.0.1:9091,2=127.0.0.1:9092; got \(item)")
            }
            peerAddresses[peer] = (peerAddress.host, peerAddress.port)
        }
        peerAddresses[id] = (raftAddress.host, raftAddress.port)
        var configuration = NodeConfiguration(
            id: id, dataDirectory: dataDirectory, raftHost: raftAddress.host, raftPort: raftAddress.port,
            initialVoters: peerAddresses.keys.sorted(), peers: peerAddresses)
        let tick = tickMs ?? environment("TICK_MS").flatMap(Int.init) ?? 50
        guard tick > 0 else { throw ValidationError("tick-ms must be positive") }
        configuration.tickInterval = .milliseconds(tick)

        let node = try await RaftNode.start(configuration)
        let healthApp = Application(
            router: makeHealthRouter(node: node),
            configuration: .init(
                address: .hostname(healthAddress.host, port: healthAddress.port), serverName: "raftgate-health"))
        let api = Application(
            router: makeGatewayRouter(node: node),
            configuration: .init(address: .hostname(httpAddress.host, port: httpAddress.port), serverName: "raftgate"),
            services: [healthApp])
        try await api.runService()
        await node.stop()
    }
}
