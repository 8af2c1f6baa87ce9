import Membership

/// The promises checked while a simulation runs.
extension SWIMSimulation {
    /// Classifies every membership change an observer reports.
    func record(_ change: MemberChange, observer: Int) {
        let subject = Int(change.member.id.node) - 1
        guard subject != observer, nodes.indices.contains(subject) else { return }
        trace("m\(observer + 1) sees \(change)")
        switch change.status.kind {
        case .dead:
            if nodes[subject].killedAt != nil {
                guard !detected[observer][subject] else { return }
                detected[observer][subject] = true
                report.stats.detections += 1
                let since = max(nodes[subject].killedAt!, revivedAt[observer][subject])
                report.stats.slowestDetection = max(report.stats.slowestDetection, now - since)
            } else if nodes[subject].hasLeft {
                return
            } else if now <= partitionGraceUntil {
                report.stats.partitionDeaths += 1
            } else {
                report.stats.falsePositives += 1
                violation("false positive: m\(observer + 1) declared live m\(subject + 1) dead")
            }
        case .alive, .suspect:
            if change.previousStatus?.kind == .dead || change.previousStatus?.kind == .left {
                revivedAt[observer][subject] = now
                detected[observer][subject] = false
            }
        case .left:
            if !nodes[subject].hasLeft { violation("m\(observer + 1) holds m\(subject + 1) as left, which never left") }
        }
    }

    /// SWIM's completeness, with our bound: every running member declares a crashed member dead
    /// within `worstCaseDetectionTicks` of the crash (or of the last revival of it the observer
    /// saw), stretched by the observer's largest local health multiplier and its own pauses.
    func checkDetections() {
        for subject in nodes.indices {
            guard let killedAt = nodes[subject].killedAt else { continue }
            for observer in nodes.indices where isRunning(observer) && !lateReported[observer][subject] {
                guard let held = view(of: observer, about: subject), held.status.isReachable else { continue }
                let bound = options.settings.worstCaseDetectionTicks(
                    members: options.members, localHealthMultiplier: nodes[observer].largestLocalHealth)
                report.stats.largestDetectionBound = max(report.stats.largestDetectionBound, bound)
                let deadline = max(killedAt, revivedAt[observer][subject]) + bound + nodes[observer].pausedTicks
                if now > deadline {
                    lateReported[observer][subject] = true
                    violation(
                        "m\(observer + 1) still holds crashed m\(subject + 1) as \(held.status.kind) \(now - killedAt) ticks after the crash (bound \(bound))"
                    )
                }
            }
        }
    }

    /// Every running member knows every other running member as alive or suspect, and no crashed
    /// member (whose detection deadline passed) or departed member as reachable.
    public func convergenceProblems() -> [String] {
        var problems: [String] = []
        for observer in nodes.indices where nodes[observer].state == .up && !nodes[observer].hasLeft {
            for subject in nodes.indices where subject != observer {
                let held = view(of: observer, about: subject)
                if nodes[subject].hasLeft {
                    if let held, held.status.kind != .left {
                        problems.append("m\(observer + 1) holds departed m\(subject + 1) as \(held.status.kind)")
                    }
                } else if isRunning(subject) {
                    if held?.status.isReachable != true {
                        let status = held.map { "\($0.status.kind)" } ?? "unknown"
                        problems.append("m\(observer + 1) holds live m\(subject + 1) as \(status)")
                    }
                } else if isKilled(subject), let held, held.status.isReachable, lateReported[observer][subject] {
                    problems.append("m\(observer + 1) holds crashed m\(subject + 1) as \(held.status.kind)")
                }
            }
        }
        return problems
    }

    /// Sums the members' own counters into the report.
    func collectCounters() {
        for node in nodes {
            let counters = node.instance.counters
            report.stats.probes += counters.probesSent
            report.stats.suspicionsRaised += counters.suspicionsRaised
            report.stats.refutations += counters.refutations
            report.stats.falseSuspicionRefutations += counters.falseSuspicionRefutations
            report.stats.largestLocalHealthMultiplier = max(
                report.stats.largestLocalHealthMultiplier, node.largestLocalHealth)
        }
    }
}
