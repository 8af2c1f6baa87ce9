import Membership
import MembershipSimulation

/// Shared helpers: instances that already know a group, and simulations past their warm-up.
enum Fixtures {
    static func address(_ node: UInt64) -> String { "node\(node):7070" }

    static func metadata(_ node: UInt64, tags: [String: String] = [:]) -> MemberMetadata {
        MemberMetadata(
            nodeID: node, role: .gateway, httpAddress: "node\(node):8080", raftAddress: "node\(node):9090",
            swimAddress: address(node), tags: tags)
    }

    static func alive(_ node: UInt64, incarnation: UInt64 = 0) -> Member {
        Member(
            id: MemberID(node), address: address(node), status: .alive(incarnation: incarnation),
            metadata: metadata(node), metadataVersion: 1)
    }

    /// Gossip that `node` is suspected at incarnation 0, confirmed by `suspector`.
    static func suspect(_ node: UInt64, by suspector: UInt64) -> Member {
        Member(
            id: MemberID(node), address: address(node),
            status: .suspect(incarnation: 0, confirmations: [MemberID(suspector)]))
    }

    /// Member `node` that knows members `1...members` as alive at incarnation 0.
    static func instance(
        _ node: UInt64, knowing members: Int, settings: SWIMSettings = SWIMSettings()
    ) throws -> SWIMInstance {
        var instance = try SWIMInstance(
            id: MemberID(node), address: address(node), metadata: metadata(node), settings: settings)
        _ = instance.mergePushPull((1...UInt64(members)).map { alive($0) })
        return instance
    }

    /// The datagrams in `directives`, with their destinations.
    static func sends(_ directives: [SWIMDirective]) -> [(message: SWIMMessage, to: String)] {
        directives.compactMap {
            if case .send(let message, let to) = $0 { return (message, to) }
            return nil
        }
    }

    /// Ticks `instance` until it sends a message matching `predicate` (at most `limit` ticks).
    static func tick(
        _ instance: inout SWIMInstance, limit: Int = 200, until predicate: (SWIMMessage) -> Bool
    ) -> (message: SWIMMessage, to: String)? {
        for _ in 0..<limit {
            if let found = sends(instance.tick()).first(where: { predicate($0.message) }) { return found }
        }
        return nil
    }

    /// A bootstrapped simulation in which every member knows every other.
    static func joinedSimulation(seed: UInt64, members: Int, loss: Double = 0) -> SWIMSimulation {
        var options = SWIMSimulationOptions(seed: seed, members: members, ticks: 100_000)
        options.loss = loss
        options.verbose = true
        let simulation = SWIMSimulation(options: options)
        simulation.bootstrap()
        _ = simulation.run(atMost: 1000) { $0.now > 25 && $0.convergenceProblems().isEmpty }
        return simulation
    }
}

extension SWIMMessage {
    var isPing: Bool {
        if case .ping = self { return true }
        return false
    }
    var isPingRequest: Bool {
        if case .pingRequest = self { return true }
        return false
    }
    var isNack: Bool {
        if case .nack = self { return true }
        return false
    }
}
