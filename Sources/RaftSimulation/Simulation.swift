import Raft

/// One seeded run of a cluster of real `RaftCore`s over a simulated network and simulated
/// disks, with faults, clients and an operator, checking Raft's safety properties after every
/// step and liveness whenever the cluster is healed.
public final class Simulation {
    let options: SimulationOptions
    var random: SeededRandom
    var network: SimulatedNetwork
    var nodes: [SimulatedNode]
    var now = 0
    var report: SimulationReport
    let safety = SafetyRecord()
    /// Entries applied since the last snapshot before a node compacts (varies per run).
    let compactionThreshold: UInt64
    var nextWriteID: UInt64 = 1
    var nextReadID: UInt64 = 1
    var calm = CalmWindow()

    struct CalmWindow {
        var active = false
        var startedAt = 0
        var endsAt = 0
        var satisfied = false
        /// Clients stop writing this many ticks before the end, so convergence can be checked.
        static let quiet = 20
    }

    public init(options: SimulationOptions) {
        self.options = options
        random = SeededRandom(seed: options.seed)
        network = SimulatedNetwork(
            nodeCount: options.nodeCount, maxDelay: options.maxDelay, maxLongDelay: options.maxLongDelay)
        report = SimulationReport(options: options)
        let voters = (1...options.nodeCount).map { NodeID($0) }
        nodes = voters.map { SimulatedNode(id: $0, core: nil, disk: SimulatedDisk(voters: voters)) }
        compactionThreshold = UInt64(8 + random.next(below: 120))
        for index in nodes.indices { restart(index) }
    }

    /// Runs every step (stopping at the first violation) and returns the report.
    public func run() -> SimulationReport {
        while now < options.steps && report.violations.isEmpty {
            step()
        }
        report.stats.steps = now
        return report
    }

    func coreOptions(for id: NodeID, boot: Int) -> RaftOptions {
        var raftOptions = RaftOptions(id: id)
        raftOptions.electionTimeout = options.electionTimeout
        raftOptions.heartbeatInterval = 1
        raftOptions.preVote = options.preVote
        raftOptions.snapshotChunkBytes = 7
        raftOptions.maxMessageBytes = options.maxMessageBytes
        raftOptions.maxInflightMessages = 16
        raftOptions.randomSeed = options.seed &* 0x2545_F491_4F6C_DD1D ^ (id << 40) ^ UInt64(boot)
        return raftOptions
    }

    func trace(_ line: @autoclosure () -> String) {
        if options.verbose { report.trace.append("t=\(now) \(line())") }
    }

    func violation(_ line: String) {
        report.violations.append("t=\(now): \(line)")
        trace("VIOLATION \(line)")
        guard options.verbose else { return }
        for node in nodes {
            guard let status = node.core?.status else {
                trace("  n\(node.id): down")
                continue
            }
            trace(
                "  n\(node.id): \(status.role) term \(status.term) leader \(status.leader.map(String.init) ?? "-") commit \(status.commitIndex) applied \(status.appliedIndex) last \(status.lastIndex) snapshot \(status.snapshotIndex) voters \(status.configuration.voters) learners \(status.configuration.learners)"
            )
            for follower in status.followers {
                trace(
                    "    → n\(follower.id) \(follower.state) match \(follower.match) next \(follower.next) active \(follower.recentlyActive) learner \(follower.isLearner)"
                )
            }
        }
    }

    // MARK: The step

    func step() {
        now += 1
        updateCalmWindow()
        resumePausedNodes()
        for index in nodes.indices where !calm.active && nodes[index].crashAt.map({ $0 <= now }) ?? false {
            trace("n\(index + 1) crashes as scheduled")
            crash(index)
        }
        if !calm.active {
            injectFaults()
            operate()
        }
        driveClients()
        deliverMessages()
        tickNodes()
        for index in nodes.indices where nodes[index].isUp && nodes[index].pausedUntil <= now {
            processReady(index)
            if !report.violations.isEmpty { return }
        }
        checkLiveness()
    }

    private func deliverMessages() {
        for message in network.deliveries(at: now) {
            let index = Int(message.to) - 1
            guard nodes[index].isUp, nodes[index].pausedUntil <= now else { continue }
            nodes[index].core!.step(message)
            report.stats.messagesDelivered += 1
        }
    }

    /// A host that was paused first delivers the ticks it missed, as its monotonic clock says,
    /// before it handles anything else — otherwise a leader would judge its lease by a stale clock.
    private func resumePausedNodes() {
        for index in nodes.indices where nodes[index].isUp && nodes[index].pausedUntil <= now {
            while nodes[index].missedTicks > 0 {
                nodes[index].missedTicks -= 1
                nodes[index].core!.tick()
            }
        }
    }

    private func tickNodes() {
        for index in nodes.indices where nodes[index].isUp {
            if nodes[index].pausedUntil > now {
                nodes[index].missedTicks += 1
                continue
            }
            nodes[index].core!.tick()
        }
    }

    // MARK: Hosting a node

    /// Handles one `Ready` the way a host must: persist, send, apply, advance — with a rare crash
    /// injected before or after persisting.
    func processReady(_ index: Int) {
        guard nodes[index].core!.hasReady else { return }
        let ready = nodes[index].core!.ready()
        checkReady(ready, node: index)
        if !calm.active && random.chance(0.002) {
            let afterPersist = random.chance(0.5)
            if afterPersist { nodes[index].disk.persist(ready) }
            trace("n\(index + 1) crashes \(afterPersist ? "after" : "before") persisting a Ready")
            crash(index)
            return
        }
        nodes[index].disk.persist(ready)
        for message in ready.messages { network.send(message, now: now, random: &random) }
        if let snapshot = ready.snapshot { installSnapshot(snapshot, node: index) }
        for entry in ready.committedEntries { apply(entry, node: index) }
        for state in ready.readStates { confirmRead(state, node: index) }
        for requestID in ready.failedReads {
            nodes[index].reads.removeAll { $0.requestID == requestID }
            report.stats.readsFailed += 1
        }
        serveReads(node: index)
        nodes[index].core!.advance()
        if let reason = nodes[index].core!.safetyViolation { violation("n\(index + 1) reports: \(reason)") }
        maybeCompact(index)
    }

    private func installSnapshot(_ snapshot: Snapshot, node index: Int) {
        guard let machine = HashStateMachine(encoded: snapshot.data) else {
            violation("n\(index + 1) received an undecodable snapshot at \(snapshot.metadata.index)")
            return
        }
        if machine.index != snapshot.metadata.index {
            violation("snapshot metadata says \(snapshot.metadata.index) but holds state at \(machine.index)")
        }
        if machine.index < nodes[index].machine.index {
            violation(
                "n\(index + 1) installed a snapshot at \(machine.index) after applying \(nodes[index].machine.index)")
        }
        if let expected = safety.appliedHash(at: machine.index), expected != machine.hash {
            violation("snapshot at \(machine.index) holds a different history than the nodes that applied it")
        }
        nodes[index].machine = machine
        report.stats.snapshotsInstalled += 1
        trace("n\(index + 1) installs snapshot at \(machine.index)")
    }

    private func apply(_ entry: LogEntry, node index: Int) {
        let node = nodes[index]
        guard entry.index == node.machine.index + 1 else {
            violation("n\(index + 1) applies \(entry.index) after \(node.machine.index)")
            return
        }
        guard entry.index <= node.core!.commitIndex else {
            violation("n\(index + 1) applies uncommitted entry \(entry.index)")
            return
        }
        nodes[index].machine.apply(entry)
        let hash = nodes[index].machine.hash
        if let problem = safety.recordApplied(entry, hash: hash) {
            violation("State Machine Safety: n\(index + 1) \(problem)")
        }
        // A client write is acknowledged when its own node applies it.
        if let position = nodes[index].writes.firstIndex(where: { $0.index == entry.index }) {
            let write = nodes[index].writes.remove(at: position)
            if write.term == entry.term {
                safety.acknowledge(index: entry.index, term: entry.term)
                report.stats.acknowledgedWrites += 1
                if calm.active && write.proposedAt >= calm.startedAt { calm.satisfied = true }
            }
        }
    }

    private func confirmRead(_ state: ReadState, node index: Int) {
        guard let position = nodes[index].reads.firstIndex(where: { $0.requestID == state.requestID }) else { return }
        let read = nodes[index].reads[position]
        if state.index < read.acknowledgedFloor {
            violation(
                "stale read on n\(index + 1): read index \(state.index) misses write \(read.acknowledgedFloor) acknowledged before the read began"
            )
        }
        nodes[index].reads[position].readIndex = state.index
    }

    private func serveReads(node index: Int) {
        let applied = nodes[index].machine.index
        let before = nodes[index].reads.count
        nodes[index].reads.removeAll { read in read.readIndex.map { $0 <= applied } ?? false }
        report.stats.readsServed += before - nodes[index].reads.count
    }

    private func maybeCompact(_ index: Int) {
        let core = nodes[index].core!
        let applied = core.appliedIndex
        guard applied == nodes[index].machine.index, applied >= core.snapshotIndex + compactionThreshold else { return }
        do {
            try nodes[index].core!.compact(upTo: applied, snapshotData: nodes[index].machine.encoded)
            nodes[index].disk.saveSnapshot(nodes[index].core!.snapshot)
        } catch {
            violation("n\(index + 1) could not compact at \(applied): \(error)")
        }
    }

    // MARK: Crashes and restarts

    func crash(_ index: Int) {
        nodes[index].crashAt = nil
        guard nodes[index].isUp else { return }
        nodes[index].core = nil
        nodes[index].writes = []
        nodes[index].reads = []
        nodes[index].pausedUntil = 0
        nodes[index].missedTicks = 0
        report.stats.crashes += 1
    }

    func restart(_ index: Int) {
        guard !nodes[index].isUp else { return }
        nodes[index].boots += 1
        let disk = nodes[index].disk
        do {
            nodes[index].core = try RaftCore(
                options: coreOptions(for: nodes[index].id, boot: nodes[index].boots), restoring: disk.restoredState)
        } catch {
            violation("n\(index + 1) cannot restart from its disk: \(error)")
            return
        }
        guard let machine = HashStateMachine(encoded: disk.snapshot.data) else {
            violation("n\(index + 1) has an undecodable snapshot on disk")
            return
        }
        nodes[index].machine = machine
        nodes[index].checkedCommit = disk.snapshot.metadata.index
        if nodes[index].boots > 1 { trace("n\(index + 1) restarts (boot \(nodes[index].boots))") }
    }
}
