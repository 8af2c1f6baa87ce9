import Foundation
@_spi(PlantedBugs) import Raft
@_spi(PlantedBugs) import RaftSimulation

// `raft-sim --seeds N --steps M [--first-seed S] [--workers W]` runs many seeds and prints one
// summary line; `raft-sim --seed S --nodes K --steps M [--verbose]` replays one run exactly.
// `--plant BUG` (repeatable) runs a core with a deliberate bug (see `PlantedBug`): the mutation
// check that the simulator's invariants catch it.

func usage() -> Never {
    FileHandle.standardError.write(
        Data(
            """
            usage: raft-sim --seeds N --steps M [--first-seed S] [--workers W] [--nodes K] [--plant BUG]
                   raft-sim --seed S --nodes K --steps M [--verbose] [--plant BUG]
            bugs: \(PlantedBug.allCases.map(\.rawValue).joined(separator: ", ")), understatedDrift, noRecoverySync

            """.utf8))
    exit(2)
}

var values: [String: String] = [:]
var verbose = false
var planted: Set<PlantedBug> = []
var understatesDrift = false
var skipsRecoverySync = false
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--verbose": verbose = true
    case "--plant":
        guard let name = arguments.popFirst() else { usage() }
        if name == "understatedDrift" {
            understatesDrift = true
        } else if name == "noRecoverySync" {
            skipsRecoverySync = true
        } else {
            guard let bug = PlantedBug(rawValue: name) else { usage() }
            planted.insert(bug)
        }
    case "--seeds", "--steps", "--first-seed", "--workers", "--seed", "--nodes":
        guard let value = arguments.popFirst() else { usage() }
        values[argument] = value
    default: usage()
    }
}
@MainActor func number(_ name: String, default fallback: Int) -> Int {
    guard let text = values[name] else { return fallback }
    guard let value = Int(text), value >= 0 else { usage() }
    return value
}

let steps = number("--steps", default: 2000)
let nodeOverride = values["--nodes"].map { _ in number("--nodes", default: 3) }
if let nodes = nodeOverride, !(1...9).contains(nodes) { usage() }

if values["--seed"] != nil {
    let seed = UInt64(number("--seed", default: 1))
    var options = SimulationOptions(seed: seed, nodeCount: nodeOverride ?? (seed % 2 == 0 ? 3 : 5), steps: steps)
    options.verbose = verbose
    options.plantedBugs = planted
    options.understatesDrift = understatesDrift
    options.hostSkipsRecoverySync = skipsRecoverySync
    let report = Simulation(options: options).run()
    for line in report.trace { print(line) }
    let stats = report.stats
    print(
        "seed \(seed): \(stats.steps) steps, \(stats.acknowledgedWrites) writes acknowledged, \(stats.readsServed) reads served, \(stats.elections) elections, \(stats.crashes) crashes, \(stats.snapshotsInstalled) snapshots installed, \(report.violations.count) violations"
    )
    for violation in report.violations { print("violation: \(violation)") }
    exit(report.passed ? 0 : 1)
}

let seeds = number("--seeds", default: 2000)
let firstSeed = UInt64(number("--first-seed", default: 1))
let workers = number("--workers", default: ProcessInfo.processInfo.activeProcessorCount)
let started = Date()
let summary = await SimulationRunner.run(
    firstSeed: firstSeed, count: seeds, steps: steps, nodeCount: nodeOverride, workers: workers,
    plantedBugs: planted, understatesDrift: understatesDrift, skipsRecoverySync: skipsRecoverySync)
let elapsed = Date().timeIntervalSince(started)
for failure in summary.failures {
    print("FAILED seed \(failure.options.seed) (\(failure.options.nodeCount) nodes): \(failure.violations.first ?? "")")
    print("  replay: \(failure.options.replayCommand)")
}
let stats = summary.stats
print(
    String(
        format:
            "sim: %d seeds, %d steps, %d violations (%.1fs; %d writes acknowledged, %d reads served, %d elections, %d crashes (%d of the process alone), %d torn Readys, %d killed in fsync, %d failed fsyncs, %d unsynced writes lost, %d clock-rate changes, %d snapshots installed, %d membership changes, %d transfers)",
        summary.seeds, stats.steps, summary.failures.count, elapsed, stats.acknowledgedWrites, stats.readsServed,
        stats.elections, stats.crashes, stats.processKills, stats.tornReadys, stats.killedInFsync, stats.failedFsyncs,
        stats.unsyncedWritesLost,
        stats.clockRateChanges, stats.snapshotsInstalled, stats.configurationChanges, stats.transfers))
exit(summary.failures.isEmpty ? 0 : 1)
