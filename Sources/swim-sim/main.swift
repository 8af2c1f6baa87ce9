import Foundation
import Membership
import MembershipSimulation

// `swim-sim --seeds N --members M --ticks T [--loss L] [...]` runs many seeds and prints one summary
// line; `swim-sim --seed S --members M --ticks T [...] [--verbose]` replays one run exactly.

func usage() -> Never {
    FileHandle.standardError.write(
        Data(
            """
            usage: swim-sim --seeds N [--first-seed S] [--workers W] [options]
                   swim-sim --seed S [options] [--verbose]
            options: --members M (3…100, default 20) --ticks T (default 6000) --loss L (0…1, default 0.1)
                     --kills K (default 1) --pauses P (default 3) --pause-ticks X --partitions Q (default 0)
                     --max-delay D (default 1)

            """.utf8))
    exit(2)
}

var values: [String: String] = [:]
var verbose = false
var arguments = CommandLine.arguments.dropFirst()
let valued: Set<String> = [
    "--seeds", "--first-seed", "--workers", "--seed", "--members", "--ticks", "--loss", "--kills", "--pauses",
    "--pause-ticks", "--partitions", "--max-delay",
]
while let argument = arguments.popFirst() {
    if argument == "--verbose" {
        verbose = true
    } else if valued.contains(argument), let value = arguments.popFirst() {
        values[argument] = value
    } else {
        usage()
    }
}
@MainActor func number(_ name: String, default fallback: Int) -> Int {
    guard let text = values[name] else { return fallback }
    guard let value = Int(text), value >= 0 else { usage() }
    return value
}

let members = number("--members", default: 20)
guard (3...100).contains(members) else { usage() }
var template = SWIMSimulationOptions(seed: 1, members: members, ticks: number("--ticks", default: 6000))
if let text = values["--loss"] {
    guard let loss = Double(text), (0...1).contains(loss) else { usage() }
    template.loss = loss
} else {
    template.loss = 0.1
}
template.kills = number("--kills", default: 1)
template.pauses = number("--pauses", default: 3)
template.pauseTicks = number("--pause-ticks", default: template.pauseTicks)
template.partitions = number("--partitions", default: 0)
template.maxDelay = max(1, number("--max-delay", default: 1))
guard template.ticks > template.warmup + template.quiet else {
    FileHandle.standardError.write(Data("--ticks must exceed \(template.warmup + template.quiet)\n".utf8))
    exit(2)
}

func describe(_ stats: SWIMSimulationStats) -> String {
    "\(stats.falsePositives) false positives, \(stats.detections) crash detections (slowest \(stats.slowestDetection) ticks, bound ≤ \(stats.largestDetectionBound)), \(stats.suspicionsRaised) suspicions raised, \(stats.refutations) refutations, \(stats.partitionDeaths) deaths across partitions, \(stats.kills) crashes, \(stats.pauses) pauses, \(stats.partitions) partitions, \(stats.datagramsSent) datagrams (\(stats.datagramsLost) lost, largest \(stats.largestDatagram) bytes), \(stats.pushPulls) push-pulls, LHM up to \(stats.largestLocalHealthMultiplier)"
}

if values["--seed"] != nil {
    var options = template
    options.seed = UInt64(number("--seed", default: 1))
    options.verbose = verbose
    let report = SWIMSimulation(options: options).run()
    for line in report.trace { print(line) }
    print("seed \(options.seed): \(report.stats.ticks) ticks, \(members) members: \(describe(report.stats))")
    for violation in report.violations { print("violation: \(violation)") }
    exit(report.passed ? 0 : 1)
}

let seeds = number("--seeds", default: 100)
let firstSeed = UInt64(number("--first-seed", default: 1))
let workers = number("--workers", default: ProcessInfo.processInfo.activeProcessorCount)
let started = Date()
let summary = await SWIMSimulationRunner.run(template: template, firstSeed: firstSeed, count: seeds, workers: workers)
let elapsed = Date().timeIntervalSince(started)
for failure in summary.failures {
    print("FAILED seed \(failure.options.seed): \(failure.violations.first ?? "")")
    print("  replay: \(failure.options.replayCommand)")
}
print(
    "swim-sim: \(summary.seeds) seeds × \(template.ticks) ticks, \(members) members, loss \(template.loss): \(summary.failures.count) failing seeds; \(describe(summary.stats)) (\(String(format: "%.1f", elapsed)) s)"
)
exit(summary.failures.isEmpty ? 0 : 1)
