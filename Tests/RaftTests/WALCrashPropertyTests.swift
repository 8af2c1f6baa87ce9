import RaftSimulation
import Testing

@testable import Raft

/// Seeded runs of the write-ahead log on a simulated file system that loses and tears whatever
/// was not fsync'ed: random appends (some overwriting a suffix in a newer term), hard states,
/// snapshot markers, installed snapshots, syncs, segment releases and failed fsyncs, with power
/// failing at random points — between calls and inside them, recovery included.
@Suite("Write-ahead log: crashes at any point on a simulated file system")
struct WALCrashPropertyTests {
    /// The log as recovery reports it, and how each record changes it.
    struct View: Equatable, CustomStringConvertible {
        var hardState = HardState()
        var snapshotIndex: UInt64 = 0
        var snapshotTerm: UInt64 = 0
        var entries: [LogEntry] = []

        init() {}

        init(_ recovery: WALRecovery) {
            hardState = recovery.hardState
            snapshotIndex = recovery.snapshotIndex
            snapshotTerm = recovery.snapshotTerm
            entries = recovery.entries
        }

        var lastIndex: UInt64 { entries.last?.index ?? snapshotIndex }

        mutating func write(_ entry: LogEntry) {
            entries.removeAll { $0.index >= entry.index }
            entries.append(entry)
        }

        mutating func compact(to index: UInt64, term: UInt64) {
            guard index >= snapshotIndex else { return }
            (snapshotIndex, snapshotTerm) = (index, term)
            entries.removeAll { $0.index <= index }
        }

        mutating func install(_ index: UInt64, term: UInt64) {
            (snapshotIndex, snapshotTerm) = (index, term)
            entries = []
        }

        var description: String {
            let terms = entries.map { "\($0.index)@\($0.term)" }.joined(separator: " ")
            return "snapshot \(snapshotIndex)@\(snapshotTerm) [\(terms)] \(hardState)"
        }
    }

    struct Run {
        let seed: UInt64
        var random: SeededRandom
        let fileSystem: SimulatedFileSystem
        var options = WriteAheadLog.Options()
        var log: WriteAheadLog?
        /// The view after each record written since the log was last opened; `states[0]` is
        /// what that open recovered. A reopen may find any of them from `synced` on.
        var states: [View] = [View()]
        var synced = 0
        var term: UInt64 = 1
        var crashes = 0
        var failedSyncs = 0
        /// Why recovery cut a tail off, and how often.
        var tornTails: [String: Int] = [:]
        var problems: [String] = []

        init(seed: UInt64) {
            self.seed = seed
            random = SeededRandom(seed: seed)
            fileSystem = SimulatedFileSystem(seed: seed &* 7919)
            options.segmentBytes = 1024 + random.next(below: 2048)
        }

        var view: View { states.last! }
        let directory = "/node/wal"

        mutating func problem(_ text: String, step: Int) {
            problems.append("seed \(seed), step \(step): \(text)")
        }

        /// Opens the log after a crash (power may fail during the open too, then it is retried)
        /// and checks what came back.
        mutating func reopen(step: Int) {
            log = nil
            while log == nil {
                fileSystem.restart()
                if random.chance(0.3) { fileSystem.scheduleCrash(afterOperations: random.next(below: 6)) }
                do {
                    let (opened, recovery) = try WriteAheadLog.open(
                        directory: directory, options: options, fileSystem: fileSystem)
                    let recovered = View(recovery)
                    if !states[synced...].contains(recovered) {
                        problem(
                            "recovered \(recovered), expected one of \(states[synced...].map(\.description))",
                            step: step)
                    }
                    if let tail = recovery.truncatedTail { tornTails[tail.reason, default: 0] += 1 }
                    log = opened
                    states = [recovered]
                    synced = 0
                    term = max(term, recovered.entries.last?.term ?? 0) + 1
                } catch WALError.corrupt(let file, let offset, let reason) {
                    problem("a crash left what recovery calls corruption: \(file) at \(offset): \(reason)", step: step)
                    return
                } catch {
                    // Power failed during the open: try again.
                    guard fileSystem.isDown else {
                        problem("the open failed without a fault: \(error)", step: step)
                        return
                    }
                    crashes += 1
                }
            }
        }

        /// A log call threw: power failed (the host restarts) or an fsync failed (the host stops,
        /// and the log must refuse every later write).
        mutating func failed(_ error: any Error, step: Int) {
            if !fileSystem.isDown {
                guard case WALError.io(operation: "fsync", _, _) = error else {
                    problem("a log call failed without a fault: \(error)", step: step)
                    return
                }
                failedSyncs += 1
                log!.append(entries: [], hardState: HardState(term: term, votedFor: nil, commit: 0))
                if (try? log!.sync()) != nil { problem("the log wrote again after a failed fsync", step: step) }
                fileSystem.crash()
            }
            crashes += 1
            reopen(step: step)
        }

        func bytes(_ count: Int) -> [UInt8] {
            var generator = SeededRandom(seed: UInt64(count) &* seed)
            return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        }

        mutating func appendEntries() {
            var next = view
            var start = next.lastIndex + 1
            if next.lastIndex > next.snapshotIndex, random.chance(0.25) {
                // A new leader's entries replace a suffix that never committed.
                start = next.snapshotIndex + 1 + UInt64(random.next(below: Int(next.lastIndex - next.snapshotIndex)))
                term += 1
            }
            let written = (0..<1 + random.next(below: 4)).map { offset in
                LogEntry(
                    index: start + UInt64(offset), term: term, kind: .command, data: bytes(random.next(below: 400)))
            }
            let hardState = random.chance(0.5) ? randomHardState() : nil
            log!.append(entries: written, hardState: hardState)
            for entry in written {
                next.write(entry)
                states.append(next)
            }
            if let hardState {
                next.hardState = hardState
                states.append(next)
            }
        }

        mutating func randomHardState() -> HardState {
            let vote = random.next(below: 4)
            return HardState(
                term: term, votedFor: vote == 0 ? nil : UInt64(vote),
                commit: UInt64(random.next(below: Int(view.lastIndex) + 1)))
        }

        mutating func step(_ step: Int) {
            let roll = random.next(below: 100)
            if roll < 15 { fileSystem.scheduleCrash(afterOperations: random.next(below: 8)) }
            do {
                switch random.next(below: 100) {
                case 0..<35:
                    appendEntries()
                case 35..<42:
                    let hardState = randomHardState()
                    log!.append(entries: [], hardState: hardState)
                    var next = view
                    next.hardState = hardState
                    states.append(next)
                case 42..<50:
                    // A snapshot taken locally up to an index of the log.
                    let index =
                        view.snapshotIndex + UInt64(random.next(below: Int(view.lastIndex - view.snapshotIndex) + 1))
                    let markerTerm = view.entries.first { $0.index == index }?.term ?? view.snapshotTerm
                    log!.appendSnapshotMarker(index: index, term: markerTerm)
                    var next = view
                    next.compact(to: index, term: markerTerm)
                    states.append(next)
                case 50..<54:
                    // A snapshot installed from the leader replaces the whole log.
                    let index =
                        view.snapshotIndex + UInt64(random.next(below: Int(view.lastIndex - view.snapshotIndex) + 5))
                    term += 1
                    let metadata = SnapshotMetadata(
                        index: index, term: term, configuration: ClusterConfiguration(voters: [1]))
                    log!.append(entries: [], snapshot: metadata)
                    var next = view
                    next.install(index, term: term)
                    states.append(next)
                case 54..<82:
                    try log!.sync()
                    synced = states.count - 1
                case 82..<90:
                    try log!.sync()
                    synced = states.count - 1
                    try log!.releaseSegments(coveredBy: view.snapshotIndex)
                case 90..<94:
                    fileSystem.failNextSyncs()
                    try log!.sync()
                    try log!.releaseSegments(coveredBy: view.snapshotIndex)
                    problem("a failed fsync did not surface", step: step)
                default:
                    fileSystem.crash()
                    crashes += 1
                    reopen(step: step)
                }
            } catch {
                failed(error, step: step)
            }
        }
    }

    @Test func everySyncedEntrySurvivesAndRecoveryFindsAPrefixOfWhatWasWritten() {
        var totals = (crashes: 0, failedSyncs: 0)
        var tornTails: [String: Int] = [:]
        for seed in UInt64(1)...250 {
            var run = Run(seed: seed)
            run.reopen(step: 0)
            for step in 1...150 where run.problems.isEmpty && run.log != nil { run.step(step) }
            if run.problems.isEmpty && run.log != nil {
                run.fileSystem.crash()
                run.reopen(step: 151)
            }
            for problem in run.problems { Issue.record("\(problem)") }
            guard run.problems.isEmpty else { return }
            totals.crashes += run.crashes
            totals.failedSyncs += run.failedSyncs
            tornTails.merge(run.tornTails, uniquingKeysWith: +)
        }
        // The runs really exercise what they claim to.
        #expect(totals.crashes > 1000, "\(totals)")
        #expect(totals.failedSyncs > 100, "\(totals)")
        for kind in [
            "record cut short", "zero-filled tail", "checksum mismatch over sectors zeroed to the end of the file",
        ] {
            #expect(tornTails[kind, default: 0] > 10, "\(tornTails)")
        }
    }
}
