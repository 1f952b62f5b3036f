import Testing
import SwitchboardJSON

@Suite struct JSONParsingTests {
    @Test func scalars() throws {
        #expect(try JSON(parsing: "null") == .null)
        #expect(try JSON(parsing: " true ") == .bool(true))
        #expect(try JSON(parsing: "false") == .bool(false))
        #expect(try JSON(parsing: "42") == .int(42))
        #expect(try JSON(parsing: "-0") == .int(0))
        #expect(try JSON(parsing: "1.0") == .double(1.0))
        #expect(try JSON(parsing: "1e2") == .double(100))
        #expect(try JSON(parsing: "\"hi\"") == .string("hi"))
    }

    @Test func int64Extremes() throws {
        #expect(try JSON(parsing: "9223372036854775807") == .int(.max))
        #expect(try JSON(parsing: "-9223372036854775808") == .int(.min))
        #expect(try JSON(parsing: "9007199254740993") == .int(9_007_199_254_740_993))  // 2^53 + 1 stays exact
        #expect(try JSON(parsing: "9223372036854775808") == .double(9223372036854775808.0))
        #expect(try JSON(parsing: "-9223372036854775809") == .double(-9223372036854775809.0))
    }

    @Test func decimalsParseToTheCorrectlyRoundedDouble() throws {
        var generator = SplitMix64(seed: 7)
        for _ in 0..<20_000 {
            let mantissaDigits = Int(generator.next() % 19) + 1
            var digits = String(generator.next() % 9 + 1)
            for _ in 1..<mantissaDigits { digits += String(generator.next() % 10) }
            let point = Int(generator.next() % UInt64(mantissaDigits + 1))
            var text = point == 0 || point == mantissaDigits
                ? digits + ".5" : String(digits.prefix(point)) + "." + String(digits.dropFirst(point))
            if generator.next() % 3 == 0 { text += "e\(Int(generator.next() % 61) - 30)" }
            if generator.next() % 2 == 0 { text = "-" + text }
            #expect(try JSON(parsing: text) == .double(Double(text)!), "\(text)")
        }
    }

    @Test func emptyContainersStayDistinct() throws {
        #expect(try JSON(parsing: "[]") == .array([]))
        #expect(try JSON(parsing: "{}") == .object([:]))
        #expect(try JSON(parsing: "[]") != JSON(parsing: "{}"))
        #expect(try JSON(parsing: "{\"a\":[],\"b\":{}}").serialized() == "{\"a\":[],\"b\":{}}")
    }

    @Test func objectsKeepDocumentOrder() throws {
        let value = try JSON(parsing: "{\"z\":1,\"a\":2,\"m\":[null,{}]}")
        #expect(value.serialized() == "{\"z\":1,\"a\":2,\"m\":[null,{}]}")
        #expect(value.serialized(sortedKeys: true) == "{\"a\":2,\"m\":[null,{}],\"z\":1}")
    }

    @Test func unicodeRoundTrips() throws {
        let value = try JSON(parsing: #""caf\u00e9 \ud83d\ude00 — 日本 \" \\ \n""#)
        #expect(value == .string("café 😀 — 日本 \" \\ \n"))
        #expect(try JSON(parsing: value.serialized()) == value)
        #expect(JSON.string("\u{01}").serialized() == #""\u0001""#)
    }

    @Test(arguments: [
        ("", "unexpected end"),
        ("{", "expected a string key"),
        ("[1,]", "a trailing comma before ']': JSON allows none"),
        ("{\"a\" 1}", "expected ':'"),
        ("01", "leading zero"),
        ("1.", "expected a digit after '.'"),
        ("tru", "invalid literal"),
        ("{} x", "unexpected text after the JSON value"),
        ("\"a\u{01}\"", "control character"),
        ("\"\\ud800\"", "unpaired high surrogate"),
        ("\"\\x\"", "invalid escape"),
        ("1e999", "number out of range"),
    ])
    func invalidTexts(_ text: String, _ reason: String) {
        #expect { try JSON(parsing: text) } throws: { error in "\(error)".contains(reason) }
    }

    @Test(arguments: [
        // What a reader is told: the column in characters (the 'é' is two bytes, one column),
        // the line when the text has several, and what the mistake probably is.
        (#"{"email": "é", "x": 1,}"#, "a trailing comma before '}': JSON allows none at column 23"),
        ("{\n  \"a\": 1,\n  b: 2}", "expected a string key; JSON strings and keys are in double quotes at line 3, column 3"),
        ("{'a': 1}", "expected a string key; JSON strings are in double quotes at column 2"),
        (#"{"a": yes}"#, "unexpected character 'y'; JSON strings and keys are in double quotes at column 7"),
    ])
    func errorsSayWhereInLinesAndColumnsAndWhatToFix(_ text: String, _ message: String) {
        #expect { try JSON(parsing: text) } throws: { error in "\(error)" == message }
    }

    @Test func invalidUTF8IsRefused() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect { try JSON(parsing: bytes) } throws: { error in "\(error)".contains("invalid UTF-8") }
    }

    @Test func nestingLimit() throws {
        let ok = String(repeating: "[", count: JSON.maximumDepth) + String(repeating: "]", count: JSON.maximumDepth)
        _ = try JSON(parsing: ok)
        let deep = "[" + ok + "]"
        #expect { try JSON(parsing: deep) } throws: { error in "\(error)".contains("nesting deeper than 128") }
    }
}

@Suite struct JSONValueTests {
    @Test func literalsAndAccessors() {
        let value: JSON = ["email": "alice@example.com", "age": 31, "score": 1.5, "tags": [], "none": nil]
        #expect(value["email"]?.stringValue == "alice@example.com")
        #expect(value["age"]?.intValue == 31)
        #expect(value["score"]?.doubleValue == 1.5)
        #expect(value["tags"] == .array([]))
        #expect(value["none"]?.isNull == true)
        #expect(value.serialized() == #"{"email":"alice@example.com","age":31,"score":1.5,"tags":[],"none":null}"#)
    }

    @Test func doublesKeepTheirFraction() {
        #expect(JSON.double(1.0).serialized() == "1.0")
        #expect(JSON.double(0.1).serialized() == "0.1")
        #expect(JSON.int(1) != JSON.double(1.0))
    }

    @Test func aTapeWritesTheTextOfItsDecodedValue() throws {
        let texts = [
            #"{"z":1,"a":[true,false,null,[],{}],"s":"quote \" back \\ tab \t nl \n \u0001 é 🚀","n":-9223372036854775808}"#,
            #"[1.5,1e-05,1e+16,-0.0,0.1,123456789.125]"#, #""just a string""#, "42", "null",
        ]
        for text in texts {
            let tape = try Array(text.utf8).withUnsafeBytes { try JSONTape(parsing: $0) }
            var written: [UInt8] = []
            tape.write(to: &written)
            #expect(String(decoding: written, as: UTF8.self) == (try tape.decoded().serialized()))
            #expect(try JSON(parsing: written) == (try JSON(parsing: text)))
        }
    }

    @Test func encodableValuesKeepTypesAndOrder() throws {
        struct Item: Encodable { let sku: String; let qty: Int }
        struct Order: Encodable {
            let id: String
            let total: Double
            let items: [Item]
            let notes: [String]
            let gift: Bool?
            let big: UInt64
        }
        let json = try JSON(encoding: Order(
            id: "ORD-1", total: 110.0, items: [Item(sku: "A", qty: 2)], notes: [], gift: nil, big: .max))
        #expect(json.serialized() == #"{"id":"ORD-1","total":110.0,"items":[{"sku":"A","qty":2}],"notes":[],"big":1.8446744073709552e+19}"#)
    }

    @Test func codableRoundTripThroughFoundationFreeDecoder() throws {
        let value: JSON = ["a": [1, 2.5, "x", true, nil], "b": [:]]
        let reparsed = try JSON(parsing: value.serialized())
        #expect(reparsed == value)
    }
}

/// A small seeded generator, so property tests are repeatable.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
