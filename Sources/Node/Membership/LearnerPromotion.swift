import Logging
import Raft

/// Leader-only: promotes each learner to voter once the leader sees it caught up (thesis §4.2.1:
/// a new server catches up as a non-voting member first, so adding it never stalls commits). The
/// core decides what "caught up" means and refuses anything else; this only asks, one change at
/// a time, as often as `interval`.
struct LearnerPromotion: LeaderService {
    let node: RaftNode
    let interval: Duration
    let logger: Logger
    var name: String { "learner promotion" }

    func lead(term: UInt64) async {
        while !Task.isCancelled {
            for learner in await node.promotableLearners {
                let outcome = await node.changeMembership(.promoteLearner(learner), inTerm: term)
                if case .applied = outcome {
                    logger.notice("learner caught up and promoted to voter", metadata: ["member": "n\(learner)"])
                }
            }
            try? await Task.sleep(for: interval)
        }
    }
}
