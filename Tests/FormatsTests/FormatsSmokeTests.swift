import Testing

@Suite struct FormatsSmokeTests {
    @Test func builds() { #expect(1 + 1 == 2) }
}
