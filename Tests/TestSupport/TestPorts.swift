import Synchronization

/// Loopback ports for tests that need fixed ones (a restarted node must get its port back, and
/// real processes are told their ports on the command line).
///
/// The suites of one `swift test` run share a process and run in parallel, so ports are handed
/// out here, in blocks of 100 that no two callers share, rather than picked at random by each
/// suite: random picks collided now and then, and a test then talked to another test's cluster.
/// The blocks lie in 20000–29999, below the kernel's ephemeral range (32768 and up), so no
/// outbound connection takes one as its source port; the first block is random so a run does not
/// reuse the ports the previous run left in TIME_WAIT.
public enum TestPorts {
    public static let blockSize = 100
    static let firstPort = 20_000
    static let blockCount = 100
    private static let nextBlock = Mutex(Int.random(in: 0..<blockCount))

    /// The first port of a block of `blockSize` ports nobody else in this test process holds.
    public static func block() -> Int {
        let block = nextBlock.withLock { next in
            defer { next = (next + 1) % blockCount }
            return next
        }
        return firstPort + block * blockSize
    }
}
