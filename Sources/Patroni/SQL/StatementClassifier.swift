/// Decides where one SQL statement may run: on a replica (`read`), only on the primary (`write`),
/// or not through a pooled connection at all (`refused`). Pure and deliberately conservative:
/// anything it cannot vouch for is a write, since sending a read to the primary costs a little
/// load while sending a write to a replica fails (and a write hidden in a "read" must never be
/// retried on another member).
///
/// A read is, after comments and leading parentheses:
/// - `SELECT`, `VALUES` or `TABLE`, `WITH` whose body contains no `INSERT`, `UPDATE`, `DELETE` or
///   `MERGE`, none of them with `INTO` (SELECT INTO creates a table) or a locking clause
///   (`FOR UPDATE`/`FOR SHARE`/…), and calling none of the functions known to write or to need
///   the primary (`nextval`, `setval`, `set_config`, advisory locks, `pg_notify`, …);
/// - `SHOW`;
/// - `EXPLAIN` without `ANALYZE` of a statement that is itself a read.
/// Words are matched outside string literals, quoted identifiers and comments, so `SELECT 'DELETE'`
/// is a read and `SELECT "into"` is a read too; a column that happens to be named `update` makes
/// a statement a write, which is merely conservative. A user function called from a read may still
/// write: a replica refuses it with SQLSTATE 25006, and the data API then runs it on the primary.
///
/// Refused: more than one statement (a pooled request is one statement), and statements whose
/// effect outlives the request on a pooled connection — transaction control, `SET`/`RESET`,
/// cursors, prepared statements, `LISTEN`, `COPY`, `DISCARD`, `LOAD`.
public enum StatementClassifier {
    public enum Kind: Sendable, Equatable {
        case read
        case write
        case refused(Refusal)
    }

    public enum Refusal: Sendable, Equatable, CustomStringConvertible {
        case empty
        case multipleStatements
        /// A statement whose state would outlive the request on a shared connection.
        case sessionState(String)

        public var description: String {
            switch self {
            case .empty: "the statement is empty"
            case .multipleStatements: "send one statement per request (a trailing ';' is fine)"
            case .sessionState(let keyword):
                "\(keyword.uppercased()) is not accepted: each request runs alone on a pooled connection, "
                    + "so transaction control and session state would leak into other requests"
            }
        }
    }

    /// First words of statements whose effect outlives the request on a pooled connection.
    static let sessionKeywords: Set<String> = [
        "begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release", "prepare", "execute",
        "deallocate", "set", "reset", "discard", "listen", "unlisten", "declare", "fetch", "move", "close", "copy",
        "load",
    ]

    /// Words that make a SELECT/WITH a write wherever they appear.
    static let writeWords: Set<String> = ["insert", "update", "delete", "merge", "into"]

    /// Functions that write, take locks that outlive the statement, or fail on a standby.
    static let primaryFunctions: Set<String> = [
        "nextval", "setval", "set_config", "pg_notify", "txid_current", "pg_current_xact_id", "lo_create",
        "lo_import", "lo_unlink", "lo_open", "lo_put", "lo_from_bytea", "pg_advisory_lock", "pg_advisory_lock_shared",
        "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared", "pg_try_advisory_lock",
        "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared",
        "pg_advisory_unlock", "pg_advisory_unlock_all", "pg_advisory_unlock_shared", "pg_switch_wal",
        "pg_create_restore_point", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
        "pg_logical_emit_message", "pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
        "pg_drop_replication_slot", "dblink", "dblink_exec",
    ]

    public static func classify(_ sql: String) -> Kind {
        guard let tokens = SQLTokenizer.tokens(sql) else { return .write }
        // One statement: anything after a top-level ';' other than more ';' is a second statement.
        var statement = tokens
        if let semicolon = tokens.firstIndex(of: .semicolon) {
            guard tokens[semicolon...].allSatisfy({ $0 == .semicolon }) else { return .refused(.multipleStatements) }
            statement = Array(tokens[..<semicolon])
        }
        guard !statement.isEmpty else { return .refused(.empty) }
        if case .word(let first) = statement.first, sessionKeywords.contains(first) {
            return .refused(.sessionState(first))
        }
        return isRead(statement[...]) ? .read : .write
    }

    private static func isRead(_ tokens: ArraySlice<SQLTokenizer.Token>) -> Bool {
        var tokens = tokens
        while tokens.first == .open { tokens = tokens.dropFirst() }
        guard case .word(let first) = tokens.first else { return false }
        switch first {
        case "show":
            return true
        case "explain":
            return isReadExplain(tokens.dropFirst())
        case "select", "with", "values", "table":
            return isReadQuery(tokens)
        default:
            return false
        }
    }

    private static func isReadQuery(_ tokens: ArraySlice<SQLTokenizer.Token>) -> Bool {
        var previous: SQLTokenizer.Token?
        for token in tokens {
            if case .word(let word) = token {
                if writeWords.contains(word) || primaryFunctions.contains(word) { return false }
                // A locking clause: FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE.
                if previous == .word("for"), ["update", "share", "no", "key"].contains(word) { return false }
            }
            previous = token
        }
        return true
    }

    /// `EXPLAIN [VERBOSE …] statement` or `EXPLAIN (option …) statement`: a read when nothing in
    /// it says ANALYZE (which runs the statement) and the explained statement is a read.
    private static func isReadExplain(_ tokens: ArraySlice<SQLTokenizer.Token>) -> Bool {
        let runs: Set<String> = ["analyze", "analyse"]
        guard !tokens.contains(where: { if case .word(let word) = $0 { runs.contains(word) } else { false } }) else {
            return false
        }
        var rest = tokens
        if rest.first == .open {
            // The option list: skip to its closing parenthesis.
            var depth = 0
            while let token = rest.first {
                rest = rest.dropFirst()
                if token == .open { depth += 1 }
                if token == .close {
                    depth -= 1
                    if depth == 0 { break }
                }
            }
        } else {
            let options: Set<String> = [
                "verbose", "costs", "settings", "buffers", "wal", "timing", "summary", "format",
            ]
            while case .word(let word) = rest.first, options.contains(word) { rest = rest.dropFirst() }
        }
        return isRead(rest)
    }
}

/// Splits SQL into the parts the classifier looks at: lower-cased words (keywords, identifiers,
/// function names), parentheses and semicolons. Literals, quoted identifiers, numbers, operators
/// and comments are skipped, following PostgreSQL's lexical rules for `'…'` (with `''`), `E'…'`
/// (with backslash escapes), `$tag$…$tag$`, `"…"`, `--` and nested `/* */`. Returns nil when
/// a literal, identifier or comment does not end: the classifier then treats it as a write.
enum SQLTokenizer {
    enum Token: Equatable {
        case word(String)
        case open
        case close
        case semicolon
    }

    static func tokens(_ sql: String) -> [Token]? {
        let bytes = Array(sql.utf8)
        var tokens: [Token] = []
        var index = 0
        func isWordStart(_ byte: UInt8) -> Bool {
            (byte >= 97 && byte <= 122) || (byte >= 65 && byte <= 90) || byte == 95 || byte >= 128
        }
        func isWordByte(_ byte: UInt8) -> Bool { isWordStart(byte) || (byte >= 48 && byte <= 57) || byte == 36 }
        func at(_ offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }

        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "-") where at(1) == UInt8(ascii: "-"):
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "/") where at(1) == UInt8(ascii: "*"):
                var depth = 0
                repeat {
                    if at(0) == UInt8(ascii: "/"), at(1) == UInt8(ascii: "*") {
                        depth += 1
                        index += 2
                    } else if at(0) == UInt8(ascii: "*"), at(1) == UInt8(ascii: "/") {
                        depth -= 1
                        index += 2
                    } else {
                        index += 1
                    }
                    if index >= bytes.count, depth > 0 { return nil }
                } while depth > 0
            case UInt8(ascii: "'"):
                guard let end = quoteEnd(bytes, from: index, quote: UInt8(ascii: "'"), backslashes: false) else {
                    return nil
                }
                index = end
            case UInt8(ascii: "\""):
                guard let end = quoteEnd(bytes, from: index, quote: UInt8(ascii: "\""), backslashes: false) else {
                    return nil
                }
                index = end
            case UInt8(ascii: "$") where at(1).map({ isWordStart($0) || $0 == UInt8(ascii: "$") }) == true:
                // A dollar-quote opener is $$ or $tag$; anything else ($1, a parameter) is skipped.
                var close = index + 1
                while close < bytes.count, bytes[close] != UInt8(ascii: "$"), isWordByte(bytes[close]) { close += 1 }
                guard close < bytes.count, bytes[close] == UInt8(ascii: "$") else {
                    index = close
                    continue
                }
                let tag = Array(bytes[index...close])
                var search = close + 1
                var found: Int?
                while search + tag.count <= bytes.count {
                    if bytes[search] == UInt8(ascii: "$"), Array(bytes[search..<(search + tag.count)]) == tag {
                        found = search + tag.count
                        break
                    }
                    search += 1
                }
                guard let found else { return nil }
                index = found
            case UInt8(ascii: "("):
                tokens.append(.open)
                index += 1
            case UInt8(ascii: ")"):
                tokens.append(.close)
                index += 1
            case UInt8(ascii: ";"):
                tokens.append(.semicolon)
                index += 1
            case _ where isWordStart(byte):
                // E'…' (and e'…') takes backslash escapes; U&'…', B'…', X'…' do not.
                if (byte == UInt8(ascii: "E") || byte == UInt8(ascii: "e")), at(1) == UInt8(ascii: "'") {
                    guard let end = quoteEnd(bytes, from: index + 1, quote: UInt8(ascii: "'"), backslashes: true)
                    else { return nil }
                    index = end
                    continue
                }
                let start = index
                while index < bytes.count, isWordByte(bytes[index]) { index += 1 }
                tokens.append(.word(String(decoding: bytes[start..<index], as: UTF8.self).lowercased()))
            default:
                index += 1
            }
        }
        return tokens
    }

    /// The index just past the literal or identifier opening at `start`; a doubled quote is part of
    /// it. Nil when it never ends.
    private static func quoteEnd(_ bytes: [UInt8], from start: Int, quote: UInt8, backslashes: Bool) -> Int? {
        var index = start + 1
        while index < bytes.count {
            if backslashes, bytes[index] == UInt8(ascii: "\\") {
                index += 2
                continue
            }
            if bytes[index] == quote {
                if index + 1 < bytes.count, bytes[index + 1] == quote {
                    index += 2
                    continue
                }
                return index + 1
            }
            index += 1
        }
        return nil
    }
}
