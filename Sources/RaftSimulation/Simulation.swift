@_spi(PlantedBugs) import Raft

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
    /// Clients write nothing until this step: an idle spell, in which logs stop moving, so a
    /// follower cut off from the leader is as up to date as anyone — exactly when nothing but the
    /// lease promise keeps the others from electing it.
    var clientsQuietUntil = 0

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
        let baseRate = 1000 / options.stepsPerTick
        for index in nodes.indices {
            let halfLength = options.mixedTickLengths && random.chance(0.5)
            nodes[index].nominalRate = halfLength ? 2 * baseRate : baseRate
        }
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
        let index = Int(id) - 1
        raftOptions.electionTimeout = electionTimeout(of: index)
        raftOptions.maxClockDrift = options.understatesDrift ? 0 : declaredDrift(of: index)
        raftOptions.leaseSafetyMargin = RaftOptions.minimumLeaseSafetyMargin(
            electionTimeout: raftOptions.electionTimeout, maxClockDrift: raftOptions.maxClockDrift)
        raftOptions.plantedBugs = options.plantedBugs
        raftOptions.heartbeatInterval = 1
        raftOptions.preVote = options.preVote
        raftOptions.snapshotChunkBytes = 7
        raftOptions.maxMessageBytes = options.maxMessageBytes
        raftOptions.maxInflightMessages = 16
        raftOptions.randomSeed = options.seed &* 0x2545_F491_4F6C_DD1D ^ (id << 40) ^ UInt64(boot)
        return raftOptions
    }

    /// A node with half-length ticks waits twice as many of them.
    func electionTimeout(of index: Int) -> Int {
        options.electionTimeout * nodes[index].nominalRate * options.stepsPerTick / 1000
    }

    /// The drift bound this cluster really has, as `RaftOptions.maxClockDrift` defines it, for the
    /// node at `index` as a leader. In steps (real time; the simulated network delivers nothing in
    /// less than one, an assumption of this bound that the core's formula does not make): its
    /// lease of D ticks, sent at a step s, can be used up to about step s + D × 1000 / (its
    /// slowest rate); a follower F that got
    /// the heartbeat at s + 1 or later grants a vote only after more than
    /// (E_F − 1) × 1000 / (F's fastest rate) further steps (ticks come in whole steps, so up to
    /// one tick of a step may count at once). The lease is safe while D ≤ B, B the smaller
    /// side in the leader's ticks; the drift that makes `minimumLeaseSafetyMargin` give exactly
    /// that is 1 − B / (E_L − 1).
    func declaredDrift(of index: Int) -> Double {
        // From the same integer rates `drawRate` can produce (it rounds down), so the bound is
        // the one this cluster really has.
        let slowest = Double(rateBounds(of: index).slowest) / 1000
        var shortestPromise = Double.infinity
        for other in nodes.indices where other != index {
            let fastest = Double(rateBounds(of: other).fastest) / 1000
            shortestPromise = min(shortestPromise, Double(electionTimeout(of: other) - 1) / fastest)
        }
        let bound = slowest * (1 + shortestPromise)
        let own = Double(electionTimeout(of: index) - 1)
        // A hair of extra drift so rounding can never turn the bound into one tick more.
        return min(0.9, max(0, 1 - bound / own + 1e-9))
    }

    /// A clock rate within the drift bound around the node's nominal rate.
    func drawRate(for index: Int) -> Int {
        let drift = options.clockDriftPerMille
        let offset = drift == 0 ? 0 : random.next(below: 2 * drift + 1) - drift
        return rate(of: index, offsetPerMille: offset)
    }

    func rate(of index: Int, offsetPerMille offset: Int) -> Int {
        nodes[index].nominalRate * (1000 + offset) / 1000
    }

    /// The slowest and fastest rates `drawRate` can give the node.
    func rateBounds(of index: Int) -> (slowest: Int, fastest: Int) {
        let drift = options.clockDriftPerMille
        return (rate(of: index, offsetPerMille: -drift), rate(of: index, offsetPerMille: drift))
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
        checkLeases()
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

    /// Each node ticks at its own rate: a thousandth of a tick per unit of rate each step.
    private func tickNodes() {
        for index in nodes.indices where nodes[index].isUp {
            nodes[index].phase += nodes[index].rate
            while nodes[index].phase >= 1000 {
                nodes[index].phase -= 1000
                if nodes[index].pausedUntil > now {
                    nodes[index].missedTicks += 1
                } else {
                    nodes[index].core!.tick()
                }
            }
        }
    }

    // MARK: Hosting a node

    /// Handles one `Ready` the way a host must: write, fsync when `mustSync` says so, send, apply,
    /// advance — with rare crashes before writing, in the middle of writing (a torn Ready), and
    /// failed fsyncs (the host stops; what the failed fsync did not write is lost).
    func processReady(_ index: Int) {
        guard nodes[index].core!.hasReady else { return }
        let ready = nodes[index].core!.ready()
        checkReady(ready, node: index)
        let faults = !calm.active && options.diskFaults
        if faults && random.chance(0.002) {
            trace("n\(index + 1) crashes before persisting a Ready")
            crash(index)
            return
        }
        nodes[index].disk.write(ready)
        if faults && random.chance(0.002) {
            trace("n\(index + 1) crashes in the middle of persisting a Ready")
            report.stats.tornReadys += 1
            crash(index)
            return
        }
        if ready.mustSync {
            if faults && random.chance(0.002) {
                // SIGKILL while blocked in fsync: the writes are in the page cache, readable by
                // the next process, not yet on disk.
                trace("n\(index + 1) is killed while its fsync is under way")
                report.stats.killedInFsync += 1
                crash(index, powerLoss: false)
                return
            }
            if faults && random.chance(0.001) {
                trace("n\(index + 1): fsync fails, the host stops")
                report.stats.failedFsyncs += 1
                crash(index, powerLoss: true)
                return
            }
            nodes[index].disk.sync()
        }
        checkDurableBeforeSend(ready, node: index)
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
        } else if state.index < read.observedFloor {
            violation(
                "stale read on n\(index + 1): read index \(state.index) misses entry \(read.observedFloor), which a read served before this one began had seen"
            )
        }
        nodes[index].reads[position].readIndex = state.index
    }

    private func serveReads(node index: Int) {
        let applied = nodes[index].machine.index
        let before = nodes[index].reads.count
        nodes[index].reads.removeAll { read in read.readIndex.map { $0 <= applied } ?? false }
        let served = before - nodes[index].reads.count
        report.stats.readsServed += served
        if served > 0 { safety.observe(index: applied) }
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

    /// `powerLoss` nil: the nemesis picks a power loss or a process kill. A failed fsync is always
    /// treated as a power loss: on Linux the failed pages are marked clean, so what the cache still
    /// shows may never reach the disk, and no later fsync can be trusted to write it.
    func crash(_ index: Int, powerLoss: Bool? = nil) {
        nodes[index].crashAt = nil
        guard nodes[index].isUp else { return }
        if options.diskFaults && !(powerLoss ?? random.chance(0.5)) {
            // Only the process dies (SIGKILL, OOM): its unsynced writes stay in the page cache.
            nodes[index].disk.killProcess()
            report.stats.processKills += 1
        } else {
            // Power loss: any prefix of the unsynced writes may have reached the disk, none of the rest.
            let unsynced = nodes[index].disk.unsynced.count
            let kept = options.diskFaults ? random.next(below: unsynced + 1) : unsynced
            report.stats.unsyncedWritesLost += nodes[index].disk.crash(keeping: kept)
        }
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
        nodes[index].rate = drawRate(for: index)
        nodes[index].phase = random.next(below: 1000)
        let restored = nodes[index].disk.restoredState
        do {
            nodes[index].core = try RaftCore(
                options: coreOptions(for: nodes[index].id, boot: nodes[index].boots), restoring: restored)
        } catch {
            violation("n\(index + 1) cannot restart from its disk: \(error)")
            return
        }
        // Recovery fsyncs what it read (the WAL does): the core now treats it as stable and will
        // acknowledge it without writing it again, while a process kill may have left it in the
        // page cache only.
        if !options.hostSkipsRecoverySync { nodes[index].disk.sync() }
        guard let machine = HashStateMachine(encoded: restored.snapshot.data) else {
            violation("n\(index + 1) has an undecodable snapshot on disk")
            return
        }
        nodes[index].machine = machine
        nodes[index].checkedCommit = restored.snapshot.metadata.index
        if nodes[index].boots > 1 { trace("n\(index + 1) restarts (boot \(nodes[index].boots))") }
    }
}
