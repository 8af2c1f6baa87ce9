import Testing

@testable import Node

@Suite("Project config documents")
struct ProjectConfigTests {
    func decode(_ text: String) throws(ProjectConfigError) -> ProjectConfig {
        try ProjectConfig.decode(Array(text.utf8))
    }

    @Test func defaultsFillWhatADocumentLeavesOut() throws {
        let config = try decode(#"{"postgres":{"database":"acme","user":"acme"}}"#)
        #expect(config.apiKeys == [] && config.routes == [:] && config.rateLimit == nil)
        #expect(config.postgres?.maxConnections == ProjectConfig.Rules.defaultMaxConnections)
        #expect(try decode("{}") == ProjectConfig())
    }

    @Test func theStoredFormIsCanonical() throws {
        let one = try decode(#"{"routes":{"b":"x","a":"y"},"rateLimit":{"burst":2,"perSecond":1}}"#)
        let other = try decode(#"{"rateLimit":{"perSecond":1,"burst":2},"routes":{"a":"y","b":"x"}}"#)
        #expect(one.canonicalJSON == other.canonicalJSON)
        #expect(try ProjectConfig.decode(one.canonicalJSON) == one)
    }

    @Test func everyRefusalNamesItsField() {
        let cases: [(String, ProjectConfigError)] = [
            (#"{"apiKey":[]}"#, .unknownField("apiKey")),
            (#"{"postgres":{"database":"a","user":"b","ssl":true}}"#, .unknownField("postgres.ssl")),
            (
                #"{"postgres":{"database":null,"user":"b"}}"#,
                .invalid(field: "postgres.database", reason: "must be a string, not null")
            ),
            (#"{"postgres":{"user":"b"}}"#, .invalid(field: "postgres.database", reason: "is required")),
            (
                #"{"apiKeys":["sha256:\#(String(repeating: "A", count: 64))"]}"#,
                .invalid(field: "apiKeys[0]", reason: "must be sha256: followed by 64 lowercase hex digits")
            ),
            (
                #"{"rateLimit":{"perSecond":"100","burst":1}}"#,
                .invalid(field: "rateLimit.perSecond", reason: "must be an integer")
            ),
        ]
        for (document, expected) in cases {
            #expect(throws: expected, "\(document)") { try decode(document) }
        }
    }

    @Test func namesAreASCIIAndBounded() {
        #expect(ProjectConfig.isValidProjectName("acme-2_b"))
        for name in ["", "Acme", "-acme", "acme.corp", "acmé", String(repeating: "a", count: 64), "a\n"] {
            #expect(!ProjectConfig.isValidProjectName(name), "\(name)")
        }
        #expect(ProjectConfig.Rules.isIdentifier("_acme1"))
        #expect(!ProjectConfig.Rules.isIdentifier("1acme"))
        #expect(ProjectConfig.Rules.isRouteName("api.v2"))
        #expect(!ProjectConfig.Rules.isRouteName(".hidden"))
    }
}
