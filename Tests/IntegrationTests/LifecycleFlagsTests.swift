import Testing

@testable import raftgate

/// `serve`'s lifecycle flags and the test hooks read from the environment.
@Suite("Lifecycle flags")
struct LifecycleFlagsTests {
    @Test func emptyTestHooksAreUnset() throws {
        let flags = try LifecycleFlags.parse([])
        let empty = try flags.resolve(environment: [
            "RAFTGATE_TEST_FAIL_SYNC_WHEN": "", "RAFTGATE_TEST_WRITE_FAILURE_MARKER_ROOT": "",
        ])
        #expect(empty.faultTrigger == nil, "an empty trigger would be the data directory itself")
        #expect(empty.writeFailureMarkerRoot == nil)
        let set = try flags.resolve(environment: [
            "RAFTGATE_TEST_FAIL_SYNC_WHEN": "fail-now", "RAFTGATE_TEST_WRITE_FAILURE_MARKER_ROOT": "/tmp/markers",
        ])
        #expect(set.faultTrigger == "fail-now")
        #expect(set.writeFailureMarkerRoot == "/tmp/markers")
    }

    /// Without --join, an empty data directory starts a cluster only with --bootstrap or alone:
    /// a member that lost its data must not come back as a voter with an empty log.
    @Test func anEmptyDirectoryBootstrapsOnlyWhenToldOrAlone() throws {
        #expect(BootstrapRule.decide(fresh: true, hasOtherPeers: true, bootstrapFlag: false) == .refuse)
        #expect(BootstrapRule.decide(fresh: true, hasOtherPeers: true, bootstrapFlag: true) == .bootstrap)
        #expect(BootstrapRule.decide(fresh: true, hasOtherPeers: false, bootstrapFlag: false) == .bootstrap)
        #expect(BootstrapRule.decide(fresh: false, hasOtherPeers: true, bootstrapFlag: false) == .restart)
        #expect(try LifecycleFlags.parse(["--bootstrap"]).resolve(environment: [:]).bootstrap)
        #expect(try LifecycleFlags.parse([]).resolve(environment: ["RAFTGATE_BOOTSTRAP": "1"]).bootstrap)
        #expect(try !LifecycleFlags.parse([]).resolve(environment: [:]).bootstrap)
    }
}
