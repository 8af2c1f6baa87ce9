import Foundation
import Gateway
import Logging
import Node
import ServiceLifecycle
import UnixSignals

/// The last service of `serve`'s group, so graceful shutdown (SIGTERM, SIGINT) reaches it first:
/// it drains the node (`NodeLifecycle.drain`) while the HTTP listeners still serve, and only when
/// it returns does the group shut the listeners down (new connections are refused, requests in
/// flight finish). A second signal, or the drain deadline, ends the process at once. It also
/// watches for a fatal error: a node that stopped itself answers 503 everywhere for HAProxy's
/// window, then exits non-zero so that a supervisor restarts it.
struct LifecycleService: Service {
    let lifecycle: NodeLifecycle
    let logger: Logger

    func run() async throws {
        let fatalWatch = Task { await watchForFatalError() }
        defer { fatalWatch.cancel() }
        try await gracefulShutdown()
        armForcedExit()
        await lifecycle.drain()
        logger.notice("closing the listeners; requests in flight finish")
    }

    private func armForcedExit() {
        let logger = self.logger
        let deadline = lifecycle.plan.deadline
        Task.detached {
            let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
            for await signal in signals {
                logger.warning("second signal during the drain: exiting now", metadata: ["signal": "\(signal)"])
                exit(1)
            }
        }
        Task.detached {
            try? await Task.sleep(for: deadline)
            logger.error(
                "drain deadline passed with work unfinished: exiting now", metadata: ["deadline": "\(deadline)"])
            exit(1)
        }
    }

    private func watchForFatalError() async {
        while !Task.isCancelled {
            if let reason = await lifecycle.node.fatalError {
                logger.critical(
                    "the node stopped itself; answering 503 everywhere, then exiting", metadata: ["reason": "\(reason)"]
                )
                try? await Task.sleep(for: lifecycle.plan.announceWait)
                exit(2)
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}
