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
}
