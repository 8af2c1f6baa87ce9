import Raft

/// A hand-driven cluster for focused tests: messages move only when the test says so, links can
/// be cut, and every Ready is handled the way a host must (persist, send, apply, advance).
struct TestCluster {
    var nodes: [RaftCore]
    /// Messages sent and not yet delivered.
    var network: [Message] = []
    /// Directed links that drop everything: `blocked.contains([from, to])`.
    var blocked: Set<[NodeID]> = []
    /// Entries applied per node (index = node id - 1).
    var applied: [[LogEntry]]
    var readStates: [[ReadState]]
    var failedReads: [[UInt64]]
    var persistedHardStates: [HardState]
    var persistedEntries: [[LogEntry]]
    var installedSnapshots: [[Snapshot]]

    init(voters: [NodeID], learners: [NodeID] = [], configure: (inout RaftOptions) -> Void = { _ in }) throws {
        let all = (voters + learners).sorted()
        nodes = try all.map { id in
            var options = RaftOptions(id: id)
            options.randomSeed = 7
            configure(&options)
            return try RaftCore(options: options, restoring: .bootstrap(voters: voters, learners: learners))
        }
        applied = Array(repeating: [], count: all.count)
        readStates = Array(repeating: [], count: all.count)
        failedReads = Array(repeating: [], count: all.count)
        persistedHardStates = Array(repeating: HardState(), count: all.count)
        persistedEntries = Array(repeating: [], count: all.count)
        installedSnapshots = Array(repeating: [], count: all.count)
    }

    subscript(id: NodeID) -> RaftCore {
        get { nodes[Int(id) - 1] }
        set { nodes[Int(id) - 1] = newValue }
    }

    var leader: NodeID? { nodes.first { $0.role == .leader }?.id }

    /// Handles every pending Ready once.
    mutating func processReadies() {
        for index in nodes.indices where nodes[index].hasReady {
            let ready = nodes[index].ready()
            if let snapshot = ready.snapshot {
                installedSnapshots[index].append(snapshot)
                persistedEntries[index] = []
            }
            if let first = ready.entries.first {
                persistedEntries[index].removeAll { $0.index >= first.index }
                persistedEntries[index].append(contentsOf: ready.entries)
            }
            if let hardState = ready.hardState { persistedHardStates[index] = hardState }
            for message in ready.messages where !blocked.contains([message.from, message.to]) {
                network.append(message)
            }
            applied[index].append(contentsOf: ready.committedEntries)
            readStates[index].append(contentsOf: ready.readStates)
            failedReads[index].append(contentsOf: ready.failedReads)
            nodes[index].advance()
        }
    }

    /// Delivers every message in flight once (answers go to `network` for the next round).
    mutating func deliverOnce(where keep: (Message) -> Bool = { _ in true }) {
        let delivering = network
        network = []
        for message in delivering where keep(message) && !blocked.contains([message.from, message.to]) {
            self[message.to].step(message)
        }
    }

    /// Processes and delivers until nothing moves (or `rounds` rounds pass).
    mutating func settle(rounds: Int = 50) {
        for _ in 0..<rounds {
            processReadies()
            if network.isEmpty && !nodes.contains(where: \.hasReady) { return }
            deliverOnce()
        }
        processReadies()
    }

    /// Ticks every node (or those given) `count` times, settling after each tick.
    mutating func tick(_ count: Int = 1, only: [NodeID]? = nil) {
        for _ in 0..<count {
            for index in nodes.indices where only?.contains(nodes[index].id) ?? true { nodes[index].tick() }
            settle()
        }
    }

    /// Lets the boot lease pass, then has `id` campaign and win.
    mutating func elect(_ id: NodeID) {
        let timeout = self[id].options.electionTimeout
        for _ in 0..<timeout { for index in nodes.indices { nodes[index].tick() } }
        // Drop the heartbeats/elections those ticks may have started.
        settle()
        if self[id].role != .leader {
            self[id].campaign()
            settle()
        }
        // Someone else's randomized timeout fired first: hand leadership over.
        if let other = leader, other != id {
            self[other].transferLeadership(to: id)
            settle()
        }
    }

    mutating func isolate(_ id: NodeID) {
        for other in nodes.map(\.id) where other != id {
            blocked.insert([id, other])
            blocked.insert([other, id])
        }
    }

    mutating func heal() { blocked = [] }

    /// Proposes on `id` and settles; returns the index.
    @discardableResult
    mutating func propose(_ text: String, on id: NodeID) -> UInt64? {
        guard case .accepted(let index, _) = self[id].propose(Array(text.utf8)) else { return nil }
        settle()
        return index
    }

    func appliedCommands(_ id: NodeID) -> [String] {
        applied[Int(id) - 1].filter { $0.kind == .command }.map { String(decoding: $0.data, as: UTF8.self) }
    }
}

extension RaftCore {
    /// A node made leader by hand: it campaigns and one other voter grants its PreVote and its vote.
    static func handElected(_ id: NodeID = 1, restoring state: RestoredState) throws -> RaftCore {
        var node = try RaftCore(options: RaftOptions(id: id), restoring: state)
        // The boot lease: a node just started may not campaign by hand (it may have promised a
        // leader's lease before a restart). Its own ticks may start an election; that is fine.
        for _ in 0..<node.options.electionTimeout where node.role == .follower { node.tick() }
        if node.role == .follower { node.campaign() }
        let voter = state.snapshot.metadata.configuration.voters.first { $0 != id }!
        let preVote = VoteResponse(preVote: true, granted: true)
        node.step(Message(from: voter, to: id, term: node.term + 1, payload: .voteResponse(preVote)))
        let vote = VoteResponse(preVote: false, granted: true)
        node.step(Message(from: voter, to: id, term: node.term, payload: .voteResponse(vote)))
        return node
    }
}
