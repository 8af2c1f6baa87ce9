import Patroni
import Testing

@testable import Gateway

@Suite("Where /sql sends a statement")
struct SQLPlanTests {
    static let pg1 = PostgresEndpoint(name: "pg1", host: "127.0.0.1", port: 5432)
    static let pg2 = PostgresEndpoint(name: "pg2", host: "127.0.0.1", port: 5433)
    static let pg3 = PostgresEndpoint(name: "pg3", host: "127.0.0.1", port: 5434)

    static func route(_ primary: PostgresEndpoint?, _ replicas: [PostgresEndpoint], writable: Bool = true)
        -> PostgresRoute
    {
        PostgresRoute(epoch: 1, primary: primary, replicas: replicas, writable: writable)
    }

    static func primary(_ endpoint: PostgresEndpoint) -> SQLPlan.Target { .init(endpoint: endpoint, role: .primary) }
    static func replica(_ endpoint: PostgresEndpoint) -> SQLPlan.Target { .init(endpoint: endpoint, role: .replica) }

    @Test func writesGoToAWritablePrimaryOnlyWithNothingToRetryOn() {
        let full = Self.route(Self.pg1, [Self.pg2, Self.pg3])
        #expect(SQLPlan.decide(.write, route: full, turn: 0) == .targets([Self.primary(Self.pg1)]))
        #expect(SQLPlan.decide(.primaryRead, route: full, turn: 7) == .targets([Self.primary(Self.pg1)]))
        #expect(SQLPlan.decide(.write, route: Self.route(nil, [Self.pg2]), turn: 0) == .noPrimary)
        #expect(SQLPlan.decide(.write, route: Self.route(Self.pg1, [], writable: false), turn: 0) == .notWritable)
        #expect(SQLPlan.decide(.primaryRead, route: Self.route(Self.pg1, [], writable: false), turn: 0) == .notWritable)
    }

    @Test func readsRotateOverReplicasWithAnotherMemberToRetryOn() {
        let full = Self.route(Self.pg1, [Self.pg2, Self.pg3])
        #expect(
            SQLPlan.decide(.read, route: full, turn: 0) == .targets([Self.replica(Self.pg2), Self.replica(Self.pg3)]))
        #expect(
            SQLPlan.decide(.read, route: full, turn: 1) == .targets([Self.replica(Self.pg3), Self.replica(Self.pg2)]))
        #expect(
            SQLPlan.decide(.read, route: full, turn: -1) == .targets([Self.replica(Self.pg3), Self.replica(Self.pg2)]))
        let one = Self.route(Self.pg1, [Self.pg2])
        #expect(
            SQLPlan.decide(.read, route: one, turn: 5) == .targets([Self.replica(Self.pg2), Self.primary(Self.pg1)]))
        // Reads do not need a writable route: a replica or a stale primary still answers reads.
        #expect(
            SQLPlan.decide(.read, route: Self.route(nil, [Self.pg2], writable: false), turn: 0)
                == .targets([Self.replica(Self.pg2)]))
        #expect(SQLPlan.decide(.read, route: Self.route(Self.pg1, []), turn: 0) == .targets([Self.primary(Self.pg1)]))
        #expect(SQLPlan.decide(.read, route: .unknown, turn: 0) == .noServer)
        // A primary listed among its own replicas (a route mid-change) is not read from twice.
        #expect(
            SQLPlan.decide(.read, route: Self.route(Self.pg1, [Self.pg1]), turn: 0)
                == .targets([Self.primary(Self.pg1)]))
    }

    @Test func sqlStatesMapToStatuses() {
        #expect(SQLPlan.status(sqlState: "42601") == .badRequest)
        #expect(SQLPlan.status(sqlState: "22012") == .badRequest)
        #expect(SQLPlan.status(sqlState: "23505") == .conflict)
        #expect(SQLPlan.status(sqlState: "40001") == .conflict)
        #expect(SQLPlan.status(sqlState: "42501") == .forbidden)
        #expect(SQLPlan.status(sqlState: "53300") == .serviceUnavailable)
        #expect(SQLPlan.status(sqlState: "57014") == .badRequest)
        #expect(SQLPlan.status(sqlState: "XX000") == .internalServerError)
        #expect(SQLPlan.status(sqlState: nil) == .badGateway)
    }
}

@Suite("/sql bodies and answers")
struct SQLBodyTests {
    @Test func parametersBecomeText() throws {
        let body = try SQLRequestBody.parse(
            Array(
                #"{"sql":"SELECT $1","params":["a",1,-2.5,true,false,null,[1,"x"],{"k":"v"},12345678901234567],"route":"primary"}"#
                    .utf8))
        #expect(body.sql == "SELECT $1" && body.primaryOnly)
        #expect(
            body.parameters == [
                "a", "1", "-2.5", "true", "false", nil, #"[1,"x"]"#, #"{"k":"v"}"#, "12345678901234567",
            ])
        #expect(
            try SQLRequestBody.parse(Array(#"{"sql":"SELECT 1"}"#.utf8))
                == .init(sql: "SELECT 1", parameters: [], primaryOnly: false))
    }

    @Test(arguments: [
        "", "[]", "{", #"{"params":[]}"#, #"{"sql":null}"#, #"{"sql":"x","params":"a"}"#, #"{"sql":"x","route":"any"}"#,
        #"{"sql":"x","extra":1}"#,
    ])
    func malformedBodiesAreRefused(_ text: String) {
        #expect(throws: GatewayError.self) { try SQLRequestBody.parse(Array(text.utf8)) }
    }

    @Test func valuesKeepTheirJSONKind() {
        #expect(SQLAnswer.encode("t", type: "bool") == "true")
        #expect(SQLAnswer.encode("f", type: "bool") == "false")
        #expect(SQLAnswer.encode("-12", type: "int4") == "-12")
        #expect(SQLAnswer.encode("1.5e+100", type: "float8") == "1.5e+100")
        #expect(SQLAnswer.encode("-Infinity", type: "float8") == #""-Infinity""#)
        #expect(SQLAnswer.encode("12.50", type: "numeric") == #""12.50""#)
        #expect(SQLAnswer.encode(#"{"a": 1}"#, type: "jsonb") == #"{"a": 1}"#)
        #expect(SQLAnswer.encode(nil, type: "text") == "null")
        #expect(SQLAnswer.encode("a\"b\\c\n\u{1}", type: "text") == #""a\"b\\c\n\u0001""#)
    }
}
