import Testing

@testable import Patroni

@Suite("WAL positions and the SQL probe's row")
struct SQLProbeParsingTests {
    @Test func lsnTextRoundTrips() throws {
        let lsn = try #require(LSN("16/B374D848"))
        #expect(lsn.offset == 0x16_B374_D848)
        #expect(lsn.description == "16/B374D848")
        #expect(LSN("0/4000050")?.offset == 0x400_0050)
        #expect(LSN(0).description == "0/0")
    }

    @Test func malformedLSNsAreRejected() {
        for text in ["", "/", "0/", "/1", "16B374D848", "1/2/3", "G/1", "123456789/0", "0/123456789", "-1/0"] {
            #expect(LSN(text) == nil, "\(text)")
        }
    }

    @Test func lagNeverGoesNegative() {
        #expect(LSN(5000).bytes(after: LSN(3000)) == 2000)
        #expect(LSN(3000).bytes(after: LSN(5000)) == 0)
    }

    @Test func aPrimarysRow() throws {
        let probe = try SQLObservation(row: ["f", "0/4000050", nil, nil, "6"])
        #expect(probe == SQLObservation(inRecovery: false, timeline: 6, currentLSN: LSN(0x400_0050)))
    }

    @Test func aReplicasRow() throws {
        let probe = try SQLObservation(row: ["t", nil, "0/5000000", "0/4FFFF00", "5"])
        #expect(probe.inRecovery && probe.timeline == 5 && probe.currentLSN == nil)
        #expect(probe.receiveLSN == LSN(0x500_0000) && probe.replayLSN == LSN(0x4FF_FF00))
    }

    @Test func rowsThatMakeNoSenseThrow() {
        let bad: [[String?]] = [
            ["f", "0/1", nil, nil],  // a column short
            ["yes", "0/1", nil, nil, "1"],
            [nil, "0/1", nil, nil, "1"],
            ["f", "0/1", nil, nil, "0"],
            ["f", "0/1", nil, nil, nil],
            ["t", nil, "zz", nil, "1"],
            ["f", nil, nil, nil, "1"],  // out of recovery without a write position
        ]
        for row in bad {
            #expect(throws: SQLProbeError.self, "\(row)") { try SQLObservation(row: row) }
        }
    }
}
