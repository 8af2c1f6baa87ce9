import Node
@_spi(PlantedBugs) import Raft
import RaftSimulation

/// The simulator for the real host: the same seeded faults as `Simulation`, but each node is
/// `RaftNode`'s own `ReadyLoop` — its write-ahead log on a `SimulatedFileSystem`, its snapshot and
/// recovery code, the real store and the real peer-frame codec — and the links between nodes queue
/// like the real ones (`PeerQueueLimits`), so a paused node receives what was sent to it in one
/// burst when it resumes. The pure simulator proves the core; this one proves what runs it.
///
/// Faults: power losses (the file system keeps a seeded, possibly torn, prefix of what was not
/// fsync'ed), process kills (unsynced writes stay in the page cache), kills and power losses in the
/// middle of a log call, failed fsyncs (the node stops; its machine is power-cycled before it
/// restarts, since the kernel may have marked the failed pages clean), pauses, partitions, lossy
/// and slow links. Checks after every step: one leader per term, committed entries never change,
/// every node applies the same entries in the same order (State Machine Safety, by running hash),
/// recovery never fails after a crash; in calm windows a write commits and every node converges
/// to a store holding every acknowledged write.
public final class HostSimulation {
    let options: HostSimulationOptions
    var random: SeededRandom
    var links: SimulatedLinks
    var hosts: [SimulatedHost]
    var now = 0
    var report: HostSimulationReport
    let safety = SafetyRecord()
    var nextWrite: UInt64 = 1
    /// Every acknowledged write: key, value and index.
    var acknowledged: [(key: String, value: [UInt8], index: UInt64)] = []
    var calm = (active: false, startedAt: 0, satisfied: false)
    var delaySpread = 1
    var lossRate = 0.0

    public init(options: HostSimulationOptions) {
        self.options = options
        random = SeededRandom(seed: options.seed)
        links = SimulatedLinks(nodeCount: options.nodeCount)
        report = HostSimulationReport(options: options)
        hosts = (1...options.nodeCount).map { id in
            SimulatedHost(id: NodeID(id), fileSystem: SimulatedFileSystem(seed: options.seed &* 31 &+ UInt64(id)))
        }
        for index in hosts.indices { restart(index) }
    }

    public func run() -> HostSimulationReport {
        while now < options.steps && report.violations.isEmpty { step() }
        report.stats.steps = now
        report.stats.framesDropped = links.dropped
        return report
    }

    var voters: [NodeID] { (1...options.nodeCount).map { NodeID($0) } }

    func trace(_ line: @autoclosure () -> String) {
        if options.verbose { report.trace.append("t=\(now) \(line())") }
    }

    func violation(_ line: String) {
        report.violations.append("t=\(now): \(line)")
        trace("VIOLATION \(line)")
    }

    // MARK: The step

    func step() {
        now += 1
        updateCalmWindow()
        if !calm.active {
            injectFaults()
            driveClients()
        } else if now < calmEnd - 20 {
            driveClients()
        }
        for index in hosts.indices where hosts[index].isUp && hosts[index].pausedUntil <= now {
            resumeIfPaused(index)
            deliver(to: index)
        }
        for index in hosts.indices where hosts[index].isUp {
            if hosts[index].pausedUntil > now {
                hosts[index].missedTicks += 1
            } else {
                hosts[index].loop!.core.tick()
            }
        }
        for index in hosts.indices where hosts[index].isUp && hosts[index].pausedUntil <= now {
            drain(index)
            if !report.violations.isEmpty { return }
        }
        checkLiveness()
    }

    /// A paused process that runs again first catches up on the ticks its monotonic clock says it
    /// missed (as `RaftNode.catchUpTicks` does), then reads the burst that waited for it.
    private func resumeIfPaused(_ index: Int) {
        guard hosts[index].missedTicks > 0 else { return }
        while hosts[index].missedTicks > 0 {
            hosts[index].missedTicks -= 1
            hosts[index].loop!.core.tick()
        }
    }

    private func deliver(to index: Int) {
        let frames = links.receive(for: index + 1, at: now)
        if frames.count > report.stats.largestBurst { report.stats.largestBurst = frames.count }
        for frame in frames {
            let envelopes: [PeerEnvelope]
            do {
                envelopes = try hosts[index].decoder.feed(frame)
            } catch {
                violation("n\(index + 1) cannot decode a frame a peer encoded: \(error)")
                return
            }
            for case .raft(let message) in envelopes { hosts[index].loop!.core.step(message) }
        }
    }

    // MARK: Hosting

    /// `RaftNode.drain`, minus the actor: the loop persists, applies and advances; the host sends
    /// and answers.
    private func drain(_ index: Int) {
        while hosts[index].isUp, let step = hosts[index].loop!.next() {
            if let failure = step.failure {
                trace("n\(index + 1) stops: \(failure)")
                // Only an injected fault that really fired (power cut inside a log call, a failed
                // fsync) may stop a node; anything else — the core's own safety check, an entry or
                // snapshot that does not decode, a corrupt log — is a bug.
                let injected =
                    hosts[index].fileSystem.isDown || hosts[index].fileSystem.failedSyncs > hosts[index].failedSyncsSeen
                guard injected else {
                    violation("n\(index + 1) stopped on its own: \(failure)")
                    return
                }
                stop(index, failure: failure)
                return
            }
            for message in step.messages where !(lossRate > 0 && random.chance(lossRate)) {
                links.send(message, at: now, delay: 1 + random.next(below: delaySpread))
            }
            if let installed = step.installedSnapshot {
                report.stats.snapshotsInstalled += 1
                hosts[index].machine = safety.appliedHash(at: installed).map {
                    HashStateMachine(index: installed, hash: $0)
                }
            }
            for applied in step.applied { apply(applied, on: index) }
            if step.compactedTo != nil { report.stats.compactions += 1 }
            if let soft = step.softState, soft.role == .leader {
                if let problem = safety.recordLeader(hosts[index].id, term: soft.term) {
                    violation("Election Safety: \(problem)")
                }
            }
            checkCommitted(index)
            if !report.violations.isEmpty { return }
        }
    }

    private func apply(_ applied: AppliedEntry, on index: Int) {
        let entry = applied.entry
        if var machine = hosts[index].machine {
            guard entry.index == machine.index + 1 else {
                violation("n\(index + 1) applies \(entry.index) after \(machine.index)")
                return
            }
            machine.apply(entry)
            hosts[index].machine = machine
            if let problem = safety.recordApplied(entry, hash: machine.hash) {
                violation("State Machine Safety: n\(index + 1) \(problem)")
            }
        }
        guard let position = hosts[index].writes.firstIndex(where: { $0.index == entry.index }) else { return }
        let write = hosts[index].writes.remove(at: position)
        guard write.term == entry.term, case .applied = applied.result else { return }
        safety.acknowledge(index: entry.index, term: entry.term)
        acknowledged.append((write.key, write.value, entry.index))
        report.stats.acknowledgedWrites += 1
        if calm.active && write.proposedAt >= calm.startedAt { calm.satisfied = true }
    }

    private func checkCommitted(_ index: Int) {
        let core = hosts[index].loop!.core
        var position = max(hosts[index].checkedCommit + 1, core.snapshotIndex + 1)
        while position <= core.commitIndex {
            if let term = core.term(at: position), let problem = safety.recordCommitted(index: position, term: term) {
                violation("n\(index + 1): \(problem)")
                return
            }
            position += 1
        }
        hosts[index].checkedCommit = max(hosts[index].checkedCommit, core.commitIndex)
    }

    // MARK: Crashes and restarts

    /// The node's process is gone (it stopped itself, or was killed): its connections close.
    func stop(_ index: Int, failure: String? = nil) {
        guard hosts[index].isUp else { return }
        hosts[index].loop = nil
        hosts[index].writes = []
        hosts[index].pausedUntil = 0
        hosts[index].missedTicks = 0
        if failure != nil, hosts[index].fileSystem.failedSyncs > hosts[index].failedSyncsSeen {
            hosts[index].needsPowerCycle = true
        }
        links.reset(index + 1)
    }

    func powerLoss(_ index: Int) {
        trace("n\(index + 1) loses power")
        report.stats.powerLosses += 1
        stop(index)
        hosts[index].fileSystem.crash(.seededPrefix)
    }

    func killProcess(_ index: Int) {
        trace("n\(index + 1) is killed")
        report.stats.processKills += 1
        stop(index)
        hosts[index].fileSystem.killProcess()
    }

    func restart(_ index: Int) {
        guard !hosts[index].isUp else { return }
        let host = hosts[index]
        if host.needsPowerCycle {
            // After a failed fsync the page cache may hold pages the kernel marked clean without
            // writing them: only a reboot makes what reads see match the disk again.
            host.fileSystem.crash(.seededPrefix)
            hosts[index].needsPowerCycle = false
        }
        host.fileSystem.restart()
        host.failedSyncsSeen = host.fileSystem.failedSyncs
        host.boots += 1
        var raftOptions = RaftOptions(id: host.id)
        raftOptions.electionTimeout = options.electionTimeout
        raftOptions.randomSeed = options.seed &* 0x2545_F491_4F6C_DD1D ^ (host.id << 40) ^ UInt64(host.boots)
        raftOptions.plantedBugs = options.plantedBugs
        var walOptions = WriteAheadLog.Options()
        walOptions.segmentBytes = 4096
        do {
            let opened = try NodeStorage.open(
                walDirectory: "/raftgate/wal", walOptions: walOptions, fileSystem: host.fileSystem,
                snapshots: host.snapshots, initialVoters: voters)
            hosts[index].loop = try ReadyLoop(
                opened: opened, options: raftOptions, compactionThreshold: options.compactionThreshold,
                historyLimits: .init())
            let base = opened.restored.snapshot.metadata.index
            hosts[index].machine =
                base == 0
                ? HashStateMachine() : safety.appliedHash(at: base).map { HashStateMachine(index: base, hash: $0) }
            hosts[index].checkedCommit = base
            hosts[index].decoder = PeerFrameDecoder()
            report.stats.restarts += 1
            if host.boots > 1 { trace("n\(index + 1) restarts (boot \(host.boots))") }
        } catch WALError.io(let operation, let path, let code) {
            // An injected fault hit recovery itself (a failed fsync, a crash inside a call): the
            // node refuses to start, as it must. It stays down until the machine is power-cycled.
            trace("n\(index + 1) cannot start: \(operation) \(path) errno \(code)")
            hosts[index].needsPowerCycle = true
            report.stats.failedStarts += 1
        } catch {
            violation("n\(index + 1) cannot recover after a crash: \(error)")
        }
    }

    // MARK: Faults and clients

    func injectFaults() {
        guard random.chance(0.03) else { return }
        let n = options.nodeCount
        let victim = random.next(below: n)
        switch random.next(below: 11) {
        case 0: if hosts[victim].isUp { powerLoss(victim) }
        case 1: if hosts[victim].isUp { killProcess(victim) }
        case 2:
            // Inside a log call: between a write and its fsync, say.
            guard hosts[victim].isUp else { break }
            let operations = random.next(below: 4)
            if random.chance(0.5) {
                hosts[victim].fileSystem.scheduleCrash(afterOperations: operations)
                report.stats.crashesInsideLogCalls += 1
                trace("n\(victim + 1) will lose power inside a log call")
            } else {
                hosts[victim].fileSystem.scheduleProcessKill(afterOperations: operations)
                report.stats.crashesInsideLogCalls += 1
                trace("n\(victim + 1) will be killed inside a log call")
            }
        case 3:
            guard hosts[victim].isUp else { break }
            hosts[victim].fileSystem.failNextSyncs(1)
            report.stats.failedFsyncs += 1
            trace("n\(victim + 1)'s next fsync fails")
        case 4, 5:
            if let down = hosts.indices.filter({ !hosts[$0].isUp }).randomElement(using: &random) { restart(down) }
        case 6:
            let target = leaderIndex() ?? victim
            guard hosts[target].isUp else { break }
            hosts[target].pausedUntil = now + 1 + random.next(below: 3 * options.electionTimeout)
            report.stats.pauses += 1
            trace("pause n\(target + 1) until t=\(hosts[target].pausedUntil)")
        case 7:
            var side = Set<Int>()
            for id in 1...n where random.chance(0.5) { side.insert(id) }
            for from in 1...n {
                for to in 1...n where side.contains(from) != side.contains(to) { links.blocked[from][to] = true }
            }
            trace("partition \(side.sorted()) from the rest")
        case 8:
            lossRate = Double(random.next(below: 20)) / 100
            delaySpread = 1 + random.next(below: 4)
            trace("links: loss \(lossRate), delay ≤ \(delaySpread)")
        default:
            links.heal()
            lossRate = 0
            delaySpread = 1
            trace("heal")
        }
    }

    func leaderIndex() -> Int? {
        hosts.indices.filter { hosts[$0].isUp && hosts[$0].pausedUntil <= now && hosts[$0].loop!.core.role == .leader }
            .max { hosts[$0].loop!.core.term < hosts[$1].loop!.core.term }
    }

    func driveClients() {
        guard random.chance(0.3), let target = leaderIndex() else { return }
        let id = nextWrite
        nextWrite += 1
        let key = "k\(id)"
        let value = Array("v\(id)".utf8)
        let command = StoreCommand(operation: .put(key: key, value: value))
        report.stats.proposals += 1
        if case .accepted(let index, let term) = hosts[target].loop!.core.propose(command.encoded) {
            hosts[target].writes.append(
                PendingHostWrite(index: index, term: term, key: key, value: value, proposedAt: now))
        }
    }

    // MARK: Calm windows and liveness

    private func updateCalmWindow() {
        let inWindow =
            now % options.calmEvery >= options.calmEvery - options.calmLength
            || now > options.steps - options.calmLength
        if inWindow && !calm.active {
            calm = (true, now, false)
            links.heal()
            lossRate = 0
            delaySpread = 1
            for index in hosts.indices {
                hosts[index].fileSystem.disarm()
                restart(index)
                // A start refused by a fault armed before the calm: the power cycle it asked for
                // has cleared it.
                restart(index)
                if hosts[index].pausedUntil > now { hosts[index].pausedUntil = now }
            }
            trace("calm: healed, every node up")
        } else if !inWindow && calm.active {
            if !calm.satisfied {
                violation("liveness: no write committed in a calm window of \(now - calm.startedAt) steps")
            }
            checkConvergence()
            calm.active = false
        }
    }

    /// The last step of the current calm window.
    private var calmEnd: Int {
        if calm.startedAt > options.steps - options.calmLength { return options.steps }
        return min((calm.startedAt / options.calmEvery + 1) * options.calmEvery - 1, options.steps)
    }

    private func checkLiveness() {
        guard calm.active else { return }
        if now == calm.startedAt + options.livenessBound && !calm.satisfied {
            violation("liveness: no write committed within \(options.livenessBound) steps of healing")
        }
        if now == options.steps {
            if !calm.satisfied { violation("liveness: no write committed in the final calm window") }
            checkConvergence()
        }
    }

    /// Every node has applied every acknowledged write and its store holds each of them. Checked
    /// when a calm window ends (clients stopped writing 20 steps before, so every node had time).
    private func checkConvergence() {
        guard let last = acknowledged.last else { return }
        for index in hosts.indices {
            guard let loop = hosts[index].loop else { continue }
            guard loop.appliedIndex >= last.index else {
                violation("n\(index + 1) applied only \(loop.appliedIndex); write \(last.index) was acknowledged")
                return
            }
            for write in acknowledged where loop.store.get(write.key)?.value != write.value {
                violation("n\(index + 1)'s store lost \(write.key), acknowledged at \(write.index)")
                return
            }
        }
        // Stores at the same applied index are the same store, whatever path each took there
        // (applying, installing a snapshot, recovering one from disk): keys, values and revisions.
        var reference: (index: UInt64, node: Int, rows: [StoreRow])?
        for index in hosts.indices {
            guard let loop = hosts[index].loop else { continue }
            let rows = loop.store.range(prefix: "", includeReserved: true).map {
                StoreRow(key: $0.key, value: $0.record.value, modRevision: $0.record.modRevision)
            }
            guard let known = reference, known.index == loop.appliedIndex else {
                if reference == nil || loop.appliedIndex > reference!.index {
                    reference = (loop.appliedIndex, index, rows)
                }
                continue
            }
            if rows != known.rows {
                violation("n\(index + 1)'s store differs from n\(known.node + 1)'s at applied index \(known.index)")
                return
            }
        }
    }
}

/// One simulated machine: its file system survives the process; the loop is the process.
final class SimulatedHost {
    let id: NodeID
    let fileSystem: SimulatedFileSystem
    let snapshots = MemorySnapshotFiles()
    var loop: ReadyLoop?
    var decoder = PeerFrameDecoder()
    var pausedUntil = 0
    var missedTicks = 0
    var boots = 0
    var needsPowerCycle = false
    /// Failed fsyncs of this machine's file system before the current process started.
    var failedSyncsSeen = 0
    var writes: [PendingHostWrite] = []
    /// The running hash of what this node applied (nil: unknown since a snapshot nobody applied).
    var machine: HashStateMachine? = HashStateMachine()
    var checkedCommit: UInt64 = 0

    init(id: NodeID, fileSystem: SimulatedFileSystem) {
        self.id = id
        self.fileSystem = fileSystem
    }

    var isUp: Bool { loop != nil }
}

struct StoreRow: Equatable {
    var key: String
    var value: [UInt8]
    var modRevision: UInt64
}

struct PendingHostWrite {
    var index: UInt64
    var term: UInt64
    var key: String
    var value: [UInt8]
    var proposedAt: Int
}

public struct HostSimulationOptions: Sendable {
    public var seed: UInt64
    public var nodeCount: Int
    public var steps: Int
    public var verbose = false
    public var calmEvery = 400
    public var calmLength = 150
    public var livenessBound = 150
    public var electionTimeout = 10
    /// Small, so snapshots, compaction and released log segments happen in every run.
    public var compactionThreshold: UInt64
    /// Deliberate bugs in the core (mutation tests only).
    @_spi(PlantedBugs) public var plantedBugs: Set<PlantedBug> = []

    public init(seed: UInt64, nodeCount: Int, steps: Int) {
        self.seed = seed
        self.nodeCount = nodeCount
        self.steps = steps
        compactionThreshold = 20 + seed % 60
    }
}

public struct HostSimulationReport: Sendable {
    public var options: HostSimulationOptions
    public var violations: [String] = []
    public var trace: [String] = []
    public var stats = HostSimulationStats()
    public var passed: Bool { violations.isEmpty }
}

public struct HostSimulationStats: Sendable, Hashable {
    public init() {}
    public var steps = 0
    public var proposals = 0
    public var acknowledgedWrites = 0
    public var powerLosses = 0
    public var processKills = 0
    public var crashesInsideLogCalls = 0
    public var failedFsyncs = 0
    public var restarts = 0
    /// Starts refused because an injected fault hit recovery (the node stays down, as it must).
    public var failedStarts = 0
    public var pauses = 0
    /// The most frames a node read at once (a paused node's burst).
    public var largestBurst = 0
    public var snapshotsInstalled = 0
    public var compactions = 0
    public var framesDropped = 0
}
