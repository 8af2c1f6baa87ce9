import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// Subscribes to `+switch-master` on every Sentinel, each on a thread of its own, and calls
/// `onHint` when one is published for our master name. A hint only: whoever hears it resolves
/// again through the majority (`MasterDiscovery`), never trusting the message's address, so a
/// single lying or confused Sentinel cannot move the gateways.
public final class SwitchMasterListener: Sendable {
    private let settings: SentinelSettings
    private let pool: NIOThreadPool
    private let stopped = NIOLockedValueBox(false)
    private let onHint: @Sendable (RedisEndpoint) -> Void
    private let logger: Logger

    public init(settings: SentinelSettings, logger: Logger, onHint: @escaping @Sendable (RedisEndpoint) -> Void) {
        self.settings = settings
        self.logger = logger
        self.onHint = onHint
        pool = NIOThreadPool(numberOfThreads: max(1, settings.sentinels.count))
        pool.start()
        for sentinel in settings.sentinels {
            pool.submit { [self] state in
                guard state == .active else { return }
                listen(to: sentinel)
            }
        }
    }

    public func shutdown() async {
        stopped.withLockedValue { $0 = true }
        try? await pool.shutdownGracefully()
    }

    private var isStopped: Bool { stopped.withLockedValue { $0 } }

    /// Runs on its own pool thread until shut down: (re)subscribes, then reads messages, polling
    /// at most `pollInterval` at a time so a shutdown is noticed promptly.
    private func listen(to sentinel: RedisEndpoint) {
        let pollInterval = Duration.milliseconds(200)
        while !isStopped {
            do {
                let connection = try RedisConnection(
                    sentinel, connectTimeout: settings.connectTimeout, commandTimeout: settings.commandTimeout)
                try connection.send([Array("SUBSCRIBE".utf8), Array("+switch-master".utf8)])
                logger.info("subscribed to +switch-master", metadata: ["sentinel": "\(sentinel)"])
                while !isStopped {
                    guard let message = try connection.nextReply(waiting: pollInterval) else { continue }
                    if let hint = Self.hint(message, masterName: settings.masterName) {
                        logger.info(
                            "Sentinel published +switch-master",
                            metadata: ["sentinel": "\(sentinel)", "newMaster": "\(hint)"])
                        onHint(hint)
                    }
                }
            } catch {
                logger.info("Sentinel subscription lost", metadata: ["sentinel": "\(sentinel)", "error": "\(error)"])
                // Wait before reconnecting, in small steps so a shutdown is not held up.
                for _ in 0..<5 where !isStopped { usleep(100_000) }
            }
        }
    }

    /// `["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]` → the new
    /// address, when it is about our master.
    static func hint(_ message: RedisReply, masterName: String) -> RedisEndpoint? {
        guard let parts = message.elements, parts.count == 3, parts[0].text == "message",
            parts[1].text == "+switch-master", let payload = parts[2].text
        else { return nil }
        let words = payload.split(separator: " ").map(String.init)
        guard words.count == 5, words[0] == masterName, let port = Int(words[4]) else { return nil }
        return RedisEndpoint(host: words[3], port: port)
    }
}
