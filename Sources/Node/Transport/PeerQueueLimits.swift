/// How much a link to one peer holds before it drops: frames queued while connecting, and bytes
/// waiting in the connection's outbound buffer for a peer that stopped reading (paused, or a
/// half-open connection). Raft retransmits what matters, so dropping keeps memory flat. The host
/// simulation's links use the same bounds.
package enum PeerQueueLimits {
    package static let maxQueuedMessages = 4096
    package static let maxQueuedBytes = 64 << 20
}
